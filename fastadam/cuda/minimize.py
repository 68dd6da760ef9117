"""The batched engine on the GPU: one thread per problem runs the CPU engine's iteration.

:func:`fastadam.minimize_batch` takes this path when ``x0`` is a CUDA array (or
``options['device'] == 'cuda'``). ``fun`` and ``jac`` are functions of *one* problem that
numba-cuda compiles for the device (``@cuda.jit(device=True)`` functions, or plain Python
functions that this module compiles so): ``fun(x, *args_i) -> f`` and ``jac(x, g, *args_i)``
writing the gradient into ``g``, or with ``jac=True`` ``fun(x, g, *args_i) -> f`` doing both.
Device code cannot allocate arrays, hence the output argument.

The stop tests (:func:`fastadam.optimize.engine.check`) and the update
(:func:`fastadam.optimize.engine.update`, the algorithm's loop over
:func:`fastadam.cpu.loops.given` and its rule) are the CPU engine's own Python functions,
compiled here with ``cuda.jit(device=True)`` and the names they look up bound to their
device versions (:func:`device`). So the GPU runs the same iteration and stop tests, in the
same order, as every CPU path; results agree to rounding (the GPU may fuse multiply-adds).

The run stays on the device between launches of up to ``nsteps`` iterations each, so that
``maxtime`` and Ctrl-C work; only the statuses come back between launches.
"""

import functools
import time
import types as pytypes

import numpy as np
from numba import cuda

from .. import algorithms
from ..cpu import loops
from ..optimize import engine, options
from ..optimize.status import INTERRUPTED, MAXTIME, NONFINITE_FUN, NONFINITE_JAC, RUNNING
from ..optimizers import is_cuda_array
from . import DEVICE, SIMULATOR, quiet_launches

__all__ = ["compile_objective", "device", "device_args", "host_copy", "kernel", "run"]

#: Threads per block of the minimize kernel (one thread per problem; small blocks spread a
#: few thousand problems over all the multiprocessors).
THREADS_PER_BLOCK = 64
#: Registers per thread the kernel may use (``None``: as many as the compiler wants, 134 in
#: float32 and 156 in float64 for a Gaussian-peak model on sm_90; fewer let more threads
#: run at once, at the cost of spills to local memory). Tried by
#: ``benchmarks/bench_batch_gpu.py --variants``.
MAX_REGISTERS = None


def device(func, name=None, **globals_):
    """``func`` compiled as a device function, with ``globals_`` the names its body looks up
    (as :func:`fastadam.cpu.compile.jit` does for the CPU; ``prange`` is ``range`` here)."""
    simulated = {"item": _item_python} if SIMULATOR else {}  # (item is an intrinsic)
    namespace = dict(func.__globals__, prange=range, **simulated, **globals_)
    copy = pytypes.FunctionType(
        func.__code__, namespace, name or func.__name__, func.__defaults__, func.__closure__
    )
    copy.__qualname__ = name or func.__qualname__
    return cuda.jit(device=True)(copy)


def _item_python(seq, k):
    """:func:`fastadam.cpu.loops.item` for the simulator, which runs device code as
    Python."""
    return None if seq is None else seq[k]


def _scan(g):
    """``(finite, max |g_j|)``, as :func:`fastadam.optimize.engine.scan` gives them (the max
    is exact in any order; the CPU's integer trick is for its vector units)."""
    m = 0.0
    finite = True
    for j in range(g.size):
        a = abs(g[j])
        if a - a != 0:  # NaN for NaN and +-Inf
            finite = False
        elif a > m:
            m = a
    if not finite:
        return False, np.inf
    return True, m


@functools.cache
def _stop_tests():
    """:func:`fastadam.optimize.engine.check` for the device."""
    copy = device(engine.copy, name="copy_device")
    projected = device(engine._projected_norm, name="projected_norm_device")
    window = device(engine._window_tests, name="window_tests_device")
    check = device(engine.check, name="check_device", scan_=device(_scan),
                   projected_norm=projected, window_tests=window)  # fmt: skip
    return check, copy


def _picker(kinds, name):
    """A device function ``pick(values, i, unused)``: ``values[k][i]`` where ``kinds[k]``
    is 1 (one value per problem), ``values[k][0]`` where it is 2 (an array shared by all),
    else ``values[k]`` (a scalar), as :func:`fastadam.optimize.engine.pick` selects them."""
    parts = [
        f"values[{k}][i]" if kind == 1 else f"values[{k}][0]" if kind == 2 else f"values[{k}]"
        for k, kind in enumerate(kinds)
    ]
    body = ", ".join(parts) + ("," if len(parts) == 1 else "")
    namespace = {}
    exec(f"def {name}(values, i, unused):\n    return ({body})\n", namespace)  # noqa: S102
    return cuda.jit(device=True)(namespace[name])


@functools.cache
def _update(name, batched):
    """The algorithm's :func:`fastadam.optimize.engine.update` for the device, with
    ``batched`` the hyperparameters given per problem."""
    spec = algorithms.get(name)
    rule = DEVICE[name][0]
    loop = device(loops.given, name=f"{name}_loop_device", rule=rule,
                  cast=cuda.jit(device=True)(spec.cast))  # fmt: skip
    pass_ = device(engine.update_project_small, name=f"{name}_pass_device", loop_=loop)
    pick = _picker(batched, f"pick_hyper_{name}")
    carry = spec.Coefficients._fields.index(next(iter(spec.carry))) if spec.carry else 0
    return device(engine.update, name=f"update_{name}_device",
                  coefficients=cuda.jit(device=True)(spec.coefficients),
                  pick=pick, pass_=pass_, free_row_=device(engine.free_row),
                  CARRY=carry, batched_=batched)  # fmt: skip


def _evaluate_separate(x, g, a):
    """``f`` at ``x``, the gradient written into ``g``: ``fun`` then ``jac``."""
    f = fun_(x, *a)  # noqa: F821 - bound by device()
    jac_(x, g, *a)  # noqa: F821
    return np.float64(f)


def _evaluate_combined(x, g, a):
    """``f`` at ``x``, the gradient written into ``g`` by ``fun`` itself (``jac=True``)."""
    return np.float64(fun_(x, g, *a))  # noqa: F821 - bound by device()


def _run_problem(ws, gnew_all, i, p, a, hyper, carry, ctl, nsteps, start):
    """:func:`fastadam.optimize.compiled.run_problem` on the device: up to ``nsteps``
    iterations (update, evaluate, check) of problem ``i``, after evaluating and checking
    the iterate itself with ``start``. ``ws.glast[i]`` holds the gradient at the last
    accepted iterate, ``gnew_all[i]`` the one being checked."""
    glast = ws.glast[i]
    gnew = gnew_all[i]
    if start:
        f = evaluate_(ws.xs[p.x_row, i], glast, a)  # noqa: F821 - bound by device()
        p.nfev += 1
        p.njev += 1
        code = check_(ws, i, glast, f, p, ctl)  # noqa: F821
        if code != RUNNING:
            return code
    code = RUNNING
    evaluations = 0
    for _ in range(nsteps):
        update_(ws, i, glast, hyper, carry, p)  # noqa: F821
        f = evaluate_(ws.xs[p.x_row, i], gnew, a)  # noqa: F821
        evaluations += 1
        code = check_(ws, i, gnew, f, p, ctl)  # noqa: F821
        if code != NONFINITE_FUN and code != NONFINITE_JAC:
            copy_(gnew, glast)  # noqa: F821 - accepted: its gradient is the last one
        if code != RUNNING:
            break
    p.nfev += evaluations
    p.njev += evaluations
    return code


def _kernel(ws, gnew, args, progress, hyper, carry, controls, nsteps, start, running):
    """Problem ``i = cuda.grid(1)``: :func:`_run_problem` unless it has stopped; counts in
    ``running[0]`` the problems still running after it."""
    i = cuda.grid(1)
    if i < progress.size:
        p = progress[i]
        if p.status == RUNNING:
            a = pick_args_(args, i, 0)  # noqa: F821 - bound by kernel()
            code = run_problem_(ws, gnew, i, p, a, hyper, carry, controls[0], nsteps, start)  # noqa: F821
            p.status = code
            if code == RUNNING:
                cuda.atomic.add(running, 0, 1)


def compile_objective(func, what):
    """``func`` (argument ``what``) as a device function: itself if it is one
    (``@cuda.jit(device=True)``), else compiled so (a plain Python function)."""
    if _is_device_function(func):
        return func
    if not isinstance(func, pytypes.FunctionType):
        raise TypeError(
            f"on the GPU, {what} must be a numba-cuda device function "
            "(@cuda.jit(device=True)) or a plain Python function to compile as one, got "
            f"{type(func).__name__}"
        )
    return _device_function(func)


@functools.lru_cache(maxsize=64)
def _device_function(func):
    return cuda.jit(device=True)(func)


def _is_device_function(func):
    if SIMULATOR:  # the simulator's device functions
        return type(func).__name__ == "FakeCUDAKernel" and getattr(func, "_device", False)
    targetoptions = getattr(func, "targetoptions", None)
    return isinstance(targetoptions, dict) and bool(targetoptions.get("device", False))


def _as_device(x):
    """A numba device-array view of the CUDA array ``x`` (the simulator's arrays as they
    are)."""
    return x if SIMULATOR else cuda.as_cuda_array(x)


def host_copy(x0):
    """A host copy of the CUDA array ``x0``."""
    return _as_device(x0).copy_to_host()


def device_args(args, b, batch):
    """``(args on the device, kinds)``: arrays copied to the device (CUDA arrays taken as
    they are), each with its kind for :func:`_picker` by :func:`fastadam.minimize_batch`'s
    broadcasting rule (``minimize``'s arrays are shared whole)."""
    out, kinds = [], []
    for k, a in enumerate(args):
        if is_cuda_array(a):
            d = _as_device(a)
        elif isinstance(a, np.ndarray):
            if a.dtype.kind not in "biuf":
                raise TypeError(f"args[{k}] has dtype {a.dtype}: the GPU takes real numbers")
            d = cuda.to_device(np.ascontiguousarray(a))
        else:  # a scalar (numba-cuda types it at the launch)
            out.append(a)
            kinds.append(0)
            continue
        if d.ndim == 0:
            kind = 0
        elif not batch:
            d, kind = d.reshape((1, *d.shape)), 2
        else:
            kind = 1 if options.per_problem(d.shape, k, b) else 2
        out.append(d)
        kinds.append(kind)
    return tuple(out), tuple(kinds)


@functools.lru_cache(maxsize=64)
def kernel(fun, jac, name, batched, kinds, max_registers=None):
    """The kernel for device functions ``fun`` and ``jac`` (None: ``fun`` computes both),
    algorithm ``name`` with hyperparameters ``batched`` (0/1 per argument) and extra
    arguments of ``kinds`` (see :func:`_picker`), using at most ``max_registers`` per
    thread (None: no limit). Compiled at its first launch."""
    check, copy = _stop_tests()
    if jac is None:
        evaluate = device(_evaluate_combined, name="evaluate_combined", fun_=fun)
    else:
        evaluate = device(_evaluate_separate, name="evaluate_separate", fun_=fun, jac_=jac)
    one = device(_run_problem, name=f"run_problem_{name}_device", evaluate_=evaluate,
                 check_=check, update_=_update(name, batched), copy_=copy)  # fmt: skip
    namespace = dict(_kernel.__globals__, run_problem_=one,
                     pick_args_=_picker(kinds, "pick_args"))  # fmt: skip
    body = pytypes.FunctionType(_kernel.__code__, namespace, f"minimize_{name}_kernel")
    limit = {"max_registers": max_registers} if max_registers and not SIMULATOR else {}
    return cuda.jit(body, **limit)  # (the simulator has no registers)


#: Workspace arrays the kernel writes before it reads them (the host's are uninitialised
#: too): allocated on the device, not copied.
_UNREAD = ("glast",)
#: Workspace arrays the result is made of.
_RESULT = ("xs", "glast")


def _on_device(name, a):
    if a is None:  # (a state buffer not used)
        return None
    if name == "xs":  # (only the first row holds the iterates yet)
        d = cuda.device_array_like(a)
        d[0].copy_to_device(a[0])
        return d
    return cuda.device_array_like(a) if name in _UNREAD else cuda.to_device(a)


def _to_device(run):
    """The run's arrays on the device: ``(ws, progress, hyper, carry, controls)``."""
    fields = zip(engine.Workspace._fields, run.ws, strict=True)
    ws = engine.Workspace(*(_on_device(name, a) for name, a in fields))
    carry = cuda.to_device(run.carry)
    hyper = tuple(
        carry if v is run.carry else cuda.to_device(v) if isinstance(v, np.ndarray) else v
        for v in run.hyper
    )
    return ws, cuda.to_device(run.progress), hyper, carry, cuda.to_device(run.cfg.controls)


def _to_host(run, ws, progress):
    """Copy back what the result is made of: the records, the iterate buffers and the
    gradients (the state buffers stay on the device)."""
    progress.copy_to_host(run.progress)
    for name in _RESULT:
        host = getattr(run.ws, name)
        if host.size:
            getattr(ws, name).copy_to_host(host)


def run(fun, jac, args, kinds, job, deadline, printer, target=0.05):
    """Run the problems of ``job`` (a :class:`fastadam.optimize.loop.Run` on the host) on
    the device with device functions ``fun`` and ``jac`` and device ``args`` of ``kinds``,
    in launches of about ``target`` seconds; the results come back into ``job``."""
    b = job.progress.size
    ws, progress, hyper, carry, controls = _to_device(job)
    gnew = cuda.device_array_like(ws.glast)
    count = np.zeros(1, np.int64)
    running = cuda.to_device(count)
    values = (ws, gnew, args, progress, hyper, carry, controls)
    t0 = time.perf_counter()
    kern = kernel(fun, jac, job.cfg.spec.name, job.cfg.batched, kinds, MAX_REGISTERS)
    launch = _specialize(kern, values)
    compile_time = time.perf_counter() - t0
    with quiet_launches():  # (numba-cuda warns when the grid is configured)
        launch = launch[-(-b // THREADS_PER_BLOCK), THREADS_PER_BLOCK]
    status = job.progress["status"]  # (a view: the copies back land in job.progress)
    chunk, start, stop = 100, True, None
    try:
        while True:
            t0 = time.perf_counter()
            running.copy_to_device(np.zeros(1, np.int64))
            with quiet_launches():
                launch(*values, chunk, start, running)
            running.copy_to_host(count)  # (waits for the launch)
            start = False
            if printer is not None:
                progress.copy_to_host(job.progress)
                printer.row(job)
            if count[0] == 0:
                break
            now = time.perf_counter()
            if deadline is not None and now >= deadline:
                stop = MAXTIME
                break
            rate = max(now - t0, 1e-7) / chunk
            chunk = int(min(max(target / rate, 1), 1 << 30))
            if deadline is not None:
                chunk = max(1, min(chunk, int((deadline - now) / rate) + 1))
    except KeyboardInterrupt:
        stop = INTERRUPTED
    cuda.synchronize()
    _to_host(job, ws, progress)
    if stop is not None:
        status[status == RUNNING] = stop
    job.jac = job.ws.glast  # (the host's copy: nothing else reads it)
    job.jac[job.progress["eval_nit"] < 0] = np.nan
    return compile_time


def _specialize(kern, values):
    """``kern`` compiled for the run's argument types (TypeError naming fun and jac when
    they do not compile for them: nothing has run)."""
    if SIMULATOR:
        return kern
    try:
        return kern.specialize(*values, np.int64(0), True, cuda.device_array(1, np.int64))
    except Exception as exc:  # numba's TypingError and LoweringError, among others
        if not type(exc).__module__.startswith("numba"):
            raise
        raise TypeError(
            f"fun and jac do not compile for the device with these arguments: {exc}"
        ) from None
