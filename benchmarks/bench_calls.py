"""Per-call cost of the serial and parallel loops at small sizes, and ``opt.step`` against
the compiled call it makes; interleaved rounds in one process, minimum over rounds.

    python benchmarks/bench_calls.py
"""

import datetime
import functools
import platform
import timeit

import numba
import numpy as np

import fastadam as fa
from fastadam import kernels
from fastadam.cpu.kernels import COMPILED


def best(f, n):
    """Microseconds per call of ``f``: the minimum over three timings of ``n`` calls."""
    return min(timeit.repeat(f, number=n, repeat=3)) / n * 1e6


def interleaved(f, g, n, rounds):
    """The times of ``f`` and ``g`` over ``rounds`` rounds, timed alternately: their
    minimums, and the median of the rounds' differences (this machine's speed drifts from
    minute to minute by up to 1.5 times; a round's two timings see the same speed)."""
    a, b = [], []
    for _ in range(rounds):
        a.append(best(f, n))
        b.append(best(g, n))
    return min(a), min(b), float(np.median(np.subtract(a, b)))


def loops():
    c = kernels.adam_coefficients(5, lr=1e-3)
    serial, parallel = COMPILED["adam"].serial, COMPILED["adam"].parallel
    print("| elements | serial loop (us) | parallel loop (us) |")
    for n in (10, 1000, 10_000, 65_536, 100_000):
        x, g, m, v = (np.ones(n, np.float32) for _ in range(4))
        fs = functools.partial(serial, x, g, m, v, v, c)
        fp = functools.partial(parallel, x, g, m, v, v, c)
        fs(), fp()
        ts, tp, _ = interleaved(fs, fp, max(50, int(3e5 / max(n, 1000))), 7)
        print(f"| {n:,} | {ts:.2f} | {tp:.2f} |")


def step_overhead():
    print("| elements (float32) | opt.step (us) | its compiled call (us) | difference (us) "
          "| median difference of rounds (us) |")  # fmt: skip
    for n in (1000, 100_000):
        x, g = np.ones(n, np.float32), np.ones(n, np.float32)
        opt = fa.Adam(x, lr=1e-3)
        opt.step(g)
        group = opt._groups[0]
        launch = group.launches[0]
        args = group.arguments(opt.algorithm, 1e-3)
        step = COMPILED["adam"].step_serial if n < kernels.PARALLEL_MIN_SIZE else (
            COMPILED["adam"].step)  # fmt: skip
        call = functools.partial(step, launch.arrays[0], (g,), *launch.arrays[1:], 5, args,
                                 None)  # fmt: skip
        to, tk, diff = interleaved(functools.partial(opt.step, g), call,
                                   500 if n <= 1000 else 50, 60)  # fmt: skip
        print(f"| {n:,} | {to:.2f} | {tk:.2f} | {to - tk:.2f} | {diff:.2f} |")


if __name__ == "__main__":
    print(f"# {datetime.date.today()} {platform.machine()}, {numba.get_num_threads()} numba "
          f"threads, numba {numba.__version__}")  # fmt: skip
    loops()
    print()
    step_overhead()
