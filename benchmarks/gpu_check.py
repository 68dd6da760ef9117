"""Real-GPU check: correctness against the CPU path, then throughput against the peers.

Run on a machine with an NVIDIA GPU (one call, a few minutes):

    NUMBA_ENABLE_CUDASIM=0 python benchmarks/gpu_check.py [--log N] [--out results.md]

1. Correctness: for every convention and option set, 20 steps on fresh random inputs, the
   device optimizer against the CPU optimizer (float64 to 1e-12, float32 to 2e-5: the GPU
   may contract multiply-adds into FMAs), with state buffers poisoned to NaN outside the
   arrays' ends (separate sentinel arrays) to catch out-of-range writes, and all elements
   checked to catch unwritten ones.
2. Throughput (fp32, 2^N elements, 28 bytes per element for Adam, 20 for RMSProp): device
   copy (the ceiling), fastadam Adam/RMSProp (one array; 200-array model-like list), torch
   Adam(fused=True) and RMSprop(foreach), optax adam under jax.jit with donated buffers, a
   CuPy ElementwiseKernel; and the per-step time at 1,024 elements.

With ``--sim`` it runs a tiny version on the CUDA simulator (a smoke test of this script).
"""

import argparse
import datetime
import os
import sys
import time

if "--sim" in sys.argv:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np
from numba import cuda

import fastadam as fa

CASES = [
    ("Adam", dict(convention="pytorch", amsgrad=True, weight_decay=0.1, eps=0.1)),
    ("Adam", dict(convention="keras", amsgrad=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(convention="optax", amsgrad=True, eps_root=1e-3, lr=lambda t: 1e-2 / t)),
    ("Adam", dict(convention="tf1")),
    ("AdamW", dict(convention="pytorch")),
    ("RMSProp", dict(convention="pytorch", momentum=0.9, centered=True, weight_decay=0.1)),
    ("RMSProp", dict(convention="keras", momentum=0.5, weight_decay=0.01)),
    ("RMSProp", dict(convention="tf1", centered=True)),
    ("RMSProp", dict(convention="optax", momentum=0.9, nesterov=True, bias_correction=True)),
    ("RMSProp", dict(convention="basic", eps=0.1)),
]
TOL = {np.float64: 1e-12, np.float32: 2e-5}


def check_correctness(sizes, steps=20):
    rng = np.random.default_rng(0)
    failures = 0
    for cls, kw in CASES:
        for dtype in (np.float32, np.float64):
            host = [rng.standard_normal(n).astype(dtype) for n in sizes]
            # poison: each device parameter sits between NaN sentinels in one allocation
            blocks = [np.concatenate([np.full(7, np.nan, dtype), h, np.full(7, np.nan, dtype)])
                      for h in host]  # fmt: skip
            dblocks = [cuda.to_device(b) for b in blocks]
            dev = [d[7:-7] for d in dblocks]
            opt_h = getattr(fa, cls)([h.copy() for h in host], **kw)
            opt_d = getattr(fa, cls)(dev, **kw)
            for _ in range(steps):
                grads = [rng.standard_normal(n).astype(dtype) for n in sizes]
                opt_h.step(grads)
                opt_d.step([cuda.to_device(g) for g in grads])
            cuda.synchronize()
            worst = 0.0
            for h, d in zip(opt_h.params, dblocks, strict=True):
                got = d.copy_to_host()
                ok_guard = np.isnan(got[:7]).all() and np.isnan(got[-7:]).all()
                err = np.max(np.abs(got[7:-7] - h) / (np.abs(h) + 1)) if h.size else 0.0
                worst = max(worst, err if ok_guard else np.inf)
            ok = worst <= TOL[dtype]
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {cls:8s} {np.dtype(dtype).name:8s} {kw}  "
                  f"max rel err {worst:.2e}")  # fmt: skip
    # float16 parameters with float32 state (mixed precision) against a float32 CPU run
    # whose parameters are rounded to float16 after every step
    x16 = rng.standard_normal(sizes[-1]).astype(np.float16)
    dx = cuda.to_device(x16)
    opt_d = fa.Adam(dx, lr=1e-2, mixed_precision=True)
    ref = x16.astype(np.float32)
    opt_h = fa.Adam(ref, lr=1e-2)
    for _ in range(steps):
        g = rng.standard_normal(sizes[-1]).astype(np.float16)
        opt_d.step(cuda.to_device(g))
        opt_h.step(g.astype(np.float32))
        ref[...] = ref.astype(np.float16)
    err = np.max(np.abs(dx.copy_to_host().astype(np.float32) - ref))
    ok = err <= 2e-3 and opt_d.state_dict()["exp_avg.0"].dtype == np.float32
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} Adam     float16 mixed precision  max abs err {err:.2e}")
    return failures


def timeit(step, sync, reps):
    step()
    sync()
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        sync()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def throughput(log_n, reps):
    n = 1 << log_n
    rows = []
    sync = cuda.synchronize

    def row(name, seconds, bytes_per_elem, elems=n):
        rows.append((name, seconds * 1e6, bytes_per_elem * elems / seconds / 1e12))

    a = cuda.device_array(n, np.float32)
    b = cuda.device_array(n, np.float32)
    row("device copy (read+write)", timeit(lambda: b.copy_to_device(a), sync, reps), 8)
    x = cuda.to_device(np.random.default_rng(0).standard_normal(n).astype(np.float32))
    g = cuda.to_device(np.random.default_rng(1).standard_normal(n).astype(np.float32))
    opt = fa.Adam(x, lr=1e-3)
    row("fastadam Adam", timeit(lambda: opt.step(g), sync, reps), 28)
    opt = fa.RMSProp(x, lr=1e-3)
    row("fastadam RMSProp", timeit(lambda: opt.step(g), sync, reps), 20)
    # model-like list: 200 arrays, 69 M elements in total
    rng = np.random.default_rng(2)
    sizes = rng.pareto(1.2, 200) + 1
    sizes = np.maximum((sizes / sizes.sum() * 69_000_000).astype(int), 64)
    xs = [cuda.device_array(int(s), np.float32) for s in sizes]
    gs = [cuda.device_array(int(s), np.float32) for s in sizes]
    for arr in xs + gs:
        arr.copy_to_device(np.zeros(arr.size, np.float32))
    opt = fa.Adam(xs, lr=1e-3)
    row("fastadam Adam, 200 arrays", timeit(lambda: opt.step(gs), sync, reps), 28,
        int(sizes.sum()))  # fmt: skip
    small = cuda.to_device(np.ones(1024, np.float32))
    gsmall = cuda.to_device(np.ones(1024, np.float32))
    opt = fa.Adam(small)
    row("fastadam Adam, 1,024 elements", timeit(lambda: opt.step(gsmall), sync, 1000), 28, 1024)
    try:
        import torch

        tsync = torch.cuda.synchronize
        tp = torch.randn(n, device="cuda")
        tp.grad = torch.randn(n, device="cuda")
        topt = torch.optim.Adam([tp], lr=1e-3, fused=True)
        row("torch Adam fused", timeit(topt.step, tsync, reps), 28)
        topt = torch.optim.RMSprop([tp], lr=1e-3, foreach=True)
        row("torch RMSprop foreach", timeit(topt.step, tsync, reps), 20)
        tps = [torch.zeros(int(s), device="cuda") for s in sizes]
        for t_ in tps:
            t_.grad = torch.zeros_like(t_)
        topt = torch.optim.Adam(tps, lr=1e-3, fused=True)
        row("torch Adam fused, 200 arrays", timeit(topt.step, tsync, reps), 28, int(sizes.sum()))
        ts = torch.ones(1024, device="cuda")
        ts.grad = torch.ones(1024, device="cuda")
        topt = torch.optim.Adam([ts], lr=1e-3, fused=True)
        row("torch Adam fused, 1,024 elements", timeit(topt.step, tsync, 1000), 28, 1024)
        # fastadam on torch tensors (zero-copy through __cuda_array_interface__)
        opt = fa.Adam(tp.detach(), lr=1e-3)
        row("fastadam Adam on torch tensor", timeit(lambda: opt.step(tp.grad), tsync, reps), 28)
        opt = fa.Adam(ts.detach(), lr=1e-3)
        row("fastadam Adam on torch, 1,024", timeit(lambda: opt.step(ts.grad), tsync, 1000), 28,
            1024)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - peers are optional
        print(f"torch skipped: {exc!r}")
    try:
        import cupy as cp

        cx = cp.random.standard_normal(n, dtype=cp.float32)
        cg = cp.random.standard_normal(n, dtype=cp.float32)
        cm, cv = cp.zeros_like(cx), cp.zeros_like(cx)
        kern = cp.ElementwiseKernel(
            "T g, T lr, T b1, T b2, T eps, T bc1, T bc2", "T p, T m, T v",
            "m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;"
            "p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps);", "adam_cupy",
        )  # fmt: skip
        args = [np.float32(a) for a in (1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001)]
        row(
            "CuPy ElementwiseKernel Adam",
            timeit(lambda: kern(cg, *args, cx, cm, cv), cp.cuda.Device().synchronize, reps),
            28,
        )
        opt = fa.Adam(cx, lr=1e-3)
        row("fastadam Adam on CuPy array",
            timeit(lambda: opt.step(cg), cp.cuda.Device().synchronize, reps), 28)  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        print(f"cupy skipped: {exc!r}")
    try:
        import jax
        import jax.numpy as jnp
        import optax

        tx = optax.adam(1e-3)
        params = jnp.zeros(n, jnp.float32)
        grads = jnp.ones(n, jnp.float32)
        state = tx.init(params)

        @jax.jit
        def _step(params, state, grads):
            upd, state = tx.update(grads, state, params)
            return optax.apply_updates(params, upd), state

        jstep = jax.jit(_step.__wrapped__, donate_argnums=(0, 1))
        box = [params, state]

        def step():
            box[0], box[1] = jstep(box[0], box[1], grads)

        row("optax adam (jit, donated)", timeit(step, lambda: box[0].block_until_ready(), reps),
            28)  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        print(f"optax skipped: {exc!r}")
    return rows


def main():
    ap = argparse.ArgumentParser(description="fastadam real-GPU check")
    ap.add_argument("--log", type=int, default=28, help="log2 of the array size (default 28)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", default=None, help="also write the report (markdown) here")
    ap.add_argument("--sim", action="store_true", help="tiny run on the CUDA simulator")
    args = ap.parse_args()
    lines = []
    dev = "simulator" if args.sim else cuda.get_current_device().name
    dev = dev.decode() if isinstance(dev, bytes) else dev
    print(f"# fastadam GPU check, {datetime.date.today()}, {dev}")
    if args.sim:  # small blocks so that the simulator runs several, and few steps
        import fastadam.cuda as fc

        fc.THREADS_PER_BLOCK, fc.MAX_BLOCKS = 8, 2
        failures = check_correctness((5, 37), steps=3)
    else:
        failures = check_correctness((1, 1000, 1 << 20, 3_000_017))
    print(f"correctness: {failures} failure(s)")
    if not args.sim:
        rows = throughput(args.log, args.reps)
        lines.append(f"| {dev}, fp32, n = 2^{args.log} | µs per step | TB/s |")
        lines.append("|---|---|---|")
        lines += [f"| {name} | {us:.1f} | {tbs:.3f} |" for name, us, tbs in rows]
        print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + f"\n\ncorrectness failures: {failures}\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
