"""The engine: B independent problems of n variables, advanced by one compiled iteration.

A run's state is three named records:

:class:`Workspace`
    The per-element arrays: the iterate buffers ``xs`` (shape (R, B, n)), the algorithm's
    state buffers, the ``xtol`` snapshot, the gradient kept for the result, and the bounds.
    Problem ``i``'s iterate, the array its objective receives, is
    ``xs[progress[i].x_row, i]``; the last accepted iterate and the best one are rows too.
    An update writes the new iterate into a row that holds neither the accepted iterate
    nor the best one, so no iterate is ever copied to be kept (:func:`iterates` copies the
    iterates into one (B, n) array).
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
from numba.core import cgutils, ir_utils
from numba.extending import intrinsic, overload

from .. import algorithms
from ..cpu.compile import jit
from ..cpu.kernels import COMPILED, PARALLEL_MIN_SIZE
from ..cpu.loops import item, part
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
        ("x_row", "i8"),  # the row of Workspace.xs holding the iterate
        ("last_row", "i8"),  # the row holding the last accepted iterate
        ("best_row", "i8"),  # the row holding the best iterate (-1 when not tracked)
    ],
    align=True,
)

#: The stop settings, shared by all problems.
CONTROLS = np.dtype(
    [("maxiter", "i8"), ("gtol", "f8"), ("ftol", "f8"), ("xtol", "f8"), ("window", "i8")],
    align=True,
)


class Workspace(NamedTuple):
    """The arrays of a run (optional ones unused have a last axis of length 0; state
    buffers unused are None)."""

    #: (R, B, n): the iterate buffers, R = 3 with best-iterate tracking (the iterate, the
    #: last accepted one, the best one) and 2 without; rows change roles per problem
    xs: Any
    #: (B, n): the algorithm's state buffers (its ``State`` fields); ``s1`` and ``s2`` are
    #: None where the run's coefficients do not use them (only the loop for the buffers
    #: used is compiled)
    s0: Any
    s1: Any
    s2: Any
    #: (B, n) or (B, 0): x at the start of the current xtol window
    snap: Any
    #: (B, n) or (B, 0): the gradient at the last accepted iterate (compiled loop)
    glast: Any
    #: (n,) or (0,): the bounds, in x's dtype (rounded inward)
    lo: Any
    hi: Any


def _borrow(context, builder, ty, value):
    """``value`` of numba type ``ty`` with the reference counts of its arrays nulled."""
    if isinstance(ty, types.Array):
        view = context.make_array(ty)(context, builder, value=value)
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()
    if isinstance(ty, types.BaseTuple):
        for k, item_type in enumerate(ty):
            item = _borrow(context, builder, item_type, builder.extract_value(value, k))
            value = builder.insert_value(value, item, k)
        return value
    context.nrt.incref(builder, ty, value)  # (returned as a new reference)
    return value


@intrinsic
def borrowed(typingctx, value):
    """``value`` with its arrays (an array's, or those of a tuple or NamedTuple such as a
    :class:`Workspace`) borrowed: the same memory, viewed through arrays that numba does not
    count references to. The caller keeps the arrays alive (see :func:`keep_alive`).
    Anything else (None, numbers) is ``value`` itself. In compiled code only.

    Numba counts the references to an array each time a variable or a function binds it:
    a call each, and an atomic operation where the array has a reference count. For
    problems of a few variables these cost more than the iteration. Where the compiler
    sees that an array has no reference count (borrowed in the same function), they cost
    nothing: LLVM removes the calls."""

    def codegen(context, builder, signature, args):
        return _borrow(context, builder, signature.args[0], args[0])

    return value(value), codegen


def _aliases_its_argument(lhs, args, alias_map, arg_aliases):
    """Tell numba's alias analysis that a borrowed array is its argument's memory. Without
    it, numba's dead-code elimination (run for parallel loops, and where it inlines
    overloads) drops a last write through a borrowed view of an argument as a write nobody
    reads. (Not through a tuple built in the same function: borrow arguments one by
    one.)"""
    source = args[0].name
    if source in arg_aliases:
        arg_aliases.add(lhs)
        return
    alias_map.setdefault(source, set()).add(lhs)
    alias_map.setdefault(lhs, set()).add(source)


ir_utils.alias_func_extensions[("borrowed", __name__)] = _aliases_its_argument


@intrinsic
def keep_alive(typingctx, a):
    """Nothing, but a use of ``a``: numba releases a variable after its last use, so an
    array that a :func:`borrowed` array views is kept alive up to this call."""

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.none(a), codegen


def _borrowed_workspace(ws):
    """:func:`borrowed` of a :class:`Workspace`, built field by field (numba's parallel
    loops cannot take a NamedTuple that an intrinsic returns)."""
    return Workspace(
        borrowed(ws.xs), borrowed(ws.s0), borrowed(ws.s1), borrowed(ws.s2), borrowed(ws.snap),
        borrowed(ws.glast), borrowed(ws.lo), borrowed(ws.hi),
    )  # fmt: skip


borrowed_workspace = jit(_borrowed_workspace, inline="always")


def _fresh_record():
    r = np.zeros((), dtype=PROGRESS)
    r["status"] = RUNNING
    for name in ("fun", "gnorm", "best_fun", "fmean_prev", "fchange", "xchange", "bad_fun"):
        r[name] = np.nan
    for name in ("eval_nit", "best_nit", "bad_nit", "best_row"):
        r[name] = -1
    return r


#: The :data:`PROGRESS` record of a problem that has not started.
FRESH = _fresh_record()


def new_progress(b):
    """A fresh :data:`PROGRESS` array for ``b`` problems, written as 8-byte words (numpy
    assigns records field by field: 3-4 times slower at a million problems)."""
    p = np.empty(b, dtype=PROGRESS)
    p.view(np.uint64).reshape(b, PROGRESS.itemsize // 8)[...] = FRESH.reshape(1).view(np.uint64)
    return p


# -- per-problem selection --------------------------------------------------------------------
def pick(values, i, batched):
    """The values of problem ``i``: ``values[k][i]`` where ``batched[k]`` is 1, else
    ``values[k][0]`` for an array and ``values[k]`` for a scalar. Rows come borrowed
    (:func:`borrowed`): the caller keeps ``values`` alive."""


@overload(pick, jit_options=dict(inline="always"))
def _pick(values, i, batched):
    parts = []
    for k, t in enumerate(values):
        if isinstance(t, types.Array) and t.ndim > 1:
            parts.append(f"borrowed(values[{k}][i * batched[{k}]])")
        elif isinstance(t, types.Array) and t.ndim >= 1:
            parts.append(f"values[{k}][i * batched[{k}]]")
        else:
            parts.append(f"values[{k}]")
    body = ", ".join(parts) + ("," if len(parts) == 1 else "")
    namespace = {"borrowed": borrowed}
    exec(f"def impl(values, i, batched):\n    return ({body})\n", namespace)  # noqa: S102
    return namespace["impl"]


# -- element passes, serial and parallel ------------------------------------------------------
_CHUNK = 1 << 14


def max_abs_bits_chunks(bits, mask):
    """The largest ``bits[j] & mask``, in chunks over threads: the absolute values of floats
    viewed as unsigned integers, ordered like the floats (NaN above Inf); integer max
    reductions vectorize where float ones do not (max is exact: any order gives the same
    value). The chunks' maxima are reduced by a plain loop (numpy's max would be one more
    function to compile)."""
    n = bits.size
    nchunks = (n + _CHUNK - 1) // _CHUNK
    maxes = np.zeros(nchunks, dtype=bits.dtype)
    for c in prange(nchunks):
        mc = maxes[c]
        for j in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            mc = max(mc, bits[j] & mask)
        maxes[c] = mc
    top = mask ^ mask
    for c in range(nchunks):
        top = max(top, maxes[c])
    return top


max_abs_bits_parallel = jit(max_abs_bits_chunks, parallel=True, name="max_abs_bits_parallel")


def scan_loop(g):
    """``(finite, max |g_i|)`` of a 1-D float array, in one pass that vectorizes (the max
    is meaningless if not finite)."""


@overload(scan_loop, jit_options=dict(inline="always"))
def _scan_loop(g):
    # |g_i| compared as unsigned integers (ordered like the floats, NaN above Inf): integer
    # max reductions vectorize where float ones do not. One implementation per dtype, so
    # that only it is compiled.
    wide = g.dtype == types.float64
    uint, fl = (np.uint64, np.float64) if wide else (np.uint32, np.float32)
    mask = uint(0x7FFFFFFFFFFFFFFF) if wide else uint(0x7FFFFFFF)
    inf = uint(0x7FF0000000000000) if wide else uint(0x7F800000)

    def impl(g):
        bits = g.view(uint)
        m = mask ^ mask
        for j in range(bits.size):
            m = max(m, bits[j] & mask)
        if m >= inf:
            return False, np.inf
        return True, np.float64(uint(m).view(fl))

    return impl


def _scan_one(g):
    return scan_loop(g)


def scan_bits(g):
    """:func:`scan_loop` with the bits' max in chunks over threads
    (:func:`max_abs_bits_chunks`), for arrays from PARALLEL_MIN_SIZE elements on."""


@overload(scan_bits, jit_options=dict(inline="always"))
def _scan_bits(g):
    # (one implementation per dtype, as for scan_loop: only its width of max_abs_bits is
    # compiled, a parallel function of about two seconds each)
    wide = g.dtype == types.float64
    uint, fl = (np.uint64, np.float64) if wide else (np.uint32, np.float32)
    mask = uint(0x7FFFFFFFFFFFFFFF) if wide else uint(0x7FFFFFFF)
    inf = uint(0x7FF0000000000000) if wide else uint(0x7F800000)

    def impl(g):
        top = max_abs_bits_parallel(g.view(uint), mask)
        if top >= inf:
            return False, np.inf
        return True, np.float64(uint(top).view(fl))

    return impl


def _scan_parallel(g):
    return scan_bits(g)


def copy(src, dst):
    """``dst[:] = src`` for 1-D arrays."""
    for j in range(src.size):
        dst[j] = src[j]


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


# The small functions of the iteration are inlined into their callers (numba's IR inlining):
# a call that passes the Workspace's arrays costs an atomic reference count per array, more
# than checking and updating a problem of a few variables.
projected_norm = jit(_projected_norm, inline="always")
copy_serial = jit(copy, inline="always")


def update_project(x, out, g, s0, s1, s2, lo, hi, c):
    """One update of ``x`` into ``out`` (another row of the iterate buffers: ``x`` stays
    as it was) in chunks over threads: the algorithm's serial loop, then the projection
    onto the box (unless ``lo`` is empty), in one pass over memory."""
    n = x.size
    for k in prange(max(1, (n + _CHUNK - 1) // _CHUNK)):
        a = k * _CHUNK
        b = min(n, a + _CHUNK)
        loop_(x[a:b], g[a:b], s0[a:b], part(s1, a, b), part(s2, a, b), c, out[a:b])  # noqa: F821 - bound by jit()
        if lo.size:
            for j in range(a, b):
                out[j] = min(max(out[j], lo[j]), hi[j])


def update_project_small(x, out, g, s0, s1, s2, lo, hi, c):
    """:func:`update_project` in one piece (small problems: no slices)."""
    loop_(x, g, s0, s1, s2, c, out)  # noqa: F821 - bound by jit()
    if lo.size:
        for j in range(x.size):
            out[j] = min(max(out[j], lo[j]), hi[j])


@functools.cache
def scanner(parallel):
    """The stop tests' scan of the gradient, ``(finite, max |g_i|)``: with ``parallel``
    (the ELEMENTS way, problems of at least PARALLEL_MIN_SIZE variables) the bits' max in
    chunks over threads (:func:`scan_bits`), else a plain loop (:func:`scan_loop`)."""
    if parallel:
        return jit(_scan_parallel, name="scan_parallel", inline="always")
    return jit(_scan_one, name="scan_serial", inline="always")


# -- the iteration ----------------------------------------------------------------------------
def check(ws, i, g, f, p, ctl):
    """Accept the evaluation ``f, g`` of problem ``i``'s current iterate and run the stop
    tests; return RUNNING or the status of the test that fired (BAD_JAC_SIZE for a gradient
    of the wrong size). On a non-finite ``f`` or ``g`` the iterate goes back to the last
    accepted one (its row), so the iterate always has a finite objective and gradient (but
    at x0)."""
    x = ws.xs[p.x_row, i]
    n = x.size
    if g.size != n:
        return BAD_JAC_SIZE
    k = p.nit
    finite_g, gmax = scan_(g)  # noqa: F821 - bound by jit()
    if not (f - f == 0) or not finite_g:
        p.bad_nit = k
        p.bad_fun = f
        if k > 0:
            p.x_row = p.last_row
            p.nit = k - 1
        else:
            p.fun = f
            p.gnorm = gmax if finite_g else np.nan
            p.eval_nit = 0
        return NONFINITE_JAC if f - f == 0 else NONFINITE_FUN
    # x_k is accepted: the next update writes into another row
    p.last_row = p.x_row
    if k == 0 or f < p.best_fun:
        p.best_fun = f
        p.best_nit = k
        if ws.xs.shape[0] > 2:  # (tracking the best iterate)
            p.best_row = p.x_row
    p.fun = f
    p.eval_nit = k
    if ws.lo.size > 0:
        gmax = projected_norm(x, g, ws.lo, ws.hi)
    p.gnorm = gmax
    if gmax <= ctl.gtol:
        return GTOL
    if k > 0:
        code = window_tests(x, ws.snap[i], f, p, ctl)
        if code != RUNNING:
            return code
    if k >= ctl.maxiter:
        return MAXITER
    return RUNNING


def _window_tests(x, snap, f, p, ctl):
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


window_tests = jit(_window_tests, inline="always")


def free_row(p, rows):
    """A row of the iterate buffers that holds neither problem ``p``'s iterate (the last
    accepted one, when an update is made) nor its best iterate: the first of ``rows``."""
    r = 0
    while r == p.x_row or r == p.best_row:
        r += 1
    return r if r < rows else 0  # (r < rows always: a guard for the compiler)


free_row_serial = jit(free_row, inline="always")


def update(ws, i, g, hyper, carry, p):
    """One update of problem ``i`` with gradient ``g`` (the algorithm's loop, through its
    coefficients at step ``nit + 1``), from its iterate into a free row, projecting onto
    the bounds in the same pass; the new iterate is that row."""
    t = p.nit + 1
    c = coefficients(t, *pick(hyper, i, batched_))  # noqa: F821 - bound by jit()
    row = free_row_(p, ws.xs.shape[0])  # noqa: F821
    s1, s2 = item(ws.s1, i), item(ws.s2, i)  # (None: a buffer not used)
    pass_(ws.xs[p.x_row, i], ws.xs[row, i], g, ws.s0[i], s1, s2, ws.lo, ws.hi, c)  # noqa: F821
    p.x_row = row
    carry[i] = c[CARRY]  # noqa: F821
    p.nit = t


def advance_one(ws, i, g, f, p, ctl, hyper, carry, mode):
    """One iteration of problem ``i`` (see :func:`advance`); its status."""
    # (the arrays borrowed, so that numba compiles no reference counting; one by one: a
    # tuple built here would not be known to alias the arguments, see borrowed)
    ws, g, hyper, carry = borrowed(ws), borrowed(g), borrowed(hyper), borrowed(carry)
    code = p.status
    if mode != 2:
        code = check_(ws, i, g, f, p, ctl)  # noqa: F821 - bound by jit()
        p.status = code
    if code == RUNNING and mode != 1:
        update_(ws, i, g, hyper, carry, p)  # noqa: F821
    return code


def advance(ws, active, grads, funs, progress, hyper, carry, controls, mode):
    """One iteration of the problems ``active`` (indices) from their evaluations
    ``grads[j]``, ``funs[j]``: with ``mode`` 0 the stop tests and the update of those still
    running, 1 the stop tests only, 2 the update only (of those whose status is RUNNING).
    Returns how many are still running."""
    running = 0
    ws = borrowed_workspace(ws)
    for j in prange(active.size):
        i = active[j]
        ctl = controls[0]  # (not hoisted out of the loop: a record cannot enter a parfor)
        code = one_(ws, i, grads[j], funs[j], progress[i], ctl, hyper, carry, mode)  # noqa: F821
        if code == RUNNING:
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


def _no_window_tests(x, snap, f, p, ctl):
    """:func:`_window_tests` where ``ftol`` and ``xtol`` are both 0: neither can fire."""
    return RUNNING


@functools.cache
def checker(way, window=True):
    """:func:`check` compiled for ``way`` (its scan over threads for ELEMENTS); without
    ``window`` (``ftol`` and ``xtol`` both 0, the defaults: see :func:`windowed`) the window
    tests are left out, which saves about half a second of a first compile."""
    tag = "" if window else "_nowindow"
    tests = {} if window else {"window_tests": jit(_no_window_tests, inline="always")}
    return jit(check, name=f"check_{way}{tag}", scan_=scanner(way == ELEMENTS),
               inline="always", **tests)  # fmt: skip


def windowed(controls):
    """Whether the run's stop settings (a :data:`CONTROLS` array) use the window tests."""
    return bool(controls[0]["ftol"] > 0 or controls[0]["xtol"] > 0)


class Engine(NamedTuple):
    """One algorithm's compiled iteration for one way of running."""

    check: Any
    update: Any
    advance: Any
    #: what the compiled functions' names end with (distinct per variant: numba's on-disk
    #: cache tells functions apart by name)
    suffix: str


@functools.cache
def engine(name, way, batched, window=True):
    """The compiled ``check``, ``update`` and ``advance`` of algorithm ``name`` for
    ``way`` (:func:`variant`), with ``batched`` the hyperparameters that are arrays (a
    tuple of 0/1 in the order of the algorithm's arguments), and the window tests where
    ``window`` (see :func:`checker`). Compiled on first use, and only what that way
    needs."""
    spec = algorithms.get(name)
    compiled = COMPILED[name]
    if way == ELEMENTS:  # chunks over threads, each with the algorithm's compiled loop
        pass_ = jit(update_project, parallel=True, name=f"{name}_pass_{way}",
                    loop_=compiled.given_serial)  # fmt: skip
    else:  # everything inlined but the algorithm's loop
        # (the loop is a call: numba compiles it for the buffers the run keeps, pruning the
        # others by type, which it cannot do in code it inlines)
        pass_ = jit(update_project_small, name=f"{name}_pass_{way}",
                    loop_=compiled.given_serial, inline="always")  # fmt: skip
    carry = spec.Coefficients._fields.index(next(iter(spec.carry))) if spec.carry else 0
    suffix = f"{name}_{way}_" + "".join(map(str, batched)) + ("" if window else "_nowindow")
    update_ = jit(update, name=f"update_{suffix}", coefficients=compiled.coefficients,
                  pass_=pass_, CARRY=carry, batched_=batched, free_row_=free_row_serial,
                  inline="always")  # fmt: skip
    # The iteration is inlined (per problem and iteration, calls that pass the arrays cost
    # more than a small problem's update), but the problems' iteration is a call in the
    # parallel loop: numba's parallel loops do not take inlined functions of records
    # reliably. (Inlining it where the loop is serial compiled no faster: measured.)
    check_ = checker(way, window)
    one_ = jit(advance_one, name=f"advance_one_{suffix}", check_=check_, update_=update_)
    advance_ = jit(advance, parallel=way == PROBLEMS, name=f"advance_{suffix}", one_=one_)
    return Engine(check_, update_, advance_, suffix)


def iterates(ws, progress):
    """The problems' iterates, copied into a new (B, n) array."""
    rows = progress["x_row"]
    if np.all(rows == rows[0]):  # (the common case: one row, copied whole)
        return ws.xs[rows[0]].copy()
    return ws.xs[rows, np.arange(rows.size)]


# -- allocation -------------------------------------------------------------------------------
def allocate(x0, state_init, *, lo, hi, xtol, track_best, keep_gradient):
    """The :class:`Workspace` of a run from ``x0`` (B, n), whose projection onto the bounds
    is the iterate, in row 0.

    ``state_init`` is ``((used, value), ...)`` for the three buffers: whether the run's
    coefficients use each and its initial value (a scalar, or an array of shape (B,))."""
    b, n = x0.shape
    dt = x0.dtype
    xs = np.empty((3 if track_best else 2, b, n), dtype=dt)
    if lo.size:
        np.clip(x0, lo, hi, out=xs[0])
    else:
        xs[0] = x0
    bufs = []
    for used, value in state_init:
        if not used:  # (the first buffer always is)
            bufs.append(None)
            continue
        buf = np.empty((b, n), dtype=dt)
        buf[...] = np.asarray(value, dtype=dt).reshape(-1, 1) if np.ndim(value) else value
        bufs.append(buf)

    def optional(used):
        return np.empty((b, n if used else 0), dtype=dt)

    snap = xs[0].copy() if xtol > 0 else optional(False)
    return Workspace(xs, *bufs, snap, optional(keep_gradient), lo, hi)
