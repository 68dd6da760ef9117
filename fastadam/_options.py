"""Input checks and option resolution for ``minimize``: x0, bounds, the options dict.

Hyperparameters are validated and resolved (convention defaults, knobs) by constructing the
core optimizer class itself on a one-element dummy array, so ``minimize`` accepts exactly
what :class:`fastadam.Adam`, :class:`fastadam.AdamW` and :class:`fastadam.RMSProp` accept,
with the same defaults and the same error messages. The resolved values are written into
the settings slots of the ``info`` array read by :mod:`fastadam._step`.
"""

import inspect
import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, OptimizeWarning

from . import _step
from . import _validation as val
from .optimizers import Adam, AdamW, RMSProp

METHODS = {"adam": Adam, "adamw": AdamW, "rmsprop": RMSProp}

#: Stopping controls and their defaults (``maxiter=None``: 1000, or unlimited with batches).
STOP_DEFAULTS = dict(maxiter=None, gtol=1e-5, ftol=0.0, xtol=0.0, window=10, maxtime=None)
#: Run controls and their defaults.
RUN_DEFAULTS = dict(
    disp=False, disp_every=None, progress=False, batches=None, finite_diff_step=None,
    finite_diff_rel_step=None, compiled=None,
)  # fmt: skip
DEFAULT_MAXITER = 1000
UNLIMITED = float(2**62)


def hyperparameter_names(method):
    """The option names that go to the optimizer class of ``method``."""
    cls = METHODS[method]
    sig = inspect.signature(cls.__init__)
    skip = {"self", "params", "maximize", "skip_nonfinite", "stream", "mixed_precision"}
    return tuple(p for p in sig.parameters if p not in skip)


@dataclass
class Config:
    """Everything ``minimize`` resolved from ``method``, ``tol`` and ``options``."""

    method: str
    settings: np.ndarray  # the info array's settings slots
    lr: Any  # float, or a schedule lr(t)
    hyperparameters: dict
    maxtime: float | None = None
    disp: bool = False
    disp_every: int = 1
    progress: bool = False
    batches: Any = None
    finite_diff_step: float | None = None  # absolute step
    finite_diff_rel_step: float | None = None  # scipy's relative step
    compiled: bool | None = None
    unknown: dict = field(default_factory=dict)


def _int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _tolerance(value, name):
    return val.check_real(value, name, low=0.0)


def resolve(method, options, tol=None):
    """Validate ``method``, ``tol`` and ``options``; return a :class:`Config`.

    Unknown option names are returned in ``Config.unknown`` (the caller warns).
    """
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    method = method.lower()
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    options = {} if options is None else dict(options)
    if "maximize" in options:
        raise ValueError("minimize() minimizes; maximize is not an option (minimize -fun instead)")
    if "tol" in options:  # scipy passes tol to custom methods as an option
        opt_tol = options.pop("tol")
        if tol is None:
            tol = opt_tol
    names = hyperparameter_names(method)
    explicit = {k for k in ("gtol", "ftol", "xtol") if k in options}
    hyper = {k: options.pop(k) for k in names if k in options}
    stop = {k: options.pop(k, v) for k, v in STOP_DEFAULTS.items()}
    run = {k: options.pop(k, v) for k, v in RUN_DEFAULTS.items()}
    unknown = options
    if tol is not None:
        tol = _tolerance(tol, "tol")
        for key in ("gtol", "ftol", "xtol"):  # like scipy: tol only sets unset tolerances
            if key not in explicit:
                stop[key] = tol

    opt = METHODS[method](np.zeros(1), **hyper)  # validates and resolves the convention
    c = opt.convention
    settings = np.zeros(_step.SIZE)
    lr = opt.lr
    settings[_step.LR] = 0.0 if callable(lr) else lr
    h = _step.H0
    if method == "rmsprop":
        settings[_step.METHOD] = 1
        values = (
            opt.decay, opt.eps, opt.momentum, opt.weight_decay, c.decoupled_weight_decay,
            c.eps_in_sqrt, c.lr_in_momentum, c.bias_correction, opt.centered, c.nesterov,
            c.initial_scale,
        )  # fmt: skip
        resolved = dict(
            decay=opt.decay, eps=opt.eps, momentum=opt.momentum, centered=opt.centered,
            weight_decay=opt.weight_decay, decoupled_weight_decay=c.decoupled_weight_decay,
            eps_in_sqrt=c.eps_in_sqrt, lr_in_momentum=c.lr_in_momentum,
            bias_correction=c.bias_correction, nesterov=c.nesterov,
            initial_scale=c.initial_scale,
        )  # fmt: skip
    else:
        settings[_step.METHOD] = 0
        values = (
            opt.betas[0], opt.betas[1], opt.eps, opt.eps_root, opt.weight_decay,
            c.decoupled_weight_decay, c.eps_hat, c.bias_correction, opt.amsgrad,
            c.amsgrad_corrected,
        )  # fmt: skip
        resolved = dict(
            betas=opt.betas, eps=opt.eps, eps_root=opt.eps_root, weight_decay=opt.weight_decay,
            decoupled_weight_decay=c.decoupled_weight_decay, amsgrad=opt.amsgrad,
            eps_hat=c.eps_hat, amsgrad_corrected=c.amsgrad_corrected,
            bias_correction=c.bias_correction,
        )  # fmt: skip
    for i, value in enumerate(values):
        settings[h + 1 + i] = float(value)
    hyperparameters = dict(method=method, convention=c.name, lr=lr, **resolved)

    batches = run["batches"]
    if batches is not None:
        if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
            raise TypeError(f"options['batches'] must be an iterable, got {type(batches)}")
    maxiter = stop["maxiter"]
    if maxiter is None:
        maxiter = UNLIMITED if batches is not None else DEFAULT_MAXITER
    else:
        maxiter = _int(maxiter, "maxiter", 0)
    settings[_step.MAXITER] = maxiter
    settings[_step.GTOL] = _tolerance(stop["gtol"], "gtol")
    settings[_step.FTOL] = _tolerance(stop["ftol"], "ftol")
    settings[_step.XTOL] = _tolerance(stop["xtol"], "xtol")
    settings[_step.WINDOW] = _int(stop["window"], "window", 1)
    maxtime = stop["maxtime"]
    if maxtime is not None:
        maxtime = val.check_real(maxtime, "maxtime", low=0.0, low_open=True)

    disp = val.check_bool(run["disp"], "disp")
    progress = val.check_bool(run["progress"], "progress")
    every = run["disp_every"]
    if every is None:
        every = max(1, int(maxiter) // 20) if maxiter < UNLIMITED else 100
    every = _int(every, "disp_every", 1)
    step = run["finite_diff_step"]
    if step is not None:
        step = val.check_real(step, "finite_diff_step", low=0.0, low_open=True)
    rel_step = run["finite_diff_rel_step"]
    if rel_step is not None:
        rel_step = val.check_real(rel_step, "finite_diff_rel_step", low=0.0, low_open=True)
        if step is not None:
            raise ValueError(
                "pass finite_diff_step (an absolute step) or finite_diff_rel_step (scipy's "
                "relative step), not both"
            )
    compiled = run["compiled"]
    if compiled is not None:
        compiled = val.check_bool(compiled, "compiled")
    return Config(
        method=method, settings=settings, lr=lr, hyperparameters=hyperparameters,
        maxtime=maxtime, disp=disp, disp_every=every, progress=progress, batches=batches,
        finite_diff_step=step, finite_diff_rel_step=rel_step, compiled=compiled,
        unknown=unknown,
    )  # fmt: skip


def warn_unknown(unknown, stacklevel):
    """Warn about unknown options the way scipy's own methods do."""
    if unknown:
        names = ", ".join(map(str, unknown))
        warnings.warn(f"Unknown solver options: {names}", OptimizeWarning, stacklevel=stacklevel)


def check_x0(x0):
    """``x0`` as a fresh 1-D float32/float64 array (integers become float64, as in scipy)."""
    try:
        x = np.atleast_1d(np.asarray(x0))
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"x0 must be a 1-D array of real numbers: {exc}") from None
    if x.ndim != 1:
        raise ValueError(f"x0 must be 1-D (one variable per element), got shape {x.shape}")
    if x.size == 0:
        raise ValueError("x0 is empty; pass at least one variable")
    kind = x.dtype.kind
    if kind in "iu":
        x = x.astype(np.float64)
    elif kind == "f":
        if x.dtype not in val.FLOAT_DTYPES:
            x = x.astype(np.float64)
    else:
        raise TypeError(
            f"x0 must hold real numbers (float32, float64 or integers), got dtype {x.dtype}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 contains NaN or Inf")
    return np.array(x, order="C", copy=True)


def check_bounds(bounds, n, dtype):
    """``(lo, hi)`` arrays of length ``n`` in ``dtype``, or two empty arrays for no bounds.

    Accepts a :class:`scipy.optimize.Bounds` or a sequence of ``n`` pairs ``(lo, hi)`` where
    ``None`` means unbounded.
    """
    empty = np.zeros(0, dtype=dtype)
    if bounds is None:
        return empty, empty
    if isinstance(bounds, Bounds):
        try:
            lo = np.broadcast_to(np.asarray(bounds.lb, dtype=np.float64), (n,))
            hi = np.broadcast_to(np.asarray(bounds.ub, dtype=np.float64), (n,))
        except ValueError:
            raise ValueError(
                f"bounds: Bounds.lb / Bounds.ub have shapes {np.shape(bounds.lb)} / "
                f"{np.shape(bounds.ub)}; x0 has {n} elements"
            ) from None
    else:
        try:
            pairs = list(bounds)
        except TypeError:
            raise TypeError(
                "bounds must be a scipy.optimize.Bounds or a sequence of (lo, hi) pairs, got "
                f"{type(bounds).__name__}"
            ) from None
        if len(pairs) != n:
            raise ValueError(f"bounds has {len(pairs)} (lo, hi) pairs but x0 has {n} elements")
        lo = np.empty(n)
        hi = np.empty(n)
        for i, pair in enumerate(pairs):
            try:
                a, b = pair
            except (TypeError, ValueError):
                raise ValueError(f"bounds[{i}] must be a pair (lo, hi), got {pair!r}") from None
            lo[i] = -math.inf if a is None else float(a)
            hi[i] = math.inf if b is None else float(b)
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError("bounds contain NaN; use None or +-inf for an unbounded side")
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"bounds: lower bound > upper bound for {bad.size} variable(s), first at index "
            f"{i}: {lo[i]!r} > {hi[i]!r}"
        )
    if np.all(np.isneginf(lo)) and np.all(np.isposinf(hi)):
        return empty, empty
    return inward(lo, hi, dtype)


def inward(lo, hi, dtype):
    """The float64 bounds in ``dtype``, rounded inward (lower up, upper down), so that no
    point of the rounded box is outside the given one; ValueError when an interval holds no
    finite value of ``dtype``."""
    lo = np.ascontiguousarray(lo, dtype=np.float64)
    hi = np.ascontiguousarray(hi, dtype=np.float64)
    lo_x, hi_x, bad = _step.inward_bounds(lo, hi, np.zeros(1, dtype=dtype))
    if bad >= 0:
        name = np.dtype(dtype).name
        a, b = float(lo[bad]), float(hi[bad])
        ra, rb = float(lo_x[bad]), float(hi_x[bad])
        raise ValueError(
            f"bounds[{bad}] = ({a!r}, {b!r}) holds no finite {name} value (rounded inward to "
            f"{name}, the interval is [{ra!r}, {rb!r}]"
            + (")" if name == "float64" else "); widen it or pass a float64 x0")
        )
    return lo_x, hi_x
