"""Every bad input of issue 2: the exception type, a message that names the argument (and
says what is valid), and nothing written: params and state exactly as before the call."""

import math

import numpy as np
import pytest

import fastadam as fa
from fastadam import conventions

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _snapshot(opt, params):
    params = params if isinstance(params, list) else [params]
    sd = opt.state_dict()
    return [p.copy() for p in params], {
        k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sd.items()
    }


def _assert_unchanged(opt, params, snap):
    params = params if isinstance(params, list) else [params]
    old_params, old_state = snap
    for p, q in zip(params, old_params, strict=True):
        np.testing.assert_array_equal(p, q)
    new_state = opt.state_dict()
    assert new_state.keys() == old_state.keys()
    for k, v in old_state.items():
        if isinstance(v, np.ndarray):
            assert new_state[k].dtype == v.dtype, k
            np.testing.assert_array_equal(new_state[k], v, err_msg=k)
        else:
            assert new_state[k] == v, k


def _stepped(make, n=3, shapes=((4,), (2, 3)), dtype=np.float64, single=False):
    """An optimizer after ``n`` steps (non-trivial state), and its params."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if single:
        params = params[0]
        opt = make(params)
        for _ in range(n):
            opt.step(rng.standard_normal(params.shape).astype(dtype))
    else:
        opt = make(params)
        for _ in range(n):
            opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
    return opt, params


OPTIMIZERS = {
    "adam": lambda p, **kw: fa.Adam(p, lr=0.01, amsgrad=True, **kw),
    "adamw": lambda p, **kw: fa.AdamW(p, lr=0.01, **kw),
    "rmsprop": lambda p, **kw: fa.RMSProp(p, lr=0.01, momentum=0.9, centered=True, **kw),
}
ALL = pytest.mark.parametrize("kind", list(OPTIMIZERS))


def _grads_like(params):
    return [np.ones_like(p) for p in params]


# ---------------------------------------------------------------------------------------------
# step(): gradients
# ---------------------------------------------------------------------------------------------


@ALL
def test_grad_shape_mismatch(kind):
    opt, params = _stepped(OPTIMIZERS[kind])
    snap = _snapshot(opt, params)
    grads = _grads_like(params)
    grads[1] = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"grads\[1\].*shape"):
        opt.step(grads)
    _assert_unchanged(opt, params, snap)
    # the first array would have been fine: still nothing written
    assert opt.t == 3


@ALL
def test_grad_size_mismatch_single(kind):
    opt, params = _stepped(OPTIMIZERS[kind], single=True)
    snap = _snapshot(opt, params)
    with pytest.raises(ValueError, match="grads"):
        opt.step(np.ones(5))
    _assert_unchanged(opt, params, snap)


@ALL
@pytest.mark.parametrize("bad_dtype", [np.float32, np.int64, np.complex128, np.float16])
def test_grad_dtype_mismatch(kind, bad_dtype):
    opt, params = _stepped(OPTIMIZERS[kind])
    snap = _snapshot(opt, params)
    grads = _grads_like(params)
    grads[1] = grads[1].astype(bad_dtype)
    with pytest.raises(ValueError, match=r"grads\[1\].*dtype"):
        opt.step(grads)
    _assert_unchanged(opt, params, snap)


@ALL
@pytest.mark.parametrize("n", [1, 3])
def test_grad_list_wrong_length(kind, n):
    opt, params = _stepped(OPTIMIZERS[kind])
    snap = _snapshot(opt, params)
    grads = [np.ones_like(params[0])] * n
    with pytest.raises(ValueError, match=rf"grads has {n} arrays but params has 2"):
        opt.step(grads)
    _assert_unchanged(opt, params, snap)


@ALL
def test_grad_structure_mismatch(kind):
    opt, params = _stepped(OPTIMIZERS[kind])
    snap = _snapshot(opt, params)
    with pytest.raises(TypeError, match="grads must be a list"):
        opt.step(np.ones(4))
    with pytest.raises(TypeError, match=r"grads\[0\] must be a numpy array"):
        opt.step([[1.0, 1.0, 1.0, 1.0], np.ones((2, 3))])
    _assert_unchanged(opt, params, snap)
    opt1, p1 = _stepped(OPTIMIZERS[kind], single=True)
    snap1 = _snapshot(opt1, p1)
    with pytest.raises(TypeError, match="grads must be one array"):
        opt1.step([np.ones(4)])
    with pytest.raises(TypeError, match="grads must be a numpy array"):
        opt1.step(1.0)
    _assert_unchanged(opt1, p1, snap1)


def test_noncontiguous_grad_is_accepted():
    """A strided gradient is read (copied), not rejected: only params must be contiguous."""
    a, b = np.ones(4), np.ones(4)
    fa.Adam(a, lr=0.1).step(np.ones(8)[::2])
    fa.Adam(b, lr=0.1).step(np.ones(4))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# step(): the learning-rate schedule is evaluated (and checked) before anything is written
# ---------------------------------------------------------------------------------------------


@ALL
@pytest.mark.parametrize(
    "value,exc",
    [(-0.1, ValueError), (math.nan, ValueError), (math.inf, ValueError), ("0.1", TypeError),
     (None, TypeError)],
)  # fmt: skip
def test_schedule_returning_invalid_lr(kind, value, exc):
    calls = []

    def lr(t):
        calls.append(t)
        return 0.01 if t <= 3 else value

    opt, params = _stepped(lambda p: _with_lr(kind, p, lr))
    snap = _snapshot(opt, params)
    with pytest.raises(exc, match="lr"):
        opt.step(_grads_like(params))
    assert calls[-1] == 4  # evaluated at t = 4 ...
    _assert_unchanged(opt, params, snap)  # ... and nothing written, t not advanced
    assert opt.t == 3


def _with_lr(kind, p, lr):
    if kind == "adam":
        return fa.Adam(p, lr=lr, amsgrad=True)
    if kind == "adamw":
        return fa.AdamW(p, lr=lr)
    return fa.RMSProp(p, lr=lr, momentum=0.9, centered=True)


@ALL
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_lr_setter_rejects_invalid(kind, value):
    opt, params = _stepped(OPTIMIZERS[kind])
    with pytest.raises(ValueError, match="lr"):
        opt.lr = value
    assert opt.lr == 0.01
    with pytest.raises(TypeError, match="lr"):
        opt.lr = "fast"
    assert opt.lr == 0.01


# ---------------------------------------------------------------------------------------------
# constructors: arrays
# ---------------------------------------------------------------------------------------------

CONSTRUCTORS = {
    "adam": lambda p, **kw: fa.Adam(p, **kw),
    "adamw": lambda p, **kw: fa.AdamW(p, **kw),
    "rmsprop": lambda p, **kw: fa.RMSProp(p, **kw),
}
CTOR = pytest.mark.parametrize("kind", list(CONSTRUCTORS))


def _bad_params():
    ro = np.ones(4)
    ro.flags.writeable = False
    return {
        "int": (np.arange(4), TypeError, "params must have dtype float32 or float64"),
        "float16": (np.ones(4, np.float16), TypeError, "params must have dtype"),
        "strided": (np.ones(8)[::2], ValueError, "params must be C-contiguous"),
        "fortran": (np.ones((3, 4), order="F"), ValueError, "params must be C-contiguous"),
        "readonly": (ro, ValueError, "params is read-only"),
        "list_of_floats": ([1.0, 2.0], TypeError, r"params\[0\] must be a numpy array"),
        "scalar": (1.0, TypeError, "params must be a numpy array"),
        "empty_list": ([], ValueError, "params is an empty list"),
    }


@CTOR
@pytest.mark.parametrize("case", list(_bad_params()))
def test_bad_params(kind, case):
    p, exc, msg = _bad_params()[case]
    before = np.array(p, copy=True) if isinstance(p, np.ndarray) else None
    with pytest.raises(exc, match=msg):
        CONSTRUCTORS[kind](p)
    if before is not None:
        np.testing.assert_array_equal(p, before)


@CTOR
def test_bad_array_inside_a_list_is_named(kind):
    good = np.ones(3)
    with pytest.raises(TypeError, match=r"params\[1\] must have dtype"):
        CONSTRUCTORS[kind]([good, np.arange(3)])
    with pytest.raises(ValueError, match=r"params\[2\] must be C-contiguous"):
        CONSTRUCTORS[kind]([good, np.ones(2), np.ones((4, 4)).T])
    np.testing.assert_array_equal(good, np.ones(3))


@CTOR
def test_aliasing_params(kind):
    x = np.arange(10.0)
    with pytest.raises(ValueError, match=r"params\[0\] and params\[1\] share memory"):
        CONSTRUCTORS[kind]([x, x])
    with pytest.raises(ValueError, match="share memory"):
        CONSTRUCTORS[kind]([x[:5], np.ones(2), x[3:]])
    # disjoint views of one buffer are fine
    CONSTRUCTORS[kind]([x[:5], x[5:]])
    np.testing.assert_array_equal(x, np.arange(10.0))


# ---------------------------------------------------------------------------------------------
# constructors: hyperparameters
# ---------------------------------------------------------------------------------------------


@CTOR
@pytest.mark.parametrize("lr", [-1e-3, math.nan, -math.inf, math.inf])
def test_negative_or_nonfinite_lr(kind, lr):
    with pytest.raises(ValueError, match=r"lr must be a finite number in \[0, inf\)"):
        CONSTRUCTORS[kind](np.ones(3), lr=lr)


@CTOR
@pytest.mark.parametrize("lr", ["0.1", [0.1], True])
def test_non_number_lr(kind, lr):
    with pytest.raises(TypeError, match="lr must be a real number"):
        CONSTRUCTORS[kind](np.ones(3), lr=lr)


def test_lr_zero_is_allowed():
    x = np.ones(3)
    fa.Adam(x, lr=0.0).step(np.ones(3))
    np.testing.assert_array_equal(x, np.ones(3))


@pytest.mark.parametrize("cls", [fa.Adam, fa.AdamW])
@pytest.mark.parametrize(
    "betas,name", [((-0.1, 0.9), "beta1"), ((0.9, -1e-9), "beta2"), ((1.5, 0.9), "beta1"),
                   ((0.9, 1.0 + 1e-12), "beta2"), ((math.nan, 0.9), "beta1"),
                   ((0.9, math.inf), "beta2")],
)  # fmt: skip
def test_betas_outside_unit_interval(cls, betas, name):
    with pytest.raises(ValueError, match=rf"{name} must be a finite number in \[0, 1\)"):
        cls(np.ones(3), betas=betas)


@pytest.mark.parametrize("cls", [fa.Adam, fa.AdamW])
def test_beta1_equal_one_has_its_own_explanation(cls):
    with pytest.raises(ValueError, match=r"beta1=1 is not allowed.*0/0") as info:
        cls(np.ones(3), betas=(1.0, 0.999))
    assert "RMSProp" in str(info.value)  # Adam with beta1 = 1 is not RMSProp
    with pytest.raises(ValueError, match=r"beta2=1 is not allowed"):
        cls(np.ones(3), betas=(0.9, 1))


@pytest.mark.parametrize("betas", [0.9, (0.9,), (0.9, 0.99, 0.999), "ab"])
def test_betas_not_a_pair(betas):
    with pytest.raises(TypeError, match="betas must be a pair"):
        fa.Adam(np.ones(3), betas=betas)


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5, math.nan])
def test_rmsprop_decay_outside_unit_interval(decay):
    with pytest.raises(ValueError, match=r"decay must be a finite number in \[0, 1\)"):
        fa.RMSProp(np.ones(3), decay=decay)


@CTOR
@pytest.mark.parametrize("eps", [-1e-8, math.nan, math.inf])
def test_bad_eps(kind, eps):
    with pytest.raises(ValueError, match=r"eps must be a finite number in \[0, inf\)"):
        CONSTRUCTORS[kind](np.ones(3), eps=eps)


@pytest.mark.parametrize("conv", ["pytorch", "keras", "tf1", "optax"])
def test_adam_eps_zero_divides_by_zero(conv):
    with pytest.raises(ValueError, match=r"eps=0.*divides by zero.*eps > 0"):
        fa.Adam(np.ones(3), eps=0.0, convention=conv)
    # with eps_root > 0 nothing divides by zero: allowed, and a zero gradient stays finite
    x = np.ones(3)
    fa.Adam(x, eps=0.0, eps_root=1e-8, convention=conv).step(np.zeros(3))
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize("conv", ["basic", "pytorch", "keras", "optax"])
def test_rmsprop_eps_zero_divides_by_zero(conv):
    with pytest.raises(ValueError, match=r"eps=0.*divides by zero"):
        fa.RMSProp(np.ones(3), eps=0.0, convention=conv)


def test_rmsprop_eps_zero_allowed_where_mean_square_starts_positive():
    # TF1 starts the mean square at 1: eps = 0 cannot divide by zero (not centered)
    x = np.ones(3)
    fa.RMSProp(x, eps=0.0, convention="tf1").step(np.zeros(3))
    assert np.all(np.isfinite(x))
    with pytest.raises(ValueError, match="eps=0"):  # centered: v - gbar^2 can be 0
        fa.RMSProp(np.ones(3), eps=0.0, convention="tf1", centered=True)


@CTOR
@pytest.mark.parametrize("wd", [-0.1, math.nan])
def test_bad_weight_decay(kind, wd):
    with pytest.raises(ValueError, match="weight_decay must be a finite number"):
        CONSTRUCTORS[kind](np.ones(3), weight_decay=wd)


def test_bad_momentum_and_eps_root():
    with pytest.raises(ValueError, match="momentum must be a finite number"):
        fa.RMSProp(np.ones(3), momentum=-0.5)
    with pytest.raises(ValueError, match="eps_root must be a finite number"):
        fa.Adam(np.ones(3), eps_root=-1.0)


@pytest.mark.parametrize(
    "make,name",
    [(lambda: fa.Adam(np.ones(3), amsgrad=1), "amsgrad"),
     (lambda: fa.Adam(np.ones(3), maximize="yes"), "maximize"),
     (lambda: fa.Adam(np.ones(3), bias_correction=0), "bias_correction"),
     (lambda: fa.Adam(np.ones(3), decoupled_weight_decay="no"), "decoupled_weight_decay"),
     (lambda: fa.Adam(np.ones(3), skip_nonfinite=None), "skip_nonfinite"),
     (lambda: fa.Adam(np.ones(3), eps_hat=1), "eps_hat"),
     (lambda: fa.RMSProp(np.ones(3), centered=1), "centered"),
     (lambda: fa.RMSProp(np.ones(3), nesterov="yes", momentum=0.9), "nesterov"),
     (lambda: fa.RMSProp(np.ones(3), eps_in_sqrt=0), "eps_in_sqrt")],
)  # fmt: skip
def test_flags_must_be_bool(make, name):
    with pytest.raises(TypeError, match=rf"{name} must be True or False"):
        make()


# ---------------------------------------------------------------------------------------------
# conventions and keywords
# ---------------------------------------------------------------------------------------------


@CTOR
@pytest.mark.parametrize("conv", ["torch", "PyTorch", "tf2", "", None, 1])
def test_unknown_convention_lists_valid_ones(kind, conv):
    with pytest.raises(ValueError, match="convention") as info:
        CONSTRUCTORS[kind](np.ones(3), convention=conv)
    for valid in ("pytorch", "keras", "tf1", "optax"):
        assert valid in str(info.value)


def test_basic_is_rmsprop_only():
    with pytest.raises(ValueError, match="convention='basic'") as info:
        fa.Adam(np.ones(3), convention="basic")
    assert "pytorch" in str(info.value)
    assert "basic" in str(fa.RMSProp(np.ones(3), convention="basic").convention.name)


@pytest.mark.parametrize(
    "make,bad",
    [(lambda: fa.Adam(np.ones(3), weight_decayy=0.1), "weight_decayy"),
     (lambda: fa.AdamW(np.ones(3), momentum=0.9), "momentum"),
     (lambda: fa.RMSProp(np.ones(3), betas=(0.9, 0.99)), "betas"),
     (lambda: fa.RMSProp(np.ones(3), alpha=0.99), "alpha"),
     (lambda: fa.RMSProp(np.ones(3), rho=0.9), "rho")],
)  # fmt: skip
def test_unknown_keyword_names_it_and_the_valid_knobs(make, bad):
    with pytest.raises(TypeError, match=bad) as info:
        make()
    msg = str(info.value)
    knobs = ("eps_hat", "amsgrad_corrected") if "Adam" in msg else ("eps_in_sqrt", "nesterov")
    for k in knobs:
        assert k in msg


@pytest.mark.parametrize(
    "make,valid",
    [(lambda: fa.Adam(np.ones(3), weight_decayy=0.1), ("weight_decay", "amsgrad", "eps_root")),
     (lambda: fa.RMSProp(np.ones(3), alpha=0.99), ("decay", "momentum", "centered"))],
)  # fmt: skip
def test_unknown_keyword_message_lists_all_valid_keywords(make, valid):
    """Issue 2: 'unknown keyword (with the list of valid ones)'. A misspelt ordinary
    keyword (weight_decayy, PyTorch's alpha) should be answered with the keywords that
    exist, not only the convention knobs."""
    with pytest.raises(TypeError) as info:
        make()
    for k in valid:
        assert k in str(info.value), f"{k!r} missing from: {info.value}"


def test_basic_rejects_momentum_centered_nesterov_weight_decay():
    for kw in ({"momentum": 0.9}, {"centered": True}, {"momentum": 0.9, "nesterov": True}):
        with pytest.raises(ValueError, match=r"convention 'basic' has no momentum or centering"):
            fa.RMSProp(np.ones(3), convention="basic", **kw)
    with pytest.raises(ValueError, match="convention 'basic' has no weight decay"):
        fa.RMSProp(np.ones(3), convention="basic", weight_decay=0.1)


def test_tf1_adam_rejects_amsgrad_and_weight_decay():
    with pytest.raises(ValueError, match="convention 'tf1' has no amsgrad"):
        fa.Adam(np.ones(3), convention="tf1", amsgrad=True)
    with pytest.raises(ValueError, match="convention 'tf1' has no weight decay"):
        fa.Adam(np.ones(3), convention="tf1", weight_decay=0.01)
    with pytest.raises(ValueError, match="convention 'tf1' has no weight decay"):
        fa.AdamW(np.ones(3), convention="tf1", weight_decay=0.01)
    with pytest.raises(ValueError, match="convention 'tf1' has no weight decay"):
        fa.RMSProp(np.ones(3), convention="tf1", weight_decay=0.01)


def test_tf1_adamw_without_weight_decay_is_rejected():
    """AdamW(convention='tf1') has no decay to decouple (TF1 offers none); constructing it
    silently gives plain Adam. It should say so, like Adam(convention='tf1', weight_decay=..)."""
    with pytest.raises(ValueError, match="tf1"):
        fa.AdamW(np.ones(3), convention="tf1")


def test_convention_lookup_functions():
    with pytest.raises(ValueError, match="not a Adam convention|not an Adam convention"):
        conventions.get("adam", "nope")
    with pytest.raises(ValueError, match="unknown algorithm"):
        conventions.get("sgd", "pytorch")
    with pytest.raises(TypeError, match="eps_in_sqrt"):
        fa.Adam(np.ones(3), eps_in_sqrt=True)
    assert conventions.get("rmsprop", "keras").eps_in_sqrt is True
    opt = fa.RMSProp(np.ones(3), convention="keras", eps_in_sqrt=False)
    assert opt.convention.eps_in_sqrt is False


# ---------------------------------------------------------------------------------------------
# load_state_dict
# ---------------------------------------------------------------------------------------------


def _state_from(make, shapes=((4,), (2, 3)), dtype=np.float64):
    opt, _ = _stepped(make, n=5, shapes=shapes, dtype=dtype)
    return opt.state_dict()


@pytest.mark.parametrize(
    "make_target,make_source,match",
    [
        (lambda p: fa.Adam(p), lambda p: fa.RMSProp(p), "RMSProp"),
        (lambda p: fa.RMSProp(p), lambda p: fa.Adam(p), "Adam"),
        (lambda p: fa.Adam(p), lambda p: fa.AdamW(p), "AdamW"),
        (lambda p: fa.Adam(p), lambda p: fa.Adam(p, convention="keras"), "convention"),
        (lambda p: fa.RMSProp(p, convention="tf1"), lambda p: fa.RMSProp(p), "convention"),
        (lambda p: fa.Adam(p), lambda p: fa.Adam(p, amsgrad=True), "amsgrad=True"),
        (lambda p: fa.Adam(p, amsgrad=True), lambda p: fa.Adam(p), "amsgrad=False"),
        (lambda p: fa.RMSProp(p, momentum=0.9), lambda p: fa.RMSProp(p), "momentum_buffer"),
        (lambda p: fa.RMSProp(p), lambda p: fa.RMSProp(p, momentum=0.9), "momentum_buffer"),
        (lambda p: fa.RMSProp(p), lambda p: fa.RMSProp(p, centered=True), "centered=True"),
        (lambda p: fa.Adam(p), lambda p: fa.Adam(p, eps_hat=True), "eps_hat=True"),
        (
            lambda p: fa.RMSProp(p, convention="optax"),
            lambda p: fa.RMSProp(p, convention="optax", nesterov=True),
            "nesterov=True",
        ),
    ],
)
def test_load_state_from_another_optimizer(make_target, make_source, match):
    state = _state_from(make_source)
    opt, params = _stepped(make_target, n=2)
    snap = _snapshot(opt, params)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    _assert_unchanged(opt, params, snap)
    assert opt.t == 2


@pytest.mark.parametrize(
    "shapes,dtype,match",
    [
        (((4,), (3, 2)), np.float64, r"\(3, 2\)"),  # same size, other shape
        (((4,), (2, 4)), np.float64, r"\(2, 4\)"),
        (((4,), (2, 3)), np.float32, "float32"),
        (((4,),), np.float64, "holds arrays"),  # one array fewer
        (((4,), (2, 3), (5,)), np.float64, "holds arrays"),
    ],
)
@pytest.mark.parametrize("kind", ["adam", "rmsprop"])
def test_load_state_with_other_shapes(kind, shapes, dtype, match):
    make = OPTIMIZERS[kind]
    state = _state_from(make, shapes=shapes, dtype=dtype)
    opt, params = _stepped(make, n=2)
    snap = _snapshot(opt, params)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    _assert_unchanged(opt, params, snap)


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda s: s.pop("t"), "'t'"),
        (lambda s: s.update(t=-1), "non-negative integer"),
        (lambda s: s.update(t=2.5), "non-negative integer"),
        (lambda s: s.pop("optimizer"), "optimizer"),
        (lambda s: s.pop("exp_avg.1"), "exp_avg.1"),
        (lambda s: s.update({"exp_avg.7": np.zeros(4)}), "exp_avg.7"),
        (lambda s: s.update(nonfinite_skips=np.zeros(5, np.int64)), "nonfinite_skips"),
    ],
)
def test_load_corrupt_state(edit, match):
    make = OPTIMIZERS["adam"]
    state = _state_from(make)
    edit(state)
    opt, params = _stepped(make, n=2)
    snap = _snapshot(opt, params)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    _assert_unchanged(opt, params, snap)


def test_failed_load_then_valid_load_and_step_work():
    make = OPTIMIZERS["rmsprop"]
    good = _state_from(make)
    opt, params = _stepped(make, n=2)
    with pytest.raises(ValueError):
        opt.load_state_dict(_state_from(lambda p: fa.RMSProp(p, lr=0.01, momentum=0.9)))
    opt.load_state_dict(good)
    assert opt.t == 5
    opt.step(_grads_like(params))
    assert opt.t == 6
