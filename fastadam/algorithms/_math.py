"""Small pieces of math that several algorithms share.

Each is a pure function on scalars, marked with :func:`numba.extending.register_jitable`
so that it runs as plain Python on the host and is compiled into the numba code that calls
it.
"""

from numba.extending import register_jitable


@register_jitable
def weight_decay_terms(lr, weight_decay, decoupled):
    """``(l2, wd_factor)``: L2 decay added to the gradient, or the decoupled factor
    ``1 - lr * weight_decay`` that multiplies the parameter (the other is neutral)."""
    if decoupled:
        return 0.0, 1.0 - lr * weight_decay
    return 1.0 * weight_decay, 1.0


@register_jitable
def check_step(t):
    """Refuse a step number below 1 (the first update is step 1)."""
    if t < 1:
        raise ValueError("t must be >= 1: the first update is step 1")
