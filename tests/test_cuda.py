"""The GPU path: kernels, device functions and optimizers on CUDA arrays.

On CI this runs under the CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1),
with a small block size patched in so that several blocks and the grid-stride loop run. On
a machine with a GPU, run it with NUMBA_ENABLE_CUDASIM=0.
"""

import numpy as np
import pytest

cuda = pytest.importorskip("numba.cuda")
if not cuda.is_available():  # pragma: no cover - real-GPU mode without a GPU
    pytest.skip("no CUDA device", allow_module_level=True)

import fastadam as fa  # noqa: E402
import fastadam.cuda as fc  # noqa: E402
from fastadam import kernels, rules  # noqa: E402

# float32 on a real GPU may contract a*b+c into an FMA: a few ulp per step.
TOL = {np.float64: 1e-12, np.float32: 2e-5}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(fc, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(fc, "MAX_BLOCKS", 3)


def _compare(host, dev, dtype):
    np.testing.assert_allclose(dev.copy_to_host(), host, rtol=TOL[dtype], atol=TOL[dtype])


ADAM_CASES = [
    dict(convention="pytorch", amsgrad=True, weight_decay=0.1, eps=0.1),
    dict(convention="keras", amsgrad=True, weight_decay=0.05, maximize=True),
    dict(convention="optax", amsgrad=True, eps_root=1e-3, lr=lambda t: 1e-2 / t),
    dict(convention="tf1", bias_correction=False),
]
RMSPROP_CASES = [
    dict(convention="pytorch", momentum=0.9, centered=True, weight_decay=0.1),
    dict(convention="keras", momentum=0.5, weight_decay=0.01),
    dict(convention="tf1", centered=True),
    dict(convention="optax", momentum=0.9, nesterov=True, bias_correction=True),
    dict(convention="basic", eps=0.1),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "make",
    [lambda x, kw=kw: fa.Adam(x, **kw) for kw in ADAM_CASES]
    + [lambda x, kw=kw: fa.RMSProp(x, **kw) for kw in RMSPROP_CASES],
)
def test_optimizer_on_device_matches_cpu(make, dtype):
    rng = np.random.default_rng(1)
    host = [rng.standard_normal(n).astype(dtype) for n in (37, 5)] + [
        rng.standard_normal((3, 4)).astype(dtype)
    ]
    dev = [cuda.to_device(h) for h in host]
    opt_h, opt_d = make([h.copy() for h in host]), make(dev)
    for _ in range(6):
        grads = [rng.standard_normal(h.shape).astype(dtype) for h in host]
        opt_h.step(grads)
        opt_d.step([cuda.to_device(g) for g in grads])
    for h, d in zip(opt_h.params, dev, strict=True):
        _compare(h, d, dtype)
    sd_h, sd_d = opt_h.state_dict(), opt_d.state_dict()
    assert sorted(sd_h) == sorted(sd_d)
    for key, value in sd_h.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            np.testing.assert_allclose(sd_d[key], value, rtol=TOL[dtype], atol=TOL[dtype])


def _misaligned(host):
    """A device copy of ``host`` that starts one element past a 16-byte boundary."""
    block = cuda.to_device(np.concatenate([host[:1], host]))
    view = block[1:]
    assert fc.data_pointer(view) % fc.VECTOR_BYTES != 0
    return view


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", ["Adam", "RMSProp"])
def test_vector_and_scalar_kernels_agree_with_cpu(cls, dtype):
    """Aligned arrays take the 16-byte kernels (lanes > 1, with a tail of size % lanes);
    a misaligned parameter or gradient takes the scalar kernel; all match the CPU path."""
    kw = dict(amsgrad=True) if cls == "Adam" else dict(centered=True, momentum=0.9)
    rng = np.random.default_rng(7)
    sizes = (4, 7, 33)
    host = [rng.standard_normal(n).astype(dtype) for n in sizes]
    aligned = [cuda.to_device(h) for h in host]
    shifted = [_misaligned(h) for h in host]
    _, lanes = fc.kernel_for(cls.lower(), {np.dtype(dtype)}, map(fc.data_pointer, aligned))
    assert lanes == fc.VECTOR_BYTES // np.dtype(dtype).itemsize
    _, lanes = fc.kernel_for(cls.lower(), {np.dtype(dtype)}, map(fc.data_pointer, shifted))
    assert lanes == 1
    opt_h = getattr(fa, cls)([h.copy() for h in host], lr=1e-2, **kw)
    opt_a = getattr(fa, cls)(aligned, lr=1e-2, **kw)
    opt_s = getattr(fa, cls)(shifted, lr=1e-2, **kw)
    for _ in range(5):
        grads = [rng.standard_normal(n).astype(dtype) for n in sizes]
        opt_h.step(grads)
        opt_a.step([cuda.to_device(g) for g in grads])
        opt_s.step([_misaligned(g) for g in grads])
    for h, a, b in zip(opt_h.params, aligned, shifted, strict=True):
        _compare(h, a, dtype)
        _compare(h, b, dtype)


@pytest.mark.skipif(not fc.SIMULATOR, reason="the simulator's own access checks")
def test_simulated_vector_access_checks_alignment():
    """On the simulator a misaligned 16-byte access would not fault as on the GPU; the
    simulated loads check it, so a wrong kernel choice fails the tests."""
    x = _misaligned(np.ones(9, np.float32))
    args = [(x,), (cuda.to_device(np.ones(9, np.float32)),)] + [
        (_misaligned(np.zeros(9, np.float32)),)
    ] * 3
    coef = fc.cast_coefficients(
        rules.adam_coefficients(1, 1e-2, 0.9, 0.999, 1e-8, 0.0, 0.0, False, False, True,
                                False, False, False), np.float32)  # fmt: skip
    kernel = fc.ADAM_VECTOR_KERNELS[np.dtype(np.float32)]
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
    # the launch helpers split lists too
    coef = rules.adam_coefficients(
        1, 1e-2, 0.9, 0.999, 1e-8, 0.0, 0.0, False, False, True, False, False, False
    )
    xs = [rng.standard_normal(n) for n in sizes]
    gs = [rng.standard_normal(n) for n in sizes]
    ms = [np.zeros(n) for n in sizes]
    vs = [np.zeros(n) for n in sizes]
    dxs = [cuda.to_device(x) for x in xs]
    dms = [cuda.to_device(m) for m in ms]
    dvs = [cuda.to_device(v) for v in vs]
    dgs = [cuda.to_device(g) for g in gs]
    fc.adam(dxs, dgs, dms, dvs, dvs, coef)
    for x, g, m, v, dx in zip(xs, gs, ms, vs, dxs, strict=True):
        kernels.adam(x, g, m, v, v, coef)
        _compare(x, dx, np.float64)
    with pytest.raises(ValueError, match="at most MAX_ARRAYS_PER_LAUNCH = 2"):
        fc.launch("adam", *(tuple(a[:3]) for a in (dxs, dgs, dms, dvs, dvs)), coef, False,
                  *fc._no_skip_flags(3))  # fmt: skip


@pytest.mark.skipif(fc.SIMULATOR, reason="cached launches exist on a real GPU only")
@pytest.mark.parametrize("cls", ["Adam", "RMSProp"])
def test_cached_launches_match_the_dispatcher(cls, monkeypatch):
    """From the second step on, an optimizer launches from its cached argument lists; the
    results are bitwise those of numba's dispatcher."""
    from fastadam import _cuda_launch

    rng = np.random.default_rng(9)
    sizes = (1024, 37, 5000, 3)
    host = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [[rng.standard_normal(n).astype(np.float32) for n in sizes] for _ in range(4)]
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(_cuda_launch, "ENABLED", enabled)
        dev = [cuda.to_device(h) for h in host]
        opt = getattr(fa, cls)(dev, lr=1e-2, weight_decay=0.1)
        for step in grads:
            opt.step([cuda.to_device(g) for g in step])
        cuda.synchronize()
        built = [c for part in opt._skips[0].plan.parts for c in part.cached.values()]
        if enabled:
            assert built and all(c is not None for c in built), _cuda_launch.LAST_ERROR
        else:
            assert not built
        results.append([d.copy_to_host() for d in dev])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_state_dict_round_trip_on_device():
    rng = np.random.default_rng(2)
    x = cuda.to_device(rng.standard_normal(20))
    opt = fa.Adam(x, amsgrad=True)
    for _ in range(3):
        opt.step(cuda.to_device(rng.standard_normal(20)))
    state = opt.state_dict()
    assert all(isinstance(v, np.ndarray) for k, v in state.items() if "." in k)
    y = cuda.to_device(x.copy_to_host())
    opt2 = fa.Adam(y, amsgrad=True)
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
    coef = rules.adam_coefficients(
        1, 1e-2, 0.9, 0.999, 1e-8, 0.0, 0.0, False, False, True, False, False, False
    )
    fc.adam(dx[::2], dg[::2], dm[::2], dv[::2], dv[::2], coef)
    xs, ms, vs = x[::2].copy(), m[::2].copy(), v[::2].copy()
    kernels.adam(xs, g[::2].copy(), ms, vs, vs, coef)
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
            b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, mode = coef
            x[i], m[i], v[i], _ = fc.adam_update(
                x[i], g[i], m[i], v[i], x[i], b1, ob1, b2, ob2, ss, c2, er, e, l2, wdf, s, 0
            )

    rng = np.random.default_rng(3)
    x, g = rng.standard_normal(30), rng.standard_normal(30)
    m, v = np.zeros(30), np.zeros(30)
    coef = rules.adam_coefficients(
        1, 1e-2, 0.8, 0.99, 0.1, 0.0, 0.0, False, False, True, False, False, False
    )
    dx, dm, dv = (cuda.to_device(a) for a in (x, m, v))
    user_kernel[4, 8](dx, cuda.to_device(g), dm, dv, fc.cast_coefficients(coef, np.float64))
    kernels.adam(x, g, m, v, v, coef)
    _compare(x, dx, np.float64)
    _compare(v, dv, np.float64)


def test_launch_helpers_single_and_list():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(25).astype(np.float32)
    g = rng.standard_normal(25).astype(np.float32)
    state = [np.zeros(25, np.float32) for _ in range(3)]
    coef = rules.rmsprop_coefficients(
        1, 1e-2, 0.9, 1e-3, 0.9, 0.0, False, True, True, False, False, True, False
    )
    dx, dg = cuda.to_device(x), cuda.to_device(g)
    ds = [cuda.to_device(s) for s in state]
    fc.rmsprop([dx], [dg], *([d] for d in ds), coef)
    kernels.rmsprop(x, g, *state, coef)
    _compare(x, dx, np.float32)
    coef = rules.adam_coefficients(
        1, 1e-2, 0.9, 0.999, 1e-8, 0.0, 0.0, False, False, True, False, False, False
    )
    m, v = np.zeros(25, np.float32), np.zeros(25, np.float32)
    dm, dv = cuda.to_device(m), cuda.to_device(v)
    fc.adam(dx, dg, dm, dv, dv, coef)
    kernels.adam(x, g, m, v, v, coef)
    _compare(x, dx, np.float32)
    _compare(m, dm, np.float32)


def test_float16_needs_mixed_precision_and_keeps_float32_state():
    rng = np.random.default_rng(5)
    x16 = rng.standard_normal(40).astype(np.float16)
    with pytest.raises(TypeError, match="mixed_precision=True"):
        fa.Adam(cuda.to_device(x16))
    dx = cuda.to_device(x16)
    opt = fa.Adam(dx, lr=1e-2, mixed_precision=True)
    ref = x16.astype(np.float32)
    opt_ref = fa.Adam(ref, lr=1e-2)
    for _ in range(5):
        g = rng.standard_normal(40).astype(np.float16)
        opt.step(cuda.to_device(g))
        opt_ref.step(g.astype(np.float32))
        ref[...] = ref.astype(np.float16)  # the float16 parameter is rounded at each store
    state = opt.state_dict()
    assert state["exp_avg.0"].dtype == np.float32
    assert dx.copy_to_host().dtype == np.float16
    # float32 arithmetic, float16 storage of the parameter: within half-precision rounding
    np.testing.assert_allclose(dx.copy_to_host().astype(np.float32), ref, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(state["exp_avg.0"], opt_ref.state_dict()["exp_avg.0"], rtol=1e-6)


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


def test_without_numba_cuda_device_arrays_say_what_to_install(monkeypatch):
    from fastadam import _gpu

    monkeypatch.setattr(_gpu, "cuda", None)
    monkeypatch.setattr(_gpu, "_IMPORT_ERROR", ImportError("no numba-cuda"), raising=False)
    with pytest.raises(ImportError, match=r"fastadam\[cuda\]"):
        fa.Adam(cuda.to_device(np.ones(3)))


def test_gpu_check_script_runs_on_the_simulator():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, os.path.join(root, "benchmarks", "gpu_check.py"), "--sim"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "correctness: 0 failure(s)" in out.stdout
