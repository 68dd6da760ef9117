"""The one status table of :func:`fastadam.minimize` and :func:`fastadam.minimize_batch`.

======  ====================  =======  ==========================================================
status  name                  success  meaning
======  ====================  =======  ==========================================================
0       ``gtol``              True     the gradient's inf-norm (projected on the bounds) is at
                                       most gtol
1       ``maxiter``           False    ``maxiter`` updates done
2       ``ftol``              True     the mean objective over the last window changed by at
                                       most ftol (relative)
3       ``xtol``              True     x moved by at most xtol over the last window
4       ``nonfinite_fun``     False    the objective was NaN or Inf; ``x`` is the last finite
                                       iterate
5       ``nonfinite_jac``     False    the gradient held NaN or Inf; ``x`` is the last finite
                                       iterate
6       ``maxtime``           False    ``maxtime`` seconds elapsed
7       ``batches_exhausted`` True     ``options['batches']`` ran out (one batch per iteration)
8       ``callback``          False    the callback raised ``StopIteration``
9       ``interrupted``       False    KeyboardInterrupt (Ctrl-C); the result so far
======  ====================  =======  ==========================================================

Compiled code compares against the plain integers below (:data:`GTOL`...), which numba
reads as constants; :class:`Status` names them for Python.
"""

import enum

__all__ = ["Status"]


class Status(enum.IntEnum):
    """Why a problem stopped; ``int(status)`` is scipy-style ``res.status``."""

    GTOL = 0
    MAXITER = 1
    FTOL = 2
    XTOL = 3
    NONFINITE_FUN = 4
    NONFINITE_JAC = 5
    MAXTIME = 6
    BATCHES_EXHAUSTED = 7
    CALLBACK = 8
    INTERRUPTED = 9

    @property
    def success(self):
        """Whether this status counts as a successful run."""
        return self in _SUCCESS


_SUCCESS = frozenset({Status.GTOL, Status.FTOL, Status.XTOL, Status.BATCHES_EXHAUSTED})

# The same values as plain ints, for compiled code.
GTOL = int(Status.GTOL)
MAXITER = int(Status.MAXITER)
FTOL = int(Status.FTOL)
XTOL = int(Status.XTOL)
NONFINITE_FUN = int(Status.NONFINITE_FUN)
NONFINITE_JAC = int(Status.NONFINITE_JAC)
MAXTIME = int(Status.MAXTIME)
BATCHES_EXHAUSTED = int(Status.BATCHES_EXHAUSTED)
CALLBACK = int(Status.CALLBACK)
INTERRUPTED = int(Status.INTERRUPTED)
#: Internal codes, never a result's status: still running; a gradient of the wrong size.
RUNNING = -1
BAD_JAC_SIZE = -2
