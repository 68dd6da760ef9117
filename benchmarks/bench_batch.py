"""Batched fitting: B Gaussian-peak fits of four parameters each (asv_benchmarks/_peaks.py).

Run from a clone: ``python benchmarks/bench_batch.py`` (``--help`` for options;
``--record`` writes ``docs/data/batch_fit.csv``, which the docs' figure is drawn from).

Rows, each the best of ``--repeat`` runs after a warm-up (compile time excluded):

fastadam compiled
    ``fa.minimize_batch`` with the ``@njit`` objective of one problem (``jac=True``), the
    problems over numba's threads.
fastadam compiled (writes g)
    the same with the objective in the GPU's form, ``fun(p, g, y, t) -> f`` (no array
    allocated per evaluation).
fastadam vectorized
    ``fa.minimize_batch`` with a numpy objective over the rows of the problems running.
floor: numba prange loop
    the same evaluations and Adam updates in a hand-written ``@njit(parallel=True)`` loop.
jax.vmap optax
    ``jax.vmap`` of an optax Adam ``fori_loop`` under ``jax.jit`` (float64), if installed.
scipy L-BFGS-B loop
    a Python loop of ``scipy.optimize.minimize(method="L-BFGS-B")`` to its default
    tolerances (not the same work: it stops when converged), up to ``--scipy-max`` problems.

Every Adam row runs ``--iters`` iterations (``gtol=0``); the error column is the median over
problems of the largest absolute parameter error against the true peak.
"""

import argparse
import csv
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))
import fastadam as fa  # noqa: E402
from asv_benchmarks import _peaks as pk  # noqa: E402

COLUMNS = ["contender", "problems", "iterations", "seconds", "us_per_problem", "median_error"]


def best(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def error(x, truth):
    return float(np.median(np.max(np.abs(x - truth), axis=1)))


def contenders(iters, scipy_max):
    jax_run = pk.make_jax(iters)
    rows = [
        ("fastadam compiled", lambda x0, y: pk.fastadam_compiled(x0, y, iters).x, None),
        (
            "fastadam compiled (writes g)",
            lambda x0, y: pk.fastadam_compiled_into(x0, y, iters).x,
            None,
        ),  # fmt: skip
        ("fastadam vectorized", lambda x0, y: pk.fastadam_vectorized(x0, y, iters).x, None),
        (
            "floor: numba prange loop",
            lambda x0, y: pk.floor_adam(x0.copy(), y, pk.T, iters, pk.LR),
            None,
        ),  # fmt: skip
    ]
    if jax_run is not None:
        rows.append(("jax.vmap optax", jax_run, None))
    rows.append(("scipy L-BFGS-B loop", lambda x0, y: pk.scipy_lbfgsb(x0, y)[0], scipy_max))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000, 100_000])
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scipy-max", type=int, default=1000)
    ap.add_argument("--record", action="store_true", help="write docs/data/batch_fit.csv")
    args = ap.parse_args(argv)

    title = (f"batched Gaussian-peak fits, {pk.NPARAM} parameters, {pk.M} samples, "
             f"{args.iters} Adam iterations")  # fmt: skip
    machine = (f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numba threads "
               f"{__import__('numba').get_num_threads()}")  # fmt: skip
    date = f"date: {time.strftime('%Y-%m-%d')}, fastadam {fa.__version__}"
    for line in (title, machine, date):
        print(f"# {line}")
    rows = contenders(args.iters, args.scipy_max)
    y, truth, x0 = pk.data(64)
    for _, fn, _ in rows:  # compile (and load caches) outside the timings
        fn(x0[:8], y[:8])
    out = []
    print(f"| {'contender':<26} | {'B':>7} | {'seconds':>9} | {'us/problem':>10} | "
          f"{'vs floor':>8} | {'median error':>12} |")  # fmt: skip
    print(f"|{'-' * 28}|{'-' * 9}|{'-' * 11}|{'-' * 12}|{'-' * 10}|{'-' * 14}|")
    for b in args.sizes:
        y, truth, x0 = pk.data(b)
        floor = None
        for name, fn, limit in rows:
            if limit is not None and b > limit:
                continue
            seconds, x = best(lambda fn=fn, x0=x0, y=y: fn(x0, y), 1 if limit else args.repeat)
            if name.startswith("floor"):
                floor = seconds
            out.append([name, b, args.iters, seconds, 1e6 * seconds / b, error(x, truth)])
        for row in out[-len(rows) :]:
            if row[1] != b:
                continue
            ratio = f"{row[3] / floor:8.2f}" if floor else " " * 8
            print(f"| {row[0]:<26} | {b:>7} | {row[3]:>9.4f} | {row[4]:>10.2f} | {ratio} | "
                  f"{row[5]:>12.2e} |")  # fmt: skip
    if args.record:
        path = os.path.join(os.path.dirname(HERE), "docs", "data", "batch_fit.csv")
        with open(path, "w", newline="") as fh:
            fh.write(f"# {machine}\n# {date}\n")
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            w.writerows(out)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
