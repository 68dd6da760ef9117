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

SIM = cuda.simulator_is_enabled if hasattr(cuda, "simulator_is_enabled") else True

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
