"""The status table of ``minimize`` and the building of its result.

======  ====================  =======  ==========================================================
status  name                  success  meaning
======  ====================  =======  ==========================================================
0       ``gtol``              True     :math:`\\|g_k\\|_\\infty \\le` gtol (projected gradient with
                                       bounds)
1       ``maxiter``           False    ``maxiter`` updates done
2       ``ftol``              True     the mean objective over the last window changed by at
                                       most ftol (relative, see ``minimize``)
3       ``xtol``              True     x moved by at most xtol over the last window
4       ``nonfinite_fun``     False    the objective was NaN or Inf; ``x`` is the last finite
                                       iterate
5       ``nonfinite_jac``     False    the gradient held NaN or Inf; ``x`` is the last finite
                                       iterate
6       ``maxtime``           False    ``maxtime`` seconds elapsed
7       ``batches_exhausted`` True     ``options['batches']`` ran out (one batch per iteration)
8       ``callback``          False    the callback raised ``StopIteration``
9       ``interrupted``       False    KeyboardInterrupt (Ctrl-C); the result so far
======  ====================  =======  ==========================================================
"""

import numpy as np
from scipy.optimize import OptimizeResult

from . import _step

GTOL = 0
MAXITER = 1
FTOL = 2
XTOL = 3
NONFINITE_FUN = 4
NONFINITE_JAC = 5
MAXTIME = 6
BATCHES_EXHAUSTED = 7
CALLBACK = 8
INTERRUPTED = 9

#: ``status -> (name, success)``.
STATUS = {
    GTOL: ("gtol", True),
    MAXITER: ("maxiter", False),
    FTOL: ("ftol", True),
    XTOL: ("xtol", True),
    NONFINITE_FUN: ("nonfinite_fun", False),
    NONFINITE_JAC: ("nonfinite_jac", False),
    MAXTIME: ("maxtime", False),
    BATCHES_EXHAUSTED: ("batches_exhausted", True),
    CALLBACK: ("callback", False),
    INTERRUPTED: ("interrupted", False),
}


def _message(status, info, maxtime):
    nit = int(info[_step.NIT])
    ev = int(info[_step.EVAL_NIT])
    w = int(info[_step.WINDOW])
    if status == GTOL:
        return (
            "Optimization terminated successfully: the gradient's inf-norm "
            f"{info[_step.GNORM]:.3g} <= gtol = {info[_step.GTOL]:g}"
            + (" (projected on the bounds)." if info[_step.HAS_BOUNDS] else ".")
        )
    if status == MAXITER:
        return f"Maximum number of iterations has been exceeded (maxiter = {nit})."
    if status == FTOL:
        return (
            "Optimization terminated successfully: the mean objective over the last "
            f"{w} iterations changed by {info[_step.FCHANGE]:.3g}, <= ftol * max(|F_j|, "
            f"|F_j-1|, 1) with ftol = {info[_step.FTOL]:g}."
        )
    if status == XTOL:
        return (
            f"Optimization terminated successfully: x moved by {info[_step.XCHANGE]:.3g} "
            f"(inf-norm) over the last {w} iterations, <= xtol * max(|x|_inf, 1) with "
            f"xtol = {info[_step.XTOL]:g}."
        )
    if status in (NONFINITE_FUN, NONFINITE_JAC):
        bad = int(info[_step.BAD_NIT])
        what = (
            f"The objective is {float(info[_step.BAD_FUN])!r}"
            if status == NONFINITE_FUN
            else "The gradient contains NaN or Inf"
        )
        if bad == 0:
            return f"{what} at the initial point x0; no iteration was done."
        return (
            f"{what} at iteration {bad}; stopped and returned iteration {nit}, the last "
            "iterate with a finite objective and gradient (best_x holds the best one)."
        )
    after = f"after {nit} iterations"
    if ev < 0:  # stopped before the first evaluation of x0 was complete
        x0 = "x0 projected onto the bounds" if info[_step.HAS_BOUNDS] else "x0"
        after = (
            f"before the first iteration: no evaluation of fun and jac was complete (x is {x0}; "
            "fun and gnorm are nan, jac is None)"
        )
        if status == BATCHES_EXHAUSTED:
            return f"The batches were empty: no iteration was done (x is {x0})."
    elif ev != nit:
        after += f"; fun and jac are from iteration {ev}, x is one update further"
    if status == MAXTIME:
        return f"maxtime = {maxtime:g} s reached {after}."
    if status == BATCHES_EXHAUSTED:
        return f"The batches are exhausted {after}."
    if status == CALLBACK:
        return f"Stopped by the callback (StopIteration) {after}."
    if status == INTERRUPTED:
        return f"Interrupted by the user (KeyboardInterrupt) {after}."
    raise AssertionError(status)


def build(status, ws, info, jac, cfg, **extra):
    """The :class:`~scipy.optimize.OptimizeResult` of a finished run.

    ``jac`` is the gradient at the iterate whose objective is ``info[FUN]``.
    """
    name, success = STATUS[status]
    best = int(info[_step.BEST_NIT]) >= 0
    res = OptimizeResult(
        x=ws[0].copy(),
        fun=float(info[_step.FUN]),
        jac=None if jac is None else np.array(jac, copy=True),
        nit=int(info[_step.NIT]),
        nfev=int(info[_step.NFEV]),
        njev=int(info[_step.NJEV]),
        status=status,
        success=success,
        message=_message(status, info, cfg.maxtime),
        best_x=ws[int(info[_step.BEST_ROW])].copy() if best else ws[0].copy(),
        best_fun=float(info[_step.BEST_FUN]),
        best_nit=int(info[_step.BEST_NIT]) if best else 0,
        gnorm=float(info[_step.GNORM]),
        method=cfg.method,
        hyperparameters=cfg.hyperparameters,
    )
    res.update(extra)
    return res
