"""fastadam: Numba-compiled Adam and RMSProp for CPU and NVIDIA GPU.

Public surface
--------------
Adam, AdamW, RMSProp, NAdam
    In-place optimizers over one array or many (or parameter groups), in any framework's
    convention.
algorithms
    One module per algorithm: its scalar rule, its coefficients and state as named records,
    its conventions (the math, written once); ``algorithms.ALGORITHMS`` lists them.
kernels
    The compiled per-element rules, coefficient builders and array kernels, callable from
    Python and from ``@numba.njit`` code.
conventions
    Each framework's definition of every algorithm, as data.
minimize, minimize_batch, methods, minimize_njit, njit_options
    scipy-style minimization with the optimizers, of one problem or of many independent
    problems at once, scipy custom methods, and the fully compiled loop (the subpackage
    ``optimize``, imported on first use).
warmup
    Compile the common variants into numba's disk cache (``python -m fastadam warmup``).
cuda
    GPU kernels and device functions (``import fastadam.cuda``; needs numba-cuda).
"""

import importlib

from . import algorithms, conventions, kernels
from .optimizers import Adam, AdamW, NAdam, RMSProp

__version__ = "0.1.0"

# minimize and friends import scipy.optimize (slow to import): load them on first use.
_LAZY = {
    "minimize": (".optimize", "minimize"),
    "minimize_batch": (".optimize", "minimize_batch"),
    "methods": (".methods", None),
    "optimize": (".optimize", None),
    "minimize_njit": (".optimize", "minimize_njit"),
    "njit_options": (".optimize", "njit_options"),
    "NjitOptions": (".optimize", "NjitOptions"),
    "NjitResult": (".optimize", "NjitResult"),
    "warmup": ("._warmup", "warmup"),
}

__all__ = [
    "Adam",
    "AdamW",
    "RMSProp",
    "NAdam",
    "algorithms",
    "conventions",
    "kernels",
    "__version__",
]
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
