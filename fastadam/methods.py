"""Adam, AdamW, RMSProp and NAdam as custom methods of :func:`scipy.optimize.minimize`.

>>> import numpy as np, fastadam as fa
>>> from scipy.optimize import minimize, rosen, rosen_der
>>> res = minimize(rosen, np.zeros(2), jac=rosen_der, method=fa.methods.adam,
...                options=dict(lr=1e-2, maxiter=20_000, gtol=1e-6))
>>> bool(res.success)
True

scipy calls ``method(fun, x0, args=..., jac=..., hess=..., hessp=..., bounds=...,
constraints=..., callback=..., **options)`` (``tol`` arrives as ``options['tol']``), after
its own handling of ``jac``: ``jac=True`` reaches the method as a memoizing pair of callables
(one objective call per iteration), a finite-difference string as None (scipy does not pass
the string to a custom method, so ``'3-point'`` and ``'cs'`` run as forward differences
here: call :func:`fastadam.minimize` with that ``jac`` instead). Everything then runs as in
:func:`fastadam.minimize`, which documents the options, stop criteria, status table and
result fields.
"""

import warnings

from scipy.optimize import OptimizeWarning

from .optimize import api as _minimize

__all__ = ["adam", "adamw", "rmsprop", "nadam"]


def _custom(method):
    def run(
        fun, x0, args=(), jac=None, hess=None, hessp=None, bounds=None, constraints=(),
        callback=None, **options,
    ):  # fmt: skip
        if constraints is not None and not _empty(constraints):
            raise ValueError(
                f"method fastadam.methods.{method} cannot honour constraints (Adam-type "
                "updates only support box bounds); pass bounds= instead, or use "
                "method='SLSQP' / 'trust-constr'"
            )
        for name, value in (("hess", hess), ("hessp", hessp)):
            if value is not None:
                warnings.warn(
                    f"fastadam.methods.{method} does not use {name}; it is ignored",
                    OptimizeWarning,
                    stacklevel=3,
                )
        return _minimize.solve(
            fun, x0, args, method, jac, bounds, callback, None, options, stacklevel=4
        )

    run.__name__ = run.__qualname__ = method
    run.__doc__ = f"""{_TITLES[method]} as ``method=fastadam.methods.{method}`` of scipy.

    For ``scipy.optimize.minimize(fun, x0, method=fastadam.methods.{method}, ...)``.

    Parameters
    ----------
    fun, x0, args, jac, bounds, callback
        As for :func:`scipy.optimize.minimize` (see :func:`fastadam.minimize`).
    hess, hessp : optional
        Ignored, with an :class:`~scipy.optimize.OptimizeWarning`.
    constraints : optional
        Must be empty: a non-empty value raises ValueError.
    **options
        The ``options`` of :func:`fastadam.minimize` (hyperparameters, stopping controls,
        run controls), plus ``tol`` from scipy.

    Returns
    -------
    scipy.optimize.OptimizeResult
        As :func:`fastadam.minimize` returns it.
    """
    return run


def _empty(constraints):
    if isinstance(constraints, dict):
        return False
    try:
        return len(constraints) == 0
    except TypeError:
        return False


_TITLES = {
    "adam": "Adam",
    "adamw": "AdamW (decoupled weight decay)",
    "rmsprop": "RMSProp",
    "nadam": "NAdam",
}

adam = _custom("adam")
adamw = _custom("adamw")
rmsprop = _custom("rmsprop")
nadam = _custom("nadam")
