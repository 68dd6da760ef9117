"""The evaluator of the Python loop: calls ``fun`` and ``jac`` for the problems still
running, checks and converts what they return, counts the calls, and computes gradients by
scipy's finite differences when ``jac`` is not given.

For ``minimize`` (``batch=False``) ``fun(x, *args)`` takes the live 1-D iterate; for
``minimize_batch`` ``fun(X, *args)`` takes the rows of the problems still running, with
each per-problem argument sliced to those rows, and returns their objective values.
"""

import inspect
import numbers

import numpy as np
from numba.core.errors import TypingError
from scipy.optimize._numdiff import approx_derivative

SEPARATE, COMBINED, FINITE_DIFF = 0, 1, 2
#: The finite-difference schemes of :func:`scipy.optimize._numdiff.approx_derivative`.
FD_METHODS = ("2-point", "3-point", "cs")
_JAC_VALUES = "a callable, True, False, None or one of " + ", ".join(map(repr, FD_METHODS))


def jac_mode(jac):
    """``(mode, finite-difference scheme or None)``."""
    if callable(jac):
        return SEPARATE, None
    if jac is True:
        return COMBINED, None
    if jac is None or jac is False:
        return FINITE_DIFF, "2-point"  # as scipy: forward differences
    if isinstance(jac, str):
        if jac not in FD_METHODS:
            raise ValueError(f"jac must be {_JAC_VALUES}; got {jac!r}")
        return FINITE_DIFF, jac
    raise TypeError(f"jac must be {_JAC_VALUES}; got {jac!r}")


def required_positional(func):
    """The number of positional parameters without a default of ``func`` (of the Python
    function behind a numba function); None when it takes ``*args`` or cannot be told."""
    func = getattr(func, "py_func", func)
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in kinds and p.default is inspect.Parameter.empty for p in params)


def writes_gradient(fun, jac, nargs):
    """Whether the gradient comes in an output argument, as on the GPU: ``fun(x, g, *args)
    -> f`` with ``jac=True``, or ``jac(x, g, *args)``. Told by the parameters of the
    function that gives the gradient: ``2 + nargs`` of them without a default, against
    scipy's ``fun(x, *args) -> (f, g)`` and ``jac(x, *args) -> g``."""
    source = fun if jac is True else jac
    return callable(source) and required_positional(source) == nargs + 2


def _into(returned, out):
    """``out``, which a ``jac`` that writes the gradient has filled; it must return None."""
    if returned is not None:
        raise TypeError(
            "jac takes len(args) + 2 parameters, so it is called as jac(x, g, *args) to write "
            f"the gradient into g, and must return None; it returned {type(returned).__name__}"
            " (if it returns the gradient, check args)"
        )
    return out


def at(k):
    """Where an evaluation was: ``k`` its iteration, None for one problem of a batch (the
    functions of one problem called row by row)."""
    if k is None:
        return "for one problem"
    return "at x0" if k == 0 else f"at iteration {k}"


def scalar(f, k):
    """``fun``'s value as a float; ValueError/TypeError naming ``fun`` for anything but one
    real number (a complex one is refused, not silently cut to its real part)."""
    if f.__class__ is float or f.__class__ is np.float64 or isinstance(f, numbers.Real):
        return float(f)
    try:
        a = np.asarray(f)
    except Exception:  # e.g. a ragged tuple
        a = None
    if a is not None and a.dtype.kind in "fiubc":
        if a.ndim != 0:
            raise ValueError(f"fun must return a scalar, got an array of shape {a.shape} {at(k)}")
        if a.dtype.kind != "c":
            return float(a)
    elif (
        a is not None
        and a.ndim == 0
        and a.dtype.kind == "O"
        and not isinstance(f, numbers.Complex)
    ):
        try:  # a real number of another library
            return float(f)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"fun must return a real number, got {f!r} {at(k)}")


def gradient(g, shape, dtype, mode, k):
    """``g`` as a C-contiguous array of ``shape`` and ``dtype`` (what the compiled iteration
    takes); ValueError/TypeError naming ``jac`` for a wrong shape or type."""
    what = "fun(x)[1] (jac=True)" if mode == COMBINED else "jac"
    try:
        a = np.asarray(g)
    except Exception:
        raise TypeError(f"{what} must return an array of real numbers, got {g!r}") from None
    if a.dtype.kind not in "fiu":
        got = f"dtype {a.dtype}" if isinstance(g, np.ndarray) else repr(g)
        raise TypeError(f"{what} must return an array of real numbers, got {got} {at(k)}")
    if a.shape != shape and not (a.shape == () and shape == (1,)):
        of = "its number of variables" if k is None else "the shape of x0"
        raise ValueError(
            f"{what} returned an array of shape {a.shape} {at(k)}; expected {shape}, {of}"
            + (" rows of the problems still running" if len(shape) == 2 else "")
        )
    out = np.ascontiguousarray(a.reshape(shape), dtype=dtype)
    if out.ndim == 1 and out.strides != (out.itemsize,):  # a size-1 view may keep odd strides
        out = out.copy()
    return out


def split(out):
    try:
        f, g = out
    except (TypeError, ValueError):
        raise TypeError(
            f"with jac=True, fun must return (f, gradient); got {type(out).__name__}"
        ) from None
    return f, g


def _objective_values(f, b, k):
    """A vectorized ``fun``'s values as a float64 array of shape (b,)."""
    try:
        a = np.asarray(f)
    except Exception:
        a = None
    if a is None or a.dtype.kind not in "fiub":
        raise TypeError(
            f"fun must return real numbers, one per problem still running, got {f!r} {at(k)}"
        )
    if a.shape != (b,) and not (b == 1 and a.shape == ()):
        raise ValueError(
            f"fun returned shape {a.shape} {at(k)}; expected ({b},), one value per problem "
            "still running"
        )
    return np.ascontiguousarray(a.reshape(b), dtype=np.float64)


def row_by_row(fun, jac, batched, nextra):
    """``(fun, jac)`` of minimize_batch's vectorized form, ``fun(X, *args)``, that call the
    functions of *one* problem given (its compiled form: an ``@njit`` ``fun(x, *args_i)``)
    on each row of ``X``, where the Python loop runs them (a callback, an ``lr`` schedule,
    minibatches, finite differences, ``compiled=False``). Problem ``i``'s arguments are
    those the compiled loop gives it: row ``i`` of the ``batched`` ones, ``a[0]`` of a
    shared array, the rest (and the ``nextra`` minibatch arguments before them) whole. An
    objective that writes its gradient (``len(args) + 2`` parameters) writes into rows of
    one array."""
    kinds = (None,) * nextra + tuple(batched)
    writes = writes_gradient(fun, jac, len(kinds))

    def problem_args(args, j):  # (as engine.pick gives them to the compiled loop)
        return tuple(
            a if kind is None or not isinstance(a, np.ndarray) or a.ndim == 0
            else a[j] if kind else a[0]
            for a, kind in zip(args, kinds, strict=True)
        )  # fmt: skip

    def call(func, name, *a):
        try:
            return func(*a)
        except TypingError as exc:
            raise TypeError(
                f"minimize_batch calls an @njit {name} with one problem's x, of shape (n,), and "
                f"its arguments (the compiled form, see minimize_batch); it did not compile "
                f"for them: {exc}"
            ) from exc

    def gradients(X, args, func, name):
        if writes:
            G = np.empty(X.shape, X.dtype)
            return G, [call(func, name, X[j], G[j], *problem_args(args, j)) for j in range(len(X))]
        pairs = [call(func, name, X[j], *problem_args(args, j)) for j in range(len(X))]
        return None, pairs

    def values(X, *args):
        return np.array([call(fun, "fun", X[j], *problem_args(args, j)) for j in range(len(X))])

    def values_and_gradients(X, *args):  # jac=True
        G, out = gradients(X, args, fun, "fun")
        if G is not None:
            return np.array(out), G
        pairs = [split(pair) for pair in out]
        return np.array([f for f, _ in pairs]), _rows([g for _, g in pairs], X, COMBINED)

    def jac_rows(X, *args):
        G, out = gradients(X, args, jac, "jac")
        return G if G is not None else _rows(out, X, SEPARATE)

    if jac is True:
        return values_and_gradients, True
    return values, (jac_rows if callable(jac) else jac)  # (else finite differences)


def _rows(gradients, X, mode):
    """The gradients of the rows of ``X``, each checked as :func:`gradient` checks one, as
    one (b, n) array."""
    G = np.empty(X.shape, X.dtype)
    for j, g in enumerate(gradients):
        G[j] = gradient(g, X.shape[1:], X.dtype, mode, None)
    return G


class Evaluator:
    """Objective values and gradients of the problems ``active``, counted per problem.

    ``args`` are the extra arguments; for a batch, ``batched[k]`` says whether ``args[k]``
    has one row per problem (it is then sliced to the rows running). The iterates are read
    from the run's iterate buffers ``xs`` (R, B, n) at the rows ``x_rows`` (the progress
    records' field, updated by the engine). ``lo``/``hi`` are the bounds as rounded to x's
    dtype (empty without bounds)."""

    def __init__(self, fun, jac, args, batched, xs, x_rows, lo, hi, cfg, batch):
        self.fun = fun
        self.jac = jac
        self.mode, scheme = jac_mode(jac)
        self.args = args
        self.batched = batched
        self.xs = xs
        self.x_rows = x_rows
        self.batch = batch
        _, b, n = xs.shape
        self.nfev = np.zeros(b, dtype=np.int64)
        self.njev = np.zeros(b, dtype=np.int64)
        self.k = 0
        self.evaluations = 0  # minimize's calls of fun (and of jac), counted in Python
        self.F = np.empty(1)
        self.views = [row[0] for row in xs]  # minimize's iterate in each row (views)
        self.gshape = (n,)
        self.gstrides = (xs.itemsize,)
        self.dtype = xs.dtype
        if self.mode == FINITE_DIFF:
            self.fd = _FiniteDifferences(fun, scheme, cfg, lo, hi, batch)
        self._writes = {}  # number of arguments -> writes_gradient

    def _gradient_out(self, args, shape):
        """A new array for the gradient when the objective writes it (else None)."""
        writes = self._writes.get(len(args))
        if writes is None:
            writes = self._writes[len(args)] = writes_gradient(self.fun, self.jac, len(args))
        return np.empty(shape, self.dtype) if writes else None

    def counts(self):
        """``(nfev, njev)`` per problem."""
        return self.nfev + self.evaluations, self.njev + self.evaluations

    def one(self, extra=()):
        """minimize's evaluation of its one problem at the live iterate: ``(F, G)`` of
        shapes (1,) and (1, n); a gradient that is already a contiguous array of x's dtype
        is taken as it is (the common case, checked in a few attribute reads)."""
        x = self.views[self.x_rows[0]]  # the live iterate
        args = (*extra, *self.args) if extra else self.args
        out = self._gradient_out(args, self.gshape)
        if self.mode == COMBINED:
            f, g = (self.fun(x, out, *args), out) if out is not None else split(self.fun(x, *args))
        else:
            f = self.fun(x, *args)
        self.evaluations += 1
        if self.mode == SEPARATE:
            try:
                g = self.jac(x, *args) if out is None else _into(self.jac(x, out, *args), out)
            except BaseException:
                self.nfev += 1
                self.evaluations -= 1
                raise
        if f.__class__ is not float:
            f = scalar(f, self.k)
        if self.mode == FINITE_DIFF:
            F = np.array([f])
            g = self.fd(x, F, args, (0,) * (len(extra) + len(self.args)), self.nfev,
                        np.zeros(1, dtype=np.intp))  # fmt: skip
        if not (
            g.__class__ is np.ndarray
            and g.strides == self.gstrides
            and g.shape == self.gshape
            and (g.dtype is self.dtype or g.dtype == self.dtype)
        ):
            g = gradient(g, self.gshape, self.dtype, self.mode, self.k)
        self.F[0] = f
        return self.F, g.reshape(1, -1)

    def rows_args(self, active, extra):
        """The arguments of the problems ``active`` (``extra`` first: the minibatch)."""
        if not self.batch or active.size == self.xs.shape[1]:
            return (*extra, *self.args)
        rows = tuple(a[active] if m else a for a, m in zip(self.args, self.batched, strict=True))
        return (*extra, *rows)

    def __call__(self, active, extra=()):
        """``(F, G)``: float64 values of shape (b,) and gradients (b, n) in x's dtype."""
        if not self.batch:
            return self.one(extra)
        args = self.rows_args(active, extra)
        full = active.size == self.xs.shape[1]
        rows = self.x_rows if full else self.x_rows[active]
        X = self.xs[rows[0]] if full and np.all(rows == rows[0]) else self.xs[rows, active]
        shape = (active.size, self.xs.shape[2])
        out = self._gradient_out(args, shape)
        if self.mode == COMBINED:
            f, g = (self.fun(X, out, *args), out) if out is not None else split(self.fun(X, *args))
        else:
            f = self.fun(X, *args)
        self._count(self.nfev, active, full)
        if self.mode == SEPARATE:
            g = self.jac(X, *args) if out is None else _into(self.jac(X, out, *args), out)
        F = _objective_values(f, active.size, self.k)
        if self.mode == FINITE_DIFF:
            mask = (0,) * len(extra) + tuple(self.batched)
            g = self.fd(X, F, args, mask, self.nfev, active)
        G = gradient(g, shape, self.dtype, self.mode, self.k)
        self._count(self.njev, active, full)
        return F, G.reshape(shape)

    @staticmethod
    def _count(counts, active, full):
        if full:
            counts += 1
        else:
            counts[active] += 1


class _FiniteDifferences:
    """Gradients by scipy's own finite differences (its steps, relative by default, or
    ``finite_diff_step`` as an absolute step), kept in the box (the bounds as rounded to x's
    dtype, inside the given ones); ``fun`` calls counted in ``nfev``.

    Fixed variables (lower bound = upper bound) are left out, as scipy's minimize does: no
    step fits in their box (scipy would divide 0 by 0), and their component of the projected
    gradient is irrelevant; it is 0. In a batch, each problem's gradient is computed
    separately, calling the vectorized ``fun`` on one row at a time.
    """

    def __init__(self, fun, scheme, cfg, lo, hi, batch):
        self.fun = fun
        self.batch = batch
        self.opts = dict(
            method=scheme, rel_step=cfg.finite_diff_rel_step, abs_step=cfg.finite_diff_step
        )
        self.bounds = None
        self.free = None
        if lo.size:
            lo = lo.astype(np.float64)
            hi = hi.astype(np.float64)
            self.free = np.flatnonzero(lo != hi)
            self.bounds = (lo[self.free], hi[self.free])

    def __call__(self, X, F, args, mask, nfev, active):
        if not self.batch:
            return self._one(self.fun, X, F[0], args, nfev, active[0])
        G = np.zeros(X.shape, dtype=X.dtype)
        for j, i in enumerate(active):
            row_args = tuple(a[j : j + 1] if m else a for a, m in zip(args, mask, strict=True))

            def one(x, *a):
                return float(_objective_values(self.fun(x[None], *a), 1, 0)[0])

            G[j] = self._one(one, X[j], F[j], row_args, nfev, i)
        return G

    def _one(self, fun, x, f, args, nfev, i):
        calls = [0]

        def counted(xx, *a):
            calls[0] += 1
            return fun(xx, *a)

        try:
            if self.free is None:
                return approx_derivative(counted, x, f0=f, args=args, **self.opts)
            g = np.zeros(x.shape, dtype=x.dtype)
            free = self.free
            if free.size:

                def sub(xf, *a):  # fun of the free variables
                    full = x.astype(np.result_type(x.dtype, xf.dtype))
                    full[free] = xf
                    return counted(full, *a)

                g[free] = approx_derivative(
                    sub, x[free], f0=f, bounds=self.bounds, args=args, **self.opts
                )
            return g
        finally:
            nfev[i] += calls[0]
