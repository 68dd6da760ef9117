"""``fastadam.minimize`` and ``fastadam.minimize_batch``: scipy-style minimisation with the
optimizers of :mod:`fastadam`, of one problem or of B independent problems.

Both run the one engine of :mod:`fastadam.optimize.engine` (``minimize`` is the batch of
one problem): the Python loop of :mod:`fastadam.optimize.loop`, or, with ``@njit``
objectives, the compiled loop of :mod:`fastadam.optimize.compiled`.
"""

import time
import warnings

import numpy as np
from numba.extending import is_jitted

from ..optimizers import cuda_module, is_cuda_array
from . import compiled, engine, loop, results
from . import options as options_
from .evaluate import Evaluator, jac_mode, required_positional, row_by_row

__all__ = ["minimize", "minimize_batch"]


def minimize(
    fun, x0, args=(), method="adam", jac=None, bounds=None, callback=None, tol=None,
    options=None,
):  # fmt: skip
    r"""Minimize a scalar function of one or more variables with Adam, AdamW, RMSProp or NAdam.

    The interface is :func:`scipy.optimize.minimize`'s; the result is a
    :class:`scipy.optimize.OptimizeResult`. Each iteration evaluates the objective and its
    gradient at the current iterate :math:`x_k`, runs the stop tests, and applies one update
    of the chosen rule (exactly :class:`fastadam.Adam` / :class:`fastadam.AdamW` /
    :class:`fastadam.RMSProp` / :class:`fastadam.NAdam`, in the chosen ``convention``), for
    example PyTorch's Adam:

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
        ``fun(x, *args) -> float``; with batches ``fun(x, batch, *args)``. ``x`` is a
        view of the run's iterate buffers, overwritten by later updates: copy it if you
        keep it.
    x0 : array_like, shape (n,)
        Starting point: real numbers, 1-D. float32 and float64 are kept (the whole run is in
        that precision), integers become float64. Projected onto ``bounds``.
    args : tuple, optional
        Extra arguments passed to ``fun``, ``jac`` (a non-tuple is wrapped in one).
    method : {'adam', 'adamw', 'rmsprop', 'nadam'}, optional
        The update rule (the optimizer class of that name).
    jac : callable, True, None, False or {'2-point', '3-point', 'cs'}, optional
        The gradient, ``jac(x, *args) -> array_like`` of shape (n,) (any array-like of real
        numbers; it is converted to a contiguous array of ``x``'s dtype); ``True`` if ``fun``
        returns ``(f, gradient)``. Or, as on the GPU, the gradient written into an output
        array: ``jac(x, g, *args)``, or ``fun(x, g, *args) -> f`` with ``True`` (told by
        their parameters without a default: ``len(args) + 2`` of them; no array is
        allocated per evaluation). Otherwise finite differences by scipy's own
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
        ``decoupled_weight_decay``; NAdam: those of :class:`fastadam.NAdam`
        (``momentum_decay``...). Defaults come from the convention, as for the classes
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
        ``compiled`` (None: automatic; True: require the compiled path; False: never),
        ``track_best`` (default True: keep the best iterate in ``best_x``; False saves one
        array of n).

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


def minimize_batch(
    fun, x0, args=(), method="adam", jac=None, bounds=None, callback=None, tol=None,
    options=None,
):  # fmt: skip
    r"""Minimize B independent problems at once: row ``i`` of ``x0`` is problem ``i``.

    Each problem runs exactly as :func:`fastadam.minimize` would run it alone -- the same
    iterates, bit for bit, with its own stop tests -- and a problem that has stopped costs
    nothing more. Adam, RMSProp and NAdam are elementwise, so B problems of n variables
    are one update over a (B, n) array; only the stop tests are per problem.

    Two ways to give the objective:

    - **compiled**: ``fun`` (and ``jac``, or ``jac=True``) are numba ``@njit`` functions of
      *one* problem, ``fun(x, *args_i)`` with ``x`` of shape (n,). The whole loop runs
      compiled, the problems spread over numba's threads. Where it cannot (a callback, an
      ``lr`` schedule, minibatches, finite differences, ``compiled=False``), the Python
      loop calls them one problem at a time: an ``@njit`` ``fun`` is always a function of
      one problem (and its ``jac`` too).
    - **vectorized**: a plain Python ``fun(X, *args) -> f`` of shape (b,), with ``X`` the
      (b, n) rows of the b problems still running and each per-problem argument sliced to
      those rows (finished problems are compressed out, as in
      :mod:`scipy.optimize.elementwise`); ``jac(X, *args)`` returns (b, n).
    - **on the GPU**, when ``x0`` is a CUDA array or ``options['device']`` is ``'cuda'``:
      ``fun`` of one problem compiled for the device (a ``@cuda.jit(device=True)``
      function, or a plain Python function), one thread per problem. The gradient goes
      into an output argument: ``fun(x, g, *args_i) -> f`` with ``jac=True``, or
      ``jac(x, g, *args_i)``. No callback, ``lr`` schedule or finite differences there;
      the results (numpy arrays) agree with the CPU's to rounding. The CPU takes these
      objectives too (see ``jac`` in :func:`fastadam.minimize`): a plain Python function
      written once runs under ``numba.njit`` on the CPU and as it is on the GPU.

    Parameters
    ----------
    fun : callable
        See above. ``X`` (or ``x``) is a view of the run's iterate buffers, overwritten by
        later updates (or a copy): copy it if you keep it, and do not write to it.
    x0 : array_like, shape (B, n)
        One starting point per row (float32 and float64 are kept, integers become float64).
    args : tuple, optional
        Extra arguments. **Broadcasting rule**: an array whose leading axis has length B
        holds one row per problem (problem ``i`` gets ``a[i]``; the vectorized ``fun`` gets
        the rows running); an array with leading axis 1 is shared (the compiled ``fun``
        gets ``a[0]``, the vectorized one ``a`` itself); scalars and other objects are
        shared (a 0-d array too: where the compiled loop runs the problems in parallel, as
        the number it holds). Any other leading length is a ValueError.
    method, jac, bounds, tol
        As for :func:`fastadam.minimize`; the bounds (one box for every problem) have n
        pairs. With ``jac`` None or a finite-difference scheme each problem's gradient is
        computed by scipy's finite differences, calling ``fun`` on one row at a time
        (n + 1 or more calls per problem and iteration: slow; give ``jac`` when you can).
    callback : callable, optional
        Called after each iteration with the whole batch: ``callback(intermediate_result)``
        gets an :class:`~scipy.optimize.OptimizeResult` with ``x`` (B, n), ``fun``, ``nit``,
        ``nfev``, ``njev``, ``status`` (B,), ``running`` (a boolean mask) and ``jac`` (NaN
        rows for stopped problems); ``callback(X)`` otherwise. Copies. Raising
        :class:`StopIteration` stops every problem still running with status 8, nothing
        lost.
    options : dict, optional
        As for :func:`fastadam.minimize`. ``lr`` and the other numeric hyperparameters
        (``betas``' two values, ``eps``, ``weight_decay``, ``decay``, ``momentum``...) may
        be arrays of shape (B,), one value per problem (a schedule ``lr`` is shared).

    Returns
    -------
    res : scipy.optimize.OptimizeResult
        The fields of :func:`fastadam.minimize` with a leading axis B: ``x``, ``jac``,
        ``best_x`` (B, n); ``fun``, ``gnorm``, ``best_fun`` (B,) floats; ``nit``, ``nfev``,
        ``njev``, ``best_nit``, ``status`` (B,) integers; ``success`` (B,) booleans.
        ``message`` counts the problems per status, and ``messages`` (a read-only
        mapping) gives the meaning of each status that occurred. Also ``method``,
        ``hyperparameters``, ``compiled`` (and ``device`` and ``compile_time`` on the GPU).

    Examples
    --------
    Fit ``y = a exp(-b t)`` to 1000 noisy curves at once, with a vectorized objective:

    >>> import numpy as np, fastadam as fa
    >>> rng = np.random.default_rng(0)
    >>> t = np.linspace(0, 4, 50)
    >>> truth = rng.uniform([1, 0.5], [2, 1.5], size=(1000, 2))
    >>> y = truth[:, :1] * np.exp(-truth[:, 1:] * t) + 0.01 * rng.standard_normal((1000, 50))
    >>> def fun(p, y):
    ...     r = p[:, :1] * np.exp(-p[:, 1:] * t) - y
    ...     return 0.5 * np.sum(r * r, axis=1)
    >>> def jac(p, y):
    ...     e = np.exp(-p[:, 1:] * t)
    ...     r = p[:, :1] * e - y
    ...     return np.stack([np.sum(r * e, axis=1), -np.sum(r * p[:, :1] * t * e, axis=1)], 1)
    >>> res = fa.minimize_batch(fun, np.ones((1000, 2)), args=(y,), jac=jac,
    ...                         options=dict(lr=0.02, maxiter=5000, gtol=1e-6))
    >>> res.x.shape, bool(res.success.all()), bool(np.abs(res.x - truth).max() < 0.05)
    ((1000, 2), True, True)
    """
    return solve(fun, x0, args, method, jac, bounds, callback, tol, options, stacklevel=3,
                 batch=True)  # fmt: skip


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


def _per_problem_args(args, b, batch):
    """For each argument, 1 when it holds one row per problem (see minimize_batch)."""
    if not batch:
        return (0,) * len(args)
    return tuple(
        options_.per_problem(a.shape, k, b) if isinstance(a, np.ndarray) else 0
        for k, a in enumerate(args)
    )


def solve(fun, x0, args, method, jac, bounds, callback, tol, options, stacklevel, batch=False):
    """The body of :func:`minimize`, :func:`minimize_batch` and the methods of
    :mod:`fastadam.methods`."""
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    on_device = is_cuda_array(x0)
    if on_device:
        x0 = _gpu().host_copy(x0)
    x0 = options_.check_x0(x0, batch)
    X0 = x0 if batch else x0[None]
    b, n = X0.shape
    if not isinstance(args, tuple):
        args = (args,)
    jac_mode(jac)  # refuses an unknown jac before anything runs
    style = loop.callback_style(callback)
    cfg = options_.resolve(method, options, tol, batch=b if batch else None)
    options_.warn_unknown(cfg.unknown, stacklevel + 1)
    lo, hi = options_.check_bounds(bounds, n, X0.dtype)
    if on_device or cfg.device == "cuda":
        if cfg.device == "cpu":
            raise ValueError(
                "x0 is a CUDA array but options['device'] is 'cpu': pass a host array, or "
                "leave device out to run on the GPU"
            )
        return _solve_on_device(fun, X0, args, jac, callback, cfg, lo, hi, batch)
    per_problem = _per_problem_args(args, b, batch)

    refusal = _compiled_refusal(fun, jac, callback, cfg)
    if cfg.compiled and refusal:
        raise ValueError(f"options['compiled'] is True but {refusal}")
    use_compiled = refusal is None and cfg.compiled is not False
    run = _new_run(X0, lo, hi, cfg, keep_gradient=use_compiled)
    extra = {}
    if use_compiled:
        # one problem's arguments are selected with pick(): minimize passes them whole
        parallel = engine.variant(b, n) == engine.PROBLEMS
        cargs = tuple(_compiled_arg(a, batch, parallel) for a in args)
        cjac = None if jac is True else jac
        cached, _ = compiled.loops(cfg.spec.name, engine.variant(b, n), cfg.batched,
                                   engine.windowed(cfg.controls))  # fmt: skip
        try:
            entry, extra["compile_time"] = compiled.specialize(
                fun, cjac, cargs, per_problem, run, cached
            )
        except TypeError:
            # e.g. functions with explicit signatures that accept no C-contiguous array, or
            # arguments numba cannot type: the Python loop calls them as Python would
            if cfg.compiled:
                raise
            use_compiled = False
            run = _new_run(X0, lo, hi, cfg, keep_gradient=False)

    def iterate(deadline, printer):
        if use_compiled:
            compiled.run_chunked(entry, fun, cjac, cargs, per_problem, run, deadline, printer)
            return
        f, j = fun, jac
        if batch and is_jitted(fun):  # the compiled form: functions of one problem
            f, j = row_by_row(fun, jac, per_problem, int(cfg.batches is not None))
        ev = Evaluator(f, j, args, per_problem, run.ws.xs, run.progress["x_row"], lo, hi, cfg,
                       batch)  # fmt: skip
        try:
            loop.python_loop(run, ev, callback, style, deadline, printer, batch)
        finally:
            run.progress["nfev"], run.progress["njev"] = ev.counts()

    return _execute(run, cfg, batch, iterate, compiled=use_compiled, **extra)


def _execute(run, cfg, batch, iterate, **extra):
    """``iterate(deadline, printer)`` with the time limit and the display (which it
    returns more fields of the result from, or None); then the result of ``run``."""
    printer = _Printer(cfg, batch) if (cfg.disp or cfg.progress) else None
    start = time.perf_counter()
    if printer is not None:
        printer.start(start)
    deadline = None if cfg.maxtime is None else start + cfg.maxtime
    more = iterate(deadline, printer) or {}
    build = results.build_batch if batch else results.build
    res = build(run, **extra, **more)
    if printer is not None:
        printer.finish(res)
    return res


def _gpu():
    return cuda_module("minimize")  # numba-cuda: only for the GPU path


def _device_refusal(jac, callback, cfg):
    """Why the GPU path cannot run these arguments (None when it can)."""
    if jac is None or isinstance(jac, str):
        return (
            "jac must be a device function of one problem, jac(x, g, *args) writing the "
            "gradient into g, or True (fun(x, g, *args) returns f and writes g); finite "
            "differences run on the CPU only"
        )
    if callback is not None:
        return "a callback is not supported (the iterations run on the device)"
    if cfg.batches is not None:
        return "options['batches'] is not supported"
    if callable(cfg.lr):
        return "an lr schedule is not supported: give lr as a number or an array of shape (B,)"
    if cfg.compiled is False:
        return "options['compiled'] = False asks for the Python loop, which runs on the CPU"
    return None


def _check_device_form(fun, jac, nargs):
    """TypeError unless the gradient goes into an output argument (device code allocates
    no arrays), told by the parameters, before anything compiles (a numba-cuda typing
    error otherwise)."""
    counts = {"fun": required_positional(fun)}
    if jac is not True:
        counts["jac"] = required_positional(jac)
    wanted = {"fun": nargs + (2 if jac is True else 1), "jac": nargs + 2}
    for name, count in counts.items():
        if count is not None and count != wanted[name]:
            raise TypeError(
                f"on the GPU the gradient is written into an output argument: fun(x, g, "
                f"*args) -> f with jac=True, or fun(x, *args) -> f and jac(x, g, *args); with "
                f"{nargs} args, {name} must take {wanted[name]} parameters, it takes {count}"
            )


def _solve_on_device(fun, X0, args, jac, callback, cfg, lo, hi, batch):
    """:func:`solve` on the GPU (:mod:`fastadam.cuda.minimize`): everything is checked
    and compiled before the run starts."""
    refusal = _device_refusal(jac, callback, cfg)
    if refusal is not None:
        raise ValueError(f"on the GPU (a CUDA x0 or options['device'] = 'cuda'), {refusal}")
    gpu = _gpu()
    dfun = gpu.compile_objective(fun, "fun")
    djac = None if jac is True else gpu.compile_objective(jac, "jac")
    _check_device_form(fun, jac, len(args))
    dargs, kinds = gpu.device_args(args, X0.shape[0], batch)
    run = _new_run(X0, lo, hi, cfg, keep_gradient=True)

    def iterate(deadline, printer):
        return {"compile_time": gpu.run(dfun, djac, dargs, kinds, run, deadline, printer)}

    return _execute(run, cfg, batch, iterate, compiled=True, device="cuda")


def _compiled_arg(a, batch, parallel):
    """``a`` for the compiled loop: for :func:`minimize`, an array with a leading axis of
    length 1, which :func:`fastadam.optimize.engine.pick` gives back whole. A 0-d array is
    passed as it is, except to the loop that runs the problems in ``parallel``: numba's
    parallel loops take it for the scalar it holds (and the functions compiled for the
    array would not match), so there it is that scalar."""
    if not isinstance(a, np.ndarray):
        return a
    if a.ndim == 0:
        return a[()] if parallel else a
    return a if batch else a[np.newaxis]


def _new_run(X0, lo, hi, cfg, keep_gradient):
    b, n = X0.shape
    ws = engine.allocate(
        X0, cfg.state_init, lo=lo, hi=hi, xtol=float(cfg.controls[0]["xtol"]),
        track_best=cfg.track_best, keep_gradient=keep_gradient,
    )  # fmt: skip
    carry = np.full(b, 0.0 if cfg.carry is None else cfg.carry)
    hyper = tuple(carry if v is None else v for v in cfg.hyper)
    eng = engine.engine(cfg.spec.name, engine.variant(b, n), cfg.batched,
                        engine.windowed(cfg.controls))  # fmt: skip
    return loop.Run(ws, engine.new_progress(b), hyper, carry, cfg, eng)


class _Printer:
    """The ``disp`` table and the optional tqdm progress bar (for a batch: the number of
    problems running, the mean objective and the largest gradient norm among them)."""

    def __init__(self, cfg, batch):
        self.disp = cfg.disp
        self.batch = batch
        self.every = cfg.disp_every
        self.maxiter = cfg.maxiter
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
                total = None if self.maxiter >= options_.UNLIMITED else self.maxiter
                self.bar = tqdm(total=total, unit="it")

    def _print(self, line):
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def start(self, t0):
        self.t0 = t0
        if self.disp:
            if self.batch:
                head = f"{'iter':>9} {'running':>9} {'mean f(x)':>14} {'max |g|_inf':>12}"
            else:
                head = f"{'iter':>9} {'f(x)':>14} {'|g|_inf':>10} {'best f':>14}"
            self._print(f"{head} {'time':>9}")

    def row(self, run):
        """A row for the problems still running (all of them once none is), the same on
        every path."""
        p = run.progress
        nit = int(p["nit"].max())
        if self.bar is not None:
            self.bar.update(max(0, nit - self.bar.n))
        if not self.disp or p["eval_nit"].max() < 0:
            return
        elapsed = f"{time.perf_counter() - self.t0:>8.2f}s"
        if not self.batch:
            q = p[0]
            self._print(
                f"{int(q['eval_nit']):>9d} {q['fun']:>14.6e} {q['gnorm']:>10.3e} "
                f"{q['best_fun']:>14.6e} {elapsed}"
            )
            return
        running = p["status"] == engine.RUNNING
        rows = p[running] if running.any() else p
        self._print(
            f"{nit:>9d} {int(running.sum()):>9d} {np.mean(rows['fun']):>14.6e} "
            f"{np.max(rows['gnorm']):>12.3e} {elapsed}"
        )

    def finish(self, res):
        if self.bar is not None:
            self.bar.update(max(0, int(np.max(res.nit)) - self.bar.n))
            self.bar.close()
        if not self.disp:
            return
        if self.batch:
            ok = int(np.sum(res.success))
            print(f"{ok} of {len(res.success)} problems succeeded")
            for code in np.unique(res.status):
                count = int(np.sum(res.status == code))
                print(f"         status {code}: {count} problem{'s' if count != 1 else ''}")
            return
        print(res.message)
        print(f"         Current function value: {res.fun:.6g}")
        print(f"         Iterations: {res.nit}")
        print(f"         Function evaluations: {res.nfev}")
        print(f"         Gradient evaluations: {res.njev}")
