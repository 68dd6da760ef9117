"""fastadam: Numba-compiled Adam and RMSProp for CPU and NVIDIA GPU.

Public surface
--------------
Adam, AdamW, RMSProp
    In-place optimizers over one array or many, in any framework's convention.
kernels
    The compiled per-element rules and array kernels, callable from ``@numba.njit`` code.
rules
    The plain scalar update rules the kernels are compiled from (the math, written once).
conventions
    Each framework's definition as data.
"""

from . import conventions, kernels, methods, rules
from ._compiled import NjitOptions, NjitResult, minimize_njit, njit_options
from ._minimize import minimize
from .optimizers import Adam, AdamW, RMSProp

__version__ = "0.1.0"

__all__ = ["Adam", "AdamW", "RMSProp", "conventions", "kernels", "rules", "__version__"]
__all__ += ["minimize", "methods", "minimize_njit", "njit_options", "NjitOptions", "NjitResult"]
