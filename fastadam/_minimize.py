"""``fastadam.minimize``: scipy-style minimisation with Adam, AdamW or RMSProp.

This module holds the public function, the argument handling shared with
:mod:`fastadam.methods`, and the Python loop. The per-iteration work of the Python loop is
one call of the compiled :func:`fastadam._step.iterate` (stop tests and update through
:mod:`fastadam.kernels`); the fully compiled loop is in :mod:`fastadam._compiled`.
"""

import inspect
import numbers
import time
import warnings

import numpy as np
from numba.extending import is_jitted
from scipy.optimize._numdiff import approx_derivative

from . import _compiled, _options, _results, _step
from . import _validation as val

__all__ = ["minimize"]


def minimize(
    fun, x0, args=(), method="adam", jac=None, bounds=None, callback=None, tol=None,
    options=None,
):  # fmt: skip
    r"""Minimize a scalar function of one or more variables with Adam, AdamW or RMSProp.

    The interface is :func:`scipy.optimize.minimize`'s; the result is a
    :class:`scipy.optimize.OptimizeResult`. Each iteration evaluates the objective and its
    gradient at the current iterate :math:`x_k`, runs the stop tests, and applies one update
    of the chosen rule (exactly :class:`fastadam.Adam` / :class:`fastadam.AdamW` /
    :class:`fastadam.RMSProp`, in the chosen ``convention``), for example PyTorch's Adam:

    .. math::

        m_{k+1} &= \beta_1 m_k + (1-\beta_1) g_k, \qquad
        v_{k+1} = \beta_2 v_k + (1-\beta_2) g_k^2 \\
        x_{k+1} &= \Pi\left(x_k - lr\,\frac{m_{k+1}/(1-\beta_1^{k+1})}
                   {\sqrt{v_{k+1}/(1-\beta_2^{k+1})} + \epsilon}\right)

    where :math:`\Pi` projects onto the ``bounds`` (identity without bounds).

    When ``fun`` and ``jac`` are numba ``@njit`` functions (or ``jac=True`` with an ``@njit``
    ``fun``) and there is no ``callback``, no ``batches`` and no ``lr`` schedule, the whole
    loop runs compiled (see *Compiled path* below); otherwise a Python loop calls ``fun`` and
    ``jac`` and does the rest of each iteration in one compiled call.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args) -> float``; with batches ``fun(x, batch, *args)``. ``x`` is the
        live iterate, updated in place after the call: copy it if you keep it.
    x0 : array_like, shape (n,)
        Starting point: real numbers, 1-D. float32 and float64 are kept (the whole run is in
        that precision), integers become float64. Projected onto ``bounds``.
    args : tuple, optional
        Extra arguments passed to ``fun``, ``jac`` (a non-tuple is wrapped in one).
    method : {'adam', 'adamw', 'rmsprop'}, optional
        The update rule.
    jac : callable, True, None, False or {'2-point', '3-point', 'cs'}, optional
        The gradient, ``jac(x, *args) -> array_like`` of shape (n,) (any array-like of real
        numbers; it is converted to a contiguous array of ``x``'s dtype); ``True`` if ``fun``
        returns ``(f, gradient)``; otherwise finite differences by scipy's own
        ``scipy.optimize._numdiff.approx_derivative`` with that scheme (None and False:
        ``'2-point'``, forward differences; ``'cs'``, the complex step, needs a ``fun`` that
        takes complex ``x``), its steps kept inside ``bounds``. A finite-difference gradient
        costs n (``'2-point'``, ``'cs'``) or 2n (``'3-point'``) calls of ``fun``, all counted
        in ``nfev``. Any other string is a ValueError.
    bounds : scipy.optimize.Bounds or sequence of (lo, hi), optional
        Box bounds (None or +-inf for no bound on a side). Every iterate is projected onto
        the box inside the update, so no evaluated point is outside it. With float32 ``x0``
        the bounds are rounded *inward* to float32 (a lower bound up, an upper bound down),
        so that this holds for the given float64 values too; an interval that holds no
        finite float32 value is a ValueError.
    callback : callable, optional
        Called after each iteration :math:`k \ge 1` with the new iterate: as
        ``callback(intermediate_result)`` (an :class:`~scipy.optimize.OptimizeResult` with
        ``x``, ``fun``, ``jac``, ``nit``, ``nfev``, ``njev``) when its only parameter is named
        ``intermediate_result``, else as the legacy ``callback(xk)``. Raising
        :class:`StopIteration` ends the run with status 8. Arrays passed are copies.
    tol : float, optional
        Sets ``gtol``, ``ftol`` and ``xtol`` to ``tol`` where ``options`` does not set them
        (as :func:`scipy.optimize.minimize` does for its methods).
    options : dict, optional
        *Hyperparameters*: every argument and convention knob of the optimizer class:
        ``lr`` (float or schedule ``lr(t)``, called for the steps taken, ``t`` = 1 ... nit),
        ``convention``; Adam/AdamW:
        ``betas``, ``eps``, ``weight_decay``, ``decoupled_weight_decay``, ``amsgrad``,
        ``eps_root``, ``bias_correction``, ``eps_hat``, ``amsgrad_corrected``; RMSProp:
        ``decay``, ``eps``, ``momentum``, ``centered``, ``weight_decay``, ``eps_in_sqrt``,
        ``lr_in_momentum``, ``initial_scale``, ``bias_correction``, ``nesterov``,
        ``decoupled_weight_decay``. Defaults come from the convention, as for the classes
        (``maximize`` is refused: minimize ``-fun``).

        *Stopping* (see *Stop criteria*): ``maxiter`` (default 1000, unlimited with
        ``batches``), ``gtol`` (1e-5), ``ftol`` (0: off), ``xtol`` (0: off), ``window``
        (10), ``maxtime`` (seconds, None).

        *Run*: ``batches`` (an iterable: one batch per iteration), ``disp`` (print a progress
        table), ``disp_every`` (rows every so many iterations; default maxiter / 20),
        ``progress`` (a tqdm progress bar, if tqdm is installed), ``finite_diff_step``
        (an absolute step for finite differences) or ``finite_diff_rel_step`` (scipy's
        relative step; the default is scipy's: a relative step of sqrt(eps) for
        ``'2-point'`` and ``'cs'``, eps**(1/3) for ``'3-point'``, eps of ``x``'s dtype),
        ``compiled`` (None: automatic; True: require the compiled path; False: never).

        Unknown names give a :class:`scipy.optimize.OptimizeWarning`.

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        ``x`` (the last iterate, see below), ``fun`` and ``jac`` there, ``nit`` (updates
        applied to reach ``x``), ``nfev``, ``njev``, ``status``, ``success``, ``message``,
        ``best_x`` / ``best_fun`` / ``best_nit`` (the iterate with the lowest objective seen),
        ``gnorm`` (inf-norm of the gradient at ``x``, projected with bounds), ``method``,
        ``hyperparameters`` (the resolved values), ``compiled`` (which path ran) and, on the
        compiled path, ``compile_time`` (seconds spent compiling or loading it, not included
        in the loop).

    Raises
    ------
    ValueError, TypeError
        Invalid ``x0`` (not 1-D, not real, not finite), ``bounds`` (wrong length, lo > hi, no
        finite value of ``x0``'s dtype in an interval), ``jac``, options or hyperparameters
        -- before any evaluation; ``jac`` (or ``fun``) returning the wrong shape or type --
        at the evaluation that does (the message says which).

    Notes
    -----
    **Last or best iterate.** ``res.x`` is the *last* iterate (Adam is usually run for a
    fixed budget, and with noisy objectives the last iterate is the one the run converged
    to). ``res.best_x`` is the iterate with the lowest evaluated objective (for minibatches:
    the lowest minibatch value, a noisy choice).

    **Non-finite values.** When the objective or the gradient at :math:`x_k` is NaN or Inf,
    the run stops (status 4 or 5) and ``res.x``, ``res.fun``, ``res.jac`` are those of
    :math:`x_{k-1}`, the last iterate with finite values (``res.nit = k - 1``); the message
    says at which iteration it happened.

    **Minibatches.** With ``options['batches']``, iteration ``k`` draws the next batch and
    evaluates ``fun(x_k, batch, *args)`` and ``jac(x_k, batch, *args)``. When the iterable
    is exhausted the run ends with status 7 (success) and ``res.x`` is the final iterate,
    one update past the last evaluation (``res.fun`` / ``res.jac`` are from that
    evaluation, as the message says). The same holds for status 9 (Ctrl-C); a Ctrl-C
    before the evaluation of ``x0`` is complete returns ``x0`` with ``fun`` NaN and ``jac``
    None.

    **Stop criteria**, tested at each evaluated iterate :math:`x_k` in this order:

    - *non-finite*: :math:`f(x_k)` or any :math:`g_k` component is NaN/Inf (status 4, 5);
    - ``gtol``: :math:`\|P(g_k)\|_\infty \le gtol`, with :math:`P` the projection of the
      gradient on the bounds (components that push out of the box at an active bound are
      dropped; identity without bounds) (status 0);
    - ``ftol``: every ``window`` = :math:`w` iterations (:math:`k = 2w, 3w, \dots`), with
      :math:`F_j` the mean of :math:`f` over iterations :math:`(j-1)w+1 \dots jw`:
      :math:`|F_j - F_{j-1}| \le ftol \cdot \max(|F_j|, |F_{j-1}|, 1)` (status 2). Means over
      a window, because single Adam steps are noisy;
    - ``xtol``: every :math:`w` iterations (:math:`k = w, 2w, \dots`):
      :math:`\|x_k - x_{k-w}\|_\infty \le xtol \cdot \max(\|x_k\|_\infty, 1)` (status 3);
    - ``maxiter``: :math:`k` = maxiter (status 1);
    - ``maxtime``: wall time since the start >= maxtime (status 6; on the compiled path it
      is tested every ~50 ms);
    - batches exhausted (7), callback ``StopIteration`` (8), KeyboardInterrupt (9).

    ====== ===================== ======= ==============================================
    status name                  success when
    ====== ===================== ======= ==============================================
    0      gtol                  True    gradient test
    1      maxiter               False   maxiter updates done
    2      ftol                  True    objective test
    3      xtol                  True    step test
    4      nonfinite_fun         False   objective NaN/Inf (x: last finite iterate)
    5      nonfinite_jac         False   gradient NaN/Inf (x: last finite iterate)
    6      maxtime               False   time limit
    7      batches_exhausted     True    the batches ran out
    8      callback              False   callback raised StopIteration
    9      interrupted           False   Ctrl-C
    ====== ===================== ======= ==============================================

    **Compiled path.** With ``@njit`` ``fun``/``jac`` the loop (evaluation, stop tests,
    update) is one compiled function called in chunks of about 50 ms; it gives the same
    iterates as the Python path. Its machine code is cached on disk per *signature* of
    ``fun``/``jac``; ``res.compile_time`` reports the one-off cost. To run it inside your
    own ``@njit`` code use :func:`fastadam.minimize_njit`.

    Examples
    --------
    >>> import numpy as np, fastadam as fa
    >>> from scipy.optimize import rosen, rosen_der
    >>> res = fa.minimize(rosen, np.zeros(2), jac=rosen_der,
    ...                   options=dict(lr=1e-2, maxiter=20_000, gtol=1e-6))
    >>> res.status, bool(np.allclose(res.x, 1, atol=1e-4))
    (0, True)
    """
    return solve(fun, x0, args, method, jac, bounds, callback, tol, options, stacklevel=3)


# -- shared with fastadam.methods ----------------------------------------------------------

_SEPARATE, _COMBINED, _FINITE_DIFF = 0, 1, 2
#: The finite-difference schemes of :func:`scipy.optimize._numdiff.approx_derivative`.
FD_METHODS = ("2-point", "3-point", "cs")
_JAC_VALUES = "a callable, True, False, None or one of " + ", ".join(map(repr, FD_METHODS))


def _jac_mode(jac):
    """``(mode, finite-difference scheme or None)``."""
    if callable(jac):
        return _SEPARATE, None
    if jac is True:
        return _COMBINED, None
    if jac is None or jac is False:
        return _FINITE_DIFF, "2-point"  # as scipy: forward differences
    if isinstance(jac, str):
        if jac not in FD_METHODS:
            raise ValueError(f"jac must be {_JAC_VALUES}; got {jac!r}")
        return _FINITE_DIFF, jac
    raise TypeError(f"jac must be {_JAC_VALUES}; got {jac!r}")


def _callback_style(callback):
    """None, 'new' (``callback(intermediate_result)``) or 'legacy' (``callback(xk)``)."""
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    try:
        params = set(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        return "legacy"
    return "new" if params == {"intermediate_result"} else "legacy"


def _compiled_refusal(fun, jac, callback, cfg):
    """Why the compiled path cannot run (None when it can)."""
    if not is_jitted(fun):
        return "fun is not a numba @njit function"
    if jac is not True and not is_jitted(jac):
        return "jac is neither a numba @njit function nor True"
    if callback is not None:
        return "a callback needs the Python loop"
    if cfg.batches is not None:
        return "batches need the Python loop"
    if callable(cfg.lr):
        return "an lr schedule needs the Python loop"
    return None


def solve(fun, x0, args, method, jac, bounds, callback, tol, options, stacklevel):
    """The body of :func:`minimize` and of the :mod:`fastadam.methods` callables."""
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    x0 = _options.check_x0(x0)
    if not isinstance(args, tuple):
        args = (args,)
    mode, scheme = _jac_mode(jac)
    style = _callback_style(callback)
    cfg = _options.resolve(method, options, tol)
    _options.warn_unknown(cfg.unknown, stacklevel + 1)
    lo, hi = _options.check_bounds(bounds, x0.size, x0.dtype)

    refusal = _compiled_refusal(fun, jac, callback, cfg)
    if cfg.compiled and refusal:
        raise ValueError(f"options['compiled'] is True but {refusal}")
    use_compiled = refusal is None and cfg.compiled is not False

    _step.ensure_runtime()
    ws, info = _step.allocate(x0, cfg.settings, lo, hi)
    printer = _Printer(cfg) if (cfg.disp or cfg.progress) else None
    start = time.perf_counter()
    deadline = None if cfg.maxtime is None else start + cfg.maxtime
    extra = {}
    cjac = None if jac is True else jac
    if use_compiled:
        try:
            entry, extra["compile_time"] = _compiled.specialize(fun, cjac, args, ws, info)
        except TypeError:
            # e.g. functions with explicit signatures that accept no C-contiguous array, or
            # arguments numba cannot type: the Python loop calls them as Python would
            if cfg.compiled:
                raise
            use_compiled = False
    if use_compiled:
        start = time.perf_counter()
        deadline = None if cfg.maxtime is None else start + cfg.maxtime
        if printer is not None:
            printer.start(start)
        status = _compiled.run_chunked(entry, fun, cjac, args, ws, info, deadline, printer)
        g = ws[int(info[_step.R_GLAST])] if info[_step.EVAL_NIT] >= 0 else None
    else:
        if printer is not None:
            printer.start(start)
        status, g = _python_loop(fun, mode, scheme, jac, args, ws, info, cfg, callback, style,
                                 deadline, printer)  # fmt: skip
    res = _results.build(status, ws, info, g, cfg, compiled=use_compiled, **extra)
    if printer is not None:
        printer.finish(res)
    return res


# -- the Python loop ----------------------------------------------------------------------


def _at(info):
    k = int(info[_step.NIT])
    return "at x0" if k == 0 else f"at iteration {k}"


def _scalar(f, info):
    """``fun``'s value as a float; ValueError/TypeError naming ``fun`` for anything but one
    real number (a complex one is refused, not silently cut to its real part)."""
    if f.__class__ is float or f.__class__ is np.float64 or isinstance(f, numbers.Real):
        return float(f)
    try:
        a = np.asarray(f)
    except Exception:  # e.g. a ragged tuple
        a = None
    if a is not None and a.dtype.kind in "fiubc":
        if a.ndim != 0:
            raise ValueError(
                f"fun must return a scalar, got an array of shape {a.shape} {_at(info)}"
            )
        if a.dtype.kind != "c":
            return float(a)
    elif a is not None and a.ndim == 0 and not isinstance(f, numbers.Complex):
        try:  # a real number of another library
            return float(f)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"fun must return a real number, got {f!r} {_at(info)}")


def _first_values(f, g, x, mode, info):
    """Validate the first evaluation; return ``(float f, gradient array)``."""
    return _scalar(f, info), _gradient(g, x, mode, info)


def _gradient(g, x, mode, info):
    """``g`` as a C-contiguous array of ``x``'s shape and dtype (what the compiled check and
    update take); ValueError/TypeError naming ``jac`` for a wrong shape or type."""
    what = "fun(x)[1] (jac=True)" if mode == _COMBINED else "jac"
    try:
        a = np.asarray(g)
    except Exception:
        raise TypeError(f"{what} must return an array of real numbers, got {g!r}") from None
    if a.shape != x.shape and not (a.shape == () and x.shape == (1,)):
        raise ValueError(
            f"{what} returned an array of shape {a.shape} {_at(info)}; expected {x.shape}, the "
            "shape of x0"
        )
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{what} returned dtype {a.dtype} {_at(info)}; expected real numbers")
    out = np.ascontiguousarray(a.reshape(x.shape), dtype=x.dtype)
    if out.strides != x.strides:  # a size-1 view may keep an odd stride
        out = out.copy()
    return out


def _split(out):
    try:
        f, g = out
    except (TypeError, ValueError):
        raise TypeError(
            f"with jac=True, fun must return (f, gradient); got {type(out).__name__}"
        ) from None
    return f, g


def _python_loop(fun, mode, scheme, jac, args, ws, info, cfg, callback, style, deadline,
                 printer):  # fmt: skip
    """Run the iterations in Python; return ``(status, gradient at the result's fun)``."""
    x = ws[0]
    dt = np.dtype(x.dtype.char)  # numpy's own instance, so that an identity test suffices
    xdt = x.dtype  # numba's instance (arrays made from x, e.g. empty_like, carry it)
    gstrides = x.strides  # a gradient with these strides is 1-D and contiguous
    ndarray = np.ndarray
    f64 = np.float64
    iterate, check, update = _step.iterate, _step.check, _step.update
    CONTINUE = _step.CONTINUE
    nonfinite = (_step.NONFINITE_F, _step.NONFINITE_G)
    sched = cfg.lr if callable(cfg.lr) else None
    lr = info[_step.LR]
    it = None if cfg.batches is None else iter(cfg.batches)
    simple = callback is None and deadline is None and printer is None
    every = printer.every if printer is not None else 0
    nfev = njev = 0
    calls = [0]
    if mode == _FINITE_DIFF:
        fd_gradient = _finite_differences(fun, scheme, cfg, ws, info, calls)

    if simple and it is None and sched is None and mode != _FINITE_DIFF:
        return _fast_loop(fun, mode == _COMBINED, jac, args, ws, info)
    fargs = args
    g = g_acc = None
    first = True
    status = None
    try:
        while True:
            if it is not None:
                try:
                    batch = next(it)
                except StopIteration:
                    status = _results.BATCHES_EXHAUSTED
                    break
                fargs = (batch, *args)
            if mode == _SEPARATE:
                f = fun(x, *fargs)
                nfev += 1
                g = jac(x, *fargs)
                njev += 1
            elif mode == _COMBINED:
                f, g = _split(fun(x, *fargs))
                nfev += 1
                njev += 1
            else:
                f = _scalar(fun(x, *fargs), info)
                nfev += 1
                calls[0] = 0
                try:
                    g = fd_gradient(x, f, fargs)
                finally:
                    nfev += calls[0]
                njev += 1
            if first:
                f, g = _first_values(f, g, x, mode, info)
                first = False
            else:
                if (
                    g.__class__ is not ndarray
                    or g.strides != gstrides
                    or (g.dtype is not dt and g.dtype is not xdt)
                ):
                    g = _gradient(g, x, mode, info)
                if f.__class__ is not float:
                    f = float(f) if f.__class__ is f64 else _scalar(f, info)
            if simple:
                if sched is None:
                    code = iterate(ws, g, f, lr, info)
                else:  # the schedule is evaluated only for a step that is taken
                    code = check(ws, g, f, info)
                    if code == CONTINUE:
                        update(ws, g, val.lr_at(sched, int(info[_step.NIT]) + 1), info)
                if code == CONTINUE:
                    g_acc = g
                    continue
            else:
                k = int(info[_step.NIT])
                code = check(ws, g, f, info)
                if code != _step.BAD_JAC_SIZE and code not in nonfinite:  # x_k accepted
                    if every and k % every == 0:
                        printer.row(info)
                    if style is not None and k > 0:
                        try:
                            _call(callback, style, x, f, g, k, nfev, njev)
                        except StopIteration:
                            if code == CONTINUE:
                                code = _results.CALLBACK
                    if code == CONTINUE and deadline is not None:
                        if time.perf_counter() >= deadline:
                            code = _results.MAXTIME
                    if code == CONTINUE:
                        if sched is not None:
                            lr = val.lr_at(sched, k + 1)
                        g_acc = g
                        update(ws, g, lr, info)
                        continue
            if code == _step.BAD_JAC_SIZE:
                _gradient(g, x, mode, info)  # raises, with the shape
                raise _compiled.bad_jac_size(x.size, int(info[_step.NIT]))
            if code not in nonfinite or int(info[_step.BAD_NIT]) == 0:
                g_acc = g
            status = code
            break
    except KeyboardInterrupt:
        status = _results.INTERRUPTED
    info[_step.NFEV] = nfev
    info[_step.NJEV] = njev
    return status, g_acc


def _finite_differences(fun, scheme, cfg, ws, info, calls):
    """``gradient(x, f, args)`` by scipy's own finite differences (its steps, relative by
    default, or ``finite_diff_step`` as an absolute step), kept in the box (the bounds as
    rounded to x's dtype, inside the given ones); ``calls[0]`` counts the calls of ``fun``.

    Fixed variables (lower bound = upper bound) are left out, as scipy's minimize does: no
    step fits in their box (scipy would divide 0 by 0), and their component of the projected
    gradient is irrelevant; it is 0.
    """
    opts = dict(method=scheme, rel_step=cfg.finite_diff_rel_step, abs_step=cfg.finite_diff_step)

    def counted(xx, *a):
        calls[0] += 1
        return fun(xx, *a)

    if not info[_step.HAS_BOUNDS]:

        def gradient(x, f, args):
            return approx_derivative(counted, x, f0=f, args=args, **opts)

        return gradient
    lo = ws[int(info[_step.R_LO])].astype(np.float64)
    hi = ws[int(info[_step.R_HI])].astype(np.float64)
    free = np.flatnonzero(lo != hi)
    if free.size == lo.size:

        def gradient(x, f, args):
            return approx_derivative(counted, x, f0=f, bounds=(lo, hi), args=args, **opts)

        return gradient
    bounds = (lo[free], hi[free])

    def gradient(x, f, args):
        g = np.zeros(x.shape, dtype=x.dtype)
        if free.size:

            def sub(xf, *a):  # fun of the free variables
                full = x.astype(np.result_type(x.dtype, xf.dtype))
                full[free] = xf
                return counted(full, *a)

            g[free] = approx_derivative(sub, x[free], f0=f, bounds=bounds, args=args, **opts)
        return g

    return gradient


def _fast_loop(fun, combined, jac, args, ws, info):
    """The Python loop without callback, batches, schedule, time limit or display."""
    x = ws[0]
    dt = np.dtype(x.dtype.char)
    xdt = x.dtype
    gstrides = x.strides
    ndarray = np.ndarray
    f64 = np.float64
    iterate = _step.iterate
    CONTINUE = _step.CONTINUE
    lr = info[_step.LR]
    mode = _COMBINED if combined else _SEPARATE
    nev = 0
    g = g_acc = None
    try:
        if combined:
            f, g = _split(fun(x, *args))
        else:
            f = fun(x, *args)
            g = jac(x, *args)
        nev = 1
        f, g = _first_values(f, g, x, mode, info)
        while True:
            code = iterate(ws, g, f, lr, info)
            if code != CONTINUE:
                break
            g_acc = g
            if combined:
                out = fun(x, *args)
                try:
                    f, g = out
                except (TypeError, ValueError):
                    _split(out)  # raises, naming jac=True
            else:
                f = fun(x, *args)
                g = jac(x, *args)
            nev += 1
            # anything but a contiguous 1-D array of x's dtype is checked and converted
            if (
                g.__class__ is not ndarray
                or g.strides != gstrides
                or (g.dtype is not dt and g.dtype is not xdt)
            ):
                g = _gradient(g, x, mode, info)
            if f.__class__ is not float:
                f = float(f) if f.__class__ is f64 else _scalar(f, info)
        if code == _step.BAD_JAC_SIZE:
            _gradient(g, x, mode, info)  # raises, with the shape
            raise _compiled.bad_jac_size(x.size, int(info[_step.NIT]))
        if code not in (_step.NONFINITE_F, _step.NONFINITE_G) or info[_step.BAD_NIT] == 0:
            g_acc = g
        status = code
    except KeyboardInterrupt:
        status = _results.INTERRUPTED
    info[_step.NFEV] = nev
    info[_step.NJEV] = nev
    return status, g_acc


def _call(callback, style, x, f, g, k, nfev, njev):
    if style == "new":
        from scipy.optimize import OptimizeResult

        callback(
            intermediate_result=OptimizeResult(
                x=x.copy(), fun=float(f), jac=np.array(g), nit=k, nfev=nfev, njev=njev
            )
        )
    else:
        callback(x.copy())


class _Printer:
    """The ``disp`` table and the optional tqdm progress bar."""

    def __init__(self, cfg):
        self.disp = cfg.disp
        self.every = cfg.disp_every
        self.maxiter = cfg.settings[_step.MAXITER]
        self.bar = None
        if cfg.progress:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                warnings.warn(
                    "options['progress'] needs tqdm, which is not installed; no progress bar",
                    RuntimeWarning,
                    stacklevel=5,
                )
            else:
                total = None if self.maxiter >= _options.UNLIMITED else int(self.maxiter)
                self.bar = tqdm(total=total, unit="it")

    def _print(self, line):
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def start(self, t0):
        self.t0 = t0
        if self.disp:
            self._print(f"{'iter':>9} {'f(x)':>14} {'|g|_inf':>10} {'best f':>14} {'time':>9}")

    def row(self, info):
        k = int(info[_step.EVAL_NIT])
        if self.bar is not None:
            self.bar.update(max(0, int(info[_step.NIT]) - self.bar.n))
        if self.disp and k >= 0:
            self._print(
                f"{k:>9d} {info[_step.FUN]:>14.6e} {info[_step.GNORM]:>10.3e} "
                f"{info[_step.BEST_FUN]:>14.6e} {time.perf_counter() - self.t0:>8.2f}s"
            )

    def finish(self, res):
        if self.bar is not None:
            self.bar.update(max(0, res.nit - self.bar.n))
            self.bar.close()
        if self.disp:
            print(res.message)
            print(f"         Current function value: {res.fun:.6g}")
            print(f"         Iterations: {res.nit}")
            print(f"         Function evaluations: {res.nfev}")
            print(f"         Gradient evaluations: {res.njev}")
