"""The GPU backend of the optimizers: CUDA arrays, updated by :mod:`fastadam.cuda`.

It offers the same operations as :mod:`fastadam.cpu.backend`. Parameters and gradients
may be any array exposing ``__cuda_array_interface__`` (numba device arrays, CuPy arrays,
PyTorch CUDA tensors). Parameters are viewed zero-copy as numba device arrays once;
gradients are read at each step through their ``__cuda_array_interface__`` (data pointer,
stream), and the launches that follow are cached (:mod:`fastadam.cuda.cached_launch`).
State lives on the same device.
"""

import math

import numpy as np
from numba import cuda

from .. import _validation as val
from .. import cuda as kernels
from . import cached_launch as _cached_launch


def _not_cuda(x, name):
    if isinstance(x, np.ndarray):
        return TypeError(
            f"{name} is a numpy (host) array but the optimizer's parameters are CUDA arrays; "
            "do not mix host and device arrays"
        )
    return TypeError(f"{name} must be a CUDA array, got {type(x).__name__}")


def _as_device(x, name):
    """A numba device-array view of ``x``, or TypeError if ``x`` is not a CUDA array."""
    if type(x).__module__.startswith("numba.cuda.simulator"):
        return x  # CUDA simulator arrays
    if hasattr(x, "__cuda_array_interface__") and not isinstance(x, np.ndarray):
        return cuda.as_cuda_array(x)
    raise _not_cuda(x, name)


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
    start = kernels.data_pointer(x)
    return start, start + x.size * x.dtype.itemsize


def _may_share_memory(a, b):
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1 and a.size and b.size


def check_params(params, mixed_precision):
    def check(x, name, writeable):
        return _check_param(x, name, mixed_precision)

    return val.as_param_list(params, check, _may_share_memory)


def check_stream(stream):
    if stream is None or stream == 0:
        return 0
    if not (hasattr(stream, "handle") or kernels.SIMULATOR and hasattr(stream, "synchronize")):
        raise TypeError(
            "stream must be a numba CUDA stream (numba.cuda.stream(), "
            f"numba.cuda.external_stream(pointer)) or None, got {type(stream).__name__}"
        )
    return stream


class _Grad:
    """A gradient as the kernels need it (real GPU): its data pointer and the stream its
    exporter names, read once from ``__cuda_array_interface__``; a numba view on demand."""

    __slots__ = ("obj", "shape", "dtype", "ptr", "stream", "_cai")

    def __init__(self, obj, cai):
        self.obj, self._cai = obj, cai
        self.shape = tuple(cai["shape"])
        self.dtype = _dtype(cai["typestr"])
        self.ptr = cai["data"][0]
        self.stream = cai.get("stream")

    @property
    def size(self):
        return math.prod(self.shape)

    def array(self):
        """A 1-D numba device-array view (no synchronisation: the launch is ordered after
        the exporter's stream by :func:`_order_after`)."""
        a = cuda.from_cuda_array_interface(self._cai, owner=self.obj, sync=False)
        return a.reshape(a.size)


_DTYPES = {}


def _dtype(typestr):
    if typestr not in _DTYPES:
        _DTYPES[typestr] = np.dtype(typestr)
    return _DTYPES[typestr]


def _c_strides(shape, itemsize):
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _as_grad(x, name):
    """Check one gradient; on a real GPU return a :class:`_Grad` (no numba array is built:
    that costs more than the launch for small arrays)."""
    if kernels.SIMULATOR:
        x = _as_device(x, name)
        if not x.is_c_contiguous():
            raise ValueError(f"{name} must be a C-contiguous CUDA array")
        return x
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is None or isinstance(x, np.ndarray):
        raise _not_cuda(x, name)
    if cai.get("mask") is not None:
        raise ValueError(f"{name} is a masked CUDA array; pass a plain array")
    g = _Grad(x, cai)
    strides = cai.get("strides")
    if strides is not None:  # C-contiguous up to the strides of length-1 axes, as numpy says
        expected = _c_strides(g.shape, g.dtype.itemsize)
        if any(n > 1 and a != b for n, a, b in zip(g.shape, strides, expected, strict=True)):
            raise ValueError(f"{name} must be a C-contiguous CUDA array")
    return g


def check_grads(grads, params, single):
    return val.check_grads(grads, params, single, _as_grad)


def state_dtype(dtype):
    """float32 state for float16 parameters, else the parameters' dtype."""
    return np.dtype(np.float32) if dtype == _HALF else dtype


def full(p, value, stream=0):
    dtype = state_dtype(p.dtype)
    out = cuda.device_array(p.size, dtype=dtype, stream=stream)
    out.copy_to_device(np.full(p.size, value, dtype=dtype), stream=stream)
    return out


def flat(x):
    if isinstance(x, _Grad) or x.ndim == 1:
        return x
    return x.reshape(x.size)


class _Group:
    """Per dtype group of an optimizer: device counters of skipped steps, the scratch flags
    they need, and the launch plan (built at the first step)."""

    def __init__(self, n):
        self.skipped = cuda.to_device(np.zeros(n, np.int64))
        self.bad = cuda.to_device(np.zeros(n, np.int32))
        self.bad_set = False  # may ``bad`` hold flags of the last step?
        self.plan = None


def counters(n):
    return _Group(n)


def to_numpy(x):
    if isinstance(x, _Group):
        x = x.skipped
    return x.copy_to_host()


def assign(dst, src):
    if isinstance(dst, _Group):
        dst = dst.skipped
    dst.copy_to_device(np.ascontiguousarray(np.asarray(src, dtype=dst.dtype).reshape(dst.size)))


class _Part:
    """The arrays of one launch (at most ``MAX_ARRAYS_PER_LAUNCH`` of a group), the kernels
    it may use and their cached launches."""

    def __init__(self, kind, members, arrays):
        self.members = members  # indices into the group
        self.ps, *self.state = arrays
        self.index = cuda.to_device(np.asarray(members, dtype=np.int32))
        largest = max(p.size for p in self.ps)
        everything = (*self.ps, *(a for buffers in self.state for a in buffers))
        dtypes = {a.dtype for a in everything}
        pointers = [kernels.data_pointer(a) for a in everything]
        # (kernel, grid, block): the vector kernel needs the gradients aligned too
        self.launches = [  # [scalar, best]
            self._config(*kernels.kernel_for(kind, dtypes, pointers, vector_ok), largest)
            for vector_ok in (False, True)
        ]
        self.cached = {}  # kernel -> CachedLaunch, or None where none could be built

    def _config(self, kernel, lanes, largest):
        blocks, threads = kernels.grid(largest, lanes)
        return kernel, (blocks, len(self.ps)), (threads, 1)


class _Plan:
    """How an optimizer's dtype group is launched: parts sorted by size, the kernel for each
    step's gradients, and cached launches on a real GPU."""

    def __init__(self, kind, ps, state, group, stream):
        self.group, self.stream = group, stream
        self.state_dtype = state[0][0].dtype
        self.parts = [
            _Part(kind, members, tuple(tuple(a[i] for i in members) for a in (ps, *state)))
            for members in kernels.chunks([p.size for p in ps])
        ]

    def run(self, gs, coef, skip_nonfinite):
        stream, group = self.stream, self.group
        if kernels.SIMULATOR:
            pointers = [kernels.data_pointer(g) for g in gs]
        else:
            pointers = [g.ptr for g in gs]
            _order_after({g.stream for g in gs}, stream)
        if skip_nonfinite or group.bad_set:  # the kernels read ``bad`` at every step
            group.bad.copy_to_device(np.zeros(group.bad.size, np.int32), stream=stream)
            group.bad_set = skip_nonfinite
        cast = None
        for part in self.parts:
            gptrs = [pointers[i] for i in part.members]
            aligned = all(ptr % kernels.VECTOR_BYTES == 0 for ptr in gptrs)
            kernel, griddim, blockdim = part.launches[aligned]
            cached = part.cached.get(kernel)
            if cached is not None and not skip_nonfinite:
                cached(gptrs, coef)
                continue
            grads = _arrays([gs[i] for i in part.members])
            if cast is None:  # float32 state is updated in float32
                cast = kernels.cast_coefficients(coef, self.state_dtype)
            args = (part.ps, grads, *part.state, cast, part.index, group.bad, group.skipped)
            with kernels.quiet_launches():
                if skip_nonfinite:
                    mark = kernels.mark_nonfinite_kernel[griddim, blockdim, stream]
                    mark(grads, part.index, group.bad)
                kernel[griddim, blockdim, stream](*args)
            if kernel not in part.cached:  # None where cached launches are unavailable
                part.cached[kernel] = _cached_launch.build(kernel, args, griddim, blockdim, stream)


def _arrays(grads):
    return tuple(g.array() if isinstance(g, _Grad) else g for g in grads)


_EXTERNAL = {}


def _stream_pointer(stream):
    """The stream's handle as the CUDA array interface writes it (the default stream, handle
    0, is the legacy default stream: 1)."""
    return (int(stream.handle) if stream else 0) or 1


def _order_after(exporter_streams, stream):
    """Make ``stream`` wait (on the device, the host does not block) for the work queued so
    far on each stream that the gradients' exporters name, as the CUDA array interface asks
    of a consumer; nothing to do for arrays on the launch stream itself."""
    ours = _stream_pointer(stream)
    for ptr in exporter_streams:
        if ptr is None or ptr == ours:
            continue
        key = (cuda.get_current_device().id, ptr)  # events belong to a context
        if key not in _EXTERNAL:
            if len(_EXTERNAL) >= 64:  # streams come and go: keep the cache small
                _EXTERNAL.clear()
            _EXTERNAL[key] = (cuda.external_stream(ptr), cuda.event(timing=False))
        external, event = _EXTERNAL[key]
        event.record(external)
        event.wait(stream)


def _plan(kind, ps, state, group, stream):
    if group.plan is None:
        group.plan = _Plan(kind, ps, state, group, stream)
    return group.plan


def kernel_dtype(p):
    """The dtype the kernels group arrays by (float16 parameters have float32 state)."""
    return p.dtype


def layout_dtype(p):
    """The dtype of a state buffer in ``state_dict`` (float32 for float16 parameters)."""
    return state_dtype(p.dtype)


def to_param_layout(buffer, p):
    """A host copy of a state buffer, shaped like its parameter."""
    return buffer.copy_to_host().reshape(p.shape)


def launcher(spec, arrays, group, gather, stream=0):
    """The function that makes one step of algorithm ``spec`` on ``arrays`` (tuples of flat
    device arrays of one dtype), as the CPU backend's: the coefficients of step ``t`` are
    computed on the host and the launches planned by :class:`_Plan`."""
    ps, *state = arrays
    carry = _carry_index(spec)

    def run(grads, t, args, skip_nonfinite):
        coef = spec.coefficients(t, *args)
        _plan(spec.name, ps, tuple(state), group, stream).run(gather(grads), coef,
                                                             skip_nonfinite)  # fmt: skip
        return float(coef[carry])

    return run


def _carry_index(spec):
    return spec.Coefficients._fields.index(next(iter(spec.carry))) if spec.carry else 0
