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
minimize, methods, minimize_njit, njit_options
    scipy-style minimization with Adam/RMSProp, scipy custom methods, and the fully
    compiled loop (imported on first use).
cuda
    GPU kernels and device functions (``import fastadam.cuda``; needs numba-cuda).
"""

import importlib

from . import conventions, kernels, rules
from .optimizers import Adam, AdamW, RMSProp

__version__ = "0.1.0"

# minimize and friends import scipy.optimize (slow to import): load them on first use.
_LAZY = {
    "minimize": ("._minimize", "minimize"),
    "methods": (".methods", None),
    "minimize_njit": ("._compiled", "minimize_njit"),
    "njit_options": ("._compiled", "njit_options"),
    "NjitOptions": ("._compiled", "NjitOptions"),
    "NjitResult": ("._compiled", "NjitResult"),
}

__all__ = ["Adam", "AdamW", "RMSProp", "conventions", "kernels", "rules", "__version__"]
__all__ += list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module, __name__)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastadam' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
