"""Cached kernel launches on a real GPU: numba's argument list, built once, patched per step.

At every launch numba-cuda's dispatcher types each argument and rebuilds the flat list of
kernel parameters (seven words per 1-D array) through Python objects (about 40 µs for a
launch with ten scalar arguments, as measured on an H200 when this was planned). Between two steps
of an optimizer only the gradients' data pointers and the coefficients change, so a
:class:`CachedLaunch` builds that list once, with numba's own code, and patches those slots.

It relies on numba-cuda internals (``_Kernel._prepare_args``, the kernel's code library and
cuda.core's ``launch``, as in ``_Kernel.launch`` of numba-cuda 0.30). :func:`build` checks
them and the parameter layout it patches; when anything differs it returns ``None`` and the
caller launches through numba's dispatcher, which is always correct. Set :data:`ENABLED` to
``False`` to compare the two paths.
"""

import numba

#: Use cached launches where they can be built (real GPU, known numba-cuda internals).
ENABLED = not numba.config.ENABLE_CUDASIM
#: Why the last :func:`build` returned ``None`` (for diagnostics), or ``None``.
LAST_ERROR = None

# index of the gradients and of the coefficients in every fastadam kernel's arguments
_GRADS, _COEF = 1, 5
# position of the data pointer among the parameters numba passes for one array:
# meminfo, parent, nitems, itemsize, data, shape..., strides...
_DATA = 4


class CachedLaunch:
    """One kernel launch with fixed arrays except the gradients, and fixed grid and stream.

    Call it with the gradients' data pointers and the step's coefficient record as
    :func:`fastadam.kernels.adam_coefficients` and the other builders return it (float64);
    each field is converted to the ctypes type numba chose for its slot (``c_float`` rounds
    as ``np.float32`` does).
    """

    def __init__(self, dispatcher, args, griddim, blockdim, stream):
        from cuda.core import LaunchConfig
        from cuda.core import launch as core_launch
        from numba.cuda._compat import CUDA_CORE_GE_1_0
        from numba.cuda.cudadrv import driver

        argtypes = tuple(dispatcher.typeof_pyval(a) for a in args)
        kernel = dispatcher.overloads[argtypes]  # compiled by the first launch; never here
        if kernel.debug or kernel.extensions:
            raise RuntimeError("kernel compiled with debug=True or argument extensions")
        flat, starts, writeback = [], [], []
        for ty, value in zip(argtypes, args, strict=True):
            starts.append(len(flat))
            kernel._prepare_args(ty, value, stream, writeback, flat)
        starts.append(len(flat))
        if writeback:
            raise RuntimeError("arguments need a copy back to the host")
        grads, coef = args[_GRADS], args[_COEF]
        per_array = (starts[_GRADS + 1] - starts[_GRADS]) // len(grads)
        self._grad_slots = [starts[_GRADS] + k * per_array + _DATA for k in range(len(grads))]
        for slot, g in zip(self._grad_slots, grads, strict=True):
            if flat[slot] != g.__cuda_array_interface__["data"][0]:
                raise RuntimeError("unexpected kernel parameter layout for arrays")
        self._coef = slice(starts[_COEF], starts[_COEF + 1])
        if self._coef.stop - self._coef.start != len(coef):
            raise RuntimeError("unexpected kernel parameter layout for the coefficients")
        # ctypes classes (c_float, c_double, c_int64, ...) or bool, as numba passes them
        self._coef_types = [type(x) for x in flat[self._coef]]
        self._last_coef = (None,) * len(coef)  # every slot is written at the first call
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


def build(dispatcher, args, griddim, blockdim, stream):
    """A :class:`CachedLaunch` of ``dispatcher`` (already compiled for ``args`` by one
    ordinary launch), or ``None`` where cached launches are disabled or unsupported."""
    global LAST_ERROR
    if not ENABLED:
        return None
    try:
        return CachedLaunch(dispatcher, args, griddim, blockdim, stream)
    except Exception as exc:  # an internal API that differs: launch the ordinary way
        LAST_ERROR = f"{type(exc).__name__}: {exc}"
        return None
