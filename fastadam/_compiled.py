"""The fully compiled minimisation loop: objective, gradient, update and stop tests in one
compiled function, with no Python per iteration.

Two ways in:

- :func:`fastadam.minimize` takes this path by itself when ``fun`` (and ``jac``, unless
  ``jac=True``) are numba ``@njit`` functions and there is no callback, no batches and no
  ``lr`` schedule. It runs the loop in chunks (so that ``maxtime``, ``disp`` and Ctrl-C work)
  and returns the same :class:`~scipy.optimize.OptimizeResult` as the Python path.
- :func:`minimize_njit`, called from your own ``@njit`` code (or from Python), with the
  options prepared once by :func:`njit_options`; it returns an :class:`NjitResult`.

Both run :func:`fastadam._step.check` and :func:`fastadam._step.update`, the functions the
Python path calls, so every path gives the same iterates.

Caching: from :func:`fastadam.minimize`, the loop is compiled for the *signature* of ``fun``
and ``jac`` (numba first-class function types), not for the functions themselves, so its
machine code is cached on disk (``cache=True``) and reused by every objective with the same
argument and return types, in this process and the next ones. Only the user's functions
are compiled per process (use ``@njit(cache=True)`` on them too).
"""

import time
from collections import namedtuple

import numpy as np
from numba import njit, typeof, types
from numba.core import errors
from numba.extending import overload

from . import _options, _step
from .cpu.compile import OPTIONS

__all__ = ["minimize_njit", "njit_options", "NjitOptions", "NjitResult"]

_OPT = OPTIONS

#: Options for :func:`minimize_njit`, made by :func:`njit_options`.
NjitOptions = namedtuple("NjitOptions", ["settings", "lo", "hi"])

#: Result of :func:`minimize_njit`; ``status`` follows the table of :func:`fastadam.minimize`.
NjitResult = namedtuple(
    "NjitResult",
    ["x", "fun", "jac", "nit", "nfev", "njev", "status", "success", "best_x", "best_fun",
     "best_nit", "gnorm"],
)  # fmt: skip


def _evaluate(fun, jac, x, args):
    """``(f, g)`` at ``x``: ``fun`` and ``jac``, or ``fun`` alone when ``jac`` is None."""


def _as_gradient(g, x):
    """``g`` as a C-contiguous array of ``x``'s type."""


def _as_float(f):
    """``f`` as a float64."""


# Which numba types the loop accepts from the user's functions (checked before compiling by
# specialize, and at typing time by the overloads below for minimize_njit).
_REAL = (types.Float, types.Integer, types.Boolean)


def _real_scalar(t):
    return isinstance(t, _REAL)


def _real_vector(t):
    return isinstance(t, types.Array) and t.ndim == 1 and isinstance(t.dtype, _REAL)


@overload(_as_float)
def _as_float_impl(f):
    if not _real_scalar(f):
        raise errors.TypingError(f"fun must return a real number (a scalar), not {f}")
    return lambda f: np.float64(f)


@overload(_as_gradient)
def _as_gradient_impl(g, x):
    if g == x:
        return lambda g, x: g
    if not _real_vector(g):
        raise errors.TypingError(
            f"jac (or fun's second value with jac=True) must return a 1-D array of real "
            f"numbers, not {g}"
        )

    # Another dtype (float64 for a float32 x, or integers) or another layout (a column of a
    # matrix): converted, element by element, as the Python path's np.ascontiguousarray(g,
    # dtype=x.dtype) does, rounding to nearest. So both paths give the same iterates, and a
    # float64 gradient for a float32 x gives what the same gradient rounded to float32 would.
    # (Converting keeps the run compiled; falling back to the Python loop would give the same
    # numbers, slower.)
    def convert(g, x):
        out = np.empty(g.size, dtype=x.dtype)
        for i in range(g.size):
            out[i] = g[i]
        return out

    return convert


@overload(_evaluate)
def _evaluate_impl(fun, jac, x, args):
    if isinstance(jac, types.NoneType):

        def combined(fun, jac, x, args):
            f, g = fun(x, *args)
            return _as_float(f), _as_gradient(g, x)

        return combined

    def separate(fun, jac, x, args):
        f = fun(x, *args)
        g = jac(x, *args)
        return _as_float(f), _as_gradient(g, x)

    return separate


def _run_py(fun, jac, args, ws, info, nsteps, start):
    """Run up to ``nsteps`` iterations (update, evaluate, check) from an accepted iterate;
    with ``start``, first evaluate and check ``ws[0]`` itself. Return the stop code
    (:data:`fastadam._step.CONTINUE` when ``nsteps`` ran out). On return ``ws[R_GLAST]`` holds
    the gradient at the last accepted iterate."""
    x = ws[0]
    glast = ws[int(info[_step.R_GLAST])]
    g = glast
    if start:
        f, g = _evaluate(fun, jac, x, args)
        info[_step.NFEV] += 1
        info[_step.NJEV] += 1
        code = _step.check(ws, g, f, info)
        if code == _step.BAD_JAC_SIZE:
            return code
        _step._copy(g, glast)
        if code != _step.CONTINUE:
            return code
    lr = info[_step.LR]
    for _ in range(nsteps):
        _step.update(ws, g, lr, info)
        f, gnew = _evaluate(fun, jac, x, args)
        info[_step.NFEV] += 1
        info[_step.NJEV] += 1
        code = _step.check(ws, gnew, f, info)
        if code != _step.CONTINUE:
            if code == _step.BAD_JAC_SIZE:
                return code
            if code == _step.NONFINITE_F or code == _step.NONFINITE_G:
                _step._copy(g, glast)
            else:
                _step._copy(gnew, glast)
            return code
        g = gnew
    _step._copy(g, glast)
    return _step.CONTINUE


# Two compilations of the loop. ``_run`` is only ever compiled for first-class function
# *types* (signatures), so its on-disk cache is safe and shared by all objectives of one
# signature. ``_run_inline`` is compiled when user code passes numba functions themselves
# (typed by identity): numba names those types after the functions' memory addresses, which
# can repeat in another process, so caching them could run the wrong function. Not cached.
_run = njit(**_OPT)(_run_py)
_run_inline = njit(error_model="numpy", nogil=True)(_run_py)


def _function_type(dispatcher, argtypes, what):
    """The first-class function type of ``dispatcher`` called with ``argtypes``."""
    try:
        dispatcher.compile(argtypes)
        sig = dispatcher.overloads[argtypes].signature
    except Exception as exc:
        raise TypeError(
            f"{what} (a numba function) does not compile for arguments {argtypes}: {exc}"
        ) from exc
    return types.FunctionType(sig.return_type(*sig.args))


def _check_returns(ft, jt, xtype):
    """TypeError (the caller falls back to the Python loop, whose first evaluation explains
    the mistake) unless ``fun`` returns a real number and ``jac`` a 1-D real array, or
    ``fun`` a pair of those when ``jac`` is None."""
    fret = ft.signature.return_type
    if jt is types.none:
        ok = isinstance(fret, types.BaseTuple) and len(fret) == 2
        if not ok:
            raise TypeError(f"with jac=True, fun must return (f, gradient); it returns {fret}")
        fret, gret, gwhat = fret[0], fret[1], "fun's gradient (jac=True)"
    else:
        gret, gwhat = jt.signature.return_type, "jac"
    if not _real_scalar(fret):
        raise TypeError(f"fun must return a real number; for x of type {xtype} it returns {fret}")
    if not _real_vector(gret):
        raise TypeError(
            f"{gwhat} must return a 1-D array of real numbers; for x of type {xtype} it returns "
            f"{gret}"
        )


def specialize(fun, jac, args, ws, info):
    """Compile (or load from the cache) the loop for these function signatures.

    Returns ``(entry_point, compile_seconds)``. Raises TypeError when the functions cannot
    run in it (the caller then uses the Python loop, unless ``compiled=True``).
    """
    t0 = time.perf_counter()
    try:
        argtypes = (typeof(ws[0]),) + tuple(typeof(args))
    except ValueError as exc:  # numba cannot type an argument
        raise TypeError(str(exc)) from exc
    ft = _function_type(fun, argtypes, "fun")
    jt = types.none if jac is None else _function_type(jac, argtypes, "jac")
    _check_returns(ft, jt, argtypes[0])
    sig = (ft, jt, typeof(args), typeof(ws), typeof(info), types.int64, types.boolean)
    try:
        _run.compile(sig)
    except errors.NumbaError as exc:
        raise TypeError(
            f"the compiled loop does not compile for fun {ft} and jac {jt}: {exc}"
        ) from exc
    entry = _run.overloads[sig].entry_point
    return entry, time.perf_counter() - t0


def bad_jac_size(n, nit):
    return ValueError(
        f"jac (or fun's gradient with jac=True) returned an array whose size is not x0's, {n}, "
        f"at iteration {nit}"
    )


def run_chunked(entry, fun, jac, args, ws, info, deadline, printer):
    """Drive the compiled loop in chunks of ~50 ms, so that ``maxtime``, progress display and
    Ctrl-C work. Returns the stop code (a status of :mod:`fastadam._results`)."""
    from . import _results

    chunk = 100
    target = 0.05
    try:
        code = entry(fun, jac, args, ws, info, 0, True)
        if printer is not None:
            printer.row(info)
        while code == _step.CONTINUE:
            if deadline is not None and time.perf_counter() >= deadline:
                return _results.MAXTIME
            n = chunk
            if printer is not None:
                n = min(n, printer.every - int(info[_step.NIT]) % printer.every)
            t0 = time.perf_counter()
            code = entry(fun, jac, args, ws, info, n, False)
            dt = time.perf_counter() - t0
            if printer is not None:
                printer.row(info)
            rate = max(dt, 1e-7) / n
            chunk = int(min(max(target / rate, 1), 1 << 40))
            if deadline is not None:
                left = deadline - time.perf_counter()
                chunk = max(1, min(chunk, int(left / rate) + 1))
    except KeyboardInterrupt:
        return _results.INTERRUPTED
    if code == _step.BAD_JAC_SIZE:
        raise bad_jac_size(ws.shape[1], int(info[_step.NIT]))
    return code


# -- the njit-callable API -------------------------------------------------------------------


def njit_options(method="adam", *, bounds=None, tol=None, **options):
    """Prepare the options of :func:`minimize_njit` (in Python, once).

    Parameters
    ----------
    method : {'adam', 'adamw', 'rmsprop'}
        The update rule.
    bounds : scipy.optimize.Bounds or sequence of (lo, hi), optional
        Box bounds, as for :func:`fastadam.minimize` (a ``Bounds`` needs array ``lb``/``ub``
        so that the number of variables is known).
    tol : float, optional
        Default for ``gtol``, ``ftol`` and ``xtol``.
    **options
        Every hyperparameter and convention knob of the optimizer class (``lr`` a float), and
        ``maxiter``, ``gtol``, ``ftol``, ``xtol``, ``window`` as for
        :func:`fastadam.minimize`. Options that need Python (``batches``, ``maxtime``,
        ``disp``, ``progress``, a schedule ``lr``, ``finite_diff_step``) are refused.

    Returns
    -------
    NjitOptions
        A namedtuple of arrays ``(settings, lo, hi)``, typed once by numba.

    Raises
    ------
    ValueError, TypeError
        Invalid or unsupported options (unknown names included: an error here, since there is
        no Python loop to warn from).
    """
    _step.ensure_runtime()
    python_only = {
        "batches", "maxtime", "disp", "progress", "finite_diff_step", "finite_diff_rel_step",
        "disp_every",
    }  # fmt: skip
    refused = sorted(python_only & set(options))
    if refused:
        raise ValueError(f"{refused} need the Python loop; use fastadam.minimize")
    cfg = _options.resolve(method, options, tol)
    if cfg.unknown:
        raise TypeError(f"unknown options for minimize_njit: {sorted(cfg.unknown)}")
    if callable(cfg.lr):
        raise ValueError("an lr schedule needs the Python loop; pass a float lr")
    if bounds is None:
        lo, hi = _options.check_bounds(None, 0, np.float64)
    else:
        if isinstance(bounds, _options.Bounds):
            n = np.size(bounds.lb) if np.ndim(bounds.lb) else np.size(bounds.ub)
        else:
            n = len(bounds)
        lo, hi = _options.check_bounds(bounds, n, np.float64)
    return NjitOptions(cfg.settings, lo, hi)


@njit(error_model="numpy", nogil=True)  # not cached: see _run_inline
def minimize_njit(fun, jac, x0, args, options):
    """Minimize ``fun`` with Adam or RMSProp entirely in compiled code.

    Callable from inside ``@numba.njit`` functions (and from Python). It runs the same loop,
    update and stop tests as :func:`fastadam.minimize` (which see for the definitions).

    Parameters
    ----------
    fun : numba function
        ``fun(x, *args) -> float``, or ``-> (float, gradient)`` when ``jac`` is None.
    jac : numba function or None
        ``jac(x, *args) -> ndarray`` of ``x``'s size; None when ``fun`` returns both.
    x0 : ndarray
        1-D float64 or float32 starting point (not modified).
    args : tuple
        Extra arguments (``()`` for none).
    options : NjitOptions
        From :func:`njit_options` (hyperparameters, stopping controls and bounds).

    Returns
    -------
    NjitResult
        ``(x, fun, jac, nit, nfev, njev, status, success, best_x, best_fun, best_nit,
        gnorm)``, with ``status`` as in :func:`fastadam.minimize` (0 gtol, 1 maxiter, 2 ftol,
        3 xtol, 4 non-finite objective, 5 non-finite gradient).

    Raises
    ------
    ValueError
        ``jac`` returned an array of the wrong size, or the bounds' length differs from x0's.
    """
    settings, lo, hi = options
    if lo.size != 0 and lo.size != x0.size:
        raise ValueError("the bounds in options are for another number of variables")
    lo_x, hi_x, bad = _step.inward_bounds(lo, hi, x0)  # as minimize does
    if bad >= 0:
        raise ValueError("a bounds interval in options holds no finite value of x0's dtype")
    ws, info = _step.allocate(x0, settings, lo_x, hi_x)
    code = _run_inline(fun, jac, args, ws, info, 0, True)
    if code == _step.CONTINUE:
        code = _run_inline(fun, jac, args, ws, info, int(info[_step.MAXITER]) + 1, False)
    if code == _step.BAD_JAC_SIZE:
        raise ValueError("jac returned an array whose size differs from x0's")
    success = code == _step.GTOL_MET or code == _step.FTOL_MET or code == _step.XTOL_MET
    best_nit = int(info[_step.BEST_NIT])
    best_row = int(info[_step.BEST_ROW]) if best_nit >= 0 else 0
    return NjitResult(
        ws[0].copy(), info[_step.FUN], ws[int(info[_step.R_GLAST])].copy(),
        int(info[_step.NIT]), int(info[_step.NFEV]), int(info[_step.NJEV]), code, success,
        ws[best_row].copy(), info[_step.BEST_FUN], max(best_nit, 0), info[_step.GNORM],
    )  # fmt: skip
