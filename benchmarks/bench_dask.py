"""Batched fits on a dask LocalCluster: one and two single-threaded worker processes.

    python benchmarks/bench_dask.py [--problems 20000] [--iters 400] [--chunk 2500]

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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=20_000)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--chunk", type=int, default=2500)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
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
