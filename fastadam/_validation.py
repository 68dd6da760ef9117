"""Input checks shared by the optimizers and ``minimize``.

Every check raises before anything is written, with a message that names the argument and
says what would be valid.
"""

import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _describe(x):
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        return f"array of dtype {x.dtype} and shape {x.shape}"
    return type(x).__name__


def check_array(x, name, writeable, dtypes=FLOAT_DTYPES):
    """Check one parameter (``writeable=True``) or gradient array."""
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array (float32 or float64), got {type(x).__name__}"
        )
    if x.dtype not in dtypes:
        raise TypeError(
            f"{name} must have dtype float32 or float64 (or complex64/complex128), got {x.dtype}"
        )
    if not x.flags.c_contiguous:
        raise ValueError(
            f"{name} must be C-contiguous (updated in place); got a strided view of shape "
            f"{x.shape}: pass np.ascontiguousarray(...) and keep a reference to it"
        )
    if writeable and not x.flags.writeable:
        raise ValueError(f"{name} is read-only; parameters are updated in place")
    return x


def as_param_list(params, check=check_array, may_share_memory=np.may_share_memory):
    """Return ``(list_of_arrays, single)`` for one array or a list/tuple of arrays.

    ``check(x, name, writeable)`` validates (and may convert) one array; the GPU backend
    passes its own.
    """
    if isinstance(params, (list, tuple)):
        if len(params) == 0:
            raise ValueError("params is an empty list; pass at least one array")
        arrays = [check(p, f"params[{i}]", True) for i, p in enumerate(params)]
        single = False
    else:
        arrays = [check(params, "params", True)]
        single = True
    for i in range(len(arrays)):
        for j in range(i):
            if may_share_memory(arrays[i], arrays[j]):
                raise ValueError(
                    f"params[{j}] and params[{i}] share memory; each parameter array must "
                    "appear once"
                )
    return arrays, single


def _numpy_grad(g, name):
    if not isinstance(g, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(g).__name__}")
    return g


def grad_list(grads, params, single):
    """``grads`` as a sequence of one gradient per parameter: TypeError or ValueError
    unless it has the structure of ``params`` (one array, or a list or tuple of as many)."""
    if single:
        if isinstance(grads, (list, tuple)):
            raise TypeError(
                "grads must be one array, like params (got a "
                f"{type(grads).__name__} of length {len(grads)})"
            )
        return [grads]
    if not isinstance(grads, (list, tuple)):
        raise TypeError(
            f"grads must be a list of {len(params)} arrays, like params; got "
            f"{type(grads).__name__}"
        )
    if len(grads) != len(params):
        raise ValueError(
            f"grads has {len(grads)} arrays but params has {len(params)}; pass one "
            "gradient per parameter array"
        )
    return grads


def grad_name(single, i):
    """How messages name gradient ``i``."""
    return "grads" if single else f"grads[{i}]"


def _mismatch(name, g, p):
    return ValueError(
        f"{name} is an {_describe(g)} but its parameter is an {_describe(p)}; they must match"
    )


def check_grad(g, p, name, as_array=_numpy_grad):
    """Check one gradient against its parameter; return it as a C-contiguous array.

    ``as_array(g, name)`` checks the kind of the array (and may convert it); the GPU
    backend passes its own.
    """
    g = as_array(g, name)
    if g.shape != p.shape or g.dtype != p.dtype:
        raise _mismatch(name, g, p)
    if isinstance(g, np.ndarray) and not g.flags.c_contiguous:
        g = np.ascontiguousarray(g)
    return g


def check_grads(grads, params, single, as_array=_numpy_grad):
    """Check gradients against the parameters; return a list of C-contiguous arrays
    (:func:`check_grad` of each)."""
    grads = grad_list(grads, params, single)
    return [
        check_grad(g, p, grad_name(single, i), as_array)
        for i, (g, p) in enumerate(zip(grads, params, strict=True))
    ]


def scalar_of(value):
    """The scalar a 0-d array holds (anything else as it is)."""
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


def check_real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """A finite real number within ``[low, high]`` (ends open where asked); a 0-d array of
    one is taken as the number it holds, as numpy does."""
    value = scalar_of(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}"
        interval += ")" if high_open or high is None else "]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return value


def check_bool(value, name):
    value = scalar_of(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_lr(lr):
    """A non-negative float or a callable schedule ``lr(t)``."""
    if callable(lr):
        return lr
    return check_real(lr, "lr", low=0.0)


def lr_at(lr, t):
    """Evaluate the learning rate (a float or a schedule) at step ``t``."""
    if not callable(lr):
        return lr
    value = lr(t)
    try:
        return check_real(value, f"lr({t}) (the schedule's value)", low=0.0)
    except TypeError:
        raise TypeError(
            f"the lr schedule must return a real number, got {value!r} at t={t}"
        ) from None


def check_beta(value, name):
    """A decay rate in [0, 1); 1 gets its own explanation."""
    if not isinstance(value, bool) and isinstance(value, numbers.Real) and value == 1:
        raise ValueError(
            f"{name}=1 is not allowed: the moment would never move from its initial value and "
            f"the bias correction 1 - {name}**t is 0, so the step is 0/0 (NaN). Valid: "
            "0 <= " + name + " < 1 (Adam with beta1 = 1 is not RMSProp; RMSProp is beta1 = 0)"
        )
    return check_real(value, name, low=0.0, high=1.0, high_open=True)
