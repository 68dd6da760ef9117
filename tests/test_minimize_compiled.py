"""The compiled path of fastadam.minimize and fastadam.minimize_njit."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit, prange

import fastadam as fa
from fastadam.optimize import compiled as _compiled
from fastadam.optimize import engine


@njit(cache=True)
def rosen_nb(x):
    s = 0.0
    for i in range(x.size - 1):
        s += 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


@njit(cache=True)
def rosen_grad_nb(x):
    g = np.zeros_like(x)
    for i in range(x.size - 1):
        d = x[i + 1] - x[i] ** 2
        g[i] += -400.0 * x[i] * d - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * d
    return g


@njit(cache=True)
def rosen_both_nb(x):
    return rosen_nb(x), rosen_grad_nb(x)


@njit(cache=True)
def shifted(x, c, scale):
    return 0.5 * scale * np.sum((x - c) ** 2)


@njit(cache=True)
def shifted_grad(x, c, scale):
    return scale * (x - c)


@njit(cache=True)
def blows_up(x, c, scale):
    if x[0] > 0.5:
        return np.inf
    return 0.5 * scale * np.sum((x - c) ** 2)


@njit(cache=True)
def wrong_size(x, c, scale):
    return np.zeros(x.size + 1)


OPTS = dict(lr=1e-2, maxiter=3000, gtol=1e-6)


def test_compiled_path_is_taken_and_agrees_with_python_path():
    x0 = np.zeros(6)
    rc = fa.minimize(rosen_nb, x0, jac=rosen_grad_nb, options=OPTS)
    rp = fa.minimize(rosen_nb, x0, jac=rosen_grad_nb, options=dict(OPTS, compiled=False))
    assert rc.compiled and not rp.compiled
    assert rc.compile_time >= 0
    assert (rc.status, rc.nit, rc.nfev, rc.njev) == (rp.status, rp.nit, rp.nfev, rp.njev)
    np.testing.assert_allclose(rc.x, rp.x, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rc.jac, rp.jac, rtol=1e-10, atol=1e-15)
    assert rc.fun == pytest.approx(rp.fun, rel=1e-10, abs=1e-300)
    assert rc.message == rp.message
    np.testing.assert_allclose(rc.best_x, rp.best_x, rtol=1e-12)


@pytest.mark.parametrize("compiled", [True, False])
def test_without_ftol_and_xtol_the_window_tests_are_left_out(compiled):
    """With ftol = xtol = 0 (the defaults) the iteration is compiled without the window
    tests, which cannot fire: the results are those of the iteration with them (forced
    here by an ftol that never fires), bitwise, for one problem and a batch."""
    from fastadam.optimize import options

    x0 = np.array([[-1.2, 1.0, 0.3], [0.5, -0.5, 2.0]])
    assert not engine.windowed(options.resolve("adam", {}, None).controls)
    assert engine.windowed(options.resolve("adam", dict(ftol=1e-300), None).controls)
    f, jac = (rosen_nb, rosen_grad_nb) if compiled else (_rosen_rows, _rosen_rows_grad)
    opts = dict(lr=1e-2, maxiter=200, compiled=compiled)
    plain = fa.minimize_batch(f, x0, jac=jac, options=opts)
    forced = fa.minimize_batch(f, x0, jac=jac, options=dict(opts, ftol=1e-300))
    assert plain.compiled == compiled and np.all(forced.status == 1)
    for k in ("x", "fun", "jac", "nit", "nfev", "status", "best_x", "best_fun"):
        np.testing.assert_array_equal(plain[k], forced[k], err_msg=k)
    one = fa.minimize(rosen_nb, x0[0], jac=rosen_grad_nb, options=dict(maxiter=100))
    one_forced = fa.minimize(rosen_nb, x0[0], jac=rosen_grad_nb,
                             options=dict(maxiter=100, ftol=1e-300))  # fmt: skip
    np.testing.assert_array_equal(one.x, one_forced.x)


def _rosen_rows(X):
    return np.array([rosen_nb(x) for x in X])


def _rosen_rows_grad(X):
    return np.array([rosen_grad_nb(x) for x in X])


def test_compiled_jac_true_args_and_bounds():
    c = np.array([1.0, -2.0, 3.0])
    bounds = [(None, 0.5), (-1.0, None), (0.0, 2.0)]
    opts = dict(lr=0.05, maxiter=3000, gtol=1e-8)
    rc = fa.minimize(
        shifted, np.zeros(3), args=(c, 2.0), jac=shifted_grad, bounds=bounds, options=opts
    )
    rp = fa.minimize(
        shifted,
        np.zeros(3),
        args=(c, 2.0),
        jac=shifted_grad,
        bounds=bounds,
        options=dict(opts, compiled=False),
    )
    assert rc.compiled and rc.status == 0
    np.testing.assert_allclose(rc.x, [0.5, -1.0, 2.0], atol=1e-8)
    np.testing.assert_array_equal(rc.x, rp.x)
    rb = fa.minimize(rosen_both_nb, np.zeros(3), jac=True, options=dict(lr=1e-2, maxiter=200))
    rs = fa.minimize(rosen_nb, np.zeros(3), jac=rosen_grad_nb, options=dict(lr=1e-2, maxiter=200))
    assert rb.compiled and rb.status == 1 and rb.nfev == 201
    np.testing.assert_array_equal(rb.x, rs.x)


def test_compiled_nonfinite_and_rmsprop_agree_with_python():
    c = np.array([1.0, -2.0, 3.0])
    for method in ("adam", "rmsprop"):
        kw = dict(args=(c, 1.0), jac=shifted_grad, method=method, options=dict(lr=0.05))
        rc = fa.minimize(blows_up, np.zeros(3), **kw)
        rp = fa.minimize(blows_up, np.zeros(3), **dict(kw, options=dict(lr=0.05, compiled=False)))
        assert rc.compiled and rc.status == rp.status == 4
        assert rc.nit == rp.nit and rc.message == rp.message
        np.testing.assert_array_equal(rc.x, rp.x)
        np.testing.assert_array_equal(rc.jac, rp.jac)
        assert np.all(rc.x <= 0.5)


def test_compiled_maxtime_disp_and_bad_jac(capsys):
    c = np.zeros(3)
    res = fa.minimize(
        shifted,
        np.ones(3),
        args=(c, 1.0),
        jac=shifted_grad,
        options=dict(lr=1e-9, maxiter=10**12, gtol=0, maxtime=0.2),
    )
    assert res.compiled and res.status == 6 and res.nit > 1000
    res = fa.minimize(
        shifted,
        np.ones(3),
        args=(c, 1.0),
        jac=shifted_grad,
        options=dict(lr=1e-3, maxiter=30, disp=True, disp_every=10),
    )
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[0] for r in rows[1:5]] == ["0", "10", "20", "30"]
    with pytest.raises(ValueError, match="size"):
        fa.minimize(shifted, np.ones(3), args=(c, 1.0), jac=wrong_size)


@njit
def user_code(x0, options):
    """A user's compiled function that calls the compiled minimizer."""
    res = fa.minimize_njit(rosen_nb, rosen_grad_nb, x0, (), options)
    return res.x, res.nit, res.status, res.fun


def test_minimize_njit_from_user_njit_code():
    options = fa.njit_options("adam", **OPTS)
    x, nit, status, fun = user_code(np.zeros(4), options)
    ref = fa.minimize(rosen_nb, np.zeros(4), jac=rosen_grad_nb, options=OPTS)
    assert (nit, status) == (ref.nit, ref.status) == (nit, 0)
    np.testing.assert_allclose(x, ref.x, rtol=1e-12)
    res = fa.minimize_njit(rosen_nb, rosen_grad_nb, np.zeros(4), (), options)  # from Python
    assert isinstance(res, fa.NjitResult) and res.success and res.nit == nit
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-12)


@pytest.mark.parametrize("track_best", [True, False])
def test_minimize_njit_result_arrays_are_its_own(track_best):
    # x and best_x come from the run's iterate buffers: each is a copy of its own, also
    # where best_x is x (best-iterate tracking off)
    options = fa.njit_options("adam", **dict(OPTS, maxiter=20, track_best=track_best))
    res = fa.minimize_njit(rosen_nb, rosen_grad_nb, np.zeros(4), (), options)
    assert not np.shares_memory(res.x, res.best_x)
    assert not np.shares_memory(res.x, res.jac)
    np.testing.assert_array_equal(res.best_x, res.x)  # (a descent: the last is the best)


def test_minimize_njit_checks_its_arguments_from_python():
    opts = fa.njit_options("adam", **dict(OPTS, maxiter=20))
    ref = fa.minimize_njit(rosen_nb, rosen_grad_nb, np.zeros(4), (), opts)
    res = fa.minimize_njit(rosen_nb, rosen_grad_nb, np.zeros(4, np.int64), (), opts)
    np.testing.assert_array_equal(res.x, ref.x)  # integers become float64, as in minimize
    cases = [
        (dict(x0=np.zeros((1, 4))), ValueError, "x0 must be 1-D"),
        (dict(x0=np.r_[np.nan, 0, 0, 0]), ValueError, "x0 contains NaN"),
        (dict(options=dict(maxiter=5)), TypeError, r"options must come from .*njit_options"),
        (dict(fun=lambda x: 0.0), TypeError, "fun must be a numba @njit function"),
        (dict(jac=lambda x: x), TypeError, "jac must be a numba @njit function or None"),
        (dict(fun=njit(lambda x: x * x)), TypeError, "fun must return a real number"),
        (dict(args=(1.0,)), TypeError, r"fun \(a numba function\) does not compile"),
    ]
    for change, exc, match in cases:
        kw = dict(fun=rosen_nb, jac=rosen_grad_nb, x0=np.zeros(4), args=(), options=opts)
        kw.update(change)
        with pytest.raises(exc, match=match):
            fa.minimize_njit(**kw)
    with pytest.raises(ValueError, match=r"\['device'\]: not options of minimize_njit"):
        fa.njit_options("adam", device="cuda")


@njit("float64(float64[:])")
def _f_signed(x):
    return np.sum((x - 1.5) ** 2)


@njit("float64[:](float64[:])")
def _g_signed(x):
    return 2.0 * (x - 1.5)


@njit
def _counted(x, calls):
    calls[()] += 1  # (a 0-d array as a mutable cell, a numba idiom)
    return np.sum((x - 1.5) ** 2)


@njit
def _counted_grad(x, calls):
    return 2.0 * (x - 1.5)


@njit
def _njit_starts(starts, options):
    status = np.empty(len(starts), np.int64)
    for i in range(len(starts)):
        status[i] = fa.minimize_njit(_f_signed, _g_signed, starts[i], (), options).status
    return status


def test_minimize_njit_and_compiled_paths_keep_what_numba_takes():
    opts = dict(lr=0.1, maxiter=30, gtol=0.0)
    # functions compiled for explicit signatures only (numba's dispatch converts to them)
    res = fa.minimize_njit(_f_signed, _g_signed, np.zeros(2), (), fa.njit_options(**opts))
    ref = fa.minimize(_f_signed.py_func, np.zeros(2), jac=_g_signed.py_func, options=opts)
    np.testing.assert_array_equal(res.x, ref.x)
    # from compiled code a non-finite start is status 4, not an exception ending the loop
    starts = np.array([[0.0, 0.0], [np.nan, 0.0], [1.0, 2.0]])
    assert _njit_starts(starts, fa.njit_options(**opts)).tolist() == [1, 4, 1]
    # a 0-d array is passed as it is where the problems do not run in a parallel loop
    calls = np.zeros((), np.int64)
    res = fa.minimize(_counted, np.zeros(2), args=(calls,), jac=_counted_grad, options=opts)
    assert res.compiled and int(calls) == res.nfev == 31


def test_njit_options_errors():
    with pytest.raises(ValueError, match="Python loop"):
        fa.njit_options("adam", batches=[1, 2])
    with pytest.raises(TypeError, match="unknown"):
        fa.njit_options("adam", frobnicate=1)
    with pytest.raises(ValueError, match="schedule"):
        fa.njit_options("adam", lr=lambda t: 0.1)
    opts = fa.njit_options("rmsprop", bounds=[(0, 1), (None, 2)], momentum=0.9)
    assert opts.lo.shape == (2,)


def test_compiled_loop_is_cached_on_disk(tmp_path):
    """A second process loads the compiled loop from the cache instead of compiling it."""
    script = textwrap.dedent(
        """
        import numpy as np
        from numba import njit
        import fastadam as fa
        from fastadam.optimize import compiled, engine
        loop = compiled.loops("adam", engine.SERIAL, (0,) * 12, False)[0]  # (ftol = 0)

        @njit
        def f(x):
            return 0.5 * np.sum(x * x) + 0.25 * np.sum(x)

        @njit
        def g(x):
            return x + 0.25

        res = fa.minimize(f, np.ones(3), jac=g, options=dict(maxiter=5))
        assert res.compiled
        print(sum(loop.stats.cache_hits.values()), sum(loop.stats.cache_misses.values()))
        """
    )
    path = tmp_path / "cached_loop.py"
    path.write_text(script)
    env = dict(os.environ)
    outs = []
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=300
        )
        assert out.returncode == 0, out.stderr
        outs.append(tuple(int(v) for v in out.stdout.split()))
    assert outs[1] == (1, 0)  # hit, no compilation
    assert _compiled.loops("adam", engine.SERIAL, (0,) * 12)[0]._cache is not None


def test_compiled_keyboard_interrupt_between_chunks(monkeypatch):
    real = _compiled.specialize

    def specialize(*a):
        entry, t = real(*a)
        calls = {"n": 0}

        def interrupted(*b):
            calls["n"] += 1
            out = entry(*b)
            if calls["n"] == 2:  # Ctrl-C during the first chunk: raised when it returns
                raise KeyboardInterrupt
            return out

        return interrupted, t

    monkeypatch.setattr(_compiled, "specialize", specialize)
    res = fa.minimize(rosen_nb, np.zeros(3), jac=rosen_grad_nb, options=dict(maxiter=10**6))
    assert res.compiled and res.status == 9 and res.nit == 100  # the first chunk's steps
    assert res.fun == pytest.approx(rosen_nb(res.x))
    np.testing.assert_allclose(res.jac, rosen_grad_nb(res.x))


@njit("float64(float64[:])")
def explicit_sig(x):
    return np.sum(x * x)


@njit("float64[:](float64[:])")
def explicit_sig_grad(x):
    return 2.0 * x


def test_explicit_signatures_use_a_path_that_works():
    res = fa.minimize(explicit_sig, np.ones(3), jac=explicit_sig_grad, options=dict(lr=0.1))
    assert res.success
    np.testing.assert_allclose(res.x, 0, atol=1e-5)


@njit(cache=True)
def quad32(x):
    return np.sum((x - 1.0) ** 2)


@njit(cache=True)
def quad32_grad64(x):  # float64 gradient whatever x's dtype
    return 2.0 * (x.astype(np.float64) - 1.0)


@njit(cache=True)
def quad32_grad32(x):
    return (2.0 * (x.astype(np.float64) - 1.0)).astype(np.float32)


@njit(cache=True)
def quad_grad_column(x):  # a non-contiguous view
    J = np.zeros((x.size, 3), dtype=x.dtype)
    J[:, 1] = 2.0 * (x - 1.0)
    return J[:, 1]


@njit(cache=True)
def quad_grad_2d(x):
    return (2.0 * (x - 1.0)).reshape(1, -1)


@njit(cache=True)
def quad_both64(x):
    return np.sum((x - 1.0) ** 2), 2.0 * (x.astype(np.float64) - 1.0)


def test_compiled_float32_x0_with_float64_jac():
    """float32 x0 and an @njit jac returning float64: the compiled loop converts the gradient
    to float32 (it raised a numba TypingError), giving the Python path's iterates bit for bit
    and a float32 jac's result."""
    x0 = np.linspace(-1, 2, 7).astype(np.float32)
    opts = dict(lr=0.01, maxiter=300, gtol=0.0)
    rc = fa.minimize(quad32, x0, jac=quad32_grad64, options=dict(opts, compiled=True))
    rp = fa.minimize(quad32, x0, jac=quad32_grad64, options=dict(opts, compiled=False))
    r32 = fa.minimize(quad32, x0, jac=quad32_grad32, options=opts)
    assert rc.compiled and not rp.compiled and r32.compiled
    assert rc.x.dtype == rc.jac.dtype == np.float32
    np.testing.assert_array_equal(rc.x, rp.x)
    np.testing.assert_array_equal(rc.jac, rp.jac)
    np.testing.assert_array_equal(rc.x, r32.x)
    rb = fa.minimize(quad_both64, x0, jac=True, options=dict(opts, compiled=True))
    np.testing.assert_array_equal(rb.x, rc.x)
    # float64 x0 with a float32 jac: converted up, as on the Python path
    x64 = x0.astype(np.float64)
    rc = fa.minimize(quad32, x64, jac=quad32_grad32, options=dict(opts, compiled=True))
    rp = fa.minimize(quad32, x64, jac=quad32_grad32, options=dict(opts, compiled=False))
    assert rc.x.dtype == np.float64
    np.testing.assert_array_equal(rc.x, rp.x)
    # a non-contiguous gradient
    rc = fa.minimize(quad32, x64, jac=quad_grad_column, options=dict(opts, compiled=True))
    rp = fa.minimize(quad32, x64, jac=quad32_grad64, options=opts)
    np.testing.assert_array_equal(rc.x, rp.x)
    # from user code
    res = fa.minimize_njit(quad32, quad32_grad64, x0, (), fa.njit_options(**opts))
    np.testing.assert_array_equal(res.x, r32.x)


def test_compiled_wrong_returns_are_explained():
    """A 2-D gradient or an array objective: the Python loop's clear error (automatic), or a
    TypeError naming jac / fun (compiled=True); no numba traceback."""
    with pytest.raises(ValueError, match=r"jac returned an array of shape \(1, 3\)"):
        fa.minimize(quad32, np.zeros(3), jac=quad_grad_2d)
    with pytest.raises(TypeError, match="jac must return a 1-D array of real numbers"):
        fa.minimize(quad32, np.zeros(3), jac=quad_grad_2d, options=dict(compiled=True))
    with pytest.raises(ValueError, match="fun must return a scalar"):
        fa.minimize(quad_grad_column, np.zeros(3), jac=quad_grad_column)
    with pytest.raises(TypeError, match="fun must return a real number"):
        fa.minimize(
            quad_grad_column, np.zeros(3), jac=quad_grad_column, options=dict(compiled=True)
        )
    with pytest.raises(TypeError, match=r"with jac=True, fun must return \(f, gradient\)"):
        fa.minimize(quad32, np.zeros(3), jac=True, options=dict(compiled=True))


def test_minimize_njit_float32_bounds_rounded_inward():
    bounds = [(None, 0.3), (-5.0, 0.1)]  # float32(0.3) > 0.3, float32(0.1) > 0.1
    opts = fa.njit_options("adam", bounds=bounds, lr=0.05, maxiter=500)
    res = fa.minimize_njit(quad32, quad32_grad64, np.array([5, -5], np.float32), (), opts)
    assert res.x[0] == np.nextafter(np.float32(0.3), np.float32(0)) and res.x[0] <= 0.3
    assert res.x[1] == np.nextafter(np.float32(0.1), np.float32(0)) and res.x[1] <= 0.1
    rc = fa.minimize(
        quad32, np.array([5, -5], np.float32), jac=quad32_grad64, bounds=bounds,
        options=dict(lr=0.05, maxiter=500),
    )  # fmt: skip
    assert rc.compiled
    np.testing.assert_array_equal(rc.x, res.x)
    opts = fa.njit_options("adam", bounds=[(0.3, 0.3)])
    with pytest.raises(ValueError, match="no finite value"):
        fa.minimize_njit(quad32, quad32_grad64, np.zeros(1, np.float32), (), opts)


def test_compiled_keyboard_interrupt_at_the_first_evaluation(monkeypatch):
    def specialize(*a):
        def interrupted(*b):
            raise KeyboardInterrupt

        return interrupted, 0.0

    monkeypatch.setattr(_compiled, "specialize", specialize)
    try:
        res = fa.minimize(rosen_nb, np.zeros(3), jac=rosen_grad_nb)
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped: the run was lost")
    assert res.compiled and (res.status, res.nit, res.nfev) == (9, 0, 0)
    assert "before the first iteration" in res.message and "-1" not in res.message
    assert res.jac is None and np.isnan(res.fun)
    np.testing.assert_array_equal(res.x, 0.0)


# -- objectives that write their gradient (the GPU's form) ------------------------------------
def _rosen_into(x, g, c):
    """Rosenbrock shifted by ``c``, its gradient written into ``g``: ``fun(x, g, *args)``."""
    s = 0.0
    for i in range(x.size):
        g[i] = 0.0
    for i in range(x.size - 1):
        d = x[i + 1] - x[i] ** 2 - c
        s += 100.0 * d**2 + (1.0 - x[i]) ** 2
        g[i] += -400.0 * x[i] * d - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * d
    return s


rosen_into_nb = njit(cache=True)(_rosen_into)


@njit(cache=True)
def rosen_pair_nb(x, c):
    g = np.empty_like(x)
    return rosen_into_nb(x, g, c), g


@njit(cache=True)
def rosen_f_nb(x, c):
    return rosen_into_nb(x, np.empty_like(x), c)


@njit(cache=True)
def rosen_g_into_nb(x, g, c):
    rosen_into_nb(x, g, c)


def test_objectives_that_write_their_gradient():
    """``fun(x, g, *args) -> f`` (jac=True) and ``jac(x, g, *args)``, the GPU's form, run on
    the CPU too (told by their number of parameters), compiled, on the Python path (a plain
    Python function) and from users' @njit code: the same iterates as ``(f, g)``, bitwise."""
    x0 = np.array([[-1.2, 1.0, 0.5], [0.3, -0.4, 2.0]])
    c = np.array([0.1, -0.2])
    opts = dict(lr=1e-2, maxiter=300, gtol=0.0)
    into = fa.minimize_batch(rosen_into_nb, x0, args=(c,), jac=True, options=opts)
    sep = fa.minimize_batch(rosen_f_nb, x0, args=(c,), jac=rosen_g_into_nb, options=opts)
    assert into.compiled and sep.compiled
    python = dict(opts, compiled=False)
    for i in range(2):  # references: the Python loop, with (f, g) and with the plain function
        ref = fa.minimize(rosen_pair_nb, x0[i], args=(c[i],), jac=True, options=python)
        py = fa.minimize(_rosen_into, x0[i], args=(c[i],), jac=True, options=python)
        for res in (into, sep, py):
            for field in ("x", "jac", "fun", "nit", "nfev", "best_x"):
                got = res[field] if res is py else res[field][i]
                np.testing.assert_array_equal(got, ref[field], err_msg=field)
    res = fa.minimize_njit(rosen_into_nb, None, x0[0], (c[0],), fa.njit_options(**opts))
    np.testing.assert_array_equal(res.x, into.x[0])
    # a jac of len(args) + 2 parameters that returns its gradient (args forgotten?): an
    # error, not the uninitialized output array taken as the gradient
    with pytest.raises(TypeError, match="must return None"):
        fa.minimize(lambda x, c: 0.0, x0[0], args=(0.1,), jac=lambda x, d, c: 2 * x)


@njit(inline="always")
def _write_last(values, out, i):
    out[i] = values[0][i] * 2.0 + 1.0  # (the function's last use of out)


@njit(parallel=True)
def _through_borrowed(values, out, i):
    values = engine.borrowed(values)
    view = engine.borrowed(out)
    _write_last(values, view, i)
    every_other = engine.borrowed(out[::2])
    for k in prange(every_other.size):
        every_other[k] -= 1.0
    owner = np.full(3, 4.0)
    total = engine.borrowed(owner).sum()
    engine.keep_alive(owner)  # (up to here)
    return total, engine.borrowed(None), engine.borrowed(2.5)


def test_borrowed_arrays_are_the_same_memory():
    """The engine's loops borrow their arrays (no reference counting): writes through
    them, even the last ones, which nothing reads afterwards, reach the caller's arrays
    (numba's dead-code elimination, run for parallel loops, is told that they alias their
    argument: without that it drops them); the arrays' reference counts are untouched;
    None and numbers pass through."""
    out = np.zeros(5)
    total, none, number = _through_borrowed((out, 1.0), out, 1)
    np.testing.assert_array_equal(out, [-1.0, 1.0, -1.0, 0.0, -1.0])
    assert (total, none, number) == (12.0, None, 2.5)
    assert sys.getrefcount(out) == 2


def test_borrowed_buffers_outlive_their_use(tmp_path):
    """The compiled loop's scratch gradient (objectives that write their gradient) and the
    gradients objectives return are viewed through borrowed arrays, kept alive by their
    owners: run where glibc fills freed memory (MALLOC_PERTURB_, without its per-thread
    cache, which it does not fill), a use after free changes the iterates (it did)."""
    script = textwrap.dedent(
        """
        import numpy as np
        from numba import njit
        import fastadam as fa

        @njit
        def into(x, g, c):
            g[:] = 2.0 * (x - c) + np.sin(x)
            return np.sum((x - c) ** 2) - np.sum(np.cos(x))

        @njit
        def pair(x, c):
            return np.sum((x - c) ** 2) - np.sum(np.cos(x)), 2.0 * (x - c) + np.sin(x)

        x0 = np.array([[-1.2, 1.0, 0.5], [0.3, -0.4, 2.0]])
        c = np.array([0.1, -0.2])
        opts = dict(lr=1e-2, maxiter=200, gtol=0.0)
        python = dict(opts, compiled=False)
        refs = [fa.minimize(pair, x0[i], args=(c[i],), jac=True, options=python)
                for i in range(2)]
        for fun in (into, pair):
            res = fa.minimize_batch(fun, x0, args=(c,), jac=True, options=opts)
            one = fa.minimize(fun, x0[0], args=(c[0],), jac=True, options=opts)
            assert res.compiled and one.compiled
            for i, ref in enumerate(refs):
                np.testing.assert_array_equal(res.x[i], ref.x)
                np.testing.assert_array_equal(res.jac[i], ref.jac)
            np.testing.assert_array_equal(one.x, refs[0].x)
        print("ok")
        """
    )
    path = tmp_path / "perturbed.py"
    path.write_text(script)
    env = dict(os.environ, MALLOC_PERTURB_="165", GLIBC_TUNABLES="glibc.malloc.tcache_count=0")
    out = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
