""":func:`minimize_batch` over a dask array of problems: each chunk of rows is one task that
runs :func:`fastadam.minimize_batch`, so every problem's iterates are those of
``fastadam.minimize_batch`` (and of ``fastadam.minimize`` on that problem alone), bit for
bit, with any scheduler.
"""

import contextlib
import numbers

import dask
import dask.array as da
import numba
import numpy as np
from scipy.optimize import OptimizeResult

from ..optimize import api, results
from ..optimize import options as options_

__all__ = ["compute", "minimize_batch"]

#: The result fields with one row of n values per problem; the others have one value.
_ROWS = ("x", "jac", "best_x")


def minimize_batch(
    fun, x0, args=(), method="adam", jac=None, bounds=None, callback=None, tol=None,
    options=None, threads_per_task=1,
):  # fmt: skip
    """:func:`fastadam.minimize_batch` with ``x0`` a dask array of shape (B, n), chunked
    along B only: one task per chunk of problems, lazy until computed.

    Parameters
    ----------
    fun, method, jac, bounds, tol, options
        As for :func:`fastadam.minimize_batch` (``fun`` an ``@njit`` function of one
        problem runs compiled; a Python function of the rows, vectorized). Per-problem
        hyperparameters (arrays of shape (B,), numpy or dask) are split like ``x0``.
    x0 : dask.array.Array, shape (B, n)
        One row per problem, in chunks of rows (``x0.chunks[1]`` must be one chunk).
    args : tuple
        :func:`fastadam.minimize_batch`'s broadcasting rule. A dask array with leading axis
        B must be chunked like ``x0`` along it (and not along its other axes); numpy arrays
        with leading axis B are split like ``x0``; anything else is shared by every task.
    callback : None
        Not supported (the problems run in tasks, perhaps on other machines).
    threads_per_task : int
        numba threads a task may use (default 1: dask runs one task per worker thread, so
        the cores are already busy; a worker with one thread runs its chunk on one thread).

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        The array fields of :func:`fastadam.minimize_batch` as dask arrays chunked like
        ``x0`` (``x``, ``jac``, ``best_x``, ``fun``, ``nit``, ``status``, ``success``...),
        plus ``method``. Compute the fields you need in one call (``dask.compute(res.x,
        res.fun)``), or all of them with :func:`compute`: each call of ``compute``
        runs the fits again.

    Before anything is scheduled, the arguments are checked and one problem is fitted on
    this machine for one iteration: mistakes raise here, and the numba cache that
    local workers read is filled (concurrent first compiles into one cache can crash,
    numba issue 4807). Workers on other machines: run ``python -m fastadam warmup`` there
    first, and give the objective ``@njit(cache=True)``.
    """
    if callback is not None:
        raise ValueError("fastadam.dask.minimize_batch takes no callback (the fits run in tasks)")
    x0 = _check_x0(x0)
    b, n = x0.shape
    chunks = x0.chunks[0]
    if not isinstance(args, tuple):
        args = (args,)
    parts = [_split_arg(a, k, b, chunks) for k, a in enumerate(args)]
    opts, opt_parts = _split_options(options, b, chunks)
    threads = _threads(threads_per_task)
    first = _probe(fun, x0, parts, method, jac, bounds, tol, opts, b)
    tasks = []
    for i, rows in enumerate(chunks):
        block_args = tuple(p[i] if kind == "rows" else p for kind, p in parts)
        block_opts = {k: v[i] for k, v in opt_parts.items()}
        x_block = x0.blocks[i]
        tasks.append(
            (
                dask.delayed(_fit_block, pure=True)(
                    fun,
                    x_block,
                    block_args,
                    method,
                    jac,
                    bounds,
                    tol,
                    {**opts, **block_opts},
                    threads,
                ),
                rows,
            )  # fmt: skip
        )
    out = OptimizeResult(method=method)
    for name, value in first.items():
        if not isinstance(value, np.ndarray):
            continue
        pieces = [
            da.from_delayed(dask.delayed(_field)(task, name),
                            shape=(rows, n) if name in _ROWS else (rows,), dtype=value.dtype)
            for task, rows in tasks
        ]  # fmt: skip
        out[name] = da.concatenate(pieces)
    return out


def compute(res, **kwargs):
    """Compute every field of a lazy result of :func:`minimize_batch` in one
    ``dask.compute`` (so the fits run once).

    Parameters
    ----------
    res : scipy.optimize.OptimizeResult
        What :func:`minimize_batch` returned (its fields dask arrays).
    **kwargs
        Passed to :func:`dask.compute` (``scheduler=``, ...).

    Returns
    -------
    scipy.optimize.OptimizeResult
        The fields as numpy arrays, with ``message`` and ``messages`` as
        :func:`fastadam.minimize_batch` gives them.

    Raises
    ------
    TypeError
        ``res`` is not such a result.
    """
    if not isinstance(res, OptimizeResult) or not isinstance(res.get("status"), da.Array):
        raise TypeError(
            "res must be the result of fastadam.dask.minimize_batch (an OptimizeResult of "
            f"dask arrays), got {type(res).__name__}"
        )
    names = [k for k, v in res.items() if isinstance(v, da.Array)]
    values = dask.compute(*(res[k] for k in names), **kwargs)
    out = OptimizeResult({k: v for k, v in res.items() if k not in names})
    out.update(zip(names, values, strict=True))
    out.message, out.messages = results.summary(out.status, out.success)
    return out


def _check_x0(x0):
    if not isinstance(x0, da.Array):
        raise TypeError(
            f"x0 must be a dask array, got {type(x0).__name__}; for a numpy array use "
            "fastadam.minimize_batch"
        )
    if x0.ndim != 2:
        raise ValueError(f"x0 must be 2-D (problems, variables), got shape {x0.shape}")
    if len(x0.chunks[1]) != 1:
        raise ValueError(
            f"x0 is chunked along its variables ({x0.chunks[1]}); chunk it along the "
            "problems only: x0.rechunk({1: -1})"
        )
    return x0


def _split_arg(a, k, b, chunks):
    """``("rows", per-chunk pieces)`` for an argument with one row per problem, else
    ``("shared", a)``."""
    if not isinstance(a, (np.ndarray, da.Array)) or not options_.per_problem(a.shape, k, b):
        return "shared", a
    if isinstance(a, da.Array):
        if a.chunks[0] != chunks:
            raise ValueError(
                f"args[{k}] is chunked {a.chunks[0]} along its first axis but x0 is chunked "
                f"{chunks}: chunk them alike (args[{k}].rechunk({{0: x0.chunks[0]}}))"
            )
        if any(len(c) != 1 for c in a.chunks[1:]):
            raise ValueError(
                f"args[{k}] is chunked along an axis after the first ({a.chunks[1:]}); chunk "
                "it along the problems only"
            )
        return "rows", [a.blocks[i] for i in range(len(chunks))]
    edges = np.cumsum((0,) + chunks)
    return "rows", [a[lo:hi] for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def _per_problem(value, b):
    """``value`` as a numpy array of shape (B,) when it gives one value per problem."""
    if isinstance(value, da.Array):
        value = value.compute()
    if isinstance(value, (np.ndarray, list)) and np.ndim(value) == 1 and len(value) == b:
        return np.asarray(value)
    return None


def _split_options(options, b, chunks):
    """``(options with numpy arrays, {name: per-chunk values})``: the per-problem
    hyperparameters (arrays of shape (B,), ``betas``' values too) split like ``x0``."""
    opts = dict(options or {})
    edges = np.cumsum((0,) + chunks)
    spans = list(zip(edges[:-1], edges[1:], strict=True))
    split = {}
    for name, value in opts.items():
        if name == "betas" and isinstance(value, (tuple, list)) and len(value) == 2:
            pair = [_per_problem(v, b) for v in value]
            if any(p is not None for p in pair):
                full = [p if p is not None else v for p, v in zip(pair, value, strict=True)]
                opts[name] = tuple(full)
                split[name] = [
                    tuple(p[lo:hi] if p is not None else v for p, v in zip(pair, value,
                                                                            strict=True))
                    for lo, hi in spans
                ]  # fmt: skip
            continue
        array = _per_problem(value, b)
        if array is not None:
            opts[name] = array
            split[name] = [array[lo:hi] for lo, hi in spans]
    return opts, split


def _threads(threads_per_task):
    if (
        isinstance(threads_per_task, bool)
        or not isinstance(threads_per_task, numbers.Integral)
        or threads_per_task < 1
    ):
        raise ValueError(f"threads_per_task must be an integer >= 1, got {threads_per_task!r}")
    return int(threads_per_task)


def _probe(fun, x0, parts, method, jac, bounds, tol, opts, b):
    """One problem fitted here for one iteration: the arguments checked as
    :func:`fastadam.minimize_batch` checks them (the options for all B problems), the
    variant the tasks run compiled into the cache, and the result's fields and dtypes."""
    options_.resolve(method, opts, tol, batch=b)  # every per-problem value, checked here
    rows = min(2, x0.chunks[0][0])  # two problems of the first chunk: the variant it runs
    x = x0[:rows].compute()
    # (the rows sliced before computing: not the whole first chunk of a dask argument)
    args = tuple(_local(p[0][:rows]) if kind == "rows" else _local(p) for kind, p in parts)
    small = {k: (v[:rows] if isinstance(v, np.ndarray) else v) for k, v in opts.items()}
    if isinstance(small.get("betas"), tuple):
        small["betas"] = tuple(v[:rows] if isinstance(v, np.ndarray) else v
                               for v in small["betas"])  # fmt: skip
    small["maxiter"] = 1
    return _fit(fun, x, args, method, jac, bounds, tol, small)


def _local(a):
    return a.compute() if isinstance(a, da.Array) else a


def _fit(fun, x, args, method, jac, bounds, tol, options):
    res = api.minimize_batch(fun, x, args=args, method=method, jac=jac, bounds=bounds,
                             tol=tol, options=options)  # fmt: skip
    return {k: v for k, v in res.items() if isinstance(v, np.ndarray)}


def _fit_block(fun, x, args, method, jac, bounds, tol, options, threads):
    """One task: :func:`fastadam.minimize_batch` on a chunk of problems, on at most
    ``threads`` numba threads."""
    with numba_threads(threads):
        return _fit(fun, np.asarray(x), args, method, jac, bounds, tol, options)


@contextlib.contextmanager
def numba_threads(threads):
    """Run the body on at most ``threads`` numba threads (numba's count is per thread of
    the caller: a task's setting does not reach the worker's other tasks)."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _field(fields, name):
    return fields[name]
