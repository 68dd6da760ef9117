"""Input checks and option resolution for ``minimize`` and ``minimize_batch``.

Hyperparameters are validated and resolved (convention defaults, knobs) by constructing the
optimizer class itself on a one-element dummy array, so ``minimize`` accepts exactly what
:class:`fastadam.Adam`, :class:`fastadam.AdamW`, :class:`fastadam.RMSProp` and
:class:`fastadam.NAdam` accept, with the same defaults and the same error messages. In a
batch, numeric hyperparameters may be arrays with one value per problem; each distinct
value (and each distinct combination, for the checks that involve several) is validated
the same way.
"""

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, OptimizeWarning

from .. import _validation as val
from ..algorithms._spec import check as check_argument
from ..cpu.compile import jit
from ..optimizers import Adam, AdamW, NAdam, RMSProp
from . import engine

#: ``method`` -> optimizer class (its algorithm, keywords, defaults and checks).
METHODS = {cls.__name__.lower(): cls for cls in (Adam, AdamW, RMSProp, NAdam)}

#: Stopping controls and their defaults (``maxiter=None``: 1000, or unlimited with batches).
STOP_DEFAULTS = dict(maxiter=None, gtol=1e-5, ftol=0.0, xtol=0.0, window=10, maxtime=None)
#: Run controls and their defaults.
RUN_DEFAULTS = dict(
    disp=False, disp_every=None, progress=False, batches=None, finite_diff_step=None,
    finite_diff_rel_step=None, compiled=None, track_best=True, device=None,
)  # fmt: skip
DEVICES = ("cpu", "cuda")
DEFAULT_MAXITER = 1000
UNLIMITED = 2**62


def hyperparameter_names(method):
    """The option names that go to the optimizer class of ``method``."""
    cls = METHODS[method]
    skip = {"maximize", "skip_nonfinite", "stream", "mixed_precision"}
    return tuple(n for n in cls._keywords() if n not in skip)


@dataclass
class Config:
    """Everything ``minimize`` resolved from ``method``, ``tol`` and ``options``."""

    method: str
    spec: Any  # the fastadam.algorithms.Algorithm
    hyper: tuple  # the coefficients' arguments after t: scalars or (B,) arrays (carry: None)
    batched: tuple  # 1 where hyper holds an array
    carry: Any  # the carried argument's value at step 1 (float), or None
    state_init: tuple  # ((used, initial value), ...) for the three state buffers
    controls: np.ndarray  # engine.CONTROLS, one record
    lr: Any  # float, (B,) array, or a schedule lr(t)
    lr_index: int  # position of lr in hyper
    hyperparameters: dict
    maxtime: float | None = None
    disp: bool = False
    disp_every: int = 1
    progress: bool = False
    batches: Any = None
    finite_diff_step: float | None = None  # absolute step
    finite_diff_rel_step: float | None = None  # scipy's relative step
    compiled: bool | None = None
    track_best: bool = True
    device: str | None = None  # "cpu", "cuda", or None: where x0 lives
    unknown: dict = field(default_factory=dict)

    @property
    def maxiter(self):
        return int(self.controls[0]["maxiter"])


def _int(value, name, low):
    value = val.scalar_of(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _tolerance(value, name):
    return val.check_real(value, name, low=0.0)


def _split_options(method, options, tol):
    """``(hyperparameters, stop, run, unknown)`` from the options dict."""
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    options = {} if options is None else dict(options)
    if "maximize" in options:
        raise ValueError("minimize() minimizes; maximize is not an option (minimize -fun instead)")
    if "tol" in options:  # scipy passes tol to custom methods as an option
        opt_tol = options.pop("tol")
        if tol is None:
            tol = opt_tol
    explicit = {k for k in ("gtol", "ftol", "xtol") if k in options}
    hyper = {k: options.pop(k) for k in hyperparameter_names(method) if k in options}
    stop = {k: options.pop(k, v) for k, v in STOP_DEFAULTS.items()}
    run = {k: options.pop(k, v) for k, v in RUN_DEFAULTS.items()}
    if tol is not None:
        tol = _tolerance(tol, "tol")
        for key in ("gtol", "ftol", "xtol"):  # like scipy: tol only sets unset tolerances
            if key not in explicit:
                stop[key] = tol
    return hyper, stop, run, options


def _per_problem(value):
    """Whether a hyperparameter is given per problem: an array of one or more dimensions
    (a 0-d array is the scalar it holds)."""
    return (isinstance(value, np.ndarray) and value.ndim >= 1) or (
        isinstance(value, (list, tuple)) and np.ndim(value) >= 1
    )


def _scalarize(hyper, batch):
    """Split the hyperparameters given per problem (arrays, or pairs of them for betas)
    from the scalars; the class is built with each array's first value."""
    arrays = {}
    scalars = {}
    for name, value in hyper.items():
        value = val.scalar_of(value)
        if name == "betas" and isinstance(value, (tuple, list)):  # (the class checks a pair)
            if len(value) != 2:
                scalars[name] = value
                continue
            parts = [np.asarray(v) if _per_problem(v) else val.scalar_of(v) for v in value]
            if any(isinstance(v, np.ndarray) for v in parts):
                arrays[name] = parts
                value = tuple(v.flat[0] if isinstance(v, np.ndarray) and v.size else v
                              for v in parts)  # fmt: skip
            scalars[name] = value
        elif _per_problem(value) and not callable(value):
            if batch is None:
                raise ValueError(
                    f"options[{name!r}] must be a scalar for one problem (per-problem values "
                    "are for minimize_batch)"
                )
            a = np.asarray(value)
            arrays[name] = a
            scalars[name] = a.flat[0] if a.size else value
        else:
            scalars[name] = value
    return scalars, arrays


def _problem_array(value, name, batch, kind):
    """A per-problem hyperparameter as a float64 array of shape (batch,), every value
    checked as the scalar would be."""
    a = np.asarray(value)
    if a.ndim != 1 or a.shape[0] not in (1, batch):
        raise ValueError(
            f"options[{name!r}] must be a scalar or an array of shape ({batch},) (one value per "
            f"problem), got shape {a.shape}"
        )
    if a.dtype.kind not in "fiu":
        raise TypeError(f"options[{name!r}] must hold real numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(np.broadcast_to(a.astype(np.float64), (batch,)))
    values, first = np.unique(a, return_index=True)
    for v, i in zip(values, first, strict=True):
        try:
            check_argument(kind, float(v), name)
        except ValueError as exc:
            raise ValueError(f"options[{name!r}][{i}]: {exc}") from None
    return a


def _hyperparameters(method, hyper, batch):
    """Validate the hyperparameters; return ``(spec, args, arrays, resolved, init)``."""
    scalars, given_arrays = _scalarize(hyper, batch)
    opt = METHODS[method](np.zeros(1), **scalars)  # validates and resolves the convention
    spec = opt.algorithm
    args = dict(opt._groups[0].args)
    arrays = {}
    for name, value in given_arrays.items():
        if name == "betas":
            for k, part in enumerate(value):
                if isinstance(part, np.ndarray):
                    arrays[f"beta{k + 1}"] = part
        else:
            arrays.update(opt._arguments({name: value}))
    for name in list(arrays):
        arrays[name] = _problem_array(arrays[name], name, batch, spec.checks[name])
    if arrays:  # the checks that involve several arguments, per distinct combination
        names = sorted(arrays)
        rows = np.unique(np.stack([arrays[n] for n in names], axis=1), axis=0)
        conv = spec.convention(opt.convention.name)
        for row in rows:
            spec.validate({**args, **dict(zip(names, map(float, row), strict=True))}, conv)
    init = spec.initial_state(args, opt.convention)
    return spec, opt, args, arrays, init


def resolve(method, options, tol=None, batch=None):
    """Validate ``method``, ``tol`` and ``options``; return a :class:`Config`.

    ``batch`` is the number of problems of ``minimize_batch`` (None for ``minimize``: every
    hyperparameter a scalar). Unknown option names are returned in ``Config.unknown`` (the
    caller warns).
    """
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    method = method.lower()
    hyper, stop, run, unknown = _split_options(method, options, tol)
    spec, opt, args, arrays, init = _hyperparameters(method, hyper, batch)
    args = {**args, **arrays}
    lr = args["lr"]
    carry = None
    if spec.carry:
        (name,) = spec.carry
        carry = spec.carry_from_scratch(name, 1, opt._groups[0].args)
    values = []
    for name in spec.arguments:
        if name in spec.carry:
            values.append(None)
        elif callable(args[name]):  # a schedule: the loop passes each step's value
            values.append(0.0)
        else:
            values.append(args[name])
    batched = tuple(int(v is None or isinstance(v, np.ndarray)) for v in values)
    coef = spec.coefficients(1, *(carry if v is None else _first(v) for v in values))
    used = (True, *spec.buffers(coef))
    if any(isinstance(v, np.ndarray) for v in values):  # the buffers any problem uses
        used = _buffers_any(spec, values, used, carry)
    state_init = tuple(zip(used, init, strict=True))
    resolved = {n: args[n] for n in spec.arguments + spec.state_arguments
                if n not in spec.carry and n != "maximize"}  # fmt: skip
    hyperparameters = dict(method=method, convention=opt.convention.name, **resolved)
    return _finish(
        stop, run, unknown, method=method, spec=spec, hyper=tuple(values), batched=batched,
        carry=carry, state_init=state_init, lr=lr, lr_index=spec.arguments.index("lr"),
        hyperparameters=hyperparameters,
    )  # fmt: skip


def _first(v):
    return float(v[0]) if isinstance(v, np.ndarray) else v


def _buffers_any(spec, values, used, carry):
    """Whether any problem's coefficients use each buffer."""
    arrays = [v for v in values if isinstance(v, np.ndarray)]
    rows = np.unique(np.stack(arrays, axis=1), axis=0)
    use = list(used)
    for row in rows:
        it = iter(row)
        row_values = [next(it) if isinstance(v, np.ndarray) else v for v in values]
        c = spec.coefficients(1, *(carry if v is None else v for v in row_values))
        for k, u in enumerate(spec.buffers(c)):
            use[k + 1] = use[k + 1] or u
    return tuple(use)


def _finish(stop, run, unknown, **fields):
    """The stopping and run controls, checked, into the Config."""
    batches = run["batches"]
    if batches is not None:
        if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
            raise TypeError(f"options['batches'] must be an iterable, got {type(batches)}")
    maxiter = stop["maxiter"]
    if maxiter is None:
        maxiter = UNLIMITED if batches is not None else DEFAULT_MAXITER
    else:
        maxiter = min(_int(maxiter, "maxiter", 0), UNLIMITED)
    controls = np.zeros(1, dtype=engine.CONTROLS)
    controls["maxiter"] = maxiter
    controls["gtol"] = _tolerance(stop["gtol"], "gtol")
    controls["ftol"] = _tolerance(stop["ftol"], "ftol")
    controls["xtol"] = _tolerance(stop["xtol"], "xtol")
    controls["window"] = _int(stop["window"], "window", 1)
    maxtime = stop["maxtime"]
    if maxtime is not None:
        maxtime = val.check_real(maxtime, "maxtime", low=0.0, low_open=True)
    every = run["disp_every"]
    if every is None:
        every = max(1, maxiter // 20) if maxiter < UNLIMITED else 100
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
    device = run["device"]
    if device is not None and device not in DEVICES:
        raise ValueError(f"options['device'] must be 'cpu' or 'cuda', got {device!r}")
    return Config(
        **fields, controls=controls, maxtime=maxtime, disp=val.check_bool(run["disp"], "disp"),
        disp_every=_int(every, "disp_every", 1),
        progress=val.check_bool(run["progress"], "progress"), batches=batches,
        finite_diff_step=step, finite_diff_rel_step=rel_step,
        compiled=None if compiled is None else val.check_bool(compiled, "compiled"),
        track_best=val.check_bool(run["track_best"], "track_best"), device=device,
        unknown=unknown,
    )  # fmt: skip


def warn_unknown(unknown, stacklevel):
    """Warn about unknown options the way scipy's own methods do."""
    if unknown:
        names = ", ".join(map(str, unknown))
        warnings.warn(f"Unknown solver options: {names}", OptimizeWarning, stacklevel=stacklevel)


def per_problem(shape, k, b):
    """1 when ``args[k]``, of ``shape``, holds one row per problem of a batch of ``b`` (its
    leading axis is b), 0 when all problems share it (a scalar, or a leading axis of 1):
    ``minimize_batch``'s broadcasting rule. ValueError otherwise."""
    if len(shape) == 0:
        return 0
    if shape[0] == b:
        return 1
    if shape[0] == 1:
        return 0
    raise ValueError(
        f"args[{k}] has shape {shape}: its leading axis must be {b} (one row per problem) "
        "or 1 (shared by all problems)"
    )


def check_x0(x0, batch=False):
    """``x0`` as a C-ordered float32/float64 array (integers become float64, as in scipy):
    1-D, or with ``batch`` 2-D (one row per problem). Not a copy where ``x0`` is one
    already: the run copies it into its own buffers and never writes to it."""
    name = "x0 (one row per problem)" if batch else "x0"
    ndim = 2 if batch else 1
    try:
        x = np.asarray(x0)
        if not batch:
            x = np.atleast_1d(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a {ndim}-D array of real numbers: {exc}") from None
    if x.ndim != ndim:
        what = "(problems, variables)" if batch else "(one variable per element)"
        raise ValueError(f"x0 must be {ndim}-D {what}, got shape {x.shape}")
    if x.size == 0:
        what = "problem and one variable" if batch else "variable"
        raise ValueError(f"x0 is empty (shape {x.shape}); pass at least one {what}")
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
    return np.ascontiguousarray(x)


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
            lo = np.asarray(bounds.lb, dtype=np.float64)
            hi = np.asarray(bounds.ub, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"bounds: Bounds.lb and Bounds.ub must hold real numbers, got {bounds.lb!r} and "
                f"{bounds.ub!r}"
            ) from None
        try:
            lo = np.broadcast_to(lo, (n,))
            hi = np.broadcast_to(hi, (n,))
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
            try:
                lo[i] = -math.inf if a is None else float(a)
                hi[i] = math.inf if b is None else float(b)
            except (TypeError, ValueError):
                raise TypeError(
                    f"bounds[{i}] must hold real numbers or None, got {pair!r}"
                ) from None
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
    lo_x, hi_x, bad = inward_bounds(lo, hi, np.zeros(1, dtype=dtype))
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


def _inward_bounds(lo, hi, x0):
    """The float64 bounds ``lo``/``hi`` in ``x0``'s dtype, rounded *inward*.

    Returns ``(lo_x, hi_x, bad)``. Rounding to nearest could move a bound outside the box
    (0.3 becomes 0.30000001 in float32, 1e-50 becomes 0); a lower bound is rounded up and an
    upper bound down instead, so that every value in ``[lo_x, hi_x]`` is in ``[lo, hi]``.
    ``bad`` is the first index whose interval holds no finite value of the dtype (-1 if
    none): an interval narrower than the dtype's spacing, or one beyond its range.
    """
    n = lo.size
    lo_x = np.empty(n, dtype=x0.dtype)
    hi_x = np.empty(n, dtype=x0.dtype)
    lim = np.empty(2, dtype=x0.dtype)
    lim[0] = np.inf
    lim[1] = -np.inf
    up = lim[0]  # +inf and -inf in the dtype, so that nextafter stays in it
    down = lim[1]
    bad = -1
    for i in range(n):
        lo_x[i] = lo[i]
        if lo_x[i] < lo[i]:
            lo_x[i] = np.nextafter(lo_x[i], up)
        hi_x[i] = hi[i]
        if hi_x[i] > hi[i]:
            hi_x[i] = np.nextafter(hi_x[i], down)
        if bad < 0 and not (lo_x[i] <= hi_x[i] and lo_x[i] < up and hi_x[i] > down):
            bad = i
    return lo_x, hi_x, bad


inward_bounds = jit(_inward_bounds)
