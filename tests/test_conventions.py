"""Every convention and option against the independent float64 reference (tests/naive.py),
and the facts of docs/conventions.rst.

50 steps, non-default hyperparameters (eps = 0.1 so that eps placement matters, betas
(0.8, 0.99), momentum 0.9, ...), a gradient scale that rises and falls (so that AMSGrad's
maximum and the lr schedule matter), several arrays per optimizer.
"""

import math

import numba
import numpy as np
import pytest
from naive import (
    RTOL64,
    adam_reference,
    assert_close64,
    copy_params,
    f32_atol,
    make_data,
    rmsprop_reference,
    schedule,
)

import fastadam as fa
from fastadam import kernels

N_STEPS = 50

LAYOUTS = {
    # name: (shapes, dtypes)
    "f64": ([(7,), (3, 4)], [np.float64, np.float64]),
    "f32": ([(7,), (3, 4)], [np.float32, np.float32]),
    "mixed": ([(5,), (3, 4), (2, 3)], [np.float32, np.float64, np.float32]),
    "single": ([(4, 5)], [np.float64]),
}


def _run(make_opt, params, grads, single=False):
    """Step a fastadam optimizer over ``grads``; return the params after each step."""
    if single:
        opt = make_opt(params[0])
        traj = []
        for g in grads:
            opt.step(g[0])
            traj.append([params[0].copy()])
    else:
        opt = make_opt(params)
        traj = []
        for g in grads:
            opt.step(g)
            traj.append(copy_params(params))
    return opt, traj


def _compare(opt, traj, ref_traj, ref_state, params0, dtypes, rtol64=RTOL64, what=""):
    assert opt.t == len(ref_traj)
    for i, dt in enumerate(dtypes):
        if dt == np.float64:
            for t, (got, exp) in enumerate(zip(traj, ref_traj, strict=True), start=1):
                assert_close64(got[i], exp[i], rtol=rtol64, err_msg=f"{what} array {i} t={t}")
        else:
            ref_i = [params0[i]] + [step[i] for step in ref_traj]
            atol = f32_atol(ref_i)
            got = np.array([step[i] for step in traj], dtype=np.float64)
            exp = np.array([step[i] for step in ref_traj], dtype=np.float64)
            err = float(np.max(np.abs(got - exp))) if got.size else 0.0
            assert err <= atol, f"{what} float32 array {i}: error {err:.3g} > {atol:.3g}"
    # state buffers (float64 arrays only: float32 state is checked through the params)
    sd = opt.state_dict()
    for name, buffers in ref_state.items():
        for i, dt in enumerate(dtypes):
            if dt == np.float64:
                assert_close64(sd[f"{name}.{i}"], buffers[i], rtol=rtol64,
                               err_msg=f"{what} state {name}.{i}")  # fmt: skip
    n_state = {k.split(".")[0] for k in sd if "." in k}
    assert n_state == set(ref_state), "the optimizer keeps other state buffers"


# ---------------------------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------------------------

ADAM_BASE = dict(lr=0.02, betas=(0.8, 0.99), eps=0.1)
EPS_HAT = {"pytorch": False, "keras": True, "tf1": True, "optax": False}
CORRECTED = {"pytorch": False, "keras": False, "tf1": False, "optax": True}
DECOUPLED = {"pytorch": False, "keras": True, "tf1": False, "optax": False}


def _adam_cases(conv):
    """(case name, fastadam kwargs, AdamW?) for every option ``conv`` supports."""
    cases = [
        ("plain", {}, False),
        ("maximize", {"maximize": True}, False),
        ("schedule", {"lr": schedule}, False),
        ("no_bias_correction", {"bias_correction": False}, False),
        ("eps_root", {"eps_root": 0.01}, False),
        ("eps_hat_knob", {"eps_hat": not EPS_HAT[conv]}, False),
        ("betas_0", {"betas": (0.0, 0.9)}, False),
    ]
    if conv != "tf1":  # TF1 has neither amsgrad nor weight decay
        cases += [
            ("amsgrad", {"amsgrad": True}, False),
            ("amsgrad_corrected_knob",
             {"amsgrad": True, "amsgrad_corrected": not CORRECTED[conv]}, False),
            ("weight_decay", {"weight_decay": 0.05}, False),
            ("weight_decay_other_coupling",
             {"weight_decay": 0.05, "decoupled_weight_decay": not DECOUPLED[conv]}, False),
            ("adamw_default_decay", {}, True),
            ("adamw", {"weight_decay": 0.1, "lr": schedule}, True),
            ("all", {"amsgrad": True, "weight_decay": 0.05, "maximize": True,
                     "lr": schedule, "eps_root": 1e-3}, False),
            ("adamw_all", {"amsgrad": True, "weight_decay": 0.1, "maximize": True,
                           "lr": schedule}, True),
        ]  # fmt: skip
    return cases


ADAM_PARAMS = [
    pytest.param(conv, name, kw, adamw, layout, id=f"{conv}-{name}-{layout}")
    for conv in ("pytorch", "keras", "tf1", "optax")
    for name, kw, adamw in _adam_cases(conv)
    for layout in ("f64", "f32")
] + [
    pytest.param(conv, name, kw, adamw, layout, id=f"{conv}-{name}-{layout}")
    for conv in ("pytorch", "keras", "tf1", "optax")
    for name, kw, adamw in _adam_cases(conv)
    if name in ("plain", "all", "adamw_all")
    for layout in ("mixed", "single")
]


def _adam_ref_kwargs(kw, adamw):
    ref = dict(ADAM_BASE)
    ref.update(kw)
    if "decoupled_weight_decay" in ref:
        ref["decoupled"] = ref.pop("decoupled_weight_decay")
    if adamw and "weight_decay" not in kw:
        ref["weight_decay"] = None  # the convention's AdamW default
    return ref


@pytest.mark.parametrize("conv,name,kw,adamw,layout", ADAM_PARAMS)
def test_adam_matches_reference(conv, name, kw, adamw, layout):
    shapes, dtypes = LAYOUTS[layout]
    params, grads = make_data(shapes, N_STEPS, dtypes=dtypes, seed=1)
    params0 = copy_params(params)
    cls = fa.AdamW if adamw else fa.Adam
    fa_kw = dict(ADAM_BASE)
    fa_kw.update(kw)
    single = layout == "single"
    opt, traj = _run(lambda p: cls(p, convention=conv, **fa_kw), params, grads, single)
    ref_kw = _adam_ref_kwargs(kw, adamw)
    _, ref_state, ref_traj = adam_reference(
        params0, grads, conv, adamw=adamw, keep_trajectory=True, **ref_kw
    )
    _compare(opt, traj, ref_traj, ref_state, params0, dtypes, what=f"{conv}/{name}")


@pytest.mark.parametrize("conv", ["pytorch", "keras", "tf1", "optax"])
def test_adam_defaults_match_reference(conv):
    """Every hyperparameter left as None: the convention's defaults (docs/conventions.rst)."""
    params, grads = make_data([(6,)], 20, seed=2)
    params0 = copy_params(params)
    opt, traj = _run(lambda p: fa.Adam(p, convention=conv), params, grads)
    _, ref_state, ref_traj = adam_reference(params0, grads, conv, keep_trajectory=True)
    _compare(opt, traj, ref_traj, ref_state, params0, [np.float64])
    if conv != "tf1":
        params, grads = make_data([(6,)], 20, seed=2)
        opt, traj = _run(lambda p: fa.AdamW(p, convention=conv), params, grads)
        _, ref_state, ref_traj = adam_reference(
            params0, grads, conv, adamw=True, weight_decay=None, keep_trajectory=True
        )
        _compare(opt, traj, ref_traj, ref_state, params0, [np.float64])


def test_adam_options_change_the_result():
    """Sanity of the test data: every option above moves the reference by >> RTOL64, so a
    library that ignored one would fail."""
    params, grads = make_data([(7,)], N_STEPS, seed=1)
    base, _, _ = adam_reference(params, grads, "pytorch", **ADAM_BASE)
    for kw in [
        {"amsgrad": True}, {"weight_decay": 0.05}, {"weight_decay": 0.05, "decoupled": True},
        {"maximize": True}, {"bias_correction": False}, {"eps_root": 0.01},
        {"eps_hat": True}, {"amsgrad": True, "amsgrad_corrected": True},
    ]:  # fmt: skip
        other, _, _ = adam_reference(params, grads, "pytorch", **{**ADAM_BASE, **kw})
        rel = np.max(np.abs(other[0] - base[0])) / np.max(np.abs(base[0] - params[0]))
        assert rel > 1e-6, kw
    sched, _, _ = adam_reference(params, grads, "pytorch", **{**ADAM_BASE, "lr": schedule})
    assert np.max(np.abs(sched[0] - base[0])) > 1e-3
    # the conventions differ from each other at eps = 0.1
    for conv in ("keras", "optax"):
        kw = {**ADAM_BASE, "amsgrad": True, "weight_decay": 0.05}
        a, _, _ = adam_reference(params, grads, "pytorch", **kw)
        b, _, _ = adam_reference(params, grads, conv, **kw)
        assert np.max(np.abs(a[0] - b[0])) > 1e-4


# ---------------------------------------------------------------------------------------------
# RMSProp
# ---------------------------------------------------------------------------------------------

RMS_BASE = dict(lr=0.02, decay=0.95, eps=0.1)
EPS_IN_SQRT = {"basic": False, "pytorch": False, "keras": True, "tf1": True, "optax": True}
LR_IN_MOM = {"basic": False, "pytorch": False, "keras": True, "tf1": True, "optax": True}
DECOUPLED_RMS = {"basic": False, "pytorch": False, "keras": True, "tf1": False, "optax": False}


def _rms_cases(conv):
    cases = [
        ("plain", {}),
        ("maximize", {"maximize": True}),
        ("schedule", {"lr": schedule}),
        ("eps_in_sqrt_knob", {"eps_in_sqrt": not EPS_IN_SQRT[conv]}),
        ("initial_scale_knob", {"initial_scale": 0.5}),
        ("bias_correction_knob", {"bias_correction": True}),
    ]
    if conv != "basic":
        cases += [
            ("momentum", {"momentum": 0.9}),
            ("centered", {"centered": True}),
            ("centered_momentum", {"centered": True, "momentum": 0.9}),
            ("momentum_schedule", {"momentum": 0.9, "lr": schedule}),
            ("lr_in_momentum_knob",
             {"momentum": 0.9, "lr": schedule, "lr_in_momentum": not LR_IN_MOM[conv]}),
            ("nesterov_knob", {"momentum": 0.9, "nesterov": True, "lr": schedule}),
            ("centered_bias_correction", {"centered": True, "bias_correction": True}),
        ]  # fmt: skip
    if conv not in ("basic", "tf1"):
        cases += [
            ("weight_decay", {"weight_decay": 0.05}),
            ("weight_decay_other_coupling",
             {"weight_decay": 0.05, "decoupled_weight_decay": not DECOUPLED_RMS[conv]}),
            ("all", {"momentum": 0.9, "centered": True, "weight_decay": 0.05,
                     "maximize": True, "lr": schedule}),
        ]  # fmt: skip
    elif conv == "tf1":
        cases += [
            ("all", {"momentum": 0.9, "centered": True, "maximize": True, "lr": schedule}),
        ]
    return cases


def _ill_conditioned(conv, kw):
    """Centered + bias-corrected + eps outside the sqrt: at t = 1 the variance is
    g^2 - g^2 = 0 in exact arithmetic, so each implementation gets its own rounding residue
    delta ~ u*g^2 (clamped at 0 when negative), and sqrt(delta) ~ 1e-8*|g| against
    eps = 0.1 changes the first step by ~1e-7 relative. The comparison there is only good to
    1e-6 (float64); in float32 sqrt(u32) ~ 2.4e-4, so that case is not compared."""
    eps_in = kw.get("eps_in_sqrt", EPS_IN_SQRT[conv])
    return kw.get("centered") and kw.get("bias_correction") and not eps_in


RMS_PARAMS = [
    pytest.param(conv, name, kw, layout, id=f"{conv}-{name}-{layout}")
    for conv in ("basic", "pytorch", "keras", "tf1", "optax")
    for name, kw in _rms_cases(conv)
    for layout in ("f64", "f32")
    if not (layout == "f32" and _ill_conditioned(conv, kw))
] + [
    pytest.param(conv, name, kw, layout, id=f"{conv}-{name}-{layout}")
    for conv in ("basic", "pytorch", "keras", "tf1", "optax")
    for name, kw in _rms_cases(conv)
    if name in ("plain", "all")
    for layout in ("mixed", "single")
]


@pytest.mark.parametrize("conv,name,kw,layout", RMS_PARAMS)
def test_rmsprop_matches_reference(conv, name, kw, layout):
    shapes, dtypes = LAYOUTS[layout]
    params, grads = make_data(shapes, N_STEPS, dtypes=dtypes, seed=3)
    params0 = copy_params(params)
    fa_kw = {**RMS_BASE, **kw}
    single = layout == "single"
    opt, traj = _run(lambda p: fa.RMSProp(p, convention=conv, **fa_kw), params, grads, single)
    _, ref_state, ref_traj = rmsprop_reference(params0, grads, conv, keep_trajectory=True, **fa_kw)
    rtol = 1e-6 if _ill_conditioned(conv, kw) else RTOL64
    _compare(opt, traj, ref_traj, ref_state, params0, dtypes, rtol64=rtol,
             what=f"{conv}/{name}")  # fmt: skip


@pytest.mark.parametrize("conv", ["basic", "pytorch", "keras", "tf1", "optax"])
def test_rmsprop_defaults_match_reference(conv):
    params, grads = make_data([(6,)], 20, seed=4)
    params0 = copy_params(params)
    opt, traj = _run(lambda p: fa.RMSProp(p, convention=conv), params, grads)
    _, ref_state, ref_traj = rmsprop_reference(params0, grads, conv, keep_trajectory=True)
    _compare(opt, traj, ref_traj, ref_state, params0, [np.float64])


def test_rmsprop_reference_forms_agree():
    """The reference's framework forms agree with its generic (optax-structured) form, so a
    slip in one of them cannot hide behind the other."""
    params, grads = make_data([(9,)], N_STEPS, seed=5)
    for conv in ("pytorch", "keras", "tf1"):
        for kw in ({}, {"momentum": 0.9, "centered": True, "lr": schedule}):
            kw = {**RMS_BASE, **kw}
            a, _, _ = rmsprop_reference(params, grads, conv, **kw)
            b, _, _ = rmsprop_reference(params, grads, conv, form="generic", **kw)
            assert_close64(a[0], b[0])


# ---------------------------------------------------------------------------------------------
# The facts of docs/conventions.rst
# ---------------------------------------------------------------------------------------------


def test_eps_hat_equals_algorithm1_single_step():
    """One step: epsilon-hat (Keras) with eps_hat = eps*sqrt(1-beta2) == Algorithm 1."""
    rng = np.random.default_rng(10)
    b1, b2, eps = 0.8, 0.99, 0.1
    x0 = rng.standard_normal(50)
    g = rng.standard_normal(50)
    a, b = x0.copy(), x0.copy()
    fa.Adam(a, lr=0.05, betas=(b1, b2), eps=eps, convention="pytorch").step(g)
    fa.Adam(b, lr=0.05, betas=(b1, b2), eps=eps * math.sqrt(1 - b2), convention="keras").step(g)
    assert_close64(b - x0, a - x0, rtol=1e-14)
    # and with the same eps they differ: eps placement matters at eps = 0.1
    c = x0.copy()
    fa.Adam(c, lr=0.05, betas=(b1, b2), eps=eps, convention="keras").step(g)
    assert np.max(np.abs(c - a)) > 1e-3


def test_eps_hat_equals_algorithm1_with_per_step_eps():
    """50 steps of the kernels: eps-hat form with eps_t = eps*sqrt(1-beta2^t) == Algorithm 1."""
    rng = np.random.default_rng(11)
    b1, b2, eps, lr = 0.8, 0.99, 0.1, 0.03
    x0 = rng.standard_normal(40)
    pa, pb = x0.copy(), x0.copy()
    ma, va, mb, vb = (np.zeros(40) for _ in range(4))
    for t in range(1, N_STEPS + 1):
        g = rng.standard_normal(40)
        ca = kernels.adam_coefficients(t, lr=lr, beta1=b1, beta2=b2, eps=eps)
        cb = kernels.adam_coefficients(
            t, lr=lr, beta1=b1, beta2=b2, eps=eps * math.sqrt(1 - b2**t), eps_hat=True
        )
        kernels.adam(pa, g, kernels.AdamState(ma, va, va), ca)
        kernels.adam(pb, g, kernels.AdamState(mb, vb, vb), cb)
        assert_close64(pb - x0, pa - x0, rtol=1e-13)


@pytest.mark.parametrize("kw", [{}, {"lr": schedule, "weight_decay": 0.05, "maximize": True}])
def test_adam_beta1_zero_is_bias_corrected_optax_rmsprop(kw):
    """Adam(beta1=0) == optax RMSProp(eps_in_sqrt=False, bias_correction=True), exactly in
    exact arithmetic (the two round lr*g/D in a different order: ~1 ulp per step)."""
    params, grads = make_data([(8,), (2, 3)], N_STEPS, seed=12)
    a, b = copy_params(params), copy_params(params)
    kw = {"lr": 0.02, **kw}
    adam = fa.Adam(a, betas=(0.0, 0.95), eps=0.1, **kw)
    rms = fa.RMSProp(b, decay=0.95, eps=0.1, convention="optax", eps_in_sqrt=False,
                     bias_correction=True, **kw)  # fmt: skip
    for g in grads:
        adam.step(g)
        rms.step(g)
    for i in range(2):
        assert_close64(b[i] - params[i], a[i] - params[i], rtol=1e-13)
        assert_close64(rms.state_dict()[f"square_avg.{i}"], adam.state_dict()[f"exp_avg_sq.{i}"])


def test_adam_beta1_zero_is_not_pytorch_rmsprop():
    """...but it is not PyTorch's RMSProp (no bias correction) early on."""
    params, grads = make_data([(8,)], 10, seed=12)
    a, b = copy_params(params), copy_params(params)
    adam = fa.Adam(a, lr=0.02, betas=(0.0, 0.95), eps=0.1)
    rms = fa.RMSProp(b, lr=0.02, decay=0.95, eps=0.1, convention="pytorch")
    for g in grads:
        adam.step(g)
        rms.step(g)
    assert np.max(np.abs(a[0] - b[0])) > 1e-3


@pytest.mark.parametrize("kw", [{}, {"lr": schedule, "maximize": True}])
def test_basic_is_pytorch_without_momentum_and_optax_with_eps_outside(kw):
    params, grads = make_data([(8,), (2, 3)], N_STEPS, seed=13)
    a, b, c = copy_params(params), copy_params(params), copy_params(params)
    kw = {"lr": 0.02, "decay": 0.95, "eps": 0.1, **kw}
    basic = fa.RMSProp(a, convention="basic", **kw)
    torch_ = fa.RMSProp(b, convention="pytorch", **kw)
    optax_ = fa.RMSProp(c, convention="optax", eps_in_sqrt=False, **kw)
    for g in grads:
        basic.step(g)
        torch_.step(g)
        optax_.step(g)
    for i in range(2):
        np.testing.assert_array_equal(a[i], b[i])  # bitwise: same coefficients
        np.testing.assert_array_equal(a[i], c[i])  # 1*(lr*u) == lr*(1*u) exactly
    ref, _, _ = rmsprop_reference(params, grads, "basic", **kw)
    for i in range(2):
        assert_close64(a[i], ref[i])


def test_lr_t_over_lr_values():
    """lr_t/lr = sqrt(1-beta2^t)/(1-beta1^t): 0.316 at t=1, min 0.152 at t=12, 0.31 at
    t=100, 0.80 at t=1000, first >= 0.99 at t=3916 (default betas)."""
    lr = 1e-3

    def ratio(t):
        return kernels.adam_coefficients(t, lr=lr, convention="keras").step_size / lr

    r = np.array([ratio(t) for t in range(1, 5001)])
    assert round(r[0], 3) == 0.316
    assert int(np.argmin(r)) + 1 == 12
    assert round(r.min(), 3) == 0.152
    assert round(r[99], 2) == 0.31
    assert round(r[999], 2) == 0.80
    assert int(np.argmax(r >= 0.99)) + 1 == 3916
    # and the numba-compiled coefficient function agrees
    compiled = numba.njit(lambda t: kernels.adam_coefficients(t, lr=1e-3, convention="keras"))
    assert compiled(12).step_size / lr == pytest.approx(r[11], rel=1e-15)
    # in the Algorithm-1 form lr is divided by 1-beta1^t only
    c = kernels.adam_coefficients(1, lr=lr)
    assert c.step_size == pytest.approx(lr / 0.1, rel=1e-15)


@pytest.mark.parametrize("conv", ["pytorch", "keras"])
def test_rmsprop_lr_inside_vs_outside_momentum_buffer(conv):
    """Identical (to rounding) for a constant lr, different under a schedule."""
    params, grads = make_data([(10,)], N_STEPS, seed=14)
    other = not LR_IN_MOM[conv]
    for lr, same in ((0.02, True), (schedule, False)):
        a, b = copy_params(params), copy_params(params)
        kw = dict(lr=lr, decay=0.95, eps=0.1, momentum=0.9, convention=conv)
        oa = fa.RMSProp(a, **kw)
        ob = fa.RMSProp(b, lr_in_momentum=other, **kw)
        for g in grads:
            oa.step(g)
            ob.step(g)
        if same:
            assert_close64(b[0] - params[0], a[0] - params[0], rtol=1e-13)
        else:
            rel = np.max(np.abs(b[0] - a[0])) / np.max(np.abs(a[0] - params[0]))
            assert rel > 1e-2


def test_adam_beta1_is_not_rmsprop_momentum():
    """Adam with beta1 = 0.9 vs RMSProp with momentum 0.9 (same decay, eps): O(1) apart."""
    params, grads = make_data([(200,)], N_STEPS, seed=15)
    a, b = copy_params(params), copy_params(params)
    adam = fa.Adam(a, lr=0.01, betas=(0.9, 0.999), eps=0.1)
    rms = fa.RMSProp(b, lr=0.01, decay=0.999, eps=0.1, momentum=0.9)
    for g in grads:
        adam.step(g)
        rms.step(g)
    da, db = a[0] - params[0], b[0] - params[0]
    assert np.linalg.norm(da - db) / np.linalg.norm(da) > 0.3


@pytest.mark.parametrize("eps_in_sqrt", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_centered_rmsprop_first_step_is_finite(eps_in_sqrt, dtype):
    """Centered + bias-corrected: at t = 1 the variance g^2 - g^2 rounds to +-tiny; the
    negative ones are clamped at 0 (optax 0.2.8 gives NaN there)."""
    rng = np.random.default_rng(16)
    g = rng.standard_normal(2000).astype(dtype)
    # the situation is real: without a clamp the reference's variance is negative somewhere
    d = 0.9
    c = 1.0 / (1.0 - d)
    v = (1 - d) * g.astype(np.float64) ** 2
    gbar = (1 - d) * g.astype(np.float64)
    assert np.any(v * c - (gbar * c) ** 2 < 0)
    x0 = rng.standard_normal(2000).astype(dtype)
    x = x0.copy()
    opt = fa.RMSProp(x, lr=0.01, decay=d, eps=1e-8, centered=True, convention="optax",
                     bias_correction=True, eps_in_sqrt=eps_in_sqrt)  # fmt: skip
    opt.step(g)
    assert np.all(np.isfinite(x))
    assert np.all(np.isfinite(opt.state_dict()["square_avg.0"]))
    # |step| <= lr*|g|/eps (variance >= 0 after the clamp), and it is finite everywhere
    bound = 0.01 * np.abs(g.astype(np.float64)) / (1e-8 if not eps_in_sqrt else math.sqrt(1e-8))
    assert np.all(np.abs(x.astype(np.float64) - x0) <= bound * (1 + 1e-6) + 1e-30)
    # the same holds for every later step
    for _ in range(5):
        opt.step(g)
    assert np.all(np.isfinite(x))


def test_centered_pytorch_rmsprop_many_steps_constant_gradient_is_finite():
    """A constant gradient makes v - gbar^2 -> 0 from rounding forever (no bias correction
    here: it approaches 0 as decay^t); the clamp keeps every step finite."""
    g = np.full(100, 0.7)
    x = np.zeros(100)
    opt = fa.RMSProp(x, lr=0.01, decay=0.5, eps=1e-8, centered=True)
    for _ in range(200):
        opt.step(g)
    assert np.all(np.isfinite(x))
