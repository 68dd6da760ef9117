"""The CPU backend of the optimizers: numpy arrays, updated by the compiled loops of
:mod:`fastadam.cpu.kernels`.

A backend is the small set of operations an optimizer needs on its arrays; the GPU backend
(:mod:`fastadam.cuda.backend`) offers the same names for CUDA arrays. Complex parameters
are updated through a float view, real and imaginary parts as independent elements, as
torch.optim does.
"""

import numpy as np

from .. import _validation as val
from .kernels import COMPILED, PARALLEL_MIN_SIZE, all_finite

_COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))


def _check_array(x, name, writeable):
    return val.check_array(x, name, writeable, dtypes=val.FLOAT_DTYPES + _COMPLEX)


def check_params(params, mixed_precision):
    if mixed_precision:
        raise ValueError(
            "mixed_precision=True is for float16 CUDA arrays; numpy parameters must be float32 "
            "or float64"
        )
    return val.as_param_list(params, check=_check_array)


def check_stream(stream):
    if stream is not None:
        raise ValueError("stream is for CUDA arrays; the parameters are numpy arrays")


check_grads = val.check_grads


def kernel_dtype(p):
    """The dtype the kernels see: ``p``'s, or its real part's for complex ``p``."""
    return p.real.dtype if p.dtype in _COMPLEX else p.dtype


def full(p, value, stream=None):
    """A new flat state buffer for parameter ``p`` (real: two per complex element)."""
    dtype = kernel_dtype(p)
    return np.full(p.size * (p.itemsize // dtype.itemsize), value, dtype=dtype)


def flat(x):
    """A 1-D real view of a C-contiguous array."""
    if x.dtype in _COMPLEX:
        x = x.view(x.real.dtype)
    return x if x.ndim == 1 else x.reshape(-1)


def layout_dtype(p):
    """The dtype of a state buffer in ``state_dict``: the parameter's."""
    return p.dtype


def to_param_layout(buffer, p):
    """A copy of a state buffer, shaped and typed like its parameter."""
    return buffer.view(p.dtype).reshape(p.shape).copy()


def counters(n):
    return np.zeros(n, dtype=np.int64)


def to_numpy(x):
    return np.array(x, copy=True)


def assign(dst, src):
    src = np.asarray(src)
    if src.dtype in _COMPLEX:
        src = src.view(src.real.dtype)
    dst[...] = src.reshape(dst.shape)


def update(spec, arrays, gs, coef, skip_nonfinite, skipped, stream=None):
    """One step on tuples of flat arrays of one dtype: the small arrays in one serial call,
    the large ones one by one over all threads."""
    compiled = COMPILED[spec.name]
    ps, s0s, s1s, s2s = arrays
    c = spec.cast(coef, ps[0].dtype.type)
    if ps[-1].size < PARALLEL_MIN_SIZE and all(p.size < PARALLEL_MIN_SIZE for p in ps):
        compiled.many(ps, gs, s0s, s1s, s2s, c, skip_nonfinite, skipped)
        return
    small = [k for k, p in enumerate(ps) if p.size < PARALLEL_MIN_SIZE]
    if small:
        sub = np.zeros(len(small), dtype=np.int64)
        compiled.many(*(tuple(a[k] for k in small) for a in (ps, gs, s0s, s1s, s2s)), c,
                      skip_nonfinite, sub)  # fmt: skip
        skipped[small] += sub
    for k, p in enumerate(ps):
        if p.size >= PARALLEL_MIN_SIZE:
            if skip_nonfinite and not all_finite(gs[k]):
                skipped[k] += 1
            else:
                compiled.parallel(p, gs[k], s0s[k], s1s[k], s2s[k], c)
