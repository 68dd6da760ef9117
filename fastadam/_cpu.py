"""The CPU backend of the optimizers: numpy arrays, updated by :mod:`fastadam.kernels`.

A backend is the small set of operations an optimizer needs on its arrays; the GPU backend
(:mod:`fastadam._gpu`) offers the same names for CUDA arrays.
"""

import numpy as np

from . import _validation as val
from . import kernels

name = "cpu"
check_params = val.as_param_list
check_grads = val.check_grads


def full(p, value):
    """A new flat state buffer for parameter ``p``, filled with ``value``."""
    return np.full(p.size, value, dtype=p.dtype)


def flat(x):
    """A 1-D view of a C-contiguous array."""
    return x if x.ndim == 1 else x.reshape(-1)


def counters(n):
    return np.zeros(n, dtype=np.int64)


def to_numpy(x):
    return np.array(x, copy=True)


def assign(dst, src):
    dst[...] = np.asarray(src).reshape(dst.shape)


def adam_many(ps, gs, ms, vs, vmaxs, coef, skip_nonfinite, skipped):
    kernels.adam_many(ps, gs, ms, vs, vmaxs, coef, kernels.PARALLEL_MIN_SIZE, skip_nonfinite,
                      skipped)  # fmt: skip


def rmsprop_many(ps, gs, vs, gbars, bufs, coef, skip_nonfinite, skipped):
    kernels.rmsprop_many(ps, gs, vs, gbars, bufs, coef, kernels.PARALLEL_MIN_SIZE,
                         skip_nonfinite, skipped)  # fmt: skip


def backend_for(params):
    """The CPU backend for numpy arrays, the GPU backend for CUDA arrays."""
    first = params[0] if isinstance(params, (list, tuple)) and params else params
    if not isinstance(first, np.ndarray) and hasattr(first, "__cuda_array_interface__"):
        from . import _gpu

        return _gpu
    import sys

    return sys.modules[__name__]
