"""Array kernels: fastadam against its memory skeleton and plain numpy.

The *skeleton* of an update is a compiled kernel with exactly its reads and writes (Adam
and AdamW: read p, g, m, v, write p, m, v; RMSProp: read p, g, v, write p, v) and trivial
arithmetic: the memory-bound speed limit. ``Bandwidth`` reports the achieved GB/s (bytes
read plus written, per second) and the kernel's speed as a fraction of its skeleton's.
"""

from fastadam import _bench

SIZES = [10**3, 10**4, 10**5, 10**6, 10**7]
DTYPES = ["float32", "float64"]
MODES = ["serial", "parallel"]


class Kernels:
    """One in-place update of the whole array by a compiled fastadam kernel."""

    params = [list(_bench.KERNELS), DTYPES, SIZES, MODES]
    param_names = ["kernel", "dtype", "size", "mode"]

    def setup(self, kernel, dtype, size, mode):
        self.step, self.arrays = _bench.kernel_case(kernel, dtype, size, mode)

    def time_step(self, kernel, dtype, size, mode):
        self.step()


class Skeleton:
    """The memory skeleton with the traffic of each update: the speed limit."""

    params = [["adam", "rmsprop"], DTYPES, SIZES, MODES]
    param_names = ["traffic", "dtype", "size", "mode"]

    def setup(self, traffic, dtype, size, mode):
        self.step, self.arrays = _bench.kernel_case(traffic, dtype, size, mode, impl="skeleton")

    def time_step(self, traffic, dtype, size, mode):
        self.step()


class NumpyBaseline:
    """The same update in plain numpy, in place, with a preallocated scratch array."""

    params = [["adam", "rmsprop"], DTYPES, SIZES]
    param_names = ["kernel", "dtype", "size"]

    def setup(self, kernel, dtype, size):
        self.step, self.arrays = _bench.kernel_case(kernel, dtype, size, "serial", impl="numpy")

    def time_step(self, kernel, dtype, size):
        self.step()


class Bandwidth:
    """Achieved bandwidth of each kernel, and its speed relative to its skeleton."""

    params = [list(_bench.KERNELS), DTYPES, SIZES, MODES]
    param_names = ["kernel", "dtype", "size", "mode"]
    timeout = 120

    def setup(self, kernel, dtype, size, mode):
        self.kernel_step, self.a1 = _bench.kernel_case(kernel, dtype, size, mode)
        traffic = "rmsprop" if kernel == "rmsprop" else "adam"
        self.skeleton_step, self.a2 = _bench.kernel_case(
            traffic, dtype, size, mode, impl="skeleton"
        )
        self.nbytes = _bench.bytes_per_step(kernel, size, dtype)

    def track_gbps(self, kernel, dtype, size, mode):
        return self.nbytes / _bench.best_time(self.kernel_step) / 1e9

    track_gbps.unit = "GB/s"

    def track_ratio_to_skeleton(self, kernel, dtype, size, mode):
        t_kernel = _bench.best_time(self.kernel_step)
        t_skeleton = _bench.best_time(self.skeleton_step)
        return t_skeleton / t_kernel

    track_ratio_to_skeleton.unit = "skeleton time / kernel time"


def _preload():
    """Load the serial kernels from numba's cache once, at import: asv forks each benchmark
    process from a server that imported this module, so they inherit them."""
    for kernel in _bench.KERNELS:
        for dtype in DTYPES:
            for impl in ("fastadam", "skeleton"):
                _bench.kernel_case(kernel, dtype, 16, "serial", impl=impl)


_preload()
