"""``minimize_njit``: the compiled loop of :mod:`fastadam.optimize.compiled`, called from
users' own ``@njit`` code (or from Python), with options prepared once by
:func:`njit_options`."""

from typing import Any, NamedTuple

import numpy as np
from numba import njit, typeof, types
from numba.core.errors import TypingError
from numba.extending import is_jitted, overload

from .. import algorithms
from . import compiled, engine
from . import options as options_
from .engine import Workspace
from .status import BAD_JAC_SIZE, FTOL, GTOL, RUNNING, XTOL

__all__ = ["minimize_njit", "njit_options", "NjitOptions", "NjitResult"]


class NjitOptions(NamedTuple):
    """Options of :func:`minimize_njit`, made by :func:`njit_options` (its fields are
    typed once by numba; the algorithm is part of the type: see :data:`OPTION_TYPES`)."""

    #: the algorithm's coefficient arguments after ``t`` (its carried value at step 1)
    hyper: Any
    #: one :data:`fastadam.optimize.engine.CONTROLS` record
    controls: Any
    #: the bounds, float64 (empty without bounds)
    lo: Any
    hi: Any
    #: the initial value of each state buffer, and whether the coefficients use it
    state_init: Any
    state_used: Any
    track_best: bool


def _options_class(spec):
    cls = type(f"{spec.title}NjitOptions", (NjitOptions,), {"__slots__": ()})
    cls.__doc__ = f":class:`NjitOptions` of {spec.title}."
    return cls


#: One NjitOptions class per algorithm, so that numba picks the algorithm from the type.
OPTION_TYPES = {name: _options_class(spec) for name, spec in algorithms.ALGORITHMS.items()}
_BY_CLASS = {cls: name for name, cls in OPTION_TYPES.items()}


class NjitResult(NamedTuple):
    """Result of :func:`minimize_njit`; ``status`` follows :func:`fastadam.minimize`."""

    x: Any
    fun: float
    jac: Any
    nit: int
    nfev: int
    njev: int
    status: int
    success: bool
    best_x: Any
    best_fun: float
    best_nit: int
    gnorm: float


def njit_options(method="adam", *, bounds=None, tol=None, **options):
    """Prepare the options of :func:`minimize_njit` (in Python, once).

    Parameters
    ----------
    method : {'adam', 'adamw', 'rmsprop', 'nadam'}
        The update rule.
    bounds : scipy.optimize.Bounds or sequence of (lo, hi), optional
        Box bounds, as for :func:`fastadam.minimize` (a ``Bounds`` needs array ``lb``/``ub``
        so that the number of variables is known).
    tol : float, optional
        Default for ``gtol``, ``ftol`` and ``xtol``.
    **options
        Every hyperparameter and convention knob of the optimizer class (``lr`` a float), and
        ``maxiter``, ``gtol``, ``ftol``, ``xtol``, ``window``, ``track_best`` as for
        :func:`fastadam.minimize`. Options that need Python (``batches``, ``maxtime``,
        ``disp``, ``progress``, a schedule ``lr``, ``finite_diff_step``) are refused.

    Returns
    -------
    NjitOptions
        A named record, typed once by numba.

    Raises
    ------
    ValueError, TypeError
        Invalid or unsupported options (unknown names included: an error here, since there is
        no Python loop to warn from).
    """
    python_only = {
        "batches", "maxtime", "disp", "progress", "finite_diff_step", "finite_diff_rel_step",
        "disp_every", "compiled",
    }  # fmt: skip
    refused = sorted(python_only & set(options))
    if options.get("device", "cpu") != "cpu":  # (it runs where its caller runs: the CPU)
        refused.append("device")
    if refused:
        raise ValueError(
            f"{refused}: not options of minimize_njit (they need the Python loop, or the GPU, "
            "of fastadam.minimize)"
        )
    cfg = options_.resolve(method, options, tol)
    if cfg.unknown:
        raise TypeError(f"unknown options for minimize_njit: {sorted(cfg.unknown)}")
    if callable(cfg.lr):
        raise ValueError("an lr schedule needs the Python loop; pass a float lr")
    if bounds is None:
        lo, hi = options_.check_bounds(None, 0, np.float64)
    else:
        if isinstance(bounds, options_.Bounds):
            n = np.size(bounds.lb) if np.ndim(bounds.lb) else np.size(bounds.ub)
        else:
            n = len(bounds)
        lo, hi = options_.check_bounds(bounds, n, np.float64)
    hyper = tuple(cfg.carry if v is None else v for v in cfg.hyper)
    used = tuple(bool(u) for u, _ in cfg.state_init)
    init = tuple(float(v) for _, v in cfg.state_init)
    return OPTION_TYPES[cfg.spec.name](hyper, cfg.controls, lo, hi, init, used, cfg.track_best)


def _minimize(fun, jac, x0, args, options):
    """The body of :func:`minimize_njit`, per algorithm (an overload)."""


@overload(_minimize)
def _minimize_impl(fun, jac, x0, args, options):
    name = _BY_CLASS.get(getattr(options, "instance_class", None))
    if name is None:
        raise TypingError(f"options must come from fastadam.njit_options(), not {options}")
    if not (isinstance(x0, types.Array) and x0.ndim == 1 and isinstance(x0.dtype, types.Float)):
        raise TypingError(f"x0 must be a 1-D float64 or float32 array, not {x0}")
    spec = algorithms.get(name)
    carry = spec.arguments.index(next(iter(spec.carry))) if spec.carry else -1
    batched = tuple(int(k == carry) for k in range(len(spec.arguments)))
    # the variant is chosen at run time by the size (the parallel one costs a parallel
    # region per iteration, microseconds on a small problem): both are compiled
    _, small = compiled.loops(name, engine.SERIAL, batched, True)  # (runtime controls)
    _, large = compiled.loops(name, engine.ELEMENTS, batched, True)
    hyper = ", ".join(
        "carry" if k == carry else f"options.hyper[{k}]" for k in range(len(spec.arguments))
    )
    whole = ", ".join(
        f"args[{k}][np.newaxis]" if getattr(t, "ndim", 0) >= 1 else f"args[{k}]"
        for k, t in enumerate(args)
    )
    mask = ", ".join("0" for _ in args)
    carry_init = f"options.hyper[{carry}]" if carry >= 0 else "0.0"
    source = f"""
def impl(fun, jac, x0, args, options):
    ws = _workspace(x0, options)
    progress = _progress()
    carry = np.full(1, {carry_init})
    hyper = ({hyper},)
    whole = ({whole}{"," if args else ""})
    mask = ({mask}{"," if args else ""})
    if x0.size >= PARALLEL_MIN_SIZE:
        _drive(large, fun, jac, whole, mask, ws, progress, hyper, carry, options.controls)
    else:
        _drive(small, fun, jac, whole, mask, ws, progress, hyper, carry, options.controls)
    return _result(ws, progress)
"""
    namespace = dict(np=np, small=small, large=large, _workspace=_workspace, _drive=_drive,
                     _progress=_progress, _result=_result, RUNNING=RUNNING,
                     PARALLEL_MIN_SIZE=engine.PARALLEL_MIN_SIZE)  # fmt: skip
    exec(source, namespace)  # noqa: S102 - one problem's arguments and hyperparameters
    return namespace["impl"]


@njit
def _drive(loop, fun, jac, args, mask, ws, progress, hyper, carry, controls):
    """Evaluate x0, then iterate until a stop test fires."""
    loop(fun, jac, args, mask, ws, progress, hyper, carry, controls, 0, True)
    if progress[0].status == RUNNING:
        loop(fun, jac, args, mask, ws, progress, hyper, carry, controls,
             controls[0].maxiter + 1, False)  # fmt: skip


@njit
def _state_buffer(x, used, value):
    buf = np.empty((1, x.shape[1] if used else 0), dtype=x.dtype)
    buf[:] = value
    return buf


@njit
def _workspace(x0, options):
    """A Workspace for one problem from ``x0``, as :func:`engine.allocate` makes it."""
    lo, hi = options.lo, options.hi
    if lo.size != 0 and lo.size != x0.size:
        raise ValueError("the bounds in options are for another number of variables")
    lo_x, hi_x, bad = options_.inward_bounds(lo, hi, x0)  # as minimize does
    if bad >= 0:
        raise ValueError("a bounds interval in options holds no finite value of x0's dtype")
    n = x0.size
    xs = np.empty((3 if options.track_best else 2, 1, n), dtype=x0.dtype)
    x = xs[0]
    x[0] = x0
    if lo_x.size:
        for j in range(n):
            x[0, j] = min(max(x[0, j], lo_x[j]), hi_x[j])
    init, used = options.state_init, options.state_used
    s0 = _state_buffer(x, used[0], init[0])
    s1 = _state_buffer(x, used[1], init[1])
    s2 = _state_buffer(x, used[2], init[2])
    snap = x.copy() if options.controls[0].xtol > 0 else np.empty((1, 0), dtype=x0.dtype)
    glast = np.empty((1, n), dtype=x0.dtype)
    return Workspace(xs, s0, s1, s2, snap, glast, lo_x, hi_x)


_PROGRESS = engine.PROGRESS


@njit
def _progress():
    progress = np.zeros(1, dtype=_PROGRESS)
    p = progress[0]
    p.status = RUNNING
    p.fun = np.nan
    p.gnorm = np.nan
    p.best_fun = np.nan
    p.fmean_prev = np.nan
    p.fchange = np.nan
    p.xchange = np.nan
    p.bad_fun = np.nan
    p.eval_nit = -1
    p.best_nit = -1
    p.bad_nit = -1
    p.best_row = -1
    return progress


@njit
def _result(ws, progress):
    p = progress[0]
    code = p.status
    if code == BAD_JAC_SIZE:
        raise ValueError("jac returned an array whose size differs from x0's")
    success = code == GTOL or code == FTOL or code == XTOL
    x = ws.xs[p.x_row, 0]
    best = ws.xs[p.best_row, 0] if ws.xs.shape[0] > 2 and p.best_row >= 0 else x
    x = x.copy()
    best = best.copy()  # (its own array, also where it is x)
    return NjitResult(
        x, p.fun, ws.glast[0].copy(), p.nit, p.nfev, p.njev, code, success, best,
        p.best_fun, max(p.best_nit, 0), p.gnorm,
    )  # fmt: skip


def minimize_njit(fun, jac, x0, args, options):
    """Minimize ``fun`` with Adam, RMSProp or NAdam entirely in compiled code.

    Callable from inside ``@numba.njit`` functions (and from Python). It runs the same loop,
    update and stop tests as :func:`fastadam.minimize` (which see for the definitions).
    From Python the arguments are checked first (TypeError or ValueError naming the one at
    fault); in compiled code their types are checked when the caller compiles.

    Parameters
    ----------
    fun : numba function
        ``fun(x, *args) -> float``, or ``-> (float, gradient)`` when ``jac`` is None, or
        ``fun(x, g, *args) -> float`` writing the gradient into ``g`` when ``jac`` is None
        (the GPU's form, told by its ``len(args) + 2`` parameters).
    jac : numba function or None
        ``jac(x, *args) -> ndarray`` of ``x``'s size, or ``jac(x, g, *args)`` writing it
        into ``g``; None when ``fun`` gives both.
    x0 : ndarray
        1-D float64 or float32 starting point (not modified). From Python, as for
        :func:`fastadam.minimize`: any real array-like, integers becoming float64, and NaN
        or Inf a ValueError (from compiled code, status 4: no exception to stop a loop over
        many starting points).
    args : tuple
        Extra arguments (``()`` for none), passed to ``fun`` and ``jac`` as they are (a
        non-tuple is wrapped in one).
    options : NjitOptions
        From :func:`njit_options` (hyperparameters, stopping controls and bounds).

    Returns
    -------
    NjitResult
        ``(x, fun, jac, nit, nfev, njev, status, success, best_x, best_fun, best_nit,
        gnorm)``, with ``status`` as in :func:`fastadam.minimize` (0 gtol, 1 maxiter, 2 ftol,
        3 xtol, 4 non-finite objective, 5 non-finite gradient). ``best_x`` is ``x`` when
        ``track_best`` is off.

    Raises
    ------
    TypeError, ValueError
        From Python: ``fun`` or ``jac`` not numba functions or not compiling for the
        arguments, ``x0`` not 1-D, not real or not finite, ``options`` not from
        :func:`njit_options`. In any case: ``jac`` returned an
        array of the wrong size, or the bounds' length differs from x0's.
    """
    for name, f in (("fun", fun), ("jac", jac)):
        if not (is_jitted(f) or (f is None and name == "jac")):
            raise TypeError(
                f"{name} must be a numba @njit function{' or None' if name == 'jac' else ''}, "
                f"got {f!r} (fastadam.minimize takes Python functions)"
            )
    if not isinstance(options, NjitOptions):
        raise TypeError(f"options must come from fastadam.njit_options(), got {options!r}")
    if not isinstance(args, tuple):
        args = (args,)
    x0 = options_.check_x0(x0)
    try:
        return _minimize_jit(fun, jac, x0, args, options)
    except TypingError as exc:
        _diagnose(fun, jac, x0, args, exc)
        raise


def _diagnose(fun, jac, x0, args, exc):
    """Where the loop did not compile: TypeError saying whether ``fun`` and ``jac`` do not
    compile for these arguments or return what the loop does not take
    (:func:`fastadam.optimize.compiled.function_types`), or whether numba cannot type an
    argument. (Checked only then: numba types the arguments in microseconds a call.)"""
    try:
        argtypes = tuple(typeof(a) for a in (x0, *args))
    except ValueError as err:
        raise TypeError(f"args: {err}") from exc
    try:
        compiled.function_types(fun, jac, argtypes)
    except TypeError as err:
        raise err from exc


@overload(minimize_njit, jit_options=dict(error_model="numpy", nogil=True))
def _minimize_njit_impl(fun, jac, x0, args, options):
    if not isinstance(args, types.BaseTuple):
        return lambda fun, jac, x0, args, options: _minimize(fun, jac, x0, (args,), options)
    return lambda fun, jac, x0, args, options: _minimize(fun, jac, x0, args, options)


@njit(error_model="numpy", nogil=True)  # not cached: see compiled.loops
def _minimize_jit(fun, jac, x0, args, options):
    return _minimize(fun, jac, x0, args, options)
