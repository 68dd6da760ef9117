"""Peers on the CPU: torch.optim.Adam/RMSprop and optax under jax.jit, float32, on 10^3
and 10^7 elements. Skipped when torch or jax/optax is not installed. Few cases: each
benchmark process imports torch or jax anew (about 2 s), which made these the longest part
of a quick pass; ``benchmarks/bench_kernels.py`` compares more, side by side."""

import numpy as np

SIZES = [10**3, 10**7]


class TorchStep:
    """``opt.step()`` of torch.optim on CPU tensors (gradient already in ``.grad``)."""

    params = [["adam-foreach", "adam-fused", "rmsprop-foreach"], ["float32"], SIZES]
    param_names = ["impl", "dtype", "size"]
    timeout = 120

    def setup(self, impl, dtype, size):
        try:  # imported here, not at module level, so it does not inflate peakmem_ results
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        torch.manual_seed(0)
        tdtype = getattr(torch, dtype)
        self.p = torch.nn.Parameter(torch.randn(size, dtype=tdtype))
        self.p.grad = torch.randn(size, dtype=tdtype)
        if impl == "rmsprop-foreach":
            self.opt = torch.optim.RMSprop([self.p], lr=1e-2, foreach=True)
        elif impl == "adam-fused":
            self.opt = torch.optim.Adam([self.p], lr=1e-3, fused=True)
        else:
            self.opt = torch.optim.Adam([self.p], lr=1e-3, foreach=True)
        self.opt.step()

    def time_step(self, impl, dtype, size):
        self.opt.step()


class OptaxStep:
    """``optax.adam``/``rmsprop`` update and apply, one ``jax.jit`` call with donated
    buffers, on the CPU."""

    params = [["adam", "rmsprop"], ["float32"], SIZES]
    param_names = ["impl", "dtype", "size"]
    timeout = 120

    def setup(self, impl, dtype, size):
        try:
            import jax
            import optax
        except ImportError:
            raise NotImplementedError("jax/optax is not installed") from None
        if dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        rng = np.random.default_rng(0)
        tx = optax.adam(1e-3) if impl == "adam" else optax.rmsprop(1e-3)
        self.p = jnp.asarray(rng.standard_normal(size).astype(dtype))
        self.g = jnp.asarray(rng.standard_normal(size).astype(dtype))
        self.state = tx.init(self.p)

        def step(p, g, state):
            updates, state = tx.update(g, state, p)
            return optax.apply_updates(p, updates), state

        self.step = jax.jit(step, donate_argnums=(0, 2))
        self.p, self.state = self.step(self.p, self.g, self.state)
        jax.block_until_ready(self.p)

    def time_step(self, impl, dtype, size):
        self.p, self.state = self.step(self.p, self.g, self.state)
        self.p.block_until_ready()
