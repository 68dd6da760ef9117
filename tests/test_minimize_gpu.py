"""minimize_batch on the GPU (fastadam.cuda.minimize) against the CPU engine.

Under the CUDA simulator (CI) the device code runs as Python with numpy scalars; in float64
that is the CPU's arithmetic, so every field must be bitwise equal to the CPU's compiled
path. On a real GPU (NUMBA_ENABLE_CUDASIM=0) the compiler may fuse multiply-adds, so the
runs that stop at ``maxiter`` are compared to a tolerance instead. Small blocks (4 threads
for 5 problems) make several blocks run, and ``maxiter`` above the first launch's 100
iterations makes several launches. (The simulator runs each device thread as a Python
thread: a few problems and iterations keep these tests short.)
"""

import math

import numpy as np
import pytest
from numba import njit

cuda = pytest.importorskip("numba.cuda")
if not cuda.is_available():  # pragma: no cover - real-GPU mode without a GPU
    pytest.skip("no CUDA device", allow_module_level=True)

import fastadam as fa  # noqa: E402
import fastadam.cuda as fc  # noqa: E402
from fastadam.cuda import minimize as gpu  # noqa: E402

FIELDS = ("x", "fun", "jac", "nit", "nfev", "njev", "status", "best_x", "best_fun", "gnorm")
B, N = 5, 3


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    if fc.SIMULATOR:
        monkeypatch.setattr(gpu, "THREADS_PER_BLOCK", 4)


# (powers written as products: Python's x ** 3 is pow(), numba's repeated multiplication)
def quartic(x, g, c, w):
    """``sum w (x - c)^2 + 0.1 x^4``; the gradient written into ``g``."""
    f = 0.0
    for j in range(x.size):
        d = x[j] - c[j]
        x2 = x[j] * x[j]
        f += w[j] * d * d + 0.1 * x2 * x2
        g[j] = 2.0 * w[j] * d + 0.4 * x2 * x[j]
    return f


def quartic_f(x, c, w):
    f = 0.0
    for j in range(x.size):
        d = x[j] - c[j]
        x2 = x[j] * x[j]
        f += w[j] * d * d + 0.1 * x2 * x2
    return f


def quartic_g(x, g, c, w):
    for j in range(x.size):
        x2 = x[j] * x[j]
        g[j] = 2.0 * w[j] * (x[j] - c[j]) + 0.4 * x2 * x[j]


device_quartic = cuda.jit(device=True)(quartic)
_quartic_cpu = njit(quartic)


@njit
def cpu_quartic(x, c, w):
    g = np.empty_like(x)
    f = _quartic_cpu(x, g, c, w)
    return f, g


def data(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-2, 2, (B, N))
    w = rng.uniform(0.5, 3.0, (1, N))  # shared by every problem
    x0 = rng.uniform(-1, 1, (B, N)).astype(dtype)
    return x0, c.astype(dtype), w.astype(dtype)


def assert_same(res, ref, exact):
    assert res.device == "cuda" and res.compiled
    for k in FIELDS:
        a, b = np.asarray(res[k]), np.asarray(ref[k])
        assert a.shape == b.shape and a.dtype == b.dtype, k
        if exact or a.dtype.kind in "iub":
            np.testing.assert_array_equal(a, b, err_msg=k)
        else:  # the run's dtype sets the tolerance (fun is float64 in either)
            tol = 1e-9 if res.x.dtype == np.float64 else 2e-4
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=k)
    assert res.message == ref.message and "problems succeeded" in repr(res)


CASES = {
    "adam": dict(amsgrad=True, weight_decay=0.01, lr=np.linspace(0.01, 0.05, B)),
    "adamw": dict(lr=0.03, weight_decay=0.1, betas=(0.8, np.linspace(0.99, 0.999, B))),
    # (an lr at which no problem reaches its minimum in 105 iterations: there the gradient
    # is rounding, and RMSProp's normalised step turns the GPU's fused multiply-adds in the
    # objective into differences of order lr, 3e-6 measured on an H200 at lr=0.01)
    "rmsprop": dict(lr=0.003, momentum=0.5, convention="keras"),
    "nadam": dict(lr=0.02, convention="optax"),
}


@pytest.mark.parametrize(
    ("method", "dtype"), [(m, np.float64) for m in CASES] + [("adam", np.float32)]
)
def test_every_method_as_the_cpu_engine(method, dtype):
    x0, c, w = data(dtype)
    # float32: 30 iterations, before the iterates chatter around the minimum with an
    # amplitude of about lr, where the rounding of each step decides the phase
    maxiter = 105 if dtype == np.float64 else 30
    opts = dict(CASES[method], maxiter=maxiter, gtol=0.0)
    bounds = [(-1.5, 1.5)] * N
    kw = dict(args=(c, w), method=method, jac=True, bounds=bounds, options=opts)
    res = fa.minimize_batch(device_quartic, cuda.to_device(x0), **kw)
    ref = fa.minimize_batch(cpu_quartic, x0, **kw)
    assert ref.compiled and np.all(res.nit == maxiter)
    assert_same(res, ref, exact=fc.SIMULATOR and dtype == np.float64)


@pytest.mark.skipif(not fc.SIMULATOR, reason="stop iterations may move by one with FMAs")
@pytest.mark.parametrize(
    "stop", [dict(gtol=1e-3), dict(ftol=1e-6, window=5), dict(xtol=1e-4, window=3)]
)
def test_stop_tests_as_on_the_cpu(stop):
    x0, c, w = data()
    opts = dict(lr=0.05, maxiter=150, track_best=False, **stop)
    kw = dict(args=(c, w), jac=True, options=opts)
    res = fa.minimize_batch(device_quartic, cuda.to_device(x0), **kw)
    ref = fa.minimize_batch(cpu_quartic, x0, **kw)
    assert set(res.status) != {1}  # the test fired before maxiter for some problems
    assert_same(res, ref, exact=True)


@pytest.mark.skipif(not fc.SIMULATOR, reason="FMAs: compared bitwise")
def test_a_run_stopped_by_maxtime_keeps_its_iterates_and_best():
    """maxtime stops the problems between launches, between their stop tests and their
    update: the kept iterates come back with the result (only what the result is made of
    is copied back), as a CPU run stopped at that iteration keeps them."""
    x0, c, w = data()
    opts = dict(lr=0.05, gtol=0.0, track_best=True)
    kw = dict(args=(c, w), jac=True)
    res = fa.minimize_batch(device_quartic, cuda.to_device(x0), **kw,
                            options=dict(opts, maxiter=1000, maxtime=1e-9))  # fmt: skip
    done = int(res.nit[0])  # the first launch's iterations
    assert np.all(res.status == 6) and np.all(res.nit == done) and 0 < done < 1000
    ref = fa.minimize_batch(cpu_quartic, x0, **kw, options=dict(opts, maxiter=done))
    for k in ("x", "best_x", "best_fun", "fun", "jac"):
        np.testing.assert_array_equal(res[k], ref[k], err_msg=k)


def test_plain_python_functions_and_a_separate_jac():
    x0, c, w = data()
    opts = dict(lr=0.05, maxiter=60, gtol=0.0)
    res = fa.minimize_batch(
        quartic_f, x0, args=(c, w), jac=quartic_g, options=dict(opts, device="cuda")
    )
    ref = fa.minimize_batch(cpu_quartic, x0, args=(c, w), jac=True, options=opts)
    assert_same(res, ref, exact=fc.SIMULATOR)


def test_a_nonfinite_objective_stops_its_problem_as_on_the_cpu():
    def blows_up(x, g, c, w):
        f = device_quartic(x, g, c, w)
        return math.inf if x[0] > 0.9 else f

    x0, c, w = data()
    x0[:, 0] = [0.95, 0.0, 0.5, 0.85, -0.5]  # the first starts beyond the limit, the others
    # cross it on their way to c = 1.5
    c[:, 0] = 1.5
    opts = dict(lr=0.02, maxiter=120, gtol=0.0)
    res = fa.minimize_batch(blows_up, cuda.to_device(x0), args=(c, w), jac=True, options=opts)
    ref = fa.minimize_batch(cpu_blows_up, x0, args=(c, w), jac=True, options=opts)
    assert np.all(res.status == 4) and res.nit[0] == 0 and np.all(res.nit[1:] > 0)
    assert res.x[0, 0] == 0.95 and np.all(res.x[1:, 0] <= 0.9)  # x0, or the last finite
    assert_same(res, ref, exact=fc.SIMULATOR)


@njit
def cpu_blows_up(x, c, w):
    f, g = cpu_quartic(x, c, w)
    return (math.inf if x[0] > 0.9 else f), g


# (a grid of one block: numba-cuda's low-occupancy warning must not reach the user)
@pytest.mark.filterwarnings("error:.*Grid size")
def test_minimize_one_problem_on_the_device():
    x0, c, w = data()
    opts = dict(lr=0.05, maxiter=50, gtol=0.0)
    kw = dict(args=(c[0], w[0]), jac=True, options=opts)
    res = fa.minimize(device_quartic, cuda.to_device(x0[0]), **kw)
    ref = fa.minimize(cpu_quartic, x0[0], **kw)
    assert res.x.shape == (N,) and isinstance(res.fun, float) and res.device == "cuda"
    exact = fc.SIMULATOR
    for k in ("x", "fun", "jac", "nit", "status", "best_x"):
        if exact:
            np.testing.assert_array_equal(res[k], ref[k], err_msg=k)
        else:
            np.testing.assert_allclose(res[k], ref[k], rtol=1e-9, err_msg=k)


def _raises(exc, match, **kw):
    x0, c, w = data()
    call = dict(fun=device_quartic, x0=cuda.to_device(x0), args=(c, w), jac=True)
    call.update(kw)
    with pytest.raises(exc, match=match):
        fa.minimize_batch(**call)


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        (dict(jac=None), ValueError, "jac must be a device function"),
        (dict(jac="2-point"), ValueError, "finite differences run on the CPU only"),
        (dict(callback=lambda r: None), ValueError, "callback is not supported"),
        (dict(options=dict(lr=lambda t: 0.1)), ValueError, "lr schedule is not supported"),
        (dict(options=dict(compiled=False)), ValueError, "Python loop"),
        (dict(options=dict(device="cpu")), ValueError, "device'] is 'cpu'"),
        (dict(options=dict(device="gpu")), ValueError, "'cpu' or 'cuda'"),
        (dict(args=(np.zeros((3, N)), np.ones((1, N)))), ValueError, r"leading axis must be 5"),
        (dict(args=(np.zeros((B, N), dtype=object), 1.0)), TypeError, "args\\[0\\] has dtype"),
        (dict(fun=np.sum), TypeError, "fun must be a numba-cuda device function"),
        (dict(jac=np.sum), TypeError, "jac must be a numba-cuda device function"),
        # the CPU's (f, g) form: refused before numba-cuda types it
        (dict(fun=lambda x, c, w: (0.0, x)), TypeError, "fun must take 4 parameters, it takes 3"),
        (dict(fun=lambda x, c, w: 0.0, jac=lambda x, c, w: x), TypeError, "jac must take 4"),
    ],
)
def test_errors_before_anything_runs(kw, exc, match):
    _raises(exc, match, **kw)


@pytest.mark.skipif(fc.SIMULATOR, reason="the simulator does not type device code")
def test_a_function_that_does_not_compile_is_a_type_error():
    def wrong(x, g, c, w):
        return x  # an array, not a number

    _raises(TypeError, "do not compile for the device", fun=wrong)


@pytest.mark.skipif(not fc.SIMULATOR, reason="a smoke test of the script on the simulator")
def test_gpu_batch_benchmark_runs_on_the_simulator():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "benchmarks", "bench_batch_gpu.py")
    out = subprocess.run([sys.executable, script, "--sim"], capture_output=True, text=True,
                         timeout=300, cwd=root)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "correctness: 0 failure(s)" in out.stdout
