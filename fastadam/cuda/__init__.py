"""GPU kernels: the rules of :mod:`fastadam.algorithms` compiled with numba-cuda.

All of fastadam's numba-cuda code lives in this package: kernels and device functions
here, cached launches in :mod:`fastadam.cuda.cached_launch` (a module not named ``launch``:
a submodule would replace the :func:`launch` helper as an attribute of this package) and
the optimizers' backend in :mod:`fastadam.cuda.backend`. It needs the ``cuda`` extra
(``pip install fastadam[cuda]``); it runs on the CUDA simulator with
``NUMBA_ENABLE_CUDASIM=1``.

Device functions, for a user's own ``@cuda.jit`` kernel
    :data:`adam_update`, :data:`rmsprop_update`, :data:`nadam_update` -- the scalar rules,
    compiled with ``cuda.jit(device=True)`` from the same plain functions as the CPU
    kernels; they take a coefficient record (:func:`fastadam.kernels.adam_coefficients`,
    cast to the arrays' dtype with :func:`cast_coefficients`).

Kernels (tuples of up to :data:`MAX_ARRAYS_PER_LAUNCH` 1-D arrays in one launch)
    :data:`SCALAR_KERNELS` (by algorithm name) -- one element per access; any alignment,
    and float16 parameters with float32 state (mixed precision).
    :data:`VECTOR_KERNELS` (by algorithm name, then dtype float32 / float64) -- the same
    loop reading and writing 16 bytes per access (4 float32 or 2 float64 elements), for
    arrays whose data pointers are 16-byte aligned (cudaMalloc, CuPy and PyTorch
    allocations are), with the last ``size % lanes`` elements done one by one.

    All take ``(params, grads, s1, s2, s3, coef, index, bad, skipped)``: tuples of equal-dtype
    1-D arrays, the step's coefficients, and per array ``k`` (``blockIdx.y``) the position
    ``index[k]`` of its entries in the ``bad`` (int32) and ``skipped`` (int64) flags. An
    array whose ``bad`` flag is set is not updated; its ``skipped`` count is incremented.
    The grid is ``(blocks, len(params))``, with a grid-stride loop within each array.
    :func:`adam`, :func:`rmsprop`, :func:`nadam` -- launch them on one or more arrays from
    Python.

Example of a user kernel (compute ``coef`` on the host once per step)::

    from numba import cuda
    import fastadam.cuda as fc
    from fastadam import kernels

    @cuda.jit
    def my_step(x, g, m, v, coef):
        i = cuda.grid(1)
        if i < x.size:
            x[i], m[i], v[i], _ = fc.adam_update(x[i], g[i], m[i], v[i], v[i], coef)

    coef = fc.cast_coefficients(kernels.adam_coefficients(t, lr=1e-3), x.dtype)
    my_step[blocks, threads](x, g, m, v, coef)

Synchronisation: kernels are launched on ``stream`` (default: the default stream) and are
asynchronous. Arrays from other libraries are taken through ``__cuda_array_interface__``
zero-copy; see :doc:`/gpu` for how the optimizers order their launches after the stream an
array's exporter names.
"""

import contextlib
import warnings

import numba
import numpy as np
from numba import cuda

from .. import algorithms
from ..algorithms import cast_coefficients

__all__ = [
    "SCALAR_KERNELS",
    "VECTOR_KERNELS",
    "cast_coefficients",
    "THREADS_PER_BLOCK",
    "MAX_BLOCKS",
    "MAX_ARRAYS_PER_LAUNCH",
    "VECTOR_BYTES",
]

#: Threads per block of the launches made by :func:`adam` / :func:`rmsprop` and the
#: optimizers.
THREADS_PER_BLOCK = 256
#: Upper bound on the blocks per array (the grid-stride loop covers the rest).
MAX_BLOCKS = 4096
#: Arrays per launch. numba passes a 1-D array as 7 words (56 bytes), so 12 sets of 5 arrays
#: plus the coefficients and flags stay under the classic 4 KiB kernel-parameter limit; longer
#: lists take ``ceil(n / 12)`` launches.
MAX_ARRAYS_PER_LAUNCH = 12
#: Bytes per access of the vector kernels, and the alignment they need.
VECTOR_BYTES = 16

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

#: name -> the algorithm's rule and buffer switches as device functions
DEVICE = {
    name: (cuda.jit(device=True)(spec.rule), cuda.jit(device=True)(spec.buffers))
    for name, spec in algorithms.ALGORITHMS.items()
}


# -- 16-byte loads and stores --------------------------------------------------------------
# _vload(a, j, buf) copies elements [j*L, (j+1)*L) of the 1-D array a into the local array
# buf, and _vstore(a, j, buf) writes them back, with L = 16 // a.itemsize. On the GPU each is
# one ld/st.v4.f32 or v2.f64 instruction (LLVM vector load with 16-byte alignment); on the
# simulator they are plain element loops.
if SIMULATOR:

    def _vector_access(a, j):
        """The lanes of access ``j``, checked as the GPU needs them: a C-contiguous array,
        a 16-byte-aligned address, within bounds (the simulator would not fault)."""
        lanes = VECTOR_BYTES // a.dtype.itemsize
        ary = getattr(a, "_ary", a)
        address = ary.__array_interface__["data"][0] + j * VECTOR_BYTES
        if not (ary.flags.c_contiguous and address % VECTOR_BYTES == 0):
            raise AssertionError("16-byte access to a strided or misaligned array")
        if not (0 <= j and (j + 1) * lanes <= a.size):
            raise AssertionError(f"16-byte access {j} out of bounds of {a.size} elements")
        return lanes

    def _vload(a, j, buf):
        lanes = _vector_access(a, j)
        for i in range(lanes):
            buf[i] = a[j * lanes + i]

    def _vstore(a, j, buf):
        lanes = _vector_access(a, j)
        for i in range(lanes):
            a[j * lanes + i] = buf[i]

else:
    from llvmlite import ir
    from numba.core import types
    from numba.cuda.extending import intrinsic

    def _vector_pointer(context, builder, aryty, ary, j):
        lanes = VECTOR_BYTES * 8 // aryty.dtype.bitwidth
        data = context.make_array(aryty)(context, builder, ary).data
        first = builder.mul(j, ir.Constant(j.type, lanes))
        vty = ir.VectorType(context.get_value_type(aryty.dtype), lanes)
        return builder.bitcast(builder.gep(data, [first]), vty.as_pointer()), vty, lanes

    def _local_slot(context, builder, bufty, buf, i):
        data = context.make_array(bufty)(context, builder, buf).data
        return builder.gep(data, [ir.Constant(ir.IntType(64), i)])

    def _vector_ok(a, buf):
        """Only 1-D C-contiguous float32/float64 arrays: the element after ``a[i]`` must be
        the next address (a strided view would be read wrongly, past its end if reversed)."""
        return (
            isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
            and a.dtype in (types.float32, types.float64) and buf.dtype == a.dtype
        )  # fmt: skip

    @intrinsic
    def _vload(typingctx, a, j, buf):
        if not _vector_ok(a, buf):
            return None

        def codegen(context, builder, sig, args):
            ptr, _, lanes = _vector_pointer(context, builder, sig.args[0], args[0], args[1])
            vec = builder.load(ptr, align=VECTOR_BYTES)
            for i in range(lanes):
                x = builder.extract_element(vec, ir.Constant(ir.IntType(32), i))
                builder.store(x, _local_slot(context, builder, sig.args[2], args[2], i))
            return context.get_dummy_value()

        return types.none(a, j, buf), codegen

    @intrinsic
    def _vstore(typingctx, a, j, buf):
        if not _vector_ok(a, buf):
            return None

        def codegen(context, builder, sig, args):
            ptr, vty, lanes = _vector_pointer(context, builder, sig.args[0], args[0], args[1])
            vec = ir.Constant(vty, ir.Undefined)
            for i in range(lanes):
                x = builder.load(_local_slot(context, builder, sig.args[2], args[2], i))
                vec = builder.insert_element(vec, x, ir.Constant(ir.IntType(32), i))
            builder.store(vec, ptr, align=VECTOR_BYTES)
            return context.get_dummy_value()

        return types.none(a, j, buf), codegen


@cuda.jit
def mark_nonfinite_kernel(gs, index, bad):
    """Set ``bad[index[k]]`` if ``gs[k]`` (``k = blockIdx.y``) has a NaN or infinity."""
    k = cuda.blockIdx.y
    g = gs[k]
    for i in range(cuda.grid(1), g.size, cuda.gridDim.x * cuda.blockDim.x):
        if g[i] - g[i] != 0:  # NaN for NaN and +-Inf
            bad[index[k]] = 1


@cuda.jit(device=True)
def _skip(start, k, index, bad, skipped):
    """True if array ``k`` is flagged bad (then thread 0 counts the skip)."""
    if bad[index[k]]:
        if start == 0:
            skipped[index[k]] += 1
        return True
    return False


def _element_step(rule):
    """A device function applying ``rule`` to element ``i`` of the arrays, in place.

    Every rule takes ``(p, g, s0, s1, s2, coef)`` and returns ``(p, s0, s1, s2)``; ``s1``
    and ``s2`` are accessed only where ``use1``/``use2`` say so (else ``p`` stands in).
    """

    def element(p, g, s1, s2, s3, i, coef, use2, use3):
        p[i], s1[i], b2, b3 = rule(
            p[i], g[i], s1[i], s2[i] if use2 else p[i], s3[i] if use3 else p[i], coef
        )
        if use2:
            s2[i] = b2
        if use3:
            s3[i] = b3

    return cuda.jit(device=True)(element)


def _scalar_kernel(name, rule, buffers):
    """A kernel applying ``rule`` to ``ps[k]`` (``k = blockIdx.y``), one element per access
    (see :func:`_element_step`)."""
    element = _element_step(rule)

    def kernel(ps, gs, s1s, s2s, s3s, coef, index, bad, skipped):
        k = cuda.blockIdx.y
        start = cuda.grid(1)
        if _skip(start, k, index, bad, skipped):
            return
        p, g, s1, s2, s3 = ps[k], gs[k], s1s[k], s2s[k], s3s[k]
        use2, use3 = buffers(coef)
        for i in range(start, p.size, cuda.gridDim.x * cuda.blockDim.x):
            element(p, g, s1, s2, s3, i, coef, use2, use3)

    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = f"{name.split('_')[0].capitalize()} on ``ps[k]``, one element per access."
    return cuda.jit(kernel)


def _vector_kernel(name, rule, buffers, dtype):
    """:func:`_scalar_kernel` reading and writing 16 bytes per access (``lanes`` elements of
    ``dtype``); the last ``size % lanes`` elements of each array are done one by one."""
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    element = _element_step(rule)

    def kernel(ps, gs, s1s, s2s, s3s, coef, index, bad, skipped):
        k = cuda.blockIdx.y
        start = cuda.grid(1)
        if _skip(start, k, index, bad, skipped):
            return
        p, g, s1, s2, s3 = ps[k], gs[k], s1s[k], s2s[k], s3s[k]
        use2, use3 = buffers(coef)
        P = cuda.local.array(lanes, dtype)
        G = cuda.local.array(lanes, dtype)
        A = cuda.local.array(lanes, dtype)
        B = cuda.local.array(lanes, dtype)
        C = cuda.local.array(lanes, dtype)
        body = p.size // lanes
        for j in range(start, body, cuda.gridDim.x * cuda.blockDim.x):
            _vload(p, j, P)
            _vload(g, j, G)
            _vload(s1, j, A)
            if use2:
                _vload(s2, j, B)
            if use3:
                _vload(s3, j, C)
            for i in range(lanes):  # the same element step, on the registers
                element(P, G, A, B, C, i, coef, use2, use3)
            _vstore(p, j, P)
            _vstore(s1, j, A)
            if use2:
                _vstore(s2, j, B)
            if use3:
                _vstore(s3, j, C)
        i = body * lanes + start
        if i < p.size:
            element(p, g, s1, s2, s3, i, coef, use2, use3)

    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = (
        f"{name.split('_')[0].capitalize()} on 16-byte-aligned {np.dtype(dtype).name} arrays, "
        f"{lanes} elements per access."
    )
    return cuda.jit(kernel)


#: name -> the kernel applying the algorithm's rule to ``ps[k]`` (``k = blockIdx.y``), one
#: element per access.
SCALAR_KERNELS = {
    name: _scalar_kernel(f"{name}_kernel", rule, buffers)
    for name, (rule, buffers) in DEVICE.items()
}
#: name -> dtype (``np.dtype('float32')``, ``np.dtype('float64')``) -> the vector kernel.
VECTOR_KERNELS = {
    name: {
        np.dtype(t): _vector_kernel(f"{name}_vector_kernel_{t.__name__}", rule, buffers, t)
        for t in (np.float32, np.float64)
    }
    for name, (rule, buffers) in DEVICE.items()
}


def data_pointer(a):
    """The device address of a numba (or simulator) device array's first element."""
    if SIMULATOR:
        return a._ary.__array_interface__["data"][0]
    return a.__cuda_array_interface__["data"][0]


def kernel_for(kind, dtypes, pointers, vector_ok=True):
    """The kernel for algorithm ``kind`` (``"adam"``...) and its elements per access: the
    vector kernel when the (C-contiguous) arrays share one float32/float64 dtype (``dtypes``,
    a set) and all data ``pointers`` are 16-byte aligned, else (or if not ``vector_ok``: pass
    False for strided arrays) the scalar kernel (1)."""
    scalar, vector = SCALAR_KERNELS[kind], VECTOR_KERNELS[kind]
    if vector_ok and len(dtypes) == 1:
        dtype = next(iter(dtypes))
        if dtype in vector and all(ptr % VECTOR_BYTES == 0 for ptr in pointers):
            return vector[dtype], VECTOR_BYTES // dtype.itemsize
    return scalar, 1


def chunks(sizes):
    """Split arrays into launches: indices sorted by size (largest first, so that each launch
    sizes its grid for arrays of similar length), at most :data:`MAX_ARRAYS_PER_LAUNCH` each."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    step = MAX_ARRAYS_PER_LAUNCH
    return [order[i : i + step] for i in range(0, len(order), step)]


def grid(largest, vector_lanes=1):
    """``(griddim, blockdim)`` for a launch whose largest array has ``largest`` elements."""
    work = -(-largest // vector_lanes)
    blocks = max(1, min(MAX_BLOCKS, -(-work // THREADS_PER_BLOCK)))
    return blocks, THREADS_PER_BLOCK


def launch(kind, ps, gs, s1, s2, s3, coef, skip_nonfinite, index, bad, skipped, stream=0):
    """Launch the ``kind`` kernel on tuples of equal-dtype 1-D device arrays, in one launch
    (two with ``skip_nonfinite``), through numba's dispatcher. At most
    :data:`MAX_ARRAYS_PER_LAUNCH` arrays; ``index`` maps each to its ``bad`` and ``skipped``
    entries."""
    if len(ps) > MAX_ARRAYS_PER_LAUNCH:
        raise ValueError(
            f"launch takes at most MAX_ARRAYS_PER_LAUNCH = {MAX_ARRAYS_PER_LAUNCH} arrays "
            f"(kernel parameters stay under 4 KiB), got {len(ps)}; adam(), rmsprop() and "
            "nadam() split longer lists"
        )
    arrays = (*ps, *gs, *s1, *s2, *s3)
    contiguous = all(a.is_c_contiguous() for a in arrays)  # strided views: scalar kernel
    pointers = [data_pointer(a) for a in arrays]
    kernel, lanes = kernel_for(kind, {a.dtype for a in arrays}, pointers, contiguous)
    blocks, threads = grid(max(a.size for a in ps), lanes)
    coef = cast_coefficients(coef, s1[0].dtype)  # the state's dtype (float32 for float16 p)
    with quiet_launches():
        if skip_nonfinite:
            mark_nonfinite_kernel[(blocks, len(ps)), (threads, 1), stream](gs, index, bad)
        kernel[(blocks, len(ps)), (threads, 1), stream](ps, gs, s1, s2, s3, coef, index, bad,
                                                        skipped)  # fmt: skip


#: numba-cuda's low-occupancy warning, as a ``warnings`` filter's ``message`` (matched from
#: the start of the message, colour codes included)
OCCUPANCY_WARNING = r"(\x1b\[[0-9;]*m)*Grid size \d+ will likely result in GPU under-util"


@contextlib.contextmanager
def quiet_launches():
    """Launch through numba's dispatcher without its low-occupancy warning: a small array
    gets a small grid by design (numba-cuda warns below two blocks per multiprocessor)."""
    with warnings.catch_warnings():
        # numba-cuda's own NumbaPerformanceWarning class (not numba.core's): by message,
        # which numba wraps in terminal colour codes where colorama is installed
        warnings.filterwarnings("ignore", OCCUPANCY_WARNING)
        yield


def _many(kind, p, g, state, coef, stream):
    spec = algorithms.ALGORITHMS[kind]
    if not isinstance(state, spec.State):
        raise TypeError(f"state must be a {spec.State.__name__}, got {type(state).__name__}")
    if not isinstance(coef, spec.Coefficients):
        raise TypeError(f"coef must be a {spec.Coefficients.__name__}, got {type(coef).__name__}")
    single = not isinstance(p, (list, tuple))
    as_tuple = (lambda x: (x,)) if single else tuple
    used = (True, *spec.buffers(coef))
    s0 = as_tuple(state[0])
    buffers = [as_tuple(b) if use else s0 for b, use in zip(state, used, strict=True)]
    arrays = [tuple(a.reshape(a.size) for a in x) for x in (as_tuple(p), as_tuple(g), *buffers)]
    if len({len(a) for a in arrays}) != 1:
        raise ValueError("p, g and the state buffers must be lists of the same length")
    for part in chunks([a.size for a in arrays[0]]):
        index, bad, skipped = _no_skip_flags(len(part))
        launch(kind, *(tuple(a[i] for i in part) for a in arrays), coef, False, index, bad,
               skipped, stream)  # fmt: skip


_NO_SKIP = {}


def _no_skip_flags(n):
    """``index``, all-zero ``bad`` flags and ``skipped`` counts (never written without
    ``skip_nonfinite``), allocated once per number of arrays instead of at every call."""
    if n not in _NO_SKIP:
        _NO_SKIP[n] = (
            cuda.to_device(np.arange(n, dtype=np.int32)),
            cuda.to_device(np.zeros(n, np.int32)),
            cuda.to_device(np.zeros(n, np.int64)),
        )
    return _NO_SKIP[n]


def _launcher(spec):
    def launch_algorithm(p, g, state, coef, stream=0):
        _many(spec.name, p, g, state, coef, stream)

    launch_algorithm.__name__ = launch_algorithm.__qualname__ = spec.name
    launch_algorithm.__doc__ = f"""{spec.title} step in place on device arrays: one array
    each, or equal-length lists (split into launches of at most
    :data:`MAX_ARRAYS_PER_LAUNCH` arrays).

    Parameters
    ----------
    p, g : device array or list of device arrays
        C-contiguous float32/float64 CUDA arrays (numba device arrays).
    state : {spec.State.__name__}
        Its fields ({", ".join(spec.State._fields)}) are device arrays (or lists) like
        ``p``; those the coefficients do not use are not accessed (pass any array).
    coef : {spec.Coefficients.__name__}
        This step's coefficients (:func:`fastadam.kernels.{spec.name}_coefficients`), cast
        to the state's dtype here.
    stream : numba stream, optional
        Stream to launch on.
    """
    return launch_algorithm


for _name, _spec in algorithms.ALGORITHMS.items():
    globals()[f"{_name}_update"] = DEVICE[_name][0]
    globals()[_name] = _launcher(_spec)
    __all__ += [f"{_name}_update", _name]
del _name, _spec
