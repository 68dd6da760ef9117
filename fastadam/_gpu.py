"""The GPU backend of the optimizers: CUDA arrays, updated by :mod:`fastadam.cuda`.

It offers the same operations as :mod:`fastadam._cpu`. Parameters and gradients may be any
array exposing ``__cuda_array_interface__`` (numba device arrays, CuPy arrays, PyTorch CUDA
tensors); they are viewed zero-copy as numba device arrays. State lives on the same device.
"""

import numpy as np

from . import _validation as val

try:
    from numba import cuda

    from . import cuda as kernels
except ImportError as exc:  # pragma: no cover - depends on the environment
    cuda = None
    _IMPORT_ERROR = exc


def _require_cuda():
    if cuda is None:
        raise ImportError(
            "CUDA arrays need numba-cuda: pip install 'fastadam[cuda]' "
            f"(import failed: {_IMPORT_ERROR})"
        )


def _as_device(x, name):
    """A numba device-array view of ``x``, or TypeError if ``x`` is not a CUDA array."""
    _require_cuda()
    if isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} is a numpy (host) array but the optimizer's parameters are CUDA arrays; "
            "do not mix host and device arrays"
        )
    if type(x).__module__.startswith("numba.cuda.simulator"):
        return x  # CUDA simulator arrays
    if hasattr(x, "__cuda_array_interface__"):
        return cuda.as_cuda_array(x)
    raise TypeError(f"{name} must be a CUDA array, got {type(x).__name__}")


_HALF = np.dtype(np.float16)


def _check_param(x, name, mixed_precision):
    x = _as_device(x, name)
    if x.dtype == _HALF and not mixed_precision:
        raise TypeError(
            f"{name} is float16: pass mixed_precision=True to keep float32 state and compute "
            "in float32 (the state is never kept in half precision)"
        )
    if x.dtype not in val.FLOAT_DTYPES and x.dtype != _HALF:
        raise TypeError(f"{name} must have dtype float16, float32 or float64, got {x.dtype}")
    if not x.is_c_contiguous():
        raise ValueError(f"{name} must be a C-contiguous CUDA array")
    return x


def _span(x):
    if hasattr(x, "__cuda_array_interface__"):
        start = x.__cuda_array_interface__["data"][0]
    else:  # simulator
        start = x._ary.__array_interface__["data"][0]
    return start, start + x.size * x.dtype.itemsize


def _may_share_memory(a, b):
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1 and a.size and b.size


def check_params(params, mixed_precision):
    def check(x, name, writeable):
        return _check_param(x, name, mixed_precision)

    return val.as_param_list(params, check, _may_share_memory)


def check_stream(stream):
    _require_cuda()
    return 0 if stream is None else stream


def check_grads(grads, params, single):
    grads = val.check_grads(grads, params, single, _as_device)
    for i, g in enumerate(grads):
        if not g.is_c_contiguous():
            raise ValueError(f"grads[{i}] must be a C-contiguous CUDA array")
    return grads


def state_dtype(dtype):
    """float32 state for float16 parameters, else the parameters' dtype."""
    return np.dtype(np.float32) if dtype == _HALF else dtype


def full(p, value, stream=0):
    dtype = state_dtype(p.dtype)
    out = cuda.device_array(p.size, dtype=dtype, stream=stream)
    out.copy_to_device(np.full(p.size, value, dtype=dtype), stream=stream)
    return out


def flat(x):
    return x if x.ndim == 1 else x.reshape(x.size)


class _Counters:
    """Per-array device counters of skipped steps, with the scratch flags they need."""

    def __init__(self, n):
        self.skipped = cuda.to_device(np.zeros(n, np.int64))
        self.bad = cuda.to_device(np.zeros(n, np.int32))


def counters(n):
    return _Counters(n)


def to_numpy(x):
    if isinstance(x, _Counters):
        x = x.skipped
    return x.copy_to_host()


def assign(dst, src):
    if isinstance(dst, _Counters):
        dst = dst.skipped
    dst.copy_to_device(np.ascontiguousarray(np.asarray(src, dtype=dst.dtype).reshape(dst.size)))


def adam_many(ps, gs, ms, vs, vmaxs, coef, skip_nonfinite, counters, stream=0):
    kernels.launch(kernels.adam_kernel, ps, gs, ms, vs, vmaxs, coef, skip_nonfinite,
                   counters.bad, counters.skipped, stream)  # fmt: skip


def rmsprop_many(ps, gs, vs, gbars, bufs, coef, skip_nonfinite, counters, stream=0):
    kernels.launch(kernels.rmsprop_kernel, ps, gs, vs, gbars, bufs, coef, skip_nonfinite,
                   counters.bad, counters.skipped, stream)  # fmt: skip
