"""``fastadam.dask`` on dask's local threads (the LocalCluster scaling is measured by
``benchmarks/bench_dask.py``, which starts clusters: too slow for every asv run).

- :class:`DaskBatchFit` ``time_fit``: :func:`fastadam.dask.minimize_batch` of Gaussian-peak
  fits (:mod:`._peaks`), 200 Adam iterations, in chunks of 500 problems.
- :class:`DaskOptimizerStep` ``time_step``: one step of :class:`fastadam.dask.Adam` on 10^6
  float64 parameters in 4 chunks (a persisted gradient), the cost of a round of tasks.

Skipped without dask (the ``dask`` extra) or without ``fastadam.dask``.
"""

import numpy as np

from . import _peaks as pk

ITERS = 200


def _require():
    try:
        import dask.array as da

        import fastadam.dask as fd
    except ImportError as exc:
        raise NotImplementedError(f"fastadam.dask is not usable here: {exc}") from None
    return da, fd


class DaskBatchFit:
    params = [[2000]]
    param_names = ["problems"]
    timeout = 300

    def setup(self, problems):
        da, self.fd = _require()
        y, _, x0 = pk.data(problems)
        X, Y = da.from_array(x0, chunks=(500, -1)), da.from_array(y, chunks=(500, -1))
        opts = dict(lr=pk.LR, maxiter=ITERS, gtol=0.0, track_best=False)
        self.lazy = self.fd.minimize_batch(pk.fun_and_grad, X, args=(Y, pk.T[np.newaxis]),
                                           jac=True, options=opts)  # fmt: skip
        self.fd.compute(self.lazy, scheduler="threads")

    def time_fit(self, problems):
        self.fd.compute(self.lazy, scheduler="threads")


class DaskOptimizerStep:
    params = [[1_000_000]]
    param_names = ["size"]
    timeout = 300

    def setup(self, size):
        import dask

        da, fd = _require()
        dask.config.set(scheduler="threads")
        rng = np.random.default_rng(0)
        chunk = -(-size // 4)
        self.opt = fd.Adam(da.from_array(rng.standard_normal(size), chunks=chunk), lr=1e-3)
        self.g = da.from_array(rng.standard_normal(size), chunks=chunk).persist()
        self.opt.step(self.g)

    def time_step(self, size):
        self.opt.step(self.g)
