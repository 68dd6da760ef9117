"""The Python loop over B problems: evaluate the problems still running (one call of
``fun``/``jac`` for all of them, or for the one problem of ``minimize``), then advance them
in one compiled call; finished problems are compressed out, as
``scipy.optimize.elementwise`` does. Callback, time limit, display, minibatches and ``lr``
schedules run here, between the stop tests and the update.
"""

import inspect
import time
import weakref

import numpy as np
from numba import typeof

from .. import _validation as val
from . import engine, status
from .status import BAD_JAC_SIZE, NONFINITE_FUN, NONFINITE_JAC, RUNNING

__all__ = ["python_loop", "callback_style", "Run"]


def callback_style(callback):
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


class Run:
    """What the loop works on: the workspace, the records, the hyperparameters and the
    compiled iteration of one run (also the compiled loop's input)."""

    def __init__(self, ws, progress, hyper, carry, cfg, eng):
        self.ws = ws
        self.progress = progress
        self.hyper = hyper
        self.carry = carry
        self.cfg = cfg
        self.engine = eng
        self.jac = None  # (B, n): the gradient at each finished problem's fun

    def keep_jac(self, rows, G):
        """Record the gradients ``G`` of the problems ``rows`` (for the result)."""
        if self.jac is None:
            self.jac = np.full(self.ws.xs.shape[1:], np.nan, dtype=self.ws.xs.dtype)
        self.jac[rows] = G


def python_loop(run, ev, callback, style, deadline, printer, batch):
    """Iterate until every problem has stopped; statuses in ``run.progress``."""
    cfg = run.cfg
    ws = run.ws
    progress = run.progress
    advance = _direct(run.engine.advance)
    controls = cfg.controls
    hyper = run.hyper
    carry = run.carry
    sched = cfg.lr if callable(cfg.lr) else None
    batches = None if cfg.batches is None else iter(cfg.batches)
    split = callback is not None or deadline is not None or printer is not None or sched
    active = np.arange(ws.xs.shape[1])
    last = None  # (active, G) of the latest complete evaluation
    previous = None  # and of the one before (for problems that stop on a non-finite value)
    first = None  # the memory of the first gradient returned (see _same_memory)
    reused = False  # whether the objective returns its gradients in that same memory
    final = None
    k = 0
    try:
        while True:
            extra = ()
            if batches is not None:
                try:
                    extra = (next(batches),)
                except StopIteration:
                    final = status.BATCHES_EXHAUSTED
                    break
            ev.k = k
            previous, last = last, None  # (the gradient before it is released: memory)
            F, G = ev(active, extra)
            if k <= 1:
                first, reused = _same_memory(G, first)
            if reused or k == 0:
                G = G.copy()
            last = (active, G)
            if not split:
                running = advance(ws, active, G, F, progress, hyper, carry, controls, 0)
            else:
                running = advance(ws, active, G, F, progress, hyper, carry, controls, 1)
                final = _between(run, active, k, ev, G, callback, style, deadline, printer)
                if final is not None:
                    if running != active.size:
                        _finished(run, active, G, previous)
                    break
                if running:
                    if sched is not None:
                        lr = val.lr_at(sched, k + 1)
                        hyper = hyper[: cfg.lr_index] + (lr,) + hyper[cfg.lr_index + 1 :]
                    advance(ws, active, G, F, progress, hyper, carry, controls, 2)
            if running != active.size:
                active = _finished(run, active, G, previous)
                if active.size == 0:
                    break
            k += 1
    except KeyboardInterrupt:
        final = status.INTERRUPTED
    if final is not None:
        _stop_all(run, final, last if last is not None else previous)


def _same_memory(G, first):
    """``(first, reused)`` for the gradient ``G`` of the first or the second evaluation:
    whether the objective returned it in the memory of the first one's (a ``jac`` that fills
    and returns one buffer). The loop then copies every gradient, since the next evaluation
    would overwrite it, and a problem that stops on a non-finite value reports the gradient
    at the iterate before; the first gradient is always copied, since the reuse shows only
    at the second evaluation.

    ``first`` is ``(start, end, owner)``: the first gradient's memory, and a function that
    returns the object owning it while that lives. A numpy array owner is referred to
    weakly (the copy is kept, not the first gradient: no array more is held); a new array
    that happens to be allocated where a freed one was is not a reuse. Other owners (numba's
    memory records, buffers of other objects) are held until the second evaluation."""
    start = G.__array_interface__["data"][0]
    if first is None:
        base = G
        while isinstance(base, np.ndarray) and not base.flags.owndata and base.base is not None:
            base = base.base  # (down to the array that owns the memory, or another object)
        try:
            owner = weakref.ref(base) if isinstance(base, np.ndarray) else (lambda: base)
        except TypeError:  # (a numpy subclass without weak references)
            owner = lambda: base  # noqa: E731
        return (start, start + G.nbytes, owner), False
    lo, hi, owner = first
    return None, owner() is not None and start < hi and lo < start + G.nbytes


def _direct(dispatcher):
    """``dispatcher`` that, after its first call, calls the compiled entry point for that
    call's argument types directly (numba's dispatch types every argument on every call:
    microseconds per iteration for a Workspace of nine arrays). The loop passes arguments
    of the same types at every iteration (arrays converted to x's dtype, C order)."""
    entry = None

    def call(*args):
        nonlocal entry
        if entry is not None:
            return entry(*args)
        out = dispatcher(*args)
        types = tuple(typeof(a) for a in args)
        overload = dispatcher.overloads.get(types)
        if overload is not None:
            entry = overload.entry_point
        return out

    return call


def _between(run, active, k, ev, G, callback, style, deadline, printer):
    """Display, callback and time limit after the stop tests of iteration ``k``; the
    status that stops every problem still running, or None."""
    if printer is not None and k % printer.every == 0:
        printer.row(run)
    if style is not None and k > 0:
        try:
            call_back(callback, style, run, active, G, ev)
        except StopIteration:
            return status.CALLBACK
    if deadline is not None and time.perf_counter() >= deadline:
        return status.MAXTIME
    return None


def _finished(run, active, G, previous):
    """Record the problems of ``active`` that stopped in this iteration; return the rest."""
    codes = run.progress["status"][active]
    done = codes != RUNNING
    if np.any(codes == BAD_JAC_SIZE):
        i = int(active[np.argmax(codes == BAD_JAC_SIZE)])
        raise ValueError(
            f"jac (or fun's gradient with jac=True) returned an array whose size is not x0's, "
            f"{run.ws.xs.shape[2]}, at iteration {int(run.progress['nit'][i])}"
        )
    rows = active[done]
    G_done = G[done]
    bad = (codes[done] == NONFINITE_FUN) | (codes[done] == NONFINITE_JAC)
    bad &= run.progress["bad_nit"][rows] > 0
    if np.any(bad):  # their fun and jac are those of the previous iterate
        prev_active, prev_G = previous
        G_done = G_done.copy()
        G_done[bad] = prev_G[np.searchsorted(prev_active, rows[bad])]
    run.keep_jac(rows, G_done)
    return active[~done]


def _stop_all(run, code, last):
    """Stop every problem still running with ``code``."""
    progress = run.progress
    rows = np.flatnonzero(progress["status"] == RUNNING)
    progress["status"][rows] = code
    if last is not None and rows.size:
        active, G = last
        pos = np.searchsorted(active, rows)
        ok = (pos < active.size) & (active[np.minimum(pos, active.size - 1)] == rows)
        run.keep_jac(rows[ok], G[pos[ok]])


def call_back(callback, style, run, active, G, ev):
    """Call the user's callback with the iterates just tested (copies)."""
    from scipy.optimize import OptimizeResult

    ws, progress = run.ws, run.progress
    x = engine.iterates(ws, progress)
    if not ev.batch:
        x = x[0]
        if style == "new":
            p = progress[0]
            callback(
                intermediate_result=OptimizeResult(
                    x=x,
                    fun=float(p["fun"]),
                    jac=G[0].copy(),
                    nit=int(p["nit"]),
                    nfev=int(ev.counts()[0][0]),
                    njev=int(ev.counts()[1][0]),
                )  # fmt: skip
            )
        else:
            callback(x)
        return
    if style == "new":
        jac = np.full(x.shape, np.nan, dtype=x.dtype)
        jac[active] = G
        callback(
            intermediate_result=OptimizeResult(
                x=x,
                fun=progress["fun"].copy(),
                jac=jac,
                nit=progress["nit"].copy(),
                nfev=ev.nfev.copy(),
                njev=ev.njev.copy(),
                status=progress["status"].copy(),
                running=progress["status"] == RUNNING,
            )  # fmt: skip
        )
    else:
        callback(x)
