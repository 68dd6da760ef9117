"""fastadam.minimize_batch: each problem of a batch runs exactly as fastadam.minimize runs it
alone (bit for bit), on the vectorized Python path and on the compiled path; per-problem
arguments and hyperparameters; statuses per problem; errors before anything runs."""

import numpy as np
import pytest
from numba import njit

import fastadam as fa

B, N = 7, 3
RNG = np.random.default_rng(42)
CENTERS = RNG.uniform(-2, 2, (B, N))
WEIGHTS = np.linspace(1.0, 3.0, N)[None]  # shared: leading axis 1
# problem 5's objective becomes infinite once x[0] passes 0.5: status 4 (non-finite)
CENTERS[5, 0] = 1.5
LIMITS = np.full(B, np.inf)
LIMITS[5] = 0.5


# The objective of one problem, and the same arithmetic on the rows of a batch.
@njit
def f_one(x, c, w, limit, scale):
    if x[0] > limit:
        return np.inf
    s = 0.0
    for j in range(x.size):
        d = x[j] - c[j]
        s += w[j] * d * d
    return 0.5 * scale * s


@njit
def g_one(x, c, w, limit, scale):
    return scale * w * (x - c)


def f_rows(X, C, W, limits, scale):
    out = np.empty(X.shape[0])
    for k in range(X.shape[0]):
        out[k] = f_one(X[k], C[k], W[0], limits[k], scale)
    return out


def g_rows(X, C, W, limits, scale):
    return scale * W * (X - C)


def one(fun):
    """``fun`` of one problem as a plain Python function (the Python loop of minimize)."""

    def py(x, *args):
        return fun(x, *args)

    return py


ARGS = (CENTERS, WEIGHTS, LIMITS, 1.5)
OPTS = dict(lr=0.05, maxiter=400, gtol=1e-7)
FIELDS = ("x", "fun", "jac", "nit", "nfev", "njev", "status", "best_x", "best_fun", "gnorm")


def alone(i, x0, opts, compiled=False, method="adam", bounds=None):
    """Problem ``i`` run by fastadam.minimize."""
    args = (CENTERS[i], WEIGHTS[0], LIMITS[i], 1.5)
    f, g = (f_one, g_one) if compiled else (one(f_one), one(g_one))
    return fa.minimize(f, x0[i], args=args, jac=g, method=method, bounds=bounds, options=opts)


def assert_row_equal(res, i, ref):
    for name in FIELDS:
        a, b = np.asarray(res[name][i]), np.asarray(ref[name])
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=f"{name} of problem {i}")
    assert res.success[i] == ref.success


@pytest.mark.parametrize("compiled", [False, True], ids=["vectorized", "compiled"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_problem_as_minimize_alone(compiled, dtype):
    x0 = np.zeros((B, N), dtype=dtype)
    x0[3] = CENTERS[3] + 1e-9  # converges at once
    opts = dict(OPTS, maxiter=60 if dtype == np.float32 else 400)
    f, g = (f_one, g_one) if compiled else (f_rows, g_rows)
    res = fa.minimize_batch(f, x0, args=ARGS, jac=g, options=opts)
    assert res.compiled is compiled
    assert res.x.shape == (B, N) and res.x.dtype == dtype
    for i in range(B):
        assert_row_equal(res, i, alone(i, x0, opts))
    assert res.status[5] == fa.optimize.Status.NONFINITE_FUN
    assert "problems succeeded" in res.message and 4 in res.messages
    assert "problems succeeded" in repr(res)  # (scipy's repr formats dicts of str keys)


def test_per_problem_hyperparameters_and_bounds():
    x0 = np.zeros((B, N))
    lr = np.linspace(0.01, 0.1, B)
    beta1 = np.linspace(0.5, 0.95, B)
    bounds = [(-1.0, 1.0), (None, 0.5), (-0.3, None)]
    for f, g in ((f_rows, g_rows), (f_one, g_one)):
        res = fa.minimize_batch(
            f, x0, args=ARGS, jac=g, bounds=bounds,
            options=dict(OPTS, lr=lr, betas=(beta1, 0.99), amsgrad=True),
        )  # fmt: skip
        for i in range(B):
            opts = dict(OPTS, lr=lr[i], betas=(beta1[i], 0.99), amsgrad=True)
            assert_row_equal(res, i, alone(i, x0, opts, bounds=bounds))
        assert np.all(res.x >= [-1, -np.inf, -0.3]) and np.all(res.x <= [1, 0.5, np.inf])


@pytest.mark.parametrize("compiled", [False, True], ids=["vectorized", "compiled"])
def test_problems_whose_best_iterates_lag_differently(compiled):
    # Rates large enough to overshoot, different per problem: each problem's best iterate
    # falls behind at other iterations, so the problems' iterates sit in different rows of
    # the iterate buffers (the vectorized path gathers them for fun)
    x0 = np.zeros((B, N))
    lr = np.array([0.05, 1.0, 2.0, 3.0, 0.5, 2.5, 1.5])
    f, g = (f_one, g_one) if compiled else (f_rows, g_rows)
    opts = dict(OPTS, maxiter=9)
    res = fa.minimize_batch(f, x0, args=ARGS, jac=g, options=dict(opts, lr=lr))
    assert len(set(res.nit - res.best_nit)) > 2
    for i in range(B):
        assert_row_equal(res, i, alone(i, x0, dict(opts, lr=lr[i])))


@njit
def fg_one(x, c, w, limit, scale):  # jac=True
    return f_one(x, c, w, limit, scale), g_one(x, c, w, limit, scale)


@njit
def g_into(x, g, c, w, limit, scale):  # the gradient written into g
    g[:] = g_one(x, c, w, limit, scale)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # (inf - inf: problem 5)
@pytest.mark.parametrize(
    "why", ["callback", "schedule", "compiled=False", "finite differences", "jac=True",
            "jac writes", "jac returns a list"],
)  # fmt: skip
def test_functions_of_one_problem_where_the_python_loop_runs(why):
    # @njit functions of one problem run compiled; where the compiled loop cannot run, the
    # Python loop calls them one problem at a time, with each problem's arguments (they were
    # called with the whole batch: wrong numbers, or numba errors)
    x0 = np.zeros((B, N))
    x0[3] = CENTERS[3] + 1e-9
    opts, kwargs, jac = dict(OPTS, maxiter=40), {}, g_one
    if why == "callback":
        kwargs["callback"] = lambda X: None
    elif why == "schedule":
        opts["lr"] = lambda t: 0.05
    elif why == "compiled=False":
        opts["compiled"] = False
    elif why == "finite differences":
        jac = None
    elif why == "jac writes":
        jac = g_into
        kwargs["callback"] = lambda X: None
    elif why == "jac returns a list":
        jac = njit(lambda x, c, w, limit, scale: [v for v in g_one(x, c, w, limit, scale)])
    fun = f_one
    if why == "jac=True":
        fun, jac = fg_one, True
        kwargs["callback"] = lambda X: None
    res = fa.minimize_batch(fun, x0, args=ARGS, jac=jac, options=opts, **kwargs)
    assert not res.compiled
    for i in range(B):
        args = (CENTERS[i], WEIGHTS[0], LIMITS[i], 1.5)
        ref = fa.minimize(one(f_one), x0[i], args=args, jac=None if jac is None else one(g_one),
                          options=dict(opts, compiled=False))  # fmt: skip
        assert_row_equal(res, i, ref)


@njit
def _f_tuple(x, pair):
    return np.sum((x - pair[1]) ** 2)


@njit
def _g_tuple(x, pair):
    return 2.0 * (x - pair[1])


def test_one_problem_functions_get_tuples_whole():
    # (a tuple of arrays is shared as it is, as minimize gives it: it was indexed, and every
    # problem converged to the tuple's first array)
    pair = (np.array([3.0, 3.0]), np.array([1.0, -1.0]))
    opts = dict(lr=0.1, maxiter=300, gtol=1e-8)
    res = fa.minimize_batch(_f_tuple, np.zeros((2, 2)), args=(pair,), jac=_g_tuple,
                            callback=lambda X: None, options=opts)  # fmt: skip
    ref = fa.minimize(_f_tuple, np.zeros(2), args=(pair,), jac=_g_tuple, options=opts)
    for i in range(2):
        np.testing.assert_array_equal(res.x[i], ref.x)
    np.testing.assert_allclose(ref.x, [1.0, -1.0], atol=1e-6)


def test_a_vectorized_njit_function_is_refused_by_name():
    @njit
    def rows(X):
        return X[:, 0] ** 2

    with pytest.raises(TypeError, match=r"@njit fun with one problem's x, of shape \(n,\)"):
        fa.minimize_batch(rows, np.zeros((B, N)), callback=lambda X: None)


def test_a_zero_dimensional_argument_in_the_parallel_loop():
    # (numba's parallel loop over the problems took it for a float, and the loop compiled for
    # the array did not match: a ValueError from numba; it is passed as that float there)
    x0 = np.zeros((B, N))
    ref = fa.minimize_batch(f_one, x0, args=ARGS, jac=g_one, options=OPTS)
    res = fa.minimize_batch(f_one, x0, args=(*ARGS[:3], np.array(1.5)), jac=g_one, options=OPTS)
    assert res.compiled
    for name in FIELDS:
        np.testing.assert_array_equal(res[name], ref[name], err_msg=name)


@pytest.mark.parametrize("method", ["rmsprop", "nadam", "adamw"])
def test_every_method(method):
    x0 = np.zeros((B, N))
    for f, g in ((f_rows, g_rows), (f_one, g_one)):
        res = fa.minimize_batch(f, x0, args=ARGS, jac=g, method=method, options=OPTS)
        for i in (0, 5, 6):
            assert_row_equal(res, i, alone(i, x0, OPTS, method=method))


def test_minimize_nadam_is_the_nadam_optimizer():
    """minimize's NAdam iterates are fa.NAdam's steps (its carried momentum product)."""
    x0 = np.zeros(N)
    args = (CENTERS[0], WEIGHTS[0], np.inf, 1.0)
    res = fa.minimize(one(f_one), x0, args=args, jac=one(g_one), method="nadam",
                      options=dict(lr=0.02, maxiter=50, gtol=0))  # fmt: skip
    x = x0.copy()
    opt = fa.NAdam(x, lr=0.02)
    for _ in range(res.nit):
        opt.step(g_one(x, *args))
    np.testing.assert_array_equal(res.x, x)


def test_finite_differences_per_problem():
    x0 = np.zeros((3, N))
    args = (CENTERS[:3], WEIGHTS, LIMITS[:3], 1.5)
    opts = dict(lr=0.05, maxiter=30, gtol=0)
    for jac in (None, "3-point"):
        res = fa.minimize_batch(f_rows, x0, args=args, jac=jac, options=opts)
        for i in range(3):
            ref = fa.minimize(
                one(f_one), x0[i], args=(CENTERS[i], WEIGHTS[0], LIMITS[i], 1.5), jac=jac,
                options=opts,
            )  # fmt: skip
            np.testing.assert_array_equal(res.x[i], ref.x)
            assert res.nfev[i] == ref.nfev


def test_callback_sees_the_batch_and_stops_it():
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result)
        if intermediate_result.nit.max() >= 5:
            raise StopIteration

    x0 = np.zeros((B, N))
    x0[3] = CENTERS[3]  # stops at x0 (gtol)
    res = fa.minimize_batch(f_rows, x0, args=ARGS, jac=g_rows, options=OPTS, callback=callback)
    assert seen[0].x.shape == (B, N) and seen[0].running.sum() == B - 1
    assert res.status[3] == 0 and res.nit[3] == 0
    others = np.arange(B) != 3
    assert np.all(res.status[others] == 8) and np.all(res.nit[others] == 5)
    np.testing.assert_array_equal(res.x[0], alone(0, x0, dict(OPTS, maxiter=5)).x)
    assert np.all(np.isfinite(res.jac))


def test_track_best_off():
    x0 = np.zeros((B, N))
    on = fa.minimize_batch(f_rows, x0, args=ARGS, jac=g_rows, options=OPTS)
    opts = dict(OPTS, track_best=False)
    off = fa.minimize_batch(f_rows, x0, args=ARGS, jac=g_rows, options=opts)
    assert off.best_x is None
    np.testing.assert_array_equal(on.x, off.x)
    np.testing.assert_array_equal(on.best_fun, off.best_fun)
    single = fa.minimize(one(f_one), x0[0], args=(CENTERS[0], WEIGHTS[0], np.inf, 1.5),
                         jac=one(g_one), options=dict(OPTS, track_best=False))  # fmt: skip
    assert single.best_x is None and single.x.shape == (N,)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(x0=np.zeros(3)), ValueError, r"2-D \(problems, variables\)"),
        (dict(x0=np.zeros((0, 2))), ValueError, r"at least one problem and one variable"),
        (dict(args=(np.zeros((2, N)),)), ValueError, r"args\[0\] has shape \(2, 3\)"),
        (dict(options=dict(lr=np.ones(3))), ValueError, r"options\['lr'\].*shape \(7,\)"),
        (dict(options=dict(lr=np.r_[0.1, -1, np.ones(5)])), ValueError, r"lr'\]\[1\]"),
        (dict(options=dict(eps=np.zeros(B))), ValueError, "eps=0"),
        (dict(options=dict(amsgrad=np.ones(B, bool))), TypeError, "amsgrad"),
        (dict(options=dict(lr=["a"] * B)), TypeError, "real number"),
    ],
)
def test_errors_before_anything_runs(kwargs, exc, match):
    calls = []

    def fun(X, *args):
        calls.append(1)
        return np.zeros(X.shape[0])

    kw = dict(x0=np.zeros((B, N)), jac=lambda X, *a: np.zeros_like(X))
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        fa.minimize_batch(fun, **kw)
    assert not calls


def test_vectorized_fun_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"fun returned shape \(\) at x0; expected \(7,\)"):
        fa.minimize_batch(lambda X: 0.0, np.zeros((B, N)), jac=lambda X: X)
    with pytest.raises(ValueError, match=r"jac returned an array of shape \(7, 2\)"):
        fa.minimize_batch(lambda X: np.zeros(B), np.zeros((B, N)), jac=lambda X: X[:, :2])


def test_minimize_refuses_per_problem_hyperparameters():
    with pytest.raises(ValueError, match="minimize_batch"):
        fa.minimize(lambda x: 0.0, np.zeros(2), jac=lambda x: x, options=dict(lr=np.ones(2)))
