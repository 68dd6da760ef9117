"""``fastadam.minimize_batch``: B Gaussian-peak fits (:mod:`._peaks`), 200 Adam iterations.

- :class:`BatchFit` ``time_fit``: the two paths of ``minimize_batch`` and the floor (a
  hand-written numba ``prange`` Adam loop doing the same work), in seconds.
- :class:`BatchRatio` ``track_vs_floor`` (watched): the compiled path over the floor, timed
  interleaved in one process on one numba thread (:func:`._common.interleaved_ratio`): the
  engine's cost per problem (stop tests, counters, records) in units of the bare loop.

Skipped when this fastadam has no ``minimize_batch``.
"""

from . import _peaks as pk
from ._common import interleaved_ratio, pin_threads

ITERS = 200


def _require():
    import fastadam as fa  # in setup only: see tests/test_bench_helpers.py

    if not hasattr(fa, "minimize_batch"):
        raise NotImplementedError("this fastadam has no minimize_batch")


class BatchFit:
    params = [["compiled", "vectorized", "floor"], [100, 10_000]]
    param_names = ["path", "problems"]
    timeout = 300

    def setup(self, path, problems):
        _require()
        self.y, _, self.x0 = pk.data(problems)
        self.run = {
            "compiled": lambda: pk.fastadam_compiled(self.x0, self.y, ITERS),
            "vectorized": lambda: pk.fastadam_vectorized(self.x0, self.y, ITERS),
            "floor": lambda: pk.floor_adam(self.x0.copy(), self.y, pk.T, ITERS, pk.LR),
        }[path]
        self.run()  # compile (or load) outside the timing

    def time_fit(self, path, problems):
        self.run()


class BatchRatio:
    params = [[1000]]
    param_names = ["problems"]
    timeout = 300

    def setup(self, problems):
        _require()
        pin_threads(1)
        self.y, _, self.x0 = pk.data(problems)

    def track_vs_floor(self, problems):
        return interleaved_ratio(
            lambda: pk.fastadam_compiled(self.x0, self.y, ITERS),
            lambda: pk.floor_adam(self.x0.copy(), self.y, pk.T, ITERS, pk.LR),
        )

    track_vs_floor.unit = "minimize_batch time / prange loop time"
