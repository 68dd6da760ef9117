"""CPU kernel throughput, side by side in one process: fastadam vs the memory skeleton (the
floor), plain numpy, torch's fused CPU optimizers (when installed) and the same fastadam loop
compiled without SIMD.

    python benchmarks/bench_kernels.py [--sizes 1000 100000 10000000] [--markdown]

GB/s counts the bytes an update must move (Adam: read p, g, m, v and write p, m, v = 7
arrays; RMSProp: 5 arrays). "x skel" is fastadam's throughput over the skeleton's with the
same threading; "x torch" is fastadam's best (serial or parallel) over torch fused.
The "scalar" column is fastadam's serial kernel compiled with NUMBA_LOOP_VECTORIZE=0 and
NUMBA_SLP_VECTORIZE=0 (measured in a subprocess), i.e. the same loop without SIMD.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

import numba
import numpy as np

import fastadam as fa
from fastadam import kernels

# the measurement helpers live with the asv suite (appended: an installed fastadam wins)
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from asv_benchmarks import _common  # noqa: E402

KERNELS = ("adam", "rmsprop")


def _torch_step(kernel, dtype, n):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[np.dtype(dtype).type]
    p = torch.randn(n, dtype=tdtype, requires_grad=False)
    p.grad = torch.randn(n, dtype=tdtype)
    if kernel == "adam":
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
    else:
        opt = torch.optim.RMSprop([p], lr=1e-2)  # no fused RMSprop in torch
    opt.step()
    return opt.step


def _opt_step(kernel, dtype, n):
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    opt = fa.Adam(p) if kernel == "adam" else fa.RMSProp(p)
    opt.step(g)
    return lambda: opt.step(g)


def _gbs(kernel, dtype, n, seconds):
    return _common.bytes_per_step(kernel, n, dtype) / seconds / 1e9


def scalar_times(sizes):
    """Times of the serial kernels compiled without SIMD, from a subprocess."""
    env = dict(os.environ, NUMBA_LOOP_VECTORIZE="0", NUMBA_SLP_VECTORIZE="0")
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run(
            [sys.executable, __file__, "--scalar-only", "--sizes", *map(str, sizes)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return {tuple(k.split("|")): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}


def _serial_loop(name):
    """The numba dispatcher of the serial kernel ``name``: the kernel itself before the
    redesign of 2026-11, the compiled loop that the checked kernel calls after it."""
    kernel = getattr(kernels, name)
    if hasattr(kernel, "py_func"):
        return kernel
    from fastadam.cpu.kernels import COMPILED

    return COMPILED[name].serial


def simd_report():
    """Count packed vs scalar sqrt/div instructions in the compiled serial kernels."""
    lines = []
    for name in ("adam", "rmsprop"):
        cached = _serial_loop(name)
        # numba cannot show the assembly of code loaded from its cache: recompile a copy
        k = numba.njit(error_model="numpy")(cached.py_func)
        for sig in cached.signatures:
            k.compile(sig)
            asm = k.inspect_asm(sig)
            packed = len(re.findall(r"\bv(?:sqrt|div)p[sd]\s+%[xyz]mm", asm))
            scalar = len(re.findall(r"\bv(?:sqrt|div)s[sd]\s", asm))
            widths = sorted(set(re.findall(r"\bv(?:sqrt|div)p[sd]\s+%([xyz])mm", asm)))
            regs = "/".join(w + "mm" for w in widths)
            lines.append(
                f"{name}[{sig[0]}]: {packed} packed sqrt/div ({regs})"
                f", {scalar} scalar (remainder loop and alias-check fallback)"
            )
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 10_000_000])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--scalar-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cases = [(k, d, n) for k in KERNELS for d in args.dtypes for n in args.sizes]

    if args.scalar_only:
        res = {}
        for k, d, n in cases:
            step, _ = _common.kernel_case(k, d, n, "serial")
            res[f"{k}|{d}|{n}"] = _common.best_time(step)
        print(json.dumps(res))
        return

    scalar = scalar_times(args.sizes)
    print(
        f"# fastadam CPU kernels, {datetime.date.today()}, {platform.processor() or 'cpu'} "
        f"({os.cpu_count()} cores, numba {numba.__version__}, {numba.get_num_threads()} "
        f"threads, numpy {np.__version__})\n"
    )
    head = (
        "| kernel | dtype | n | serial GB/s | parallel GB/s | opt.step µs | skel serial | "
        "skel parallel | x skel (ser/par) | numpy GB/s | torch GB/s | x torch | scalar GB/s "
        "| x scalar |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for k, d, n in cases:
        t = {}
        for impl in ("fastadam", "skeleton"):
            for mode in ("serial", "parallel"):
                step, _ = _common.kernel_case(k, d, n, mode, impl=impl)
                t[impl, mode] = _common.best_time(step)
        step, _ = _common.kernel_case(k, d, n, "serial", impl="numpy")
        t["numpy"] = _common.best_time(step)
        t["opt"] = _common.best_time(_opt_step(k, d, n))
        torch_step = _torch_step(k, d, n)
        t["torch"] = _common.best_time(torch_step) if torch_step else None
        best = min(t["fastadam", "serial"], t["fastadam", "parallel"])
        g = {key: _gbs(k, d, n, v) for key, v in t.items() if v}
        row = [
            k, d, f"{n:,}",
            f"{g['fastadam', 'serial']:.1f}", f"{g['fastadam', 'parallel']:.1f}",
            f"{t['opt'] * 1e6:.1f}",
            f"{g['skeleton', 'serial']:.1f}", f"{g['skeleton', 'parallel']:.1f}",
            f"{t['skeleton', 'serial'] / t['fastadam', 'serial']:.2f} / "
            f"{t['skeleton', 'parallel'] / t['fastadam', 'parallel']:.2f}",
            f"{g['numpy']:.1f}",
            f"{g['torch']:.1f}" if t["torch"] else "n/a",
            f"{t['torch'] / best:.2f}" if t["torch"] else "n/a",
            f"{_gbs(k, d, n, scalar[k, d, str(n)]):.1f}",
            f"{scalar[k, d, str(n)] / t['fastadam', 'serial']:.2f}",
        ]  # fmt: skip
        print("| " + " | ".join(row) + " |", flush=True)
    print("\nkernel call at n = 1,000 (µs):", end=" ")
    for k in KERNELS:
        step, _ = _common.kernel_case(k, "float64", 1000, "serial")
        print(f"{k} {_common.best_time(step) * 1e6:.2f}", end="  ")
    print("\n\nSIMD check of the serial kernels (x86 assembly):")
    for line in simd_report():
        print("  " + line)


if __name__ == "__main__":
    main()
