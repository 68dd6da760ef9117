"""The CPU backend of the optimizers: numpy arrays, updated by :mod:`fastadam.kernels`.

A backend is the small set of operations an optimizer needs on its arrays; the GPU backend
(:mod:`fastadam._gpu`) offers the same names for CUDA arrays.
"""

import numpy as np

from . import _validation as val
from . import kernels

check_grads = val.check_grads


def check_params(params, mixed_precision):
    if mixed_precision:
        raise ValueError(
            "mixed_precision=True is for float16 CUDA arrays; numpy parameters must be float32 "
            "or float64"
        )
    return val.as_param_list(params)


def check_stream(stream):
    if stream is not None:
        raise ValueError("stream is for CUDA arrays; the parameters are numpy arrays")


def full(p, value, stream=None):
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


def _dispatch(many, parallel, arrays, coef, skip_nonfinite, skipped):
    """Small arrays in one serial ``many`` call; large ones one by one in parallel."""
    ps = arrays[0]
    threshold = kernels.PARALLEL_MIN_SIZE
    if all(p.size < threshold for p in ps):
        many(*arrays, coef, skip_nonfinite, skipped)
        return
    small = [k for k, p in enumerate(ps) if p.size < threshold]
    if small:
        sub = np.zeros(len(small), dtype=np.int64)
        many(*(tuple(a[k] for k in small) for a in arrays), coef, skip_nonfinite, sub)
        skipped[small] += sub
    for k, p in enumerate(ps):
        if p.size >= threshold:
            if skip_nonfinite and not kernels.all_finite(arrays[1][k]):
                skipped[k] += 1
            else:
                parallel(*(a[k] for a in arrays), coef)


def adam_many(ps, gs, ms, vs, vmaxs, coef, skip_nonfinite, skipped, stream=None):
    _dispatch(kernels.adam_many, kernels.adam_parallel, (ps, gs, ms, vs, vmaxs), coef,
              skip_nonfinite, skipped)  # fmt: skip


def rmsprop_many(ps, gs, vs, gbars, bufs, coef, skip_nonfinite, skipped, stream=None):
    _dispatch(kernels.rmsprop_many, kernels.rmsprop_parallel, (ps, gs, vs, gbars, bufs), coef,
              skip_nonfinite, skipped)  # fmt: skip
