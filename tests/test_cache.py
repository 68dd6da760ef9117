"""Compiled code is never stale and never crashes, checked in fresh processes.

- After an edit of any math module (here the Adam rule in fastadam/algorithms/adam.py), the
  next process runs the new math in every cached kernel: the public kernel, the optimizer's
  loops and minimize's compiled step (numba alone checks only each cached function's own
  file).
- A user's ``@njit(cache=True)`` function that calls the parallel kernels runs again and
  again from its cache (with the kernels of fastadam 0.1, numba 0.68 crashed on the second
  run unless its threads had started first).
- A process forked after ``import fastadam`` runs the parallel kernels with numba's
  workqueue threading layer.

Each test works on a copy of the package in a temporary directory, with its own cache.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import fastadam

PACKAGE = os.path.dirname(os.path.abspath(fastadam.__file__))


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the fastadam package (without caches) importable from ``tmp_path``."""
    shutil.copytree(PACKAGE, tmp_path / "fastadam",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))  # fmt: skip
    return tmp_path


def _run(directory, code, **environ):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env.update(environ, PYTHONPATH=str(directory))
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=directory, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, f"rc={out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout.split()


_STEP = """
import numpy as np
import fastadam as fa
from fastadam import kernels
assert fa.__file__.startswith({root!r}), fa.__file__
c = kernels.adam_coefficients(1, lr=0.1)
x = np.ones(4)
kernels.adam(x, np.ones(4), kernels.adam_state(x, c), c)
y = np.ones(4)
fa.Adam(y, lr=0.1).step(np.ones(4))
from scipy.optimize import rosen, rosen_der
r = fa.minimize(rosen, np.zeros(2), jac=rosen_der, options=dict(lr=0.1, maxiter=1))
from fastadam.cpu.kernels import COMPILED
hits = COMPILED["adam"].serial.stats.cache_hits
print(1 - x[0], 1 - y[0], r.x[0], sum(hits.values()))  # the first step of each path
"""


def test_an_edit_of_the_math_reaches_every_cached_kernel(package_copy):
    code = _STEP.format(root=str(package_copy))
    first = _run(package_copy, code)
    again = _run(package_copy, code)
    assert first[:3] == again[:3]
    assert float(first[0]) == pytest.approx(0.1) and float(first[2]) == pytest.approx(0.1)
    assert int(again[3]) > 0  # the second process loaded the kernels from the cache
    rule = package_copy / "fastadam" / "algorithms" / "adam.py"
    text = rule.read_text()
    old = "p = c.wd_factor * p - c.step_size * m / (sqrt(vhat + c.eps_root) + c.eps)"
    assert text.count(old) == 1
    rule.write_text(text.replace(old, old.replace("c.step_size * m", "c.step_size * 2 * m")))
    edited = _run(package_copy, code)
    # the first step is twice as long now, in every path
    for before, after in zip(first[:3], edited[:3], strict=True):
        assert float(after) == pytest.approx(2 * float(before), rel=1e-12)


_USER = """
import numba
import numpy as np
from fastadam import kernels


@numba.njit(cache=True)
def fit(x, n):
    state = kernels.AdamState(np.zeros_like(x), np.zeros_like(x), np.zeros_like(x))
    for t in range(1, n + 1):
        c = kernels.adam_coefficients(t, lr=0.01)
        kernels.adam_parallel(x, 2.0 * x, state, c)
        c2 = kernels.rmsprop_coefficients(t, lr=0.01, momentum=0.9)
        kernels.rmsprop_parallel(x, 2.0 * x, kernels.RMSPropState(
            state.exp_avg_sq, state.exp_avg, state.max_exp_avg_sq), c2)
    return x


x = fit(np.ones(100_000), 3)
print(repr(float(x[0])), sum(fit.stats.cache_hits.values()))
"""


def test_a_users_cached_function_calling_parallel_kernels_runs_from_its_cache(package_copy):
    user = package_copy / "user_fit.py"
    user.write_text(textwrap.dedent(_USER))
    first = _run(package_copy, "import user_fit")  # compiles fastadam and the user's code
    shutil.rmtree(package_copy / "__pycache__")  # the user's cache only
    runs = [first] + [_run(package_copy, "import user_fit") for _ in range(3)]
    assert all(run[0] == first[0] for run in runs)
    assert [run[1] for run in runs] == ["0", "0", "1", "1"]  # then from its cache


_FORK = """
import multiprocessing
import numpy as np
import fastadam as fa


def child():
    x = np.ones(100_000)
    fa.Adam(x, lr=0.1).step(np.ones(100_000))  # the parallel loop, in the forked process
    assert x[0] < 1


process = multiprocessing.get_context("fork").Process(target=child)
process.start()
process.join()
print(process.exitcode)
"""


def test_a_process_forked_after_import_runs_the_parallel_kernels(package_copy):
    """fastadam starts numba's threads at import (numba needs them before it loads a cached
    function that calls the parallel kernels). numba's GNU OpenMP layer cannot run parallel
    code in a process forked after that; its workqueue layer, which docs/numba.md
    recommends to whoever forks, can."""
    assert _run(package_copy, _FORK, NUMBA_THREADING_LAYER="workqueue") == ["0"]
