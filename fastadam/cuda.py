"""GPU kernels: the rules of :mod:`fastadam.rules` compiled with numba-cuda.

This is the only module that imports ``numba.cuda`` (so the CUDA backend can be swapped in
one place). It needs the ``cuda`` extra (``pip install fastadam[cuda]``); it runs on the
CUDA simulator with ``NUMBA_ENABLE_CUDASIM=1``.

Device functions, for a user's own ``@cuda.jit`` kernel
    :data:`adam_update`, :data:`rmsprop_update` -- the scalar rules, compiled with
    ``cuda.jit(device=True)`` from the same plain functions as the CPU kernels.

Kernels
    :data:`adam_kernel`, :data:`rmsprop_kernel` -- ``@cuda.jit`` kernels that update a tuple
    of 1-D arrays in one launch (grid: ``(blocks, n_arrays)``; grid-stride loop within each
    array), used by the optimizers.
    :func:`adam`, :func:`rmsprop` -- launch them on one or more arrays from Python.

Example of a user kernel (compute ``coef`` on the host once per step, with
:func:`fastadam.rules.adam_coefficients` and :func:`cast_coefficients`)::

    from numba import cuda
    import fastadam.cuda as fc

    @cuda.jit
    def my_step(x, g, m, v, coef):
        i = cuda.grid(1)
        if i < x.size:
            b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, mode = coef
            x[i], m[i], v[i], _ = fc.adam_update(
                x[i], g[i], m[i], v[i], x[i], b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, 0)

Synchronisation: kernels are launched on ``stream`` (default: the default stream) and are
asynchronous. Arrays from other libraries are taken through ``__cuda_array_interface__``
zero-copy; numba synchronises on the stream the exporter names (CuPy and PyTorch export
their current stream), as the CUDA array interface specifies.
"""

import numpy as np
from numba import cuda

from . import rules

__all__ = [
    "adam_update",
    "rmsprop_update",
    "adam_kernel",
    "rmsprop_kernel",
    "adam",
    "rmsprop",
    "cast_coefficients",
    "THREADS_PER_BLOCK",
    "MAX_BLOCKS",
]

#: Threads per block of the launches made by :func:`adam` / :func:`rmsprop`.
THREADS_PER_BLOCK = 256
#: Upper bound on the blocks per array (the grid-stride loop covers the rest).
MAX_BLOCKS = 4096

adam_update = cuda.jit(device=True)(rules.adam_rule)
rmsprop_update = cuda.jit(device=True)(rules.rmsprop_rule)


@cuda.jit
def _mark_nonfinite(gs, bad):
    k = cuda.blockIdx.y
    g = gs[k]
    for i in range(cuda.grid(1), g.size, cuda.gridDim.x * cuda.blockDim.x):
        if g[i] - g[i] != 0:  # NaN for NaN and +-Inf
            bad[k] = 1


@cuda.jit
def adam_kernel(ps, gs, ms, vs, vmaxs, coef, bad, skipped):
    """Adam on ``ps[k]`` for ``k = blockIdx.y``; arrays whose ``bad[k]`` is set are
    skipped and counted in ``skipped[k]``."""
    k = cuda.blockIdx.y
    start = cuda.grid(1)
    if bad[k]:
        if start == 0:
            skipped[k] += 1
        return
    p, g, m, v = ps[k], gs[k], ms[k], vs[k]
    b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, mode = coef
    stride = cuda.gridDim.x * cuda.blockDim.x
    if mode == 0:
        for i in range(start, p.size, stride):
            p[i], m[i], v[i], _ = adam_update(
                p[i], g[i], m[i], v[i], p[i], b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, 0
            )
    else:
        vmax = vmaxs[k]
        for i in range(start, p.size, stride):
            p[i], m[i], v[i], vmax[i] = adam_update(
                p[i], g[i], m[i], v[i], vmax[i], b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, mode
            )  # fmt: skip


@cuda.jit
def rmsprop_kernel(ps, gs, vs, gbars, bufs, coef, bad, skipped):
    """RMSProp on ``ps[k]`` for ``k = blockIdx.y`` (see :data:`adam_kernel`)."""
    k = cuda.blockIdx.y
    start = cuda.grid(1)
    if bad[k]:
        if start == 0:
            skipped[k] += 1
        return
    p, g, v, gbar, buf = ps[k], gs[k], vs[k], gbars[k], bufs[k]
    d, od, c, ei, eo, li, lo, mu, l2, wdf, s, centered, use_mom, nest = coef
    for i in range(start, p.size, cuda.gridDim.x * cuda.blockDim.x):
        p[i], v[i], gb, b = rmsprop_update(
            p[i], g[i], v[i], gbar[i] if centered else p[i], buf[i] if use_mom else p[i],
            d, od, c, ei, eo, li, lo, mu, l2, wdf, s, centered, use_mom, nest,
        )  # fmt: skip
        if centered:
            gbar[i] = gb
        if use_mom:
            buf[i] = b


def cast_coefficients(coef, dtype):
    """Cast the float entries of a coefficient tuple to ``dtype`` (ints and bools kept), so
    that float32 arrays are updated in float32 on the GPU."""
    f = np.dtype(dtype).type
    return tuple(c if isinstance(c, (bool, int, np.bool_)) else f(c) for c in coef)


def _grid(arrays):
    largest = max(a.size for a in arrays)
    blocks = max(1, min(MAX_BLOCKS, -(-largest // THREADS_PER_BLOCK)))
    return (blocks, len(arrays)), (THREADS_PER_BLOCK, 1)


def launch(kernel, ps, gs, s1, s2, s3, coef, skip_nonfinite, bad, skipped, stream=0):
    """Launch ``kernel`` on tuples of equal-dtype 1-D device arrays (one launch; two with
    ``skip_nonfinite``). ``bad`` (int32) and ``skipped`` (int64) hold one entry per array."""
    grid, block = _grid(ps)
    coef = cast_coefficients(coef, s1[0].dtype)  # the state's dtype (float32 for float16 p)
    if skip_nonfinite:
        bad.copy_to_device(np.zeros(len(ps), np.int32), stream=stream)
        _mark_nonfinite[grid, block, stream](gs, bad)
    kernel[grid, block, stream](ps, gs, s1, s2, s3, coef, bad, skipped)


def _many(kernel, ps, gs, s1, s2, s3, coef, stream):
    single = not isinstance(ps, (list, tuple))
    as_tuple = (lambda x: (x,)) if single else tuple
    ps, gs, s1, s2, s3 = (
        tuple(a.reshape(a.size) for a in as_tuple(x)) for x in (ps, gs, s1, s2, s3)
    )
    bad, skipped = _no_skip_flags(len(ps))
    launch(kernel, ps, gs, s1, s2, s3, coef, False, bad, skipped, stream)


_NO_SKIP = {}


def _no_skip_flags(n):
    """All-zero ``bad`` flags (never set without ``skip_nonfinite``, so ``skipped`` is never
    written): allocated once per number of arrays instead of at every call."""
    if n not in _NO_SKIP:
        _NO_SKIP[n] = (
            cuda.to_device(np.zeros(n, np.int32)),
            cuda.to_device(np.zeros(n, np.int64)),
        )
    return _NO_SKIP[n]


def adam(p, g, m, v, vmax, coef, stream=0):
    """Adam step in place on device arrays: one array each, or equal-length lists.

    Parameters
    ----------
    p, g, m, v, vmax : device array or list of device arrays
        C-contiguous float32/float64 CUDA arrays (numba device arrays); ``vmax`` is not
        accessed without AMSGrad (pass ``v``).
    coef : tuple
        :func:`fastadam.rules.adam_coefficients` for this step.
    stream : numba stream, optional
        Stream to launch on.
    """
    _many(adam_kernel, p, g, m, v, vmax, coef, stream)


def rmsprop(p, g, v, gbar, buf, coef, stream=0):
    """RMSProp step in place on device arrays (see :func:`adam`); ``gbar``/``buf`` are not
    accessed unless centered / momentum > 0 (pass ``v``)."""
    _many(rmsprop_kernel, p, g, v, gbar, buf, coef, stream)
