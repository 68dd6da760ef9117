"""Measurement helpers shared by the asv suite, ``benchmarks/*.py``, the docs figures and the
tests. Benchmark code: not part of the fastadam package (the wheel does not ship it).

Importable as ``asv_benchmarks._common`` from the repository root (scripts elsewhere put the
root on ``sys.path``); asv imports it as a module of the benchmark package and finds no
benchmark in it. It holds:

- :func:`coefficients` and :func:`bind_kernel`, the only places where the benchmarks build
  the coefficients that fastadam's kernels take and call a kernel, for both APIs that
  fastadam has had (so that the suite can compare commits on either side of the change,
  and a further change of the API is one edit here);
- the *memory skeletons*: compiled kernels with exactly the reads and writes of an update
  (Adam, AdamW: read p, g, m, v and write p, m, v; RMSProp without momentum or centering:
  read p, g, v and write p, v) and trivial arithmetic, serial and parallel. A kernel's
  achieved bandwidth divided by its skeleton's says how close it is to the memory bound;
- the same updates hand-written as plain numba loops (what a numba user would write,
  PyTorch's formulas), and in plain numpy with preallocated scratch (the best a numpy user
  can write), as baselines (``tests/test_bench_helpers.py`` checks both against fastadam);
- :func:`bytes_per_step`, :func:`best_time`, :func:`kernel_case` (seeded arrays and a
  zero-argument callable for one (kernel, dtype, size, mode) case) and
  :func:`step_case` (an optimizer's ``step`` and the same step by a plain Python
  optimizer around the plain loops, :class:`PlainOptimizer`);
- :func:`interleaved_ratio`, which times two callables alternately in one process, and
  :func:`pin_threads`: what the suite's ``track_*`` ratio benchmarks are made of.
"""

import math
import os
import statistics
import time
import types

import numba
import numpy as np
from numba import njit, prange

# fastadam is imported in the functions that use it, never at import: asv forks every
# benchmark from a process that imported the suite, and a fastadam that starts numba's
# threads when imported (GNU OpenMP) would make every parallel kernel abort after the fork.

__all__ = [
    "KERNELS",
    "ARRAYS_READ_WRITTEN",
    "THREADS",
    "coefficients",
    "kernel_call",
    "bind_kernel",
    "compiled_driver",
    "records",
    "adam_skeleton",
    "adam_skeleton_parallel",
    "rmsprop_skeleton",
    "rmsprop_skeleton_parallel",
    "adam_loop",
    "adam_loop_parallel",
    "rmsprop_loop",
    "rmsprop_loop_parallel",
    "numpy_adam_step",
    "numpy_rmsprop_step",
    "bytes_per_step",
    "best_time",
    "kernel_case",
    "step_case",
    "PlainOptimizer",
    "pin_threads",
    "interleaved_ratio",
    "RATIO_SECONDS",
]

_OPTIONS = dict(cache=True, error_model="numpy", nogil=True)

#: The update kernels the helpers know, and the skeleton whose traffic each one has.
KERNELS = ("adam", "adamw", "rmsprop")

#: What :func:`kernel_case` can time for each kernel.
IMPLS = ("fastadam", "skeleton", "loop", "numpy")

#: (arrays read, arrays written) per element, for each kernel and skeleton.
ARRAYS_READ_WRITTEN = {"adam": (4, 3), "adamw": (4, 3), "rmsprop": (3, 2)}

#: numba threads of every benchmark that runs a parallel kernel (fewer on a smaller machine).
THREADS = 2

#: Hyperparameters of every benchmark case: PyTorch's convention and defaults, AdamW with
#: PyTorch's default decay, and the same lr as the optimizers that :func:`step_case` builds.
ADAM_LR = 1e-3
RMSPROP_LR = 1e-2
ADAMW_WEIGHT_DECAY = 1e-2


def records():
    """True when this fastadam's kernels take named records, ``kernel(p, g, state, coef)``
    with ``coef = fastadam.kernels.adam_coefficients(t, lr=..., ...)`` (the redesign of
    2026-11); False for the positional API before it, ``kernel(p, g, m, v, vmax, coef)``
    with the tuple of ``fastadam.rules.adam_coefficients(t, lr, beta1, ...)``."""
    from fastadam import kernels

    return hasattr(kernels, "AdamState")


def coefficients(kind, t, lr, *, weight_decay=0.0, momentum=0.0, centered=False):
    """The coefficients of one kernel call at step ``t``, in PyTorch's convention.

    With :func:`bind_kernel`, the only place where the benchmarks use fastadam's kernel API.

    Parameters
    ----------
    kind : {'adam', 'adamw', 'rmsprop'}
        Adam with coupled (L2) weight decay, Adam with decoupled weight decay, or RMSProp.
    t : int
        Step number (1 on the first update).
    lr : float
        Learning rate.
    weight_decay : float
        Weight decay (decoupled for ``'adamw'``, coupled otherwise).
    momentum : float
        RMSProp only: momentum (0: no momentum buffer).
    centered : bool
        RMSProp only: centered variant (a mean-gradient buffer).
    """
    if kind not in KERNELS:
        raise ValueError(f"kind must be one of {KERNELS}, got {kind!r}")
    from fastadam import kernels

    if records():
        if kind == "rmsprop":
            return kernels.rmsprop_coefficients(
                t, lr=lr, weight_decay=weight_decay, momentum=momentum, centered=centered
            )
        return kernels.adam_coefficients(
            t, lr=lr, weight_decay=weight_decay, decoupled_weight_decay=kind == "adamw"
        )
    from fastadam import rules  # the positional API (removed by the redesign)

    if kind == "rmsprop":
        return rules.rmsprop_coefficients(
            t, lr, 0.99, 1e-8, momentum, weight_decay, False, False, False, False,
            False, centered, False,
        )  # fmt: skip
    return rules.adam_coefficients(
        t, lr, 0.9, 0.999, 1e-8, 0.0, weight_decay, kind == "adamw",
        False, True, False, False, False,
    )  # fmt: skip


def kernel_call(kind, parallel, p, g, state, coef):
    """fastadam's kernel for one step in place, and its arguments: ``func(*args)`` steps.

    Parameters
    ----------
    kind : {'adam', 'adamw', 'rmsprop'}
        As for :func:`coefficients` (AdamW is the Adam kernel).
    parallel : bool
        The parallel kernel (over numba's threads) or the serial one.
    p, g : ndarray
        Parameters and gradient.
    state : tuple of ndarray
        Adam: ``(m, v)``; RMSProp: ``(v,)``, or ``(v, gbar, buf)`` when centered with
        momentum. The buffers that the coefficients do not use are not accessed.
    coef
        From :func:`coefficients`.

    Returns
    -------
    func : callable
        The kernel; callable from Python and from ``@njit`` code, under both APIs.
    args : tuple
    """
    from fastadam import kernels

    name = "rmsprop" if kind == "rmsprop" else "adam"
    func = getattr(kernels, f"{name}_parallel" if parallel else name)
    if records():
        record = kernels.RMSPropState if name == "rmsprop" else kernels.AdamState
        empty = np.empty(0, dtype=p.dtype)
        return func, (p, g, record(*state, *[empty] * (3 - len(state))), coef)
    # unused buffers alias a used one
    return func, (p, g, *state, *[state[-1]] * (3 - len(state)), coef)


def bind_kernel(kind, parallel, p, g, state, coef):
    """A zero-argument callable: one step of fastadam's kernel called from Python, in place
    (arguments as for :func:`kernel_call`)."""
    func, args = kernel_call(kind, parallel, p, g, state, coef)

    def step():
        func(*args)

    return step


def compiled_driver(func, n_args):
    """``drive(reps, *args)``, an ``@njit`` function that calls ``func(*args)`` ``reps``
    times: the per-call cost of Python (argument checks, numba's dispatch) left out.

    Not cached on disk: numba's cache does not notice changes in the functions a cached
    function calls, so a driver cached against one fastadam would run its code under the
    next one.
    """
    names = ", ".join(f"a{i}" for i in range(n_args))
    namespace = {"func": func}
    exec(  # noqa: S102 - a fixed arity that numba can compile
        f"def drive(reps, {names}):\n    for _ in range(reps):\n        func({names})\n",
        namespace,
    )
    return njit(error_model="numpy", nogil=True)(namespace["drive"])


# -- memory skeletons ------------------------------------------------------------------------
def _adam_traffic(p, g, m, v, a):
    """Read p, g, m, v and write p, m, v -- Adam's traffic -- with trivial arithmetic that
    keeps ``v`` non-negative (so that a kernel can run on the same arrays after it)."""
    n = p.size
    p = p.reshape(n)
    g = g.reshape(n)
    m = m.reshape(n)
    v = v.reshape(n)
    for i in prange(n):
        gi = g[i]
        mi = a * m[i] + gi
        vi = a * v[i] + gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - a * (mi + vi)


def _rmsprop_traffic(p, g, v, a):
    """Read p, g, v and write p, v -- plain RMSProp's traffic -- with trivial arithmetic
    that keeps ``v`` non-negative."""
    n = p.size
    p = p.reshape(n)
    g = g.reshape(n)
    v = v.reshape(n)
    for i in prange(n):
        gi = g[i]
        vi = a * v[i] + gi * gi
        v[i] = vi
        p[i] = p[i] - a * vi


def _jit(func, parallel, name):
    """Compile a renamed copy of ``func`` (its own on-disk cache entry)."""
    func = types.FunctionType(func.__code__, func.__globals__, name)
    func.__qualname__ = name
    return njit(parallel=parallel, **_OPTIONS)(func)


adam_skeleton = _jit(_adam_traffic, False, "adam_skeleton")
adam_skeleton_parallel = _jit(_adam_traffic, True, "adam_skeleton_parallel")
rmsprop_skeleton = _jit(_rmsprop_traffic, False, "rmsprop_skeleton")
rmsprop_skeleton_parallel = _jit(_rmsprop_traffic, True, "rmsprop_skeleton_parallel")


# -- hand-written numba loops -----------------------------------------------------------------
# The same updates written as the plain loops a numba user would write, in the general form
# that fastadam's rules use (a sign, a decay factor, a bias correction and an epsilon inside
# and outside the square root, all runtime values), so that each loop executes the same
# arithmetic as fastadam's kernel: a reference with a lighter instruction mix would slow
# down less than the kernel when another program shares the core's arithmetic units, and
# their time ratio would move with the neighbour's load.


def _adam_loop(p, g, m, v, t, lr, beta1, beta2, eps, decay):
    """PyTorch's Adam (AdamW when ``decay`` < 1: p *= decay first), written as a plain
    loop in the arrays' dtype."""
    f = p.dtype.type
    n = p.size
    p = p.reshape(n)
    g = g.reshape(n)
    m = m.reshape(n)
    v = v.reshape(n)
    step = f(lr / (1.0 - beta1**t))
    c2 = f(1.0 / (1.0 - beta2**t))
    b1 = f(beta1)
    b2 = f(beta2)
    ob1 = f(1.0 - beta1)
    ob2 = f(1.0 - beta2)
    e = f(eps)
    e_root = f(0.0)
    d = f(decay)
    sign = f(1.0)
    for i in prange(n):
        gi = sign * g[i]
        mi = b1 * m[i] + ob1 * gi
        vi = b2 * v[i] + ob2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] = d * p[i] - step * mi / (math.sqrt(c2 * vi + e_root) + e)


def _rmsprop_loop(p, g, v, lr, alpha, eps):
    """PyTorch's RMSProp without momentum or centering, written as a plain loop."""
    f = p.dtype.type
    n = p.size
    p = p.reshape(n)
    g = g.reshape(n)
    v = v.reshape(n)
    a = f(alpha)
    oa = f(1.0 - alpha)
    c = f(1.0)  # bias correction (optax's), 1 in PyTorch's RMSProp
    eps_in = f(0.0)
    eps_out = f(eps)
    lr_in = f(1.0)
    lr_out = f(lr)
    d = f(1.0)
    sign = f(1.0)
    for i in prange(n):
        gi = sign * g[i]
        vi = a * v[i] + oa * (gi * gi)
        v[i] = vi
        p[i] = d * p[i] - lr_out * (lr_in * (gi / (math.sqrt(c * vi + eps_in) + eps_out)))


adam_loop = _jit(_adam_loop, False, "adam_loop")
adam_loop_parallel = _jit(_adam_loop, True, "adam_loop_parallel")
rmsprop_loop = _jit(_rmsprop_loop, False, "rmsprop_loop")
rmsprop_loop_parallel = _jit(_rmsprop_loop, True, "rmsprop_loop_parallel")


# -- plain numpy baselines -------------------------------------------------------------------
def numpy_adam_step(p, g, m, v, tmp, t, lr=ADAM_LR, beta1=0.9, beta2=0.999, eps=1e-8):
    """PyTorch-convention Adam in plain numpy, in place, with one preallocated scratch array.

    ``tmp`` has the shape and dtype of ``p``. No temporaries are allocated.
    """
    bc1 = 1.0 - beta1**t
    bc2 = 1.0 - beta2**t
    m *= beta1
    np.multiply(g, 1.0 - beta1, out=tmp)
    m += tmp
    v *= beta2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp
    np.sqrt(v, out=tmp)
    tmp *= 1.0 / math.sqrt(bc2)
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= lr / bc1
    p -= tmp


def numpy_rmsprop_step(p, g, v, tmp, lr=RMSPROP_LR, decay=0.99, eps=1e-8):
    """PyTorch-convention RMSProp (no momentum) in plain numpy, in place, one scratch array."""
    v *= decay
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - decay
    v += tmp
    np.sqrt(v, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    p -= tmp


# -- timing ----------------------------------------------------------------------------------
def bytes_per_step(kernel, n, dtype):
    """Bytes an update of ``n`` elements must move: arrays read plus arrays written."""
    reads, writes = ARRAYS_READ_WRITTEN[kernel]
    return (reads + writes) * n * np.dtype(dtype).itemsize


def _calibrate(func, min_time, max_number):
    """Calls per batch so that a batch of ``func()`` lasts at least ``min_time``."""
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            func()
        dt = time.perf_counter() - t0
        if dt >= min_time or number >= max_number:
            return number, dt
        number = min(max_number, max(number * 2, int(number * min_time / max(dt, 1e-9))))


def _batch(func, number, timer=time.perf_counter):
    t0 = timer()
    for _ in range(number):
        func()
    return (timer() - t0) / number


def best_time(func, min_time=0.02, repeat=3, max_number=10_000):
    """Best seconds per call of ``func()`` over ``repeat`` batches of at least ``min_time``."""
    func()
    number, dt = _calibrate(func, min_time, max_number)
    best = dt / number
    for _ in range(repeat - 1):
        best = min(best, _batch(func, number))
    return best


#: Seconds that :func:`interleaved_ratio` measures by default: ``FASTADAM_BENCH_RATIO_SECONDS``
#: from the environment (CI's quick pass sets 0.3), else 2.
RATIO_SECONDS = float(os.environ.get("FASTADAM_BENCH_RATIO_SECONDS", "2.0"))


def interleaved_ratio(
    func, reference, seconds=None, batch_time=2e-3, min_rounds=8, max_number=100_000,
    timer=time.process_time, samples=None,
):  # fmt: skip
    """Seconds per call of ``func()`` over seconds per call of ``reference()``, timed
    alternately in this process: the lower quartile of the per-round ratios.

    Each round times one batch of ``func`` and one of ``reference`` back to back (each batch
    at least ``batch_time`` seconds; the order alternates from round to round), so both see
    the same machine: another process taking a core, a slower clock or a busier memory bus
    slow both, and their ratio stays put. Some interference slows one side more than the
    other, for a second or two at a time: on the 2-core virtual machine of
    docs/benchmarks.md, about a third of the time, fastadam's float32 kernels by 10-25 % more
    than the same arithmetic in a plain loop. Over 2 seconds of rounds the lower quartile
    is the ratio of the undisturbed rounds: from one measurement to the next it moved by
    2-5 % there, the median by 3-8 % and, over 0.1 seconds, the median by up to 30 %.

    Parameters
    ----------
    func, reference : callable
        Zero-argument callables, already compiled (called once before).
    seconds : float, optional
        Rounds start until this many seconds have passed (and ``min_rounds`` are done);
        default :data:`RATIO_SECONDS`.
    batch_time : float
        Minimum seconds of each batch.
    min_rounds : int
        Fewest rounds.
    max_number : int
        Most calls per batch.
    timer : callable
        The clock. The default, :func:`time.process_time`, counts the CPU time of this
        process only: time spent waiting while another process has the core does not count
        (right for single-threaded work; with several threads busy-waiting would count).
    samples : list, optional
        If given, the per-round ratios are appended to it (for noise reports).
    """
    seconds = RATIO_SECONDS if seconds is None else seconds
    func()
    reference()
    n_func, _ = _calibrate(func, batch_time, max_number)
    n_ref, _ = _calibrate(reference, batch_time, max_number)
    ratios = []
    start = time.perf_counter()
    while len(ratios) < min_rounds or time.perf_counter() - start < seconds:
        if len(ratios) % 2:
            t_ref = _batch(reference, n_ref, timer)
            t_func = _batch(func, n_func, timer)
        else:
            t_func = _batch(func, n_func, timer)
            t_ref = _batch(reference, n_ref, timer)
        ratios.append(t_func / t_ref)
    if samples is not None:
        samples.extend(ratios)
    return statistics.quantiles(ratios, n=4)[0]


def pin_threads(threads=THREADS):
    """Set numba's thread count to ``threads`` (at most what numba started with); return it.

    Call it in a benchmark's ``setup``, not at import: asv forks every benchmark from a
    process that imported the suite, and numba's threads must start after the fork.
    """
    threads = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    return threads


# -- cases -----------------------------------------------------------------------------------
def aligned_empty(n, dtype, offset=0):
    """An uninitialised 1-D array that starts ``offset`` bytes after a 4096-byte boundary.

    numpy aligns small arrays to 16 bytes only, wherever the heap has room, so the same
    benchmark can run on differently aligned arrays in two processes, which changes the
    speed of vectorized loops by up to tens of percent (AVX-512 loads split across cache
    lines). The benchmarks place every array at a fixed offset instead: multiples of 64
    bytes (whole cache lines), a different one per array (so that no two arrays share their
    offset within a page, which makes loads and stores falsely alias).
    """
    dtype = np.dtype(dtype)
    buf = np.empty(n * dtype.itemsize + 4096 + offset, dtype=np.uint8)
    start = (-buf.ctypes.data) % 4096 + offset
    return buf[start : start + n * dtype.itemsize].view(dtype)


def _data(kernel, dtype, n, seed):
    """Seeded p, g, (m,) v, each at its own fixed offset (:func:`aligned_empty`)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    names = ("p", "g", "v") if kernel == "rmsprop" else ("p", "g", "m", "v")
    arrays = {name: aligned_empty(n, dtype, 320 * k) for k, name in enumerate(names)}
    arrays["p"][:] = rng.random(n, dtype=dtype)
    arrays["g"][:] = rng.random(n, dtype=dtype) - dtype.type(0.5)
    if "m" in arrays:
        arrays["m"][:] = rng.random(n, dtype=dtype)
    arrays["v"][:] = 0.5
    return tuple(arrays.values())


def kernel_case(kernel, dtype, n, mode, impl="fastadam", seed=0, calls="python", arrays=None):
    """Seeded arrays and a zero-argument callable that applies one update in place.

    Parameters
    ----------
    kernel : {'adam', 'adamw', 'rmsprop'}
        Which update (PyTorch's convention; AdamW with weight decay 1e-2, RMSProp without
        momentum or centering).
    dtype : str or dtype
        float32 or float64.
    n : int
        Number of elements.
    mode : {'serial', 'parallel'}
        Serial or parallel kernel (ignored by ``impl='numpy'``).
    impl : {'fastadam', 'skeleton', 'loop', 'numpy'}
        The update kernel, its memory skeleton, the same update as a hand-written numba
        loop, or the plain-numpy baseline (AdamW's numpy baseline is Adam's: the decay adds
        no traffic).
    seed : int
        Seed of the data.
    calls : {'python', 'njit'}
        ``'python'``: ``step()`` makes one call from Python. ``'njit'``: ``step()`` calls
        a compiled driver (:func:`compiled_driver`) that makes ``max(1, 100_000 // n)``
        calls from compiled code, so that Python's per-call cost, which differs between
        the implementations, does not count (not for ``impl='numpy'``).
    arrays : tuple of ndarray, optional
        The arrays of another case of the same kernel, dtype and size to update instead of
        new ones. Two cases timed against each other on the same arrays see the same memory
        (pages, huge pages or not, cache sets), which otherwise differs from one process to
        the next by enough to move a ratio by 20 % once the arrays leave the core's caches.

    Returns
    -------
    step : callable
        ``step()`` applies one update (or the driver's calls); it is already compiled
        (called once).
    arrays : tuple of ndarray
        The arrays it updates (keep them alive).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if mode not in ("serial", "parallel"):
        raise ValueError(f"mode must be 'serial' or 'parallel', got {mode!r}")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if calls not in ("python", "njit") or (calls == "njit" and impl == "numpy"):
        raise ValueError(f"calls must be 'python' or 'njit' (not for numpy), got {calls!r}")
    dtype = np.dtype(dtype)
    if arrays is None:
        arrays = _data(kernel, dtype, n, seed)
    elif len(arrays) != (3 if kernel == "rmsprop" else 4) or arrays[0].size != n:
        raise ValueError("arrays: not those of a case of this kernel and size")
    parallel = mode == "parallel"
    a = dtype.type(0.5)
    if kernel == "rmsprop":
        p, g, v = arrays
        if impl == "fastadam":
            coef = coefficients("rmsprop", 1, RMSPROP_LR)
            func, args = kernel_call("rmsprop", parallel, p, g, (v,), coef)
        elif impl == "skeleton":
            func = rmsprop_skeleton_parallel if parallel else rmsprop_skeleton
            args = (p, g, v, a)
        elif impl == "loop":
            func = rmsprop_loop_parallel if parallel else rmsprop_loop
            args = (p, g, v, RMSPROP_LR, 0.99, 1e-8)
        else:
            func = numpy_rmsprop_step
            args = (p, g, v, np.empty_like(p))
    else:
        p, g, m, v = arrays
        if impl == "fastadam":
            wd = ADAMW_WEIGHT_DECAY if kernel == "adamw" else 0.0
            coef = coefficients(kernel, 10, ADAM_LR, weight_decay=wd)
            func, args = kernel_call(kernel, parallel, p, g, (m, v), coef)
        elif impl == "skeleton":
            func = adam_skeleton_parallel if parallel else adam_skeleton
            args = (p, g, m, v, a)
        elif impl == "loop":
            func = adam_loop_parallel if parallel else adam_loop
            decay = 1.0 - ADAM_LR * ADAMW_WEIGHT_DECAY if kernel == "adamw" else 1.0
            args = (p, g, m, v, 10, ADAM_LR, 0.9, 0.999, 1e-8, decay)
        else:
            func = numpy_adam_step
            args = (p, g, m, v, np.empty_like(p), 10)
    if calls == "njit":
        drive = compiled_driver(func, len(args))
        reps = max(1, 100_000 // n)

        def step():
            drive(reps, *args)

    else:

        def step():
            func(*args)

    step()
    return step, arrays


#: The optimizers :func:`step_case` knows: (kernel kind, keywords of the optimizer).
OPTIMIZERS = {
    "Adam": ("adam", {}),
    "AdamW": ("adamw", {"weight_decay": ADAMW_WEIGHT_DECAY}),
    "RMSProp": ("rmsprop", {}),
    "RMSProp-centered-momentum": ("rmsprop", {"momentum": 0.9, "centered": True}),
}


class PlainOptimizer:
    """The optimizer a user would write in plain Python around the plain loops (one array
    or a list; checks of the gradients' shapes and dtypes; the step counter and the
    hyperparameters in Python; one loop call per array): the reference of
    :func:`step_case`. PyTorch's Adam, AdamW and RMSProp; RMSProp with momentum or centering
    steps as plain RMSProp (same calls, fewer arrays)."""

    def __init__(self, kind, params, lr, weight_decay=0.0, **_):
        self.single = not isinstance(params, list)
        self.params = [params] if self.single else list(params)
        self.kind, self.lr, self.t = kind, lr, 0
        self.decay = 1.0 - lr * weight_decay if kind == "adamw" else 1.0
        n_state = 1 if kind == "rmsprop" else 2
        self.state = [[np.zeros_like(p) for _ in range(n_state)] for p in self.params]

    def step(self, grads):
        grads = [grads] if self.single else grads
        if len(grads) != len(self.params):
            raise ValueError("one gradient per parameter array")
        for p, g in zip(self.params, grads, strict=True):
            if g.shape != p.shape or g.dtype != p.dtype:
                raise ValueError("a gradient's shape or dtype differs from its parameters'")
        self.t += 1
        for p, g, state in zip(self.params, grads, self.state, strict=True):
            if self.kind == "rmsprop":
                rmsprop_loop(p, g, state[0], self.lr, 0.99, 1e-8)
            else:
                adam_loop(p, g, state[0], state[1], self.t, self.lr, 0.9, 0.999, 1e-8, self.decay)


def step_case(optimizer, dtype, n, n_arrays=1, seed=0):
    """An optimizer's ``step`` and the same step by :class:`PlainOptimizer`.

    ``opt_step()`` calls ``opt.step(grads)`` on ``n_arrays`` arrays of ``n`` elements;
    ``plain_step()`` makes the same step with :class:`PlainOptimizer` (serial plain loops):
    the same kind of work -- Python, then compiled loops -- so that their time ratio, the
    optimizer's per-step cost in units of a plain Python optimizer's, moves little with the
    machine's load. Both are already compiled (called once).

    Returns
    -------
    opt_step, plain_step : callable
    keep : tuple
        What they update (keep it alive).
    """
    import fastadam as fa

    kind, options = OPTIMIZERS[optimizer]
    make = {"adam": fa.Adam, "adamw": fa.AdamW, "rmsprop": fa.RMSProp}[kind]
    lr = RMSPROP_LR if kind == "rmsprop" else ADAM_LR
    rng = np.random.default_rng(seed)
    ps = [rng.standard_normal(n).astype(dtype) for _ in range(n_arrays)]
    gs = [rng.standard_normal(n).astype(dtype) for _ in range(n_arrays)]
    qs = [p.copy() for p in ps]
    single = n_arrays == 1
    opt = make(ps[0] if single else ps, lr=lr, **options)
    plain = PlainOptimizer(kind, qs[0] if single else qs, lr, **options)
    grads = gs[0] if single else gs

    def opt_step():
        opt.step(grads)

    def plain_step():
        plain.step(grads)

    opt_step()
    plain_step()
    return opt_step, plain_step, (opt, plain, ps, gs, qs)
