"""fastadam.minimize and fastadam.methods: convergence, statuses, bounds, batches, errors."""

import sys
import types
import warnings

import numpy as np
import pytest
from numba import njit
from scipy.optimize import Bounds, OptimizeResult, OptimizeWarning, rosen, rosen_der
from scipy.optimize import minimize as sp_minimize

import fastadam as fa


def quad(c):
    """f = 0.5 * sum(a * (x - c)**2): minimum at c."""
    a = np.linspace(1.0, 3.0, len(c))

    def f(x):
        return 0.5 * float(np.sum(a * (x - c) ** 2))

    def g(x):
        return a * (x - c)

    return f, g


C3 = np.array([1.0, -2.0, 3.0])


# -- convergence -------------------------------------------------------------------------------


def test_quadratic_converges_to_known_minimum():
    f, g = quad(C3)
    res = fa.minimize(f, np.zeros(3), jac=g, options=dict(lr=0.05, maxiter=10_000, gtol=1e-9))
    assert isinstance(res, OptimizeResult)
    assert res.status == 0 and res.success
    np.testing.assert_allclose(res.x, C3, atol=1e-8)
    assert res.fun == pytest.approx(f(res.x))
    np.testing.assert_allclose(res.jac, g(res.x))
    assert res.nfev == res.njev == res.nit + 1
    assert res.gnorm <= 1e-9


@pytest.mark.parametrize("n", [2, 10])
def test_rosen_converges(n):
    res = fa.minimize(
        rosen, np.zeros(n), jac=rosen_der, options=dict(lr=1e-2, maxiter=20_000, gtol=1e-6)
    )
    assert res.status == 0, res.message
    np.testing.assert_allclose(res.x, np.ones(n), atol=1e-4)
    assert res.fun < 1e-8


def test_least_squares_fit_matches_lstsq():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((60, 5))
    b = A @ np.array([0.5, -1.0, 2.0, 0.0, 3.0]) + 0.01 * rng.standard_normal(60)
    exact = np.linalg.lstsq(A, b, rcond=None)[0]

    def fg(x):
        r = A @ x - b
        return 0.5 * r @ r, A.T @ r

    res = fa.minimize(fg, np.zeros(5), jac=True, options=dict(lr=0.05, maxiter=20_000, gtol=1e-8))
    assert res.success, res.message
    np.testing.assert_allclose(res.x, exact, atol=1e-7)


@pytest.mark.parametrize("method", ["adam", "adamw", "rmsprop"])
def test_every_method_through_scipy(method):
    f, g = quad(C3)
    opts = dict(lr=0.02, maxiter=20_000, gtol=1e-6)
    if method == "adamw":
        opts["weight_decay"] = 0.0
    res = sp_minimize(f, np.zeros(3), jac=g, method=getattr(fa.methods, method), options=opts)
    assert isinstance(res, OptimizeResult)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, C3, atol=1e-3 if method == "rmsprop" else 1e-6)


def test_scipy_jac_true_and_finite_differences_count_nfev():
    f, g = quad(C3)
    calls = {"n": 0}

    def fg(x):
        calls["n"] += 1
        return f(x), g(x)

    res = sp_minimize(
        fg, np.zeros(3), jac=True, method=fa.methods.adam, options=dict(lr=0.05, maxiter=50)
    )
    assert res.nit == 50 and calls["n"] == 51  # memoized by scipy: one call per iteration
    np.testing.assert_allclose(res.jac, g(res.x))

    counted = {"n": 0}

    def fcount(x):
        counted["n"] += 1
        return f(x)

    res = fa.minimize(fcount, np.zeros(3), options=dict(lr=0.05, maxiter=30))
    assert res.nfev == counted["n"]
    assert res.nfev == 31 * 4  # f itself plus n calls per forward-difference gradient
    assert res.njev == 31
    np.testing.assert_allclose(res.jac, g(res.x), atol=1e-5)


def test_scipy_tol_maps_to_tolerances():
    f, g = quad(C3)
    loose = sp_minimize(
        f,
        np.zeros(3),
        jac=g,
        method=fa.methods.adam,
        tol=1e-2,
        options=dict(lr=0.05, maxiter=10_000),
    )
    tight = sp_minimize(
        f,
        np.zeros(3),
        jac=g,
        method=fa.methods.adam,
        tol=1e-9,
        options=dict(lr=0.05, maxiter=10_000),
    )
    assert loose.success and tight.success
    assert loose.nit < tight.nit
    # an explicit option wins over tol
    res = fa.minimize(
        f,
        np.zeros(3),
        jac=g,
        tol=1e-2,
        options=dict(lr=0.05, gtol=0.0, ftol=0.0, xtol=0.0, maxiter=300),
    )
    assert res.status == 1


def test_matches_a_manual_optimizer_loop():
    """The update is exactly fastadam.Adam's / RMSProp's (same convention and knobs)."""
    f, g = quad(C3)
    for method, cls, hyper in [
        ("adam", fa.Adam, dict(lr=0.1, convention="keras", amsgrad=True, weight_decay=0.01)),
        ("adamw", fa.AdamW, dict(lr=0.1, convention="optax", amsgrad=True)),
        ("rmsprop", fa.RMSProp, dict(lr=0.01, convention="tf1", momentum=0.5, centered=True)),
    ]:
        res = fa.minimize(
            f, np.zeros(3), jac=g, method=method, options=dict(maxiter=20, gtol=0.0, **hyper)
        )
        x = np.zeros(3)
        opt = cls(x, **hyper)
        for _ in range(20):
            opt.step(g(x))
        np.testing.assert_allclose(res.x, x, rtol=1e-13, atol=1e-15)


def test_lr_schedule_and_float32():
    f, g = quad(C3)
    res = fa.minimize(
        f,
        np.zeros(3, np.float32),
        jac=lambda x: g(x).astype(np.float32),
        options=dict(lr=lambda t: 0.1 / np.sqrt(t), maxiter=3000, gtol=1e-4),
    )
    assert res.x.dtype == np.float32
    assert res.success, res.message
    np.testing.assert_allclose(res.x, C3, atol=1e-3)
    assert callable(res.hyperparameters["lr"])


# -- statuses --------------------------------------------------------------------------------


def test_status_gtol_at_x0_and_maxiter():
    f, g = quad(C3)
    res = fa.minimize(f, C3.copy(), jac=g)
    assert (res.status, res.nit, res.nfev) == (0, 0, 1)
    res = fa.minimize(f, np.zeros(3), jac=g, options=dict(lr=1e-3, maxiter=7))
    assert (res.status, res.success, res.nit, res.nfev) == (1, False, 7, 8)
    assert "Maximum number of iterations" in res.message


def test_status_ftol_and_xtol():
    f, g = quad(C3)
    res = fa.minimize(
        f, np.zeros(3), jac=g, options=dict(lr=1e-4, ftol=1e-2, gtol=0, window=5, maxiter=1000)
    )
    assert (res.status, res.success, res.nit) == (2, True, 10)
    assert "ftol" in res.message
    res = fa.minimize(
        f, np.zeros(3), jac=g, options=dict(lr=1e-4, xtol=1e-2, gtol=0, window=5, maxiter=1000)
    )
    assert (res.status, res.success, res.nit) == (3, True, 5)
    assert "xtol" in res.message


@pytest.mark.parametrize("where", ["fun", "jac"])
def test_status_nonfinite_returns_last_finite_iterate(where):
    f, g = quad(C3)
    seen = []

    def fun(x):
        seen.append(x.copy())
        return np.inf if (where == "fun" and x[0] > 0.5) else f(x)

    def jac(x):
        return np.full(3, np.nan) if (where == "jac" and x[0] > 0.5) else g(x)

    res = fa.minimize(fun, np.zeros(3), jac=jac, options=dict(lr=0.1))
    bad = next(k for k, x in enumerate(seen) if x[0] > 0.5)
    assert res.status == (4 if where == "fun" else 5) and not res.success
    assert res.nit == bad - 1
    np.testing.assert_array_equal(res.x, seen[bad - 1])
    assert np.isfinite(res.fun) and res.fun == f(res.x)
    np.testing.assert_allclose(res.jac, g(res.x))
    assert f"iteration {bad}" in res.message
    np.testing.assert_array_equal(res.best_x, seen[res.best_nit])


def test_best_iterate_kept_while_the_run_moves_away():
    # Adam with a large rate overshoots: after iteration 1 the objective rises, so the best
    # iterate stays behind while four more updates are made (each into a buffer row that is
    # neither the iterate nor the best one)
    f, g = quad(C3)
    seen = []

    def fun(x):
        seen.append(x.copy())
        return f(x)

    res = fa.minimize(fun, np.zeros(3), jac=g, options=dict(lr=2.0, maxiter=5, gtol=0.0))
    values = [f(x) for x in seen]
    assert (res.nit, res.best_nit) == (5, 1) and res.best_fun == min(values)
    np.testing.assert_array_equal(res.best_x, seen[1])
    np.testing.assert_array_equal(res.x, seen[5])


@njit
def _large_fun(x, c, calls):
    s = 0.0
    for j in range(x.size):
        s += 0.5 * (np.float64(x[j]) - c[j]) ** 2
    return s


@njit
def _large_jac(x, c, calls):
    calls[0] += 1
    g = x - c
    if calls[0] == 5:
        g[-1] = np.nan
    return g


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_problem_updated_in_chunks_over_threads(dtype, compiled):
    # n >= PARALLEL_MIN_SIZE runs the update in chunks over threads and scans the gradient
    # by the bits' max: the iterates are Adam.step's bit for bit, gnorm is numpy's max |g|,
    # and a NaN in the last element of the gradient at iteration 4 stops the run at
    # iteration 3 (Python path and compiled loop)
    n = fa.kernels.PARALLEL_MIN_SIZE + 1001
    c = np.random.default_rng(5).standard_normal(n).astype(dtype)
    calls = np.zeros(1, np.int64)
    fun, jac = (_large_fun, _large_jac) if compiled else (_large_fun.py_func, _large_jac.py_func)
    res = fa.minimize(fun, np.zeros(n, dtype), args=(c, calls), jac=jac,
                      options=dict(lr=0.01, gtol=0.0))  # fmt: skip
    assert res.compiled is compiled
    assert (res.status, res.nit) == (fa.optimize.Status.NONFINITE_JAC, 3)
    x = np.zeros(n, dtype)
    opt = fa.Adam(x, lr=0.01)
    for _ in range(3):
        opt.step(x - c)
    np.testing.assert_array_equal(res.x, x)
    np.testing.assert_array_equal(res.jac, x - c)
    assert res.gnorm == float(np.max(np.abs(x - c)))


def test_status_nonfinite_at_x0():
    res = fa.minimize(lambda x: np.nan, np.zeros(2), jac=lambda x: np.zeros(2))
    assert (res.status, res.nit) == (4, 0)
    assert "initial point" in res.message


def test_status_maxtime():
    import time

    f, g = quad(C3)

    def slow(x):
        time.sleep(0.001)
        return f(x)

    t0 = time.perf_counter()
    res = fa.minimize(
        slow, np.zeros(3), jac=g, options=dict(lr=1e-4, maxtime=0.05, maxiter=10**6, gtol=0)
    )
    assert res.status == 6 and not res.success
    assert time.perf_counter() - t0 < 2
    assert 0 < res.nit < 1000


def test_status_callback_stop_and_styles():
    f, g = quad(C3)
    got = []

    def new_style(intermediate_result):
        got.append(intermediate_result)
        if intermediate_result.nit == 5:
            raise StopIteration

    res = fa.minimize(f, np.zeros(3), jac=g, callback=new_style, options=dict(lr=0.1))
    assert (res.status, res.success, res.nit) == (8, False, 5)
    assert [r.nit for r in got] == [1, 2, 3, 4, 5]
    assert isinstance(got[-1], OptimizeResult)
    np.testing.assert_array_equal(got[-1].x, res.x)
    assert got[-1].fun == res.fun

    xs = []
    res = sp_minimize(
        f,
        np.zeros(3),
        jac=g,
        method=fa.methods.adam,
        callback=xs.append,
        options=dict(lr=0.1, maxiter=4),
    )
    assert len(xs) == 4 and res.status == 1
    np.testing.assert_array_equal(xs[-1], res.x)
    assert xs[0] is not xs[1]


def test_status_keyboard_interrupt_returns_result_so_far():
    f, g = quad(C3)
    calls = {"n": 0}

    def fun(x):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return f(x)

    res = fa.minimize(fun, np.zeros(3), jac=g, options=dict(lr=0.1))
    assert (res.status, res.success, res.nit) == (9, False, 4)
    assert "iteration 3" in res.message and "KeyboardInterrupt" in res.message


def test_minibatch_linear_regression_recovers_coefficients():
    rng = np.random.default_rng(1)
    w_true = np.array([2.0, -1.0, 0.5, 3.0])
    X = rng.standard_normal((4000, 4))
    y = X @ w_true + 0.05 * rng.standard_normal(4000)

    def batches(epochs, size=50):
        for _ in range(epochs):
            idx = rng.permutation(len(X))
            for i in range(0, len(X), size):
                j = idx[i : i + size]
                yield X[j], y[j]

    def loss(w, batch):
        Xb, yb = batch
        r = Xb @ w - yb
        return 0.5 * r @ r / len(yb)

    def grad(w, batch):
        Xb, yb = batch
        return Xb.T @ (Xb @ w - yb) / len(yb)

    res = fa.minimize(
        loss, np.zeros(4), jac=grad, options=dict(lr=0.05, batches=batches(10), gtol=0)
    )
    assert (res.status, res.success, res.nit, res.nfev) == (7, True, 800, 800)
    assert "exhausted" in res.message
    np.testing.assert_allclose(res.x, w_true, atol=0.02)

    res = fa.minimize(
        loss, np.zeros(4), jac=grad, options=dict(lr=0.01, batches=batches(5), maxiter=30, gtol=0)
    )
    assert (res.status, res.nit) == (1, 30)


@pytest.mark.parametrize("stop", ["batches", "callback"])
def test_a_gradient_that_is_the_iterate_itself(stop):
    # f = 0.5 |x|^2 - x.b with the gradient returned as a view of x itself where b = 0: the
    # result's jac is the gradient at the evaluated iterate, as with a copy, also when the
    # run stops between the evaluation and an update (the update writes another buffer)
    def pair(x, b, copy):
        g = x - b if b.any() else x
        return 0.5 * float(x @ x) - float(x @ b), (g.copy() if copy else g)

    def run(copy):
        opts = dict(lr=0.1, gtol=0.0, maxiter=50)
        kwargs = {}
        if stop == "batches":
            opts["batches"] = iter([np.zeros(3)] * 7)
            fun = lambda x, b: pair(x, b, copy)  # noqa: E731
        else:
            calls = iter(range(10**6))

            def callback(xk):
                if next(calls) == 6:
                    raise StopIteration

            fun = lambda x: pair(x, np.zeros(3), copy)  # noqa: E731
            kwargs["callback"] = callback
        return fa.minimize(fun, np.array([1.0, -2.0, 0.5]), jac=True, options=opts, **kwargs)

    ref, res = run(copy=True), run(copy=False)
    assert res.status == ref.status and res.nit == ref.nit == 7
    for name in ("x", "jac", "fun", "best_x", "best_fun", "gnorm"):
        np.testing.assert_array_equal(res[name], ref[name], err_msg=name)


@njit
def _refilled_f(x, buf, calls, bad):
    return 0.5 * np.sum((x - 1.0) * (x - 1.0) * (1.0 + np.arange(x.size)))


@njit
def _refilled_jac(x, buf, calls, bad):
    # fills and returns one buffer; its ``bad``-th call gives a NaN
    calls[0] += 1
    buf[:] = (x - 1.0) * (1.0 + np.arange(x.size))
    if calls[0] == bad:
        buf[0] = np.nan
    return buf


@njit
def _fresh_jac(x, buf, calls, bad):
    return _refilled_jac(x, buf, calls, bad).copy()


@pytest.mark.parametrize("path", ["python", "compiled", "minimize_njit", "batch"])
@pytest.mark.parametrize("bad", [2, 3, 4, 9])
def test_a_jac_that_refills_one_buffer(path, bad):
    # A NaN at evaluation ``bad`` sends the run back to the iterate before; its jac is the
    # gradient there, though the jac's next call overwrote the buffer it was returned in
    # (reported before: the NaN gradient itself). Evaluation 2 is the first where the reuse
    # can be seen, and the compiled loop's second chunk starts there.
    def run(jac):
        buf, calls = np.zeros(3), np.zeros(1, np.int64)
        args = (buf, calls, bad)
        opts = dict(lr=0.1, maxiter=20, gtol=0.0)
        if path == "minimize_njit":
            res = fa.minimize_njit(_refilled_f, jac, np.zeros(3), args, fa.njit_options(**opts))
            return dict(x=res.x, jac=res.jac, status=res.status, nit=res.nit)
        if path == "batch":  # (a vectorized objective returning the buffer as a (1, n) view)

            def fun(X):
                return np.array([_refilled_f(X[0], *args)])

            def grad(X):
                return jac(X[0], *args).reshape(1, -1)

            res = fa.minimize_batch(fun, np.zeros((1, 3)), jac=grad, options=opts)
            return {k: np.asarray(res[k])[0] for k in ("x", "jac", "status", "nit")}
        opts["compiled"] = path == "compiled"
        return fa.minimize(_refilled_f, np.zeros(3), args=args, jac=jac, options=opts)

    ref, res = run(_fresh_jac), run(_refilled_jac)
    assert res["status"] == ref["status"] == 5 and res["nit"] == ref["nit"] == bad - 2
    assert np.all(np.isfinite(ref["jac"]))
    for name in ("x", "jac"):
        np.testing.assert_array_equal(res[name], ref[name], err_msg=name)


@njit
def _row_of_2d_buffer(x, buf2d):
    buf2d[0, :] = 2.0 * (x - 1.0)
    return buf2d[0]  # (numba wraps it in a new array object, with a memory record of its own)


@pytest.mark.parametrize("kind", ["frombuffer", "njit view"])
def test_a_jac_that_refills_one_buffer_under_new_array_objects(kind):
    # the Python loop tells a reused buffer by its memory, not by the array objects: here a
    # new one wraps the same memory at every call (the reported jac was the NaN step's)
    mem = bytearray(8 * 3)
    buf2d = np.zeros((2, 3))

    def fun(x):
        return np.nan if x[0] > 0.5 else float(np.sum((x - 1.0) ** 2))

    def jac(x):
        if kind == "njit view":
            return _row_of_2d_buffer(x, buf2d)
        g = np.frombuffer(mem)
        g[:] = 2.0 * (x - 1.0)
        return g

    res = fa.minimize(fun, np.zeros(3), jac=jac, options=dict(lr=0.01, maxiter=2000))
    assert res.status == 4 and res.nit > 10
    np.testing.assert_array_equal(res.jac, 2.0 * (res.x - 1.0))


# -- bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bounds",
    [
        [(None, 0.5), (-1.0, None), (0.0, 2.0)],
        Bounds([-np.inf, -1.0, 0.0], [0.5, np.inf, 2.0]),
    ],
)
def test_bounds_never_violated(bounds):
    f, g = quad(C3)
    seen = []

    def fun(x):
        seen.append(x.copy())
        return f(x)

    x0 = np.array([3.0, 0.0, -5.0])  # outside: projected first
    res = sp_minimize(
        fun,
        x0,
        jac=g,
        bounds=bounds,
        method=fa.methods.adam,
        options=dict(lr=0.05, maxiter=3000, gtol=1e-8),
    )
    xs = np.array(seen)
    assert np.all(xs[:, 0] <= 0.5) and np.all(xs[:, 1] >= -1.0)
    assert np.all((xs[:, 2] >= 0) & (xs[:, 2] <= 2))
    assert res.status == 0, res.message  # the projected gradient vanishes at the solution
    np.testing.assert_allclose(res.x, [0.5, -1.0, 2.0], atol=1e-6)
    assert "projected" in res.message


# -- errors and warnings -------------------------------------------------------------------


def _never(x, *a):
    raise AssertionError("fun must not be called")


@pytest.mark.parametrize(
    "x0, exc, match",
    [
        (np.zeros((2, 2)), ValueError, "1-D"),
        (np.array([1 + 1j, 2]), TypeError, "real"),
        (np.array(["a", "b"]), TypeError, "real"),
        (np.array([np.nan, 1.0]), ValueError, "NaN"),
        ([], ValueError, "empty"),
    ],
)
def test_bad_x0_errors_before_evaluation(x0, exc, match):
    with pytest.raises(exc, match=match):
        fa.minimize(_never, x0, jac=_never)


@pytest.mark.parametrize(
    "bounds, match",
    [
        ([(0, 1)], "2 elements"),
        ([(0, 1), (2, 1)], "index 1"),
        (Bounds([0, 0, 0], [1, 1, 1]), "shapes"),
        ([(0, 1), 3], "pair"),
        ([(0, 1), ("a", 2)], r"bounds\[1\] must hold real numbers"),
        (Bounds(["a", "b"], [1, 1]), "Bounds.lb and Bounds.ub must hold real numbers"),
    ],
)
def test_bad_bounds_error_before_evaluation(bounds, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        fa.minimize(_never, np.zeros(2), jac=_never, bounds=bounds)
    assert info.type is (TypeError if "real numbers" in match else ValueError)


def test_jac_wrong_shape_errors_at_first_evaluation():
    with pytest.raises(ValueError, match=r"shape \(3,\).*expected \(2,\)"):
        fa.minimize(lambda x: 0.0, np.zeros(2), jac=lambda x: np.zeros(3))
    for wrong in (None, "1.0"):  # (named as what they are, not as an array of shape ())
        with pytest.raises(TypeError, match=r"jac must return an array of real numbers, got"):
            fa.minimize(lambda x: 0.0, np.zeros(2), jac=lambda x, w=wrong: w)
    with pytest.raises(TypeError, match="fun must return a real number, got '1.0'"):
        fa.minimize(lambda x: "1.0", np.zeros(2), jac=lambda x: x)  # (was taken as 1.0)
    with pytest.raises(ValueError, match="scalar"):
        fa.minimize(lambda x: x, np.zeros(2), jac=lambda x: x)
    with pytest.raises(TypeError, match=r"\(f, gradient\)"):
        fa.minimize(lambda x: 1.0, np.zeros(2), jac=True)


def test_bad_options_errors():
    f, g = quad(C3)
    with pytest.raises(ValueError, match="method"):
        fa.minimize(f, np.zeros(3), jac=g, method="sgd")
    with pytest.raises(ValueError, match="maximize"):
        fa.minimize(f, np.zeros(3), jac=g, options=dict(maximize=True))
    with pytest.raises(ValueError, match="beta1"):
        fa.minimize(f, np.zeros(3), jac=g, options=dict(betas=(1.0, 0.9)))
    with pytest.raises(ValueError, match="maxiter"):
        fa.minimize(f, np.zeros(3), jac=g, options=dict(maxiter=-1))
    with pytest.raises(ValueError, match="compiled"):
        fa.minimize(f, np.zeros(3), jac=g, options=dict(compiled=True))
    with pytest.raises(ValueError, match="convention"):
        fa.minimize(f, np.zeros(3), jac=g, method="rmsprop", options=dict(convention="x"))


def test_unknown_options_warn():
    f, g = quad(C3)
    with pytest.warns(OptimizeWarning, match="Unknown solver options: frobnicate"):
        fa.minimize(f, np.zeros(3), jac=g, options=dict(maxiter=2, frobnicate=1))
    with pytest.warns(OptimizeWarning, match="frobnicate") as record:
        sp_minimize(
            f, np.zeros(3), jac=g, method=fa.methods.adam, options=dict(maxiter=2, frobnicate=1)
        )
    assert record[0].filename == __file__


def test_scipy_constraints_error_and_hess_warning():
    f, g = quad(C3)
    cons = {"type": "eq", "fun": lambda x: x[0]}
    with pytest.raises(ValueError, match="constraints"):
        sp_minimize(f, np.zeros(3), jac=g, method=fa.methods.adam, constraints=cons)
    with pytest.warns(OptimizeWarning, match="hess"):
        res = sp_minimize(
            f,
            np.zeros(3),
            jac=g,
            method=fa.methods.adam,
            hess=lambda x: np.eye(3),
            options=dict(maxiter=3),
        )
    assert res.nit == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sp_minimize(
            f, np.zeros(3), jac=g, method=fa.methods.adam, constraints=(), options=dict(maxiter=3)
        )


# -- display ---------------------------------------------------------------------------------


def test_disp_table_and_progress_bar(capsys, monkeypatch):
    f, g = quad(C3)
    fa.minimize(f, np.zeros(3), jac=g, options=dict(lr=0.1, maxiter=40, disp=True, disp_every=10))
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["iter", "f(x)", "|g|_inf"]
    assert [line.split()[0] for line in out[1:6]] == ["0", "10", "20", "30", "40"]
    assert "Iterations: 40" in "\n".join(out)

    bars = []

    class FakeBar:
        def __init__(self, total, unit):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, k):
            self.n += k

        def write(self, line):
            print(line)

        def close(self):
            self.closed = True

    fake = types.ModuleType("tqdm.auto")
    fake.tqdm = FakeBar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake)
    fa.minimize(f, np.zeros(3), jac=g, options=dict(lr=0.1, maxiter=40, progress=True))
    assert bars[0].total == 40 and bars[0].n == 40 and bars[0].closed


# -- defects found by use: each run either completes or says what is wrong ------------------


@pytest.mark.parametrize("path", ["fast", "callback", "gtol"])
def test_lr_schedule_table_of_maxiter_rates(path):
    """A schedule given as a table of maxiter rates: called for the steps taken only,
    t = 1 .. nit (it was called at t = maxiter + 1, an IndexError that lost the run)."""
    f, g = quad(C3)
    rates = np.geomspace(0.1, 0.01, 40)
    called = []

    def lr(t):
        called.append(t)
        return rates[t - 1]

    opts = dict(lr=lr, maxiter=len(rates), gtol=0.0)
    kw = {}
    if path == "callback":
        kw["callback"] = lambda xk: None
    if path == "gtol":
        opts["gtol"] = 6.0  # stops before maxiter
    res = fa.minimize(f, np.zeros(3), jac=g, options=opts, **kw)
    assert called == list(range(1, res.nit + 1))
    if path == "gtol":
        assert res.status == 0 and 0 < res.nit < len(rates)
    else:
        assert res.status == 1 and res.nit == len(rates)
    x = np.zeros(3)
    opt = fa.Adam(x, lr=lambda t: rates[t - 1])
    for _ in range(res.nit):
        opt.step(g(x))
    np.testing.assert_array_equal(res.x, x)


def test_jac_any_array_like_is_converted_and_wrong_shapes_explained():
    """A column of a matrix (non-contiguous), a list, another dtype: converted to a
    contiguous array of x's dtype, the same run as with a plain array; the compiled step is
    never specialised for another layout. A wrong shape at any iteration is a ValueError
    naming jac (it was a numba TypingError after the first iteration)."""
    from fastadam.optimize import engine

    f, g = quad(C3)
    J = np.zeros((3, 4))

    def column(x):
        J[:, 2] = g(x)
        return J[:, 2]

    opts = dict(lr=0.05, maxiter=60, gtol=0.0)
    ref = fa.minimize(f, np.zeros(3), jac=g, options=opts)
    for jac in (column, lambda x: list(g(x)), lambda x: g(x).astype(np.float32)[::-1][::-1]):
        for kw in ({}, dict(callback=lambda xk: None)):
            res = fa.minimize(f, np.zeros(3), jac=jac, options=opts, **kw)
            if jac is column:
                np.testing.assert_array_equal(res.x, ref.x)
            else:
                np.testing.assert_allclose(res.x, ref.x, rtol=1e-6)
            assert res.jac.flags.c_contiguous
    no_arrays = (0,) * len(fa.algorithms.get("adam").arguments)
    advance = engine.engine("adam", engine.SERIAL, no_arrays, False).advance  # (ftol = 0)
    assert advance.signatures
    assert all(sig[2].layout == "C" for sig in advance.signatures), advance.signatures

    calls = {"n": 0}

    def later_2d(x):
        calls["n"] += 1
        return g(x).reshape(1, 3) if calls["n"] > 3 else g(x)

    for kw in ({}, dict(callback=lambda xk: None)):
        calls["n"] = 0
        with pytest.raises(ValueError, match=r"jac returned an array of shape \(1, 3\) at iter"):
            fa.minimize(f, np.zeros(3), jac=later_2d, options=opts, **kw)
    calls["n"] = 0

    def later_longer(x):
        calls["n"] += 1
        return np.zeros(4) if calls["n"] > 3 else g(x)

    with pytest.raises(ValueError, match=r"shape \(4,\) at iteration 3; expected \(3,\)"):
        fa.minimize(f, np.zeros(3), jac=later_longer, options=opts)
    # n = 1: a scalar derivative is a gradient of shape (1,)
    res = fa.minimize(
        lambda x: float(x[0] ** 2), np.ones(1), jac=lambda x: 2 * x[0], options=dict(lr=0.1)
    )
    assert res.x.shape == (1,) and abs(res.x[0]) < 1e-3


def test_fun_values_checked_at_every_iteration():
    """A complex objective is refused (it was cut to its real part, silently); an array
    returned after the first iteration names fun and the iteration."""
    with pytest.raises(TypeError, match="fun must return a real number"):
        fa.minimize(lambda x: np.complex128(1 + 1j), np.zeros(2), jac=lambda x: x)
    with pytest.raises(TypeError, match="fun must return a real number"):
        fa.minimize(lambda x: (1.0, x), np.zeros(2), jac=lambda x: x)
    calls = {"n": 0}

    def f(x):
        calls["n"] += 1
        return np.ones(2) if calls["n"] > 2 else 1.0

    for kw in ({}, dict(callback=lambda xk: None)):
        calls["n"] = 0
        with pytest.raises(ValueError, match=r"fun must return a scalar.*shape \(2,\) at iter"):
            fa.minimize(f, np.zeros(2), jac=lambda x: x - 1, **kw)
    from fractions import Fraction

    res = fa.minimize(lambda x: Fraction(1, 3), np.zeros(2), jac=lambda x: x)
    assert res.fun == 1 / 3


def test_float32_bounds_rounded_inward():
    """float32 bounds are rounded inward, so fun is never evaluated outside the float64
    box (0.3 rounded to nearest is 0.30000001, 1e-50 is 0); an interval holding no float32
    value is a ValueError."""
    lo, hi = 1e-50, 0.3
    seen = []

    def fun(x):
        seen.append(x.astype(np.float64))
        return float(np.sum((x - np.array([1.0, -1.0], np.float32)) ** 2))

    def jac(x):
        return 2 * (x - np.array([1.0, -1.0], np.float32))

    bounds = [(None, hi), (lo, None)]
    for jac_ in (jac, None, "3-point"):
        seen.clear()
        res = fa.minimize(
            fun, np.array([5.0, -5.0], np.float32), jac=jac_, bounds=bounds,
            options=dict(lr=0.05, maxiter=300),
        )  # fmt: skip
        xs = np.array(seen)
        assert xs[:, 0].max() <= hi and xs[:, 1].min() >= lo, (jac_, xs.max(0), xs.min(0))
        assert res.x.dtype == np.float32
        assert res.x[0] == np.nextafter(np.float32(hi), np.float32(0))
        assert res.x[1] == np.nextafter(np.float32(0), np.float32(1))
        assert res.status == 0, res.message
    with pytest.raises(ValueError, match=r"bounds\[1\] = \(0\.3, 0\.3\) holds no finite float32"):
        fa.minimize(fun, np.zeros(2, np.float32), jac=jac, bounds=[(None, None), (0.3, 0.3)])
    with pytest.raises(ValueError, match="no finite float32"):
        fa.minimize(fun, np.zeros(2, np.float32), jac=jac, bounds=[(1e39, None), (None, None)])
    with pytest.raises(ValueError, match="no finite float64"):
        fa.minimize(fun, np.zeros(2), jac=jac, bounds=[(np.inf, np.inf), (None, None)])
    # in float64 the bounds are kept as given, and a fixed variable is allowed
    res = fa.minimize(fun, np.zeros(2), jac=jac, bounds=[(0.3, 0.3), (None, None)])
    assert res.x[0] == 0.3


@pytest.mark.parametrize(
    "scheme, calls_per_gradient, accuracy",
    [(None, 1, 1e-6), ("2-point", 1, 1e-6), ("3-point", 2, 1e-9), ("cs", 1, 1e-13)],
)
def test_finite_difference_schemes(scheme, calls_per_gradient, accuracy):
    """jac=None / '2-point' / '3-point' / 'cs' are scipy's own schemes, every call counted
    in nfev (they all ran forward differences, and any string was accepted)."""
    from scipy.optimize._numdiff import approx_derivative

    a = np.array([1.0, 2.0, 3.0])

    def f(x):  # not quadratic, so that the schemes differ; complex-safe for 'cs'
        return np.sum(a * np.cosh(x - C3))

    def g(x):
        return a * np.sinh(x - C3)

    counted = {"n": 0}

    def fcount(x):
        counted["n"] += 1
        return f(x)

    res = fa.minimize(fcount, np.zeros(3), jac=scheme, options=dict(lr=0.05, maxiter=20))
    assert res.nit == 20
    assert res.nfev == counted["n"] == 21 * (1 + calls_per_gradient * 3)
    assert res.njev == 21
    err = np.abs(res.jac - g(res.x)).max()
    assert err < accuracy * np.abs(g(res.x)).max()
    np.testing.assert_array_equal(
        res.jac, approx_derivative(f, res.x, method=scheme or "2-point", f0=f(res.x))
    )


def test_finite_difference_options_and_errors():
    from scipy.optimize._numdiff import approx_derivative

    f, g = quad(C3)
    with pytest.raises(ValueError, match=r"jac must be .*'2-point', '3-point', 'cs'; got '3pt'"):
        fa.minimize(_never, np.zeros(3), jac="3pt")
    with pytest.raises(TypeError, match="jac must be"):
        fa.minimize(_never, np.zeros(3), jac=5)
    opts = dict(lr=0.05, maxiter=5)
    for name, kw in (("finite_diff_step", "abs_step"), ("finite_diff_rel_step", "rel_step")):
        res = fa.minimize(f, np.zeros(3), jac="3-point", options=dict(opts, **{name: 1e-3}))
        expect = approx_derivative(f, res.x, method="3-point", f0=f(res.x), **{kw: 1e-3})
        np.testing.assert_array_equal(res.jac, expect)
        with pytest.raises(ValueError, match=name):
            fa.minimize(_never, np.zeros(3), options={name: -1.0})
    with pytest.raises(ValueError, match="not both"):
        fa.minimize(
            _never, np.zeros(3), options=dict(finite_diff_step=1e-3, finite_diff_rel_step=1e-3)
        )
    # a fixed variable (lo == hi): no step fits, its component is 0 and the run goes on
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fa.minimize(
            f, np.zeros(3), bounds=[(0.5, 0.5), (None, None), (0, 2)],
            options=dict(lr=0.05, maxiter=5000, gtol=1e-6),
        )  # fmt: skip
    assert res.status == 0, res.message
    np.testing.assert_allclose(res.x, [0.5, -2.0, 2.0], atol=1e-5)
    assert res.jac[0] == 0.0


def test_keyboard_interrupt_before_the_first_iteration():
    """Ctrl-C during the first evaluation: x0 (projected) and what is known, and a message
    that makes sense (it said 'from iteration -1')."""
    f, g = quad(C3)

    def fun(x):
        raise KeyboardInterrupt

    for kw in ({}, dict(bounds=[(1.0, 2.0)] * 3), dict(callback=lambda xk: None)):
        try:
            res = fa.minimize(fun, np.zeros(3), jac=g, **kw)
        except KeyboardInterrupt:
            pytest.fail("the KeyboardInterrupt escaped: the run was lost")
        assert (res.status, res.success, res.nit, res.nfev) == (9, False, 0, 0)
        assert "-1" not in res.message and "before the first iteration" in res.message
        np.testing.assert_array_equal(res.x, 1.0 if kw.get("bounds") else 0.0)
        np.testing.assert_array_equal(res.best_x, res.x)
        assert np.isnan(res.fun) and res.jac is None
    res = fa.minimize(f, np.zeros(3), jac=g, options=dict(batches=iter([])))
    assert res.status == 7 and res.nit == 0 and "-1" not in res.message
    assert "empty" in res.message


def test_zero_dimensional_arrays_are_scalars():
    # hyperparameters given as 0-d arrays (numpy's scalars) run as the numbers they hold
    f, g = quad(C3)
    opts = dict(lr=0.05, betas=(0.8, 0.99), amsgrad=True, maxiter=30)
    ref = fa.minimize(f, np.zeros(3), jac=g, options=opts)
    zero_d = dict(opts, lr=np.array(0.05), betas=(np.array(0.8), 0.99), amsgrad=np.array(True))
    res = fa.minimize(f, np.zeros(3), jac=g, options=zero_d)
    np.testing.assert_array_equal(res.x, ref.x)
    assert fa.Adam(np.zeros(2), lr=np.array(0.1)).param_groups[0]["lr"] == 0.1
    with pytest.raises(TypeError, match=r"betas must be a pair"):  # (not "a scalar")
        fa.minimize(f, np.zeros(3), jac=g, options=dict(betas=(0.9, 0.99, 0.1)))
    with pytest.raises(ValueError, match=r"options\['lr'\] must be a scalar for one problem"):
        fa.minimize(f, np.zeros(3), jac=g, options=dict(lr=np.ones(3)))


def test_more_argument_errors():
    with pytest.raises(TypeError, match="options must be a dict"):
        fa.minimize(_never, np.zeros(2), jac=_never, options=[("lr", 0.1)])
    res = fa.minimize(lambda x: np.float64(np.inf), np.zeros(2), jac=lambda x: x)
    assert res.status == 4 and "The objective is inf" in res.message
