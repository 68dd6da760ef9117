"""Minimization with the optimizers of :mod:`fastadam`: ``minimize`` (one problem, scipy's
interface), ``minimize_batch`` (B independent problems at once) and ``minimize_njit`` (the
compiled loop, from users' own ``@njit`` code), all on one engine.

Layers: :mod:`.options` (arguments -> settings), :mod:`.engine` (the records and the
compiled iteration), :mod:`.evaluate` (calls of ``fun``/``jac``, finite differences),
:mod:`.loop` (the Python loop), :mod:`.compiled` (the compiled loop), :mod:`.results`,
:mod:`.status` (the one status table).
"""

from .api import minimize, minimize_batch
from .njit import NjitOptions, NjitResult, minimize_njit, njit_options
from .status import Status

__all__ = [
    "minimize",
    "minimize_batch",
    "minimize_njit",
    "njit_options",
    "NjitOptions",
    "NjitResult",
    "Status",
]
