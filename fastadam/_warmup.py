"""``fastadam.warmup()`` / ``python -m fastadam warmup``: compile the common variants into
numba's on-disk cache, so that a user's first step or first fit only loads them.

What it fills: for every algorithm and float32/float64, the optimizers' step (serial, and
parallel for arrays from ``PARALLEL_MIN_SIZE`` elements on) and ``minimize``'s iteration
on the Python path (one small problem, one large, a batch); and the compiled loop of
``minimize`` for objectives with the signature ``fun(x) -> float``, ``jac(x) -> array`` (the
compiled loop is cached per signature of the user's functions: other signatures compile on
their first use).

On a cluster, run it once on every machine (``python -m fastadam warmup``, or with Dask
``client.run(fastadam.warmup)``) before the tasks start: the cache is then read, never
written, by concurrent workers (numba does not protect one cache from concurrent first
compiles: numba issue 4807).
"""

import time

import numpy as np

__all__ = ["warmup"]


def _timed(log, what, func):
    t0 = time.perf_counter()
    func()
    log.append((what, time.perf_counter() - t0))


def warmup(dtypes=("float32", "float64"), verbose=False, algorithms=None):
    """Compile (or load) the common variants; return ``[(what, seconds), ...]``.

    Parameters
    ----------
    dtypes : sequence of {'float32', 'float64'}
        The parameter dtypes to prepare.
    verbose : bool
        Print each item as it is done.
    algorithms : sequence of str, optional
        The algorithms to prepare (names in :data:`fastadam.algorithms.ALGORITHMS`); all of
        them by default.
    """
    import fastadam as fa
    from fastadam.cpu.kernels import PARALLEL_MIN_SIZE
    from fastadam.optimize import engine

    from .algorithms import ALGORITHMS

    names = list(ALGORITHMS) if algorithms is None else list(algorithms)
    unknown = [n for n in names if n not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithms {unknown}; the algorithms are {list(ALGORITHMS)}")
    log = []
    for name in names:
        cls = getattr(fa, ALGORITHMS[name].title)
        for dtype in dtypes:
            for n, mode in ((4, "serial"), (PARALLEL_MIN_SIZE, "parallel")):
                p = np.zeros(n, dtype=dtype)
                _timed(log, f"{name} step, {dtype}, {mode}",
                       lambda p=p, cls=cls: cls(p).step(np.ones_like(p)))  # fmt: skip
            for b, n in ((1, 4), (1, PARALLEL_MIN_SIZE), (4, 4)):
                x0 = np.zeros((b, n) if b > 1 else n, dtype=dtype)
                way = engine.variant(b, n)
                run = fa.minimize_batch if b > 1 else fa.minimize
                _timed(log, f"{name} minimize, {dtype}, {way}", lambda run=run, x0=x0, name=name:
                       run(_fun_rows if x0.ndim > 1 else _fun, x0, jac=True, method=name,
                           options=dict(maxiter=2)))  # fmt: skip
    _timed(log, "compiled minimize loop, fun(x) float64", _compiled_loop)
    if verbose:
        for what, seconds in log:
            print(f"{seconds:8.2f} s  {what}")
    return log


def _fun(x):
    return float(np.dot(x, x)), 2 * x


def _fun_rows(x):
    return np.sum(x * x, axis=1), 2 * x


def _compiled_loop():
    import fastadam as fa

    from ._njit_samples import jac, quadratic

    fa.minimize(quadratic, np.zeros(3), jac=jac, options=dict(maxiter=2))
