"""The GPU backend of the optimizers: CUDA arrays, updated by :mod:`fastadam.cuda`.

It offers the same operations as :mod:`fastadam.cpu.backend`. Parameters and gradients
may be any array exposing ``__cuda_array_interface__`` (numba device arrays, CuPy arrays,
PyTorch CUDA tensors). Parameters are viewed zero-copy as numba device arrays once;
gradients are read at each step as their ``__cuda_array_interface__`` describes them (data
pointer, stream): numba, CuPy and torch arrays from the attributes it reads, others through
it (:func:`check_grads`); the launches that follow are cached
(:mod:`fastadam.cuda.cached_launch`). State lives on the same device.
"""

import functools
import math
import operator
import sys

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
    """A gradient as the kernels need it (real GPU): its shape and dtype, data pointer and
    the stream its exporter names, as ``__cuda_array_interface__`` gives them; a numba view
    on demand."""

    __slots__ = ("obj", "shape", "dtype", "ptr", "stream")

    def __init__(self, obj, shape, dtype, ptr, stream):
        self.obj, self.shape, self.dtype, self.ptr, self.stream = obj, shape, dtype, ptr, stream

    @property
    def size(self):
        return math.prod(self.shape)

    def array(self):
        """A 1-D numba device-array view (no synchronisation: the launch is ordered after
        the exporter's stream by :func:`_order_after`)."""
        cai = self.obj.__cuda_array_interface__
        a = cuda.from_cuda_array_interface(cai, owner=self.obj, sync=False)
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
    """Check one gradient; on a real GPU return a :class:`_Grad` read from its
    ``__cuda_array_interface__`` (no numba array is built: that costs more than the launch
    for small arrays). Any CUDA array; the errors of every gradient check."""
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
    shape, dtype = tuple(cai["shape"]), _dtype(cai["typestr"])
    g = _Grad(x, shape, dtype, cai["data"][0], cai.get("stream"))
    strides = cai.get("strides")
    if strides is not None:  # C-contiguous up to the strides of length-1 axes, as numpy says
        expected = _c_strides(shape, dtype.itemsize)
        if any(n > 1 and a != b for n, a, b in zip(shape, strides, expected, strict=True)):
            raise ValueError(f"{name} must be a C-contiguous CUDA array")
    return g


#: Read gradients of known types (numba, CuPy, torch) through their fast paths; ``False``:
#: every gradient through its ``__cuda_array_interface__``. ``benchmarks/gpu_host.py``
#: checked on an H200 that both give the same records and errors, and timed the check of
#: 200 gradients at 105-218 µs against 351-515 µs.
FAST_GRADS = True


def check_grads(grads, params, single):
    """The gradients as the kernels need them (:class:`_Grad` on a real GPU). Each is read
    by the fast path of its type where it has one and is the plain case, else (and always
    without :data:`FAST_GRADS`) by :func:`_as_grad`, which raises the errors."""
    if kernels.SIMULATOR or not FAST_GRADS:
        return val.check_grads(grads, params, single, _as_grad)
    grads = val.grad_list(grads, params, single)
    out, streams = [], {}
    for i, g in enumerate(grads):
        p = params[i]
        read = _READERS[type(g)]
        x = read(g, p, streams) if read is not None else None
        out.append(x if x is not None else val.check_grad(g, p, val.grad_name(single, i),
                                                          _as_grad))  # fmt: skip
    return out


# -- fast paths of the gradient check (real GPU) ------------------------------------------
# A reader ``read(g, p, streams)`` takes a gradient of its exact type, its parameter and a
# dict for the call, and returns the _Grad that _as_grad would return, read from the
# attributes that the type's __cuda_array_interface__ reads; or None for anything but the
# plain case (a C-contiguous CUDA array of the parameter's shape and dtype), which then goes
# through _as_grad: its checks and error messages. Nothing is cached across calls.


def _same(shape, dtype, p):
    return shape == p.shape and (dtype is p.dtype or dtype == p.dtype)


def _call_stream(g, streams):
    """The ``stream`` of ``g``'s interface, read once per call and type: CuPy and torch name
    the current stream there (or nothing), the same for all of their arrays in one call."""
    cls = type(g)
    if cls not in streams:
        streams[cls] = g.__cuda_array_interface__.get("stream")
    return streams[cls]


def _numba_reader():
    """numba-cuda's ``DeviceNDArray.__cuda_array_interface__`` (cudadrv/devicearray.py)
    reads ``device_ctypes_pointer.value``: ``c_size_t(int(device_pointer))`` for numba's
    own memory pointers (driver.py ``MemoryPointer``), a ``c_size_t`` made once for views
    (``OwnedPointer``); its ``stream`` is the array's own, ``None`` for 0."""
    from numba.cuda.cudadrv import driver

    plain = {
        cls
        for cls in (driver.MemoryPointer, driver.AutoFreePointer)
        if cls.device_ctypes_pointer is driver.MemoryPointer.device_ctypes_pointer
    }
    owned = driver.OwnedPointer

    def read(g, p, streams):
        shape, dtype = g.shape, g.dtype
        if shape != p.shape or dtype is not p.dtype and dtype != p.dtype:
            return None
        if not (g.size and g.is_c_contiguous()):  # then the interface has no strides
            return None
        memory = g.gpu_data
        if type(memory) in plain:
            ptr = int(memory.device_pointer)
        elif type(memory) is owned:
            ptr = memory.device_ctypes_pointer.value
        else:
            return None
        stream = g.stream
        return _Grad(g, shape, dtype, ptr, int(stream) if stream != 0 else None)

    return read


def _read_cupy(g, p, streams):
    """CuPy's ``__cuda_array_interface__`` (cupy/_core/core.pyx): no strides where
    ``_c_contiguous``, the data pointer (0 when empty), the current stream."""
    shape, dtype = g.shape, g.dtype
    if not (g._c_contiguous and _same(shape, dtype, p)):
        return None
    ptr = g.data.ptr if g.size > 0 else 0
    return _Grad(g, shape, dtype, ptr, _call_stream(g, streams))


def _torch_reader(torch):
    """``torch.Tensor.__cuda_array_interface__`` (torch/_tensor.py), for a dense CUDA
    tensor that needs no gradient, without ``__torch_function__`` overrides (else it raises
    or dispatches: left to the interface); no strides where ``is_contiguous()``; the data
    pointer (0 when empty)."""
    dtypes = {getattr(torch, t): np.dtype(t) for t in ("float16", "float32", "float64")}
    strided, overridden = torch.strided, torch.overrides.has_torch_function_unary

    def read(g, p, streams):
        if not g.is_cuda or g.requires_grad or g.layout is not strided or overridden(g):
            return None
        dtype, shape = dtypes.get(g.dtype), tuple(g.shape)
        if dtype is None or not (g.is_contiguous() and _same(shape, dtype, p)):
            return None
        ptr = g.data_ptr() if 0 not in shape else 0
        return _Grad(g, shape, dtype, ptr, _call_stream(g, streams))

    return read


def _reader(cls):
    """The fast reader for gradients of exactly type ``cls``, or None."""
    from numba.cuda.cudadrv import devicearray  # the simulator's has no DeviceNDArray

    if cls is getattr(devicearray, "DeviceNDArray", None):
        return _numba_reader()
    cupy, torch = sys.modules.get("cupy"), sys.modules.get("torch")
    if cupy is not None and cls is getattr(cupy, "ndarray", None):
        if all(hasattr(cls, a) for a in ("_c_contiguous", "data", "size")):
            return _read_cupy
    if torch is not None and cls is getattr(torch, "Tensor", None):
        return _torch_reader(torch)
    return None


class _Readers(dict):
    """type -> its fast reader or None, found at the first gradient of each type."""

    def __missing__(self, cls):
        self[cls] = read = _reader(cls)
        return read


_READERS = _Readers()


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
        self.pick = _picker(members)  # this part's entries of a list over the group
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
            gptrs = part.pick(pointers)
            kernel, griddim, blockdim = part.launches[_aligned(gptrs)]
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
                part.cached[kernel] = _cached_launch.build(kernel, args, griddim, blockdim,
                                                           stream, coef)  # fmt: skip


def _picker(members):
    """A function returning the entries ``members`` of a sequence, as a tuple."""
    if len(members) == 1:
        return lambda seq, i=members[0]: (seq[i],)
    return operator.itemgetter(*members)


def _aligned(pointers):
    """Whether every pointer is a multiple of ``VECTOR_BYTES`` (a power of two)."""
    return functools.reduce(operator.or_, pointers, 0) % kernels.VECTOR_BYTES == 0


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
    ps, s0s, *rest = arrays
    # (the kernels take every buffer: one not used is passed as the first, not accessed)
    state = (s0s, *(s0s if s is None else s for s in rest))
    carry = _carry_index(spec)

    def run(args, grads, t, skip_nonfinite):
        coef = spec.coefficients(t, *args)
        _plan(spec.name, ps, tuple(state), group, stream).run(gather(grads), coef,
                                                             skip_nonfinite)  # fmt: skip
        return float(coef[carry])

    return run


def _carry_index(spec):
    return spec.Coefficients._fields.index(next(iter(spec.carry))) if spec.carry else 0
