"""``python -m fastadam``: fastadam at work on this machine, with nothing to download.

It fits two built-in problems -- a logistic regression on data it generates, and the 2-D
Rosenbrock function -- with Adam and RMSProp in two frameworks' conventions, shows progress
while it runs, and prints a summary table (iterations, final loss, distance to the optimum,
time) and a short table of kernel throughput on this machine (and on the GPU, when there is
one and this fastadam can use it). ``python -m fastadam --help`` lists the options.

The throughput table times ``opt.step(g)`` of the optimizers (the library's public API) with
:mod:`timeit`, against two references written here in plain numpy: a copy of the same
array (this machine's memory bandwidth for the simplest traffic) and the same update in
numpy. It needs nothing beyond fastadam's own dependencies.

``python -m fastadam warmup`` compiles the common variants into numba's disk cache instead
(:func:`fastadam.warmup`).
"""

import argparse
import math
import os
import platform
import sys
import time
import timeit
from dataclasses import dataclass

import numba
import numpy as np
from scipy.optimize import minimize as scipy_minimize
from scipy.special import expit

import fastadam as fa
from fastadam.algorithms import ALGORITHMS

METHODS = ("adam", "rmsprop")
PROBLEMS = ("logistic", "rosenbrock")
ADAM_CONVENTIONS = tuple(fa.conventions.ADAM_CONVENTIONS)
RMSPROP_CONVENTIONS = tuple(fa.conventions.RMSPROP_CONVENTIONS)
ALL_CONVENTIONS = tuple(dict.fromkeys(ADAM_CONVENTIONS + RMSPROP_CONVENTIONS))

#: Learning rates used by the demo, per problem and method (constant: no schedule).
LEARNING_RATES = {
    ("logistic", "adam"): 1e-2,
    ("logistic", "rmsprop"): 1e-3,
    ("rosenbrock", "adam"): 2e-2,
    ("rosenbrock", "rmsprop"): 2e-3,
}


# -- problems ------------------------------------------------------------------------------
@dataclass
class Problem:
    name: str
    description: str
    fun: object
    jac: object
    x0: np.ndarray
    f_opt: float
    maxiter: int


def logistic_problem(n_samples, n_features, seed, maxiter):
    """L2-regularised logistic regression on seeded synthetic data; its optimum by L-BFGS."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    w_true = 2.0 * rng.standard_normal(n_features) / np.sqrt(n_features)
    y = rng.random(n_samples) < expit(X @ w_true)
    s = np.where(y, 1.0, -1.0)
    lam = 1e-3

    def fun(w):
        return float(np.mean(np.logaddexp(0.0, -s * (X @ w))) + 0.5 * lam * (w @ w))

    def jac(w):
        return X.T @ (-s * expit(-s * (X @ w))) / n_samples + lam * w

    ref = scipy_minimize(fun, np.zeros(n_features), jac=jac, method="L-BFGS-B",
                         options=dict(gtol=1e-12, ftol=1e-15, maxiter=10_000))  # fmt: skip
    return Problem(
        "logistic",
        f"logistic regression, {n_samples:,} samples x {n_features} features",
        fun,
        jac,
        np.zeros(n_features),
        ref.fun,
        maxiter,
    )


def rosenbrock_problem(maxiter):
    """The 2-D Rosenbrock function from (-1.5, 2); minimum 0 at (1, 1)."""

    def fun(x):
        return float(100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2)

    def jac(x):
        a = x[1] - x[0] ** 2
        return np.array([-400.0 * x[0] * a - 2.0 * (1.0 - x[0]), 200.0 * a])

    return Problem("rosenbrock", "2-D Rosenbrock from (-1.5, 2)", fun, jac,
                   np.array([-1.5, 2.0]), 0.0, maxiter)  # fmt: skip


# -- progress ------------------------------------------------------------------------------
class Progress:
    """One status line per run: rewritten in place on a terminal, printed once otherwise."""

    def __init__(self, label, total, stream=sys.stdout):
        self.label, self.total, self.stream = label, total, stream
        self.tty = stream.isatty()
        self.last = 0.0
        self.t0 = time.perf_counter()
        if not self.tty:
            print(f"  {label} ...", file=stream, flush=True)

    def update(self, it, loss):
        now = time.perf_counter()
        if self.tty and now - self.last > 0.1:
            self.last = now
            bar = "#" * int(20 * it / self.total)
            self.stream.write(
                f"\r  {self.label} [{bar:<20s}] {it:>6d}/{self.total} loss {loss:.4e}"
            )
            self.stream.flush()

    def done(self, it, loss):
        dt = time.perf_counter() - self.t0
        text = f"  {self.label} done: {it} iterations, loss {loss:.4e}, {dt:.2f} s"
        if self.tty:
            self.stream.write("\r" + text + " " * 30 + "\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


# -- one run -------------------------------------------------------------------------------
def _optimizer(method, x, lr, convention):
    if method == "adam":
        return fa.Adam(x, lr=lr, convention=convention)
    return fa.RMSProp(x, lr=lr, convention=convention)


def run_one(problem, method, convention, lr, progress_every, label):
    """Minimize ``problem``; return (iterations, final loss, seconds).

    Uses :func:`fastadam.minimize` when this fastadam has it, else an optimizer object in a
    Python loop (the same update).
    """
    maxiter = problem.maxiter
    progress = Progress(label, maxiter)
    t0 = time.perf_counter()
    if hasattr(fa, "minimize"):
        count = [0]

        def callback(intermediate_result):
            count[0] += 1
            if count[0] % progress_every == 0:
                progress.update(count[0], float(intermediate_result.fun))

        res = fa.minimize(problem.fun, problem.x0.copy(), jac=problem.jac, method=method,
                          callback=callback,
                          options=dict(lr=lr, maxiter=maxiter, convention=convention))  # fmt: skip
        it, loss = int(res.nit), float(problem.fun(res.x))
    else:
        x = problem.x0.copy()
        opt = _optimizer(method, x, lr, convention)
        it = 0
        for it in range(1, maxiter + 1):  # noqa: B007
            opt.step(problem.jac(x))
            if it % progress_every == 0:
                progress.update(it, problem.fun(x))
        loss = problem.fun(x)
    seconds = time.perf_counter() - t0
    progress.done(it, loss)
    return it, loss, seconds


# -- tables --------------------------------------------------------------------------------
def format_table(headers, rows, align=None):
    """A plain-text table; ``align`` is a string of 'l'/'r' per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


#: Arrays an update reads plus writes per element: Adam reads p, g, m, v and writes p, m, v;
#: RMSProp (no momentum, not centered) reads p, g, v and writes p, v.
ARRAYS_MOVED = {"adam": 7, "rmsprop": 5}

#: Learning rates of the throughput table (PyTorch's defaults otherwise).
BENCH_LR = {"adam": 1e-3, "rmsprop": 1e-2}


def best_time(func, min_time=0.02, repeat=3):
    """Best seconds per call of ``func()`` over ``repeat`` batches of at least ``min_time``."""
    func()
    timer = timeit.Timer(func)
    number = 1
    while True:
        dt = timer.timeit(number)
        if dt >= min_time or number >= 1_000_000:
            break
        number = min(1_000_000, max(2 * number, int(1.2 * number * min_time / max(dt, 1e-9))))
    return min([dt, *timer.repeat(repeat - 1, number)]) / number


def numpy_adam_step(p, g, m, v, tmp, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """PyTorch's Adam in plain numpy, in place, with one preallocated scratch array ``tmp``:
    the best a numpy user can write (no temporaries)."""
    m *= beta1
    np.multiply(g, 1.0 - beta1, out=tmp)
    m += tmp
    v *= beta2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp *= 1.0 / math.sqrt(1.0 - beta2**t)
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= lr / (1.0 - beta1**t)
    p -= tmp


def numpy_rmsprop_step(p, g, v, tmp, lr=1e-2, decay=0.99, eps=1e-8):
    """PyTorch's RMSProp (no momentum, not centered) in plain numpy, in place, one scratch
    array ``tmp``."""
    v *= decay
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - decay
    v += tmp
    np.sqrt(v, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    p -= tmp


def _numpy_step(kernel, p, g):
    """A zero-argument callable: one numpy update of ``p`` (own state and scratch)."""
    v = np.zeros_like(p)
    tmp = np.empty_like(p)
    if kernel == "rmsprop":
        return lambda: numpy_rmsprop_step(p, g, v, tmp, lr=BENCH_LR[kernel])
    m = np.zeros_like(p)
    return lambda: numpy_adam_step(p, g, m, v, tmp, 10, lr=BENCH_LR[kernel])


def cpu_throughput(sizes, dtype, min_time):
    """Rows of the CPU throughput table: ``opt.step(g)`` on one array of each size.

    The optimizers use the parallel kernels from ``fastadam.kernels.PARALLEL_MIN_SIZE``
    elements on; there the table has a row with one numba thread and one with all of them.
    """
    rows = []
    rng = np.random.default_rng(0)
    threads = numba.get_num_threads()
    for kernel, make in (("adam", fa.Adam), ("rmsprop", fa.RMSProp)):
        for n in sizes:
            p = rng.standard_normal(n).astype(dtype)
            g = rng.standard_normal(n).astype(dtype)
            nbytes = ARRAYS_MOVED[kernel] * p.nbytes
            t_numpy = best_time(_numpy_step(kernel, p.copy(), g), min_time)
            dst = np.empty_like(p)
            # a copy reads one array and writes one: 2 * p.nbytes bytes
            copy_gbps = 2 * p.nbytes / best_time(lambda p=p, dst=dst: np.copyto(dst, p),
                                                  min_time) / 1e9  # fmt: skip
            opt = make(p, lr=BENCH_LR[kernel])
            if n < fa.kernels.PARALLEL_MIN_SIZE:
                modes = [("serial", None)]
            elif threads > 1:
                modes = [("parallel, 1 thread", 1), (f"parallel, {threads} threads", threads)]
            else:
                modes = [("parallel, 1 thread", 1)]
            for mode, n_threads in modes:
                if n_threads is not None:
                    numba.set_num_threads(n_threads)
                try:
                    t = best_time(lambda opt=opt, g=g: opt.step(g), min_time)
                finally:
                    numba.set_num_threads(threads)
                gbps = nbytes / t / 1e9
                rows.append(
                    [kernel, f"{n:,}", mode, f"{t * 1e6:,.1f}", f"{gbps:.1f}",
                     f"{100 * gbps / copy_gbps:.0f}%", f"{t_numpy / t:.1f}x"]
                )  # fmt: skip
    return rows


def gpu_status():
    """(cuda module or None, reason)."""
    if numba.config.ENABLE_CUDASIM:
        return None, "NUMBA_ENABLE_CUDASIM=1: the CUDA simulator is not a GPU"
    try:
        from numba import cuda
    except Exception as exc:
        return None, f"numba.cuda unavailable ({type(exc).__name__}); pip install 'fastadam[cuda]'"
    try:
        if not cuda.is_available():
            return None, "no CUDA GPU found"
    except Exception as exc:
        return None, f"CUDA unavailable ({exc})"
    return cuda, ""


def gpu_throughput(cuda, sizes, dtype):
    """Rows of the GPU table, or a reason why there is none."""
    rows = []
    rng = np.random.default_rng(0)
    for kernel, make in (("adam", fa.Adam), ("rmsprop", fa.RMSProp)):
        for n in sizes:
            p = cuda.to_device(rng.standard_normal(n).astype(dtype))
            g = cuda.to_device(rng.standard_normal(n).astype(dtype))
            try:
                opt = make(p, lr=1e-3)
            except (TypeError, ValueError) as exc:
                return None, f"this fastadam does not update device arrays yet ({exc})"

            def step(opt=opt, g=g):
                opt.step(g)
                cuda.synchronize()

            t = best_time(step)
            gbps = ARRAYS_MOVED[kernel] * n * np.dtype(dtype).itemsize / t / 1e9
            rows.append([kernel, f"{n:,}", f"{t * 1e6:,.1f}", f"{gbps:.0f}"])
    return rows, ""


# -- main ----------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastadam",
        description=(
            "Demonstrate fastadam on this machine: fit a logistic regression (on data it "
            "generates) and the 2-D Rosenbrock function with Adam and RMSProp under two "
            "frameworks' conventions, then measure the update kernels' throughput. Needs no "
            "data from outside."
        ),
        epilog=(
            "Conventions: Adam " + ", ".join(ADAM_CONVENTIONS) + "; RMSProp "
            + ", ".join(RMSPROP_CONVENTIONS) + ". A convention only one method has is skipped "
            "for the other. Kernels are compiled on the first run and cached on disk."
        ),
    )  # fmt: skip
    parser.add_argument("--problem", choices=PROBLEMS + ("all",), default="all",
                        help="which problem to minimize (default: all)")  # fmt: skip
    parser.add_argument("--method", choices=METHODS + ("all",), default="all",
                        help="optimizer (default: all)")  # fmt: skip
    parser.add_argument("--convention", nargs="+", choices=ALL_CONVENTIONS,
                        default=["pytorch", "keras"], metavar="NAME",
                        help="one or more conventions: " + ", ".join(ALL_CONVENTIONS)
                        + " (default: pytorch keras)")  # fmt: skip
    parser.add_argument("--size", type=int, default=20_000, metavar="N",
                        help="logistic regression samples (default: 20000)")  # fmt: skip
    parser.add_argument("--features", type=int, default=50, metavar="D",
                        help="logistic regression features (default: 50)")  # fmt: skip
    parser.add_argument(
        "--iters",
        type=int,
        default=None,
        metavar="N",
        help="iterations per run (default: 1000 logistic, 3000 Rosenbrock)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="kernel-throughput table on the CPU, the GPU, or both when a "
                        "GPU is there (default: auto)")  # fmt: skip
    parser.add_argument(
        "--bench-sizes",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="array sizes of the throughput table (default: 10^5 10^7)",
    )
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="dtype of the throughput table (default: float32)")  # fmt: skip
    parser.add_argument("--no-bench", action="store_true", help="skip the throughput table")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny problem, few iterations and small arrays (a smoke test)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: 0)")
    args = parser.parse_args(argv)
    for name in ("size", "features"):
        if getattr(args, name) < 2:
            parser.error(f"--{name} must be at least 2")
    if args.iters is not None and args.iters < 1:
        parser.error("--iters must be at least 1")
    if args.bench_sizes is not None and min(args.bench_sizes) < 1:
        parser.error("--bench-sizes must be positive")
    if args.quick:
        args.size, args.features = min(args.size, 500), min(args.features, 5)
        args.iters = args.iters or 50
        args.bench_sizes = args.bench_sizes or [10_000, 2**17]
    args.bench_sizes = args.bench_sizes or [10**5, 10**7]
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["warmup"]:
        return warmup_main(argv[1:])
    args = parse_args(argv)
    cuda, gpu_reason = (None, "not requested") if args.device == "cpu" else gpu_status()
    if args.device == "gpu" and cuda is None:
        print(f"--device gpu: {gpu_reason}", file=sys.stderr)
        return 2

    print(f"fastadam {fa.__version__} (numba {numba.__version__}, numpy {np.__version__}) "
          f"on {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
          f"{numba.get_num_threads()} numba threads")  # fmt: skip
    print("minimizing with " + ("fastadam.minimize" if hasattr(fa, "minimize")
                                else "optimizer objects in a Python loop"))  # fmt: skip
    t0 = time.perf_counter()
    for make in (fa.Adam, fa.RMSProp):  # compile on a first run, load from the cache after
        make(np.zeros(2)).step(np.zeros(2))
    print(f"kernels ready in {time.perf_counter() - t0:.1f} s (compiled on the first run, "
          "then loaded from numba's disk cache)\n")  # fmt: skip

    problems = []
    if args.problem in ("logistic", "all"):
        problems.append(logistic_problem(args.size, args.features, args.seed, args.iters or 1000))
    if args.problem in ("rosenbrock", "all"):
        problems.append(rosenbrock_problem(args.iters or 3000))
    methods = METHODS if args.method == "all" else (args.method,)
    valid = {"adam": ADAM_CONVENTIONS, "rmsprop": RMSPROP_CONVENTIONS}
    runs = [(p, m, c) for p in problems for m in methods for c in args.convention
            if c in valid[m]]  # fmt: skip
    if not runs:
        print("no run: the chosen conventions do not exist for the chosen method", file=sys.stderr)
        return 2
    for p in problems:
        print(f"{p.name}: {p.description}; optimum {p.f_opt:.6g}")

    rows = []
    for k, (problem, method, convention) in enumerate(runs, 1):
        lr = LEARNING_RATES[problem.name, method]
        label = f"[{k}/{len(runs)}] {problem.name} {method} ({convention}, lr={lr:g})"
        it, loss, seconds = run_one(problem, method, convention, lr,
                                    max(1, problem.maxiter // 50), label)  # fmt: skip
        rows.append(
            [problem.name, method, convention, it, f"{loss:.6g}", f"{loss - problem.f_opt:.2e}",
             f"{seconds:.3f}", f"{1e6 * seconds / max(it, 1):.1f}"]
        )  # fmt: skip
    print("\nSummary (constant learning rate; loss - optimum: how far each run got)")
    print(format_table(
        ["problem", "method", "convention", "iterations", "final loss", "loss - optimum",
         "time (s)", "us/iter"],
        rows, "lllrrrrr",
    ))  # fmt: skip

    if args.no_bench:
        return 0
    min_time = 0.005 if args.quick else 0.02
    if args.device in ("auto", "cpu"):
        print(
            f"\nCPU kernel throughput, {args.dtype}: opt.step(g) on one array, an in-place "
            "update of the whole array (GB/s counts the bytes read + written: 7 arrays per "
            "element for Adam, 5 for RMSProp)"
        )
        print(format_table(
            ["kernel", "elements", "mode", "us/step", "GB/s", "of copy", "vs numpy"],
            cpu_throughput(args.bench_sizes, args.dtype, min_time), "lrlrrrr",
        ))  # fmt: skip
        print(
            "of copy: the step's GB/s over those of np.copyto (one thread) on an array of the "
            "same size (this machine's bandwidth for the simplest traffic); vs numpy: the same "
            "update in plain numpy, in place, its time over the step's; the optimizers run the "
            f"parallel kernels from {fa.kernels.PARALLEL_MIN_SIZE:,} elements on"
        )
    if cuda is not None:
        rows, reason = gpu_throughput(cuda, [2**20, 2**26], args.dtype)
        if rows:
            print(f"\nGPU optimizer step, {args.dtype}, device arrays")
            print(format_table(["kernel", "elements", "us/step", "GB/s"], rows, "lrrr"))
        else:
            print(f"\nGPU: {reason}")
    elif args.device == "auto":
        print(f"\nGPU: none used ({gpu_reason})")
    return 0


def warmup_main(argv):
    """``python -m fastadam warmup``: fill numba's disk cache (see :func:`fastadam.warmup`)."""
    parser = argparse.ArgumentParser(
        prog="python -m fastadam warmup",
        description=(
            "Compile fastadam's common variants into numba's disk cache (every algorithm's "
            "optimizer step and minimize iteration, float32 and float64), so that a first step "
            "or fit only loads them. On a cluster, run it once per machine before the workers "
            "start (concurrent first compiles into one cache can crash: numba issue 4807)."
        ),
    )
    parser.add_argument("--dtype", choices=("float32", "float64"), nargs="+",
                        default=["float32", "float64"], help="dtypes to prepare")  # fmt: skip
    parser.add_argument("--algorithm", choices=list(ALGORITHMS), nargs="+", default=None,
                        help="algorithms to prepare (default: all)")  # fmt: skip
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    log = fa.warmup(dtypes=tuple(args.dtype), verbose=True, algorithms=args.algorithm)
    print(f"{len(log)} variants ready in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
