"""The compiled loops over the algorithms' rules, written once for every algorithm.

Each function here is compiled once per algorithm by :func:`compile_loops`, with the names
``rule``, ``cast``, ``buffers``, ``coefficients``, ``given_``, ``serial_loop``,
``parallel_loop`` and ``CARRY`` bound to that algorithm's compiled pieces (see
:func:`fastadam.cpu.compile.jit`).

:func:`given` applies the rule to every element of flat arrays, with a state buffer that
the run does not keep passed as ``None``: numba then compiles only the loop for the buffers
given (it prunes the branches on ``None`` by type), a fraction of the compile time of all
four. :func:`update` chooses the buffers from the coefficients at run time (the kernels'
API). :func:`step` makes one optimizer step on tuples of arrays in one call from Python: it
computes the step's coefficients from ``t`` and the hyperparameters, then updates each array
with the serial loop or, from :data:`PARALLEL_MIN_SIZE` elements on, the parallel one.
"""

import operator

from numba import prange
from numba.core import types
from numba.extending import intrinsic, overload

from .compile import jit

#: Arrays with at least this many elements are updated over all numba threads, smaller ones
#: serially (no thread start-up cost). Measured crossover: docs/performance.md.
PARALLEL_MIN_SIZE = 1 << 16


def given(p, g, s0, s1, s2, coef, out):
    """``rule`` on every element of the 1-D arrays, the new parameters written to ``out``
    (None: to ``p``, in place; another array of p's size leaves ``p`` as it was), with the
    coefficients cast to the arrays' dtype, reading and writing the buffers ``s1`` and
    ``s2`` that are not None (the caller passes None for a buffer no coefficients of the
    run use; where one is given but these coefficients do not use it, the rule returns it
    unchanged)."""
    n = p.size
    # (in place, the loops write to p itself: passing p as out would leave the compiler
    # unsure whether they overlap, and the loops would not vectorize)
    if out is None:
        dest = p
    else:
        dest = out
    # The cast is written inside the loops (loop-invariant, it is hoisted out by the
    # compiler): numba's parallel loops can take a named record only as an argument. Each
    # combination of buffers has its own loop, touching only the arrays it needs, so that
    # every loop vectorizes; the branches are on types (nested: numba prunes each test).
    if s1 is None:
        if s2 is None:
            for i in prange(n):
                c = cast(coef, p.dtype.type)  # noqa: F821 - bound per algorithm by jit()
                dest[i], s0[i], _, _ = rule(p[i], g[i], s0[i], p[i], p[i], c)  # noqa: F821
        else:
            for i in prange(n):
                c = cast(coef, p.dtype.type)  # noqa: F821
                dest[i], s0[i], _, s2[i] = rule(p[i], g[i], s0[i], p[i], s2[i], c)  # noqa: F821
    elif s2 is None:
        for i in prange(n):
            c = cast(coef, p.dtype.type)  # noqa: F821
            dest[i], s0[i], s1[i], _ = rule(p[i], g[i], s0[i], s1[i], p[i], c)  # noqa: F821
    else:
        for i in prange(n):
            c = cast(coef, p.dtype.type)  # noqa: F821
            dest[i], s0[i], s1[i], s2[i] = rule(p[i], g[i], s0[i], s1[i], s2[i], c)  # noqa: F821


def update(p, g, s0, s1, s2, coef):
    """``rule`` on every element of the 1-D arrays, in place (:func:`given`), reading and
    writing the buffers ``s1`` and ``s2`` that ``buffers(coef)`` marks used, decided at run
    time: the loops of every combination are compiled. For the kernels' API, whose state
    records hold every buffer (empty where unused)."""
    use1, use2 = buffers(coef)  # noqa: F821 - bound per algorithm by jit()
    if use1 and use2:
        given_(p, g, s0, s1, s2, coef, None)  # noqa: F821
    elif use1:
        given_(p, g, s0, s1, None, coef, None)  # noqa: F821
    elif use2:
        given_(p, g, s0, None, s2, coef, None)  # noqa: F821
    else:
        given_(p, g, s0, None, None, coef, None)  # noqa: F821


@intrinsic
def item(typingctx, seq, k):
    """``seq[k]``, or None for ``seq`` None: a state buffer not used (compiled code only;
    an intrinsic, lowered in place, because numba-cuda's device functions cannot return a
    view they made)."""
    if isinstance(seq, types.NoneType):
        return types.none(seq, k), lambda context, builder, sig, args: context.get_dummy_value()
    resolved = typingctx.resolve_function_type(operator.getitem, (seq, k), {})
    if resolved is None:
        return None

    def codegen(context, builder, sig, args):
        return context.get_function(operator.getitem, resolved)(builder, args)

    return resolved.return_type(seq, k), codegen


def part(a, start, stop):
    """``a[start:stop]``, or None for ``a`` None (in compiled code only)."""


@overload(part, inline="always", target="generic")
def _part(a, start, stop):
    if isinstance(a, types.NoneType):
        return lambda a, start, stop: None
    return lambda a, start, stop: a[start:stop]


def all_finite(x):
    """True when every element of the 1-D array ``x`` is finite (vectorized, no
    allocation)."""
    bad = False
    for i in range(x.size):
        bad |= x[i] - x[i] != 0  # x - x is 0 for finite x and NaN for NaN or +-Inf
    return not bad


all_finite = jit(all_finite)


def step(ps, gs, s0s, s1s, s2s, t, args, skipped):
    """One step on tuples of 1-D arrays of one dtype: the coefficients of step ``t`` from
    ``args`` (the positional arguments of the algorithm's ``coefficients`` after ``t``),
    then each array with the serial or the parallel loop. ``s1s`` and ``s2s`` are None
    where the coefficients do not use that buffer. With ``skipped`` (counters, one per
    array; None to update every array) an array whose gradient holds a NaN or Inf is left
    untouched and ``skipped[k]`` counted: the test is only compiled where it is used.

    Returns the coefficient field the optimizer carries to the next step (``CARRY``, the
    index of NAdam's ``mu_product``; a field it ignores for the other algorithms)."""
    c = coefficients(t, *args)  # noqa: F821
    for k in range(len(ps)):
        s1, s2 = item(s1s, k), item(s2s, k)
        if skipped is not None and not all_finite(gs[k]):
            skipped[k] += 1
        elif ps[k].size >= PARALLEL_MIN_SIZE:
            parallel_loop(ps[k], gs[k], s0s[k], s1, s2, c, None)  # noqa: F821
        else:
            serial_loop(ps[k], gs[k], s0s[k], s1, s2, c, None)  # noqa: F821
    return float(c[CARRY])  # noqa: F821


def compile_loops(spec, rule, cast, buffers, coefficients):
    """The serial :func:`given`, the serial and parallel loops of one algorithm
    (:func:`update`), and its two steps:
    ``step`` and ``step_serial``, the same for arrays that are all below
    :data:`PARALLEL_MIN_SIZE`, which does not compile the parallel loop (seconds of a
    user's first step)."""
    bound = dict(rule=rule, cast=cast)
    given_serial = jit(given, name=f"{spec.name}_given_serial", **bound)
    given_parallel = jit(given, parallel=True, name=f"{spec.name}_given_parallel", **bound)
    serial = jit(update, name=f"{spec.name}_serial", buffers=buffers, given_=given_serial)
    parallel = jit(update, name=f"{spec.name}_parallel", buffers=buffers, given_=given_parallel)
    if len(spec.carry) > 1:
        raise NotImplementedError("the compiled step carries at most one value")
    carry = spec.Coefficients._fields.index(next(iter(spec.carry))) if spec.carry else 0
    # (the optimizers pass None for the buffers a group does not keep: given, not update)
    bound = dict(coefficients=coefficients, serial_loop=given_serial, CARRY=carry)
    step_ = jit(step, name=f"{spec.name}_step", parallel_loop=given_parallel, **bound)
    step_serial = jit(step, name=f"{spec.name}_step_serial", parallel_loop=given_serial,
                      **bound)  # fmt: skip
    return given_serial, serial, parallel, step_, step_serial
