"""Measurement helpers shared by the demo, the asv suite and the docs figures.

Not public API. It holds:

- the *memory skeletons*: compiled kernels with exactly the reads and writes of an update
  (Adam, AdamW: read p, g, m, v and write p, m, v; RMSProp without momentum or centering:
  read p, g, v and write p, v) and trivial arithmetic, serial and parallel. A kernel's
  achieved bandwidth divided by its skeleton's says how close it is to the memory bound;
- plain-numpy updates with preallocated scratch (the best a numpy user can write), as a
  baseline;
- :func:`bytes_per_step` and :func:`best_time`, and :func:`kernel_case`, which builds the
  seeded arrays and a zero-argument callable for one (kernel, dtype, size, mode) case.
"""

import math
import time
import types

import numpy as np
from numba import njit, prange

from . import kernels, rules

__all__ = [
    "KERNELS",
    "ARRAYS_READ_WRITTEN",
    "adam_skeleton",
    "adam_skeleton_parallel",
    "rmsprop_skeleton",
    "rmsprop_skeleton_parallel",
    "numpy_adam_step",
    "numpy_rmsprop_step",
    "bytes_per_step",
    "best_time",
    "kernel_case",
]

_OPTIONS = dict(cache=True, error_model="numpy", nogil=True)

#: The update kernels the helpers know, and the skeleton whose traffic each one has.
KERNELS = ("adam", "adamw", "rmsprop")

#: (arrays read, arrays written) per element, for each kernel and skeleton.
ARRAYS_READ_WRITTEN = {"adam": (4, 3), "adamw": (4, 3), "rmsprop": (3, 2)}


def _adam_traffic(p, g, m, v, a):
    """Read p, g, m, v and write p, m, v -- Adam's traffic -- with two multiply-adds."""
    n = p.size
    p = p.reshape(n)
    g = g.reshape(n)
    m = m.reshape(n)
    v = v.reshape(n)
    for i in prange(n):
        gi = g[i]
        mi = a * m[i] + gi
        vi = a * v[i] + gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - a * (mi + vi)


def _rmsprop_traffic(p, g, v, a):
    """Read p, g, v and write p, v -- plain RMSProp's traffic -- with trivial arithmetic."""
    n = p.size
    p = p.reshape(n)
    g = g.reshape(n)
    v = v.reshape(n)
    for i in prange(n):
        gi = g[i]
        vi = a * v[i] + gi
        v[i] = vi
        p[i] = p[i] - a * vi


def _jit(func, parallel, name):
    """Compile a renamed copy of ``func`` (its own on-disk cache entry)."""
    func = types.FunctionType(func.__code__, func.__globals__, name)
    func.__qualname__ = name
    return njit(parallel=parallel, **_OPTIONS)(func)


adam_skeleton = _jit(_adam_traffic, False, "adam_skeleton")
adam_skeleton_parallel = _jit(_adam_traffic, True, "adam_skeleton_parallel")
rmsprop_skeleton = _jit(_rmsprop_traffic, False, "rmsprop_skeleton")
rmsprop_skeleton_parallel = _jit(_rmsprop_traffic, True, "rmsprop_skeleton_parallel")


def numpy_adam_step(p, g, m, v, tmp, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """PyTorch-convention Adam in plain numpy, in place, with one preallocated scratch array.

    ``tmp`` has the shape and dtype of ``p``. No temporaries are allocated.
    """
    bc1 = 1.0 - beta1**t
    bc2 = 1.0 - beta2**t
    m *= beta1
    np.multiply(g, 1.0 - beta1, out=tmp)
    m += tmp
    v *= beta2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp *= 1.0 / math.sqrt(bc2)
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= lr / bc1
    p -= tmp


def numpy_rmsprop_step(p, g, v, tmp, lr=1e-2, decay=0.99, eps=1e-8):
    """PyTorch-convention RMSProp (no momentum) in plain numpy, in place, one scratch array."""
    v *= decay
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - decay
    v += tmp
    np.sqrt(v, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    p -= tmp


def bytes_per_step(kernel, n, dtype):
    """Bytes an update of ``n`` elements must move: arrays read plus arrays written."""
    reads, writes = ARRAYS_READ_WRITTEN[kernel]
    return (reads + writes) * n * np.dtype(dtype).itemsize


def best_time(func, min_time=0.02, repeat=3, max_number=10_000):
    """Best seconds per call of ``func()`` over ``repeat`` batches of at least ``min_time``."""
    func()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            func()
        dt = time.perf_counter() - t0
        if dt >= min_time or number >= max_number:
            break
        number = min(max_number, max(number * 2, int(number * min_time / max(dt, 1e-9))))
    best = dt / number
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _adam_coef(t, decoupled):
    return rules.adam_coefficients(
        t, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1e-2 if decoupled else 0.0, decoupled, False, True,
        False, False, False,
    )  # fmt: skip


def kernel_case(kernel, dtype, n, mode, impl="fastadam", seed=0):
    """Seeded arrays and a zero-argument callable that applies one update in place.

    Parameters
    ----------
    kernel : {'adam', 'adamw', 'rmsprop'}
        Which update.
    dtype : str or dtype
        float32 or float64.
    n : int
        Number of elements.
    mode : {'serial', 'parallel'}
        Serial or parallel kernel (ignored by ``impl='numpy'``).
    impl : {'fastadam', 'skeleton', 'numpy'}
        The update kernel, its memory skeleton, or the plain-numpy baseline (AdamW's numpy
        baseline is Adam's: the decay adds no traffic).
    seed : int
        Seed of the data.

    Returns
    -------
    step : callable
        ``step()`` applies one update; it is already compiled (called once).
    arrays : tuple of ndarray
        The arrays it updates (keep them alive).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if mode not in ("serial", "parallel"):
        raise ValueError(f"mode must be 'serial' or 'parallel', got {mode!r}")
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    p = rng.random(n, dtype=dtype)
    g = rng.random(n, dtype=dtype)
    g -= dtype.type(0.5)
    v = np.full(n, 0.5, dtype=dtype)
    parallel = mode == "parallel"
    if kernel == "rmsprop":
        arrays = (p, g, v)
        if impl == "fastadam":
            k = kernels.rmsprop_parallel if parallel else kernels.rmsprop
            coef = rules.rmsprop_coefficients(
                1, 1e-2, 0.99, 1e-8, 0.0, 0.0, False, False, False, False, False, False, False
            )

            def step():
                k(p, g, v, v, v, coef)

        elif impl == "skeleton":
            k = rmsprop_skeleton_parallel if parallel else rmsprop_skeleton
            a = dtype.type(0.5)

            def step():
                k(p, g, v, a)

        elif impl == "numpy":
            tmp = np.empty_like(p)

            def step():
                numpy_rmsprop_step(p, g, v, tmp)

        else:
            raise ValueError(f"impl must be 'fastadam', 'skeleton' or 'numpy', got {impl!r}")
    else:
        m = rng.random(n, dtype=dtype)
        arrays = (p, g, m, v)
        if impl == "fastadam":
            k = kernels.adam_parallel if parallel else kernels.adam
            coef = _adam_coef(10, kernel == "adamw")

            def step():
                k(p, g, m, v, v, coef)

        elif impl == "skeleton":
            k = adam_skeleton_parallel if parallel else adam_skeleton
            a = dtype.type(0.5)

            def step():
                k(p, g, m, v, a)

        elif impl == "numpy":
            tmp = np.empty_like(p)

            def step():
                numpy_adam_step(p, g, m, v, tmp, 10)

        else:
            raise ValueError(f"impl must be 'fastadam', 'skeleton' or 'numpy', got {impl!r}")
    step()
    return step, arrays
