"""CPU kernels: the rules of :mod:`fastadam.algorithms` compiled with :func:`numba.njit`.

This is the public name of :mod:`fastadam.cpu.kernels`; see there for what it holds.
"""

from .cpu.kernels import *  # noqa: F403
from .cpu.kernels import __all__, __doc__  # noqa: F401
