"""minimize at scale: one problem of n = 10^6 float64 variables (issue: minimize as one
batched engine, item 3).

Run from a clone: ``python benchmarks/bench_scale.py [--n N] [--iters K]``.

Measures, in one process:

- seconds per iteration of ``fa.minimize`` (Python path, numpy ``fun``/``jac``; and the
  compiled path with ``@njit`` ones), against a hand-written loop doing the same work
  with the optimizer object: ``f = fun(x); g = jac(x); opt.step(g)``; interleaved rounds,
  the lower quartile of the ratios;
- the arrays of n that minimize holds while it iterates: the memory numpy has allocated
  (tracemalloc), read at each call of ``jac`` and divided by the size of one array, with
  best-iterate tracking on and off (the user's gradient counts as one).
"""

import argparse
import os
import platform
import sys
import time
import tracemalloc

import numpy as np
from numba import njit

import fastadam as fa

LR = 1e-3


def problem(n):
    rng = np.random.default_rng(0)
    c = rng.standard_normal(n)
    a = rng.uniform(0.5, 2.0, n)

    def fun(x):
        return 0.5 * float(np.dot(a * (x - c), x - c))

    def jac(x):
        return a * (x - c)

    return fun, jac, a, c


@njit(cache=True)
def fun_nb(x, a, c):
    s = 0.0
    for i in range(x.size):
        d = x[i] - c[i]
        s += a[i] * d * d
    return 0.5 * s


@njit(cache=True)
def jac_nb(x, a, c):
    g = np.empty_like(x)
    for i in range(x.size):
        g[i] = a[i] * (x[i] - c[i])
    return g


def per_iteration(run, iters):
    t0 = time.perf_counter()
    run(iters)
    return (time.perf_counter() - t0) / iters


def ratio(run_a, run_b, iters, rounds):
    out = []
    for r in range(rounds):
        if r % 2:
            b = per_iteration(run_b, iters)
            a = per_iteration(run_a, iters)
        else:
            a = per_iteration(run_a, iters)
            b = per_iteration(run_b, iters)
        out.append((a / b, a, b))
    out.sort()
    return out[len(out) // 4]


def held_arrays(n, track_best):
    """Largest number of n-arrays numpy holds at any jac call, minus those present before."""
    fun, jac, a, c = problem(n)
    peak = [0]

    def counting_jac(x):
        peak[0] = max(peak[0], tracemalloc.get_traced_memory()[0])
        return jac(x)

    x0 = np.zeros(n)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fa.minimize(fun, x0, jac=counting_jac,
                options=dict(lr=LR, maxiter=20, gtol=0.0, track_best=track_best))  # fmt: skip
    tracemalloc.stop()
    return (peak[0] - base) / (8.0 * n) + 1  # + 1: the gradient jac is about to return


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**6)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args(argv)
    n, iters = args.n, args.iters
    fun, jac, a, c = problem(n)
    import numba

    print(f"# n = {n} float64, {platform.machine()}, {os.cpu_count()} CPUs, numba threads "
          f"{numba.get_num_threads()}, {time.strftime('%Y-%m-%d')}")  # fmt: skip

    def manual(k, fun=fun, jac=jac):
        x = np.zeros(n)
        opt = fa.Adam(x, lr=LR)
        for _ in range(k):
            fun(x)
            opt.step(jac(x))

    def manual_nb(k):
        manual(k, lambda x: fun_nb(x, a, c), lambda x: jac_nb(x, a, c))

    def python_path(k):
        fa.minimize(fun, np.zeros(n), jac=jac, options=dict(lr=LR, maxiter=k - 1, gtol=0.0))

    def compiled_path(k):
        res = fa.minimize(fun_nb, np.zeros(n), args=(a, c), jac=jac_nb,
                          options=dict(lr=LR, maxiter=k - 1, gtol=0.0))  # fmt: skip
        assert res.compiled

    for f in (manual, manual_nb, python_path, compiled_path):
        f(3)
    print("| path | s/iteration | Adam.step + fun + jac | ratio |")
    print("|---|---|---|---|")
    for name, run, ref in (
        ("Python path (numpy fun, jac)", python_path, manual),
        ("compiled path (@njit fun, jac)", compiled_path, manual_nb),
    ):
        r, t, t_ref = ratio(run, ref, iters, args.rounds)
        print(f"| {name} | {t * 1e3:.2f} ms | {t_ref * 1e3:.2f} ms | {r:.2f} |")
    for track in (True, False):
        print(f"arrays of n held while iterating, track_best={track}: "
              f"{held_arrays(n, track):.1f}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
