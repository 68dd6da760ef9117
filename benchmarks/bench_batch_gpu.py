"""Batched fitting on the GPU: B Gaussian-peak fits (asv_benchmarks/_peaks.py), the same
problem, iterations and ``lr`` as ``benchmarks/bench_batch.py``.

Run on a machine with an NVIDIA GPU (``benchmarks/gpu_run.sh`` runs it):

    NUMBA_ENABLE_CUDASIM=0 python benchmarks/bench_batch_gpu.py [--sizes 1000 ...]
        [--iters 300] [--csv table.csv]
    python benchmarks/bench_batch_gpu.py --check      # correctness only (also sanitizer)
    python benchmarks/bench_batch_gpu.py --sim        # a tiny run on the CUDA simulator
    python benchmarks/bench_batch_gpu.py --variants --sizes 1000000   # kernel variants

Rows, each the best of 3 runs after a warm-up (compile time reported apart):

fastadam GPU float64 / float32
    ``fa.minimize_batch`` with a CUDA ``x0`` and the device objective compiled from the
    same Python source as the CPU's ``@njit`` one (``evaluate_into``); one thread per
    problem; host arrays in and results out, transfers included.
jax.vmap GPU float64
    ``jax.jit(jax.vmap(fit))`` of an optax ``fori_loop`` on the GPU (every problem runs all
    iterations, as fastadam does here with ``gtol=0``).
fastadam CPU compiled
    ``fa.minimize_batch`` with the ``@njit`` objective over all of the machine's cores (up to
    10^5 problems).

First the correctness check: at B = 1000 the GPU's float64 iterates against the CPU
compiled path (the GPU may fuse multiply-adds: agreement to rounding, not bitwise), the
same statuses and iteration counts.
"""

import argparse
import csv
import os
import sys
import time

if "--sim" in sys.argv:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402
from numba import cuda  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))
import fastadam as fa  # noqa: E402
from asv_benchmarks import _peaks as pk  # noqa: E402

_evaluate = cuda.jit(device=True)(pk.evaluate_into.py_func)


@cuda.jit(device=True)
def peak(p, g, y, t):
    """The objective of one problem for the GPU, ``jac=True`` style: the CPU's own
    ``evaluate_into`` compiled for the device."""
    return _evaluate(p, y, t, g)


def fit_gpu(x0, y, iters, dtype, stop=None):
    """``y``: host data (copied at each call), or already on the device in ``dtype``."""
    opts = dict(dict(lr=pk.LR, maxiter=iters, gtol=0.0, track_best=False), **(stop or {}))
    x0 = cuda.to_device(x0.astype(dtype))
    y = y.astype(dtype) if isinstance(y, np.ndarray) else y
    args = (y, pk.T[np.newaxis].astype(dtype))
    return fa.minimize_batch(peak, x0, args=args, jac=True, options=opts)


def fit_cpu(x0, y, iters, stop=None):
    opts = dict(dict(lr=pk.LR, maxiter=iters, gtol=0.0, track_best=False), **(stop or {}))
    args = (y, pk.T[np.newaxis])
    return fa.minimize_batch(pk.fun_and_grad, x0, args=args, jac=True, options=opts)


def check(b, iters):
    """GPU float64 against the CPU compiled path, with and without stop tests; returns the
    number of failures."""
    y, _, x0 = pk.data(b, seed=1)
    failures = 0
    for stop in (None, dict(gtol=1e-4)):
        g, c = fit_gpu(x0, y, iters, np.float64, stop), fit_cpu(x0, y, iters, stop)
        err = float(np.max(np.abs(g.x - c.x) / (np.abs(c.x) + 1)))
        same = np.mean((g.status == c.status) & (g.nit == c.nit))
        ok = err <= 1e-6 and (same == 1.0 if stop is None else same >= 0.99)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} GPU vs CPU float64, B={b}, stop={stop}: max rel "
              f"diff of x {err:.2e}, same status and nit for {same:.1%}", flush=True)  # fmt: skip
        if stop is not None:
            print(f"     GPU: {g.message}; CPU: {c.message}", flush=True)
    return failures


def best_of(fn, *args, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(sizes, iters, csv_path):
    rows = []
    device = cuda.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else device

    def add(name, b, seconds, first=None):
        rows.append(dict(contender=name, problems=b, iterations=iters, seconds=f"{seconds:.4g}",
                         us_per_problem=f"{seconds / b * 1e6:.3g}",
                         first_call=f"{first:.3g}" if first else "", device=device))  # fmt: skip
        extra = f" (first call {first:.2f} s)" if first else ""
        print(f"{name:26s} B={b:>8d} {seconds:9.4f} s {seconds / b * 1e6:9.3f} µs/problem"
              f"{extra}", flush=True)  # fmt: skip

    jax_run = pk.make_jax(iters)
    for b in sizes:
        y, _, x0 = pk.data(b)
        for dtype in (np.float64, np.float32):
            t0 = time.perf_counter()
            fit_gpu(x0, y, iters, dtype)
            first = time.perf_counter() - t0
            seconds = best_of(fit_gpu, x0, y, iters, dtype)
            add(f"fastadam GPU {np.dtype(dtype).name}", b, seconds, first)
        if jax_run is not None:
            t0 = time.perf_counter()
            jax_run(x0, y)
            first = time.perf_counter() - t0
            add("jax.vmap GPU float64", b, best_of(jax_run, x0, y), first)
        if b <= 100_000:
            fit_cpu(x0, y, iters)
            add(f"fastadam CPU ({os.cpu_count()} cores)", b,
                best_of(fit_cpu, x0, y, iters, repeat=1))  # fmt: skip
    if csv_path:
        with open(csv_path, "w", newline="") as f:
            f.write(f"# machine: {device}, {os.cpu_count()} CPU cores\n")
            f.write(f"# date: {time.strftime('%Y-%m-%d')}, fastadam {fa.__version__}\n")
            f.write("# written by: python benchmarks/bench_batch_gpu.py --csv\n")
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


#: (threads per block, max registers per thread, order of the data on the device)
VARIANTS = [
    (64, None, "C"),
    (128, None, "C"),
    (64, None, "F"),
    (128, 96, "C"),
    (128, 64, "C"),
    (128, 64, "F"),
]


def variants(sizes, iters):
    """The kernel's launch shape, register cap and the data's order ("F": column-major, so
    that a warp's threads read consecutive addresses) against the default; the data is on
    the device in every row (no transfer timed). Returns the number of failures."""
    from fastadam.cuda import minimize as gpu

    saved, failures = (gpu.THREADS_PER_BLOCK, gpu.MAX_REGISTERS), 0
    try:
        for b in sizes:
            y, _, x0 = pk.data(b)
            for dtype in (np.float64, np.float32):
                ref = None
                for tpb, regs, order in VARIANTS:
                    gpu.THREADS_PER_BLOCK, gpu.MAX_REGISTERS = tpb, regs
                    host = y.astype(dtype)
                    yd = cuda.to_device(np.asfortranarray(host) if order == "F" else host)
                    t0 = time.perf_counter()
                    res = fit_gpu(x0, yd, iters, dtype)
                    first = time.perf_counter() - t0
                    seconds = best_of(fit_gpu, x0, yd, iters, dtype, repeat=2)
                    ref = res.x if ref is None else ref
                    same = bool(np.array_equal(res.x, ref))
                    failures += not same
                    print(f"variant {np.dtype(dtype).name} B={b:>8d} threads={tpb:3d} "
                          f"max_registers={regs!s:4s} data={order}  {seconds:8.4f} s  "
                          f"{seconds / b * 1e6:7.3f} µs/problem  first {first:5.2f} s  "
                          f"x {'bitwise =' if same else 'DIFFERS from'} the first row",
                          flush=True)  # fmt: skip
                t0 = time.perf_counter()
                fit_gpu(x0, yd, 1, dtype)
                print(
                    f"variant {np.dtype(dtype).name} B={b:>8d} one iteration (setup, "
                    f"transfers, results): {time.perf_counter() - t0:.4f} s",
                    flush=True,
                )
    finally:
        gpu.THREADS_PER_BLOCK, gpu.MAX_REGISTERS = saved
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--csv", default=None, help="write the table here")
    ap.add_argument("--check", action="store_true", help="correctness only")
    ap.add_argument("--sim", action="store_true", help="a tiny run on the CUDA simulator")
    ap.add_argument("--variants", action="store_true",
                    help="launch shapes, register caps and data orders (at --sizes)")  # fmt: skip
    args = ap.parse_args()
    if args.sim:
        from fastadam.cuda import minimize as gpu

        gpu.THREADS_PER_BLOCK = 2
        failures = check(4, 20)
    elif args.variants:
        failures = variants(args.sizes, args.iters)
    else:
        failures = check(1000, args.iters)
        if not args.check:
            measure(args.sizes, args.iters, args.csv)
    print(f"correctness: {failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
