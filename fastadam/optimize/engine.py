"""The engine: B independent problems of n variables, advanced by one compiled iteration.

A run's state is three named records:

:class:`Workspace`
    The per-element arrays: the iterates ``x`` (shape (B, n); problem ``i`` is ``x[i]``, the
    array its objective receives), the algorithm's state buffers, the last accepted iterate
    (and the best one, unless best-iterate tracking is off), the ``xtol`` snapshot, the
    gradient kept for the result, and the bounds.
``progress``
    A numpy record array of shape (B,) with dtype :data:`PROGRESS`: each problem's
    counters, objective values and stop-test values (``progress[i].nit``...).
``controls``
    A one-element record array with dtype :data:`CONTROLS`: the stop settings.

The hyperparameters are a tuple in the order of the algorithm's ``coefficients``
arguments (:attr:`fastadam.algorithms.Algorithm.arguments`), each a scalar shared by all
problems or an array of shape (B,) with one value per problem.

Two compiled functions hold the iteration, used by every path: :func:`check` accepts an
evaluation and runs the stop tests, ``update`` (one per algorithm, from
:func:`engine`) applies one update through the algorithm's compiled loop. The Python loop
calls ``advance`` once per iteration for all problems still running; the compiled loop
(``run``, with the user's ``@njit`` objective) calls them in a loop per problem. So every
path, and every problem of a batch, gives the same iterates bit for bit.
"""

import functools
from typing import Any, NamedTuple

import numpy as np
from numba import prange, types
from numba.extending import overload

from .. import algorithms
from ..cpu.compile import jit
from ..cpu.kernels import COMPILED, PARALLEL_MIN_SIZE
from .status import (
    BAD_JAC_SIZE,
    FTOL,
    GTOL,
    MAXITER,
    NONFINITE_FUN,
    NONFINITE_JAC,
    RUNNING,
    XTOL,
)  # fmt: skip

#: Per-problem running values (one record per problem).
PROGRESS = np.dtype(
    [
        ("status", "i8"),  # RUNNING (-1) until a stop test fires, then the status
        ("nit", "i8"),  # updates applied to obtain x[i]
        ("nfev", "i8"),
        ("njev", "i8"),
        ("fun", "f8"),  # f at the last accepted iterate
        ("gnorm", "f8"),  # inf-norm of its gradient (projected with bounds)
        ("eval_nit", "i8"),  # the iteration whose f and gradient are in fun and gnorm
        ("best_fun", "f8"),
        ("best_nit", "i8"),
        ("fsum", "f8"),  # sum of f over the current ftol window
        ("fmean_prev", "f8"),  # mean of f over the previous window (NaN before the first)
        ("fchange", "f8"),  # last |F_j - F_{j-1}| tested by ftol (NaN if none yet)
        ("xchange", "f8"),  # last ||x_k - x_{k-w}||_inf tested by xtol (NaN if none yet)
        ("bad_nit", "i8"),  # iteration at which a non-finite value appeared (-1 if none)
        ("bad_fun", "f8"),  # the objective value there
        ("last_row", "i8"),  # the row of Workspace.rows holding the last accepted iterate
        ("best_row", "i8"),  # the row holding the best iterate (-1 when not tracked)
    ]
)

#: The stop settings, shared by all problems.
CONTROLS = np.dtype(
    [("maxiter", "i8"), ("gtol", "f8"), ("ftol", "f8"), ("xtol", "f8"), ("window", "i8")]
)


class Workspace(NamedTuple):
    """The arrays of a run (unused ones have a last axis of length 0)."""

    #: (B, n): the iterates
    x: Any
    #: (B, n) or (B, 0): the algorithm's state buffers (its ``State`` fields)
    s0: Any
    s1: Any
    s2: Any
    #: (R, B, n): the last accepted iterate, and with R = 2 the best one (rows swap roles)
    rows: Any
    #: (B, n) or (B, 0): x at the start of the current xtol window
    snap: Any
    #: (B, n) or (B, 0): the gradient at the last accepted iterate (compiled loop)
    glast: Any
    #: (n,) or (0,): the bounds, in x's dtype (rounded inward)
    lo: Any
    hi: Any


def new_progress(b):
    """A fresh :data:`PROGRESS` array for ``b`` problems."""
    p = np.zeros(b, dtype=PROGRESS)
    p["status"] = RUNNING
    for name in ("fun", "gnorm", "best_fun", "fmean_prev", "fchange", "xchange", "bad_fun"):
        p[name] = np.nan
    p["eval_nit"] = -1
    p["best_nit"] = -1
    p["bad_nit"] = -1
    p["best_row"] = -1
    return p


# -- per-problem selection --------------------------------------------------------------------
def pick(values, i, batched):
    """The values of problem ``i``: ``values[k][i]`` where ``batched[k]`` is 1, else
    ``values[k][0]`` for an array and ``values[k]`` for a scalar."""


@overload(pick, jit_options=dict(inline="always"))
def _pick(values, i, batched):
    parts = []
    for k, t in enumerate(values):
        if isinstance(t, types.Array) and t.ndim >= 1:
            parts.append(f"values[{k}][i * batched[{k}]]")
        else:
            parts.append(f"values[{k}]")
    body = ", ".join(parts) + ("," if len(parts) == 1 else "")
    namespace = {}
    exec(f"def impl(values, i, batched):\n    return ({body})\n", namespace)  # noqa: S102
    return namespace["impl"]


# -- element passes, serial and parallel ------------------------------------------------------
_CHUNK = 1 << 14


def max_abs_bits(bits, mask):
    """The largest ``bits[j] & mask``: the absolute values of floats viewed as unsigned
    integers, ordered like the floats (NaN above Inf); integer max reductions vectorize where
    float ones do not. In chunks, so that the parallel copy spreads them over threads; max is
    exact, so both give the same value."""
    n = bits.size
    nchunks = max(1, (n + _CHUNK - 1) // _CHUNK)
    maxes = np.zeros(nchunks, dtype=bits.dtype)
    for c in prange(nchunks):
        m = maxes[c]
        for j in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            m = max(m, bits[j] & mask)
        maxes[c] = m
    return maxes.max()


def scan(g):
    """``(finite, max |g_i|)`` of a 1-D float array, in one pass (the max is meaningless if
    not finite)."""
    out = np.empty(1, dtype=g.dtype)
    if g.itemsize == 8:
        top = max_abs_bits_(g.view(np.uint64), np.uint64(0x7FFFFFFFFFFFFFFF))  # noqa: F821
        if top >= np.uint64(0x7FF0000000000000):
            return False, np.inf
        out.view(np.uint64)[0] = top
    else:
        top32 = max_abs_bits_(g.view(np.uint32), np.uint32(0x7FFFFFFF))  # noqa: F821
        if top32 >= np.uint32(0x7F800000):
            return False, np.inf
        out.view(np.uint32)[0] = top32
    return True, np.float64(out[0])


def copy(src, dst):
    """``dst[:] = src`` for 1-D arrays."""
    for j in prange(src.size):
        dst[j] = src[j]


def clamp(x, lo, hi):
    """Project ``x`` onto the box."""
    for j in prange(x.size):
        x[j] = min(max(x[j], lo[j]), hi[j])


def _projected_norm(x, g, lo, hi):
    """inf-norm of the gradient projected on the box: components pushing out at an active
    bound are dropped (as in L-BFGS-B)."""
    m = 0.0
    for j in range(x.size):
        gj = g[j]
        if (x[j] <= lo[j] and gj > 0) or (x[j] >= hi[j] and gj < 0):
            continue
        m = max(m, abs(gj))
    return m


projected_norm = jit(_projected_norm)


def _choose2(a, b):
    if a.size >= PARALLEL_MIN_SIZE:
        return parallel_(a, b)  # noqa: F821
    return serial_(a, b)  # noqa: F821


def _choose3(a, b, c):
    if a.size >= PARALLEL_MIN_SIZE:
        return parallel_(a, b, c)  # noqa: F821
    return serial_(a, b, c)  # noqa: F821


@functools.cache
def element_passes(parallel):
    """``(scan, copy, clamp)`` compiled serial, or choosing the parallel loop from
    PARALLEL_MIN_SIZE elements on (compiled only then: seconds of a first call)."""
    funcs = (max_abs_bits, copy, clamp)
    passes = tuple(jit(f, name=f"{f.__name__}_serial") for f in funcs)
    if parallel:
        passes = tuple(
            jit(choose, name=f"{f.__name__}_by_size", serial_=ser,
                parallel_=jit(f, parallel=True, name=f"{f.__name__}_parallel"))
            for f, ser, choose in zip(funcs, passes, (_choose2, _choose2, _choose3), strict=True)
        )  # fmt: skip
    way = "by_size" if parallel else "serial"
    return (jit(scan, name=f"scan_{way}", max_abs_bits_=passes[0]), *passes[1:])


# -- the iteration ----------------------------------------------------------------------------
def check(ws, i, g, f, p, ctl):
    """Accept the evaluation ``f, g`` of problem ``i``'s current iterate and run the stop
    tests; return RUNNING or the status of the test that fired (BAD_JAC_SIZE for a gradient
    of the wrong size). On a non-finite ``f`` or ``g`` the iterate goes back to the last
    accepted one, so ``x[i]`` always has a finite objective and gradient (but at x0)."""
    x = ws.x[i]
    n = x.size
    if g.size != n:
        return BAD_JAC_SIZE
    k = p.nit
    finite_g, gmax = scan_(g)  # noqa: F821 - bound by jit()
    if not (f - f == 0) or not finite_g:
        p.bad_nit = k
        p.bad_fun = f
        if k > 0:
            copy_(ws.rows[p.last_row, i], x)  # noqa: F821
            p.nit = k - 1
        else:
            p.fun = f
            p.gnorm = gmax if finite_g else np.nan
            p.eval_nit = 0
        return NONFINITE_JAC if f - f == 0 else NONFINITE_FUN
    # x_k is accepted: kept in a row that does not hold the best iterate
    row = 0
    if ws.rows.shape[0] > 1 and p.best_row == 0:
        row = 1
    copy_(x, ws.rows[row, i])  # noqa: F821
    p.last_row = row
    if k == 0 or f < p.best_fun:
        p.best_fun = f
        p.best_nit = k
        if ws.rows.shape[0] > 1:
            p.best_row = row
    p.fun = f
    p.eval_nit = k
    if ws.lo.size > 0:
        gmax = projected_norm(x, g, ws.lo, ws.hi)
    p.gnorm = gmax
    if gmax <= ctl.gtol:
        return GTOL
    if k > 0:
        code = window_tests(ws, i, f, p, ctl)
        if code != RUNNING:
            return code
    if k >= ctl.maxiter:
        return MAXITER
    return RUNNING


def _window_tests(ws, i, f, p, ctl):
    """The ftol and xtol tests, every ``window`` iterations."""
    w = ctl.window
    p.fsum += f
    if p.nit % w != 0:
        return RUNNING
    mean = p.fsum / w
    p.fsum = 0.0
    prev = p.fmean_prev
    p.fmean_prev = mean
    if ctl.ftol > 0 and prev == prev:
        change = abs(mean - prev)
        p.fchange = change
        if change <= ctl.ftol * max(abs(mean), abs(prev), 1.0):
            return FTOL
    if ctl.xtol > 0:
        x = ws.x[i]
        snap = ws.snap[i]
        dx = 0.0
        xn = 0.0
        for j in range(x.size):
            dx = max(dx, abs(x[j] - snap[j]))
            xn = max(xn, abs(x[j]))
            snap[j] = x[j]
        p.xchange = dx
        if dx <= ctl.xtol * max(xn, 1.0):
            return XTOL
    return RUNNING


window_tests = jit(_window_tests)


def update(ws, i, g, hyper, carry, p):
    """One update of problem ``i`` with gradient ``g`` (the algorithm's loop, through its
    coefficients at step ``nit + 1``), then the projection onto the bounds."""
    x = ws.x[i]
    t = p.nit + 1
    c = coefficients(t, *pick(hyper, i, batched_))  # noqa: F821 - bound by jit()
    loop(x, g, ws.s0[i], ws.s1[i], ws.s2[i], c)  # noqa: F821
    carry[i] = c[CARRY]  # noqa: F821
    if ws.lo.size > 0:
        clamp_(x, ws.lo, ws.hi)  # noqa: F821
    p.nit = t


def advance(ws, active, grads, funs, progress, hyper, carry, controls, mode):
    """One iteration of the problems ``active`` (indices) from their evaluations
    ``grads[j]``, ``funs[j]``: with ``mode`` 0 the stop tests and the update of those still
    running, 1 the stop tests only, 2 the update only (of those whose status is RUNNING).
    Returns how many are still running."""
    running = 0
    for j in prange(active.size):
        i = active[j]
        p = progress[i]
        ctl = controls[0]  # (not hoisted out of the loop: a record cannot enter a parfor)
        code = p.status
        if mode != 2:
            code = check_(ws, i, grads[j], funs[j], p, ctl)  # noqa: F821 - bound by jit()
            p.status = code
        if code == RUNNING:
            if mode != 1:
                update_(ws, i, grads[j], hyper, carry, p)  # noqa: F821
            running += 1
    return running


#: The three ways to run: elements serial and problems in sequence (one small problem);
#: elements parallel from PARALLEL_MIN_SIZE on and problems in sequence (large problems);
#: elements serial and problems over threads (batches of small problems).
SERIAL, ELEMENTS, PROBLEMS = "serial", "elements", "problems"


def variant(b, n):
    """The way to run ``b`` problems of ``n`` variables."""
    if n >= PARALLEL_MIN_SIZE:
        return ELEMENTS
    return SERIAL if b == 1 else PROBLEMS


@functools.cache
def checker(way):
    """:func:`check` compiled for ``way``."""
    scan_, copy_, clamp_ = element_passes(way == ELEMENTS)
    return jit(check, name=f"check_{way}", scan_=scan_, copy_=copy_), clamp_, copy_


class Engine(NamedTuple):
    """One algorithm's compiled iteration for one way of running."""

    check: Any
    update: Any
    advance: Any
    copy: Any


@functools.cache
def engine(name, way, batched):
    """The compiled ``check``, ``update`` and ``advance`` of algorithm ``name`` for
    ``way`` (:func:`variant`), with ``batched`` the hyperparameters that are arrays (a
    tuple of 0/1 in the order of the algorithm's arguments). Compiled on first use, and
    only what that way needs."""
    spec = algorithms.get(name)
    compiled = COMPILED[name]
    check_, clamp_, copy_ = checker(way)
    loop = compiled.serial
    if way == ELEMENTS:
        loop = jit(_loop_by_size, name=f"{name}_loop_by_size", serial_=compiled.serial,
                   parallel_=compiled.parallel)  # fmt: skip
    carry = spec.Coefficients._fields.index(next(iter(spec.carry))) if spec.carry else 0
    suffix = f"{name}_{way}_" + "".join(map(str, batched))
    update_ = jit(update, name=f"update_{suffix}", coefficients=compiled.coefficients,
                  loop=loop, clamp_=clamp_, CARRY=carry, batched_=batched)  # fmt: skip
    advance_ = jit(advance, parallel=way == PROBLEMS, name=f"advance_{suffix}",
                   check_=check_, update_=update_)  # fmt: skip
    return Engine(check_, update_, advance_, copy_)


def _loop_by_size(p, g, s0, s1, s2, c):
    if p.size >= PARALLEL_MIN_SIZE:
        parallel_(p, g, s0, s1, s2, c)  # noqa: F821 - bound by jit()
    else:
        serial_(p, g, s0, s1, s2, c)  # noqa: F821


# -- allocation -------------------------------------------------------------------------------
def allocate(x0, state_init, *, lo, hi, xtol, track_best, keep_gradient):
    """The :class:`Workspace` of a run from ``x0`` (B, n), projected onto the bounds.

    ``state_init`` is ``((used, value), ...)`` for the three buffers: whether the run's
    coefficients use each and its initial value (a scalar, or an array of shape (B,))."""
    b, n = x0.shape
    dt = x0.dtype
    x = np.array(x0, dtype=dt, order="C", copy=True)
    if lo.size:
        np.clip(x, lo, hi, out=x)
    bufs = []
    for used, value in state_init:
        if not used:
            bufs.append(np.empty((b, 0), dtype=dt))
            continue
        buf = np.empty((b, n), dtype=dt)
        buf[...] = np.asarray(value, dtype=dt).reshape(-1, 1) if np.ndim(value) else value
        bufs.append(buf)

    def optional(used):
        return np.empty((b, n if used else 0), dtype=dt)

    track = np.empty((2 if track_best else 1, b, n), dtype=dt)
    snap = x.copy() if xtol > 0 else optional(False)
    return Workspace(x, *bufs, track, snap, optional(keep_gradient), lo, hi)
