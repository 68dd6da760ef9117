"""Cached kernel launches on a real GPU: numba's argument list, built once, patched per step.

At every launch numba-cuda's dispatcher types each argument and rebuilds the flat list of
kernel parameters (seven words per 1-D array: 453 parameters for a launch of 12 arrays)
through Python objects, and ``cuda.core.launch`` then copies every one into memory of its
own (``ParamHolder``: a type test and an allocation per parameter). Between two steps of an
optimizer only the gradients' data pointers and the coefficients change, so a cached launch
builds that list once, with numba's own code (``_Kernel._prepare_args``), and patches those
slots. Two kinds (:data:`LAUNCHER` says which :func:`build` tries first):

``"driver"``: :class:`DriverLaunch`
    The parameters live in one block of 8-byte slots (:class:`Parameters`), each holding
    the bytes ``ParamHolder`` would copy for numba's value, with the array of pointers to
    them that ``cuLaunchKernel`` takes as ``kernelParams``. A step writes the gradients'
    pointers (one ctypes slice assignment) and the coefficients (one numpy record
    assignment) into their slots and makes one call of ``cuda.bindings.driver.cuLaunchKernel``
    with the kernel, grid, stream and the address of that array: the launch
    ``cuda.core.launch`` makes (``cuLaunchKernelEx`` with no launch attributes for a plain,
    non-cooperative kernel), without its per-parameter work.
``"core"``: :class:`CoreLaunch`
    numba's list, patched, passed to ``cuda.core.launch`` at every step (the path before;
    kept to compare, and as the fallback).

Both rely on numba-cuda internals (``_Kernel._prepare_args``, the kernel's code library and
``driver._to_core_stream``, as ``_Kernel.launch`` of numba-cuda 0.30 uses them). Before it
is used, a :class:`DriverLaunch` checks that the kernel was compiled for the arguments'
types, takes exactly numba's number of parameters, none larger than its slot
(``cuKernelGetParamInfo``), and that its slots, written by the per-step code with that
step's values, hold byte for byte what ``ParamHolder`` holds for numba's list. Where
anything differs, :func:`build` tries the next kind and finally returns ``None``: the caller
then launches through numba's dispatcher, which is always correct. Set :data:`ENABLED` to
``False`` to compare with it.
"""

import ctypes
import functools
import importlib

import numba
import numpy as np

#: Use cached launches where they can be built (real GPU, known numba-cuda internals).
ENABLED = not numba.config.ENABLE_CUDASIM
#: The kind :func:`build` tries first: ``"driver"`` (:class:`DriverLaunch`, then
#: :class:`CoreLaunch`) or ``"core"`` (:class:`CoreLaunch` only). ``benchmarks/gpu_host.py``
#: checked on an H200 that the driver launch gives results bitwise equal to numba's
#: dispatcher, and timed one launch at 5.5-7.1 µs against 10.9-22 µs for the core launch.
LAUNCHER = "driver"
#: Why the last :func:`build` returned ``None`` (for diagnostics), or ``None``.
LAST_ERROR = None
#: Why the last :func:`build` that tried a :class:`DriverLaunch` did not build one, or
#: ``None``.
LAST_DRIVER_ERROR = None

# index of the gradients and of the coefficients in every fastadam kernel's arguments
_GRADS, _COEF = 1, 5
# position of the data pointer among the parameters numba passes for one array:
# meminfo, parent, nitems, itemsize, data, shape..., strides...
_DATA = 4
_SLOT = 8  # bytes per parameter slot of a DriverLaunch


def _numba_arguments(dispatcher, args, stream):
    """The kernel compiled for ``args``, numba's flat list of kernel parameters for them,
    and where each argument starts in that list, as ``_Kernel.launch`` builds them."""
    argtypes = tuple(dispatcher.typeof_pyval(a) for a in args)
    kernel = dispatcher.overloads[argtypes]  # compiled by the first launch; never here
    if kernel.debug or kernel.extensions or kernel.cooperative:
        raise RuntimeError("kernel compiled with debug=True, argument extensions or grid sync")
    flat, starts, writeback = [], [], []
    for ty, value in zip(argtypes, args, strict=True):
        starts.append(len(flat))
        kernel._prepare_args(ty, value, stream, writeback, flat)
    starts.append(len(flat))
    if writeback:
        raise RuntimeError("arguments need a copy back to the host")
    return kernel, flat, starts


def _layout(args, flat, starts):
    """The slots of the gradients' data pointers in ``flat`` and the slice of the
    coefficients, checked against the arguments."""
    grads, coef = args[_GRADS], args[_COEF]
    per_array, rest = divmod(starts[_GRADS + 1] - starts[_GRADS], len(grads))
    slots = [starts[_GRADS] + k * per_array + _DATA for k in range(len(grads))]
    pointers = [g.__cuda_array_interface__["data"][0] for g in grads]
    found = [flat[s] for s in slots]
    if rest or any(type(x) is not int for x in found) or found != pointers:
        raise RuntimeError("unexpected kernel parameter layout for arrays")
    coef_slots = slice(starts[_COEF], starts[_COEF + 1])
    if coef_slots.stop - coef_slots.start != len(coef):
        raise RuntimeError("unexpected kernel parameter layout for the coefficients")
    return slots, coef_slots


class CoreLaunch:
    """One kernel launch with fixed arrays except the gradients, and fixed grid and stream,
    through ``cuda.core.launch`` (which packs every parameter again at each call).

    Call it with the gradients' data pointers and the step's coefficient record as
    :func:`fastadam.kernels.adam_coefficients` and the other builders return it (float64);
    each field is converted to the ctypes type numba chose for its slot (``c_float`` rounds
    as ``np.float32`` does).
    """

    def __init__(self, dispatcher, args, griddim, blockdim, stream, coef=None):
        from cuda.core import LaunchConfig
        from cuda.core import launch as core_launch
        from numba.cuda._compat import CUDA_CORE_GE_1_0
        from numba.cuda.cudadrv import driver

        kernel, flat, starts = _numba_arguments(dispatcher, args, stream)
        self._grad_slots, self._coef = _layout(args, flat, starts)
        # ctypes classes (c_float, c_double, c_int64, ...) or bool, as numba passes them
        self._coef_types = [type(x) for x in flat[self._coef]]
        self._last_coef = (None,) * len(self._coef_types)  # every slot is written first
        self._args = flat
        coop = "is_cooperative" if CUDA_CORE_GE_1_0 else "cooperative_launch"
        self._config = LaunchConfig(grid=griddim, block=blockdim, shmem_size=0, **{coop: False})
        self._stream = driver._to_core_stream(stream)
        self._kernel = kernel._codelibrary.get_cufunc().kernel
        self._launch = core_launch

    def __call__(self, grad_pointers, coef):
        args = self._args
        for slot, ptr in zip(self._grad_slots, grad_pointers, strict=True):
            args[slot] = ptr
        if coef != self._last_coef:  # most coefficients stay the same from step to step
            start, last = self._coef.start, self._last_coef
            for i, c in enumerate(coef):
                if c != last[i]:
                    args[start + i] = self._coef_types[i](c)
            self._last_coef = coef
        self._launch(self._stream, self._config, self._kernel, *args)


_CTYPES = frozenset(
    (ctypes.c_bool, ctypes.c_float, ctypes.c_double)
    + tuple(getattr(ctypes, f"c_{s}int{n}") for s in ("", "u") for n in (8, 16, 32, 64))
)
# numpy scalars ParamHolder copies as the C type of the same size (float16 and complex: no)
_NUMPY = {np.dtype(t): c for t, c in [(np.bool_, ctypes.c_bool), (np.float32, ctypes.c_float),
                                      (np.float64, ctypes.c_double)]}  # fmt: skip
_NUMPY.update({np.dtype(f"{s}int{n}"): getattr(ctypes, f"c_{s}int{n}")
               for s in ("", "u") for n in (8, 16, 32, 64)})  # fmt: skip


def _slot(value):
    """``(ctypes type, plain value)``: how cuda.core's ``ParamHolder`` copies ``value``
    (``_kernel_arg_handler.pyx``: a bool as C++ ``bool``, an int as ``intptr_t``, a float as
    ``double``, a numpy or ctypes scalar as its own C type); TypeError for anything else.
    (Older releases copied a bool as ``intptr_t``: the same first byte, all that numba's
    ``.u8`` boolean parameter reads.)"""
    if type(value) is bool:
        return ctypes.c_bool, value
    if isinstance(value, int):
        return ctypes.c_ssize_t, int(value)
    if isinstance(value, float):
        return ctypes.c_double, float(value)
    if isinstance(value, np.generic) and value.dtype in _NUMPY:
        return _NUMPY[value.dtype], value.item()
    if type(value) in _CTYPES:
        return type(value), value.value
    raise TypeError(f"no cached slot for a kernel parameter of type {type(value).__name__}")


class Parameters:
    """Kernel parameters as ``cuLaunchKernel`` takes them (``kernelParams``): an array of
    pointers, the ``i``-th to an 8-byte slot holding parameter ``i`` as ``ParamHolder``
    would copy numba's value ``flat[i]`` (:func:`_slot`). :meth:`write` patches the slots
    of the gradients' data pointers and of the coefficients in place."""

    def __init__(self, flat, grad_slots, coef_slots):
        if ctypes.sizeof(ctypes.c_void_p) != _SLOT:
            raise RuntimeError("cached launches need 64-bit pointers")
        n = len(flat)
        self._values = (ctypes.c_uint64 * n)()
        self._base = ctypes.addressof(self._values)
        self._pointers = (ctypes.c_void_p * n)(*range(self._base, self._base + _SLOT * n, _SLOT))
        #: the address of the pointer array, for ``cuLaunchKernel``'s ``kernelParams``
        self.address = ctypes.addressof(self._pointers)
        self.types = []  # the ctypes type of each slot
        for i, value in enumerate(flat):
            ctype, plain = _slot(value)
            self._view(ctype, i).value = plain
            self.types.append(ctype)
        if any(self.types[s] is not ctypes.c_ssize_t for s in grad_slots):
            raise RuntimeError("gradient data pointers are not integer parameters")
        self._grads = _as_slice(grad_slots)  # one C-level write of all the pointers
        record = _record_dtype(self.types[coef_slots])
        self._coef = np.frombuffer(self._values, record, 1, _SLOT * coef_slots.start)

    def _view(self, ctype, i):
        """A ``ctype`` object on the memory of slot ``i``."""
        return ctype.from_buffer(self._values, _SLOT * i)

    def write(self, grad_pointers, coef):
        """Write the gradients' data pointers and the coefficients (each converted by numpy
        to its slot's type, as :func:`fastadam.kernels.cast_coefficients` converts the
        record numba then passes); ValueError unless one pointer per gradient slot and one
        value per coefficient slot."""
        self._values[self._grads] = grad_pointers
        self._coef[0] = coef

    def bytes(self, i, size):
        """The first ``size`` bytes of slot ``i``."""
        if not 0 < size <= ctypes.sizeof(self.types[i]):
            raise RuntimeError(f"kernel parameter {i} takes {size} bytes, its slot holds "
                               f"{ctypes.sizeof(self.types[i])}")  # fmt: skip
        return ctypes.string_at(self._base + _SLOT * i, size)


def _record_dtype(types):
    """A numpy record with a field of each C type in ``types``, one per 8-byte slot."""
    if not types:
        raise RuntimeError("a kernel without coefficients")
    return np.dtype({"names": [f"c{i}" for i in range(len(types))],
                     "formats": [np.dtype(t) for t in types],
                     "offsets": [_SLOT * i for i in range(len(types))],
                     "itemsize": _SLOT * len(types)})  # fmt: skip


def _as_slice(slots):
    """The slice that selects exactly ``slots`` (increasing, equally spaced)."""
    step = slots[1] - slots[0] if len(slots) > 1 else 1
    if step < 1 or list(range(slots[0], slots[-1] + 1, step)) != list(slots):
        raise RuntimeError("the gradients' slots are not equally spaced")
    return slice(slots[0], slots[-1] + 1, step)


def _param_holder():
    """cuda.core's ``ParamHolder`` class (in ``experimental`` in older releases)."""
    for module in ("cuda.core._kernel_arg_handler", "cuda.core.experimental._kernel_arg_handler"):
        try:
            return importlib.import_module(module).ParamHolder
        except (ImportError, AttributeError):
            continue
    raise RuntimeError("cuda.core's ParamHolder was not found")


def check_against_cuda_core(params, flat, sizes):
    """RuntimeError unless each slot of ``params`` holds, over the ``sizes[i]`` bytes the
    kernel reads, the bytes cuda.core's ``launch`` would pass for numba's list ``flat``
    (``ParamHolder(flat).ptr`` is the ``void**`` it gives the driver)."""
    if len(sizes) != len(flat):
        raise RuntimeError(f"the kernel takes {len(sizes)} parameters, numba passes {len(flat)}")
    holder = _param_holder()(flat)
    theirs = (ctypes.c_void_p * len(flat)).from_address(holder.ptr)
    for i, size in enumerate(sizes):
        ours = params.bytes(i, size)  # checks that the slot holds ``size`` bytes
        if theirs[i] is None or ctypes.string_at(theirs[i], size) != ours:
            raise RuntimeError(f"kernel parameter {i} ({flat[i]!r}) differs from cuda.core's")


def _kernel_param_sizes(cu, handle, n):
    """The size of each parameter of the loaded kernel ``handle``, as the driver lays them
    out (``cuKernelGetParamInfo``, or ``cuFuncGetParamInfo`` for a ``CUfunction``; CUDA
    12.4+); RuntimeError unless it takes exactly ``n``."""
    if isinstance(handle, cu.CUkernel):
        info = cu.cuKernelGetParamInfo
    elif isinstance(handle, cu.CUfunction):
        info = cu.cuFuncGetParamInfo
    else:
        raise TypeError(f"unexpected kernel handle {type(handle).__name__}")
    sizes = []
    for i in range(n):
        err, _offset, size = info(handle, i)
        if err != cu.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"{info.__name__}(kernel, {i}) returned {err!r}")
        sizes.append(size)
    if info(handle, n)[0] != cu.CUresult.CUDA_ERROR_INVALID_VALUE:
        raise RuntimeError(f"the kernel takes more than numba's {n} parameters")
    return sizes


def _dim3(dims):
    """A grid or block as three positive ints (as numba and cuda.core normalise it)."""
    dims = tuple(dims) if isinstance(dims, tuple) else (dims,)
    if not (1 <= len(dims) <= 3 and all(type(d) is int and d > 0 for d in dims)):
        raise ValueError(f"unexpected launch dimensions {dims!r}")
    return dims + (1,) * (3 - len(dims))


class DriverLaunch:
    """One kernel launch with fixed arrays except the gradients, and fixed grid and stream,
    made with one ``cuLaunchKernel`` call on a parameter block built once
    (:class:`Parameters`); called as :class:`CoreLaunch`.

    ``coef`` is the float64 record of the step whose ``args`` (numba's cast of it) launched
    the kernel; the block is written from it by the per-step code, then checked against
    cuda.core's packing of numba's list (:func:`check_against_cuda_core`).
    """

    def __init__(self, dispatcher, args, griddim, blockdim, stream, coef=None):
        from cuda.bindings import driver as cu
        from numba.cuda.cudadrv import driver

        kernel, flat, starts = _numba_arguments(dispatcher, args, stream)
        if kernel.argument_types != tuple(dispatcher.typeof_pyval(a) for a in args):
            raise RuntimeError("the kernel's argument types are not the arguments' types")
        grad_slots, coef_slots = _layout(args, flat, starts)
        self._params = Parameters(flat, grad_slots, coef_slots)
        cufunc = kernel._codelibrary.get_cufunc()  # as _Kernel.launch: numba's loaded kernel
        sizes = _kernel_param_sizes(cu, cufunc.handle, len(flat))
        self._params.write([flat[s] for s in grad_slots], args[_COEF] if coef is None else coef)
        check_against_cuda_core(self._params, flat, sizes)
        # the handle cuda.core launches (a CUkernel cast to CUfunction, as cuLaunchKernel
        # documents), the stream numba gives cuda.core, no dynamic shared memory, no extra
        func = cu.CUfunction(int(cufunc.handle))
        hstream = cu.CUstream(int(driver._to_core_stream(stream).handle))
        self._launch = functools.partial(cu.cuLaunchKernel, func, *_dim3(griddim),
                                         *_dim3(blockdim), 0, hstream, self._params.address,
                                         0)  # fmt: skip
        self._success = cu.CUresult.CUDA_SUCCESS
        self._no_context = cu.CUresult.CUDA_ERROR_INVALID_CONTEXT
        self._keep = (cufunc, stream)  # the loaded kernel and the stream outlive the launch

    def __call__(self, grad_pointers, coef):
        self._params.write(grad_pointers, coef)
        (err,) = self._launch()  # the driver copies the parameters before it returns
        if err != self._success:
            self._relaunch(err)

    def _relaunch(self, err):
        """Launch again if the driver found no current context (a thread numba has not
        used: its dispatcher makes its context current before every launch); else raise."""
        from numba.cuda.cudadrv import devices, driver

        if err == self._no_context:
            devices.get_context()
            (err,) = self._launch()
        if err != self._success:
            raise driver.CudaAPIError(err, f"Call to cuLaunchKernel results in {err!r}")


_KINDS = {"driver": (DriverLaunch, CoreLaunch), "core": (CoreLaunch,)}


def build(dispatcher, args, griddim, blockdim, stream, coef=None):
    """A cached launch of ``dispatcher`` (already compiled for ``args`` by one ordinary
    launch): the first kind of :data:`LAUNCHER` that builds, or ``None`` where cached
    launches are disabled or none can be built. ``coef``: the float64 coefficient record
    that ``args`` holds cast (checked by :class:`DriverLaunch`)."""
    global LAST_ERROR, LAST_DRIVER_ERROR
    if not ENABLED:
        return None
    errors = []
    for kind in _KINDS[LAUNCHER]:
        try:
            launch = kind(dispatcher, args, griddim, blockdim, stream, coef)
        except Exception as exc:  # an internal API that differs: try the next kind
            errors.append(f"{kind.__name__}: {type(exc).__name__}: {exc}")
            if kind is DriverLaunch:
                LAST_DRIVER_ERROR = errors[-1]
            continue
        return launch
    LAST_ERROR = "; ".join(errors)
    return None
