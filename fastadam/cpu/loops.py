"""The compiled loops over the algorithms' rules, written once for every algorithm.

:func:`update` applies ``rule`` (a name this module's copies of the function resolve to
the algorithm's compiled rule, see :func:`fastadam.cpu.compile.jit`) to every element of
flat arrays, with coefficients already cast to the arrays' dtype; :func:`update_many` does
it for tuples of arrays, skipping those whose gradient is not finite where asked.
"""

from numba import prange

from .compile import jit


def update(p, g, s0, s1, s2, c):
    """``rule`` on every element of the 1-D arrays, in place (``c``: the coefficients, of
    the arrays' dtype). The buffers that ``buffers(c)`` marks unused are not accessed."""
    n = p.size
    use1, use2 = buffers(c)  # noqa: F821 - bound per algorithm by jit()
    # Each combination of buffers gets its own loop, touching only the arrays it needs, so
    # that every loop vectorizes.
    if use1 and use2:
        for i in prange(n):
            p[i], s0[i], s1[i], s2[i] = rule(p[i], g[i], s0[i], s1[i], s2[i], c)  # noqa: F821
    elif use1:
        for i in prange(n):
            p[i], s0[i], s1[i], _ = rule(p[i], g[i], s0[i], s1[i], p[i], c)  # noqa: F821
    elif use2:
        for i in prange(n):
            p[i], s0[i], _, s2[i] = rule(p[i], g[i], s0[i], p[i], s2[i], c)  # noqa: F821
    else:
        for i in prange(n):
            p[i], s0[i], _, _ = rule(p[i], g[i], s0[i], p[i], p[i], c)  # noqa: F821


def all_finite(x):
    """True when every element of the 1-D array ``x`` is finite (vectorized, no
    allocation)."""
    bad = False
    for i in range(x.size):
        bad |= x[i] - x[i] != 0  # x - x is 0 for finite x and NaN for NaN or +-Inf
    return not bad


all_finite = jit(all_finite)


def update_many(ps, gs, s0s, s1s, s2s, c, skip_nonfinite, skipped):
    """``update`` (serial) on tuples of 1-D arrays of one dtype; with ``skip_nonfinite`` an
    array whose gradient holds a NaN or Inf is left untouched and ``skipped[k]`` counted."""
    for k in range(len(ps)):
        if skip_nonfinite and not all_finite(gs[k]):
            skipped[k] += 1
        else:
            serial(ps[k], gs[k], s0s[k], s1s[k], s2s[k], c)  # noqa: F821


def compile_loops(name, rule, buffers):
    """The serial, parallel and many-array loops of one algorithm."""
    serial = jit(update, name=f"{name}_serial", rule=rule, buffers=buffers)
    parallel = jit(update, parallel=True, name=f"{name}_parallel", rule=rule, buffers=buffers)
    many = jit(update_many, name=f"{name}_many", serial=serial, all_finite=all_finite)
    return serial, parallel, many
