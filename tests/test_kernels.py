"""fastadam.kernels: called from a user's own @njit code, serial == parallel bitwise, the
parallel kernels really write in place, the *_many kernels, all_finite, and float32
arithmetic staying float32."""

import numba
import numpy as np
import pytest
from naive import adam_reference, assert_close64, rmsprop_reference

import fastadam as fa
from fastadam import kernels, rules

BIG = kernels.PARALLEL_MIN_SIZE + 4465  # > 70k elements, not a multiple of any SIMD width

# adam_coefficients(t, lr, beta1, beta2, eps, eps_root, weight_decay, decoupled, eps_hat,
#                   bias_correction, maximize, amsgrad, amsgrad_corrected)
ADAM_MODES = {
    "plain": (0.01, 0.9, 0.999, 1e-8, 0.0, 0.0, False, False, True, False, False, False),
    "amsgrad_raw_l2_max": (0.01, 0.8, 0.99, 0.1, 0.0, 0.1, False, False, True, True, True, False),
    "amsgrad_hat_decoupled": (0.02, 0.9, 0.99, 0.1, 1e-4, 0.1, True, False, True, False, True,
                              True),
    "eps_hat": (0.01, 0.9, 0.999, 1e-7, 0.0, 0.05, True, True, True, False, True, False),
    "no_bias_correction": (0.01, 0.0, 0.9, 0.1, 0.0, 0.0, False, False, False, False, False,
                           False),
}  # fmt: skip

# rmsprop_coefficients(t, lr, decay, eps, momentum, weight_decay, decoupled, eps_in_sqrt,
#                      lr_in_momentum, bias_correction, maximize, centered, nesterov)
RMS_MODES = {
    "plain": (0.01, 0.99, 1e-8, 0.0, 0.0, False, False, False, False, False, False, False),
    "momentum": (0.01, 0.9, 0.1, 0.9, 0.1, False, True, True, False, True, False, False),
    "centered": (0.01, 0.9, 0.1, 0.0, 0.1, True, False, False, True, False, True, False),
    "centered_momentum": (0.01, 0.9, 0.1, 0.9, 0.0, False, True, True, True, False, True,
                          False),
    "nesterov": (0.01, 0.95, 0.1, 0.9, 0.0, False, False, False, False, True, False, True),
}  # fmt: skip


def _arrays(n, dtype, k, seed=0, shape=None):
    rng = np.random.default_rng(seed)
    shape = shape or (n,)
    return [np.asarray(rng.standard_normal(shape), dtype=dtype) for _ in range(k)]


def _adam_state(p):
    rng = np.random.default_rng(1)
    m = np.asarray(0.1 * rng.standard_normal(p.shape), dtype=p.dtype)
    v = np.asarray(rng.random(p.shape), dtype=p.dtype)
    vmax = v + np.asarray(rng.random(p.shape) * (rng.random(p.shape) < 0.5), dtype=p.dtype)
    return [m, v, vmax]


def _rms_state(p):
    rng = np.random.default_rng(2)
    v = np.asarray(rng.random(p.shape) + 0.01, dtype=p.dtype)
    gbar = np.asarray(0.05 * rng.standard_normal(p.shape), dtype=p.dtype)
    buf = np.asarray(0.1 * rng.standard_normal(p.shape), dtype=p.dtype)
    return [v, gbar, buf]


# ---------------------------------------------------------------------------------------------
# a user's own @njit loop
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _user_adam_loop(x, m, v, vmax, n_steps, lr, beta1, beta2, eps, wd, amsgrad):
    """Simulation code: its own gradient, its own loop, fastadam's kernels inside."""
    for t in range(1, n_steps + 1):
        g = 2.0 * x + np.sin(x)  # gradient of x^2 - cos(x)
        coef = kernels.adam_coefficients(
            t, lr, beta1, beta2, eps, 0.0, wd, True, False, True, False, amsgrad, False
        )
        kernels.adam(x, g, m, v, vmax, coef)


@numba.njit(cache=True)
def _user_rmsprop_loop(x, v, gbar, buf, n_steps, lr, decay, eps, momentum, bias_correction):
    for t in range(1, n_steps + 1):
        g = 2.0 * x + np.sin(x)
        coef = kernels.rmsprop_coefficients(
            t, lr, decay, eps, momentum, 0.0, False, True, True, bias_correction, False, True,
            False,
        )  # fmt: skip
        kernels.rmsprop(x, g, v, gbar, buf, coef)


def _grad(x):
    return 2.0 * x + np.sin(x)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_user_njit_adam_loop_equals_optimizer(amsgrad):
    """Issue 2: the same numbers as the optimizer object (bitwise: same rule, same order)."""
    x0 = np.linspace(-2.0, 3.0, 37)
    x_user = x0.copy()
    m, v, vmax = np.zeros(37), np.zeros(37), np.zeros(37)
    _user_adam_loop(x_user, m, v, vmax, 30, 0.05, 0.9, 0.999, 0.1, 0.01, amsgrad)
    x_obj = x0.copy()
    opt = fa.AdamW(x_obj, lr=0.05, eps=0.1, weight_decay=0.01, amsgrad=amsgrad)
    for _ in range(30):
        opt.step(_grad(x_obj))
    # first: the same to rounding (the loop really ran the same algorithm)
    assert_close64(x_user, x_obj, rtol=1e-12)
    # then: bitwise
    np.testing.assert_array_equal(x_user, x_obj)
    np.testing.assert_array_equal(m, opt.state_dict()["exp_avg.0"])


@pytest.mark.parametrize("bias_correction", [False, True])
def test_user_njit_rmsprop_loop_equals_optimizer(bias_correction):
    x0 = np.linspace(-2.0, 3.0, 37)
    x_user = x0.copy()
    v, gbar, buf = np.zeros(37), np.zeros(37), np.zeros(37)
    _user_rmsprop_loop(x_user, v, gbar, buf, 30, 0.01, 0.9, 0.1, 0.9, bias_correction)
    x_obj = x0.copy()
    opt = fa.RMSProp(x_obj, lr=0.01, decay=0.9, eps=0.1, momentum=0.9, centered=True,
                     convention="optax", bias_correction=bias_correction)  # fmt: skip
    for _ in range(30):
        opt.step(_grad(x_obj))
    assert_close64(x_user, x_obj, rtol=1e-12)
    np.testing.assert_array_equal(x_user, x_obj)


def test_njit_coefficients_equal_python_coefficients():
    """kernels.adam_coefficients / rmsprop_coefficients (compiled) must return the same
    float64 values as rules.* (the optimizers' host path), else user loops drift from the
    optimizer by an ulp per step. Numba's float ** int is a multiplication chain, Python's
    is pow(); beta**t must be computed the same way in both."""
    for t in (1, 2, 3, 4, 5, 12, 100, 1000):
        for args in ADAM_MODES.values():
            assert kernels.adam_coefficients(t, *args) == rules.adam_coefficients(t, *args), t
        for args in RMS_MODES.values():
            assert kernels.rmsprop_coefficients(t, *args) == rules.rmsprop_coefficients(
                t, *args
            ), t


@numba.njit(cache=True)
def _user_elementwise_adam(p, g, m, v, vmax, coef):
    b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, mode = coef
    for i in range(p.size):
        p[i], m[i], v[i], vmax[i] = kernels.adam_update(
            p[i], g[i], m[i], v[i], vmax[i], b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, mode
        )


@numba.njit(cache=True)
def _user_elementwise_rmsprop(p, g, v, gbar, buf, coef):
    d, od, c, ei, eo, li, lo, mu, l2, wdf, s, centered, use_mom, nest = coef
    for i in range(p.size):
        p[i], v[i], gbar[i], buf[i] = kernels.rmsprop_update(
            p[i], g[i], v[i], gbar[i], buf[i], d, od, c, ei, eo, li, lo, mu, l2, wdf, s,
            centered, use_mom, nest,
        )  # fmt: skip


@pytest.mark.parametrize("mode", list(ADAM_MODES))
def test_adam_update_from_user_njit_code(mode):
    """The per-element function, in a user's loop == the array kernel == the plain-Python
    rule (all bitwise) == the independent reference (to rounding)."""
    p, g = _arrays(25, np.float64, 2, seed=3)
    state = _adam_state(p)
    coef = rules.adam_coefficients(3, *ADAM_MODES[mode])
    a = [x.copy() for x in [p, *state]]
    b = [x.copy() for x in [p, *state]]
    _user_elementwise_adam(a[0], g, a[1], a[2], a[3], coef)
    kernels.adam(b[0], g, b[1], b[2], b[3], coef)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    # the plain-Python rule, element by element
    for i in range(p.size):
        out = rules.adam_rule(p[i], g[i], state[0][i], state[1][i], state[2][i], *coef)
        assert out[0] == a[0][i] and out[1] == a[1][i] and out[2] == a[2][i]
    # a fresh single step against the reference (state from zero)
    x = p.copy()
    z = [np.zeros_like(p) for _ in range(3)]
    coef1 = rules.adam_coefficients(1, *ADAM_MODES[mode])
    _user_elementwise_adam(x, g, z[0], z[1], z[2], coef1)
    lr, b1, b2, eps, eps_root, wd, dec, eps_hat, bc, maxi, ams, corr = ADAM_MODES[mode]
    ref, _, _ = adam_reference(
        p, [g], "pytorch", lr=lr, betas=(b1, b2), eps=eps, eps_root=eps_root,
        weight_decay=wd, decoupled=dec, eps_hat=eps_hat, bias_correction=bc, maximize=maxi,
        amsgrad=ams, amsgrad_corrected=corr,
    )  # fmt: skip
    assert_close64(x, ref)


@pytest.mark.parametrize("mode", list(RMS_MODES))
def test_rmsprop_update_from_user_njit_code(mode):
    p, g = _arrays(25, np.float64, 2, seed=4)
    state = _rms_state(p)
    coef = rules.rmsprop_coefficients(3, *RMS_MODES[mode])
    a = [x.copy() for x in [p, *state]]
    b = [x.copy() for x in [p, *state]]
    _user_elementwise_rmsprop(a[0], g, a[1], a[2], a[3], coef)
    kernels.rmsprop(b[0], g, b[1], b[2], b[3], coef)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    for i in range(p.size):
        out = rules.rmsprop_rule(p[i], g[i], state[0][i], state[1][i], state[2][i], *coef)
        assert out[0] == a[0][i] and out[1] == a[1][i]
    x = p.copy()
    z = [np.zeros_like(p) for _ in range(3)]
    coef1 = rules.rmsprop_coefficients(1, *RMS_MODES[mode])
    _user_elementwise_rmsprop(x, g, z[0], z[1], z[2], coef1)
    lr, d, eps, mu, wd, dec, ein, lin, bc, maxi, cen, nest = RMS_MODES[mode]
    ref, _, _ = rmsprop_reference(
        p, [g], "pytorch", lr=lr, decay=d, eps=eps, momentum=mu, weight_decay=wd,
        decoupled_weight_decay=dec, eps_in_sqrt=ein, lr_in_momentum=lin, bias_correction=bc,
        maximize=maxi, centered=cen, nesterov=nest,
    )  # fmt: skip
    rtol = 1e-6 if (cen and bc and not ein) else 1e-12  # see test_conventions._ill_conditioned
    assert_close64(x, ref, rtol=rtol)


# ---------------------------------------------------------------------------------------------
# serial == parallel, and the parallel kernels write to the caller's arrays
# ---------------------------------------------------------------------------------------------

# Each (dtype, ndim) is one more compilation of a parallel kernel (seconds each), so the
# 2-d case runs in one dtype per kernel; test_parallel_kernels_write_in_place_minimal
# covers the same 2-d variants.
ADAM_LAYOUTS = [(np.float64, (BIG,)), (np.float64, (300, 250)), (np.float32, (BIG,))]
RMS_LAYOUTS = [(np.float64, (BIG,)), (np.float32, (BIG,)), (np.float32, (300, 250))]
LAYOUT_IDS = ["f64-1d", "f64-2d", "f32-1d"], ["f64-1d", "f32-1d", "f32-2d"]


@pytest.mark.parametrize("dtype,shape", ADAM_LAYOUTS, ids=LAYOUT_IDS[0])
@pytest.mark.parametrize("mode", list(ADAM_MODES))
def test_adam_serial_equals_parallel(mode, dtype, shape):
    p, g = _arrays(0, dtype, 2, seed=5, shape=shape)
    serial = [p.copy(), *_adam_state(p)]
    par = [x.copy() for x in serial]
    before = [x.copy() for x in serial]
    for t in (1, 2, 3):
        coef = rules.adam_coefficients(t, *ADAM_MODES[mode])
        kernels.adam(serial[0], g, serial[1], serial[2], serial[3], coef)
        kernels.adam_parallel(par[0], g, par[1], par[2], par[3], coef)
        for x, y in zip(serial, par, strict=True):
            np.testing.assert_array_equal(x, y)
    # the parallel kernel wrote into the caller's arrays (numba parfor regression)
    assert par[0].dtype == dtype and par[0].shape == shape
    for k in range(3):
        assert np.count_nonzero(par[k] != before[k]) > 0.9 * p.size, k
    if ADAM_MODES[mode][-2]:  # amsgrad: vmax grows somewhere
        assert np.any(par[3] != before[3])


@pytest.mark.parametrize("dtype,shape", RMS_LAYOUTS, ids=LAYOUT_IDS[1])
@pytest.mark.parametrize("mode", list(RMS_MODES))
def test_rmsprop_serial_equals_parallel(mode, dtype, shape):
    p, g = _arrays(0, dtype, 2, seed=6, shape=shape)
    serial = [p.copy(), *_rms_state(p)]
    par = [x.copy() for x in serial]
    before = [x.copy() for x in serial]
    for t in (1, 2, 3):
        coef = rules.rmsprop_coefficients(t, *RMS_MODES[mode])
        kernels.rmsprop(serial[0], g, serial[1], serial[2], serial[3], coef)
        kernels.rmsprop_parallel(par[0], g, par[1], par[2], par[3], coef)
        for x, y in zip(serial, par, strict=True):
            np.testing.assert_array_equal(x, y)
    _, _, _, mu, _, _, _, _, _, _, centered, _ = RMS_MODES[mode]
    assert np.count_nonzero(par[0] != before[0]) > 0.9 * p.size
    assert np.count_nonzero(par[1] != before[1]) > 0.9 * p.size
    np.testing.assert_array_equal(par[2] != before[2], np.full(shape, centered))
    np.testing.assert_array_equal(par[3] != before[3], np.full(shape, mu > 0))


def test_parallel_kernels_write_in_place_minimal():
    """Regression for the numba parfor bug where a reshaped view returned by a helper was
    written to a temporary: after one call the caller's arrays must have changed."""
    for shape in [(BIG,), (BIG // 5, 5)]:
        p = np.ones(shape)
        m, v = np.zeros(shape), np.zeros(shape)
        coef = rules.adam_coefficients(1, 0.1, 0.9, 0.999, 1e-8, 0.0, 0.0, False, False, True,
                                       False, False, False)  # fmt: skip
        kernels.adam_parallel(p, np.ones(shape), m, v, v, coef)
        np.testing.assert_allclose(p, 0.9, rtol=1e-7)
        np.testing.assert_allclose(m, 0.1, rtol=1e-12)
        p = np.ones(shape, np.float32)
        v = np.zeros(shape, np.float32)
        coef = rules.rmsprop_coefficients(1, 0.1, 0.99, 1e-8, 0.0, 0.0, False, False, False,
                                          False, False, False, False)  # fmt: skip
        kernels.rmsprop_parallel(p, np.ones(shape, np.float32), v, v, v, coef)
        np.testing.assert_allclose(v, 0.01, rtol=1e-6)
        np.testing.assert_allclose(p, 0.0, atol=1e-5)  # 1 - 0.1/0.1


def test_optimizer_on_big_arrays_uses_parallel_path_in_place():
    """Through the optimizer (adam_many picks the parallel kernel at this size)."""
    n = BIG
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal(n)
    g = rng.standard_normal(n)
    big, small = x0.copy(), x0[:1000].copy()
    opt = fa.Adam([big, small], lr=0.01, eps=0.1, amsgrad=True)
    for _ in range(3):
        opt.step([g, g[:1000]])
    ref, _, _ = adam_reference(x0, [g] * 3, lr=0.01, eps=0.1, amsgrad=True)
    assert_close64(big, ref)
    np.testing.assert_array_equal(big[:1000], small)  # parallel == serial, bitwise


def test_parallel_respects_set_num_threads():
    p, g = _arrays(BIG, np.float64, 2, seed=9)
    a, b = [p.copy(), *_adam_state(p)], [p.copy(), *_adam_state(p)]
    coef = rules.adam_coefficients(2, *ADAM_MODES["amsgrad_raw_l2_max"])
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        kernels.adam_parallel(a[0], g, a[1], a[2], a[3], coef)
    finally:
        numba.set_num_threads(n)
    kernels.adam_parallel(b[0], g, b[1], b[2], b[3], coef)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------------------------
# *_many
# ---------------------------------------------------------------------------------------------


def test_adam_many_equals_one_kernel_call_per_array():
    """The tuples must be homogeneous for numba (a runtime index into a tuple): arrays of one
    dtype and one ndim. The optimizers pass flat views; so does this test (in place
    through the views)."""
    sizes = [(7,), (3, 4), (50,)]
    rng = np.random.default_rng(10)
    ps = [rng.standard_normal(s).reshape(-1) for s in sizes]
    gs = [rng.standard_normal(s).reshape(-1) for s in sizes]
    ms = [np.zeros(s).reshape(-1) for s in sizes]
    vs = [np.zeros(s).reshape(-1) for s in sizes]
    vm = [np.zeros(s).reshape(-1) for s in sizes]
    one = [[x.copy() for x in arrs] for arrs in (ps, ms, vs, vm)]
    skipped = np.zeros(3, np.int64)
    for t in (1, 2):
        coef = rules.adam_coefficients(t, *ADAM_MODES["amsgrad_hat_decoupled"])
        kernels.adam_many(tuple(ps), tuple(gs), tuple(ms), tuple(vs), tuple(vm), coef, False,
                          skipped)  # fmt: skip
        for k in range(3):
            kernels.adam(one[0][k], gs[k], one[1][k], one[2][k], one[3][k], coef)
    for arrs, ones in zip((ps, ms, vs, vm), one, strict=True):
        for x, y in zip(arrs, ones, strict=True):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(skipped, 0)


def test_rmsprop_many_skips_nonfinite_arrays():
    sizes = [7, 12, 5]
    rng = np.random.default_rng(11)
    ps = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    gs = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    gs[1][11] = np.nan
    vs = [np.zeros(s, np.float32) for s in sizes]
    gb = [np.zeros(s, np.float32) for s in sizes]
    bf = [np.zeros(s, np.float32) for s in sizes]
    before = [p.copy() for p in ps]
    skipped = np.zeros(3, np.int64)
    coef = rules.rmsprop_coefficients(1, *RMS_MODES["centered_momentum"])
    kernels.rmsprop_many(tuple(ps), tuple(gs), tuple(vs), tuple(gb), tuple(bf), coef, True,
                         skipped)  # fmt: skip
    np.testing.assert_array_equal(skipped, [0, 1, 0])
    np.testing.assert_array_equal(ps[1], before[1])
    np.testing.assert_array_equal(vs[1], 0)
    assert not np.array_equal(ps[0], before[0]) and not np.array_equal(ps[2], before[2])
    # without skipping, the NaN propagates to that element only
    kernels.rmsprop_many(tuple(ps), tuple(gs), tuple(vs), tuple(gb), tuple(bf), coef, False,
                         skipped)  # fmt: skip
    assert np.isnan(ps[1][11]) and np.isfinite(ps[1][:11]).all()
    np.testing.assert_array_equal(skipped, [0, 1, 0])


def test_kernel_size_mismatch_raises():
    p, g = np.ones(5), np.ones(4)
    coef = rules.adam_coefficients(1, *ADAM_MODES["plain"])
    with pytest.raises(ValueError, match="g"):
        kernels.adam(p, g, np.zeros(5), np.zeros(5), np.zeros(5), coef)
    np.testing.assert_array_equal(p, 1.0)


# ---------------------------------------------------------------------------------------------
# all_finite
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_finite(dtype):
    x = np.linspace(-1e30, 1e30, 1001).astype(dtype).reshape(7, 11, 13)
    assert kernels.all_finite(x)
    assert kernels.all_finite(np.zeros(0, dtype))
    assert kernels.all_finite(np.array(3.0, dtype))
    big = np.finfo(dtype).max
    assert kernels.all_finite(np.array([big, -big, np.finfo(dtype).tiny, 0.0], dtype))
    for bad in (np.nan, np.inf, -np.inf):
        for idx in (0, 500, 1000):
            y = x.copy().ravel()
            y[idx] = bad
            assert not kernels.all_finite(y.reshape(x.shape)), (bad, idx)
    assert not kernels.all_finite(np.array(np.nan, dtype))


# ---------------------------------------------------------------------------------------------
# float32 stays float32
# ---------------------------------------------------------------------------------------------


def test_float32_adam_step_is_float32_arithmetic():
    """One step on float32 arrays, against the same formula evaluated in float32 numpy with
    float32-cast coefficients: equal to <= 1 ulp (and almost always exactly). A float64
    evaluation rounded to float32 at the end would differ on many more elements."""
    rng = np.random.default_rng(12)
    n = 20000
    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    m = (0.1 * rng.standard_normal(n)).astype(np.float32)
    v = rng.random(n).astype(np.float32)
    coef = rules.adam_coefficients(5, 0.01, 0.9, 0.999, 0.1, 0.0, 0.01, True, False, True,
                                   True, False, False)  # fmt: skip
    b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, _ = (np.float32(c) for c in coef)
    with np.errstate(all="ignore"):
        gg = s * g + l2 * p
        m32 = b1 * m + ob1 * gg
        v32 = b2 * v + ob2 * (gg * gg)
        p32 = wdf * p - ss * m32 / (np.sqrt(c2 * v32 + er) + e)
    assert p32.dtype == np.float32
    # the same in float64 then rounded
    b1d, ob1d, b2d, ob2d, ssd, c2d, erd, ed, l2d, wdfd, sd, _ = (np.float64(c) for c in coef)
    p64, g64, m64, v64 = (a.astype(np.float64) for a in (p, g, m, v))
    gd = sd * g64 + l2d * p64
    md = b1d * m64 + ob1d * gd
    vd = b2d * v64 + ob2d * gd * gd
    pd = (wdfd * p64 - ssd * md / (np.sqrt(c2d * vd + erd) + ed)).astype(np.float32)

    pk, mk, vk = p.copy(), m.copy(), v.copy()
    kernels.adam(pk, g, mk, vk, vk, coef)
    assert pk.dtype == mk.dtype == vk.dtype == np.float32
    np.testing.assert_array_max_ulp(mk, m32, maxulp=1)
    np.testing.assert_array_max_ulp(vk, v32, maxulp=1)
    np.testing.assert_array_max_ulp(pk, p32, maxulp=1)
    exact32 = np.mean(pk == p32)
    exact64 = np.mean(pk == pd)
    assert exact32 > 0.99, exact32
    assert exact64 < exact32 - 0.05, (exact32, exact64)  # the test can tell the two apart


def test_float32_rmsprop_step_is_float32_arithmetic():
    rng = np.random.default_rng(13)
    n = 20000
    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    v = rng.random(n).astype(np.float32)
    coef = rules.rmsprop_coefficients(1, 0.01, 0.9, 0.1, 0.0, 0.0, False, True, True, False,
                                      False, False, False)  # fmt: skip
    d, od, c, ei, eo, li, lo = (np.float32(x) for x in coef[:7])
    v32 = d * v + od * (g * g)
    p32 = p - lo * (li * (g / (np.sqrt(c * v32 + ei) + eo)))
    pk, vk = p.copy(), v.copy()
    kernels.rmsprop(pk, g, vk, vk, vk, coef)
    assert pk.dtype == np.float32
    np.testing.assert_array_max_ulp(vk, v32, maxulp=1)
    np.testing.assert_array_max_ulp(pk, p32, maxulp=1)
    assert np.mean(pk == p32) > 0.99


def test_optimizer_keeps_float32_state():
    x = np.ones(10, np.float32)
    opt = fa.RMSProp(x, momentum=0.9, centered=True)
    opt.step(np.ones(10, np.float32))
    assert x.dtype == np.float32
    for k, val in opt.state_dict().items():
        if "." in k:
            assert val.dtype == np.float32, k


def test_import_compiles_nothing():
    """Lazy compilation: a fresh interpreter that imports fastadam has no compiled
    signature (cache=True loads on first call, not at import)."""
    import subprocess
    import sys

    code = (
        "import fastadam.kernels as k\n"
        "names = [n for n in k.__all__ if hasattr(getattr(k, n), 'signatures')]\n"
        "assert names, names\n"
        "print(sum(len(getattr(k, n).signatures) for n in names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "0"
