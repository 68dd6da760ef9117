"""The GPU path: kernels, device functions and optimizers on CUDA arrays.

On CI this runs under the CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1),
with a small block size patched in so that several blocks and the grid-stride loop run. On
a machine with a GPU, run it with NUMBA_ENABLE_CUDASIM=0.

Tests that hold for every algorithm are parametrised over :data:`fastadam.algorithms.ALGORITHMS`
(a new algorithm must add its cases to ``CASES``, ``BUFFER_OPTIONS``).
"""

import sys
import warnings

import numpy as np
import pytest

cuda = pytest.importorskip("numba.cuda")
if not cuda.is_available():  # pragma: no cover - real-GPU mode without a GPU
    pytest.skip("no CUDA device", allow_module_level=True)

import fastadam as fa  # noqa: E402
import fastadam.cuda as fc  # noqa: E402
from fastadam import algorithms, kernels  # noqa: E402
from fastadam.cuda import cached_launch  # noqa: E402

# float32 on a real GPU may contract a*b+c into an FMA: a few ulp per step.
TOL = {np.float64: 1e-12, np.float32: 2e-5}

#: Every algorithm's name ("adam", "rmsprop", "nadam", ...).
ALGORITHMS = list(algorithms.ALGORITHMS)


def _optimizer(name):
    """The optimizer class of algorithm ``name`` (fa.Adam, fa.RMSProp, fa.NAdam)."""
    return getattr(fa, algorithms.ALGORITHMS[name].title)


def _coefficients(name, t=1, **kw):
    return getattr(kernels, f"{name}_coefficients")(t, **kw)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(fc, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(fc, "MAX_BLOCKS", 3)


def _compare(host, dev, dtype):
    np.testing.assert_allclose(dev.copy_to_host(), host, rtol=TOL[dtype], atol=TOL[dtype])


#: Optimizer keywords per algorithm: every convention, and options that use every buffer.
CASES = {
    "adam": [
        dict(convention="pytorch", amsgrad=True, weight_decay=0.1, eps=0.1),
        dict(convention="keras", amsgrad=True, weight_decay=0.05, maximize=True),
        dict(convention="optax", amsgrad=True, eps_root=1e-3, lr=lambda t: 1e-2 / t),
        dict(convention="tf1", bias_correction=False),
    ],
    "rmsprop": [
        dict(convention="pytorch", momentum=0.9, centered=True, weight_decay=0.1),
        dict(convention="keras", momentum=0.5, weight_decay=0.01),
        dict(convention="tf1", centered=True),
        dict(convention="optax", momentum=0.9, nesterov=True, bias_correction=True),
        dict(convention="basic", eps=0.1),
    ],
    "nadam": [
        dict(convention="pytorch", weight_decay=0.1, eps=0.1),
        dict(
            convention="pytorch", decoupled_weight_decay=True, weight_decay=0.1, momentum_decay=0.1
        ),  # fmt: skip
        dict(convention="keras", weight_decay=0.05, maximize=True),
        dict(convention="optax", eps_root=1e-3, lr=lambda t: 1e-2 / t),
    ],
}
#: Options under which each algorithm reads and writes all of its state buffers.
BUFFER_OPTIONS = {
    "adam": dict(amsgrad=True),
    "rmsprop": dict(centered=True, momentum=0.9),
    "nadam": dict(weight_decay=0.1),
}
OPTIMIZER_CASES = [
    pytest.param(name, kw, id=f"{name}-{kw['convention']}-{k}")
    for name in ALGORITHMS
    for k, kw in enumerate(CASES.get(name, []))
]


def test_every_algorithm_has_gpu_cases():
    assert set(CASES) == set(ALGORITHMS)
    assert set(BUFFER_OPTIONS) == set(ALGORITHMS)
    for name in ALGORITHMS:  # every convention of every algorithm runs on the device
        assert {kw["convention"] for kw in CASES[name]} == set(
            algorithms.ALGORITHMS[name].conventions
        )


def _assert_same_state_dict(sd_h, sd_d, dtype):
    assert sorted(sd_h) == sorted(sd_d)
    for key, value in sd_h.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            np.testing.assert_allclose(sd_d[key], value, rtol=TOL[dtype], atol=TOL[dtype])
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(sd_d[key], value)
        else:  # a schedule's lr is saved as NaN, equal here
            np.testing.assert_equal(sd_d[key], value, err_msg=key)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kw", OPTIMIZER_CASES)
def test_optimizer_on_device_matches_cpu(name, kw, dtype):
    rng = np.random.default_rng(1)
    host = [rng.standard_normal(n).astype(dtype) for n in (37, 5)] + [
        rng.standard_normal((3, 4)).astype(dtype)
    ]
    dev = [cuda.to_device(h) for h in host]
    opt_h, opt_d = _optimizer(name)([h.copy() for h in host], **kw), _optimizer(name)(dev, **kw)
    for _ in range(6):
        grads = [rng.standard_normal(h.shape).astype(dtype) for h in host]
        opt_h.step(grads)
        opt_d.step([cuda.to_device(g) for g in grads])
    for h, d in zip(opt_h.params, dev, strict=True):
        _compare(h, d, dtype)
    _assert_same_state_dict(opt_h.state_dict(), opt_d.state_dict(), dtype)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_parameter_groups_and_mixed_dtypes_on_device_match_cpu(name):
    """Two parameter groups (own lr and weight decay), each with float32 and float64
    arrays: one plan per group and dtype, as on the CPU."""
    rng = np.random.default_rng(12)
    dtypes = (np.float32, np.float64, np.float64, np.float32)
    host = [rng.standard_normal(n).astype(t) for n, t in zip((9, 17, 4, 33), dtypes, strict=True)]
    dev = [cuda.to_device(h) for h in host]

    def groups(arrays):
        return [
            dict(params=arrays[:2], lr=1e-2, weight_decay=0.1),
            dict(params=arrays[2:], lr=3e-2),
        ]

    opts = [_optimizer(name)(groups(a), **BUFFER_OPTIONS[name])
            for a in ([h.copy() for h in host], dev)]  # fmt: skip
    assert len(opts[1]._groups) == 2
    assert all(len(group.launches) == 2 for group in opts[1]._groups)  # two dtypes each
    for _ in range(4):
        grads = [rng.standard_normal(h.size).astype(h.dtype) for h in host]
        opts[0].step(grads)
        opts[1].step([cuda.to_device(g) for g in grads])
    for h, d in zip(opts[0].params, dev, strict=True):
        _compare(h, d, np.float32)
    _assert_same_state_dict(opts[0].state_dict(), opts[1].state_dict(), np.float32)


@pytest.mark.parametrize("first_momentum", [0.0, 0.9])
def test_groups_with_and_without_a_momentum_buffer_on_device(first_momentum):
    """A group with momentum 0 keeps no momentum buffer, another does: as on the CPU."""
    rng = np.random.default_rng(13)
    host = [rng.standard_normal(n) for n in (9, 17)]
    dev = [cuda.to_device(h) for h in host]

    def groups(arrays):
        return [dict(params=arrays[:1], momentum=first_momentum),
                dict(params=arrays[1:], momentum=0.9 - first_momentum)]  # fmt: skip

    opts = [fa.RMSProp(groups(a), lr=1e-2) for a in ([h.copy() for h in host], dev)]
    for _ in range(3):
        grads = [rng.standard_normal(h.size) for h in host]
        opts[0].step(grads)
        opts[1].step([cuda.to_device(g) for g in grads])
    for h, d in zip(opts[0].params, dev, strict=True):
        _compare(h, d, np.float64)
    _assert_same_state_dict(opts[0].state_dict(), opts[1].state_dict(), np.float64)


def _misaligned(host):
    """A device copy of ``host`` that starts one element past a 16-byte boundary."""
    block = cuda.to_device(np.concatenate([host[:1], host]))
    view = block[1:]
    assert fc.data_pointer(view) % fc.VECTOR_BYTES != 0
    return view


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_vector_and_scalar_kernels_agree_with_cpu(name, dtype):
    """Aligned arrays take the 16-byte kernels (lanes > 1, with a tail of size % lanes);
    a misaligned parameter or gradient takes the scalar kernel; all match the CPU path."""
    kw = BUFFER_OPTIONS[name]
    rng = np.random.default_rng(7)
    sizes = (4, 7, 33)
    host = [rng.standard_normal(n).astype(dtype) for n in sizes]
    aligned = [cuda.to_device(h) for h in host]
    shifted = [_misaligned(h) for h in host]
    kernel, lanes = fc.kernel_for(name, {np.dtype(dtype)}, map(fc.data_pointer, aligned))
    assert lanes == fc.VECTOR_BYTES // np.dtype(dtype).itemsize
    assert kernel is fc.VECTOR_KERNELS[name][np.dtype(dtype)]
    kernel, lanes = fc.kernel_for(name, {np.dtype(dtype)}, map(fc.data_pointer, shifted))
    assert lanes == 1
    assert kernel is fc.SCALAR_KERNELS[name]
    cls = _optimizer(name)
    opt_h = cls([h.copy() for h in host], lr=1e-2, **kw)
    opt_a = cls(aligned, lr=1e-2, **kw)
    opt_s = cls(shifted, lr=1e-2, **kw)
    for _ in range(5):
        grads = [rng.standard_normal(n).astype(dtype) for n in sizes]
        opt_h.step(grads)
        opt_a.step([cuda.to_device(g) for g in grads])
        opt_s.step([_misaligned(g) for g in grads])
    for h, a, b in zip(opt_h.params, aligned, shifted, strict=True):
        _compare(h, a, dtype)
        _compare(h, b, dtype)


@pytest.mark.skipif(not fc.SIMULATOR, reason="the simulator's own access checks")
@pytest.mark.parametrize("name", ALGORITHMS)
def test_simulated_vector_access_checks_alignment(name):
    """On the simulator a misaligned 16-byte access would not fault as on the GPU; the
    simulated loads check it, so a wrong kernel choice fails the tests."""
    x = _misaligned(np.ones(9, np.float32))
    args = [(x,), (cuda.to_device(np.ones(9, np.float32)),)] + [
        (_misaligned(np.zeros(9, np.float32)),)
    ] * 3
    coef = fc.cast_coefficients(_coefficients(name, lr=1e-2), np.float32)
    kernel = fc.VECTOR_KERNELS[name][np.dtype(np.float32)]
    with pytest.raises(AssertionError, match="misaligned"):
        kernel[(1, 1), (4, 1)](*args, coef, *fc._no_skip_flags(1))


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf - inf, simulated
def test_long_lists_are_split_into_launches(monkeypatch):
    """More arrays than MAX_ARRAYS_PER_LAUNCH: several launches, sorted by size; the
    skip counters still land on the right arrays."""
    monkeypatch.setattr(fc, "MAX_ARRAYS_PER_LAUNCH", 2)
    assert fc.chunks([3, 50, 7, 50, 1]) == [[1, 3], [2, 0], [4]]
    rng = np.random.default_rng(8)
    sizes = (3, 50, 7, 50, 1)
    host = [rng.standard_normal(n) for n in sizes]
    dev = [cuda.to_device(h) for h in host]
    opt_h = fa.Adam([h.copy() for h in host], lr=0.1, skip_nonfinite=True)
    opt_d = fa.Adam(dev, lr=0.1, skip_nonfinite=True)
    for step in range(3):
        grads = [rng.standard_normal(n) for n in sizes]
        grads[2 if step == 1 else 4][0] = np.inf
        opt_h.step(grads)
        opt_d.step([cuda.to_device(g) for g in grads])
    np.testing.assert_array_equal(opt_d.nonfinite_skips, [0, 0, 1, 0, 2])
    np.testing.assert_array_equal(opt_d.nonfinite_skips, opt_h.nonfinite_skips)
    for h, d in zip(opt_h.params, dev, strict=True):
        _compare(h, d, np.float64)
    (launch,) = opt_d._groups[0].launches
    counters = launch.counters
    assert [part.members for part in counters.plan.parts] == [[1, 3], [2, 0], [4]]
    # the launch helpers split lists too
    coef = kernels.adam_coefficients(1, lr=1e-2)
    xs = [rng.standard_normal(n) for n in sizes]
    gs = [rng.standard_normal(n) for n in sizes]
    ms = [np.zeros(n) for n in sizes]
    vs = [np.zeros(n) for n in sizes]
    dxs = [cuda.to_device(x) for x in xs]
    dms = [cuda.to_device(m) for m in ms]
    dvs = [cuda.to_device(v) for v in vs]
    dgs = [cuda.to_device(g) for g in gs]
    fc.adam(dxs, dgs, kernels.AdamState(dms, dvs, dvs), coef)
    for x, g, m, v, dx in zip(xs, gs, ms, vs, dxs, strict=True):
        kernels.adam(x, g, kernels.AdamState(m, v, v), coef)
        _compare(x, dx, np.float64)
    with pytest.raises(ValueError, match="at most MAX_ARRAYS_PER_LAUNCH = 2"):
        fc.launch("adam", *(tuple(a[:3]) for a in (dxs, dgs, dms, dvs, dvs)), coef, False,
                  *fc._no_skip_flags(3))  # fmt: skip


@pytest.mark.parametrize("name", ALGORITHMS)
def test_cached_launches_match_the_dispatcher(name, monkeypatch):
    """From the second step on, an optimizer launches from its cached argument lists; the
    results are bitwise those of numba's dispatcher. (On the simulator no cached launch
    can be built: the optimizer falls back to the dispatcher.)"""
    rng = np.random.default_rng(9)
    sizes = (1024, 37, 5000, 3)
    host = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [[rng.standard_normal(n).astype(np.float32) for n in sizes] for _ in range(4)]
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(cached_launch, "ENABLED", enabled)
        dev = [cuda.to_device(h) for h in host]
        opt = _optimizer(name)(dev, lr=1e-2, weight_decay=0.1)
        for step in grads:
            opt.step([cuda.to_device(g) for g in step])
        cuda.synchronize()
        built = [
            c
            for group in opt._groups
            for _, _, counters, _ in group.launches
            for part in counters.plan.parts
            for c in part.cached.values()
        ]
        assert built  # one entry per kernel used, a CachedLaunch or None
        if enabled and not fc.SIMULATOR:
            assert all(c is not None for c in built), cached_launch.LAST_ERROR
        else:
            assert all(c is None for c in built)
        results.append([d.copy_to_host() for d in dev])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_state_dict_round_trip_on_device(name):
    rng = np.random.default_rng(2)
    x = cuda.to_device(rng.standard_normal(20))
    kw = BUFFER_OPTIONS[name]
    opt = _optimizer(name)(x, **kw)
    for _ in range(3):
        opt.step(cuda.to_device(rng.standard_normal(20)))
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for k, v in state.items() if k.endswith(".0"))
    assert {f"{b}.0" for b in algorithms.ALGORITHMS[name].State._fields} & set(state)
    y = cuda.to_device(x.copy_to_host())
    opt2 = _optimizer(name)(y, **kw)
    opt2.load_state_dict(state)
    g = rng.standard_normal(20)
    opt.step(cuda.to_device(g))
    opt2.step(cuda.to_device(g))
    np.testing.assert_array_equal(x.copy_to_host(), y.copy_to_host())


def test_skip_nonfinite_on_device():
    a, b = cuda.to_device(np.ones(10)), cuda.to_device(np.ones(4))
    opt = fa.Adam([a, b], lr=0.1, skip_nonfinite=True)
    ga = np.ones(10)
    ga[3] = np.nan
    opt.step([cuda.to_device(ga), cuda.to_device(np.ones(4))])
    np.testing.assert_array_equal(a.copy_to_host(), np.ones(10))
    assert np.all(b.copy_to_host() < 1)
    np.testing.assert_array_equal(opt.nonfinite_skips, [1, 0])
    np.testing.assert_array_equal(opt.state_dict()["exp_avg.0"], np.zeros(10))


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # inf - inf, simulated
def test_turning_skip_nonfinite_off_forgets_the_last_flags():
    """The kernels read the non-finite flags at every step: after a skipped step, turning
    skip_nonfinite off must not keep that array frozen (as on the CPU)."""
    rng = np.random.default_rng(10)
    host = rng.standard_normal(9)
    dev = cuda.to_device(host)
    opt_h = fa.Adam(host.copy(), lr=0.1, skip_nonfinite=True)
    opt_d = fa.Adam(dev, lr=0.1, skip_nonfinite=True)
    g = rng.standard_normal(9)
    g[4] = np.inf
    for opt in (opt_h, opt_d):
        opt.step(g if opt is opt_h else cuda.to_device(g))
        opt.skip_nonfinite = False
    for _ in range(2):
        g = rng.standard_normal(9)
        opt_h.step(g)
        opt_d.step(cuda.to_device(g))
    _compare(opt_h.params, dev, np.float64)
    np.testing.assert_array_equal(opt_d.nonfinite_skips, [1])


def test_launch_helpers_on_strided_views_use_the_scalar_kernel():
    rng = np.random.default_rng(11)
    x, g = rng.standard_normal(40).astype(np.float32), rng.standard_normal(40).astype(np.float32)
    m, v = np.zeros(40, np.float32), np.zeros(40, np.float32)
    dx, dg, dm, dv = (cuda.to_device(a) for a in (x, g, m, v))
    coef = kernels.adam_coefficients(1, lr=1e-2)
    fc.adam(dx[::2], dg[::2], kernels.AdamState(dm[::2], dv[::2], dv[::2]), coef)
    xs, ms, vs = x[::2].copy(), m[::2].copy(), v[::2].copy()
    kernels.adam(xs, g[::2].copy(), kernels.AdamState(ms, vs, vs), coef)
    expected = x.copy()
    expected[::2] = xs
    _compare(expected, dx, np.float32)


def test_stream_must_be_a_numba_stream():
    with pytest.raises(TypeError, match="numba CUDA stream"):
        fa.Adam(cuda.to_device(np.ones(3)), stream="default")


def test_mixing_host_and_device_arrays_is_an_error():
    with pytest.raises(TypeError, match="mix host and device"):
        fa.Adam([cuda.to_device(np.ones(3)), np.ones(3)])
    opt = fa.Adam(cuda.to_device(np.ones(3)))
    with pytest.raises(TypeError, match="mix host and device"):
        opt.step(np.ones(3))


def test_device_grad_shape_mismatch_leaves_params_unchanged():
    x = cuda.to_device(np.ones(3))
    opt = fa.Adam(x)
    with pytest.raises(ValueError, match="grads"):
        opt.step(cuda.to_device(np.ones(4)))
    np.testing.assert_array_equal(x.copy_to_host(), np.ones(3))
    assert opt.t == 0


def test_device_function_in_user_kernel_matches_cpu_rule():
    @cuda.jit
    def user_kernel(x, g, m, v, coef):
        i = cuda.grid(1)
        if i < x.size:
            x[i], m[i], v[i], _ = fc.adam_update(x[i], g[i], m[i], v[i], x[i], coef)

    rng = np.random.default_rng(3)
    x, g = rng.standard_normal(30), rng.standard_normal(30)
    m, v = np.zeros(30), np.zeros(30)
    coef = kernels.adam_coefficients(1, lr=1e-2, beta1=0.8, beta2=0.99, eps=0.1)
    dx, dm, dv = (cuda.to_device(a) for a in (x, m, v))
    user_kernel[4, 8](dx, cuda.to_device(g), dm, dv, fc.cast_coefficients(coef, np.float64))
    kernels.adam(x, g, kernels.AdamState(m, v, v), coef)
    _compare(x, dx, np.float64)
    _compare(v, dv, np.float64)


def _user_kernel(update):
    @cuda.jit
    def user_kernel(x, g, s0, s1, s2, coef):
        i = cuda.grid(1)
        if i < x.size:
            x[i], s0[i], s1[i], s2[i] = update(x[i], g[i], s0[i], s1[i], s2[i], coef)

    return user_kernel


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_device_function_matches_the_cpu_kernel(name, dtype):
    """``fc.<name>_update`` in a user's kernel, over three steps with every buffer in use,
    against ``kernels.<name>``."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal(30).astype(dtype)
    dx = cuda.to_device(x)
    state = algorithms.ALGORITHMS[name].State(*(np.zeros(30, dtype) for _ in range(3)))
    dstate = [cuda.to_device(s) for s in state]
    kernel = _user_kernel(getattr(fc, f"{name}_update"))
    coef = None
    for t in range(1, 4):
        carry = {"mu_product": coef.mu_product} if name == "nadam" and coef else {}
        coef = _coefficients(name, t, lr=1e-2, **BUFFER_OPTIONS[name], **carry)
        g = rng.standard_normal(30).astype(dtype)
        kernel[4, 8](dx, cuda.to_device(g), *dstate, fc.cast_coefficients(coef, dtype))
        getattr(kernels, name)(x, g, state, coef)
    _compare(x, dx, dtype)
    used = (True, *algorithms.ALGORITHMS[name].buffers(coef))
    for s, d, use in zip(state, dstate, used, strict=True):
        if use:
            assert np.any(s != 0)
            _compare(s, d, dtype)


def test_launch_helpers_single_and_list():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(25).astype(np.float32)
    g = rng.standard_normal(25).astype(np.float32)
    state = kernels.RMSPropState(*(np.zeros(25, np.float32) for _ in range(3)))
    coef = kernels.rmsprop_coefficients(
        1, lr=1e-2, decay=0.9, eps=1e-3, momentum=0.9, eps_in_sqrt=True, lr_in_momentum=True,
        bias_correction=False, centered=True, nesterov=False,
    )  # fmt: skip
    dx, dg = cuda.to_device(x), cuda.to_device(g)
    ds = [cuda.to_device(s) for s in state]
    fc.rmsprop([dx], [dg], kernels.RMSPropState(*([d] for d in ds)), coef)
    kernels.rmsprop(x, g, state, coef)
    _compare(x, dx, np.float32)
    coef = kernels.adam_coefficients(1, lr=1e-2)
    m, v = np.zeros(25, np.float32), np.zeros(25, np.float32)
    dm, dv = cuda.to_device(m), cuda.to_device(v)
    fc.adam(dx, dg, kernels.AdamState(dm, dv, dv), coef)
    kernels.adam(x, g, kernels.AdamState(m, v, v), coef)
    _compare(x, dx, np.float32)
    _compare(m, dm, np.float32)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_launch_helper_matches_the_cpu_kernel(name):
    """``fc.<name>`` on one array and on a list, with unused buffers passed as None, against
    ``kernels.<name>`` on state from ``kernels.<name>_state``."""
    rng = np.random.default_rng(14)
    sizes = (25, 3, 40)
    coef = _coefficients(name, lr=1e-2, **BUFFER_OPTIONS[name])
    xs = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    gs = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    states = [getattr(kernels, f"{name}_state")(x, coef) for x in xs]
    dxs, dgs = [cuda.to_device(x) for x in xs], [cuda.to_device(g) for g in gs]
    dstates = [type(s)(*(cuda.to_device(b) if b.size else None for b in s)) for s in states]
    launch = getattr(fc, name)
    launch(dxs[0], dgs[0], dstates[0], coef)  # one array
    fields = zip(*dstates[1:], strict=True)
    launch(dxs[1:], dgs[1:], type(states[0])(*(list(f) for f in fields)), coef)  # a list
    for x, g, s in zip(xs, gs, states, strict=True):
        getattr(kernels, name)(x, g, s, coef)
    for x, s, dx, ds in zip(xs, states, dxs, dstates, strict=True):
        _compare(x, dx, np.float32)
        for b, db in zip(s, ds, strict=True):
            if db is not None:
                _compare(b, db, np.float32)


def test_launch_helpers_check_their_records():
    dx = cuda.to_device(np.zeros(4))
    coef = kernels.adam_coefficients(1)
    with pytest.raises(TypeError, match="AdamState"):
        fc.adam(dx, dx, (dx, dx, dx), coef)
    with pytest.raises(TypeError, match="AdamCoefficients"):
        fc.adam(dx, dx, kernels.AdamState(dx, dx, dx), kernels.nadam_coefficients(1))
    with pytest.raises(ValueError, match="same length"):
        fc.adam([dx, dx], [dx], kernels.AdamState([dx, dx], [dx, dx], None), coef)
    with pytest.raises(TypeError, match="coefficient record"):
        fc.cast_coefficients(tuple(coef), np.float32)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_float16_needs_mixed_precision_and_keeps_float32_state(name):
    first = algorithms.ALGORITHMS[name].State._fields[0] + ".0"  # exp_avg.0, square_avg.0
    cls = _optimizer(name)
    rng = np.random.default_rng(5)
    x16 = rng.standard_normal(40).astype(np.float16)
    with pytest.raises(TypeError, match="mixed_precision=True"):
        cls(cuda.to_device(x16))
    dx = cuda.to_device(x16)
    opt = cls(dx, lr=1e-2, mixed_precision=True)
    ref = x16.astype(np.float32)
    opt_ref = cls(ref, lr=1e-2)
    for _ in range(5):
        g = rng.standard_normal(40).astype(np.float16)
        opt.step(cuda.to_device(g))
        opt_ref.step(g.astype(np.float32))
        ref[...] = ref.astype(np.float16)  # the float16 parameter is rounded at each store
    state = opt.state_dict()
    assert state[first].dtype == np.float32
    assert dx.copy_to_host().dtype == np.float16
    # float32 arithmetic, float16 storage of the parameter: within half-precision rounding
    np.testing.assert_allclose(dx.copy_to_host().astype(np.float32), ref, rtol=1e-3, atol=1e-3)
    # the state in float32 as on the CPU, up to the GPU's fused multiply-adds: an error of a
    # few float32 roundings of the largest values, absolute where m is near zero
    expected = opt_ref.state_dict()[first]
    atol = 8 * np.finfo(np.float32).eps * np.max(np.abs(expected))
    np.testing.assert_allclose(state[first], expected, rtol=1e-6, atol=atol)


def test_mixed_precision_and_stream_are_cuda_only():
    with pytest.raises(ValueError, match="float16 CUDA arrays"):
        fa.Adam(np.ones(3), mixed_precision=True)
    with pytest.raises(ValueError, match="stream is for CUDA arrays"):
        fa.RMSProp(np.ones(3), stream=object())


def test_stream_is_used():
    stream = cuda.stream()
    x = cuda.to_device(np.ones(10))
    opt = fa.RMSProp(x, lr=0.1, stream=stream)
    opt.step(cuda.to_device(np.ones(10)))
    stream.synchronize()
    assert np.all(x.copy_to_host() < 1)


def test_small_arrays_launch_without_numba_occupancy_warnings():
    # a 1,024-element array gets a one-block grid by design; numba-cuda warns about grids
    # under 128 blocks on a real GPU, at the first (dispatcher) launch of each plan
    x, g = cuda.to_device(np.ones(1024)), cuda.to_device(np.ones(1024))
    m, v = cuda.to_device(np.zeros(1024)), cuda.to_device(np.zeros(1024))
    coef = kernels.adam_coefficients(t=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fa.Adam(x, lr=0.1).step(g)
        fa.NAdam(x, lr=0.1, skip_nonfinite=True).step(g)
        fc.adam(x, g, kernels.AdamState(m, v, v), coef)
    assert np.all(x.copy_to_host() < 1)


@pytest.mark.parametrize("colour", [("", ""), ("\x1b[1m", "\x1b[0m")])
def test_the_occupancy_warning_is_silenced_as_numba_words_it(colour):
    # numba-cuda wraps its warnings' messages in colour codes where colorama is installed
    # (on the H200, not on CI); the filter has to match both
    from numba.cuda.core.errors import NumbaPerformanceWarning

    msg = "Grid size 3 will likely result in GPU under-utilization due to low occupancy."
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fc.quiet_launches():
            warnings.warn(colour[0] + msg + colour[1], NumbaPerformanceWarning, stacklevel=1)
        with pytest.raises(NumbaPerformanceWarning):  # only inside
            warnings.warn(colour[0] + msg + colour[1], NumbaPerformanceWarning, stacklevel=1)


def test_the_launch_helper_is_not_shadowed_by_a_submodule():
    """``fc.launch`` is the launch helper, also after every submodule has been imported
    (a submodule named ``launch`` would replace it as the package's attribute)."""
    import fastadam.cuda.backend  # noqa: F401
    import fastadam.cuda.cached_launch  # noqa: F401

    assert callable(fc.launch) and fc.launch.__module__ == "fastadam.cuda"
    assert fc.backend._cached_launch is cached_launch


def test_without_numba_cuda_device_arrays_say_what_to_install(monkeypatch):
    # fastadam.cuda (numba-cuda's kernels and the GPU backend) fails to import
    monkeypatch.setitem(sys.modules, "fastadam.cuda", None)
    with pytest.raises(ImportError, match=r"fastadam\[cuda\]"):
        fa.Adam(cuda.to_device(np.ones(3)))


def test_gpu_check_script_runs_on_the_simulator():
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, os.path.join(root, "benchmarks", "gpu_check.py"), "--sim"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "correctness: 0 failure(s)" in out.stdout
