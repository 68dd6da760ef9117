"""CPU kernels: the rules of :mod:`fastadam.rules` compiled with :func:`numba.njit`.

Everything here is callable from Python and from inside a user's own ``@numba.njit``
function. Compilation is lazy (on first call, per argument types) and cached on disk.

Per-element functions
    :func:`adam_update`, :func:`rmsprop_update` -- the scalar rules, compiled.
    :func:`adam_coefficients`, :func:`rmsprop_coefficients` -- the per-step coefficients.

Array kernels (in place, any shape, C-contiguous, all arrays of one size)
    :func:`adam`, :func:`rmsprop` -- serial, SIMD-vectorized loops.
    :func:`adam_parallel`, :func:`rmsprop_parallel` -- the same loop over all threads
    (``numba.set_num_threads`` is respected). Serial and parallel results are bitwise equal.
    :func:`adam_many`, :func:`rmsprop_many` -- many arrays in one call (tuples of arrays),
    each with the serial kernel.

Each array kernel takes the coefficient tuple returned by the ``*_coefficients`` function
for the current step, and casts it to the arrays' dtype, so float32 arrays are updated with
float32 arithmetic. Example, inside a user's compiled loop::

    @numba.njit
    def simulate(x, m, v, n_steps):
        for t in range(1, n_steps + 1):
            g = gradient(x)
            coef = fastadam.kernels.adam_coefficients(
                t, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0, False, False, True, False, False, False)
            fastadam.kernels.adam(x, g, m, v, v, coef)   # vmax unused without amsgrad

If your own ``cache=True`` function calls :func:`adam_parallel` or :func:`rmsprop_parallel`,
call ``numba.get_num_threads()`` once in the process before its first call: it starts
numba's threading layer, without which numba 0.68 crashes when it loads such a function
from its cache.

The kernels are compiled with ``error_model="numpy"`` (IEEE division: no zero-division
check, which would prevent vectorization) and without ``fastmath``: NaN and Inf propagate
exactly as in every framework.
"""

import types

from numba import njit, prange

from . import rules

__all__ = [
    "adam_update",
    "rmsprop_update",
    "adam_coefficients",
    "rmsprop_coefficients",
    "adam",
    "adam_parallel",
    "adam_many",
    "rmsprop",
    "rmsprop_parallel",
    "rmsprop_many",
    "all_finite",
    "PARALLEL_MIN_SIZE",
]

#: The optimizers update arrays with at least this many elements with the parallel kernels,
#: smaller ones with the serial kernels (in one :func:`adam_many` / :func:`rmsprop_many`
#: call), which have no thread start-up cost. Measured crossover on a 2-core
#: machine: see docs/performance.md.
PARALLEL_MIN_SIZE = 1 << 16

_OPTIONS = dict(cache=True, error_model="numpy", nogil=True)


def _jit(func, parallel=False, name=None):
    """Compile ``func``; ``name`` gives a distinct copy (its own on-disk cache entry)."""
    if name is not None:
        func = types.FunctionType(
            func.__code__, func.__globals__, name, func.__defaults__, func.__closure__
        )
        func.__qualname__ = name
    return njit(parallel=parallel, **_OPTIONS)(func)


adam_update = _jit(rules.adam_rule)
adam_update.__doc__ = rules.adam_rule.__doc__
rmsprop_update = _jit(rules.rmsprop_rule)
rmsprop_update.__doc__ = rules.rmsprop_rule.__doc__
adam_coefficients = _jit(rules.adam_coefficients)
adam_coefficients.__doc__ = rules.adam_coefficients.__doc__
rmsprop_coefficients = _jit(rules.rmsprop_coefficients)
rmsprop_coefficients.__doc__ = rules.rmsprop_coefficients.__doc__


@njit(**_OPTIONS)
def _cast_adam(x, coef):
    f = x.dtype.type
    b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, mode = coef
    return (
        f(b1), f(ob1), f(b2), f(ob2), f(ss), f(c2), f(er), f(e), f(l2), f(wdf), f(s), mode
    )  # fmt: skip


@njit(**_OPTIONS)
def _cast_rmsprop(x, coef):
    f = x.dtype.type
    d, od, c, ei, eo, li, lo, mu, l2, wdf, s, centered, use_mom, nesterov = coef
    return (
        f(d), f(od), f(c), f(ei), f(eo), f(li), f(lo), f(mu), f(l2), f(wdf), f(s),
        centered, use_mom, nesterov,
    )  # fmt: skip


@njit(**_OPTIONS)
def _check_size(x, n, name):
    if x.size != n:
        raise ValueError(name)


# Note: the arrays are flattened with an inline ``x.reshape(n)``. Returning the reshaped view
# from a helper function instead makes numba 0.68's parfor lowering write to a temporary in
# the parallel kernels (the caller's arrays stay unchanged); tests/test_kernels.py guards it.


def _adam_array(p, g, m, v, vmax, coef):
    r"""Adam step on whole arrays, in place: :func:`fastadam.rules.adam_rule` per element.

    Parameters
    ----------
    p : ndarray
        Parameters (float32 or float64, C-contiguous, any shape); updated in place.
    g : ndarray
        Gradients, same size and dtype.
    m, v : ndarray
        First and second moments; updated in place.
    vmax : ndarray
        Running maximum of ``v`` (AMSGrad); updated in place. Not accessed when AMSGrad is
        off (pass any array, for example ``v``).
    coef : tuple
        The result of :func:`adam_coefficients` for this step.
    """
    n = p.size
    _check_size(g, n, "g: size differs from p")
    _check_size(m, n, "m: size differs from p")
    _check_size(v, n, "v: size differs from p")
    p = p.reshape(n)
    g = g.reshape(n)
    m = m.reshape(n)
    v = v.reshape(n)
    b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, mode = _cast_adam(p, coef)
    if mode == 0:
        for i in prange(n):
            p[i], m[i], v[i], _ = adam_update(
                p[i], g[i], m[i], v[i], p[i], b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, 0
            )
    else:
        _check_size(vmax, n, "vmax: size differs from p")
        vmax = vmax.reshape(n)
        if mode == 1:
            for i in prange(n):
                p[i], m[i], v[i], vmax[i] = adam_update(
                    p[i], g[i], m[i], v[i], vmax[i], b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, 1
                )  # fmt: skip
        else:
            for i in prange(n):
                p[i], m[i], v[i], vmax[i] = adam_update(
                    p[i], g[i], m[i], v[i], vmax[i], b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, 2
                )  # fmt: skip


def _rmsprop_array(p, g, v, gbar, buf, coef):
    r"""RMSProp step on whole arrays, in place: :func:`fastadam.rules.rmsprop_rule` per
    element.

    Parameters
    ----------
    p : ndarray
        Parameters (float32 or float64, C-contiguous, any shape); updated in place.
    g : ndarray
        Gradients, same size and dtype.
    v : ndarray
        Mean square; updated in place.
    gbar : ndarray
        Mean gradient (centered only; otherwise not accessed, pass any array).
    buf : ndarray
        Momentum buffer (momentum > 0 only; otherwise not accessed, pass any array).
    coef : tuple
        The result of :func:`rmsprop_coefficients` for this step.
    """
    n = p.size
    _check_size(g, n, "g: size differs from p")
    _check_size(v, n, "v: size differs from p")
    p = p.reshape(n)
    g = g.reshape(n)
    v = v.reshape(n)
    d, od, c, ei, eo, li, lo, mu, l2, wdf, s, centered, use_mom, nest = _cast_rmsprop(p, coef)
    if centered:
        _check_size(gbar, n, "gbar: size differs from p")
    if use_mom:
        _check_size(buf, n, "buf: size differs from p")
    gbar = gbar.reshape(gbar.size)
    buf = buf.reshape(buf.size)
    # The structural switches are hoisted out of the loops and passed to the rule as
    # constants, so each loop touches only the arrays it needs and vectorizes.
    if centered and use_mom:
        for i in prange(n):
            p[i], v[i], gbar[i], buf[i] = rmsprop_update(
                p[i], g[i], v[i], gbar[i], buf[i], d, od, c, ei, eo, li, lo, mu, l2, wdf, s,
                True, True, nest,
            )  # fmt: skip
    elif centered:
        for i in prange(n):
            p[i], v[i], gbar[i], _ = rmsprop_update(
                p[i], g[i], v[i], gbar[i], p[i], d, od, c, ei, eo, li, lo, mu, l2, wdf, s,
                True, False, False,
            )  # fmt: skip
    elif use_mom:
        for i in prange(n):
            p[i], v[i], _, buf[i] = rmsprop_update(
                p[i], g[i], v[i], p[i], buf[i], d, od, c, ei, eo, li, lo, mu, l2, wdf, s,
                False, True, nest,
            )  # fmt: skip
    else:
        for i in prange(n):
            p[i], v[i], _, _ = rmsprop_update(
                p[i], g[i], v[i], p[i], p[i], d, od, c, ei, eo, li, lo, mu, l2, wdf, s,
                False, False, False,
            )  # fmt: skip


adam = _jit(_adam_array, name="adam")
adam_parallel = _jit(_adam_array, parallel=True, name="adam_parallel")
rmsprop = _jit(_rmsprop_array, name="rmsprop")
rmsprop_parallel = _jit(_rmsprop_array, parallel=True, name="rmsprop_parallel")
for _k in (adam, adam_parallel, rmsprop, rmsprop_parallel):
    _k.__doc__ = _k.py_func.__doc__ + (
        "\n    This kernel runs over all numba threads.\n" if "parallel" in _k.__name__ else ""
    )


@njit(**_OPTIONS)
def all_finite(x):
    """True when every element of ``x`` is finite (a vectorized, allocation-free check)."""
    x = x.reshape(x.size)
    bad = False
    for i in range(x.size):
        bad |= x[i] - x[i] != 0  # x - x is 0 for finite x and NaN for NaN or +-Inf
    return not bad


@njit(**_OPTIONS)
def adam_many(ps, gs, ms, vs, vmaxs, coef, skip_nonfinite, skipped):
    """Adam step on many arrays in one call, each with the serial kernel :func:`adam`.

    Parameters
    ----------
    ps, gs, ms, vs, vmaxs : tuple of ndarray
        Equal-length tuples of arrays of one dtype and one ndim (numba indexes only
        homogeneous tuples; pass flat views, ``x.reshape(-1)``), as for :func:`adam`;
        ``vmaxs`` is not accessed without AMSGrad.
    coef : tuple
        :func:`adam_coefficients` for this step.
    skip_nonfinite : bool
        If true, an array whose gradient holds a NaN or Inf is left untouched (parameters
        and state) and ``skipped[k]`` is incremented.
    skipped : ndarray of int64
        One counter per array.

    Notes
    -----
    The optimizers send arrays of at least :data:`PARALLEL_MIN_SIZE` elements to
    :func:`adam_parallel` one by one from Python instead: a ``parallel=True`` function
    called from a cached one is fragile in numba (cached parfor code is linked by name).
    """
    for k in range(len(ps)):
        if skip_nonfinite and not all_finite(gs[k]):
            skipped[k] += 1
        else:
            adam(ps[k], gs[k], ms[k], vs[k], vmaxs[k], coef)


@njit(**_OPTIONS)
def rmsprop_many(ps, gs, vs, gbars, bufs, coef, skip_nonfinite, skipped):
    """RMSProp step on many arrays in one call with the serial kernel :func:`rmsprop` (see
    :func:`adam_many`); ``gbars`` and ``bufs`` are not accessed unless centered / momentum
    > 0."""
    for k in range(len(ps)):
        if skip_nonfinite and not all_finite(gs[k]):
            skipped[k] += 1
        else:
            rmsprop(ps[k], gs[k], vs[k], gbars[k], bufs[k], coef)
