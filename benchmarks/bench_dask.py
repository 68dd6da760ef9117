"""Batched fits on a dask LocalCluster: one and two single-threaded worker processes; and
the per-step cost of the optimizers over dask arrays.

    python benchmarks/bench_dask.py [--problems 20000] [--iters 400] [--chunk 2500]
    python benchmarks/bench_dask.py --optimizer [--size 1000000] [--chunks 4]

A compute-bound batch (Gaussian-peak fits of asv_benchmarks/_peaks.py, every problem
running ``--iters`` iterations: ``gtol=0``) fitted by ``fastadam.dask.minimize_batch`` on
``LocalCluster(n_workers=w, threads_per_worker=1, processes=True)`` for w = 1 and 2, and
by ``fastadam.minimize_batch`` in this process on 1 and on all numba threads, for
reference. Each time is the best of ``--repeat`` runs after a warm-up run (the workers load
the compiled fit from numba's cache, filled by the first call's check here).
"""

import argparse
import os
import sys
import time

import dask.array as da
import numba
import numpy as np
from distributed import Client, LocalCluster

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))
import fastadam as fa  # noqa: E402
import fastadam.dask as fd  # noqa: E402
from asv_benchmarks import _peaks as pk  # noqa: E402


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def optimizer_steps(n, chunks, steps=20):
    """µs per step of fastadam.dask.Adam (a persisted gradient, ``chunks`` chunks) on the
    local threads and on a LocalCluster of two single-threaded workers, against
    fastadam.Adam.step on the gathered arrays."""
    x = np.random.default_rng(0).standard_normal(n)
    g = np.random.default_rng(1).standard_normal(n)
    opt = fa.Adam(x.copy(), lr=1e-3)

    def per_step(step):
        step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - t0) / steps

    print(f"# fastadam.dask.Adam, n = {n}, {chunks} chunks, {steps} steps, "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    print(f"{'fastadam.Adam.step (numpy)':48s} {per_step(lambda: opt.step(g)) * 1e3:8.2f} ms")
    size = -(-n // chunks)
    import dask

    with dask.config.set(scheduler="threads"):
        sharded = fd.Adam(da.from_array(x, chunks=size), lr=1e-3)
        dg = da.from_array(g, chunks=size).persist()
        t = per_step(lambda: sharded.step(dg))
        print(f"{'fastadam.dask.Adam, local threads':48s} {t * 1e3:8.2f} ms")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):  # fmt: skip
        sharded = fd.Adam(da.from_array(x, chunks=size), lr=1e-3)
        dg = da.from_array(g, chunks=size).persist()

        def step():
            sharded.step(dg)
            sharded.params.blocks[0].compute()  # (persist is asynchronous on a cluster)

        print(
            f"{'fastadam.dask.Adam, LocalCluster 2 x 1 thread':48s} {per_step(step) * 1e3:8.2f} ms"
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=20_000)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--chunk", type=int, default=2500)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--optimizer", action="store_true", help="the optimizers' step instead")
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--chunks", type=int, default=4)
    args = ap.parse_args()
    if args.optimizer:
        optimizer_steps(args.size, args.chunks)
        return
    y, _, x0 = pk.data(args.problems)
    opts = dict(lr=pk.LR, maxiter=args.iters, gtol=0.0, track_best=False)
    fit_args = (y, pk.T[np.newaxis])
    print(f"# {args.problems} Gaussian-peak fits x {args.iters} iterations, chunks of "
          f"{args.chunk}; {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")  # fmt: skip
    rows = []

    def local(threads):
        before = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            fa.minimize_batch(pk.fun_and_grad, x0, args=fit_args, jac=True, options=opts)
        finally:
            numba.set_num_threads(before)

    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        rows.append((f"fastadam.minimize_batch, {threads} numba thread(s)",
                     best(lambda t=threads: local(t), args.repeat)))  # fmt: skip
    X = da.from_array(x0, chunks=(args.chunk, -1))
    Y = da.from_array(y, chunks=(args.chunk, -1))
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):  # fmt: skip
            lazy = fd.minimize_batch(pk.fun_and_grad, X, args=(Y, pk.T[np.newaxis]),
                                     jac=True, options=opts)  # fmt: skip
            rows.append((f"fastadam.dask, LocalCluster {workers} x 1 thread",
                         best(lambda lazy=lazy: fd.compute(lazy), args.repeat)))  # fmt: skip
    for name, seconds in rows:
        print(f"{name:48s} {seconds:8.3f} s")
    one, two = rows[-2][1], rows[-1][1]
    print(f"speed-up of 2 workers over 1: {one / two:.2f}x")


if __name__ == "__main__":
    main()
