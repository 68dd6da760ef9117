"""Optimizer objects as trustworthy as torch.optim: parameter groups, complex parameters,
copies and pickles that step independently, concurrent steps that never lose one, infinite
parameters, and state_dict/load_state_dict with hyperparameters, for every algorithm."""

import contextlib
import copy
import pickle
import threading

import numpy as np
import pytest
from naive import adam_reference, assert_close64, copy_params, make_data

import fastadam as fa
from fastadam.algorithms import ALGORITHMS

OPTIMIZERS = {"adam": fa.Adam, "rmsprop": fa.RMSProp, "nadam": fa.NAdam}
assert set(OPTIMIZERS) == set(ALGORITHMS)  # every algorithm has its optimizer class
EXTRA = {"adam": dict(amsgrad=True), "rmsprop": dict(momentum=0.9, centered=True), "nadam": {}}
ALL = pytest.mark.parametrize("name", list(OPTIMIZERS))


def _make(name, params, **kw):
    return OPTIMIZERS[name](params, **{"lr": 0.01, "eps": 0.1, **EXTRA[name], **kw})


def _grads(params, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


# ---------------------------------------------------------------------------------------------
# parameter groups
# ---------------------------------------------------------------------------------------------


@ALL
def test_parameter_groups_equal_separate_optimizers(name):
    """Each group steps exactly as an optimizer of its own with its hyperparameters."""
    params, grads = make_data([(5,), (2, 3), (4,)], 20, seed=1)
    grouped = copy_params(params)
    opt = _make(name, [{"params": grouped[:2]},
                       {"params": [grouped[2]], "lr": 0.05, "weight_decay": 0.1}])  # fmt: skip
    a, b = copy_params(params[:2]), [params[2].copy()]
    first, second = _make(name, a), _make(name, b, lr=0.05, weight_decay=0.1)
    for g in grads:
        opt.step(g)
        first.step(g[:2])
        second.step(g[2:])
    for x, y in zip(grouped, a + b, strict=True):
        np.testing.assert_array_equal(x, y)
    groups = opt.param_groups
    assert [g["params"] for g in groups] == [[0, 1], [2]]
    assert groups[0]["lr"] == 0.01 and groups[1]["lr"] == 0.05
    assert groups[1]["weight_decay"] == 0.1 and groups[0]["weight_decay"] == 0.0


@pytest.mark.parametrize("first_momentum", [0.0, 0.9])
@pytest.mark.parametrize("centered", [False, True])
def test_groups_that_keep_different_buffers(first_momentum, centered):
    """A momentum of 0 keeps no momentum buffer: groups with and without one, in either
    order, step as separate optimizers and save and load their state (a numba TypingError
    at the first step before; with the group without the buffer first, the buffer was
    dropped for every group)."""
    params, grads = make_data([(5,), (2, 3), (4,)], 6, seed=3)
    momenta = (first_momentum, 0.9 - first_momentum)
    kw = dict(lr=0.01, centered=centered)
    grouped = copy_params(params)
    groups = [{"params": grouped[:2], "momentum": momenta[0]},
              {"params": [grouped[2]], "momentum": momenta[1]}]  # fmt: skip
    opt = fa.RMSProp(groups, **kw)
    a, b = copy_params(params[:2]), [params[2].copy()]
    first, second = (
        fa.RMSProp(a, momentum=momenta[0], **kw),
        fa.RMSProp(b, momentum=momenta[1], **kw),
    )
    for g in grads[:3]:
        opt.step(g)
        first.step(g[:2])
        second.step(g[2:])
    saved = opt.state_dict()
    with_buffer = [i for i, m in ((0, momenta[0]), (1, momenta[0]), (2, momenta[1])) if m]
    assert sorted(k for k in saved if k.startswith("momentum_buffer.")) == [
        f"momentum_buffer.{i}" for i in with_buffer
    ]
    resumed = copy_params(grouped)
    opt2 = fa.RMSProp([{"params": resumed[:2], "momentum": momenta[0]},
                       {"params": [resumed[2]], "momentum": momenta[1]}], **kw)  # fmt: skip
    opt2.load_state_dict(saved)
    for g in grads[3:]:
        opt.step(g)
        opt2.step(g)
        first.step(g[:2])
        second.step(g[2:])
    for x, y, z in zip(grouped, a + b, resumed, strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(z, y)


def test_parameter_group_errors():
    w = [np.ones(3), np.ones(2)]
    with pytest.raises(ValueError, match=r"params\[1\] sets \['amsgrad'\]"):
        fa.Adam([{"params": [w[0]]}, {"params": [w[1]], "amsgrad": True}])
    with pytest.raises(ValueError, match="without a 'params' key"):
        fa.Adam([{"lr": 0.1}])
    with pytest.raises(TypeError, match="mixes arrays and parameter groups"):
        fa.Adam([w[0], {"params": [w[1]]}])
    with pytest.raises(ValueError, match="lr must be a finite number"):
        fa.Adam([{"params": [w[0]], "lr": -1.0}])
    with pytest.raises(TypeError, match="unexpected keyword"):
        fa.Adam([{"params": [w[0]], "momentum": 0.9}])
    with pytest.raises(ValueError, match="share memory"):
        fa.Adam([{"params": [w[0]]}, {"params": [w[0]]}])


def test_setting_lr_sets_every_group():
    w = [np.ones(3), np.ones(2)]
    opt = fa.Adam([{"params": [w[0]]}, {"params": [w[1]], "lr": 0.5}])
    opt.lr = 0.25
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]


@ALL
def test_setting_a_groups_hyperparameters_as_torch_schedulers_do(name):
    """``group["lr"] = ...`` on an item of param_groups takes effect at the next step (it
    was a copy, silently ignored): bitwise equal to the same run with a schedule; one group
    (the bound steady step) and two."""
    params, grads = make_data([(5,), (3,)], 8, seed=6)
    for split in (False, True):
        live = [p.copy() for p in params]
        ref = [p.copy() for p in params]
        groups = [{"params": live[:1]}, {"params": live[1:]}] if split else live
        opt = _make(name, groups, weight_decay=0.01)
        ref_opt = _make(name, ref, weight_decay=0.01, lr=lambda t: 0.01 if t <= 3 else 0.004)
        for t, g in enumerate(grads, start=1):
            if t == 4:
                for group in opt.param_groups:
                    group["lr"] = 0.004
            opt.step(g)
            ref_opt.step(g)
        for a, b in zip(live, ref, strict=True):
            np.testing.assert_array_equal(a, b)
        assert [g["lr"] for g in opt.param_groups] == [0.004] * (2 if split else 1)
        assert opt.state_dict()["group/0/lr"] == 0.004


@ALL
def test_a_refused_group_value_changes_nothing(name):
    x = np.ones(4)
    opt = _make(name, x, weight_decay=0.1)
    opt.step(np.ones(4))
    (group,) = opt.param_groups
    before = dict(group)
    knob = {"adam": "amsgrad", "rmsprop": "centered", "nadam": "decoupled_weight_decay"}[name]
    cases = [
        ("lr", -1.0, ValueError, "lr must be"),
        ("weight_decay", float("nan"), ValueError, "weight_decay"),
        ("params", [0], ValueError, "fixed"),
        (knob, True, ValueError, "formula switch"),
        ("betas", (0.9, 0.99), TypeError, "have no 'betas'"),
    ]
    if name == "rmsprop":  # the momentum buffer goes unused: refused, as by load_state_dict
        cases.append(("momentum", 0.0, ValueError, "uses the state buffers"))
    for key, value, exc, match in cases:
        with pytest.raises(exc, match=match):
            group[key] = value
        assert dict(group) == before
    with pytest.raises(TypeError, match="cannot be removed"):
        del group["lr"]
    ref = np.ones(4)
    ref_opt = _make(name, ref, weight_decay=0.1)
    ref_opt.step(np.ones(4))
    opt.step(np.full(4, 0.5))
    ref_opt.step(np.full(4, 0.5))
    np.testing.assert_array_equal(x, ref)


def test_hyperparameter_attributes_set_every_group():
    """``opt.weight_decay = ...`` sets every group's, as ``opt.lr`` does (it made a new
    attribute that the steps ignored); a value refused for one group changes none."""
    w, ref_w = [np.ones(3), np.ones(2)], [np.ones(3), np.ones(2)]
    opt = fa.Adam([{"params": [w[0]]}, {"params": [w[1]], "weight_decay": 0.5}])
    ref = fa.Adam(ref_w, weight_decay=0.25)
    opt.weight_decay = 0.25
    assert [g["weight_decay"] for g in opt.param_groups] == [0.25, 0.25]
    assert "weight_decay" not in vars(opt)
    for _ in range(3):
        opt.step([np.full(3, 0.1), np.full(2, 0.1)])
        ref.step([np.full(3, 0.1), np.full(2, 0.1)])
    for a, b in zip(w, ref_w, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="formula switch"):
        opt.amsgrad = True
    with pytest.raises(TypeError, match="skip_nonfinite"):
        opt.skip_nonfinite = "yes"
    assert opt.amsgrad is False and opt.skip_nonfinite is False
    v = [np.ones(3), np.ones(2)]
    rms = fa.RMSProp([{"params": [v[0]], "momentum": 0.9}, {"params": [v[1]]}])
    with pytest.raises(ValueError, match="uses the state buffers"):
        rms.momentum = 0.5  # the first group has the buffer, the second not
    assert [g["momentum"] for g in rms.param_groups] == [0.9, 0.0]


# ---------------------------------------------------------------------------------------------
# complex parameters: real and imaginary parts as independent reals, as torch does
# ---------------------------------------------------------------------------------------------


@ALL
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_parameters_are_their_real_view(name, dtype):
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(dtype)
    r = z.view(z.real.dtype).copy()  # interleaved real and imaginary parts
    grads = [(rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))).astype(dtype)
             for _ in range(10)]  # fmt: skip
    oz, orr = _make(name, z), _make(name, r)
    for g in grads:
        oz.step(g)
        orr.step(g.view(r.dtype))
    np.testing.assert_array_equal(z.view(r.dtype), r)
    sd = oz.state_dict()
    first = ALGORITHMS[name].State._fields[0]
    assert sd[f"{first}.0"].dtype == dtype and sd[f"{first}.0"].shape == (3, 4)
    np.testing.assert_array_equal(sd[f"{first}.0"].view(r.dtype), orr.state_dict()[f"{first}.0"])
    resumed = _make(name, z.copy())
    resumed.load_state_dict(sd)
    assert resumed.t == 10


@pytest.mark.parametrize("name", ["adam", "rmsprop", "nadam"])
def test_complex_parameters_match_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    z0 = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    grads = [rng.standard_normal(6) + 1j * rng.standard_normal(6) for _ in range(20)]
    z = z0.copy()
    ours = _make(name, z, **({"amsgrad": True} if name == "adam" else {}))
    zt = torch.tensor(z0, requires_grad=True)
    cls = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "nadam": torch.optim.NAdam}
    kw = {"adam": dict(amsgrad=True), "rmsprop": dict(momentum=0.9, centered=True), "nadam": {}}
    theirs = cls[name]([zt], lr=0.01, eps=0.1, **kw[name])
    with _float64_scalars(torch):
        for g in grads:
            ours.step(g)
            zt.grad = torch.tensor(g)
            theirs.step()
    assert_close64(z.view(np.float64), zt.detach().numpy().view(np.float64), rtol=1e-12)


@contextlib.contextmanager
def _float64_scalars(torch):
    """torch keeps NAdam's running product ``mu_product`` in the default dtype (float32
    unless changed), which alone moves float64 parameters by ~1e-9 relative."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(default)


# ---------------------------------------------------------------------------------------------
# copies
# ---------------------------------------------------------------------------------------------


@ALL
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_step_independently_and_bitwise_like_the_original(name, how):
    params, grads = make_data([(5,), (2, 3)], 10, seed=4)
    opt = _make(name, [{"params": params[:1]}, {"params": params[1:], "lr": 0.03}],
                skip_nonfinite=True)  # fmt: skip
    grads[2][0][0] = np.nan  # one skipped step is part of the state
    for g in grads[:5]:
        opt.step(g)
    clone = copy.deepcopy(opt) if how == "deepcopy" else pickle.loads(pickle.dumps(opt))
    cparams = clone.params
    assert all(not np.shares_memory(a, b) for a, b in zip(cparams, params, strict=True))
    np.testing.assert_array_equal(clone.nonfinite_skips, opt.nonfinite_skips)
    for g in grads[5:]:
        opt.step(g)
        clone.step(g)
    for a, b in zip(cparams, params, strict=True):
        np.testing.assert_array_equal(a, b)
    before = [p.copy() for p in params]
    clone.step(grads[0])  # the copy's step leaves the original's arrays alone
    for a, b in zip(params, before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert clone.t == opt.t + 1


@ALL
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_steady_step_sees_every_change(name, dtype):
    """After its first step an optimizer of one group steps with one bound call; a new lr, a
    loaded state and a copy still take effect, bitwise (the reference uses a schedule, which
    never takes that path)."""
    params, grads = make_data([(7,)], 12, seed=5, dtype=dtype)
    x, ref_x = params[0], params[0].copy()
    opt = _make(name, x)
    ref = _make(name, ref_x, lr=lambda t: 0.01 if t <= 4 else 0.003)
    for k, (g,) in enumerate(grads[:8]):
        if k == 4:
            opt.lr = 0.003
        opt.step(g)
        ref.step(g)
    np.testing.assert_array_equal(x, ref_x)
    other = _make(name, ref_x.copy(), lr=0.02)
    other.step(grads[8][0])
    opt.load_state_dict(other.state_dict())
    x[...] = other.params
    for (g,) in grads[9:]:
        opt.step(g)
        other.step(g)
    np.testing.assert_array_equal(x, other.params)
    for make_copy in (copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))):
        clone = make_copy(opt)
        before = x.copy()
        clone.step(grads[0][0])
        np.testing.assert_array_equal(x, before)
        opt.step(grads[0][0])
        np.testing.assert_array_equal(x, clone.params)


# ---------------------------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------------------------


@ALL
def test_concurrent_steps_are_never_lost(name):
    """Two threads stepping one optimizer 2 x 2000 times: t == 4000 and, since every step
    gets the same gradient, the same parameters as 4000 steps from one thread."""
    x, y = np.ones(50), np.ones(50)
    g = np.linspace(-1.0, 1.0, 50)
    shared, alone = _make(name, x), _make(name, y)
    barrier = threading.Barrier(2)

    def work():
        barrier.wait()
        for _ in range(2000):
            shared.step(g)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(4000):
        alone.step(g)
    assert shared.t == 4000
    np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------------------------
# infinite parameters, as in torch
# ---------------------------------------------------------------------------------------------


@ALL
def test_infinite_parameters_match_torch(name):
    torch = pytest.importorskip("torch")
    p0 = np.array([np.inf, -np.inf, 0.5, -0.25])
    g = np.array([0.5, -0.25, 1.0, -1.0])
    ours = _make(name, p := p0.copy())
    cls = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "nadam": torch.optim.NAdam}
    kw = {"adam": dict(amsgrad=True), "rmsprop": dict(momentum=0.9, centered=True), "nadam": {}}
    pt = torch.tensor(p0, requires_grad=True)
    theirs = cls[name]([pt], lr=0.01, eps=0.1, **kw[name])
    with _float64_scalars(torch):
        for _ in range(5):
            ours.step(g)
            pt.grad = torch.tensor(g)
            theirs.step()
    np.testing.assert_array_equal(p[:2], [np.inf, -np.inf])
    np.testing.assert_array_equal(pt.detach().numpy()[:2], [np.inf, -np.inf])
    assert_close64(p[2:], pt.detach().numpy()[2:], rtol=1e-12)
    for key, state in theirs.state[pt].items():
        if key != "step" and state.numel() > 1:
            assert torch.isfinite(state).all(), key


# ---------------------------------------------------------------------------------------------
# state_dict holds the hyperparameters; load_state_dict validates them
# ---------------------------------------------------------------------------------------------


def test_load_state_dict_restores_hyperparameters_as_torch_does():
    params, grads = make_data([(4,)], 6, seed=5)
    a = copy_params(params)
    src = fa.Adam(a, lr=0.02, betas=(0.8, 0.95), eps=0.1, weight_decay=0.01)
    for g in grads[:3]:
        src.step(g)
    state = src.state_dict()
    b = copy_params(a)
    dst = fa.Adam(b, lr=0.5)  # other hyperparameters, same formula
    dst.load_state_dict(state)
    assert (dst.lr, dst.betas, dst.eps, dst.weight_decay) == (0.02, (0.8, 0.95), 0.1, 0.01)
    for g in grads[3:]:
        src.step(g)
        dst.step(g)
    np.testing.assert_array_equal(a[0], b[0])
    ref, _, _ = adam_reference(params, grads, lr=0.02, betas=(0.8, 0.95), eps=0.1,
                               weight_decay=0.01)  # fmt: skip
    assert_close64(a[0], ref[0])


@pytest.mark.parametrize(
    "edit,exc,match",
    [
        (lambda s: s.update({"group/0/lr": -0.1}), ValueError, "lr must be a finite number"),
        (lambda s: s.update({"group/0/beta1": 1.0}), ValueError, "beta1=1 is not allowed"),
        (lambda s: s.update({"group/0/eps": "big"}), TypeError, "eps must be a real number"),
        (lambda s: s.update({"knob/eps_hat": True}), ValueError, "eps_hat=True"),
        (lambda s: s.pop("knob/amsgrad"), ValueError, "knob/amsgrad"),
        (lambda s: s.pop("group/0/weight_decay"), ValueError, "group/0/weight_decay"),
        (lambda s: s.update({"group/0/params": np.array([1])}), ValueError, "holds arrays"),
        (lambda s: s.update(algorithm="rmsprop"), ValueError, "algorithm"),
        (lambda s: s.update(nonfinite_skips=np.array([-1])), ValueError, "nonfinite_skips"),
    ],
)
def test_load_state_dict_validates_hyperparameters_before_writing(edit, exc, match):
    x = np.ones(4)
    opt = fa.Adam(x, lr=0.01)
    opt.step(np.ones(4))
    state = opt.state_dict()
    edit(state)
    before, t = x.copy(), opt.t
    with pytest.raises(exc, match=match):
        opt.load_state_dict(state)
    np.testing.assert_array_equal(x, before)
    assert opt.t == t and opt.lr == 0.01


def test_state_dict_round_trips_through_npz_with_a_schedule(tmp_path):
    def schedule(t):
        return 0.01 / t

    params, grads = make_data([(3,), (2, 2)], 6, seed=6)
    a = copy_params(params)
    opt = fa.NAdam(a, lr=schedule)
    for g in grads[:3]:
        opt.step(g)
    np.savez(tmp_path / "s.npz", **opt.state_dict())
    b = copy_params(a)
    resumed = fa.NAdam(b, lr=schedule)
    resumed.load_state_dict(dict(np.load(tmp_path / "s.npz")))
    for g in grads[3:]:
        opt.step(g)
        resumed.step(g)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="schedule"):
        fa.NAdam(copy_params(params), lr=0.01).load_state_dict(opt.state_dict())
