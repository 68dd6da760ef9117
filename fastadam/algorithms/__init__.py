"""The algorithms: one module each, listed once in :data:`ALGORITHMS`.

An algorithm module holds everything that defines it, and nothing that depends on where it
runs:

- ``Coefficients``: a :class:`~typing.NamedTuple` of the values its rule needs at step
  ``t``, folded once per step from the hyperparameters and the convention's knobs;
- ``rule(p, g, s0, s1, s2, c)``: the update of one element, a small pure function on
  scalars that numba compiles for the CPU and numba-cuda for the GPU;
- ``coefficients(t, ...)``: the hyperparameters at step ``t`` -> ``Coefficients`` (float64);
- ``cast(c, f)``: the coefficients with their float fields converted by ``f`` (to update
  float32 arrays in float32);
- ``buffers(c)``: whether the optional state buffers ``s1`` and ``s2`` are read and written
  at all (``s0`` always is);
- ``STATE``: the names of its three per-element state buffers;
- ``Convention`` and ``CONVENTIONS``: each framework's definition, as data;
- ``SPEC``: the :class:`Algorithm` record that ties them together.

The CPU kernels (:mod:`fastadam.kernels`), the GPU kernels (:mod:`fastadam.cuda`), the
optimizer classes and the tests are derived from the records in :data:`ALGORITHMS`.
"""

import numpy as np

from .._validation import FLOAT_DTYPES
from . import adam, nadam, rmsprop
from ._spec import Algorithm

__all__ = ["ALGORITHMS", "Algorithm", "adam", "nadam", "rmsprop", "get", "cast_coefficients"]

#: Every algorithm, by name: the one place they are listed.
ALGORITHMS = {m.SPEC.name: m.SPEC for m in (adam, rmsprop, nadam)}
_BY_RECORD = {spec.Coefficients: spec for spec in ALGORITHMS.values()}


def get(name):
    """The :class:`Algorithm` called ``name``; ValueError listing the valid names."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; valid: {list(ALGORITHMS)}")
    return ALGORITHMS[name]


def cast_coefficients(coef, dtype):
    """A coefficient record with its float fields converted to ``dtype`` (float32 or
    float64); integer and boolean fields are kept. Public as
    :func:`fastadam.kernels.cast_coefficients` (also callable from ``@njit`` code) and
    :func:`fastadam.cuda.cast_coefficients`."""
    spec = _BY_RECORD.get(type(coef))
    if spec is None:
        raise TypeError(f"coef must be a coefficient record, got {type(coef).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return spec.cast(coef, dtype.type)
