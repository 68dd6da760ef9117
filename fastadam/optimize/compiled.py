"""The fully compiled loop: objective, gradient, update and stop tests in one compiled
function, with no Python per iteration, for each problem of a batch (problems spread over
numba's threads).

:func:`fastadam.minimize` and :func:`fastadam.minimize_batch` take this path by themselves
when ``fun`` (and ``jac``, unless ``jac=True``) are numba ``@njit`` functions and there is no
callback, no minibatches and no ``lr`` schedule. It runs the loop in chunks of about 50 ms
(so that ``maxtime``, ``disp`` and Ctrl-C work). :func:`fastadam.minimize_njit` runs it from
users' own ``@njit`` code.

Every problem runs :func:`fastadam.optimize.engine.check` and the algorithm's ``update``,
the functions the Python loop calls, so every path gives the same iterates.

Caching: the loop is compiled for the *signature* of ``fun`` and ``jac`` (numba first-class
function types), not for the functions themselves, so its machine code is cached on disk
and reused by every objective with the same argument and return types, in this process and
the next ones. Only the user's functions are compiled per process (use
``@njit(cache=True)`` on them too).
"""

import functools
import time

import numpy as np
from numba import prange, typeof, types
from numba.core import errors
from numba.extending import overload

from ..cpu.compile import jit
from . import engine
from .engine import borrowed, keep_alive, pick
from .engine import copy_serial as copy_
from .evaluate import required_positional, writes_gradient
from .status import BAD_JAC_SIZE, INTERRUPTED, MAXTIME, NONFINITE_FUN, NONFINITE_JAC, RUNNING


def _evaluate(fun, jac, x, args, out):
    """``(f, g)`` at ``x``: ``fun`` and ``jac``, or ``fun`` alone when ``jac`` is None; an
    objective that writes its gradient (:func:`_writes`) writes it into ``out``."""


def _scratch(fun, jac, x, args):
    """An array like ``x`` for an objective that writes its gradient (else an empty one)."""


def _writes(fun, jac, args):
    """Whether the numba function types ``fun``/``jac`` write the gradient into an output
    argument (:func:`fastadam.optimize.evaluate.writes_gradient`), from their types."""
    source = fun if isinstance(jac, types.NoneType) else jac
    if isinstance(source, types.Dispatcher):
        count = required_positional(source.dispatcher.py_func)
    else:
        count = len(source.signature.args)
    return count == len(args) + 2


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


# (inlined: the gradient an objective writes comes back as the borrowed array it was
# given, which the compiler then sees has no reference count)
@overload(_evaluate, inline="always")
def _evaluate_impl(fun, jac, x, args, out):
    combined = isinstance(jac, types.NoneType)
    if _writes(fun, jac, args):
        if combined:
            return lambda fun, jac, x, args, out: (_as_float(fun(x, out, *args)), out)

        def separate_into(fun, jac, x, args, out):
            f = fun(x, *args)
            jac(x, out, *args)
            return _as_float(f), out

        return separate_into
    if combined:

        def combined_(fun, jac, x, args, out):
            f, g = fun(x, *args)
            return _as_float(f), _as_gradient(g, x)

        return combined_

    def separate(fun, jac, x, args, out):
        f = fun(x, *args)
        g = jac(x, *args)
        return _as_float(f), _as_gradient(g, x)

    return separate


@overload(_scratch)
def _scratch_impl(fun, jac, x, args):
    if _writes(fun, jac, args):
        return lambda fun, jac, x, args: np.empty_like(x)
    return lambda fun, jac, x, args: np.empty(0, x.dtype)


def _freed(fun, jac, args, g, spare):
    """The array the next evaluation writes into, once ``g`` is no longer needed: ``g``
    for an objective that writes its gradient; else ``spare`` (not keeping ``g`` alive)."""


@overload(_freed)
def _freed_impl(fun, jac, args, g, spare):
    if _writes(fun, jac, args):
        return lambda fun, jac, args, g, spare: g
    return lambda fun, jac, args, g, spare: spare


def _returned(fun, jac, args):
    """Whether the objective returns its gradient (else it writes it into an argument)."""


@overload(_returned)
def _returned_impl(fun, jac, args):
    returned = not _writes(fun, jac, args)
    return lambda fun, jac, args: returned


def _overlap(fun, jac, args, a, b):
    """Whether the 1-D arrays ``a`` and ``b`` share memory (always False for an objective
    that writes its gradient: the loop's own two buffers)."""


@overload(_overlap, inline="always")
def _overlap_impl(fun, jac, args, a, b):
    if _writes(fun, jac, args):
        return lambda fun, jac, args, a, b: False

    def overlap(fun, jac, args, a, b):
        pa, pb = a.ctypes.data, b.ctypes.data
        return pa < pb + b.nbytes and pb < pa + a.nbytes

    return overlap


def run_problem(fun, jac, args, batched, ws, i, p, hyper, carry, ctl, nsteps, start):
    """Run problem ``i`` for up to ``nsteps`` iterations (update, evaluate, check) from an
    accepted iterate; with ``start``, first evaluate and check ``x[i]`` itself. Returns the
    stop code (RUNNING when ``nsteps`` ran out); ``ws.glast[i]`` then holds the gradient at
    the last accepted iterate."""
    # Every array here is borrowed (engine.borrowed): numba compiles no reference counting
    # for them (for a problem of a few variables, it cost more than the update). The
    # arrays allocated here are kept alive by the variables ``scratch`` and ``owner`` (a
    # gradient that the objective returns) while the borrowed views are in use.
    ws, hyper, carry = borrowed(ws), borrowed(hyper), borrowed(carry)
    glast = ws.glast[i]
    a = pick(args, i, batched)
    g = glast
    # An objective that writes its gradient writes into the one of these two arrays that
    # does not hold the last accepted gradient (else spare is unused).
    scratch = _scratch(fun, jac, glast, a)
    spare = borrowed(scratch)
    owner = scratch  # (a placeholder of the gradients' type until the first evaluation)
    code = RUNNING
    evaluations = 0  # (counted here, stored once: a record field written per iteration
    # costs more than a small problem's update)
    first = start  # (x[i] itself is evaluated first, without an update: the stop tests
    # and the evaluation are written once, compiled once)
    # A gradient the objective returns may be one buffer it fills at every call: the next
    # evaluation would overwrite the gradient at the iterate that a non-finite value goes
    # back to. So glast also keeps a copy of the accepted gradient (``kept``) at the first
    # evaluation of this call and, where the second one's gradient shares the first one's
    # memory (``reused``), at every evaluation.
    kept = True  # glast holds the gradient g at the accepted iterate
    reused = False
    for k in range(nsteps + start):
        if not first:
            update_(ws, i, g, hyper, carry, p)  # noqa: F821 - bound by jit()
        f, owned = _evaluate(fun, jac, ws.xs[p.x_row, i], a, spare)
        gnew = borrowed(owned)
        evaluations += 1
        if k == 1:  # (a reused buffer shows at the second evaluation of the call)
            reused = _overlap(fun, jac, a, gnew, g)
        code = check_(ws, i, gnew, f, p, ctl)  # noqa: F821
        if code != RUNNING:
            if (code == NONFINITE_FUN or code == NONFINITE_JAC) and not first:
                if not kept:
                    copy_(g, glast)  # (the gradient at the iterate gone back to)
            elif code != BAD_JAC_SIZE:
                copy_(gnew, glast)
            keep_alive(owned)
            break
        kept = (k == 0 or reused) and _returned(fun, jac, a)
        if kept:
            copy_(gnew, glast)
        spare = _freed(fun, jac, a, g, spare)
        g = gnew
        owner = owned  # (releases the previous gradient)
        first = False
    if code == RUNNING and not kept:
        copy_(g, glast)
    p.nfev += evaluations
    p.njev += evaluations
    keep_alive(owner)
    keep_alive(scratch)
    return code


def run(fun, jac, args, batched, ws, progress, hyper, carry, controls, nsteps, start):
    """:func:`run_problem` for every problem still running."""
    ws = engine.borrowed_workspace(ws)
    for k in prange(progress.size):
        # (an int64, as when numba types this function: its parallel loop's index is a
        # uint64, and the problem's iteration, compiled for each, took seconds twice)
        i = np.int64(k)
        p = progress[i]
        ctl = controls[0]  # (not hoisted out of the loop: a record cannot enter a parfor)
        if p.status == RUNNING:
            p.status = run_one_(  # noqa: F821 - bound by jit()
                fun, jac, args, batched, ws, i, p, hyper, carry, ctl, nsteps, start
            )


@functools.cache
def loops(name, way, batched, window=True):
    """The compiled loop for algorithm ``name`` (with the window tests where ``window``,
    see :func:`fastadam.optimize.engine.checker`): ``(cached, inline)``. ``cached`` is only
    ever compiled for first-class function *types* (signatures), so its on-disk cache is
    safe and shared by all objectives of one signature; ``inline`` is compiled when user
    code passes numba functions themselves (typed by identity): numba names those types
    after the functions' memory addresses, which can repeat in another process, so caching
    them could run the wrong function. Not cached."""
    eng = engine.engine(name, way, batched, window)
    suffix = eng.suffix
    bound = dict(check_=eng.check, update_=eng.update)
    one = jit(run_problem, name=f"run_problem_{suffix}", **bound)
    parallel = way == engine.PROBLEMS
    cached = jit(run, parallel=parallel, name=f"run_{suffix}", run_one_=one)
    inline_one = jit(run_problem, name=f"run_problem_inline_{suffix}", cache=False, **bound)
    inline = jit(run, parallel=parallel, name=f"run_inline_{suffix}", cache=False,
                 run_one_=inline_one)  # fmt: skip
    return cached, inline


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


def _problem_types(args):
    """The numba types of one problem's arguments (as :func:`pick` selects them)."""
    out = []
    for a in args:
        t = typeof(a)
        if isinstance(t, types.Array) and t.ndim >= 1:
            t = typeof(a[0])
        out.append(t)
    return tuple(out)


def specialize(fun, jac, args, batched, run, cached_loop):
    """Compile (or load from the cache) the loop for these function signatures.

    Returns ``(entry_point, compile_seconds)``. Raises TypeError when the functions cannot
    run in it (the caller then uses the Python loop, unless ``compiled=True``).
    """
    t0 = time.perf_counter()
    ws = run.ws
    try:
        argtypes = (typeof(ws.xs[0, 0]),) + _problem_types(args)
    except ValueError as exc:  # numba cannot type an argument
        raise TypeError(str(exc)) from exc
    ft, jt = function_types(fun, jac, argtypes)
    values = (args, batched, ws, run.progress, run.hyper, run.carry, run.cfg.controls)
    sig = (ft, jt) + tuple(typeof(v) for v in values) + (types.int64, types.boolean)
    try:
        cached_loop.compile(sig)
    except errors.NumbaError as exc:
        raise TypeError(
            f"the compiled loop does not compile for fun {ft} and jac {jt}: {exc}"
        ) from exc
    entry = cached_loop.overloads[sig].entry_point
    return entry, time.perf_counter() - t0


def function_types(fun, jac, argtypes):
    """The numba function types of ``fun`` and ``jac`` (None: ``fun`` gives both) called
    with ``argtypes``, x's type and then the arguments'. TypeError unless they compile for
    them and return what the loop takes."""
    nargs = len(argtypes) - 1
    if writes_gradient(fun, True if jac is None else jac, nargs):  # f(x, g, *args)
        into = (argtypes[0], *argtypes)
        ft = _function_type(fun, into if jac is None else argtypes, "fun")
        jt = types.none if jac is None else _function_type(jac, into, "jac")
        if jac is not None and jt.signature.return_type != types.none:
            raise TypeError("jac(x, g, *args) must return None")  # the Python loop explains
        if not _real_scalar(ft.signature.return_type):
            raise TypeError(
                f"fun must return a real number; it returns {ft.signature.return_type}"
            )
    else:
        ft = _function_type(fun, argtypes, "fun")
        jt = types.none if jac is None else _function_type(jac, argtypes, "jac")
        _check_returns(ft, jt, argtypes[0])
    return ft, jt


def run_chunked(entry, fun, jac, args, batched, run, deadline, printer):
    """Drive the compiled loop in chunks of ~50 ms, so that ``maxtime``, progress display and
    Ctrl-C work. Statuses end in ``run.progress``."""
    chunk = 100
    target = 0.05
    progress = run.progress
    values = (args, batched, run.ws, progress, run.hyper, run.carry, run.cfg.controls)
    every = printer.every if printer is not None else 0
    try:
        entry(fun, jac, *values, 0, True)
        if printer is not None:
            printer.row(run)
        while np.any(progress["status"] == RUNNING):
            if deadline is not None and time.perf_counter() >= deadline:
                _stop_running(run, MAXTIME)
                break
            n = chunk
            if every:
                k = int(progress["nit"].max())
                n = min(n, every - k % every)
            t0 = time.perf_counter()
            entry(fun, jac, *values, n, False)
            dt = time.perf_counter() - t0
            if printer is not None:
                printer.row(run)
            rate = max(dt, 1e-7) / n
            chunk = int(min(max(target / rate, 1), 1 << 40))
            if deadline is not None:
                left = deadline - time.perf_counter()
                chunk = max(1, min(chunk, int(left / rate) + 1))
    except KeyboardInterrupt:
        _stop_running(run, INTERRUPTED)
    codes = progress["status"]
    if np.any(codes == BAD_JAC_SIZE):
        i = int(np.argmax(codes == BAD_JAC_SIZE))
        raise bad_jac_size(run.ws.xs.shape[2], int(progress["nit"][i]))
    run.jac = run.ws.glast.copy()
    never = progress["eval_nit"] < 0
    run.jac[never] = np.nan


def _stop_running(run, code):
    codes = run.progress["status"]
    codes[codes == RUNNING] = code


def bad_jac_size(n, nit):
    return ValueError(
        f"jac (or fun's gradient with jac=True) returned an array whose size is not x0's, {n}, "
        f"at iteration {nit}"
    )
