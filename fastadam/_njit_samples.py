"""An objective of the most common signature, ``fun(x) -> float`` and ``jac(x) -> array``
(float64), for :func:`fastadam.warmup` to compile the compiled loop of ``minimize`` for that
signature (the loop is cached per signature, not per function)."""

import numpy as np
from numba import njit


@njit(cache=True)
def quadratic(x):
    return 0.5 * np.sum(x * x)


@njit(cache=True)
def jac(x):
    return x.copy()
