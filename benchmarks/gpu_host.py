"""Host cost of a GPU step of fastadam: gradient checks and cached launches, before and after.

Run on a machine with an NVIDIA GPU (under a minute on an H200, most of it compiling the
36 kernel signatures of part 2; ``benchmarks/gpu_run.sh`` runs it as its ``host`` step):

    python3 benchmarks/gpu_host.py [--no-timing]

It prints ``FAIL`` lines for any difference (again at the end) and exits 1, in this order:

1. CPU checks, no GPU used (alone: ``--cpu``, on any machine): numba-cuda's own kernel
   parameter lists for fastadam's kernels (``_Kernel._prepare_args`` on device arrays with
   made-up pointers), written into a ``cached_launch.Parameters`` block as the per-step code
   writes them, against cuda.core's ``ParamHolder`` byte for byte; the numba
   ``DeviceNDArray`` fast path of the gradient check against the interface path.
2. Bitwise equivalence on the GPU: Adam, RMSProp and NAdam (every state buffer in use, a
   learning-rate schedule), float32 and float64, aligned (16-byte kernels, then misaligned
   gradients: the scalar kernels) and misaligned arrays, lists of 30 and 200 arrays, four
   steps each, through numba's dispatcher and through the cached launches before
   (``cuda.core.launch``, every gradient through its interface) and after
   (``cuLaunchKernel`` on a parameter block, fast gradient checks): parameters, state and
   skip counters must be identical, and each path must have built the launches it names;
   then steps made in new threads (no current CUDA context there).
3. Gradient checks on numba, CuPy and torch arrays (those importable): the fast paths give
   the records of the interface path (pointer, stream, shape, dtype), and the same errors.
4. Timing of ``opt.step`` (``fa.Adam``, float32) on the 200-array model-like list
   (``model_sizes()`` of gpu_check.py, 69 M elements) and on 1,024 elements, per array kind
   and variant (``dispatcher``, ``before``, ``grads`` = fast checks only, ``launch`` =
   driver launches only, ``new``): µs per step synchronised (``step``) and not (``issue``:
   the host's rate), ``check_grads`` alone (``check``), one cached launch alone
   (``launch``, mean over the step's launches); and torch's fused Adam for reference.

``--sim`` runs part 2 (tiny lists) on the CUDA simulator, where no launch is cached: a smoke
test of this script, run by the tests.
"""

import argparse
import contextlib
import ctypes
import math
import os
import sys
import threading
import time
import types

if "--sim" in sys.argv:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
elif "--cpu" in sys.argv or "NUMBA_ENABLE_CUDASIM" not in os.environ:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"

import numpy as np  # noqa: E402
from numba import cuda  # noqa: E402

import fastadam as fa  # noqa: E402
import fastadam.cuda as fc  # noqa: E402
from fastadam import algorithms, kernels  # noqa: E402
from fastadam.cuda import backend, cached_launch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_check import model_sizes  # noqa: E402

FAILURES = []


def fail(message):
    FAILURES.append(message)
    print(f"FAIL {message}", flush=True)


def ok(message):
    print(f"ok   {message}", flush=True)


#: variant -> (cached launches on, launcher, fast gradient checks)
VARIANTS = {
    "dispatcher": (False, "core", False),
    "before": (True, "core", False),
    "grads": (True, "core", True),
    "launch": (True, "driver", False),
    "new": (True, "driver", True),
}
#: the kind of cached launch each variant must build on a real GPU
EXPECTED = {"dispatcher": type(None), "before": cached_launch.CoreLaunch,
            "grads": cached_launch.CoreLaunch, "launch": cached_launch.DriverLaunch,
            "new": cached_launch.DriverLaunch}  # fmt: skip


@contextlib.contextmanager
def variant(name):
    """Run with the switches of ``VARIANTS[name]`` (restored after); an optimizer builds its
    launches at its first steps, so make it inside."""
    saved = cached_launch.ENABLED, cached_launch.LAUNCHER, backend.FAST_GRADS
    enabled, launcher, fast = VARIANTS[name]
    cached_launch.ENABLED = enabled and not fc.SIMULATOR
    cached_launch.LAUNCHER, backend.FAST_GRADS = launcher, fast
    try:
        yield
    finally:
        cached_launch.ENABLED, cached_launch.LAUNCHER, backend.FAST_GRADS = saved


def parts(opt):
    return [part for group in opt._groups for launch in group.launches
            for part in launch.counters.plan.parts]  # fmt: skip


def built(opt):
    """The cached launches (or None) of every part and kernel used so far."""
    return [c for part in parts(opt) for c in part.cached.values()]


# -- 1. CPU checks ---------------------------------------------------------------------------
class _FakeMemory:
    """numba device arrays on made-up device addresses, never touched (no GPU needed)."""

    def __init__(self):
        self.next, self.bases = 1 << 32, []

    def pointer(self, nbytes, offset=0):
        from cuda.bindings import driver as cu
        from numba.cuda.cudadrv import driver

        ptr, self.next = self.next + offset, self.next + (nbytes + 4096) // 256 * 256
        return driver.AutoFreePointer(context=None, pointer=cu.CUdeviceptr(ptr), size=nbytes)

    def array(self, shape, dtype, strides=None, offset=0, stream=0):
        from numba.cuda.cudadrv import devicearray

        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, int) else shape
        strides = strides or tuple(dtype.itemsize * math.prod(shape[i + 1 :])
                                   for i in range(len(shape)))  # fmt: skip
        memory = self.pointer(math.prod(shape) * dtype.itemsize * 2, offset)
        return devicearray.DeviceNDArray(shape, strides, dtype, stream=stream, gpu_data=memory)

    def view(self, n, dtype, start):
        """``n`` elements from ``start`` of a larger array, as numba slices (its memory an
        ``OwnedPointer`` on a view of the larger one's)."""
        from numba.cuda.cudadrv import devicearray

        dtype = np.dtype(dtype)
        base = self.pointer((n + start) * dtype.itemsize)
        self.bases.append(base)  # the view holds a weak proxy of it
        view = base.view(start * dtype.itemsize)
        return devicearray.DeviceNDArray((n,), (dtype.itemsize,), dtype, gpu_data=view)


def _numba_flat(dispatcher, args):
    """numba's flat parameter list for ``args`` and where each argument starts in it
    (``_Kernel._prepare_args`` unbound: of its kernel it reads only ``extensions``)."""
    from numba.cuda.dispatcher import _Kernel

    class Kernel:
        extensions = ()
        _prepare_args = _Kernel._prepare_args

    flat, starts, writeback = [], [], []
    for a in args:
        starts.append(len(flat))
        Kernel()._prepare_args(dispatcher.typeof_pyval(a), a, 0, writeback, flat)
    starts.append(len(flat))
    return flat, starts


def _kernel_args(memory, fixed, kind, dtype, t, offset):
    """A launch's arguments: the arrays of ``fixed`` but new gradients (``offset`` bytes
    off the alignment for some), the coefficients of step ``t``; and the float64 record."""
    ps, _, s1, s2, s3, _, *flags = fixed
    gs = tuple(memory.array(p.size, dtype, offset=offset * (i % 3)) for i, p in enumerate(ps))
    coef = getattr(kernels, f"{kind}_coefficients")(t, lr=1e-3 * t, weight_decay=0.1)
    return (ps, gs, s1, s2, s3, fc.cast_coefficients(coef, dtype), *flags), coef


def check_parameter_blocks(n=12):
    """The per-step writes of a parameter block give cuda.core's packing of numba's list."""
    memory = _FakeMemory()
    for kind in algorithms.ALGORITHMS:
        for dtype in (np.float32, np.float64):
            label = f"parameter block {kind} {np.dtype(dtype).name}"
            try:
                ps = tuple(memory.array(50 + i, dtype) for i in range(n))
                state = [tuple(memory.array(50 + i, dtype) for i in range(n)) for _ in "abc"]
                flags = [memory.array(n, t) for t in (np.int32, np.int32, np.int64)]
                fixed = (ps, None, *state, None, *flags)
                args, coef = _kernel_args(memory, fixed, kind, dtype, 1, 0)
                flat, starts = _numba_flat(fc.SCALAR_KERNELS[kind], args)
                slots, coef_slots = cached_launch._layout(args, flat, starts)
                block = cached_launch.Parameters(flat, slots, coef_slots)
                sizes = [ctypes.sizeof(cached_launch._slot(v)[0]) for v in flat]
                for t, offset in ((1, 0), (2, 4), (7, 0), (1000, 8)):
                    args, coef = _kernel_args(memory, fixed, kind, dtype, t, offset)
                    block.write([g.__cuda_array_interface__["data"][0] for g in args[1]], coef)
                    step_flat, _ = _numba_flat(fc.SCALAR_KERNELS[kind], args)
                    cached_launch.check_against_cuda_core(block, step_flat, sizes)
            except Exception as exc:  # noqa: BLE001 - reported
                fail(f"{label}: {exc!r}")
                continue
            ok(f"{label}: {len(flat)} parameters, as cuda.core packs numba's list, 4 steps")


def _record(g):
    return g if not isinstance(g, backend._Grad) else (
        id(g.obj), g.shape, g.dtype, g.ptr, g.stream
    )  # fmt: skip


def _outcome(grads, params, single):
    """The records check_grads returns, or the error it raises."""
    try:
        return [_record(g) for g in backend.check_grads(grads, params, single)]
    except Exception as exc:  # noqa: BLE001 - compared
        return f"{type(exc).__name__}: {exc}"


def compare_grad_checks(label, grads, params, single=False):
    """check_grads through the fast paths and through the interface: the same outcome."""
    saved = backend.FAST_GRADS
    try:
        backend.FAST_GRADS = True
        fast = _outcome(grads, params, single)
        backend.FAST_GRADS = False
        slow = _outcome(grads, params, single)
    finally:
        backend.FAST_GRADS = saved
    if fast != slow:
        fail(f"check_grads {label}: fast path {str(fast)[:300]} != interface {str(slow)[:300]}")
    else:
        what = "error" if isinstance(fast, str) else f"{len(fast)} records"
        ok(f"check_grads {label}: fast path = interface ({what})")


def _param(shape, dtype=np.float32):
    """What check_grads reads of a parameter."""
    return types.SimpleNamespace(shape=tuple(shape), dtype=np.dtype(dtype))


def check_numba_fast_path():
    """The numba DeviceNDArray reader against the interface (made-up device addresses)."""

    class Stream:  # what the interface reads of a bound stream: int(stream)
        def __int__(self):
            return 0x5000

    memory = _FakeMemory()
    plain = [memory.array(n, np.float32) for n in (1, 7, 1000)]
    compare_grad_checks("numba arrays", plain, [_param(a.shape) for a in plain])
    views = [memory.view(n, np.float64, start) for n, start in ((5, 1), (64, 16))]
    compare_grad_checks("numba views", views, [_param(a.shape, np.float64) for a in views])
    bound = memory.array(9, np.float32, stream=Stream())
    compare_grad_checks("a numba array bound to a stream", [bound], [_param((9,))])
    matrix = memory.array((3, 4), np.float32)
    compare_grad_checks("a 2-D numba array", matrix, [_param((3, 4))], single=True)
    strided = memory.array(6, np.float32, strides=(8,))
    compare_grad_checks("a strided numba array", [strided], [_param((6,))])
    compare_grad_checks("a numba array of the wrong dtype", plain[:2],
                        [_param((1,)), _param((7,), np.float64)])  # fmt: skip
    compare_grad_checks("a numba array of the wrong shape", [plain[2]], [_param((999,))])


def cpu_checks():
    print("# 1. CPU checks (made-up device addresses, no GPU)", flush=True)
    for check in (check_parameter_blocks, check_numba_fast_path):
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - reported
            fail(f"{check.__name__}: {exc!r}")


# -- 2. bitwise equivalence --------------------------------------------------------------
#: (optimizer, keywords using every state buffer); a schedule changes lr at every step
CASES = [
    ("Adam", dict(amsgrad=True, weight_decay=0.1)),
    ("RMSProp", dict(centered=True, momentum=0.9, weight_decay=0.1)),
    ("NAdam", dict(weight_decay=0.1)),
]


def _on_device(host, offset):
    """A device copy of ``host``, ``offset`` elements into its allocation."""
    if offset == 0:
        return cuda.to_device(host)
    return cuda.to_device(np.concatenate([np.zeros(offset, host.dtype), host]))[offset:]


def _in_thread(fn, *args):
    """``fn(*args)`` in a new thread (where no CUDA context is current yet)."""
    errors = []

    def run():
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - raised below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _run(name, cls, kw, params, grads, offsets, threaded=()):
    """Parameters, state and cached launches after ``opt.step`` with each of ``grads``
    (steps in ``threaded`` made in a new thread each)."""
    with variant(name):
        dev = [_on_device(h, offsets[0]) for h in params]
        opt = getattr(fa, cls)(dev, lr=lambda t: 1e-2 / t, **kw)
        for step, g in enumerate(grads):
            dg = [_on_device(x, offsets[step]) for x in g]
            if step in threaded:
                _in_thread(opt.step, dg)
            else:
                opt.step(dg)
        cuda.synchronize()
        state = {k: v for k, v in opt.state_dict().items() if isinstance(v, np.ndarray)}
        return [d.copy_to_host() for d in dev], state, built(opt)


def _same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_equivalence(case, dtype, layout, sizes, steps, rng):
    cls, kw = case
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    grads = [[rng.standard_normal(n).astype(dtype) for n in sizes] for _ in range(steps)]
    # aligned: the 16-byte kernels, then misaligned gradients switch to the scalar ones
    offsets = [0, 0, 1, 1] if layout == "aligned" else [1] * steps
    label = f"{cls:7s} {np.dtype(dtype).name} {layout:10s} {len(sizes):3d} arrays"
    ref_params, ref_state, _ = _run("dispatcher", cls, kw, params, grads, offsets)
    for name in ("before", "new"):
        got_params, got_state, launches = _run(name, cls, kw, params, grads, offsets)
        same = all(_same_bits(a, b) for a, b in zip(got_params, ref_params, strict=True))
        same &= got_state.keys() == ref_state.keys() and all(
            _same_bits(got_state[k], ref_state[k]) for k in ref_state
        )
        kinds = {type(c).__name__ for c in launches}
        if not fc.SIMULATOR and kinds != {EXPECTED[name].__name__}:
            fail(f"{label} {name}: built {sorted(kinds)} launches, not "
                 f"{EXPECTED[name].__name__} (driver: {cached_launch.LAST_DRIVER_ERROR}; "
                 f"last: {cached_launch.LAST_ERROR})")  # fmt: skip
        if not same:
            fail(f"{label} {name}: parameters or state differ from the dispatcher's")
        elif fc.SIMULATOR or kinds == {EXPECTED[name].__name__}:
            ok(f"{label} {name:6s} bitwise = dispatcher ({len(launches)} cached: "
               f"{', '.join(sorted(kinds))})")  # fmt: skip


def check_other_threads(sizes, steps=4):
    """Steps after the first made in new threads: the cached launches still launch (a new
    thread has no current CUDA context until numba makes one)."""
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [[rng.standard_normal(n).astype(np.float32) for n in sizes] for _ in range(steps)]
    offsets, threaded = [0] * steps, range(1, steps)
    ref, _, _ = _run("dispatcher", "Adam", {}, params, grads, offsets, threaded)
    for name in ("before", "new"):
        try:
            got, _, _ = _run(name, "Adam", {}, params, grads, offsets, threaded)
        except Exception as exc:  # noqa: BLE001 - reported
            report = fail if name == "new" else lambda m: print(f"info {m}", flush=True)
            report(f"steps in new threads, {name}: {exc!r}")
            continue
        if all(_same_bits(a, b) for a, b in zip(got, ref, strict=True)):
            ok(f"steps in new threads, {name}: bitwise = dispatcher")
        else:
            fail(f"steps in new threads, {name}: parameters differ from the dispatcher's")


def equivalence(lists, steps=4, dtypes=(np.float32, np.float64)):
    print("# 2. bitwise equivalence with numba's dispatcher", flush=True)
    rng = np.random.default_rng(0)
    for sizes in lists:
        for case in CASES:
            for dtype in dtypes:
                for layout in ("aligned", "misaligned"):
                    try:
                        check_equivalence(case, dtype, layout, sizes, steps, rng)
                    except Exception as exc:  # noqa: BLE001 - reported
                        fail(f"{case[0]} {np.dtype(dtype).name} {layout} {len(sizes)} "
                             f"arrays: {exc!r}")  # fmt: skip
    try:
        check_other_threads(lists[-1])
    except Exception as exc:  # noqa: BLE001 - reported
        fail(f"check_other_threads: {exc!r}")


# -- 3. gradient checks on each array kind -------------------------------------------------
def _import(name):
    try:
        return __import__(name)
    except Exception as exc:  # noqa: BLE001 - optional peers
        print(f"skipped {name}: {exc!r}", flush=True)
        return None


def kinds():
    """array kind -> ``zeros(n, dtype)`` on the GPU, for the importable libraries."""
    out = {"numba": lambda n, dtype=np.float32: cuda.to_device(np.zeros(n, dtype))}
    if (cp := _import("cupy")) is not None:
        out["cupy"] = lambda n, dtype=np.float32: cp.zeros(n, dtype)
    if (torch := _import("torch")) is not None and torch.cuda.is_available():
        tdtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
        out["torch"] = lambda n, dtype=np.float32: torch.zeros(
            n, dtype=tdtype[np.dtype(dtype)], device="cuda"
        )
    return out


def grad_checks(makers):
    print("# 3. gradient checks: fast paths against the interface", flush=True)
    sizes = model_sizes(200, 200_000)
    params = [_param((n,)) for n in sizes]
    for kind, zeros in makers.items():
        grads = [zeros(n) for n in sizes]
        compare_grad_checks(f"{kind}, 200 arrays", grads, params)
        compare_grad_checks(f"{kind}, one array", grads[0], params[:1], single=True)
        half = _param(((sizes[1] + 1) // 2,))
        compare_grad_checks(f"{kind}, strided", [grads[1][::2]], [half])
        compare_grad_checks(f"{kind}, empty", [zeros(0)], [_param((0,))])
        wrong = [zeros(sizes[0], np.float64)]
        compare_grad_checks(f"{kind}, wrong dtype", wrong, params[:1])
        if kind == "cupy":
            import cupy as cp

            with cp.cuda.Stream(non_blocking=True):  # the interface names the current stream
                compare_grad_checks("cupy under a stream", grads[:20], params[:20])
        if kind == "torch":
            import torch

            leaf = torch.zeros(sizes[0], device="cuda", requires_grad=True)
            compare_grad_checks("torch, requires_grad", [leaf], params[:1])
            compare_grad_checks("torch, a CPU tensor", [torch.zeros(sizes[0])], params[:1])
            parameter = torch.nn.Parameter(zeros(sizes[0]), requires_grad=False)
            compare_grad_checks("torch, a Parameter", [parameter], params[:1])
    numba_stream = cuda.stream()
    bound = [cuda.to_device(np.zeros(n, np.float32), stream=numba_stream) for n in sizes[:5]]
    compare_grad_checks("numba arrays on a stream", bound, params[:5])
    cuda.synchronize()


# -- 4. timing ---------------------------------------------------------------------------
def timed(fn, reps, sync, wait):
    """Best of three mean seconds per call of ``fn`` over ``reps`` calls, after ``sync``;
    the last call's GPU work inside the time where ``wait``."""
    best = math.inf
    for _ in range(3):
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        if wait:
            sync()
        best = min(best, (time.perf_counter() - t0) / reps)
    sync()
    return best


class _Recorder:
    """Records the arguments of one call of a cached launch."""

    def __init__(self, launch, calls):
        self.launch, self.calls = launch, calls

    def __call__(self, *args):
        self.calls.append((self.launch, args))
        self.launch(*args)


def launch_calls(opt, grads):
    """The cached launches of one step, with their arguments (recorded from a step)."""
    calls, saved = [], []
    for part in parts(opt):
        for kernel, launch in part.cached.items():
            if launch is not None:
                saved.append((part, kernel, launch))
                part.cached[kernel] = _Recorder(launch, calls)
    opt.step(grads)
    for part, kernel, launch in saved:
        part.cached[kernel] = launch
    return calls


def time_variant(name, params, grads, reps):
    """(step, issue, check, launch) in µs for ``fa.Adam`` in variant ``name``."""
    sync = cuda.synchronize
    single = not isinstance(grads, list)
    with variant(name):
        opt = fa.Adam(params, lr=1e-3)
        for _ in range(3):  # the first step launches through numba and builds
            opt.step(grads)
        step = timed(lambda: opt.step(grads), reps, sync, True)
        issue = timed(lambda: opt.step(grads), reps, sync, False)
        check = timed(lambda: backend.check_grads(grads, opt._params, single), reps,
                      lambda: None, False)  # fmt: skip
        calls = launch_calls(opt, grads)
        launch = math.nan
        if calls:
            one_step = timed(lambda: [f(*a) for f, a in calls], reps, sync, False)
            launch = one_step / len(calls)
        kinds = {type(c).__name__ for c in built(opt)}
    sync()
    if kinds != {EXPECTED[name].__name__}:
        fail(f"timing {name}: built {sorted(kinds)} (driver: "
             f"{cached_launch.LAST_DRIVER_ERROR}; last: {cached_launch.LAST_ERROR})")  # fmt: skip
    return [x * 1e6 for x in (step, issue, check, launch)], len(calls)


def torch_fused(sizes, reps):
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return math.nan
    tensors = [torch.zeros(n, device="cuda") for n in sizes]
    for t in tensors:
        t.grad = torch.zeros_like(t)
    opt = torch.optim.Adam(tensors, lr=1e-3, fused=True)
    return timed(opt.step, reps, torch.cuda.synchronize, True) * 1e6


def timing(makers):
    print("# 4. timing: fa.Adam float32, µs per step; step = synchronised, issue = host "
          "only, check = check_grads, launch = one cached launch", flush=True)  # fmt: skip
    cases = [("200 arrays", model_sizes(), 20), ("1,024", [1024], 300)]
    rows = {}
    for label, sizes, reps in cases:
        ref = torch_fused(sizes, reps)
        print(f"torch fused Adam, {label}: {ref:.1f} µs per step", flush=True)
        for kind, zeros in makers.items():
            params = [zeros(n) for n in sizes]
            grads = [zeros(n) for n in sizes]
            if len(sizes) == 1:
                params, grads = params[0], grads[0]
            for name in VARIANTS:
                try:
                    (step, issue, check, launch), n = time_variant(name, params, grads, reps)
                except Exception as exc:  # noqa: BLE001 - reported
                    fail(f"timing {kind} {label} {name}: {exc!r}")
                    continue
                rows[kind, label, name] = step
                ratio = "" if math.isnan(ref) else f"{ref / step:5.2f}× torch fused"
                print(f"{kind:5s} {label:10s} {name:10s} step {step:8.1f}  issue {issue:8.1f}  "
                      f"check {check:7.1f}  launch {launch:6.2f} ×{n:<3d} {ratio}",
                      flush=True)  # fmt: skip
            del params, grads
    print("# summary: new against before (µs per step, synchronised)")
    for (kind, label, name), step in rows.items():
        if name == "new" and (kind, label, "before") in rows:
            before = rows[kind, label, "before"]
            print(f"{kind:5s} {label:10s} before {before:8.1f}  new {step:8.1f}  "
                  f"{before / step:5.2f}× faster")  # fmt: skip


def versions():
    import numba

    out = [f"numpy {np.__version__}", f"numba {numba.__version__}"]
    for dist in ("numba-cuda", "cuda-core", "cuda-bindings", "cupy-cuda13x", "cupy-cuda12x",
                 "torch"):  # fmt: skip
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            out.append(f"{dist} {version(dist)}")
    return ", ".join(out)


def main():
    ap = argparse.ArgumentParser(description="host cost of fastadam's GPU step")
    ap.add_argument("--sim", action="store_true", help="tiny pass on the CUDA simulator")
    ap.add_argument("--cpu", action="store_true", help="the checks that need no GPU only")
    ap.add_argument("--no-timing", action="store_true", help="checks only")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(f"# fastadam gpu_host, {versions()}", flush=True)
    if args.sim:  # small blocks so that the simulator runs several, few and tiny arrays
        fc.THREADS_PER_BLOCK, fc.MAX_BLOCKS = 8, 2
        equivalence([[3, 17], [5, 1, 9, 2, 30, 4, 7, 3, 2, 8, 6, 1, 2, 3]])
    elif args.cpu:
        cpu_checks()
    else:
        dev = cuda.get_current_device().name
        print(f"# device: {dev.decode() if isinstance(dev, bytes) else dev}", flush=True)
        cpu_checks()
        rng = np.random.default_rng(1)
        equivalence([[int(n) for n in rng.integers(1, 5000, 30)], model_sizes(200, 400_000)])
        makers = kinds()
        grad_checks(makers)
        if not args.no_timing:
            timing(makers)
    for message in FAILURES:  # again at the end, where a log's tail shows them
        print(f"FAIL {message[:300]}")
    print(f"# {len(FAILURES)} failure(s), {time.perf_counter() - t0:.0f} s", flush=True)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
