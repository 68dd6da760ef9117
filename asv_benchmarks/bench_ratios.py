"""Ratios timed interleaved in one process: the benchmarks to watch for regressions.

Each ``track_*`` here returns seconds per call of a fastadam operation over seconds per
call of a fixed reference doing the same work, timed alternately in the same process on
the same arrays (:func:`._common.interleaved_ratio`: a short batch of each per round, the
order alternating, for 2 seconds of CPU time of this process; the lower quartile of the
per-round ratios). Whatever slows the machine down -- another process on the core, a slower
clock, a busier memory bus -- slows both, so the ratio stays put where the raw times
(``time_*`` benchmarks) move by tens of percent from one run to the next on a shared
machine. Numba runs one thread (:func:`._common.pin_threads`), so the parallel kernels'
code is measured without waiting for a second core that another process may hold.

- :class:`KernelRatio` ``track_vs_loop`` (watched): a fastadam kernel against the same
  update hand-written as a plain numba loop (PyTorch's formulas, compiled by the same numba
  with the same options), both called from compiled code: the cost of fastadam's
  generality, 1 = as fast as the plain loop. Both do the same arithmetic on the same
  traffic, so they suffer the same interference. (Called from Python instead, a kernel on
  10^4 elements spends as much time in its argument checks as in its loop, and Python's
  cost and the loop's do not move together: 20 % swings.)
- :class:`KernelCall` ``track_vs_loop_call`` (watched): a kernel called from Python on one
  element against the plain loop called from Python on one element: the kernel's per-call
  cost (argument checks, dispatch) as a multiple of numba's bare dispatch.
- :class:`MemoryBound` ``track_vs_skeleton`` (not watched): the kernel against its memory
  skeleton (same traffic, trivial arithmetic), 1 = at the memory bound. Informative, but
  less robust: a neighbour that computes slows the kernel's arithmetic and not the
  skeleton's loads and stores.
- :class:`StepRatio` ``track_vs_plain`` (watched, with a factor of 1.25): ``opt.step(grads)``
  against the same step by a plain Python optimizer around the plain loops: the
  optimizer's per-step cost (validation, coefficients, dispatch) in units of a hand-written
  one's.

A lower ratio is better, as asv assumes. See docs/benchmarks.md for the list to watch.
"""

from ._common import OPTIMIZERS, interleaved_ratio, kernel_case, pin_threads, step_case

DTYPES = ["float32", "float64"]
MODES = ["serial", "parallel"]


class KernelRatio:
    """A fastadam kernel's time over the same update's as a plain numba loop, both called
    from compiled code (:func:`._common.compiled_driver`): the code of the update alone.

    Sizes: 10^4 elements (the arrays stay in the core's L2 cache: the arithmetic shows) and
    10^6 (in the shared L3 cache or memory: the traffic shows). The parallel kernels only on
    10^6 elements: the optimizers use them from 65,536 elements on (the 10^4 parallel case
    is skipped). AdamW runs Adam's kernel.
    """

    params = [["adam", "rmsprop"], DTYPES, [10**4, 10**6], MODES]
    param_names = ["kernel", "dtype", "size", "mode"]
    timeout = 120

    def setup(self, kernel, dtype, size, mode):
        if mode == "parallel" and size < 65_536:
            raise NotImplementedError("the optimizers run the serial kernels on 10^4 elements")
        pin_threads(1)
        self.kernel, self.arrays = kernel_case(kernel, dtype, size, mode, calls="njit")
        self.loop, _ = kernel_case(
            kernel, dtype, size, mode, impl="loop", calls="njit", arrays=self.arrays
        )

    def track_vs_loop(self, kernel, dtype, size, mode):
        return interleaved_ratio(self.kernel, self.loop)

    track_vs_loop.unit = "kernel time / plain loop time"


class KernelCall:
    """A call of a fastadam kernel from Python on one element over a call of the plain
    numba loop on one element (numba's dispatch alone): the kernels' per-call cost from
    Python (argument checks, dispatch), float64."""

    params = [["adam", "rmsprop"], MODES]
    param_names = ["kernel", "mode"]
    timeout = 120

    def setup(self, kernel, mode):
        pin_threads(1)
        self.kernel, self.arrays = kernel_case(kernel, "float64", 1, mode)
        self.loop, _ = kernel_case(kernel, "float64", 1, mode, impl="loop", arrays=self.arrays)

    def track_vs_loop_call(self, kernel, mode):
        return interleaved_ratio(self.kernel, self.loop)

    track_vs_loop_call.unit = "kernel call time / plain loop call time"


class MemoryBound:
    """A fastadam kernel's time over its memory skeleton's, called from Python, on 10^6
    elements (out of the core's caches): 1 = as fast as the traffic allows. Not watched
    (see the module docstring)."""

    params = [["adam", "rmsprop"], DTYPES, [10**6], MODES]
    param_names = ["kernel", "dtype", "size", "mode"]
    timeout = 120

    def setup(self, kernel, dtype, size, mode):
        pin_threads(1)
        self.kernel, self.arrays = kernel_case(kernel, dtype, size, mode)
        self.skeleton, _ = kernel_case(
            kernel, dtype, size, mode, impl="skeleton", arrays=self.arrays
        )

    def track_vs_skeleton(self, kernel, dtype, size, mode):
        return interleaved_ratio(self.kernel, self.skeleton)

    track_vs_skeleton.unit = "kernel time / skeleton time"


class StepRatio:
    """``opt.step(grads)`` time over the same step's by a plain Python optimizer around the
    plain loops (:class:`._common.PlainOptimizer`), float64: fastadam's per-step cost
    (validation, coefficients, dispatch) in units of what a user would write by hand.

    One element per array (the per-step cost alone) and 10^5 elements (the parallel kernel,
    one thread), on one array or ten. Watched with a factor of 1.25: Python-level costs
    move by 5-15 % with what the neighbouring programs do (docs/benchmarks.md).
    """

    params = [list(OPTIMIZERS), [1, 10**5], [1, 10]]
    param_names = ["optimizer", "size", "n_arrays"]
    timeout = 120

    def setup(self, optimizer, size, n_arrays):
        pin_threads(1)
        self.opt_step, self.plain_step, self.keep = step_case(optimizer, "float64", size, n_arrays)

    def track_vs_plain(self, optimizer, size, n_arrays):
        return interleaved_ratio(self.opt_step, self.plain_step)

    track_vs_plain.unit = "opt.step time / plain optimizer step time"
