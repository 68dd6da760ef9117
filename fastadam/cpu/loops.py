"""The compiled loops over the algorithms' rules, written once for every algorithm.

Each function here is compiled once per algorithm by :func:`compile_loops`, with the names
``rule``, ``cast``, ``buffers``, ``coefficients``, ``serial_loop``, ``parallel_loop``
and ``CARRY`` bound to that algorithm's compiled pieces (see :func:`fastadam.cpu.compile.jit`).

:func:`update` applies the rule to every element of flat arrays; :func:`step` makes one
optimizer step on tuples of arrays in one call from Python: it computes the step's
coefficients from ``t`` and the hyperparameters, then updates each array with the serial
loop or, from :data:`PARALLEL_MIN_SIZE` elements on, the parallel one.
"""

from numba import prange

from .compile import jit

#: Arrays with at least this many elements are updated over all numba threads, smaller ones
#: serially (no thread start-up cost). Measured crossover: docs/performance.md.
PARALLEL_MIN_SIZE = 1 << 16


def update(p, g, s0, s1, s2, coef):
    """``rule`` on every element of the 1-D arrays, in place, with the coefficients cast to
    the arrays' dtype. The buffers that ``buffers(coef)`` marks unused are not accessed."""
    n = p.size
    use1, use2 = buffers(coef)  # noqa: F821 - bound per algorithm by jit()
    # The cast is written inside the loops (loop-invariant, it is hoisted out by the
    # compiler): numba's parallel loops can take a named record only as an argument.
    # Each combination of buffers gets its own loop, touching only the arrays it needs, so
    # that every loop vectorizes.
    if use1 and use2:
        for i in prange(n):
            c = cast(coef, p.dtype.type)  # noqa: F821
            p[i], s0[i], s1[i], s2[i] = rule(p[i], g[i], s0[i], s1[i], s2[i], c)  # noqa: F821
    elif use1:
        for i in prange(n):
            c = cast(coef, p.dtype.type)  # noqa: F821
            p[i], s0[i], s1[i], _ = rule(p[i], g[i], s0[i], s1[i], p[i], c)  # noqa: F821
    elif use2:
        for i in prange(n):
            c = cast(coef, p.dtype.type)  # noqa: F821
            p[i], s0[i], _, s2[i] = rule(p[i], g[i], s0[i], p[i], s2[i], c)  # noqa: F821
    else:
        for i in prange(n):
            c = cast(coef, p.dtype.type)  # noqa: F821
            p[i], s0[i], _, _ = rule(p[i], g[i], s0[i], p[i], p[i], c)  # noqa: F821


def all_finite(x):
    """True when every element of the 1-D array ``x`` is finite (vectorized, no
    allocation)."""
    bad = False
    for i in range(x.size):
        bad |= x[i] - x[i] != 0  # x - x is 0 for finite x and NaN for NaN or +-Inf
    return not bad


all_finite = jit(all_finite)


def step(ps, gs, s0s, s1s, s2s, t, args, skip_nonfinite, skipped):
    """One step on tuples of 1-D arrays of one dtype: the coefficients of step ``t`` from
    ``args`` (the positional arguments of the algorithm's ``coefficients`` after ``t``),
    then each array with the serial or the parallel loop. With ``skip_nonfinite`` an array
    whose gradient holds a NaN or Inf is left untouched and ``skipped[k]`` counted.

    Returns the coefficient field the optimizer carries to the next step (``CARRY``, the
    index of NAdam's ``mu_product``; a field it ignores for the other algorithms)."""
    c = coefficients(t, *args)  # noqa: F821
    for k in range(len(ps)):
        if skip_nonfinite and not all_finite(gs[k]):
            skipped[k] += 1
        elif ps[k].size >= PARALLEL_MIN_SIZE:
            parallel_loop(ps[k], gs[k], s0s[k], s1s[k], s2s[k], c)  # noqa: F821
        else:
            serial_loop(ps[k], gs[k], s0s[k], s1s[k], s2s[k], c)  # noqa: F821
    return float(c[CARRY])  # noqa: F821


def compile_loops(spec, rule, cast, buffers, coefficients):
    """The serial and parallel loops of one algorithm, and its two steps: ``step`` and
    ``step_serial``, the same for arrays that are all below :data:`PARALLEL_MIN_SIZE`, which
    does not compile the parallel loop (seconds of a user's first step)."""
    bound = dict(rule=rule, cast=cast, buffers=buffers)
    serial = jit(update, name=f"{spec.name}_serial", **bound)
    parallel = jit(update, parallel=True, name=f"{spec.name}_parallel", **bound)
    if len(spec.carry) > 1:
        raise NotImplementedError("the compiled step carries at most one value")
    carry = spec.Coefficients._fields.index(next(iter(spec.carry))) if spec.carry else 0
    bound = dict(coefficients=coefficients, serial_loop=serial, CARRY=carry)
    step_ = jit(step, name=f"{spec.name}_step", parallel_loop=parallel, **bound)
    step_serial = jit(step, name=f"{spec.name}_step_serial", parallel_loop=serial, **bound)
    return serial, parallel, step_, step_serial
