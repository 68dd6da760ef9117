"""Property tests: random shapes (0-d and empty included), dtypes, conventions and
hyperparameters against the independent reference (tests/naive.py)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes
from naive import adam_reference, f32_atol, rmsprop_reference

import fastadam as fa

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # numba compiles on first use: no per-example deadline

# one to three arrays: 0-d, empty and small n-d shapes
shapes = st.lists(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), min_size=1,
                  max_size=3)  # fmt: skip
dtypes = st.sampled_from([np.float64, np.float32])
unit = st.floats(0.0, 0.999)
lrs = st.one_of(st.floats(0.0, 0.1), st.just("schedule"))


def _data(seed, shape_list, dtype_list, n_steps, grad_scale):
    rng = np.random.default_rng(seed)
    params = [np.array(rng.standard_normal(s), dtype=d)
              for s, d in zip(shape_list, dtype_list, strict=True)]  # fmt: skip
    grads = [
        [np.array(grad_scale * rng.standard_normal(s) * rng.uniform(0.1, 2.0), dtype=d)
         for s, d in zip(shape_list, dtype_list, strict=True)]
        for _ in range(n_steps)
    ]  # fmt: skip
    return params, grads


def _lr(value):
    if value == "schedule":
        return lambda t: 0.05 / (1.0 + 0.3 * t)
    return value


def _check(params, params0, ref_traj, rtol64, what, extra_atol=0.0):
    for i, p in enumerate(params):
        exp = ref_traj[-1][i]
        assert p.shape == exp.shape
        if p.dtype == np.float64:
            scale = float(np.max(np.abs(exp))) if exp.size else 0.0
            np.testing.assert_allclose(p, exp, rtol=rtol64, atol=rtol64 * scale + extra_atol,
                                       err_msg=f"{what} array {i}")  # fmt: skip
        else:
            atol = f32_atol([params0[i]] + [s[i] for s in ref_traj]) + extra_atol
            err = float(np.max(np.abs(p.astype(np.float64) - exp))) if p.size else 0.0
            assert err <= atol, f"{what} float32 array {i}: {err:.3g} > {atol:.3g}"


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    shape_list=shapes,
    dtype_seq=st.lists(dtypes, min_size=3, max_size=3),
    convention=st.sampled_from(["pytorch", "keras", "tf1", "optax"]),
    lr=lrs,
    beta1=unit,
    beta2=st.floats(0.5, 0.9999),
    eps=st.floats(1e-3, 1.0),
    weight_decay=st.floats(0.0, 0.1),
    flags=st.fixed_dictionaries({
        "amsgrad": st.booleans(), "maximize": st.booleans(), "adamw": st.booleans(),
        "bias_correction": st.booleans(), "decoupled": st.booleans(),
    }),
    eps_root=st.sampled_from([0.0, 1e-6, 0.01]),
    n_steps=st.integers(1, 8),
    grad_scale=st.sampled_from([1e-3, 1.0, 100.0]),
)  # fmt: skip
def test_adam_property(seed, shape_list, dtype_seq, convention, lr, beta1, beta2, eps,
                       weight_decay, flags, eps_root, n_steps, grad_scale):  # fmt: skip
    dtype_list = dtype_seq[: len(shape_list)]
    if convention == "tf1":
        flags = {**flags, "amsgrad": False, "adamw": False}
        weight_decay = 0.0
    params, grads = _data(seed, shape_list, dtype_list, n_steps, grad_scale)
    params0 = [p.copy() for p in params]
    cls = fa.AdamW if flags["adamw"] else fa.Adam
    kw = dict(lr=_lr(lr), betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
              amsgrad=flags["amsgrad"], maximize=flags["maximize"], eps_root=eps_root,
              bias_correction=flags["bias_correction"])  # fmt: skip
    if not flags["adamw"]:
        kw["decoupled_weight_decay"] = flags["decoupled"]
    opt = cls(params, convention=convention, **kw)
    for g in grads:
        opt.step(g)
    assert opt.t == n_steps
    ref_kw = dict(kw)
    ref_kw["decoupled"] = True if flags["adamw"] else ref_kw.pop("decoupled_weight_decay")
    _, _, traj = adam_reference(params0, grads, convention, keep_trajectory=True, **ref_kw)
    # fewer steps than test_conventions, but beta1 up to 0.999 makes 1 - beta1^t tiny at
    # t = 1 (relative error of the bias correction ~ u/(1-beta1)): 1e-11
    _check(params, params0, traj, 1e-11, f"Adam/{convention}")


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    shape_list=shapes,
    dtype_seq=st.lists(dtypes, min_size=3, max_size=3),
    convention=st.sampled_from(["basic", "pytorch", "keras", "tf1", "optax"]),
    lr=lrs,
    decay=unit,
    eps=st.floats(1e-3, 1.0),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    weight_decay=st.floats(0.0, 0.1),
    flags=st.fixed_dictionaries({
        "centered": st.booleans(), "maximize": st.booleans(),
    }),
    knobs=st.fixed_dictionaries({}, optional={
        "eps_in_sqrt": st.booleans(), "lr_in_momentum": st.booleans(),
        "initial_scale": st.sampled_from([0.0, 0.5, 1.0]), "bias_correction": st.booleans(),
        "nesterov": st.booleans(), "decoupled_weight_decay": st.booleans(),
    }),
    n_steps=st.integers(1, 8),
    grad_scale=st.sampled_from([1e-3, 1.0, 100.0]),
)  # fmt: skip
def test_rmsprop_property(seed, shape_list, dtype_seq, convention, lr, decay, eps, momentum,
                          weight_decay, flags, knobs, n_steps, grad_scale):  # fmt: skip
    dtype_list = dtype_seq[: len(shape_list)]
    centered = flags["centered"]
    if convention == "basic":
        momentum, centered = 0.0, False
        knobs = {k: v for k, v in knobs.items() if k != "nesterov"}
    if convention in ("basic", "tf1"):
        weight_decay = 0.0
    eps_in = knobs.get("eps_in_sqrt", convention in ("keras", "tf1", "optax"))
    bc = knobs.get("bias_correction", False)
    if centered:
        # v - gbar^2 is a cancelling difference (see test_conventions._ill_conditioned and
        # _centered_atol below): float64, gradients of order 1 and, with eps outside the
        # sqrt, eps >= 0.1 keep the worst-case bound small enough to mean something (an eps
        # placement or lr placement error is >= 1e-3 here; the bound is <= ~1e-4). float32
        # centered runs are compared in test_conventions.
        dtype_list = [np.float64] * len(shape_list)
        grad_scale = min(grad_scale, 1.0)
        if not eps_in:
            eps = max(eps, 0.1)
    params, grads = _data(seed, shape_list, dtype_list, n_steps, grad_scale)
    params0 = [p.copy() for p in params]
    kw = dict(lr=_lr(lr), decay=decay, eps=eps, momentum=momentum, centered=centered,
              weight_decay=weight_decay, maximize=flags["maximize"], **knobs)  # fmt: skip
    opt = fa.RMSProp(params, convention=convention, **kw)
    for g in grads:
        opt.step(g)
    _, _, traj = rmsprop_reference(params0, grads, convention, keep_trajectory=True, **kw)
    # 1/(1 - decay^t) with decay up to 0.999 amplifies rounding of the moments by <= 1000
    rtol = 1e-10 if bc else 1e-11
    extra = 0.0
    if centered:
        extra = _centered_atol(params0, grads, traj, kw, eps_in, bc, n_steps)
    _check(params, params0, traj, rtol, f"RMSProp/{convention}/{knobs}", extra)


def _centered_atol(params0, grads, traj, kw, eps_in, bc, n_steps):
    """Extra absolute tolerance for centered RMSProp, whose variance S = v - gbar^2 is a
    cancelling difference: it carries an absolute rounding error delta ~ 3*u*V (V the
    largest mean square). The step g/D then moves by at most
      G*sqrt(delta)/eps^2     with D = sqrt(S) + eps (as sqrt(S+delta) - sqrt(S) <= sqrt(delta))
      G*delta/(2*eps^1.5)     with D = sqrt(S + eps)
    per step; momentum multiplies it by at most (1+mu)/(1-mu), lr by lr_max, T steps add."""
    u = max(2.0**-24 if p.dtype == np.float32 else 2.0**-53 for p in params0)
    pmax = max((float(np.max(np.abs(s[i]))) if s[i].size else 0.0)
               for s in traj for i in range(len(params0)))  # fmt: skip
    gmax = max((float(np.max(np.abs(g_i))) if g_i.size else 0.0) for g in grads for g_i in g)
    G = gmax + kw["weight_decay"] * max(pmax, max(
        (float(np.max(np.abs(p))) if p.size else 0.0) for p in params0))  # fmt: skip
    V = G * G + kw.get("initial_scale", 0.0)
    if bc:
        V /= 1.0 - kw["decay"]
    delta = 3.0 * u * V
    eps, mu = kw["eps"], kw["momentum"]
    per_step = G * (delta / (2.0 * eps**1.5) if eps_in else np.sqrt(delta) / eps**2)
    lr = kw["lr"]
    lr_max = max(lr(t) for t in range(1, n_steps + 1)) if callable(lr) else lr
    return n_steps * lr_max * per_step * (1.0 + mu) / (1.0 - mu)
