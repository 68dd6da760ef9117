"""The CUDA kernels compiled for a real GPU (sm_90 PTX, no GPU needed): what the simulator
cannot show. The 16-byte kernels must really issue vector loads and stores, keep their
per-lane buffers in registers, and every kernel's parameters must fit the classic 4 KiB
limit at MAX_ARRAYS_PER_LAUNCH arrays (numba passes 56 bytes per 1-D array)."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("numba.cuda")

HERE = os.path.dirname(os.path.abspath(__file__))


def _ptx_check(*args):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "ptx_check.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if out.returncode == 3:
        pytest.skip(out.stdout.strip())
    assert out.returncode == 0, out.stdout + out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def kernels_ptx():
    return _ptx_check()


def test_minimize_kernel_compiles_without_local_memory():
    """minimize_batch's GPU kernel (the CPU engine's stop tests and update, compiled as
    device functions, around a small model) for every algorithm and dtype keeps each
    thread's state in registers."""
    from fastadam.algorithms import ALGORITHMS

    found = _ptx_check("minimize")
    assert {(k["kernel"], k["dtype"]) for k in found} == {
        (f"minimize_{name}", dt) for name in ALGORITHMS for dt in ("float32", "float64")
    }
    assert not [k for k in found if k["local_memory"]]


def test_every_kernel_compiles(kernels_ptx):
    from fastadam import cuda as fc
    from fastadam.algorithms import ALGORITHMS

    names = {(k["kernel"], k["dtype"], k["arrays"]) for k in kernels_ptx if "dtype" in k}
    for n in (1, fc.MAX_ARRAYS_PER_LAUNCH):
        for kind in ALGORITHMS:
            for dtype in ("float32", "float64"):
                assert (f"{kind}_vector", dtype, n) in names
                assert (f"{kind}_scalar", dtype, n) in names
            assert (f"{kind}_scalar", "float16", n) in names


def test_vector_kernels_refuse_strided_arrays(kernels_ptx):
    assert [k["refused"] for k in kernels_ptx if k.get("layout") == "A"] == [True]


def test_vector_kernels_move_16_bytes_per_access(kernels_ptx):
    for k in kernels_ptx:
        if "layout" in k:
            continue
        if k["kernel"].endswith("_vector"):
            # parameter, gradient and the state buffers the rule may use: Adam (AMSGrad's
            # maximum) and RMSProp (centered, momentum) may use all three, 5 loads and 4
            # stores; NAdam never uses its third, whose access the compiler removes. LLVM
            # may unroll or unswitch the loop into several copies of that body (NAdam's
            # float64 kernel: 6 copies), each with the same 16-byte accesses.
            loads, stores = (4, 3) if k["kernel"].startswith("nadam") else (5, 4)
            copies = k["vector_loads"] // loads
            assert copies >= 1, k
            assert (k["vector_loads"], k["vector_stores"]) == (copies * loads, copies * stores), k
        else:
            assert k["vector_loads"] == k["vector_stores"] == 0, k


def test_no_local_memory(kernels_ptx):
    assert not [k for k in kernels_ptx if k.get("local_memory")]


def test_parameters_fit_4_kib(kernels_ptx):
    from fastadam import cuda as fc

    widest = [k for k in kernels_ptx if k.get("arrays") == fc.MAX_ARRAYS_PER_LAUNCH]
    assert widest and all(k["param_bytes"] <= 4096 for k in widest), widest
