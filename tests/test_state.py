"""Resume from a saved state (bitwise), non-finite gradients, and changing lr between steps."""

import numpy as np
import pytest
from naive import adam_reference, assert_close64, copy_params, make_data, schedule

import fastadam as fa
from fastadam import kernels
from fastadam.cpu.kernels import COMPILED

SHAPES = [(5,), (3, 4), ()]  # a 0-d array too


def _resume_cases():
    return {
        "adam_amsgrad": lambda p: fa.Adam(p, lr=schedule, betas=(0.8, 0.99), eps=0.1,
                                          amsgrad=True, weight_decay=0.01),
        "adamw": lambda p: fa.AdamW(p, lr=0.01, eps=0.1, maximize=True),
        "adamw_keras": lambda p: fa.AdamW(p, lr=0.01, convention="keras", amsgrad=True),
        "adam_optax_amsgrad": lambda p: fa.Adam(p, lr=0.01, convention="optax", amsgrad=True),
        "rmsprop_centered_momentum": lambda p: fa.RMSProp(
            p, lr=schedule, decay=0.95, eps=0.1, momentum=0.9, centered=True),
        "rmsprop_tf1": lambda p: fa.RMSProp(p, convention="tf1", momentum=0.5, centered=True),
        "rmsprop_optax_bc": lambda p: fa.RMSProp(
            p, lr=schedule, convention="optax", momentum=0.9, nesterov=True,
            bias_correction=True, initial_scale=0.1),
    }  # fmt: skip


@pytest.mark.parametrize("dtypes", [(np.float64,) * 3, (np.float32,) * 3,
                                    (np.float32, np.float64, np.float32)])  # fmt: skip
@pytest.mark.parametrize("case", list(_resume_cases()))
def test_resume_is_bitwise_identical(case, dtypes, tmp_path):
    make = _resume_cases()[case]
    params, grads = make_data(SHAPES, 40, dtypes=list(dtypes), seed=7)
    # uninterrupted: 40 steps
    full = copy_params(params)
    opt = make(full)
    for g in grads:
        opt.step(g)
    # interrupted: 20 steps, save to disk, load into a NEW optimizer on a copy, 20 more
    first = copy_params(params)
    opt1 = make(first)
    for g in grads[:20]:
        opt1.step(g)
    np.savez(tmp_path / "state.npz", **opt1.state_dict())
    np.savez(tmp_path / "params.npz", *first)
    del opt1
    with np.load(tmp_path / "params.npz") as f:
        resumed = [np.array(f[f"arr_{i}"]) for i in range(len(SHAPES))]
    opt2 = make(resumed)
    assert opt2.t == 0
    with np.load(tmp_path / "state.npz") as state:
        opt2.load_state_dict(state)
    assert opt2.t == 20
    for g in grads[20:]:
        opt2.step(g)
    assert opt2.t == 40
    for a, b in zip(resumed, full, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1.keys() == s2.keys()
    for k in s1:
        np.testing.assert_array_equal(s1[k], s2[k], err_msg=k)


def test_state_dict_is_plain_numpy_and_python_scalars():
    params, grads = make_data([(3,), (2, 2)], 3, seed=1)
    opt = fa.Adam(params, amsgrad=True)
    for g in grads:
        opt.step(g)
    sd = opt.state_dict()
    assert sd["optimizer"] == "Adam" and sd["convention"] == "pytorch"
    assert type(sd["t"]) is int and sd["t"] == 3
    for k, v in sd.items():
        assert isinstance(v, (np.ndarray, int, float, bool, str)), k
    assert sd["group/0/lr"] == 1e-3 and sd["knob/amsgrad"] is True
    assert sd["exp_avg.1"].shape == (2, 2)
    # a copy: mutating it does not touch the optimizer
    sd["exp_avg.0"][...] = 123.0
    assert not np.any(opt.state_dict()["exp_avg.0"] == 123.0)


def test_state_dict_round_trip_in_memory_then_diverging_copies():
    """load_state_dict copies: two optimizers resumed from one state evolve independently."""
    params, grads = make_data([(6,)], 10, seed=2)
    opt = fa.RMSProp(params, momentum=0.9)
    for g in grads[:5]:
        opt.step(g)
    sd = opt.state_dict()
    a, b = copy_params(params), copy_params(params)
    oa, ob = fa.RMSProp(a, momentum=0.9), fa.RMSProp(b, momentum=0.9)
    oa.load_state_dict(sd)
    ob.load_state_dict(sd)
    oa.step(grads[5])
    np.testing.assert_array_equal(ob.state_dict()["square_avg.0"], sd["square_avg.0"])


# ---------------------------------------------------------------------------------------------
# non-finite gradients
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "make",
    [lambda p, **k: fa.Adam(p, amsgrad=True, **k),
     lambda p, **k: fa.RMSProp(p, momentum=0.9, centered=True, **k)],
    ids=["adam", "rmsprop"],
)  # fmt: skip
def test_skip_nonfinite_leaves_that_array_and_its_state_untouched(make, bad):
    dtypes = [np.float32, np.float64, np.float32]
    params, grads = make_data([(4,), (3,), (2, 2)], 6, dtypes=dtypes, seed=3)
    ref = copy_params(params)
    opt = make(params, skip_nonfinite=True)
    ref_opt = make(ref)  # same steps except the skipped array
    for g in grads[:3]:
        opt.step(g)
        ref_opt.step(g)
    before_p = copy_params(params)
    before_s = opt.state_dict()
    g = copy_params(grads[3])
    g[2][1, 0] = bad  # the third array (second float32 one)
    opt.step(g)
    assert opt.t == 4
    np.testing.assert_array_equal(params[2], before_p[2])
    after_s = opt.state_dict()
    for k in after_s:
        if k.endswith(".2"):
            np.testing.assert_array_equal(after_s[k], before_s[k], err_msg=k)
    np.testing.assert_array_equal(opt.nonfinite_skips, [0, 0, 1])
    np.testing.assert_array_equal(after_s["nonfinite_skips"], [0, 0, 1])
    # the other arrays took the step, exactly as without skip_nonfinite
    ref_opt.step(grads[3])
    for i in (0, 1):
        np.testing.assert_array_equal(params[i], ref[i])
        assert not np.array_equal(params[i], before_p[i])
    # later finite steps update every array again, and the count survives a resume
    opt.step(grads[4])
    assert not np.array_equal(params[2], before_p[2])
    assert np.all(np.isfinite(params[2]))
    other = make(copy_params(params), skip_nonfinite=True)
    other.load_state_dict(opt.state_dict())
    np.testing.assert_array_equal(other.nonfinite_skips, [0, 0, 1])


def test_skip_nonfinite_counts_per_array_and_single_array():
    x = np.ones(5)
    opt = fa.Adam(x, skip_nonfinite=True)
    for _ in range(3):
        opt.step(np.array([1.0, np.nan, 1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(x, np.ones(5))
    np.testing.assert_array_equal(opt.nonfinite_skips, [3])
    assert opt.t == 3
    np.testing.assert_array_equal(opt.state_dict()["exp_avg.0"], np.zeros(5))


@pytest.mark.parametrize("cls", [fa.Adam, fa.RMSProp])
def test_default_propagates_nan(cls):
    """Default policy: like every framework, a NaN gradient makes that parameter NaN (and
    only the elements it touches); nothing is counted."""
    x = np.ones(4)
    y = np.ones(3)
    opt = cls([x, y])
    opt.step([np.array([1.0, np.nan, 1.0, 1.0]), np.ones(3)])
    assert np.isnan(x[1])
    assert np.all(np.isfinite(np.delete(x, 1)))
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(opt.nonfinite_skips, [0, 0])


def test_skip_nonfinite_on_the_parallel_path():
    n = kernels.PARALLEL_MIN_SIZE + 7
    x = np.ones(n)
    opt = fa.Adam(x, skip_nonfinite=True)
    g = np.ones(n)
    g[-1] = np.inf
    opt.step(g)
    np.testing.assert_array_equal(x, np.ones(n))
    g[-1] = 1.0
    opt.step(g)
    assert np.all(x < 1.0)


def test_skip_nonfinite_counts_map_to_the_right_array_across_paths_and_dtypes():
    """Small arrays go through one serial call per dtype, big ones one by one in parallel:
    the skip counters must still land on the array that had the bad gradient."""
    big = kernels.PARALLEL_MIN_SIZE + 1
    shapes = [(3,), (big,), (4,), (2,), (big,)]
    dtypes = [np.float64, np.float64, np.float32, np.float64, np.float32]
    params = [np.ones(s, d) for s, d in zip(shapes, dtypes, strict=True)]
    opt = fa.Adam(params, skip_nonfinite=True)
    expected = np.zeros(5, np.int64)
    for bad in (3, 1, 2, 4, 0, 3):
        grads = [np.ones(s, d) for s, d in zip(shapes, dtypes, strict=True)]
        grads[bad][-1] = np.nan
        before = params[bad].copy()
        opt.step(grads)
        expected[bad] += 1
        np.testing.assert_array_equal(opt.nonfinite_skips, expected)
        np.testing.assert_array_equal(params[bad], before)
        assert all(np.all(np.isfinite(p)) for p in params)
    assert opt.t == 6


# ---------------------------------------------------------------------------------------------
# lr changes between steps without recompiling
# ---------------------------------------------------------------------------------------------


def _n_signatures():
    return {
        (name, loop): len(getattr(compiled, loop).signatures)
        for name, compiled in COMPILED.items()
        for loop in ("coefficients", "serial", "parallel", "step", "step_serial")
    }


def test_changing_lr_does_not_recompile():
    params, grads = make_data([(6,), (2, 3)], 30, seed=4)
    p_set, p_sched = copy_params(params), copy_params(params)
    opt = fa.Adam(p_set, lr=schedule(1), eps=0.1, amsgrad=True)
    opt_sched = fa.Adam(p_sched, lr=schedule, eps=0.1, amsgrad=True)
    rms = fa.RMSProp(copy_params(params), lr=0.01, momentum=0.9)
    opt.step(grads[0])
    opt_sched.step(grads[0])
    rms.step(grads[0])
    before = _n_signatures()
    for t, g in enumerate(grads[1:], start=2):
        opt.lr = schedule(t)  # a new float every step
        opt.step(g)
        opt_sched.step(g)
        rms.lr = 0.001 * t
        rms.step(g)
    assert _n_signatures() == before
    # setting lr by hand every step == passing the schedule
    for a, b in zip(p_set, p_sched, strict=True):
        np.testing.assert_array_equal(a, b)
    ref, _, _ = adam_reference(params, grads, lr=schedule, eps=0.1, amsgrad=True)
    for a, b in zip(p_set, ref, strict=True):
        assert_close64(a, b)


def test_lr_can_switch_between_float_and_schedule():
    x = np.ones(3)
    opt = fa.Adam(x, lr=0.1)
    opt.step(np.ones(3))
    opt.lr = lambda t: 0.0
    assert callable(opt.lr)
    before = x.copy()
    opt.step(np.ones(3))
    np.testing.assert_array_equal(x, before)
    opt.lr = 0.1
    opt.step(np.ones(3))
    assert np.all(x < before)
