"""NAdam: fastadam.NAdam and fastadam.kernels.nadam* against the independent float64
reference (tests/naive.py: each framework's update in its own form), and against
torch.optim.NAdam, optax.nadam/nadamw and keras.optimizers.Nadam themselves when they are
installed (skipped otherwise).

50 steps, non-default hyperparameters (eps = 0.1 so that where eps sits matters, betas
(0.8, 0.99), weight decay L2 and decoupled, maximize, an lr schedule, momentum_decay), a
gradient scale that rises and falls, several arrays per optimizer, float32 and float64.

What the frameworks do that fastadam does not (measured; each is modelled by an option of
:func:`naive.nadam_reference`, with which the framework agrees to ~1e-16):

- torch.optim.NAdam keeps ``mu_product`` in a 0-d tensor of ``_get_scalar_dtype()``:
  float32 unless torch's default dtype is float64. fastadam carries it in float64: equal to
  torch to RTOL64 when torch's default dtype is float64, ~1e-10 apart otherwise.
- Keras 3 (TensorFlow backend) computes ``u_t`` and ``u_{t+1}`` in ``update_step`` with
  ``ops.cast(0.96, var_dtype)``, which for a float64 variable is float32(0.96) =
  0.96 * (1 - 2.2e-8), but updates ``_u_product`` with 0.96: a float64 Keras run is ~1e-8
  (relative, measured 1.2e-8 .. 2.0e-8) from the NAdam it defines; fastadam follows the
  definition (0.96).
"""

import io
import math
import os

import numba
import numpy as np
import pytest
from naive import (
    NADAM_CONVENTIONS,
    U32,
    assert_close64,
    copy_params,
    make_data,
    nadam_reference,
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

BASE = dict(lr=0.02, betas=(0.8, 0.99), eps=0.1)
SCHEDULE = {"pytorch": True, "keras": True, "optax": False}
DECOUPLED = {"pytorch": False, "keras": True, "optax": False}
#: a momentum_decay other than the convention's (optax's is unused without the schedule)
OTHER_PSI = {"pytorch": 0.05, "keras": 0.5, "optax": 0.5}


def _key(sd, *parts):
    """A state_dict key, whichever separator this fastadam uses ('carry.0.mu_product' or
    'carry/0/mu_product')."""
    for sep in (".", "/"):
        key = sep.join(str(p) for p in parts)
        if key in sd:
            return key
    raise KeyError(f"no state_dict key for {parts}: {sorted(sd)}")


def _mu_product(opt):
    sd = opt.state_dict()
    return float(sd[_key(sd, "carry", 0, "mu_product")])


def nadam_f32_atol(trajectory, terms):
    """Absolute tolerance for a float32 run against the float64 reference.

    ``trajectory``: one array's reference values (index 0: the float32 initial values);
    ``terms``: that array's largest ``(|step_m m| + |step_g g|) / denom`` at each step
    (``nadam_reference(terms=...)``). This is :func:`naive.f32_atol`'s bound,
    ``T u (2 max|p| + (10 + T) max|Delta|)``, with max|Delta| replaced by the larger of
    max|Delta| and the largest term: NAdam's step is the sum of two terms (the Nesterov
    momentum and the gradient) that may have opposite signs, and the roundings of each
    (its float32 coefficient, the product, the first moment's accumulated error) are
    relative to the term, not to the sum. The float32 casts of ``step_m``, ``step_g``,
    ``c2`` and ``wd_factor`` are among the ~10 roundings per step counted there.
    """
    traj = [np.asarray(a, dtype=np.float64) for a in trajectory]
    n_steps = len(traj) - 1
    pmax = max(float(np.max(np.abs(a))) for a in traj)
    dmax = max(float(np.max(np.abs(b - a))) for a, b in zip(traj[:-1], traj[1:], strict=True))
    dmax = max(dmax, max(terms))
    return n_steps * U32 * (2.0 * pmax + (10 + n_steps) * dmax)


def _run(make_opt, params, grads, single=False):
    """Step a fastadam optimizer over ``grads``; return it and the params after each step."""
    opt = make_opt(params[0] if single else params)
    traj = []
    for g in grads:
        opt.step(g[0] if single else g)
        traj.append(copy_params(params))
    return opt, traj


def _compare(opt, traj, params0, grads, dtypes, ref_kw, what=""):
    """fastadam's trajectory against the reference's: float64 arrays to RTOL64 at every
    step, float32 arrays within :func:`nadam_f32_atol`; the float64 state buffers and the
    carried ``mu_product`` too. Returns the largest float32 error / bound (for margins)."""
    terms = []
    _, ref_state, ref_traj = nadam_reference(
        params0, grads, keep_trajectory=True, terms=terms, **ref_kw
    )
    assert opt.t == len(ref_traj) == len(grads)
    worst = 0.0
    for i, dt in enumerate(dtypes):
        if dt == np.float64:
            for t, (got, exp) in enumerate(zip(traj, ref_traj, strict=True), start=1):
                assert_close64(got[i], exp[i], err_msg=f"{what} array {i} t={t}")
        else:
            ref_i = [params0[i]] + [step[i] for step in ref_traj]
            atol = nadam_f32_atol(ref_i, [step[i] for step in terms])
            got = np.array([step[i] for step in traj], dtype=np.float64)
            exp = np.array([step[i] for step in ref_traj], dtype=np.float64)
            err = float(np.max(np.abs(got - exp)))
            assert err <= atol, f"{what} float32 array {i}: error {err:.3g} > {atol:.3g}"
            worst = max(worst, err / atol)
    sd = opt.state_dict()
    for name in ("exp_avg", "exp_avg_sq"):
        for i, dt in enumerate(dtypes):
            if dt == np.float64:
                assert_close64(sd[_key(sd, name, i)], ref_state[name][i],
                               err_msg=f"{what} state {name}.{i}")  # fmt: skip
    buffers = {k.split(".")[0] for k in sd if k.count(".") == 1 and k[-1].isdigit()}
    assert buffers == {"exp_avg", "exp_avg_sq"}, "NAdam keeps other state buffers"
    # P_t: a product of 50 factors, each rounded once in either implementation
    assert _mu_product(opt) == pytest.approx(ref_state["mu_product"], rel=1e-13, abs=0)
    return worst


# ---------------------------------------------------------------------------------------------
# against the reference
# ---------------------------------------------------------------------------------------------


def _cases(conv):
    """(case name, fastadam keywords) for every option ``conv`` has."""
    wd_other = {"weight_decay": 0.05, "decoupled_weight_decay": not DECOUPLED[conv]}
    knob = {"momentum_schedule": not SCHEDULE[conv], "momentum_decay": OTHER_PSI[conv]}
    return [
        ("plain", {}),
        ("maximize", {"maximize": True}),
        ("schedule", {"lr": schedule}),
        ("eps_root", {"eps_root": 0.01}),
        ("weight_decay", {"weight_decay": 0.05}),
        ("weight_decay_other_coupling", wd_other),
        ("momentum_decay", {"momentum_decay": OTHER_PSI[conv]}),
        ("momentum_schedule_knob", knob),
        ("beta1_0", {"betas": (0.0, 0.9)}),
        ("all", {"weight_decay": 0.05, "maximize": True, "lr": schedule, "eps_root": 1e-3,
                 "momentum_decay": OTHER_PSI[conv]}),
        ("all_other_coupling", {**wd_other, "maximize": True, "lr": schedule}),
    ]  # fmt: skip


PARAMS = [
    pytest.param(conv, name, kw, layout, id=f"{conv}-{name}-{layout}")
    for conv in NADAM_CONVENTIONS
    for name, kw in _cases(conv)
    for layout in ("f64", "f32")
] + [
    pytest.param(conv, name, kw, layout, id=f"{conv}-{name}-{layout}")
    for conv in NADAM_CONVENTIONS
    for name, kw in _cases(conv)
    if name in ("plain", "all", "all_other_coupling")
    for layout in ("mixed", "single")
]


@pytest.mark.parametrize("conv,name,kw,layout", PARAMS)
def test_nadam_matches_reference(conv, name, kw, layout):
    shapes, dtypes = LAYOUTS[layout]
    params, grads = make_data(shapes, N_STEPS, dtypes=dtypes, seed=31)
    params0 = copy_params(params)
    fa_kw = {**BASE, **kw}
    single = layout == "single"
    opt, traj = _run(lambda p: fa.NAdam(p, convention=conv, **fa_kw), params, grads, single)
    _compare(opt, traj, params0, grads, dtypes, dict(convention=conv, **fa_kw),
             what=f"{conv}/{name}")  # fmt: skip


def test_nadam_float32_margins():
    """The float32 bound is not loose to the point of hiding a formula difference: the
    errors of every case of test_nadam_matches_reference are 1/70 to 1/11 of it (measured),
    and a small formula difference (eps_root = 1e-3) moves the result by > 10 times it."""
    shapes, dtypes = LAYOUTS["f32"]
    worst = 0.0
    for conv in NADAM_CONVENTIONS:
        params, grads = make_data(shapes, N_STEPS, dtypes=dtypes, seed=31)
        params0 = copy_params(params)
        kw = {**BASE, "weight_decay": 0.05, "lr": schedule}
        opt, traj = _run(lambda p, c=conv, k=kw: fa.NAdam(p, convention=c, **k), params, grads)
        worst = max(worst, _compare(opt, traj, params0, grads, dtypes,
                                    dict(convention=conv, **kw)))  # fmt: skip
    assert worst < 0.5
    # a formula difference: eps_root = 1e-3 moves the float32 result by >> the bound
    terms = []
    p64 = [p.astype(np.float64) for p in params0]
    ref, _, traj = nadam_reference(p64, grads, "pytorch", keep_trajectory=True, terms=terms,
                                   **BASE)  # fmt: skip
    other, _, _ = nadam_reference(p64, grads, "pytorch", eps_root=1e-3, **BASE)
    atol = nadam_f32_atol([params0[0]] + [s[0] for s in traj], [s[0] for s in terms])
    assert np.max(np.abs(other[0] - ref[0])) > 10 * atol


@pytest.mark.parametrize("conv", NADAM_CONVENTIONS)
def test_nadam_defaults_match_reference(conv):
    """Every hyperparameter left as None: the framework's defaults (naive.NADAM_DEFAULTS,
    from the frameworks' signatures). Compared as displacements, which are small here."""
    params, grads = make_data([(6,), (2, 3)], 20, seed=32)
    params0 = copy_params(params)
    opt, traj = _run(lambda p: fa.NAdam(p, convention=conv), params, grads)
    _, ref_state, ref_traj = nadam_reference(params0, grads, conv, keep_trajectory=True)
    for i in range(2):
        for got, exp in zip(traj, ref_traj, strict=True):
            assert_close64(got[i] - params0[i], exp[i] - params0[i])
    assert _mu_product(opt) == pytest.approx(ref_state["mu_product"], rel=1e-14, abs=0)


def _rel_change(a, b, p0):
    return float(np.max(np.abs(a[0] - b[0])) / np.max(np.abs(b[0] - p0[0])))


def test_nadam_options_change_the_result():
    """Sanity of the test data: every option moves the reference by >> RTOL64, so a library
    that ignored one would fail; and the three conventions differ from each other."""
    params, grads = make_data([(7,)], N_STEPS, seed=31)
    for conv in NADAM_CONVENTIONS:
        base, _, _ = nadam_reference(params, grads, conv, **BASE)
        for _, kw in _cases(conv)[1:]:
            if conv == "optax" and set(kw) == {"momentum_decay"}:
                continue  # no schedule: psi is unused (and that case checks it is)
            other, _, _ = nadam_reference(params, grads, conv, **{**BASE, **kw})
            assert _rel_change(other, base, params) > 1e-5, (conv, kw)
    a, _, _ = nadam_reference(params, grads, "pytorch", **BASE)
    b, _, _ = nadam_reference(params, grads, "keras", **BASE)
    c, _, _ = nadam_reference(params, grads, "optax", **BASE)
    assert min(_rel_change(a, b, params), _rel_change(b, c, params),
               _rel_change(a, c, params)) > 1e-3  # fmt: skip


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"weight_decay": 0.05, "maximize": True, "lr": schedule},
        {"weight_decay": 0.05, "decoupled_weight_decay": True, "eps_root": 1e-3},
        {"weight_decay": 0.05, "decoupled_weight_decay": False, "momentum_decay": 0.3},
    ],
)
def test_nadam_reference_forms_agree(kw):
    """The reference's Keras form (u_t, _u_product, assign_add) and optax form (Nesterov
    mu_hat of scale_by_adam) agree with its PyTorch form (mu, mu_product, two addcdiv), so
    that a slip in one cannot hide behind fastadam making the same slip."""
    params, grads = make_data([(9,), (2, 2)], N_STEPS, seed=33)
    for conv, schedule_ in (("keras", True), ("optax", False), ("pytorch", False)):
        k = {**BASE, **kw, "momentum_schedule": schedule_}
        if not schedule_:
            k.pop("momentum_decay", None)
        own = conv if conv != "pytorch" else "optax"  # pytorch without schedule: optax form
        a, sa, _ = nadam_reference(params, grads, conv, form=own, **k)
        b, sb, _ = nadam_reference(params, grads, conv, form="pytorch", **k)
        for i in range(2):
            assert_close64(a[i], b[i], err_msg=conv)
            assert_close64(sa["exp_avg_sq"][i], sb["exp_avg_sq"][i])
        assert sa["mu_product"] == pytest.approx(sb["mu_product"], rel=1e-14, abs=0)


# ---------------------------------------------------------------------------------------------
# kernels: coefficients from Python and @njit, a user's @njit loop
# ---------------------------------------------------------------------------------------------

COEF_KW = {
    "pytorch": dict(lr=0.02, beta1=0.8, beta2=0.99, eps=0.1, weight_decay=0.05,
                    momentum_decay=0.01, maximize=True),
    "keras": dict(lr=0.02, beta1=0.8, beta2=0.99, eps=0.1, weight_decay=0.05),
    "optax": dict(lr=0.02, beta1=0.8, beta2=0.99, eps=0.1, eps_root=1e-3, weight_decay=0.05,
                  decoupled_weight_decay=True),
}  # fmt: skip

_COMPILED = {}


def _compiled_builder(conv, carry):
    """``f(t, mu_product)`` (or ``f(t)``) calling ``kernels.nadam_coefficients`` with this
    convention's keywords in a user's @njit function."""
    if (conv, carry) not in _COMPILED:
        kw = ", ".join(f"{k}={v!r}" for k, v in COEF_KW[conv].items())
        args = "t, mp" if carry else "t"
        extra = "mu_product=mp, " if carry else ""
        src = (f"def f({args}):\n    return kernels.nadam_coefficients(t, {kw}, {extra}"
               f"convention={conv!r})\n")  # fmt: skip
        namespace = {"kernels": kernels}
        exec(src, namespace)  # noqa: S102
        _COMPILED[conv, carry] = numba.njit(namespace["f"])
    return _COMPILED[conv, carry]


@pytest.mark.parametrize("conv", NADAM_CONVENTIONS)
def test_nadam_coefficients_python_and_njit_bitwise(conv):
    """The keyword builder from Python and from @njit code: the same record, bitwise, with
    ``mu_product`` carried from the previous step and with it left to its default (None:
    P_{t-1} computed from scratch, in the same order, so bitwise equal to the carried one);
    ``c.mu_product`` is P_t, the argument of step t + 1."""
    kw = COEF_KW[conv]
    jit_carry, jit_none = _compiled_builder(conv, True), _compiled_builder(conv, False)
    carried = 1.0
    for t in range(1, 201):
        py = kernels.nadam_coefficients(t, **kw, mu_product=carried, convention=conv)
        py_none = kernels.nadam_coefficients(t, **kw, convention=conv)
        jc, jn = jit_carry(t, carried), jit_none(t)
        assert type(py) is type(jc) is type(jn) is kernels.NAdamCoefficients
        assert tuple(py) == tuple(py_none) == tuple(jc) == tuple(jn), t
        carried = py.mu_product
    # at a large t without a carry (the product from scratch) too
    for t in (1000, 5000):
        assert tuple(kernels.nadam_coefficients(t, **kw, convention=conv)) == tuple(jit_none(t))


@pytest.mark.parametrize("conv", NADAM_CONVENTIONS)
def test_nadam_coefficients_values(conv):
    """The coefficients are the framework's: step_g = lr (1 - mu_t) / (1 - P_t), step_m =
    lr mu_{t+1} / (1 - P_{t+1}), c2 = 1 / (1 - beta2^t), with mu_t written here from the
    frameworks (PyTorch's psi, Keras' 0.96**t, optax's b1)."""
    kw = COEF_KW[conv]
    b1, lr = kw["beta1"], kw["lr"]
    psi = {"pytorch": kw.get("momentum_decay"), "keras": 1.0, "optax": None}[conv]

    def mu(t):
        return b1 if psi is None else b1 * (1.0 - 0.5 * 0.96 ** (t * psi))

    product = 1.0
    for t in range(1, 30):
        c = kernels.nadam_coefficients(t, **kw, convention=conv)
        product *= mu(t)
        assert c.mu_product == pytest.approx(product, rel=1e-14)
        assert c.step_g == pytest.approx(lr * (1 - mu(t)) / (1 - product), rel=1e-14)
        assert c.step_m == pytest.approx(lr * mu(t + 1) / (1 - product * mu(t + 1)), rel=1e-14)
        assert c.c2 == pytest.approx(1 / (1 - kw["beta2"] ** t), rel=1e-14)
        assert c.sign == (-1.0 if kw.get("maximize") else 1.0)
        if kw.get("decoupled_weight_decay", conv == "keras"):
            assert (c.l2, c.wd_factor) == (0.0, 1.0 - lr * kw["weight_decay"])
        else:
            assert (c.l2, c.wd_factor) == (kw["weight_decay"], 1.0)


_USER_LOOPS = {}


def _user_loop(conv, carry):
    """A user's @njit simulation loop: its own lr schedule (an array), fastadam's kernel
    inside, ``mu_product`` carried from step to step (``c.mu_product`` of step t is the
    argument at step t + 1) or left to its default."""
    if (conv, carry) not in _USER_LOOPS:
        kw = ", ".join(f"{k}={v!r}" for k, v in COEF_KW[conv].items() if k != "lr")
        extra = "mu_product=mp, " if carry else ""
        src = f"""
def loop(x, grads, lrs, state):
    mp = 1.0
    for t in range(1, grads.shape[0] + 1):
        c = kernels.nadam_coefficients(t, lr=lrs[t - 1], {kw}, {extra}convention={conv!r})
        kernels.nadam(x, grads[t - 1], state, c)
        mp = c.mu_product
    return mp
"""
        namespace = {"kernels": kernels}
        exec(src, namespace)  # noqa: S102
        _USER_LOOPS[conv, carry] = numba.njit(namespace["loop"])
    return _USER_LOOPS[conv, carry]


@pytest.mark.parametrize(
    "conv,carry,dtype",
    [(c, True, np.float64) for c in NADAM_CONVENTIONS]
    + [("keras", False, np.float64), ("pytorch", True, np.float32)],
)
def test_user_njit_loop_equals_optimizer(conv, carry, dtype):
    """The kernel in a user's @njit loop gives the optimizer's numbers bitwise (same
    coefficients, same rule, same order), and the optimizer's carried mu_product."""
    rng = np.random.default_rng(34)
    n = 37
    x0 = rng.standard_normal(n).astype(dtype)
    grads = (rng.standard_normal((N_STEPS, n)) + 0.3).astype(dtype)
    lrs = np.array([schedule(t) for t in range(1, N_STEPS + 1)])
    x_user = x0.copy()
    state = kernels.nadam_state(x_user, kernels.nadam_coefficients(1, convention=conv))
    assert state.unused.size == 0
    mp = _user_loop(conv, carry)(x_user, grads, lrs, state)
    kw = dict(COEF_KW[conv])
    kw["betas"] = (kw.pop("beta1"), kw.pop("beta2"))
    kw["lr"] = schedule
    x_obj = x0.copy()
    opt = fa.NAdam(x_obj, convention=conv, **kw)
    for g in grads:
        opt.step(g)
    np.testing.assert_array_equal(x_user, x_obj)
    sd = opt.state_dict()
    np.testing.assert_array_equal(state.exp_avg, sd[_key(sd, "exp_avg", 0)])
    np.testing.assert_array_equal(state.exp_avg_sq, sd[_key(sd, "exp_avg_sq", 0)])
    assert mp == _mu_product(opt)


# ---------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# ---------------------------------------------------------------------------------------------


def _saved(sd):
    """Through np.savez and np.load, as a user would save it."""
    buf = io.BytesIO()
    np.savez(buf, **sd)
    buf.seek(0)
    return dict(np.load(buf))


@pytest.mark.parametrize("conv", NADAM_CONVENTIONS)
def test_nadam_state_dict_resume_is_bitwise(conv):
    """20 steps, save, a new optimizer loads the state and runs 30 more: bitwise the
    uninterrupted 50 steps (mixed float32/float64 arrays). The carried mu_product is saved,
    equals P_20 of the reference, and is used: resuming with a wrong one changes the run."""
    kw = {**BASE, "weight_decay": 0.05, "maximize": True, "lr": schedule,
          "momentum_decay": OTHER_PSI[conv], "momentum_schedule": True}  # fmt: skip
    shapes, dtypes = LAYOUTS["mixed"]
    params, grads = make_data(shapes, N_STEPS, dtypes=dtypes, seed=35)
    full = copy_params(params)
    opt_full = fa.NAdam(full, convention=conv, **kw)
    for g in grads:
        opt_full.step(g)

    first = copy_params(params)
    opt = fa.NAdam(first, convention=conv, **kw)
    for g in grads[:20]:
        opt.step(g)
    saved = _saved(opt.state_dict())
    key = _key(saved, "carry", 0, "mu_product")
    _, ref_state, _ = nadam_reference(
        [p.astype(np.float64) for p in params], grads[:20], conv, **kw
    )
    assert float(saved[key]) == pytest.approx(ref_state["mu_product"], rel=1e-14, abs=0)

    def resume(state):
        resumed = copy_params(first)
        new = fa.NAdam(resumed, convention=conv, **kw)
        new.load_state_dict(state)
        assert new.t == 20
        for g in grads[20:]:
            new.step(g)
        return new, resumed

    new, resumed = resume(saved)
    for a, b in zip(resumed, full, strict=True):
        np.testing.assert_array_equal(a, b)
    assert _mu_product(new) == _mu_product(opt_full)
    sd_new, sd_full = new.state_dict(), opt_full.state_dict()
    for name in ("exp_avg", "exp_avg_sq"):
        for i in range(len(shapes)):
            k = _key(sd_full, name, i)
            np.testing.assert_array_equal(sd_new[k], sd_full[k])
    # the carry is read back, not recomputed from t
    wrong = dict(saved)
    wrong[key] = np.float64(1.0)
    _, other = resume(wrong)
    assert np.max(np.abs(other[1] - full[1])) > 1e-6


# ---------------------------------------------------------------------------------------------
# torch.optim.NAdam
# ---------------------------------------------------------------------------------------------

TORCH_CASES = [
    dict(lr=0.01),  # torch's defaults otherwise (betas, eps 1e-8, momentum_decay 4e-3)
    dict(lr=0.02, betas=(0.8, 0.99), eps=0.1),
    dict(lr=0.02, betas=(0.8, 0.99), eps=0.1, weight_decay=0.05, momentum_decay=0.01,
         maximize=True),
    dict(lr=0.02, betas=(0.8, 0.99), eps=0.1, weight_decay=0.1, decoupled_weight_decay=True,
         momentum_decay=0.5),
    dict(lr=schedule, eps=0.1, weight_decay=0.1, decoupled_weight_decay=True, maximize=True,
         momentum_decay=0.05),
]  # fmt: skip


def _torch_run(torch, kw, params, grads):
    """torch.optim.NAdam (foreach=False: ``_single_tensor_nadam``) in float64; the params
    after each step."""
    tparams = [torch.tensor(p.copy(), dtype=torch.float64) for p in params]
    tkw = dict(kw)
    lr = tkw.pop("lr")
    opt = torch.optim.NAdam(tparams, lr=lr(1) if callable(lr) else lr, foreach=False, **tkw)
    out = []
    for t, g in enumerate(grads, start=1):
        if callable(lr):
            for group in opt.param_groups:
                group["lr"] = lr(t)
        for tp, gi in zip(tparams, g, strict=True):
            tp.grad = torch.tensor(gi, dtype=torch.float64)
        opt.step()
        out.append([tp.detach().numpy().copy() for tp in tparams])
    return out, float(opt.state[tparams[0]]["mu_product"])


@pytest.fixture
def torch_default_dtype():
    """Set torch's default dtype for one test (restored after)."""
    torch = pytest.importorskip("torch")
    before = torch.get_default_dtype()
    yield lambda dtype: torch.set_default_dtype(dtype)
    torch.set_default_dtype(before)


def _max_rel(traj_a, traj_b):
    return max(
        float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
        for sa, sb in zip(traj_a, traj_b, strict=True)
        for a, b in zip(sa, sb, strict=True)
    )


@pytest.mark.parametrize("kw", TORCH_CASES)
def test_against_torch(torch_default_dtype, kw):
    """torch's default dtype float64 (its mu_product tensor then float64): fastadam equals
    torch to RTOL64 (measured max relative error <= 1.6e-15). With torch's default float32
    mu_product, torch equals the reference given that float32 product to RTOL64 (measured
    <= 1.9e-16), and fastadam is 1.6e-10 .. 1.2e-9 from it (measured): P_t carries a
    float32 rounding per step (<= t u32 relative), which moves 1 / (1 - P_t) by
    <= t u32 P_t / (1 - P_t)."""
    import torch

    params, grads = make_data([(7,), (3, 4)], N_STEPS, seed=36)
    ours = copy_params(params)
    opt, traj = _run(lambda p: fa.NAdam(p, **kw), ours, grads)

    torch_default_dtype(torch.float64)
    theirs, their_mp = _torch_run(torch, kw, params, grads)
    for t, (a, b) in enumerate(zip(traj, theirs, strict=True), start=1):
        for i in range(2):
            assert_close64(a[i], b[i], err_msg=f"t={t}")
    assert _mu_product(opt) == pytest.approx(their_mp, rel=1e-14, abs=0)

    torch_default_dtype(torch.float32)
    theirs32, their_mp32 = _torch_run(torch, kw, params, grads)
    _, ref_state, ref_traj = nadam_reference(params, grads, "pytorch", keep_trajectory=True,
                                             torch_scalar_dtype=np.float32, **kw)  # fmt: skip
    for a, b in zip(ref_traj, theirs32, strict=True):
        for i in range(2):
            assert_close64(a[i], b[i])
    assert ref_state["mu_product"] == their_mp32
    assert _max_rel(traj, theirs32) < 1e-8


# ---------------------------------------------------------------------------------------------
# optax.nadam / optax.nadamw
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jx():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jax.config.update("jax_enable_x64", True)
    return jax, optax


def _optax_lr(lr, jnp):
    if callable(lr):  # optax counts from 0
        return lambda count: 0.01 + 0.04 * (1.0 + jnp.cos((count + 1) / 7.0)) / 2.0
    return lr


OPTAX_CASES = [
    ("nadam", dict(lr=0.02, b1=0.8, b2=0.99, eps=0.1)),
    ("nadam", dict(lr=schedule, b1=0.8, b2=0.99, eps=0.1, eps_root=1e-3)),
    ("nadam", dict(lr=0.01)),  # optax's defaults otherwise
    ("nadamw", dict(lr=0.02, b1=0.8, b2=0.99, eps=0.1, weight_decay=0.1)),
    ("nadamw", dict(lr=schedule, eps=0.1, weight_decay=0.1)),
    ("nadam_l2", dict(lr=0.02, b1=0.8, b2=0.99, eps=0.1, weight_decay=0.05)),
]


@pytest.mark.parametrize("name,kw", OPTAX_CASES)
def test_against_optax(jx, name, kw):
    """optax.nadam (scale_by_adam(nesterov=True)), optax.nadamw (decoupled) and
    chain(add_decayed_weights, nadam) (L2), float64: to RTOL64 (measured max relative
    error <= 1.2e-15; the reference's optax form equals optax bitwise)."""
    jax, optax = jx
    jnp = jax.numpy
    if name == "nadamw" and not hasattr(optax, "nadamw"):
        pytest.skip("this optax has no nadamw")
    params, grads = make_data([(7,), (3, 4)], N_STEPS, seed=37)
    kw = dict(kw)
    lr = kw.pop("lr")
    olr = _optax_lr(lr, jnp)
    wd = kw.get("weight_decay", 0.0)
    if name == "nadam_l2":
        tx = optax.chain(optax.add_decayed_weights(kw.pop("weight_decay")), optax.nadam(olr, **kw))
    else:
        tx = getattr(optax, name)(olr, **kw)
    ours = copy_params(params)
    opt = fa.NAdam(ours, lr=lr, betas=(kw.get("b1", 0.9), kw.get("b2", 0.999)),
                   eps=kw.get("eps"), eps_root=kw.get("eps_root"), weight_decay=wd,
                   decoupled_weight_decay=name == "nadamw", convention="optax")  # fmt: skip
    jparams = [jnp.asarray(p) for p in params]
    state = tx.init(jparams)
    for t, g in enumerate(grads, start=1):
        updates, state = tx.update([jnp.asarray(x) for x in g], state, jparams)
        jparams = optax.apply_updates(jparams, updates)
        opt.step(g)
        for jp, p in zip(jparams, ours, strict=True):
            assert np.asarray(jp).dtype == np.float64
            assert_close64(p, np.asarray(jp), err_msg=f"{name} t={t}")


# ---------------------------------------------------------------------------------------------
# keras.optimizers.Nadam (Keras 3)
# ---------------------------------------------------------------------------------------------

# float32-exact hyperparameters: Keras keeps lr in a float32 variable and casts beta_1,
# beta_2 and weight_decay through float32 constants (tests/test_frameworks_tf.py)
K_LR = 0.0625
K_BETAS = (0.875, 0.9921875)
K_EPS = 0.125
K_WD = 0.125
#: ops.cast(0.96, "float64") in Nadam.update_step (TensorFlow backend)
F32_096 = float(np.float32(0.96))


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras", minversion="3")


def _k_lr(t):
    """A schedule of float32-exact values (Keras rounds lr to float32)."""
    return float(np.float32(schedule(t)))


def _keras_run(keras, params, grads, lr, wd):
    dtype = params[0].dtype.name
    variables = [keras.Variable(p.copy(), dtype=dtype) for p in params]
    opt = keras.optimizers.Nadam(learning_rate=lr(1) if callable(lr) else lr,
                                 beta_1=K_BETAS[0], beta_2=K_BETAS[1], epsilon=K_EPS,
                                 weight_decay=wd)  # fmt: skip
    out = []
    for t, g in enumerate(grads, start=1):
        if callable(lr):
            opt.learning_rate = lr(t)
        tensors = [keras.ops.convert_to_tensor(gi, dtype=dtype) for gi in g]
        opt.apply_gradients(list(zip(tensors, variables, strict=True)))
        out.append([np.asarray(v.numpy()) for v in variables])
    return out


KERAS_CASES = [(K_LR, None), (K_LR, K_WD), (_k_lr, K_WD)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: d.__name__)
@pytest.mark.parametrize("lr,wd", KERAS_CASES, ids=["plain", "weight_decay", "schedule_wd"])
def test_against_keras(keras, lr, wd, dtype):
    """float64: Keras equals the reference given Keras' float32(0.96) in update_step to
    RTOL64 (measured: bitwise), and fastadam (0.96 everywhere) is < 1e-7 from Keras
    (measured 1.2e-8 .. 2.0e-8 relative: u_t moves by b1 t |delta| 0.96^t / 2 <= 9e-8 with
    delta = -2.2e-8; 1e-7 is 5 times that and 1000 times below a formula difference).
    float32: fastadam and Keras are both within nadam_f32_atol of the float64 reference on
    the same data, so within twice it of each other (measured: Keras 1/60 .. 1/30 of
    nadam_f32_atol from the reference, fastadam 1/250 .. 1/70 of twice it from Keras)."""
    params, grads = make_data([(7,), (3, 4)], N_STEPS, dtype=dtype, seed=38)
    theirs = _keras_run(keras, params, grads, lr, wd)
    ours = copy_params(params)
    fkw = dict(lr=lr, betas=K_BETAS, eps=K_EPS, weight_decay=wd or 0.0)
    opt, traj = _run(lambda p: fa.NAdam(p, convention="keras", **fkw), ours, grads)
    p64 = [p.astype(np.float64) for p in params]
    if dtype == np.float64:
        _, _, model = nadam_reference(p64, grads, "keras", keep_trajectory=True,
                                      keras_decay=F32_096, **fkw)  # fmt: skip
        for a, b in zip(model, theirs, strict=True):
            for i in range(2):
                assert_close64(b[i], a[i])
        assert _max_rel(traj, theirs) < 1e-7
    else:
        terms = []
        _, _, ref = nadam_reference(p64, grads, "keras", keep_trajectory=True, terms=terms,
                                    **fkw)  # fmt: skip
        for i in range(2):
            atol = nadam_f32_atol([p64[i]] + [s[i] for s in ref], [s[i] for s in terms])
            for a, b in zip(traj, theirs, strict=True):
                assert b[i].dtype == np.float32
                np.testing.assert_allclose(a[i], b[i], rtol=0, atol=2 * atol)


def test_keras_float64_uses_float32_096(keras):
    """What the ~2e-8 of test_against_keras is: a float64 Keras Nadam is the reference
    with float32(0.96) in u_t (bitwise), not the one with 0.96 (which fastadam follows and
    equals to RTOL64), and the two differ by 1e-9 .. 1e-7 relative. If a Keras release
    casts 0.96 exactly, this test says so."""
    params, grads = make_data([(7,), (3, 4)], N_STEPS, seed=38)
    theirs = _keras_run(keras, params, grads, K_LR, None)
    kw = dict(lr=K_LR, betas=K_BETAS, eps=K_EPS)
    _, _, exact = nadam_reference(params, grads, "keras", keep_trajectory=True, **kw)
    _, _, rounded = nadam_reference(params, grads, "keras", keep_trajectory=True,
                                    keras_decay=F32_096, **kw)  # fmt: skip
    assert _max_rel(rounded, theirs) == 0.0
    assert 1e-9 < _max_rel(exact, theirs) < 1e-7
    assert math.isclose(F32_096, 0.96, rel_tol=3e-8) and F32_096 != 0.96
