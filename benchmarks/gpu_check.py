"""Real-GPU check: correctness against the CPU path, then throughput against the peers.

Run on a machine with an NVIDIA GPU (one call, a few minutes; ``benchmarks/gpu_run.sh``
runs it with the real-GPU tests and compute-sanitizer):

    NUMBA_ENABLE_CUDASIM=0 python benchmarks/gpu_check.py [--out report.md] [--csv table.csv]

1. Correctness: for every convention and option set, on fresh random inputs, the device
   optimizer against the CPU optimizer (float64 to 1e-12, float32 to 2e-5: the GPU may
   contract multiply-adds into FMAs; where a case amplifies rounding errors, as centered
   RMSProp's ``v - mean²`` does, the tolerance is 8 times the error the CPU itself makes in
   float32 against float64 on the same inputs, scaled to the dtype's epsilon), each device array
   placed between NaN guards in one
   allocation (guards of 16 elements keep it 16-byte aligned, for the vector kernels; of 1
   element, misaligned, for the scalar kernels), so that writes past either end and
   unwritten elements are caught. Every algorithm of ``fastadam.algorithms.ALGORITHMS``
   (Adam, RMSProp, NAdam) in every convention. Also a list of 30 arrays (several launches),
   and float16 parameters with float32 state. Steps after the first use cached launches.
2. Throughput (fp32; bytes read + written: 28 per element for Adam and NAdam, 20 for
   RMSProp, 8 for a copy): a size sweep of device copy (the ceiling), fastadam, torch (Adam
   fused=True, RMSprop foreach) and optax under jax.jit with donated buffers; then the
   issue's cases side by side: 2^28 elements, a 200-array model-like list, 1,024 elements,
   on numba, CuPy and torch arrays, cached launches against numba's dispatcher, vector
   against scalar kernels, NAdam, and a CuPy ElementwiseKernel.

``--correctness`` runs part 1 only; ``--sanitize`` a small correctness pass only (for
compute-sanitizer); ``--sim`` a tiny one on the CUDA simulator (a smoke test of this
script, run by the tests).
"""

import argparse
import csv
import datetime
import os
import sys
import time

if "--sim" in sys.argv:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
# JAX would otherwise take 75 % of the GPU's memory at its first use, leaving too little for
# the 2^28-element arrays of numba, torch and CuPy in this same process
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np
from numba import cuda

import fastadam as fa
import fastadam.cuda as fc
from fastadam import algorithms
from fastadam.cuda import cached_launch

# (optimizer class name, keywords): every convention of every algorithm
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
    ("NAdam", dict(convention="pytorch", weight_decay=0.1, eps=0.1)),
    ("NAdam", dict(convention="pytorch", decoupled_weight_decay=True, weight_decay=0.1)),
    ("NAdam", dict(convention="keras", weight_decay=0.05, maximize=True)),
    ("NAdam", dict(convention="optax", eps_root=1e-3, lr=lambda t: 1e-2 / t)),
]
_COVERED = {(getattr(fa, cls).algorithm.name, kw["convention"]) for cls, kw in CASES}
assert _COVERED == {
    (name, conv) for name, spec in algorithms.ALGORITHMS.items() for conv in spec.conventions
}, "CASES must cover every convention of every algorithm"


def _first_of_each(cases):
    """The first case of each algorithm."""
    first = {}
    for cls, kw in cases:
        first.setdefault(getattr(fa, cls).algorithm.name, (cls, kw))
    return list(first.values())


#: The first case of each algorithm (the sanitizer's small pass).
FIRST_CASES = _first_of_each(CASES)
TOL = {np.float64: 1e-12, np.float32: 2e-5}
GUARDS = {"aligned": 16, "misaligned": 1}


def _guarded(host, guard):
    """Device copies of ``host`` arrays, each between NaN guards in one allocation."""
    blocks = []
    for h in host:
        pad = np.full(guard, np.nan, h.dtype)
        blocks.append(cuda.to_device(np.concatenate([pad, h, pad])))
    return blocks, [b[guard:-guard] for b in blocks]


def _worst(expected, blocks, guard):
    worst = 0.0
    for h, d in zip(expected, blocks, strict=True):
        got = d.copy_to_host()
        if not (np.isnan(got[:guard]).all() and np.isnan(got[-guard:]).all()):
            return np.inf
        inner = got[guard:-guard]
        if h.size:
            worst = max(worst, float(np.max(np.abs(inner - h) / (np.abs(h) + 1))))
    return worst


def amplification(cls, kw, host, grads):
    """How much a case amplifies rounding on these inputs: the CPU's own float32 error
    against float64, on the inputs rounded to float32, in units of float32's epsilon (at
    least 1). Measured on the inputs of the comparison itself: the worst element of a case
    that cancels, as centered RMSProp's ``v - mean²`` does, depends on the draw."""
    host = [h.astype(np.float32) for h in host]
    single = getattr(fa, cls)([h.copy() for h in host], **kw)
    double = getattr(fa, cls)([h.astype(np.float64) for h in host], **kw)
    for step in grads:
        single.step([g.astype(np.float32) for g in step])
        double.step([g.astype(np.float32).astype(np.float64) for g in step])
    err = max(
        float(np.max(np.abs(a - b) / (np.abs(b) + 1)))
        for a, b in zip(single.params, double.params, strict=True)
    )
    return max(1.0, err / np.finfo(np.float32).eps)


def check_case(cls, kw, dtype, sizes, steps, layout, rng, amplify=False):
    guard = GUARDS[layout]
    host = [rng.standard_normal(n).astype(dtype) for n in sizes]
    grads = [[rng.standard_normal(n).astype(dtype) for n in sizes] for _ in range(steps)]
    amplified = amplification(cls, kw, host, grads) if amplify else 1.0
    tol = max(TOL[dtype], 8 * amplified * np.finfo(dtype).eps)
    blocks, dev = _guarded(host, guard)
    kind = getattr(fa, cls).algorithm.name  # AdamW runs the "adam" kernels
    lanes = fc.kernel_for(kind, {np.dtype(dtype)}, [fc.data_pointer(d) for d in dev])[1]
    opt_h = getattr(fa, cls)([h.copy() for h in host], **kw)
    opt_d = getattr(fa, cls)(dev, **kw)
    for step in grads:
        opt_h.step(step)
        opt_d.step([cuda.to_device(g) for g in step])
    cuda.synchronize()
    worst = _worst(opt_h.params, blocks, guard)
    ok = worst <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {cls:8s} {np.dtype(dtype).name:8s} {layout:10s} "
          f"lanes={lanes} {kw}  max rel err {worst:.2e} (tol {tol:.1e})")  # fmt: skip
    return not ok


def check_correctness(sizes, steps=20, cases=CASES, layouts=tuple(GUARDS), longest=5000):
    rng = np.random.default_rng(0)
    failures = 0
    for cls, kw in cases:
        for dtype in (np.float32, np.float64):
            for layout in layouts:
                failures += check_case(cls, kw, dtype, sizes, steps, layout, rng, True)
    # a long list: several launches of at most MAX_ARRAYS_PER_LAUNCH arrays
    many = [int(s) for s in rng.integers(1, longest, 30)]
    failures += check_case("Adam", dict(amsgrad=True), np.float32, many, steps, "aligned", rng)
    # float16 parameters with float32 state (mixed precision) against a float32 CPU run
    # whose parameters are rounded to float16 after every step
    for spec in algorithms.ALGORITHMS.values():
        failures += check_mixed_precision(getattr(fa, spec.title), sizes[-1], steps, rng)
    if not fc.SIMULATOR:
        state = "used" if cached_launch.LAST_ERROR is None else "NOT built"
        print(f"cached launches: {state} ({cached_launch.LAST_ERROR or 'no error'})")
    return failures


def check_mixed_precision(cls, n, steps, rng):
    x16 = rng.standard_normal(n).astype(np.float16)
    dx = cuda.to_device(x16)
    opt_d = cls(dx, lr=1e-2, mixed_precision=True)
    ref = x16.astype(np.float32)
    opt_h = cls(ref, lr=1e-2)
    for _ in range(steps):
        g = rng.standard_normal(n).astype(np.float16)
        opt_d.step(cuda.to_device(g))
        opt_h.step(g.astype(np.float32))
        ref[...] = ref.astype(np.float16)
    err = np.max(np.abs(dx.copy_to_host().astype(np.float32) - ref))
    first = cls.algorithm.State._fields[0] + ".0"  # exp_avg.0, square_avg.0
    ok = err <= 2e-3 and opt_d.state_dict()[first].dtype == np.float32
    print(f"{'ok  ' if ok else 'FAIL'} {cls.__name__:8s} float16 mixed precision  "
          f"max abs err {err:.2e}")  # fmt: skip
    return not ok


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


def _reps(n, bytes_per_elem):
    return int(max(10, min(1000, 2e9 / (n * bytes_per_elem))))


def _randn(n, seed, dtype=np.float32):
    return cuda.to_device(np.random.default_rng(seed).standard_normal(n).astype(dtype))


def _fastadam_step(cls, n):
    opt = getattr(fa, cls)(_randn(n, 0), lr=1e-3)
    g = _randn(n, 1)
    return lambda: opt.step(g)


def _torch_step(cls, n):
    import torch

    p = torch.randn(n, device="cuda")
    p.grad = torch.randn(n, device="cuda")
    if cls == "Adam":
        return torch.optim.Adam([p], lr=1e-3, fused=True).step
    return torch.optim.RMSprop([p], lr=1e-3, foreach=True).step


def _optax_step(cls, n):
    import jax
    import jax.numpy as jnp
    import optax

    tx = optax.adam(1e-3) if cls == "Adam" else optax.rmsprop(1e-3)
    params = jnp.zeros(n, jnp.float32)
    grads = jnp.ones(n, jnp.float32)

    def _step(params, state, grads):
        upd, state = tx.update(grads, state, params)
        return optax.apply_updates(params, upd), state

    jstep = jax.jit(_step, donate_argnums=(0, 1))
    box = [params, tx.init(params)]

    def step():
        box[0], box[1] = jstep(box[0], box[1], grads)

    step.sync = lambda: box[0].block_until_ready()
    return step


def _peer(make, *args):
    try:
        return make(*args)
    except Exception as exc:  # noqa: BLE001 - peers are optional
        print(f"skipped {make.__name__}{args}: {exc!r}")
        return None


def _sync_all():
    cuda.synchronize()
    try:
        import torch

        torch.cuda.synchronize()
    except Exception:  # noqa: BLE001
        pass


def sweep(log_sizes, device):
    """The size sweep, as rows of docs/data/bandwidth_gpu.csv."""
    rows = []

    def add(kernel, impl, n, seconds, bpe):
        rows.append(dict(kernel=kernel, impl=impl, mode="device", dtype="float32", elements=n,
                         seconds=f"{seconds:.4g}", gbps=f"{bpe * n / seconds / 1e9:.1f}",
                         device=device))  # fmt: skip
        print(f"{kernel:8s} {impl:14s} n=2^{int(np.log2(n)):2d} {seconds * 1e6:10.1f} µs "
              f"{bpe * n / seconds / 1e12:6.3f} TB/s", flush=True)  # fmt: skip

    for log in log_sizes:
        n = 1 << log
        a, b = cuda.device_array(n, np.float32), cuda.device_array(n, np.float32)
        copy = timeit(lambda a=a, b=b: b.copy_to_device(a), _sync_all, _reps(n, 8))
        for kernel in ("adam", "rmsprop"):
            add(kernel, "copy", n, copy, 8)
        for cls, kernel, bpe in (("Adam", "adam", 28), ("RMSProp", "rmsprop", 20)):
            reps = _reps(n, bpe)
            add(kernel, "fastadam", n, timeit(_fastadam_step(cls, n), _sync_all, reps), bpe)
            impl = "torch-fused" if cls == "Adam" else "torch-foreach"
            if (step := _peer(_torch_step, cls, n)) is not None:
                add(kernel, impl, n, timeit(step, _sync_all, reps), bpe)
            if (step := _peer(_optax_step, cls, n)) is not None:
                add(kernel, "optax", n, timeit(step, step.sync, reps), bpe)
            _sync_all()
    return rows


def model_sizes(n_arrays=200, total=69_000_000):
    rng = np.random.default_rng(2)
    sizes = rng.pareto(1.2, n_arrays) + 1
    return [int(s) for s in np.maximum((sizes / sizes.sum() * total).astype(int), 64)]


def host_rows(row, opt, grads, label, reps):
    """Where the host's time goes in ``opt.step``: reading and checking the gradients, and a
    whole step without waiting for the GPU (the launch rate; GPU-bound if it is higher)."""
    single = not isinstance(grads, list)
    b = opt._backend
    check = timeit(lambda: b.check_grads(grads, opt._params, single), lambda: None, reps)
    row(f"  host: read and check gradients, {label}", check, 0, 1)
    row(f"  host: opt.step without synchronising, {label}",
        timeit(lambda: opt.step(grads), lambda: None, reps), 0, 1)  # fmt: skip


def cases(log_n):
    """The issue's cases, side by side: (name, µs per step, TB/s, peer µs or None)."""
    out = []

    def row(name, seconds, bpe, elems, peer=None):
        out.append((name, seconds * 1e6, bpe * elems / seconds / 1e12, peer))
        print(f"{name:48s} {seconds * 1e6:10.1f} µs {bpe * elems / seconds / 1e12:6.3f} TB/s",
              flush=True)  # fmt: skip
        return seconds * 1e6

    n = 1 << log_n
    torch = _peer(__import__, "torch")
    cp = _peer(__import__, "cupy")
    # -- 2^log_n elements: vector and scalar kernels, numba / torch / CuPy arrays (about
    # 30 GiB at 2^28 with every peer installed; the arrays are freed on return)
    ref = None
    if torch is not None:
        ref = row("torch Adam fused", timeit(_torch_step("Adam", n), _sync_all, 20), 28, n)
    row("fastadam Adam (16-byte kernel)", timeit(_fastadam_step("Adam", n), _sync_all, 20),
        28, n, ref)  # fmt: skip
    row("fastadam RMSProp (16-byte kernel)",
        timeit(_fastadam_step("RMSProp", n), _sync_all, 20), 20, n, ref)  # fmt: skip
    row("fastadam NAdam (16-byte kernel)",
        timeit(_fastadam_step("NAdam", n), _sync_all, 20), 28, n, ref)  # fmt: skip
    block, gblock = _randn(n + 1, 0), _randn(n + 1, 1)
    opt = fa.Adam(block[1:], lr=1e-3)  # one element off: the scalar kernel
    row("fastadam Adam (scalar kernel, misaligned)",
        timeit(lambda: opt.step(gblock[1:]), _sync_all, 20), 28, n, ref)  # fmt: skip
    if torch is not None:
        tp = torch.randn(n, device="cuda")
        tg = torch.randn(n, device="cuda")
        opt = fa.Adam(tp, lr=1e-3)
        row("fastadam Adam on torch tensors", timeit(lambda: opt.step(tg), _sync_all, 20),
            28, n, ref)  # fmt: skip
    if cp is not None:
        cx, cg = cp.random.standard_normal(n, dtype=cp.float32), cp.ones(n, cp.float32)
        opt = fa.Adam(cx, lr=1e-3)
        csync = cp.cuda.Device().synchronize
        row("fastadam Adam on CuPy arrays", timeit(lambda: opt.step(cg), csync, 20), 28, n, ref)
        cm, cv = cp.zeros_like(cx), cp.zeros_like(cx)
        kern = cp.ElementwiseKernel(
            "T g, T lr, T b1, T b2, T eps, T bc1, T bc2", "T p, T m, T v",
            "m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;"
            "p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps);", "adam_cupy",
        )  # fmt: skip
        args = [np.float32(a) for a in (1e-3, 0.9, 0.999, 1e-8, 0.1, 0.001)]
        row("CuPy ElementwiseKernel Adam", timeit(lambda: kern(cg, *args, cx, cm, cv), csync,
            20), 28, n, ref)  # fmt: skip
    # -- a model-like list: 200 arrays, 69 M elements
    sizes = model_sizes()
    total = sum(sizes)
    ref = None
    if torch is not None:
        tps = [torch.zeros(s, device="cuda") for s in sizes]
        for t_ in tps:
            t_.grad = torch.zeros_like(t_)
        topt = torch.optim.Adam(tps, lr=1e-3, fused=True)
        ref = row("torch Adam fused, 200 arrays", timeit(topt.step, _sync_all, 20), 28, total)
        opt = fa.Adam([t_.detach() for t_ in tps], lr=1e-3)
        grads = [t_.grad for t_ in tps]
        row("fastadam Adam on torch tensors, 200 arrays",
            timeit(lambda: opt.step(grads), _sync_all, 20), 28, total, ref)  # fmt: skip
    xs = [cuda.to_device(np.zeros(s, np.float32)) for s in sizes]
    gs = [cuda.to_device(np.zeros(s, np.float32)) for s in sizes]
    opt = fa.Adam(xs, lr=1e-3)
    row("fastadam Adam, 200 arrays", timeit(lambda: opt.step(gs), _sync_all, 20), 28, total,
        ref)  # fmt: skip
    host_rows(row, opt, gs, "200 arrays", 20)
    # -- 1,024 elements: launch overhead
    ref = None
    if torch is not None:
        ts = torch.ones(1024, device="cuda")
        ts.grad = torch.ones(1024, device="cuda")
        topt = torch.optim.Adam([ts], lr=1e-3, fused=True)
        ref = row("torch Adam fused, 1,024", timeit(topt.step, _sync_all, 1000), 28, 1024)
        opt = fa.Adam(ts.detach(), lr=1e-3)
        row("fastadam Adam on torch tensors, 1,024",
            timeit(lambda: opt.step(ts.grad), _sync_all, 1000), 28, 1024, ref)  # fmt: skip
    if cp is not None:
        cx, cg = cp.ones(1024, cp.float32), cp.ones(1024, cp.float32)
        opt = fa.Adam(cx, lr=1e-3)
        row(
            "fastadam Adam on CuPy arrays, 1,024",
            timeit(lambda: opt.step(cg), cp.cuda.Device().synchronize, 1000),
            28,
            1024,
            ref,
        )
    x, g = _randn(1024, 0), _randn(1024, 1)
    opt = fa.Adam(x, lr=1e-3)
    row("fastadam Adam, 1,024 (cached launch)", timeit(lambda: opt.step(g), _sync_all, 1000),
        28, 1024, ref)  # fmt: skip
    host_rows(row, opt, g, "1,024", 1000)
    cached_launch.ENABLED = False
    opt = fa.Adam(_randn(1024, 0), lr=1e-3)
    row("fastadam Adam, 1,024 (numba dispatcher)",
        timeit(lambda: opt.step(g), _sync_all, 1000), 28, 1024, ref)  # fmt: skip
    cached_launch.ENABLED = True
    return out


def main():
    ap = argparse.ArgumentParser(description="fastadam real-GPU check")
    ap.add_argument("--log", type=int, default=28, help="log2 of the largest size (28)")
    ap.add_argument("--out", default=None, help="also write the report (markdown) here")
    ap.add_argument("--csv", default=None, help="write the size sweep here (figure table)")
    ap.add_argument("--sanitize", action="store_true", help="small correctness pass only")
    ap.add_argument("--no-sweep", action="store_true", help="skip the size sweep")
    ap.add_argument("--correctness", action="store_true", help="the correctness part only")
    ap.add_argument("--sim", action="store_true", help="tiny run on the CUDA simulator")
    args = ap.parse_args()
    dev = "simulator" if args.sim else cuda.get_current_device().name
    dev = dev.decode() if isinstance(dev, bytes) else dev
    today = datetime.date.today()
    print(f"# fastadam GPU check, {today}, {dev}", flush=True)
    if args.sim:  # small blocks so that the simulator runs several, and few steps
        fc.THREADS_PER_BLOCK, fc.MAX_BLOCKS = 8, 2
        failures = check_correctness((5, 37), steps=3, longest=100)  # 30 arrays, 3 launches
        opt, g = fa.Adam(_randn(8, 0)), _randn(8, 1)
        host_rows(lambda *row: print("host row", row[0]), opt, g, "8", 2)
    elif args.sanitize:
        failures = check_correctness((1, 37, 1000), steps=2, cases=FIRST_CASES)
    else:
        failures = check_correctness((1, 1000, 1 << 20, 3_000_017))
    print(f"correctness: {failures} failure(s)", flush=True)
    lines = [f"# fastadam GPU check, {today}, {dev}", "", f"correctness failures: {failures}"]
    if not (args.sim or args.sanitize or args.correctness):
        rows = [] if args.no_sweep else sweep(range(10, args.log + 1, 2), dev)
        if args.csv and rows:
            with open(args.csv, "w", newline="") as f:
                f.write(f"# machine: {dev}\n# date: {today}, fastadam {fa.__version__}\n")
                f.write("# written by: python benchmarks/gpu_check.py --csv\n")
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
        table = cases(args.log)
        lines += ["", f"| {dev}, fp32 | µs per step | TB/s | speed-up vs torch fused |",
                  "|---|---|---|---|"]  # fmt: skip
        for name, us, tbs, peer in table:
            ratio = f"{peer / us:.2f}×" if peer else ""
            lines.append(f"| {name} | {us:.1f} | {tbs:.3f} | {ratio} |")
        print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
