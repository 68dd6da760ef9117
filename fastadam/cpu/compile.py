"""How fastadam compiles for the CPU: one set of numba options, and a distinct compiled copy
(its own on-disk cache entry) of a shared Python function per algorithm."""

import types

from numba import njit, prange

from .._cache import CACHE

#: ``error_model="numpy"``: IEEE division (no zero-division check, which would prevent
#: vectorization); no ``fastmath``: NaN and Inf propagate exactly as in every framework.
OPTIONS = dict(cache=CACHE, error_model="numpy", nogil=True)


def _bound(func, name, globals_):
    """A copy of ``func`` named ``name`` whose body looks up ``globals_`` first."""
    namespace = dict(func.__globals__, prange=prange, **globals_)
    copy = types.FunctionType(
        func.__code__, namespace, name or func.__name__, func.__defaults__, func.__closure__
    )
    copy.__qualname__ = name or func.__qualname__
    copy.__doc__ = func.__doc__
    copy.__module__ = func.__module__
    return copy


def jit(func, parallel=False, name=None, cache=True, inline="never", **globals_):
    """Compile ``func`` with :data:`OPTIONS`. ``name`` makes a distinct copy, and
    ``globals_`` the names its body looks up (the algorithm's compiled rule, for example),
    so one loop written once serves every algorithm. ``cache=False`` keeps it off the disk
    cache; ``inline="always"`` inlines it into its callers (numba's IR inlining: no call,
    and no reference counting of the arrays passed, which costs more than a small loop)."""
    if name is not None or globals_:
        func = _bound(func, name, globals_)
    options = dict(OPTIONS, cache=OPTIONS["cache"] and cache)
    return njit(parallel=parallel, inline=inline, **options)(func)
