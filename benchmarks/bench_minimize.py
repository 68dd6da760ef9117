"""Per-iteration cost of minimisation loops: extended Rosenbrock, Adam, float64.

Run from a clone: ``python benchmarks/bench_minimize.py`` (``--help`` for options).

Rows (each the best of ``--repeat`` runs of ``--iters`` Adam iterations, lr=1e-3, no early
stop; compile time excluded and, for fastadam's compiled path, reported separately):

numpy loop
    objective, gradient and the Adam update written with numpy in a Python loop.
naive numba loop
    one ``@njit`` function with the objective, gradient and a hand-written Adam update.
fastadam python path
    ``fastadam.minimize`` with numpy ``fun``/``jac`` (Python functions).
fastadam compiled path
    ``fastadam.minimize`` with ``@njit`` ``fun``/``jac`` (the whole loop compiled).
fastadam minimize_njit
    ``fastadam.minimize_njit`` called from a user's ``@njit`` function.
jax+optax fori_loop
    ``optax.adam`` in ``jax.lax.fori_loop`` under ``jax.jit`` (x64), when installed.
torch autograd loop
    ``torch.optim.Adam`` with autograd, when installed (fewer iterations, it is slow).

A second table gives the Python path's overhead: the time per iteration of
``fastadam.minimize`` minus the time of calling ``fun`` and ``jac`` themselves, n <= 1000.
"""

import argparse
import os
import platform
import sys
import time

import numpy as np
from numba import njit

import fastadam as fa

LR = 1e-3


def x0(n):
    x = np.ones(n)
    x[0::2] = -1.2
    return x


# -- the objective: extended (pairwise) Rosenbrock ---------------------------------------------


def f_np(x):
    a, b = x[0::2], x[1::2]
    return float(np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2))


def g_np(x):
    a, b = x[0::2], x[1::2]
    d = b - a * a
    g = np.empty_like(x)
    g[0::2] = -400.0 * a * d - 2.0 * (1.0 - a)
    g[1::2] = 200.0 * d
    return g


# The user's objective, written as a numba user would for speed: fastmath lets the sum
# vectorize (XLA reassociates jax's sum the same way). Used by every numba row.
@njit(cache=True, error_model="numpy", fastmath=True)
def f_nb(x):
    s = 0.0
    for i in range(x.size // 2):
        a = x[2 * i]
        d = x[2 * i + 1] - a * a
        s += 100.0 * d * d + (1.0 - a) * (1.0 - a)
    return s


@njit(cache=True, error_model="numpy", fastmath=True)
def g_nb(x):
    g = np.empty_like(x)
    for i in range(x.size // 2):
        a = x[2 * i]
        d = x[2 * i + 1] - a * a
        g[2 * i] = -400.0 * a * d - 2.0 * (1.0 - a)
        g[2 * i + 1] = 200.0 * d
    return g


# -- baselines -------------------------------------------------------------------------------


def numpy_loop(n, iters):
    x = x0(n)
    m = np.zeros(n)
    v = np.zeros(n)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, iters + 1):
        f_np(x)
        g = g_np(x)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x -= LR * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return x


@njit(cache=True)
def _naive(x, iters):
    n = x.size
    m = np.zeros(n)
    v = np.zeros(n)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, iters + 1):
        f_nb(x)
        g = g_nb(x)
        bc1 = 1 - b1**t
        bc2 = 1 - b2**t
        for i in range(n):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            x[i] -= LR * (m[i] / bc1) / (np.sqrt(v[i] / bc2) + eps)
    return x


def naive_numba(n, iters):
    return _naive(x0(n), iters)


def fastadam_python(n, iters):
    res = fa.minimize(f_np, x0(n), jac=g_np, options=dict(lr=LR, maxiter=iters, gtol=0))
    assert res.nit == iters and not res.compiled
    return res.x


def fastadam_compiled(n, iters):
    res = fa.minimize(f_nb, x0(n), jac=g_nb, options=dict(lr=LR, maxiter=iters, gtol=0))
    assert res.nit == iters and res.compiled
    return res.x


@njit
def _user(x, options):
    return fa.minimize_njit(f_nb, g_nb, x, (), options).x


def fastadam_njit(n, iters):
    return _user(x0(n), fa.njit_options("adam", lr=LR, maxiter=iters, gtol=0))


def make_jax(n, iters):
    try:
        import jax
        import optax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def f(x):
        a, b = x[0::2], x[1::2]
        return jnp.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2)

    opt = optax.adam(LR)
    grad = jax.value_and_grad(f)

    @jax.jit
    def run(x):
        def body(i, carry):
            x, state = carry
            _, g = grad(x)
            updates, state = opt.update(g, state)
            return optax.apply_updates(x, updates), state

        return jax.lax.fori_loop(0, iters, body, (x, opt.init(x)))[0]

    xj = jnp.asarray(x0(n))
    run(xj).block_until_ready()  # compile

    def call(n_, iters_):
        return np.asarray(run(xj).block_until_ready())

    return call


def make_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)

    def call(n, iters):
        x = torch.tensor(x0(n), requires_grad=True)
        opt = torch.optim.Adam([x], lr=LR)
        for _ in range(iters):
            opt.zero_grad()
            a, b = x[0::2], x[1::2]
            loss = torch.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2)
            loss.backward()
            opt.step()
        return x.detach().numpy()

    return call


def best_time(fn, n, iters, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n, iters)
        best = min(best, time.perf_counter() - t0)
    return best / iters * 1e6


def _overhead(fun, jac, n, iters, repeat):
    """Best-of-``repeat`` microseconds per iteration: (fun+jac calls, minimize)."""
    x = x0(n)
    fa.minimize(fun, x, jac=jac, options=dict(maxiter=5))
    best_calls = best_run = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(iters + 1):
            fun(x)
            jac(x)
        best_calls = min(best_calls, time.perf_counter() - t0)
        t0 = time.perf_counter()
        fa.minimize(fun, x, jac=jac, options=dict(lr=LR, maxiter=iters, gtol=0))
        best_run = min(best_run, time.perf_counter() - t0)
    return best_calls / iters * 1e6, best_run / iters * 1e6


def overhead_table(sizes, iters, repeat):
    print(f"\nPython-path overhead per iteration (best of {repeat}, {iters} iterations):")
    print("minimize's time per iteration minus the time of calling fun and jac themselves,")
    print("for trivial fun/jac (return a constant / a precomputed gradient: least noise)")
    print("and for the numpy Rosenbrock fun/jac")
    print(f"{'n':>8} {'trivial':>10} {'numpy f/g':>10} {'minimize':>10} {'overhead':>10}")
    for n in sizes:
        G = g_np(x0(n))

        def f_const(x):
            return 1.0

        def g_const(x, G=G):
            return G

        calls, run = _overhead(f_const, g_const, n, iters, repeat)
        print(f"{n:>8} {calls:>8.2f}us {'':>10} {run:>8.2f}us {run - calls:>8.2f}us")
        calls, run = _overhead(f_np, g_np, n, iters, repeat)
        print(f"{n:>8} {'':>10} {calls:>8.2f}us {run:>8.2f}us {run - calls:>8.2f}us")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    p.add_argument("--iters", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--torch-iters", type=int, default=1000)
    p.add_argument("--no-overhead", action="store_true", help="skip the overhead table")
    args = p.parse_args(argv)

    print(f"fastadam {fa.__version__}; numpy {np.__version__}; Python {sys.version.split()[0]}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"extended Rosenbrock, Adam lr={LR}, float64, {args.iters} iterations, microseconds")
    print(f"per iteration (best of {args.repeat})\n")

    # compile / warm up everything first, and report the compiled path's compile time
    for n in args.sizes:
        naive_numba(n, 2)
        fastadam_njit(n, 2)
    res = fa.minimize(f_nb, x0(4), jac=g_nb, options=dict(maxiter=2))
    print(f"fastadam compiled path: compile/load time {res.compile_time:.3f} s (first call)\n")

    rows = [
        ("numpy loop", numpy_loop),
        ("naive numba loop", naive_numba),
        ("fastadam python path", fastadam_python),
        ("fastadam compiled path", fastadam_compiled),
        ("fastadam minimize_njit", fastadam_njit),
    ]
    table = {name: [] for name, _ in rows}
    jax_row, torch_row = "jax+optax fori_loop", "torch autograd loop"
    torch_call = make_torch()
    for n in args.sizes:
        for name, fn in rows:
            table[name].append(best_time(fn, n, args.iters, args.repeat))
        jax_call = make_jax(n, args.iters)
        if jax_call is not None:
            table.setdefault(jax_row, []).append(best_time(jax_call, n, args.iters, args.repeat))
        if torch_call is not None:
            table.setdefault(torch_row, []).append(best_time(torch_call, n, args.torch_iters, 1))
    width = max(len(k) for k in table)
    print(f"{'':<{width}} " + " ".join(f"{'n=' + str(n):>12}" for n in args.sizes))
    for name, values in table.items():
        print(f"{name:<{width}} " + " ".join(f"{v:>10.2f}us" for v in values))
    if not args.no_overhead:
        overhead_table([10, 100, 1000], args.iters, args.repeat)


if __name__ == "__main__":
    main()
