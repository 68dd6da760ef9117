"""Optimizer objects: per-step overhead on small arrays, and memory of a step."""

import os
import subprocess
import sys
import textwrap

import numpy as np

#: name -> (fastadam class, keywords). fastadam is imported in ``setup`` only (see _common).
OPTIMIZERS = {
    "Adam": ("Adam", {}),
    "AdamW": ("AdamW", {}),
    "RMSProp": ("RMSProp", {}),
    "RMSProp-centered-momentum": ("RMSProp", {"momentum": 0.9, "centered": True}),
}


def _make(optimizer, params):
    import fastadam as fa

    name, options = OPTIMIZERS[optimizer]
    return getattr(fa, name)(params, lr=1e-3, **options)


class OptimizerOverhead:
    """``opt.step(grads)`` on small arrays, where the Python-side cost dominates."""

    params = [list(OPTIMIZERS), [1, 100, 1000], [1, 10]]
    param_names = ["optimizer", "size", "n_arrays"]

    def setup(self, optimizer, size, n_arrays):
        rng = np.random.default_rng(0)
        self.params_ = [rng.standard_normal(size) for _ in range(n_arrays)]
        self.grads = [rng.standard_normal(size) for _ in range(n_arrays)]
        if n_arrays == 1:
            self.params_, self.grads = self.params_[0], self.grads[0]
        self.opt = _make(optimizer, self.params_)
        self.opt.step(self.grads)  # compile / load from the cache

    def time_step(self, optimizer, size, n_arrays):
        self.opt.step(self.grads)


class StepMemory:
    """Peak memory of a process holding 10^7 float64 parameters (80 MB per array) and
    stepping an optimizer: parameters, gradients and state only, no temporaries.

    ``setup_cache`` compiles the kernels (into numba's disk cache) in a process of its own
    first, so that no measured process compiles: numba's compiler would add about 80 MB to
    the peak of whichever process compiled, and which one does changes from run to run."""

    params = [["Adam", "AdamW", "RMSProp"]]
    param_names = ["optimizer"]
    size = 10**7
    timeout = 120

    def setup_cache(self):
        small = np.full(1 << 17, 1.0)  # at least PARALLEL_MIN_SIZE: the parallel kernels too
        for optimizer in self.params[0]:
            _make(optimizer, small.copy()).step(small)
        return True  # asv passes it to setup and peakmem_step (None would pass nothing)

    def setup(self, cache, optimizer):
        self.p = np.full(self.size, 1.0)
        self.g = np.full(self.size, 0.5)
        self.opt = _make(optimizer, self.p)
        self.opt.step(self.g)

    def peakmem_step(self, cache, optimizer):
        for _ in range(3):
            self.opt.step(self.g)


_RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import fastadam as fa
    kind, n = sys.argv[1], int(sys.argv[2])
    make = dict(Adam=fa.Adam, AdamW=fa.AdamW, RMSProp=fa.RMSProp)[kind]
    w = np.full(1 << 17, 1.0)            # compile/load and start the threads first
    make(w).step(w)
    p = np.full(n, 1.0)
    g = np.full(n, 0.5)
    opt = make(p)
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    before = peak()
    for _ in range(3):
        opt.step(g)
    print(peak() - before)
    """
)


class StepTemporaries:
    """Growth of the peak resident memory during three optimizer steps on 10^7 float64
    elements, in a fresh process, in whole MiB: 0 when a step allocates nothing the size of
    the parameters (one such temporary would be 76 MiB). Rounded, so that the odd page
    touched for the first time cannot turn 0 into a flagged change."""

    params = [["Adam", "AdamW", "RMSProp"]]
    param_names = ["optimizer"]
    timeout = 120

    def track_peak_growth_mib(self, optimizer):
        out = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, optimizer, str(10**7)],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ),
        )
        return round(float(out.stdout.split()[-1]))

    track_peak_growth_mib.unit = "MiB"
