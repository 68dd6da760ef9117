"""Compile every fastadam CUDA kernel to PTX for sm_90 without a GPU, and describe it.

Needs numba-cuda with NVVM and NVRTC (the ``test`` extra installs them), not a GPU or a
driver. Prints one JSON object per kernel: its name, dtype, number of arrays per tuple, the
counts of 16-byte vector loads and stores, whether it uses local memory, and the bytes of
its kernel parameters. ``tests/test_cuda_ptx.py`` runs it and checks the numbers; the
simulator cannot see any of them (it runs the kernels as Python).

    python tests/ptx_check.py [n_arrays ...]
    python tests/ptx_check.py minimize     # minimize_batch's GPU kernel instead
"""

import json
import math
import os
import re
import sys

os.environ["NUMBA_ENABLE_CUDASIM"] = "0"

import numba  # noqa: E402
import numba.cuda.dispatcher as _dispatcher  # noqa: E402
import numpy as np  # noqa: E402
from numba import cuda  # noqa: E402
from numba.core import types  # noqa: E402

import fastadam.cuda as fc  # noqa: E402
from fastadam import kernels  # noqa: E402
from fastadam.algorithms import ALGORITHMS  # noqa: E402


class _Hopper:
    compute_capability = (9, 0)


# Device functions called by a kernel are compiled for "the current device"; without a GPU
# there is none, so name the one the PTX is for.
_dispatcher.get_current_device = _Hopper

#: a coefficient record per algorithm (only its types matter for the PTX)
COEF = {name: getattr(kernels, f"{name}_coefficients")(3) for name in ALGORITHMS}
_PARAM = re.compile(r"^\s*\.param\s+(?:\.align\s+(\d+)\s+)?\.(\w+)\s+\S+?(?:\[(\d+)\])?,?$")
_SIZES = {"u64": 8, "s64": 8, "b64": 8, "f64": 8, "u32": 4, "s32": 4, "b32": 4, "f32": 4,
          "u16": 2, "s16": 2, "b16": 2, "f16": 2, "u8": 1, "s8": 1, "b8": 1}  # fmt: skip


def param_bytes(ptx):
    """Bytes of the entry's parameters, each aligned to its size (as the ABI lays them)."""
    total = 0
    for line in ptx.split(".entry", 1)[1].split(")", 1)[0].splitlines():
        m = _PARAM.match(line)
        if m:
            size = _SIZES[m.group(2)] * int(m.group(3) or 1)
            align = int(m.group(1) or _SIZES[m.group(2)])
            total = -(-total // align) * align + size
    return total


def describe(name, kernel, dtype, state_dtype, n, coef):
    array = types.Array(numba.from_dtype(np.dtype(dtype)), 1, "C")
    state = types.Array(numba.from_dtype(np.dtype(state_dtype)), 1, "C")
    flags = (types.Array(types.int32, 1, "C"),) * 2 + (types.Array(types.int64, 1, "C"),)
    sig = (
        (types.UniTuple(array, n),) * 2
        + (types.UniTuple(state, n),) * 3
        + (numba.typeof(fc.cast_coefficients(coef, state_dtype)),)
        + flags
    )
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
    code = [line.split()[0] for line in ptx.splitlines() if line.startswith("\t") and line.split()]
    return {
        "kernel": name,
        "dtype": np.dtype(dtype).name,
        "arrays": n,
        "vector_loads": sum(1 for op in code if op.startswith("ld.") and ".v" in op),
        "vector_stores": sum(1 for op in code if op.startswith("st.") and ".v" in op),
        "local_memory": "__local_depot" in ptx or any(".local" in op for op in code),
        "param_bytes": param_bytes(ptx),
    }


def main(counts):
    try:
        cuda.compile_ptx(lambda x: None, (types.float32,), cc=(9, 0))
    except Exception as exc:  # no NVVM/NVRTC in this environment
        print(f"NVVM unavailable: {type(exc).__name__}: {exc}")
        sys.exit(3)
    cases = []
    for kind, coef in COEF.items():
        scalar, vectors = fc.SCALAR_KERNELS[kind], fc.VECTOR_KERNELS[kind]
        for dtype, kernel in vectors.items():
            cases.append((f"{kind}_vector", kernel, dtype, dtype, coef))
            cases.append((f"{kind}_scalar", scalar, dtype, dtype, coef))
        cases.append((f"{kind}_scalar", scalar, np.float16, np.float32, coef))
    for n in counts:
        for case in cases:
            print(json.dumps(describe(*case[:4], n, case[4])), flush=True)
    # a strided ('A' layout) array must not compile into a 16-byte kernel
    strided = types.Array(types.float32, 1, "A")
    kernel = fc.VECTOR_KERNELS["adam"][np.dtype(np.float32)]
    sig = (types.UniTuple(strided, 1),) * 5 + (
        numba.typeof(fc.cast_coefficients(COEF["adam"], np.float32)),
        types.Array(types.int32, 1, "C"), types.Array(types.int32, 1, "C"),
        types.Array(types.int64, 1, "C"),
    )  # fmt: skip
    try:
        cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
        refused = False
    except numba.core.errors.TypingError:
        refused = True
    print(json.dumps({"kernel": "adam_vector", "layout": "A", "refused": refused}))


@cuda.jit(device=True)
def _peak(p, g, t, y):
    """A small model for the minimize kernel: a Gaussian peak, least squares."""
    f = 0.0
    g[0] = g[1] = g[2] = 0.0
    for k in range(t.size):
        d = (t[k] - p[1]) / p[2]
        e = math.exp(-0.5 * d * d)
        r = p[0] * e - y[k]
        f += 0.5 * r * r
        g[0] += r * e
        g[1] += r * p[0] * e * d / p[2]
        g[2] += r * p[0] * e * d * d / p[2]
    return f


def minimize_kernels():
    """``fastadam.minimize_batch``'s GPU kernel for every algorithm, float32 and float64,
    with per-problem lr and bounds, on :func:`_peak`."""
    from fastadam.cuda import minimize as gpu
    from fastadam.optimize import api
    from fastadam.optimize import options as options_

    b, n = 8, 3
    for name in ALGORITHMS:
        for dtype in (np.float32, np.float64):
            x0 = np.ones((b, n), dtype)
            cfg = options_.resolve(name, dict(lr=np.full(b, 0.01)), None, batch=b)
            lo, hi = options_.check_bounds([(0, 5)] * n, n, x0.dtype)
            run = api._new_run(x0, lo, hi, cfg, keep_gradient=True)
            args = (np.zeros((1, 16), dtype), np.zeros((b, 16), dtype))
            kernel = gpu.kernel(_peak, None, name, cfg.batched, (2, 1))
            values = (run.ws, run.ws.glast, args, run.progress, run.hyper, run.carry,
                      cfg.controls)  # fmt: skip
            sig = tuple(numba.typeof(v) for v in values) + (
                types.int64, types.boolean, types.Array(types.int64, 1, "C"),
            )  # fmt: skip
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
            code = [ln.split()[0] for ln in ptx.splitlines() if ln.startswith("\t") and ln.split()]
            print(json.dumps({
                "kernel": f"minimize_{name}", "dtype": np.dtype(dtype).name,
                "local_memory": "__local_depot" in ptx or any(".local" in op for op in code),
                "param_bytes": param_bytes(ptx),
            }), flush=True)  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:] == ["minimize"]:
        minimize_kernels()
    else:
        main([int(a) for a in sys.argv[1:]] or [1, fc.MAX_ARRAYS_PER_LAUNCH])
