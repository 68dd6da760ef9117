"""GPU: optimizer steps on device arrays. Skipped without numba-cuda, a GPU, or a fastadam
that accepts device arrays."""

import numpy as np

import fastadam as fa
from fastadam import _bench

SIZES = [2**10, 2**20, 2**26]


def _detect():
    """(numba.cuda or None, why not), found once at import."""
    import numba

    if numba.config.ENABLE_CUDASIM:
        return None, "NUMBA_ENABLE_CUDASIM=1: the CUDA simulator is not a GPU"
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda missing or broken
        return None, f"numba.cuda unavailable: {exc}"
    try:
        if not cuda.is_available():
            return None, "no CUDA GPU"
    except Exception as exc:
        return None, f"CUDA unavailable: {exc}"
    return cuda, ""


_CUDA, _WHY_NOT = _detect()


def _cuda():
    if _CUDA is None:
        raise NotImplementedError(_WHY_NOT)
    return _CUDA


OPTIMIZERS = {"adam": fa.Adam, "adamw": fa.AdamW, "rmsprop": fa.RMSProp}


class CudaStep:
    """``opt.step(g)`` on numba device arrays, synchronised."""

    params = [list(OPTIMIZERS), ["float32", "float64"], SIZES]
    param_names = ["kernel", "dtype", "size"]
    timeout = 120

    def setup(self, kernel, dtype, size):
        self.cuda = cuda = _cuda()
        rng = np.random.default_rng(0)
        self.p = cuda.to_device(rng.standard_normal(size).astype(dtype))
        self.g = cuda.to_device(rng.standard_normal(size).astype(dtype))
        try:
            self.opt = OPTIMIZERS[kernel](self.p, lr=1e-3)
        except (TypeError, ValueError) as exc:
            raise NotImplementedError(
                f"this fastadam does not take device arrays: {exc}"
            ) from None
        self.opt.step(self.g)
        cuda.synchronize()
        self.nbytes = _bench.bytes_per_step(kernel, size, dtype)

    def time_step(self, kernel, dtype, size):
        self.opt.step(self.g)
        self.cuda.synchronize()

    def track_gbps(self, kernel, dtype, size):
        def step():
            self.opt.step(self.g)
            self.cuda.synchronize()

        return self.nbytes / _bench.best_time(step) / 1e9

    track_gbps.unit = "GB/s"
