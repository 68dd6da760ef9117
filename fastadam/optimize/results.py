"""The results of ``minimize`` and ``minimize_batch``: the OptimizeResult of a finished run
and the messages of the statuses (the table is in :mod:`fastadam.optimize.status`).
"""

import types

import numpy as np
from scipy.optimize import OptimizeResult

from . import engine
from .status import (
    BATCHES_EXHAUSTED,
    CALLBACK,
    FTOL,
    GTOL,
    INTERRUPTED,
    MAXITER,
    MAXTIME,
    NONFINITE_FUN,
    NONFINITE_JAC,
    XTOL,
    Status,
)  # fmt: skip

#: ``status -> (name, success)``.
STATUS = {int(s): (s.name.lower(), s.success) for s in Status}
#: The codes of the statuses that count as success.
SUCCEEDED = np.array(sorted(int(s) for s in Status if s.success), dtype=np.int64)


def message(status, p, ctl, bounded, maxtime):
    """The message of one problem (``p`` its progress record, ``ctl`` the controls)."""
    nit = int(p["nit"])
    ev = int(p["eval_nit"])
    w = int(ctl["window"])
    if status == GTOL:
        return (
            "Optimization terminated successfully: the gradient's inf-norm "
            f"{p['gnorm']:.3g} <= gtol = {ctl['gtol']:g}"
            + (" (projected on the bounds)." if bounded else ".")
        )
    if status == MAXITER:
        return f"Maximum number of iterations has been exceeded (maxiter = {nit})."
    if status == FTOL:
        return (
            "Optimization terminated successfully: the mean objective over the last "
            f"{w} iterations changed by {p['fchange']:.3g}, <= ftol * max(|F_j|, "
            f"|F_j-1|, 1) with ftol = {ctl['ftol']:g}."
        )
    if status == XTOL:
        return (
            f"Optimization terminated successfully: x moved by {p['xchange']:.3g} "
            f"(inf-norm) over the last {w} iterations, <= xtol * max(|x|_inf, 1) with "
            f"xtol = {ctl['xtol']:g}."
        )
    if status in (NONFINITE_FUN, NONFINITE_JAC):
        bad = int(p["bad_nit"])
        what = (
            f"The objective is {float(p['bad_fun'])!r}"
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
        x0 = "x0 projected onto the bounds" if bounded else "x0"
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


def _best_x(run):
    """(B, n): each problem's best iterate (None when best-iterate tracking is off)."""
    ws, p = run.ws, run.progress
    if ws.xs.shape[0] < 3:
        return None
    # (before an accepted iterate, best_row is -1: the iterate, x0 projected)
    rows = np.where(p["best_row"] < 0, p["x_row"], p["best_row"])
    return ws.xs[rows, np.arange(rows.size)]


def _fields(run):
    """The result's arrays, one row or value per problem."""
    p = run.progress
    codes = p["status"]
    return dict(
        x=engine.iterates(run.ws, run.progress),
        fun=p["fun"].copy(),
        jac=run.jac,
        nit=p["nit"].copy(),
        nfev=p["nfev"].copy(),
        njev=p["njev"].copy(),
        status=codes.copy(),
        success=np.isin(codes, SUCCEEDED),  # (summary() refuses unknown codes)
        best_x=_best_x(run),
        best_fun=p["best_fun"].copy(),
        best_nit=np.maximum(p["best_nit"], 0),
        gnorm=p["gnorm"].copy(),
    )


#: What each status means, for a batch's ``messages``.
MEANING = {
    GTOL: "the gradient's inf-norm (projected on the bounds) <= gtol",
    MAXITER: "maxiter iterations done",
    FTOL: "the mean objective over the last window changed by at most ftol (relative)",
    XTOL: "x moved by at most xtol (relative) over the last window",
    NONFINITE_FUN: "the objective was NaN or Inf; x is the last iterate with finite values",
    NONFINITE_JAC: "the gradient held NaN or Inf; x is the last iterate with finite values",
    MAXTIME: "maxtime reached",
    BATCHES_EXHAUSTED: "the minibatches are exhausted",
    CALLBACK: "stopped by the callback (StopIteration)",
    INTERRUPTED: "interrupted by the user (KeyboardInterrupt)",
}


def summary(status, success):
    """``(message, messages)`` of a batch: the problems per status, and the meaning of each
    status that occurred (a read-only mapping)."""
    codes, counts = np.unique(status, return_counts=True)
    parts = [f"{n} {STATUS[int(c)][0]}" for c, n in zip(codes, counts, strict=True)]
    ok = int(np.sum(success))
    message = f"{ok} of {len(status)} problems succeeded (" + ", ".join(parts) + ")"
    return message, types.MappingProxyType({int(c): MEANING[int(c)] for c in codes})


def build_batch(run, **extra):
    """The :class:`~scipy.optimize.OptimizeResult` of ``minimize_batch``: ``message`` counts
    the problems per status, ``messages`` says what each status that occurred means."""
    f = _fields(run)
    message, messages = summary(f["status"], f["success"])
    res = OptimizeResult(
        **f, message=message, messages=messages, method=run.cfg.method,
        hyperparameters=run.cfg.hyperparameters,
    )  # fmt: skip
    if res.jac is None:
        res.jac = np.full(res.x.shape, np.nan, dtype=res.x.dtype)
    res.update(extra)
    return res


def build(run, **extra):
    """The :class:`~scipy.optimize.OptimizeResult` of ``minimize`` (one problem)."""
    f = _fields(run)
    evaluated = int(run.progress[0]["eval_nit"]) >= 0
    jac = f["jac"]
    res = OptimizeResult(
        x=f["x"][0],
        fun=float(f["fun"][0]),
        jac=jac[0] if jac is not None and evaluated else None,
        nit=int(f["nit"][0]),
        nfev=int(f["nfev"][0]),
        njev=int(f["njev"][0]),
        status=int(f["status"][0]),
        success=bool(f["success"][0]),
        message=message(
            int(f["status"][0]),
            run.progress[0],
            run.cfg.controls[0],
            run.ws.lo.size > 0,
            run.cfg.maxtime,
        ),  # fmt: skip
        best_x=None if f["best_x"] is None else f["best_x"][0],
        best_fun=float(f["best_fun"][0]),
        best_nit=int(f["best_nit"][0]),
        gnorm=float(f["gnorm"][0]),
        method=run.cfg.method,
        hyperparameters=run.cfg.hyperparameters,
    )
    res.update(extra)
    return res
