"""GPU: optimizer steps on device arrays. Skipped without numba-cuda, a GPU, or a fastadam
that accepts device arrays."""

import numpy as np

from ._common import best_time, bytes_per_step

SIZES = [2**10, 2**20, 2**26]


def _import_cuda():
    """numba.cuda, imported once by the server that asv forks every benchmark from (the
    import does not initialise the CUDA driver); or the reason why not."""
    import numba

    if numba.config.ENABLE_CUDASIM:
        return None, "NUMBA_ENABLE_CUDASIM=1: the CUDA simulator is not a GPU"
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda missing or broken
        return None, f"numba.cuda unavailable: {exc}"
    return cuda, ""


_CUDA, _WHY_NOT = _import_cuda()


def _cuda():
    """numba.cuda once a GPU is found, in ``setup``: in the benchmark's own process, since a
    CUDA driver initialised before a fork cannot be used after it."""
    if _CUDA is None:
        raise NotImplementedError(_WHY_NOT)
    try:
        if not _CUDA.is_available():
            raise NotImplementedError("no CUDA GPU")
    except NotImplementedError:
        raise
    except Exception as exc:
        raise NotImplementedError(f"CUDA unavailable: {exc}") from None
    return _CUDA


OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSProp"}


class CudaStep:
    """``opt.step(g)`` on numba device arrays, synchronised."""

    params = [list(OPTIMIZERS), ["float32", "float64"], SIZES]
    param_names = ["kernel", "dtype", "size"]
    timeout = 120

    def setup(self, kernel, dtype, size):
        self.cuda = cuda = _cuda()
        import fastadam as fa  # not at import: see _common

        rng = np.random.default_rng(0)
        self.p = cuda.to_device(rng.standard_normal(size).astype(dtype))
        self.g = cuda.to_device(rng.standard_normal(size).astype(dtype))
        try:
            self.opt = getattr(fa, OPTIMIZERS[kernel])(self.p, lr=1e-3)
        except (TypeError, ValueError) as exc:
            raise NotImplementedError(
                f"this fastadam does not take device arrays: {exc}"
            ) from None
        self.opt.step(self.g)
        cuda.synchronize()
        self.nbytes = bytes_per_step(kernel, size, dtype)

    def time_step(self, kernel, dtype, size):
        self.opt.step(self.g)
        self.cuda.synchronize()

    def track_gbps(self, kernel, dtype, size):
        def step():
            self.opt.step(self.g)
            self.cuda.synchronize()

        return self.nbytes / best_time(step) / 1e9

    track_gbps.unit = "GB/s"
