"""Compile time, measured on purpose (every other benchmark compiles in ``setup``).

Each sample runs a fresh interpreter that imports fastadam and takes one optimizer step on
a small float64 array: with ``NUMBA_CACHE_DIR`` pointing to an empty directory (cold:
everything the step needs is compiled), and with numba's on-disk cache already filled
(what every later run of a user's program pays, import included).
"""

import os
import shutil
import subprocess
import sys
import tempfile

_SCRIPT = "import numpy as np, fastadam as fa; x = np.ones(1000); fa.{optimizer}(x).step(x)"


def _run(optimizer, cache_dir=None):
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(optimizer=optimizer)], env=env, check=True
    )


class Compile:
    params = [["Adam", "RMSProp"]]
    param_names = ["optimizer"]
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, optimizer):
        self.root = tempfile.mkdtemp(prefix="fastadam-asv-cache-")
        self.count = 0

    def teardown(self, optimizer):
        shutil.rmtree(self.root, ignore_errors=True)

    def time_cold_compile_first_step(self, optimizer):
        self.count += 1  # a new, empty cache directory for every sample
        _run(optimizer, os.path.join(self.root, f"cold{self.count}"))


class Cached:
    # Adam only: the import and the cache lookup are what this measures, the same for both
    params = [["Adam"]]
    param_names = ["optimizer"]
    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, optimizer):
        _run(optimizer)  # make sure numba's default cache holds what the step needs

    def time_import_and_first_step(self, optimizer):
        _run(optimizer)
