"""The Adam loop's time over its memory skeleton's (same reads and writes, trivial
arithmetic), interleaved in one process, for the checkout at ROOT: ``new`` for the current
API, ``old`` for fastadam 0.1 (commit 197e4e4, for example in a ``git worktree``).

    python benchmarks/bench_loop_ratio.py /path/to/checkout new|old
"""

import functools
import sys
import timeit

from numba import njit, prange


def skeleton(p, g, m, v):
    """The reads and writes of an Adam step, with trivial arithmetic (prange: compiled once
    serial, once parallel)."""
    for i in prange(p.size):
        a = m[i] + g[i]
        b = v[i] + g[i]
        m[i] = a
        v[i] = b
        p[i] = p[i] - a * b


def adam_loops(which):
    """The serial and parallel Adam loops of the checkout, as ``f(p, g, m, v)``."""
    from fastadam import kernels

    if which == "old":
        from fastadam import rules

        coef = rules.adam_coefficients(
            5, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0, False, False, True, False, False, False
        )
        serial, parallel = kernels.adam, kernels.adam_parallel
    else:
        from fastadam.cpu.kernels import COMPILED

        coef = kernels.adam_coefficients(5, lr=1e-3)
        serial, parallel = COMPILED["adam"].serial, COMPILED["adam"].parallel
    return (
        lambda p, g, m, v: serial(p, g, m, v, v, coef),
        lambda p, g, m, v: parallel(p, g, m, v, v, coef),
    )


def main(root, which):
    sys.path.insert(0, root)
    import numpy as np

    import fastadam

    assert fastadam.__file__.startswith(root), fastadam.__file__
    skel_serial = njit(error_model="numpy")(skeleton)
    skel_parallel = njit(error_model="numpy", parallel=True)(skeleton)
    serial, parallel = adam_loops(which)
    print(f"# {which}: loop time / skeleton time, interleaved, minimum over rounds")
    for dt in (np.float32, np.float64):
        for n, mode in ((10**3, "serial"), (10**4, "serial"), (10**5, "serial"),
                        (10**6, "serial"), (10**5, "parallel"), (10**6, "parallel")):  # fmt: skip
            arrays = [np.ones(n, dt) for _ in range(4)]
            k, s = (serial, skel_serial) if mode == "serial" else (parallel, skel_parallel)
            fk, fs = functools.partial(k, *arrays), functools.partial(s, *arrays)
            fk(), fs()
            reps = max(20, int(2e6 / n))
            tk, ts = [], []
            for _ in range(7):  # alternately, so that both see the same machine
                tk.append(min(timeit.repeat(fk, number=reps, repeat=3)) / reps)
                ts.append(min(timeit.repeat(fs, number=reps, repeat=3)) / reps)
            tk, ts = min(tk), min(ts)
            print(f"{np.dtype(dt).name:8s} {n:>8d} {mode:8s} loop {tk * 1e6:9.2f} us  "
                  f"skeleton {ts * 1e6:9.2f} us  ratio {tk / ts:.3f}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
