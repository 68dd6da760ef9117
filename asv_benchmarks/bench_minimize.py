"""``fastadam.minimize`` per iteration, on the Python and the compiled paths.

Extended Rosenbrock, Adam, float64, a fixed number of iterations (no early stop). The
Python path gets numpy ``fun``/``jac``; the compiled path gets ``@numba.njit`` ones, so
the whole loop runs in one compiled function. Skipped when this fastadam has no
``minimize``.
"""

import time

import numba
import numpy as np

MAXITER = 1000


def _rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _rosen_der(x):
    d = np.zeros_like(x)
    xm, xm_m1, xm_p1 = x[1:-1], x[:-2], x[2:]
    d[1:-1] = 200 * (xm - xm_m1**2) - 400 * (xm_p1 - xm**2) * xm - 2 * (1 - xm)
    d[0] = -400 * x[0] * (x[1] - x[0] ** 2) - 2 * (1 - x[0])
    d[-1] = 200 * (x[-1] - x[-2] ** 2)
    return d


@numba.njit(cache=True)
def _rosen_nb(x):
    s = 0.0
    for i in range(x.size - 1):
        s += 100.0 * (x[i + 1] - x[i] * x[i]) ** 2 + (1.0 - x[i]) ** 2
    return s


@numba.njit(cache=True)
def _rosen_der_nb(x):
    n = x.size
    d = np.zeros(n)
    for i in range(n - 1):
        a = x[i + 1] - x[i] * x[i]
        d[i] += -400.0 * x[i] * a - 2.0 * (1.0 - x[i])
        d[i + 1] += 200.0 * a
    return d


class Minimize:
    params = [["python", "compiled"], [100, 10_000]]
    param_names = ["path", "n"]
    timeout = 300

    def setup(self, path, n):
        import fastadam as fa  # not at import: see _common

        self.fa = fa
        if not hasattr(fa, "minimize"):
            raise NotImplementedError("this fastadam has no minimize")
        self.x0 = np.full(n, -1.0)
        if path == "python":
            self.fun, self.jac = _rosen, _rosen_der
        else:
            self.fun, self.jac = _rosen_nb, _rosen_der_nb
        self.options = dict(lr=1e-3, maxiter=MAXITER, gtol=0.0)
        self._run()  # compile / load from cache

    def _run(self):
        return self.fa.minimize(
            self.fun, self.x0, jac=self.jac, method="adam", options=self.options
        )

    def time_minimize_1000_iterations(self, path, n):
        self._run()

    def track_us_per_iteration(self, path, n):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            res = self._run()
            best = min(best, (time.perf_counter() - t0) / max(res.nit, 1))
        return round(best * 1e6, 3)

    track_us_per_iteration.unit = "µs"
