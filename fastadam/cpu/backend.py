"""The CPU backend of the optimizers: numpy arrays, updated by the compiled loops of
:mod:`fastadam.cpu.kernels`.

A backend is the small set of operations an optimizer needs on its arrays; the GPU backend
(:mod:`fastadam.cuda.backend`) offers the same names for CUDA arrays. Complex parameters
are updated through a float view, real and imaginary parts as independent elements, as
torch.optim does.
"""

import numpy as np

from .. import _validation as val
from .kernels import COMPILED, PARALLEL_MIN_SIZE

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


def check_grads(grads, params, single):
    """The gradients as a sequence aligned with ``params``. The common case (C-contiguous
    numpy arrays of the parameters' dtypes and shapes) is recognised quickly; anything else
    goes through :func:`fastadam._validation.check_grads`, whose errors name the problem."""
    if single:
        p = params[0]
        if (  # (``is``: numpy's builtin dtypes are singletons; others take the full check)
            type(grads) is np.ndarray and grads.dtype is p.dtype and grads.shape == p.shape
            and grads.flags.c_contiguous
        ):  # fmt: skip
            return (grads,)
    elif type(grads) in (list, tuple) and len(grads) == len(params):
        if all(map(_fits, grads, params)):
            return grads
    return val.check_grads(grads, params, single)


def _fits(g, p):
    return (
        type(g) is np.ndarray and g.dtype == p.dtype and g.shape == p.shape
        and g.flags.c_contiguous
    )  # fmt: skip


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


def launcher(spec, arrays, skipped, gather, stream=None):
    """The function that makes one step of algorithm ``spec`` on ``arrays`` (tuples of flat
    arrays of one dtype: parameters and the three state buffers) in one compiled call:
    ``run(args, grads, t, skip_nonfinite)`` with ``gather(grads)`` the tuple of flat
    gradients; it returns the value carried to the next step (see
    :mod:`fastadam.cpu.loops`)."""
    compiled = COMPILED[spec.name]
    ps, s0s, s1s, s2s = arrays
    step = compiled.step_serial if max(p.size for p in ps) < PARALLEL_MIN_SIZE else compiled.step

    def run(args, grads, t, skip_nonfinite):
        return step(ps, gather(grads), s0s, s1s, s2s, t, args, skipped if skip_nonfinite else None)

    return run
