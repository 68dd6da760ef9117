"""The benchmark helpers (asv_benchmarks/_common.py) and the demo's baselines against
fastadam: every hand-written update that a benchmark or the demo times computes what
fastadam computes, and the helpers' coefficients and kernel calls do what the optimizers do.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastadam as fa
from fastadam import __main__ as demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(ROOT)  # appended: the installed fastadam stays the one imported
from asv_benchmarks import _common  # noqa: E402

STEPS = 4


def _tolerance(dtype):
    return dict(rtol=2e-5, atol=1e-6) if np.dtype(dtype) == np.float32 else dict(rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["serial", "parallel"])
@pytest.mark.parametrize("kernel", _common.KERNELS)
def test_baselines_compute_what_fastadam_computes(kernel, mode, dtype):
    """The plain numba loop and the numpy baseline that the benchmarks time against
    fastadam's kernel give its results, from the same seeded data, step after step."""
    impls = ["fastadam", "loop", "skeleton"] + (["numpy"] if kernel != "adamw" else [])
    out = {}
    for impl in impls:
        step, arrays = _common.kernel_case(kernel, dtype, 1000, mode, impl=impl)
        for _ in range(STEPS - 1):  # kernel_case made the first step
            step()
        out[impl] = arrays
    for impl in ("loop", "numpy"):
        if impl in out:
            for k, (x, y) in enumerate(zip(out["fastadam"], out[impl], strict=True)):
                np.testing.assert_allclose(y, x, err_msg=f"{impl}: array {k}", **_tolerance(dtype))
    # the skeleton does other arithmetic on the same traffic: it must at least have written
    assert not np.array_equal(out["skeleton"][0], _common._data(kernel, dtype, 1000, 0)[0])


@pytest.mark.parametrize("n", [5, fa.kernels.PARALLEL_MIN_SIZE])
@pytest.mark.parametrize("optimizer", list(_common.OPTIMIZERS))
def test_coefficients_and_kernel_calls_match_the_optimizers(optimizer, n):
    """coefficients() + bind_kernel(), the benchmarks' only use of the kernel API, update
    the arrays exactly as the optimizer does (PyTorch's convention, the same lr)."""
    kind, options = _common.OPTIMIZERS[optimizer]
    make = {"adam": fa.Adam, "adamw": fa.AdamW, "rmsprop": fa.RMSProp}[kind]
    lr = _common.RMSPROP_LR if kind == "rmsprop" else _common.ADAM_LR
    rng = np.random.default_rng(1)
    p = rng.standard_normal(n)
    q = p.copy()
    opt = make(p, lr=lr, **options)
    n_state = 2 if kind != "rmsprop" else (3 if options else 1)
    state = tuple(np.zeros_like(q) for _ in range(n_state))
    for t in range(1, STEPS + 1):
        g = rng.standard_normal(n)
        opt.step(g)
        coef = _common.coefficients(kind, t, lr, **options)
        _common.bind_kernel(kind, n >= fa.kernels.PARALLEL_MIN_SIZE, q, g, state, coef)()
    np.testing.assert_allclose(q, p, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("n_arrays", [1, 3])
@pytest.mark.parametrize("optimizer", ["Adam", "AdamW", "RMSProp"])
def test_plain_optimizer_steps_as_fastadam(optimizer, n_arrays):
    """The plain Python optimizer that StepRatio times fastadam's optimizers against."""
    opt_step, plain_step, (opt, plain, ps, gs, qs) = _common.step_case(
        optimizer, "float64", 7, n_arrays
    )
    for _ in range(STEPS - 1):  # step_case made the first step
        opt_step()
        plain_step()
    assert opt.t == plain.t == STEPS
    for p, q in zip(ps, qs, strict=True):
        np.testing.assert_allclose(q, p, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_demo_numpy_baselines_match_fastadam(dtype):
    """The plain-numpy updates of ``python -m fastadam``'s throughput table."""
    rng = np.random.default_rng(2)
    p = rng.standard_normal(500).astype(dtype)
    q, r, s = p.copy(), p.copy(), p.copy()
    adam = fa.Adam(p, lr=demo.BENCH_LR["adam"])
    rmsprop = fa.RMSProp(r, lr=demo.BENCH_LR["rmsprop"])
    m, v, w = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    tmp = np.empty_like(p)
    for t in range(1, STEPS + 1):
        g = rng.standard_normal(500).astype(dtype)
        adam.step(g)
        rmsprop.step(g)
        demo.numpy_adam_step(q, g, m, v, tmp, t, lr=demo.BENCH_LR["adam"])
        demo.numpy_rmsprop_step(s, g, w, tmp, lr=demo.BENCH_LR["rmsprop"])
    np.testing.assert_allclose(q, p, **_tolerance(dtype))
    np.testing.assert_allclose(s, r, **_tolerance(dtype))


def test_demo_throughput_rows_without_benchmark_helpers():
    """The demo's table comes from fastadam and numpy alone (the wheel has no helpers)."""
    assert "asv_benchmarks" not in demo.__dict__
    rows = demo.cpu_throughput([1000], "float64", min_time=1e-4)
    assert [r[0] for r in rows] == ["adam", "rmsprop"]
    for row in rows:
        assert float(row[3].replace(",", "")) > 0  # us/step
        assert row[5].endswith("%") and row[6].endswith("x")


def test_interleaved_ratio_measures_a_known_ratio():
    """Twice the work reads as about twice the time (loose bounds: a shared machine)."""

    def work(n):
        return lambda: sum(range(n))

    samples = []
    ratio = _common.interleaved_ratio(work(4000), work(2000), seconds=0.1, samples=samples)
    assert len(samples) >= 8
    assert 1.3 < ratio < 3.0


def test_aligned_arrays():
    for offset in (0, 64, 320):
        x = _common.aligned_empty(1000, "float32", offset)
        assert x.ctypes.data % 4096 == offset
        assert x.size == 1000 and x.dtype == np.float32 and x.flags.c_contiguous


def test_kernel_case_rejects_unknown_names():
    with pytest.raises(ValueError, match="kernel"):
        _common.kernel_case("sgd", "float64", 10, "serial")
    with pytest.raises(ValueError, match="mode"):
        _common.kernel_case("adam", "float64", 10, "threads")
    with pytest.raises(ValueError, match="impl"):
        _common.kernel_case("adam", "float64", 10, "serial", impl="torch")
    with pytest.raises(ValueError, match="kind"):
        _common.coefficients("sgd", 1, 1e-3)


def test_importing_the_asv_suite_starts_no_threads():
    """asv forks every benchmark from a server process that imported the whole suite. If
    that import started numba's threads (fastadam may start them when imported), GNU
    OpenMP would abort every parallel kernel after the fork; so the suite imports fastadam
    in ``setup`` only."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import asv_benchmarks\n"
        "for m in pkgutil.iter_modules(asv_benchmarks.__path__):\n"
        "    importlib.import_module('asv_benchmarks.' + m.name)\n"
        "assert 'fastadam' not in sys.modules, 'the asv suite imports fastadam'\n"
        "from numba.np.ufunc import parallel\n"
        "assert not parallel._is_initialized, 'the asv suite starts numba threads'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_batched_fit_floor_is_adam():
    """The floor of the batched-fit benchmark (a hand-written prange Adam loop) runs
    PyTorch's Adam: its iterates match fa.minimize_batch's (the same evaluations, the
    update's arithmetic in another order: float64 rounding only)."""
    from asv_benchmarks import _peaks as pk

    y, _, x0 = pk.data(5)
    floor = pk.floor_adam(x0.copy(), y, pk.T, 50, pk.LR)
    res = fa.minimize_batch(pk.fun_and_grad, x0, args=(y, pk.T[np.newaxis]), jac=True,
                            options=dict(lr=pk.LR, maxiter=50, gtol=0.0))  # fmt: skip
    np.testing.assert_allclose(floor, res.x, rtol=1e-9, atol=1e-12)
    assert np.all(res.nit == 50)
