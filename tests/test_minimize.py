"""fastadam.minimize and fastadam.methods: convergence, statuses, bounds, batches, errors."""

import sys
import types
import warnings

import numpy as np
import pytest
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
    assert res.nfev >= 31 * 4  # f itself plus n + 1 calls per finite-difference gradient
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
    ],
)
def test_bad_bounds_error_before_evaluation(bounds, match):
    with pytest.raises(ValueError, match=match):
        fa.minimize(_never, np.zeros(2), jac=_never, bounds=bounds)


def test_jac_wrong_shape_errors_at_first_evaluation():
    with pytest.raises(ValueError, match=r"shape \(3,\).*expected \(2,\)"):
        fa.minimize(lambda x: 0.0, np.zeros(2), jac=lambda x: np.zeros(3))
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
