"""fastadam.kernels, for every algorithm of the registry: called from a user's own @njit
code, the keyword coefficient builders (Python == compiled, bitwise), serial == parallel
bitwise, the parallel kernels really write in place, the many-array loop, all_finite,
float32 arithmetic staying float32, and the argument checks."""

import numba
import numpy as np
import pytest
from naive import adam_reference, assert_close64, rmsprop_reference

import fastadam as fa
from fastadam import kernels
from fastadam.algorithms import ALGORITHMS
from fastadam.cpu.kernels import COMPILED

BIG = kernels.PARALLEL_MIN_SIZE + 4465  # > 70k elements, not a multiple of any SIMD width

#: Per algorithm, coefficient keywords that exercise each branch of its rule.
MODES = {
    "adam": {
        "plain": dict(lr=0.01),
        "amsgrad_raw_l2_max": dict(lr=0.01, beta1=0.8, beta2=0.99, eps=0.1, weight_decay=0.1,
                                   maximize=True, amsgrad=True),
        "amsgrad_hat_decoupled": dict(lr=0.02, beta2=0.99, eps=0.1, eps_root=1e-4,
                                      weight_decay=0.1, decoupled_weight_decay=True,
                                      amsgrad=True, amsgrad_corrected=True),
        "eps_hat": dict(lr=0.01, eps=1e-7, weight_decay=0.05, decoupled_weight_decay=True,
                        eps_hat=True, maximize=True),
        "no_bias_correction": dict(lr=0.01, beta1=0.0, beta2=0.9, eps=0.1,
                                   bias_correction=False),
    },
    "rmsprop": {
        "plain": dict(lr=0.01),
        "momentum": dict(lr=0.01, decay=0.9, eps=0.1, momentum=0.9, weight_decay=0.1,
                         eps_in_sqrt=True, lr_in_momentum=True, maximize=True),
        "centered": dict(lr=0.01, decay=0.9, eps=0.1, weight_decay=0.1,
                         decoupled_weight_decay=True, bias_correction=True, centered=True),
        "centered_momentum": dict(lr=0.01, decay=0.9, eps=0.1, momentum=0.9, eps_in_sqrt=True,
                                  lr_in_momentum=True, bias_correction=True, centered=True),
        "nesterov": dict(lr=0.01, decay=0.95, eps=0.1, momentum=0.9, bias_correction=True,
                         nesterov=True),
    },
    "nadam": {
        "plain": dict(lr=0.01),
        "keras_decoupled": dict(lr=0.02, beta1=0.8, beta2=0.99, eps=0.1, weight_decay=0.1,
                                convention="keras"),
        "optax_l2_max": dict(lr=0.01, eps=0.1, eps_root=1e-4, weight_decay=0.1, maximize=True,
                             convention="optax"),
    },
}  # fmt: skip
CASES = [(name, mode) for name, modes in MODES.items() for mode in modes]


def _coef(name, t, mode, **extra):
    return getattr(kernels, f"{name}_coefficients")(t, **MODES[name][mode], **extra)


def _arrays(n, dtype, k, seed=0, shape=None):
    rng = np.random.default_rng(seed)
    shape = shape or (n,)
    return [np.asarray(rng.standard_normal(shape), dtype=dtype) for _ in range(k)]


def _state(name, p, seed=1):
    """Non-trivial state arrays (all three, used or not)."""
    rng = np.random.default_rng(seed)
    first = np.asarray(0.1 * rng.standard_normal(p.shape), dtype=p.dtype)
    second = np.asarray(rng.random(p.shape) + 0.01, dtype=p.dtype)
    third = np.asarray(rng.random(p.shape), dtype=p.dtype)
    if name == "rmsprop":  # mean square, mean gradient, momentum buffer
        first, second = second, first
    if name == "adam":  # the running maximum is at least v
        third = second + third * (rng.random(p.shape) < 0.5)
    return ALGORITHMS[name].State(first, second, third)


def _copy(state):
    return type(state)(*(a.copy() for a in state))


# ---------------------------------------------------------------------------------------------
# a user's own @njit loop
# ---------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _user_adam_loop(x, state, n_steps, lr, eps, wd, amsgrad):
    """Simulation code: its own gradient, its own loop, fastadam's kernels inside."""
    for t in range(1, n_steps + 1):
        g = 2.0 * x + np.sin(x)  # gradient of x^2 - cos(x)
        c = kernels.adam_coefficients(t, lr=lr, eps=eps, weight_decay=wd, amsgrad=amsgrad,
                                      decoupled_weight_decay=True)  # fmt: skip
        kernels.adam(x, g, state, c)


@numba.njit(cache=True)
def _user_rmsprop_loop(x, state, n_steps, lr, eps, bias_correction):
    for t in range(1, n_steps + 1):
        g = 2.0 * x + np.sin(x)
        c = kernels.rmsprop_coefficients(
            t, lr=lr, decay=0.9, eps=eps, momentum=0.9, centered=True,
            bias_correction=bias_correction, convention="optax",
        )  # fmt: skip
        kernels.rmsprop(x, g, state, c)


@numba.njit(cache=True)
def _user_nadam_loop(x, state, n_steps, lr, eps):
    c = kernels.nadam_coefficients(1, lr=lr, eps=eps, convention="keras")
    for t in range(1, n_steps + 1):
        g = 2.0 * x + np.sin(x)
        if t > 1:  # the running product of the momentum schedule, carried
            c = kernels.nadam_coefficients(t, lr=lr, eps=eps, mu_product=c.mu_product,
                                           convention="keras")  # fmt: skip
        kernels.nadam(x, g, state, c)


def _grad(x):
    return 2.0 * x + np.sin(x)


def _run_optimizer(opt, x, n):
    for _ in range(n):
        opt.step(_grad(x))
    return opt


@pytest.mark.parametrize("amsgrad", [False, True])
def test_user_njit_adam_loop_equals_optimizer(amsgrad):
    """The same numbers as the optimizer object (bitwise: same rule, same order)."""
    x0 = np.linspace(-2.0, 3.0, 37)
    x_user = x0.copy()
    state = kernels.AdamState(np.zeros(37), np.zeros(37), np.zeros(37))
    _user_adam_loop(x_user, state, 30, 0.05, 0.1, 0.01, amsgrad)
    x_obj = x0.copy()
    opt = _run_optimizer(
        fa.AdamW(x_obj, lr=0.05, eps=0.1, weight_decay=0.01, amsgrad=amsgrad), x_obj, 30
    )
    assert_close64(x_user, x_obj, rtol=1e-12)  # first: the same to rounding
    np.testing.assert_array_equal(x_user, x_obj)  # then: bitwise
    np.testing.assert_array_equal(state.exp_avg, opt.state_dict()["exp_avg.0"])


@pytest.mark.parametrize("bias_correction", [False, True])
def test_user_njit_rmsprop_loop_equals_optimizer(bias_correction):
    x0 = np.linspace(-2.0, 3.0, 37)
    x_user = x0.copy()
    state = kernels.RMSPropState(np.zeros(37), np.zeros(37), np.zeros(37))
    _user_rmsprop_loop(x_user, state, 30, 0.01, 0.1, bias_correction)
    x_obj = x0.copy()
    opt = fa.RMSProp(x_obj, lr=0.01, decay=0.9, eps=0.1, momentum=0.9, centered=True,
                     convention="optax", bias_correction=bias_correction)  # fmt: skip
    _run_optimizer(opt, x_obj, 30)
    assert_close64(x_user, x_obj, rtol=1e-12)
    np.testing.assert_array_equal(x_user, x_obj)


def test_user_njit_nadam_loop_equals_optimizer():
    x0 = np.linspace(-2.0, 3.0, 37)
    x_user = x0.copy()
    state = kernels.NAdamState(np.zeros(37), np.zeros(37), np.zeros(0))
    _user_nadam_loop(x_user, state, 30, 0.05, 0.1)
    x_obj = x0.copy()
    _run_optimizer(fa.NAdam(x_obj, lr=0.05, eps=0.1, convention="keras"), x_obj, 30)
    assert_close64(x_user, x_obj, rtol=1e-12)
    np.testing.assert_array_equal(x_user, x_obj)


@pytest.mark.parametrize("name,mode", CASES)
def test_njit_coefficients_equal_python_coefficients(name, mode):
    """The keyword builders compiled in @njit code return the same float64 record as from
    Python (the optimizers' host path), else user loops drift from the optimizer by an ulp
    per step. numba's float ** int is a multiplication chain, Python's pow(): beta**t must
    be computed the same way in both."""
    kw = MODES[name][mode]
    source = (
        "def f(t):\n"
        f"    return kernels.{name}_coefficients(t, "
        + ", ".join(f"{k}={v!r}" for k, v in kw.items())
        + ")\n"
    )
    namespace = {"kernels": kernels}
    exec(source, namespace)
    compiled = numba.njit(namespace["f"])
    for t in (1, 2, 3, 4, 5, 12, 100, 1000):
        py = _coef(name, t, mode)
        jit = compiled(t)
        assert type(py) is type(jit) is ALGORITHMS[name].Coefficients
        assert tuple(py) == tuple(jit), t


def test_coefficient_builder_defaults_and_conventions():
    c = kernels.adam_coefficients(1)
    assert c.step_size == pytest.approx(1e-3 / 0.1, rel=1e-15) and c.eps == 1e-8
    k = kernels.adam_coefficients(1, convention="keras")
    assert k.eps == 1e-7 and k.c2 == 1.0  # Keras' eps and the epsilon-hat form
    r = kernels.rmsprop_coefficients(1, convention="tf1")
    assert r.eps_in == 1e-10 and r.eps_out == 0.0
    assert kernels.nadam_coefficients(1).mu_product == pytest.approx(0.9 * (1 - 0.5 * 0.96**0.004))


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_step_numbers_below_one_are_refused(name):
    build = getattr(kernels, f"{name}_coefficients")
    for t in (0, -1):
        with pytest.raises(ValueError, match="t must be >= 1"):
            build(t)
    with pytest.raises(TypeError, match="t must be an integer"):
        build(1.5)
    compiled = numba.njit(lambda t: build(t))
    with pytest.raises(ValueError, match="t must be >= 1"):
        compiled(0)


def test_coefficient_builder_errors_name_the_argument():
    with pytest.raises(ValueError, match="beta1"):
        kernels.adam_coefficients(1, beta1=1.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        kernels.adam_coefficients(1, decay=0.9)
    with pytest.raises(ValueError, match="convention"):
        kernels.rmsprop_coefficients(1, convention="nope")
    with pytest.raises(TypeError, match="schedule"):
        kernels.adam_coefficients(1, lr=lambda t: 0.1)
    kernels.adam_coefficients(1, lr=1)  # validated once and remembered: not for lr=True
    with pytest.raises(TypeError, match="lr must be a real number"):
        kernels.adam_coefficients(1, lr=True)
    with pytest.raises(numba.core.errors.TypingError, match="convention"):
        numba.njit(lambda t, c: kernels.adam_coefficients(t, convention=c))(1, "keras")


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_cast_coefficients_python_and_njit(name):
    c = getattr(kernels, f"{name}_coefficients")(3, lr=0.1)
    c32 = kernels.cast_coefficients(c, np.float32)
    assert type(c32) is type(c)
    for a, b in zip(c, c32, strict=True):
        if isinstance(a, float):
            assert type(b) is np.float32 and b == np.float32(a)
        else:
            assert b == a
    jit = numba.njit(lambda c: kernels.cast_coefficients(c, np.float32))(c)
    assert tuple(jit) == tuple(c32)
    with pytest.raises(TypeError, match="coefficient record"):
        kernels.cast_coefficients(tuple(c), np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.cast_coefficients(c, np.int32)


# ---------------------------------------------------------------------------------------------
# the per-element rules
# ---------------------------------------------------------------------------------------------


def _user_elementwise(update):
    @numba.njit
    def run(p, g, s0, s1, s2, c):
        for i in range(p.size):
            p[i], s0[i], s1[i], s2[i] = update(p[i], g[i], s0[i], s1[i], s2[i], c)

    return run


_ELEMENTWISE = {name: _user_elementwise(getattr(kernels, f"{name}_update")) for name in MODES}
_REFERENCES = {"adam": adam_reference, "rmsprop": rmsprop_reference}


def _reference_step(name, p, g, kw):
    kw = dict(kw)
    convention = kw.pop("convention", "pytorch")
    if name == "adam":
        kw["betas"] = (kw.pop("beta1", 0.9), kw.pop("beta2", 0.999))
        kw["decoupled"] = kw.pop("decoupled_weight_decay", False)
    ref, _, _ = _REFERENCES[name]([p], [[g]], convention, **kw)
    return ref[0]


@pytest.mark.parametrize("name,mode", CASES)
def test_update_from_user_njit_code(name, mode):
    """The per-element function in a user's loop == the array kernel == the plain-Python
    rule (all bitwise) == the independent reference (to rounding; NAdam's references are
    in test_nadam.py)."""
    spec = ALGORITHMS[name]
    p, g = _arrays(25, np.float64, 2, seed=3)
    state = _state(name, p)
    coef = _coef(name, 3, mode)
    a, b = [p.copy(), *_copy(state)], [p.copy(), *_copy(state)]
    _ELEMENTWISE[name](*a[:1], g, *a[1:], coef)
    getattr(kernels, name)(b[0], g, spec.State(*b[1:]), coef)
    used = (True, True, *spec.buffers(coef))
    for x, y, use in zip(a, b, used, strict=True):
        if use:
            np.testing.assert_array_equal(x, y)
    for i in range(p.size):
        out = spec.rule(p[i], g[i], state[0][i], state[1][i], state[2][i], coef)
        assert out[0] == a[0][i] and out[1] == a[1][i] and out[2] == a[2][i]
    if name in _REFERENCES:  # a fresh single step against the reference (state from zero)
        x = p.copy()
        zero = [np.full_like(p, v) for v in (0.0, 0.0, 0.0)]
        _ELEMENTWISE[name](x, g, *zero, _coef(name, 1, mode))
        kw = MODES[name][mode]
        ill = kw.get("centered") and kw.get("bias_correction") and not kw.get("eps_in_sqrt")
        rtol = 1e-6 if ill else 1e-12  # see test_conventions._ill_conditioned
        assert_close64(x, _reference_step(name, p, g, kw), rtol=rtol)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_infinite_parameter_stays_infinite_with_finite_state(name):
    """As in torch: without weight decay an infinite parameter stays infinite (not 0 * inf =
    NaN) and the state, driven by the finite gradient, stays finite."""
    p = np.array([np.inf, -np.inf, 1.0])
    g = np.array([0.5, -0.5, 0.5])
    opt = {"adam": fa.Adam, "rmsprop": fa.RMSProp, "nadam": fa.NAdam}[name](p, lr=0.1)
    for _ in range(3):
        opt.step(g)
    np.testing.assert_array_equal(p[:2], [np.inf, -np.inf])
    assert np.isfinite(p[2])
    for key, value in opt.state_dict().items():
        if key.count(".") == 1 and key.split(".")[0] in ALGORITHMS[name].State._fields:
            assert np.isfinite(value).all(), key


# ---------------------------------------------------------------------------------------------
# serial == parallel, and the parallel kernels write to the caller's arrays
# ---------------------------------------------------------------------------------------------

# Each (dtype, ndim) is one more compilation of a parallel kernel (seconds each): 1-d in
# both dtypes, 2-d in one; test_parallel_kernels_write_in_place_minimal covers more.
LAYOUTS = {
    "adam": [(np.float64, (BIG,)), (np.float64, (300, 250)), (np.float32, (BIG,))],
    "rmsprop": [(np.float64, (BIG,)), (np.float32, (BIG,)), (np.float32, (300, 250))],
    "nadam": [(np.float64, (BIG,)), (np.float32, (300, 250))],
}
PARALLEL_CASES = [(n, m, d, s) for n, m in CASES for d, s in LAYOUTS[n]]


@pytest.mark.parametrize("name,mode,dtype,shape", PARALLEL_CASES)
def test_serial_equals_parallel(name, mode, dtype, shape):
    spec = ALGORITHMS[name]
    p, g = _arrays(0, dtype, 2, seed=5, shape=shape)
    serial = [p.copy(), *_state(name, p)]
    par = [x.copy() for x in serial]
    before = [x.copy() for x in serial]
    for t in (1, 2, 3):
        coef = _coef(name, t, mode)
        getattr(kernels, name)(serial[0], g, spec.State(*serial[1:]), coef)
        getattr(kernels, f"{name}_parallel")(par[0], g, spec.State(*par[1:]), coef)
        for x, y in zip(serial, par, strict=True):
            np.testing.assert_array_equal(x, y)
    # the parallel kernel wrote into the caller's arrays (numba parfor regression), into
    # the buffers the coefficients use and no others
    assert par[0].dtype == dtype and par[0].shape == shape
    used = (True, True, *spec.buffers(coef))
    for k, use in enumerate(used):
        changed = np.count_nonzero(par[k] != before[k])
        if use and not (name == "adam" and k == 3):  # AMSGrad's maximum: only where v grew
            assert changed > 0.9 * p.size, k
        elif not use:
            assert changed == 0, k
    if name == "adam" and used[3]:
        assert np.any(par[3] != before[3])


def test_parallel_kernels_write_in_place_minimal():
    """Regression for the numba parfor bug where a reshaped view returned by a helper was
    written to a temporary: after one call the caller's arrays must have changed."""
    for shape in [(BIG,), (BIG // 5, 5)]:
        p = np.ones(shape)
        state = kernels.AdamState(np.zeros(shape), np.zeros(shape), np.zeros(0))
        kernels.adam_parallel(p, np.ones(shape), state, kernels.adam_coefficients(1, lr=0.1))
        np.testing.assert_allclose(p, 0.9, rtol=1e-7)
        np.testing.assert_allclose(state.exp_avg, 0.1, rtol=1e-12)
        p = np.ones(shape, np.float32)
        state = kernels.RMSPropState(np.zeros(shape, np.float32), p[:0], p[:0])
        c = kernels.rmsprop_coefficients(1, lr=0.1)
        kernels.rmsprop_parallel(p, np.ones(shape, np.float32), state, c)
        np.testing.assert_allclose(state.square_avg, 0.01, rtol=1e-6)
        np.testing.assert_allclose(p, 0.0, atol=1e-5)  # 1 - 0.1/0.1


def test_optimizer_on_big_arrays_uses_parallel_path_in_place():
    """Through the optimizer (the backend picks the parallel loop at this size)."""
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
    a, b = [p.copy(), _state("adam", p)], [p.copy(), _state("adam", p)]
    coef = _coef("adam", 2, "amsgrad_raw_l2_max")
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        kernels.adam_parallel(a[0], g, a[1], coef)
    finally:
        numba.set_num_threads(n)
    kernels.adam_parallel(b[0], g, b[1], coef)
    for x, y in zip([a[0], *a[1]], [b[0], *b[1]], strict=True):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------------------------
# the many-array loop of the optimizers
# ---------------------------------------------------------------------------------------------


def _step_args(name, t, mode):
    """The positional coefficient arguments after ``t`` that the optimizers' compiled step
    takes, for ``MODES[name][mode]``."""
    spec = ALGORITHMS[name]
    kw = dict(MODES[name][mode])
    args = spec.resolve(kw.pop("convention", "pytorch"), **kw)
    if spec.carry:  # NAdam's running product through step t - 1
        args["mu_product"] = _coef(name, t - 1, mode).mu_product if t > 1 else 1.0
    return tuple(args[a] for a in spec.arguments)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_step_equals_one_kernel_call_per_array(name):
    """The optimizers' compiled step: the coefficients of step t from the hyperparameters,
    then the serial or parallel loop per array (tuples of flat arrays of one dtype), equal
    to one public kernel call per array with the builder's coefficients."""
    spec, compiled = ALGORITHMS[name], COMPILED[name]
    sizes = [7, 12, 50, BIG]
    rng = np.random.default_rng(10)
    ps = [rng.standard_normal(s) for s in sizes]
    gs = [rng.standard_normal(s) for s in sizes]
    states = [[np.zeros(s) for s in sizes] for _ in range(3)]
    one = [[x.copy() for x in arrs] for arrs in (ps, *states)]
    mode = list(MODES[name])[1]
    for t in (1, 2, 3):
        coef = _coef(name, t, mode)
        carried = compiled.step(tuple(ps), tuple(gs), *map(tuple, states), t,
                                _step_args(name, t, mode), None)  # fmt: skip
        if spec.carry:
            assert carried == coef.mu_product
        for k in range(4):
            getattr(kernels, name)(one[0][k], gs[k], spec.State(*(s[k] for s in one[1:])), coef)
    for arrs, ones in zip((ps, *states), one, strict=True):
        for x, y in zip(arrs, ones, strict=True):
            np.testing.assert_array_equal(x, y)


def test_step_skips_nonfinite_arrays():
    compiled = COMPILED["rmsprop"]
    sizes = [7, 12, 5]
    rng = np.random.default_rng(11)
    ps = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    gs = [rng.standard_normal(s).astype(np.float32) for s in sizes]
    gs[1][11] = np.nan
    vs, gb, bf = ([np.zeros(s, np.float32) for s in sizes] for _ in range(3))
    before = [p.copy() for p in ps]
    skipped = np.zeros(3, np.int64)
    args = (tuple(ps), tuple(gs), tuple(vs), tuple(gb), tuple(bf), 1,
            _step_args("rmsprop", 1, "centered_momentum"))  # fmt: skip
    compiled.step(*args, skipped)
    np.testing.assert_array_equal(skipped, [0, 1, 0])
    np.testing.assert_array_equal(ps[1], before[1])
    np.testing.assert_array_equal(vs[1], 0)
    assert not np.array_equal(ps[0], before[0]) and not np.array_equal(ps[2], before[2])
    # without skipping (no counters), the NaN propagates to that element only
    compiled.step(*args, None)
    assert np.isnan(ps[1][11]) and np.isfinite(ps[1][:11]).all()
    np.testing.assert_array_equal(skipped, [0, 1, 0])


# ---------------------------------------------------------------------------------------------
# the kernels refuse what they cannot update, before writing anything
# ---------------------------------------------------------------------------------------------


def _kernel_case(dtype=np.float64, n=5):
    p = np.ones(n, dtype)
    coef = kernels.adam_coefficients(1, amsgrad=True)
    return p, np.ones(n, dtype), kernels.adam_state(p, coef), coef


def _bad_calls():
    p, g, s, c = _kernel_case()
    ro = p.copy()
    ro.flags.writeable = False
    strided = np.ones(10)[::2]
    return {
        "int64 p": ((np.ones(5, np.int64), g, s, c), TypeError, "p must have dtype float32"),
        "int64 g": ((p, np.ones(5, np.int64), s, c), TypeError, "g must have dtype float32"),
        "dtype mismatch": ((p, g.astype(np.float32), s, c), TypeError, "g has dtype float32"),
        "strided p": ((strided, g, s, c), ValueError, "p must be C-contiguous"),
        "strided g": ((p, strided, s, c), ValueError, "g must be C-contiguous"),
        "read-only p": ((ro, g, s, c), ValueError, "p is read-only"),
        "size g": ((p, np.ones(4), s, c), ValueError, "g has 4 elements but p has 5"),
        "size state": ((p, g, s._replace(exp_avg_sq=np.ones(4)), c), ValueError,
                       "state.exp_avg_sq has 4 elements"),
        "used buffer empty": ((p, g, s._replace(max_exp_avg_sq=np.ones(0)), c), ValueError,
                              "state.max_exp_avg_sq has 0 elements"),
        "read-only state": ((p, g, s._replace(exp_avg=ro), c), ValueError,
                            "state.exp_avg is read-only"),
        "list p": (([1.0] * 5, g, s, c), TypeError, "p must be a numpy array"),
        "tuple state": ((p, g, tuple(s), c), TypeError, "state must be a AdamState"),
        "tuple coef": ((p, g, s, tuple(c)), TypeError, "coef must be a AdamCoefficients"),
        "other record": ((p, g, s, kernels.nadam_coefficients(1)), TypeError,
                         "coef must be a AdamCoefficients"),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_bad_calls()))
@pytest.mark.parametrize("kernel", ["adam", "adam_parallel"])
def test_kernels_refuse_bad_arguments_before_writing(kernel, case):
    args, exc, match = _bad_calls()[case]
    before = [np.array(a, copy=True) for a in (args[0], *args[2])]
    with pytest.raises(exc, match=match):
        getattr(kernels, kernel)(*args)
    for a, b in zip((args[0], *args[2]), before, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_kernels_refuse_bad_arguments_in_njit_code():
    """In compiled code the types are checked when the caller compiles, with a message that
    names the argument; sizes are checked at run time, before anything is written."""

    @numba.njit
    def call(p, g, s, c):
        kernels.adam(p, g, s, c)

    p, g, s, c = _kernel_case()
    cases = [
        ((np.ones(5, np.int64), g, s, c), "p must be a float32 or float64 array"),
        ((p, g.astype(np.float32), s, c), "g has dtype float32"),
        ((p, np.ones(10)[::2], s, c), "g must be a C-contiguous array"),
        ((p, g, tuple(s), c), "state must be a AdamState"),
        ((p, g, s, kernels.rmsprop_coefficients(1)), "coef must be a AdamCoefficients"),
    ]
    for args, match in cases:
        with pytest.raises(numba.core.errors.TypingError, match=match):
            call(*args)
    ro = p.copy()
    ro.flags.writeable = False
    with pytest.raises(numba.core.errors.TypingError, match="p is read-only"):
        call(ro, g, s, c)
    with pytest.raises(ValueError, match="g: size differs from p"):
        call(p, np.ones(4), s, c)
    np.testing.assert_array_equal(p, 1.0)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_state_builder(name):
    spec = ALGORITHMS[name]
    p = np.ones((3, 4), np.float32)
    coef = getattr(kernels, f"{name}_coefficients")(1)
    state = getattr(kernels, f"{name}_state")(p, coef)
    assert isinstance(state, spec.State)
    used = (True, *spec.buffers(coef))
    for a, use in zip(state, used, strict=True):
        assert a.dtype == np.float32 and a.shape == ((3, 4) if use else (0,))
    if name == "rmsprop":
        tf1 = kernels.rmsprop_state(p, coef, initial_scale=1.0)
        np.testing.assert_array_equal(tf1.square_avg, 1.0)


# ---------------------------------------------------------------------------------------------
# all_finite
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_finite(dtype):
    x = np.linspace(-1e30, 1e30, 1001).astype(dtype)
    assert kernels.all_finite(x)
    assert kernels.all_finite(np.zeros(0, dtype))
    big = np.finfo(dtype).max
    assert kernels.all_finite(np.array([big, -big, np.finfo(dtype).tiny, 0.0], dtype))
    for bad in (np.nan, np.inf, -np.inf):
        for idx in (0, 500, 1000):
            y = x.copy()
            y[idx] = bad
            assert not kernels.all_finite(y), (bad, idx)


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
    coef = kernels.adam_coefficients(5, lr=0.01, eps=0.1, weight_decay=0.01,
                                     decoupled_weight_decay=True, maximize=True)  # fmt: skip
    c = kernels.cast_coefficients(coef, np.float32)
    with np.errstate(all="ignore"):
        gg = c.sign * g + c.l2 * p
        m32 = c.beta1 * m + c.one_minus_beta1 * gg
        v32 = c.beta2 * v + c.one_minus_beta2 * (gg * gg)
        p32 = c.wd_factor * p - c.step_size * m32 / (np.sqrt(c.c2 * v32 + c.eps_root) + c.eps)
    assert p32.dtype == np.float32
    # the same in float64 then rounded
    d = coef
    p64, g64, m64, v64 = (a.astype(np.float64) for a in (p, g, m, v))
    gd = d.sign * g64 + d.l2 * p64
    md = d.beta1 * m64 + d.one_minus_beta1 * gd
    vd = d.beta2 * v64 + d.one_minus_beta2 * gd * gd
    pd = d.wd_factor * p64 - d.step_size * md / (np.sqrt(d.c2 * vd + d.eps_root) + d.eps)
    pd = pd.astype(np.float32)

    pk, mk, vk = p.copy(), m.copy(), v.copy()
    kernels.adam(pk, g, kernels.AdamState(mk, vk, vk[:0]), coef)
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
    coef = kernels.rmsprop_coefficients(1, lr=0.01, decay=0.9, eps=0.1, convention="keras",
                                        decoupled_weight_decay=False)  # fmt: skip
    c = kernels.cast_coefficients(coef, np.float32)
    v32 = c.decay * v + c.one_minus_decay * (g * g)
    p32 = p - c.lr_out * (c.lr_in * (g / (np.sqrt(c.c * v32 + c.eps_in) + c.eps_out)))
    pk, vk = p.copy(), v.copy()
    kernels.rmsprop(pk, g, kernels.RMSPropState(vk, vk[:0], vk[:0]), coef)
    assert pk.dtype == np.float32
    np.testing.assert_array_max_ulp(vk, v32, maxulp=1)
    np.testing.assert_array_max_ulp(pk, p32, maxulp=1)
    assert np.mean(pk == p32) > 0.99


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_optimizer_keeps_float32_state(name):
    x = np.ones(10, np.float32)
    kw = {"rmsprop": dict(momentum=0.9, centered=True), "adam": dict(amsgrad=True)}
    opt = {"adam": fa.Adam, "rmsprop": fa.RMSProp, "nadam": fa.NAdam}[name](x, **kw.get(name, {}))
    opt.step(np.ones(10, np.float32))
    assert x.dtype == np.float32
    for k, val in opt.state_dict().items():
        if "/" not in k and "." in k:
            assert val.dtype == np.float32, k


def test_import_compiles_nothing():
    """Lazy compilation: a fresh interpreter that imports fastadam has no compiled
    signature (cache=True loads on first call, not at import)."""
    import subprocess
    import sys

    code = (
        "from fastadam.cpu.kernels import COMPILED\n"
        "fs = [getattr(c, n) for c in COMPILED.values() for n in "
        "('rule', 'coefficients', 'cast', 'buffers', 'serial', 'parallel', 'step',"
        " 'step_serial')]\n"
        "print(len(fs), sum(len(f.signatures) for f in fs))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    count, compiled = out.stdout.split()
    assert int(count) == 8 * len(ALGORITHMS) and compiled == "0"
