"""A batched-fitting problem for the benchmarks: B Gaussian peaks, one fit of four
parameters each, ``y(t) = a exp(-(t - mu)^2 / (2 s^2)) + c`` sampled at M points, least
squares. With the contenders written once: fastadam's two paths of ``minimize_batch``, the
floor (a hand-written numba ``prange`` Adam loop doing the same evaluations and updates), a
``jax.vmap`` of an optax ``fori_loop`` and a Python loop of scipy's L-BFGS-B.

Every Adam contender runs the same fixed number of iterations (``gtol=0``), PyTorch's Adam
with the same ``lr``, so times compare equal work.
"""

import math

import numpy as np
from numba import njit, prange

M = 32
T = np.linspace(-4.0, 4.0, M)
LR = 0.05
NPARAM = 4


def data(b, seed=0):
    """``(y, truth, x0)``: B noisy peaks, their true parameters, and starting points (the
    highest sample's height and position, width 1, offset 0)."""
    rng = np.random.default_rng(seed)
    truth = np.column_stack(
        [
            rng.uniform(1.0, 3.0, b),  # a
            rng.uniform(-1.5, 1.5, b),  # mu
            rng.uniform(0.5, 1.5, b),  # s
            rng.uniform(-0.2, 0.2, b),  # c
        ]
    )
    y = model_rows(truth, T) + 0.02 * rng.standard_normal((b, M))
    top = np.argmax(y, axis=1)
    x0 = np.column_stack([y[np.arange(b), top], T[top], np.ones(b), np.zeros(b)])
    return y, truth, x0


def model_rows(p, t):
    a, mu, s, c = (p[:, k : k + 1] for k in range(4))
    return a * np.exp(-((t - mu) ** 2) / (2 * s * s)) + c


# -- one problem, compiled (fastadam's compiled path and the floor) -------------------------
@njit(cache=True)
def evaluate_into(p, y, t, g):
    """The objective at ``p`` and its gradient, written into ``g``."""
    a, mu, s, c = p[0], p[1], p[2], p[3]
    f = 0.0
    ga = gmu = gs = gc = 0.0
    inv = 1.0 / (s * s)
    for k in range(t.size):
        d = t[k] - mu
        e = math.exp(-0.5 * d * d * inv)  # (math: the same source compiles for the GPU)
        r = a * e + c - y[k]
        f += r * r
        ga += r * e
        gmu += r * a * e * d * inv
        gs += r * a * e * d * d * inv / s
        gc += r
    g[0] = ga
    g[1] = gmu
    g[2] = gs
    g[3] = gc
    return 0.5 * f


@njit(cache=True)
def fun_and_grad(p, y, t):
    """``(f, gradient)`` of one problem: fastadam's ``jac=True`` objective."""
    g = np.empty(4)
    f = evaluate_into(p, y, t, g)
    return f, g


@njit(parallel=True, cache=True)
def floor_adam(x, y, t, iters, lr):
    """The floor: per problem (over threads), ``iters`` evaluations and Adam updates
    (PyTorch's definition), written by hand."""
    b, n = x.shape
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for i in prange(b):
        p = x[i]
        m = np.zeros(n)
        v = np.zeros(n)
        g = np.empty(n)
        for k in range(1, iters + 1):
            evaluate_into(p, y[i], t, g)
            bc1 = 1.0 - beta1 ** float(k)
            bc2 = 1.0 - beta2 ** float(k)
            for j in range(n):
                m[j] = beta1 * m[j] + (1.0 - beta1) * g[j]
                v[j] = beta2 * v[j] + (1.0 - beta2) * g[j] * g[j]
                p[j] -= lr / bc1 * m[j] / (np.sqrt(v[j] / bc2) + eps)
    return x


# -- the rows of the problems running (fastadam's vectorized path) ---------------------------
def fun_rows(P, y):
    """``(f, gradient)`` of each row, with numpy over the rows."""
    a, mu, s, c = (P[:, k : k + 1] for k in range(4))
    d = T - mu
    inv = 1.0 / (s * s)
    e = np.exp(-0.5 * d * d * inv)
    r = a * e + c - y
    are = r * a * e * d * inv
    g = np.column_stack([np.sum(r * e, 1), np.sum(are, 1), np.sum(are * d / s, 1), np.sum(r, 1)])
    return 0.5 * np.sum(r * r, axis=1), g


def fastadam_compiled(x0, y, iters):
    import fastadam as fa

    return fa.minimize_batch(
        fun_and_grad, x0, args=(y, T[np.newaxis]), jac=True,
        options=dict(lr=LR, maxiter=iters, gtol=0.0, track_best=False),
    )  # fmt: skip


@njit(cache=True)
def fun_into(p, g, y, t):
    """The objective of one problem writing its gradient into ``g`` (the GPU's form, which
    the CPU takes too)."""
    return evaluate_into(p, y, t, g)


def fastadam_compiled_into(x0, y, iters):
    import fastadam as fa

    return fa.minimize_batch(
        fun_into, x0, args=(y, T[np.newaxis]), jac=True,
        options=dict(lr=LR, maxiter=iters, gtol=0.0, track_best=False),
    )  # fmt: skip


def fastadam_vectorized(x0, y, iters):
    import fastadam as fa

    return fa.minimize_batch(
        fun_rows, x0, args=(y,), jac=True,
        options=dict(lr=LR, maxiter=iters, gtol=0.0, track_best=False),
    )  # fmt: skip


def make_jax(iters):
    """``run(x0, y)`` with jax.vmap of an optax fori_loop (float64), or None without jax."""
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    t = jnp.asarray(T)
    opt = optax.adam(LR)

    def loss(p, y):
        r = p[0] * jnp.exp(-((t - p[1]) ** 2) / (2 * p[2] * p[2])) + p[3] - y
        return 0.5 * jnp.sum(r * r)

    grad = jax.grad(loss)

    def fit(p, y):
        def body(_, carry):
            p, state = carry
            updates, state = opt.update(grad(p, y), state)
            return optax.apply_updates(p, updates), state

        return jax.lax.fori_loop(0, iters, body, (p, opt.init(p)))[0]

    batched = jax.jit(jax.vmap(fit))

    def run(x0, y):
        return np.asarray(batched(jnp.asarray(x0), jnp.asarray(y)).block_until_ready())

    return run


def scipy_lbfgsb(x0, y):
    """A Python loop of scipy's L-BFGS-B (its default tolerances); returns
    ``(x, iterations per problem)``."""
    from scipy.optimize import minimize

    x = np.empty_like(x0)
    nit = np.empty(x0.shape[0], dtype=np.int64)
    for i in range(x0.shape[0]):
        res = minimize(fun_and_grad, x0[i], args=(y[i], T), jac=True, method="L-BFGS-B")
        x[i] = res.x
        nit[i] = res.nit
    return x, nit
