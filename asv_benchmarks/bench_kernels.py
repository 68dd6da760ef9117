"""Array kernels, raw times: fastadam, its memory skeleton, a plain numba loop, numpy.

The *skeleton* of an update is a compiled kernel with exactly its reads and writes (Adam
and AdamW: read p, g, m, v, write p, m, v; RMSProp: read p, g, v, write p, v) and trivial
arithmetic: the memory-bound speed limit. The parallel kernels run on
:data:`._common.THREADS` numba threads.

These are wall-clock times of one call: what a user waits for, and what another process on
the machine changes by tens of percent from one run to the next. To detect regressions,
watch the ratios of :mod:`.bench_ratios` instead (docs/benchmarks.md).
"""

from ._common import KERNELS, kernel_case, pin_threads

SIZES = [10**3, 10**4, 10**5, 10**6, 10**7]
DTYPES = ["float32", "float64"]
MODES = ["serial", "parallel"]


class Kernels:
    """One in-place update of the whole array by a compiled fastadam kernel."""

    params = [list(KERNELS), DTYPES, SIZES, MODES]
    param_names = ["kernel", "dtype", "size", "mode"]

    def setup(self, kernel, dtype, size, mode):
        pin_threads()
        self.step, self.arrays = kernel_case(kernel, dtype, size, mode)

    def time_step(self, kernel, dtype, size, mode):
        self.step()


class Skeleton:
    """The memory skeleton with the traffic of each update: the speed limit."""

    params = [["adam", "rmsprop"], DTYPES, SIZES, MODES]
    param_names = ["traffic", "dtype", "size", "mode"]

    def setup(self, traffic, dtype, size, mode):
        pin_threads()
        self.step, self.arrays = kernel_case(traffic, dtype, size, mode, impl="skeleton")

    def time_step(self, traffic, dtype, size, mode):
        self.step()


class NumpyBaseline:
    """The same update in plain numpy, in place, with a preallocated scratch array."""

    params = [["adam", "rmsprop"], DTYPES, SIZES]
    param_names = ["kernel", "dtype", "size"]

    def setup(self, kernel, dtype, size):
        self.step, self.arrays = kernel_case(kernel, dtype, size, "serial", impl="numpy")

    def time_step(self, kernel, dtype, size):
        self.step()


def _preload():
    """Load the skeletons and plain loops from numba's cache once, at import: asv forks each
    benchmark process from a server that imported this module, so they inherit them.
    fastadam itself is imported in ``setup`` only (see ``_common``)."""
    for kernel in KERNELS:
        for dtype in DTYPES:
            for impl in ("skeleton", "loop"):
                kernel_case(kernel, dtype, 16, "serial", impl=impl)


_preload()
