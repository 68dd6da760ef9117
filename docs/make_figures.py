"""Compute the documentation's numbers and draw its figures, with fastadam itself.

Run by ``docs/conf.py`` at every build (nothing here is committed as a binary), or by hand::

    python docs/make_figures.py [--outdir DIR] [--quick] [--measure] [--record]

It returns (and prints) the numbers that the pages quote through MyST substitutions such as
``{{ lrt_t1 }}``, so every number in the text is the one computed here, and it checks the
facts that ``conventions.rst`` and ``lr_t.md`` state (for example lr_t/lr = 0.316 at
t = 1): a build whose numbers disagree with them fails.

Figures (PNG, in ``outdir``):

- ``lr_t.png``: lr_t/lr against t for a few betas; the step a steady gradient actually gets
  (with and without bias correction); a learning-rate schedule passed as a callable.
- ``rosenbrock.png``: Adam and RMSProp in several conventions on the 2-D Rosenbrock
  function: trajectories and loss curves.
- ``bandwidth_cpu.png``: achieved bandwidth of the CPU kernels against their memory
  skeletons and plain numpy, across sizes, from the recorded table
  ``docs/data/bandwidth_cpu.csv`` (``--record`` rewrites it on this machine; without a
  table, or with ``--measure``, it is measured during the build).
- ``bandwidth_gpu.png``: the same from the recorded GPU table ``docs/data/bandwidth_gpu.csv``.
- ``batch_fit.png``: batched Gaussian-peak fits, time per problem against B, from the table
  ``docs/data/batch_fit.csv`` that ``benchmarks/bench_batch.py --record`` writes.
"""

import argparse
import csv
import math
import os
import platform
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastadam as fa  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# the measurement helpers live with the asv suite (appended: an installed fastadam wins)
sys.path.append(os.path.dirname(HERE))
from asv_benchmarks import _common  # noqa: E402

DATA = os.path.join(HERE, "data")
DEFAULT_OUTDIR = os.path.join(HERE, "generated", "figures")
CPU_COLUMNS = ["kernel", "impl", "mode", "dtype", "elements", "seconds", "gbps"]

plt.rcParams.update(
    {
        "figure.dpi": 100,
        "savefig.dpi": 110,
        "font.size": 9,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.fontsize": 8,
        "legend.framealpha": 0.9,
    }
)


# -- lr_t --------------------------------------------------------------------------------
def lr_t_ratio(t, beta1=0.9, beta2=0.999):
    """lr_t / lr = sqrt(1 - beta2**t) / (1 - beta1**t), from fastadam's own coefficients.

    It is the ``step_size`` coefficient of the epsilon-hat form (Keras, TF1) at lr = 1.
    """
    coef = fa.kernels.adam_coefficients(
        t, lr=1.0, beta1=beta1, beta2=beta2, eps_hat=True, bias_correction=True
    )
    return coef.step_size


def steady_steps(make, n_steps, lr=None, g=0.5):
    """|theta_t - theta_{t-1}| for a steady gradient ``g``, for t = 1..n_steps."""
    x = np.zeros(1)
    grad = np.full(1, g)
    opt = make(x)
    out = np.empty(n_steps)
    prev = 0.0
    for t in range(n_steps):
        opt.step(grad)
        out[t] = abs(x[0] - prev)
        prev = x[0]
    return out


def lr_t_facts_and_figure(outdir, n_steps=6000):
    t = np.arange(1, 100_001)
    ratio = np.array([lr_t_ratio(int(k)) for k in t[:10_000]])
    i_min = int(np.argmin(ratio))
    first_099 = int(np.argmax(ratio >= 0.99)) + 1
    facts = {
        "lrt_t1": f"{ratio[0]:.3f}",
        "lrt_min": f"{ratio[i_min]:.3f}",
        "lrt_argmin": f"{i_min + 1}",
        "lrt_t100": f"{ratio[99]:.2f}",
        "lrt_t1000": f"{ratio[999]:.2f}",
        "lrt_first099": f"{first_099}",
    }
    lr = 1e-3
    alg1 = steady_steps(lambda x: fa.Adam(x, lr=lr), n_steps) / lr
    epshat = steady_steps(lambda x: fa.Adam(x, lr=lr, convention="keras"), n_steps) / lr
    nobc = steady_steps(lambda x: fa.Adam(x, lr=lr, bias_correction=False), n_steps) / lr
    i_peak = int(np.argmax(nobc))
    facts.update(
        {
            "step_alg1_dev": f"{np.max(np.abs(alg1 - 1)):.0e}",
            "step_epshat_dev": f"{np.max(np.abs(epshat - 1)):.0e}",
            "step_nobc_t1": f"{nobc[0]:.2f}",
            "step_nobc_max": f"{nobc[i_peak]:.2f}",
            "step_nobc_argmax": f"{i_peak + 1}",
            "step_nobc_t1000": f"{nobc[999]:.2f}",
        }
    )

    # a real schedule: linear warm-up then cosine decay, passed as a callable
    warm, total = 500, n_steps

    def schedule(k):
        if k <= warm:
            return lr * k / warm
        return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (k - warm) / (total - warm))))

    sched = steady_steps(lambda x: fa.Adam(x, lr=schedule), n_steps)
    target = np.array([schedule(k) for k in range(1, n_steps + 1)])
    mask = target > 0
    facts["step_schedule_dev"] = f"{np.max(np.abs(sched[mask] / target[mask] - 1)):.0e}"

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), layout="constrained")
    ax = axes[0]
    for (b1, b2), style in [
        ((0.9, 0.999), dict(color="C0", lw=2.2, label=r"$\beta_1=0.9,\ \beta_2=0.999$ (default)")),
        ((0.9, 0.99), dict(color="C1", label=r"$\beta_1=0.9,\ \beta_2=0.99$")),
        ((0.9, 0.9999), dict(color="C2", label=r"$\beta_1=0.9,\ \beta_2=0.9999$")),
        ((0.99, 0.999), dict(color="C3", label=r"$\beta_1=0.99,\ \beta_2=0.999$")),
        ((0.0, 0.999), dict(color="C4", ls="--", label=r"$\beta_1=0,\ \beta_2=0.999$")),
    ]:
        tt = np.unique(np.logspace(0, 5, 600).astype(int))
        ax.plot(tt, [lr_t_ratio(int(k), b1, b2) for k in tt], **style)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.plot([1], [ratio[0]], "o", color="C0")
    ax.annotate(
        f"t=1: {facts['lrt_t1']}",
        (1, ratio[0]),
        (1.6, 0.47),
        fontsize=8,
        arrowprops=dict(arrowstyle="->", lw=0.7),
    )
    ax.plot([i_min + 1], [ratio[i_min]], "o", color="C0")
    ax.annotate(
        f"min {facts['lrt_min']} at t={i_min + 1}",
        (i_min + 1, ratio[i_min]),
        (40, 0.015),
        fontsize=8,
        arrowprops=dict(arrowstyle="->", lw=0.7),
        bbox=dict(fc="white", ec="none", alpha=0.8),
    )
    ax.plot([first_099], [ratio[first_099 - 1]], "o", color="C0")
    ax.annotate(
        f"0.99 first at t={first_099}",
        (first_099, ratio[first_099 - 1]),
        (150, 1.12),
        fontsize=8,
        arrowprops=dict(arrowstyle="->", lw=0.7),
    )
    ax.set_xscale("log")
    ax.set_ylim(0, 1.4)
    ax.set_xlabel("step t")
    ax.set_ylabel(r"$lr_t / lr = \sqrt{1-\beta_2^t}\,/\,(1-\beta_1^t)$")
    ax.set_title(r"the TF documentation's $lr_t$ (a bias correction)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7)

    ax = axes[1]
    steps = np.arange(1, n_steps + 1)
    ax.plot(steps, nobc, color="C3", label="bias_correction=False")
    ax.plot(
        steps,
        [1 / lr_t_ratio(int(k)) for k in steps],
        color="k",
        ls=":",
        lw=1,
        label=r"$lr / lr_t$",
    )
    ax.plot(steps, alg1, color="C0", lw=2.2, label="Adam (pytorch: Algorithm 1)")
    ax.plot(steps, epshat, color="C2", ls="--", label="Adam (keras: uses $lr_t$)")
    ax.set_xscale("log")
    ax.set_ylim(0, 7.5)
    ax.set_xlabel("step t")
    ax.set_ylabel(r"step $|\Delta\theta_t|$ / lr")
    ax.set_title("the step a steady gradient gets (lr fixed)")
    ax.legend(loc="upper right")

    ax = axes[2]
    ax.plot(steps, target / lr, color="k", lw=3, alpha=0.35, label="lr(t) / lr(peak)")
    ax.plot(steps, sched / lr, color="C0", label=r"step $|\Delta\theta_t|$ / lr(peak)")
    ax.set_xlabel("step t")
    ax.set_ylim(0, 1.15)
    ax.set_title("a real schedule: Adam(x, lr=callable)")
    ax.legend(loc="upper right")
    fig.savefig(os.path.join(outdir, "lr_t.png"))
    plt.close(fig)
    return facts


# -- Adam vs RMSProp ---------------------------------------------------------------------
def relations_facts(n=1000, steps=50):
    """Numbers for 'how Adam relates to RMSProp', each computed by running fastadam."""
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((max(steps, 1000), n))

    def run(make, k=steps, record=False):
        x = np.zeros(n)
        opt = make(x)
        deltas = []
        for t in range(k):
            before = x.copy() if record else None
            opt.step(grads[t % len(grads)].copy())
            if record:
                deltas.append(np.abs(x - before).mean())
        return x.copy(), np.array(deltas)

    facts = {}
    a, _ = run(lambda x: fa.Adam(x, lr=1e-3, betas=(0.0, 0.999), eps=0.1))
    o, _ = run(
        lambda x: fa.RMSProp(
            x,
            lr=1e-3,
            decay=0.999,
            eps=0.1,
            convention="optax",
            eps_in_sqrt=False,
            bias_correction=True,
        )
    )
    facts["b1zero_vs_optax"] = f"{np.max(np.abs(a - o)) / np.max(np.abs(a)):.0e}"

    k = 1000
    _, da = run(lambda x: fa.Adam(x, lr=1e-3, betas=(0.0, 0.999)), k, record=True)
    _, dr = run(lambda x: fa.RMSProp(x, lr=1e-3, decay=0.999), k, record=True)
    ratio = dr / da  # PyTorch RMSProp's step over Adam(beta1=0)'s
    facts.update(
        {
            "torch_over_b1zero_t1": f"{ratio[0]:.1f}",
            "torch_over_b1zero_t100": f"{ratio[99]:.2f}",
            "torch_over_b1zero_t1000": f"{ratio[999]:.2f}",
        }
    )

    try:
        fa.Adam(np.zeros(2), betas=(1.0, 0.999))
        facts["beta1_one_error"] = "(no error: this is a bug)"
    except ValueError as exc:
        # shown as Markdown: escape the ** of beta1**t
        facts["beta1_one_error"] = f"ValueError: {exc}".replace("*", "\\*")

    a, _ = run(lambda x: fa.Adam(x, lr=1e-3, betas=(0.9, 0.99)))
    m1, _ = run(lambda x: fa.RMSProp(x, lr=1e-3, decay=0.99, momentum=0.9))
    m2, _ = run(lambda x: fa.RMSProp(x, lr=1e-4, decay=0.99, momentum=0.9))
    facts["momentum_vs_b1_same_lr"] = f"{np.linalg.norm(a - m1) / np.linalg.norm(a):.1f}"
    facts["momentum_vs_b1_scaled_lr"] = f"{np.linalg.norm(a - m2) / np.linalg.norm(a):.1f}"
    return facts


# -- Rosenbrock --------------------------------------------------------------------------
def _rosen(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def _rosen_grad(p):
    x, y = p
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


ROSEN_RUNS = [
    ("Adam (pytorch)", lambda x: fa.Adam(x, lr=2e-2), dict(color="C0", lw=2.2)),
    ("Adam (keras)", lambda x: fa.Adam(x, lr=2e-2, convention="keras"), dict(color="C9", ls="--")),
    (
        "Adam, bias_correction=False",
        lambda x: fa.Adam(x, lr=2e-2, bias_correction=False),
        dict(color="C4"),
    ),
    ("RMSProp (pytorch)", lambda x: fa.RMSProp(x, lr=2e-3), dict(color="C3", lw=2.2)),
    (
        "RMSProp (keras)",
        lambda x: fa.RMSProp(x, lr=2e-3, convention="keras"),
        dict(color="C1", ls="--"),
    ),
    (
        "RMSProp (tf1: v starts at 1)",
        lambda x: fa.RMSProp(x, lr=2e-3, convention="tf1"),
        dict(color="C5"),
    ),
    (
        "RMSProp (pytorch), momentum=0.9",
        lambda x: fa.RMSProp(x, lr=5e-4, momentum=0.9),
        dict(color="C2"),
    ),
]


def rosenbrock_figure(outdir, n_steps=3000):
    x0 = np.array([-1.5, 2.0])
    fig, (ax, zx, bx) = plt.subplots(
        1,
        3,
        figsize=(14, 4.9),
        layout="constrained",
        gridspec_kw=dict(width_ratios=[1.25, 1, 1.25]),
    )
    for a, (lo, hi, lo_y, hi_y) in (
        (ax, (-2.0, 2.0, -1.0, 3.0)),
        (zx, (-1.55, -1.25, 1.62, 2.17)),
    ):
        xs, ys = np.meshgrid(np.linspace(lo, hi, 400), np.linspace(lo_y, hi_y, 400))
        a.contour(
            xs, ys, _rosen(xs, ys), levels=np.logspace(-1, 3.5, 16), colors="0.78", linewidths=0.6
        )
        a.set_xlim(lo, hi)
        a.set_ylim(lo_y, hi_y)
        a.set_xlabel("x")
        a.set_ylabel("y")
    marks = [m for m in (100, 1000) if m < n_steps]
    zoom_steps = min(60, n_steps)
    for label, make, style in ROSEN_RUNS:
        x = x0.copy()
        opt = make(x)
        path = np.empty((n_steps + 1, 2))
        loss = np.empty(n_steps + 1)
        path[0], loss[0] = x, _rosen(*x)
        for k in range(1, n_steps + 1):
            opt.step(_rosen_grad(x))
            path[k], loss[k] = x, _rosen(*x)
        ax.plot(path[:, 0], path[:, 1], **style)
        ax.plot(
            path[marks, 0],
            path[marks, 1],
            ls="none",
            marker="o",
            ms=5,
            color=style["color"],
            mec="k",
            mew=0.5,
        )
        zx.plot(path[: zoom_steps + 1, 0], path[: zoom_steps + 1, 1], marker=".", ms=3, **style)
        bx.plot(
            np.arange(n_steps + 1),
            np.maximum(loss, 1e-30),
            label=f"{label}: final loss {loss[-1]:.1e}",
            **style,
        )
    for a in (ax, zx):
        a.plot(*x0, "ko", ms=6, zorder=5)
    ax.annotate("start", x0, (-1.95, 2.25), fontsize=8)
    ax.plot(1, 1, "k*", ms=12, zorder=5)
    ax.annotate("minimum (1, 1)", (1, 1), (1.05, 0.55), fontsize=8)
    ax.set_title(f"trajectories, {n_steps} steps (dots: steps {', '.join(map(str, marks))})")
    zx.set_title(f"the first {zoom_steps} steps (one dot per step)")
    bx.set_yscale("log")
    bx.set_xlabel("step")
    bx.set_ylabel("loss")
    bx.set_title("loss")
    fig.legend(loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(
        "2-D Rosenbrock from (-1.5, 2): Adam and RMSProp in several conventions "
        "(lr: Adam 0.02, RMSProp 0.002, RMSProp with momentum 0.0005)",
        fontsize=10,
    )
    fig.savefig(os.path.join(outdir, "rosenbrock.png"))
    plt.close(fig)
    return {"rosen_steps": str(n_steps)}


# -- bandwidth ---------------------------------------------------------------------------
def measure_cpu(sizes, dtype="float32", min_time=0.01):
    """Rows (dicts with CPU_COLUMNS) measured now with asv_benchmarks/_common.py."""
    rows = []
    for kernel in ("adam", "rmsprop"):
        for n in sizes:
            for impl, modes in (
                ("fastadam", ("serial", "parallel")),
                ("skeleton", ("serial", "parallel")),
                ("numpy", ("serial",)),
            ):
                for mode in modes:
                    step, arrays = _common.kernel_case(kernel, dtype, n, mode, impl=impl)
                    t = _common.best_time(step, min_time=min_time)
                    del arrays
                    rows.append(
                        dict(
                            kernel=kernel,
                            impl=impl,
                            mode=mode,
                            dtype=dtype,
                            elements=n,
                            seconds=t,
                            gbps=_common.bytes_per_step(kernel, n, dtype) / t / 1e9,
                        )
                    )
    return rows


def read_table(path):
    """Rows of a recorded CSV (``#`` lines are comments), or [] when there is none."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    rows = list(csv.DictReader(lines))
    for r in rows:
        r["elements"] = int(r["elements"])
        r["gbps"] = float(r["gbps"])
    return rows


def _bandwidth_axes(axes, rows, title_suffix):
    styles = {
        ("fastadam", "serial"): dict(color="C0", marker="o", label="fastadam, serial"),
        ("fastadam", "parallel"): dict(
            color="C0", marker="s", ls="--", label="fastadam, parallel"
        ),
        ("skeleton", "serial"): dict(color="0.4", marker="o", lw=1, label="skeleton, serial"),
        ("skeleton", "parallel"): dict(
            color="0.4", marker="s", ls="--", lw=1, label="skeleton, parallel"
        ),
        ("numpy", "serial"): dict(color="C3", marker="^", label="plain numpy"),
        ("copy", "device"): dict(  # numba's copy_to_device: ~120 µs of host time per call
            color="0.4", marker="o", lw=1, label="device copy (ceiling for large arrays)"
        ),
        ("fastadam", "device"): dict(color="C0", marker="o", label="fastadam"),
        ("torch-fused", "device"): dict(color="C1", marker="^", label="torch fused"),
        ("torch-foreach", "device"): dict(color="C1", marker="^", ls=":", label="torch foreach"),
        ("optax", "device"): dict(color="C2", marker="v", label="optax (jax.jit)"),
    }
    for ax, kernel in zip(axes, ("adam", "rmsprop"), strict=True):
        for (impl, mode), style in styles.items():
            pts = sorted(
                (r["elements"], r["gbps"])
                for r in rows
                if r["kernel"] == kernel and r["impl"] == impl and r["mode"] == mode
            )
            if pts:
                ax.plot(*zip(*pts, strict=True), **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("elements per array")
        ax.set_ylabel("GB/s (bytes read + written)")
        ax.set_title(f"{'Adam' if kernel == 'adam' else 'RMSProp'}{title_suffix}")
        ax.legend(loc="lower right")


def machine_description():
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {numba.get_num_threads()} numba threads"


def record_cpu(path=None, sizes=(10**3, 10**4, 10**5, 10**6, 10**7)):
    """Measure the CPU table and write it as CSV (the recorded table of the docs)."""
    path = path or os.path.join(DATA, "bandwidth_cpu.csv")
    rows = measure_cpu(list(sizes), min_time=0.05)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(f"# machine: {machine_description()}\n")
        f.write(f"# date: {time.strftime('%Y-%m-%d')}, fastadam {fa.__version__}\n")
        f.write("# written by: python docs/make_figures.py --record\n")
        writer = csv.DictWriter(f, CPU_COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, "seconds": f"{r['seconds']:.4g}", "gbps": f"{r['gbps']:.4g}"})
    return path


def _comments(path):
    with open(path) as f:
        return [ln[1:].strip() for ln in f if ln.lstrip().startswith("#")]


def _no_data(fig, axes, text):
    for ax in axes:
        ax.set_axis_off()
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12)


def bandwidth_figures(outdir, measure=None, quick=False):
    """``measure``: True measures now, False plots the recorded table, None (default) plots
    the recorded table when there is one and measures otherwise."""
    facts = {}
    recorded = os.path.join(DATA, "bandwidth_cpu.csv")
    if measure is None:
        measure = quick or not os.path.exists(recorded)
    if measure:
        sizes = [10**3, 10**4] if quick else [10**3, 10**4, 10**5, 10**6, 10**7]
        rows = measure_cpu(sizes, min_time=0.002 if quick else 0.01)
        where = f"measured while building these docs on {machine_description()}, " + (
            time.strftime("%Y-%m-%d")
        )
    else:
        rows = read_table(recorded)
        info = [c for c in _comments(recorded) if c.startswith(("machine", "date"))]
        where = "recorded in docs/data/bandwidth_cpu.csv: " + "; ".join(info)
    facts["cpu_bandwidth_source"] = where
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
    if rows:
        _bandwidth_axes(axes, rows, ", float32, CPU")
        fig.suptitle(f"CPU kernels, {where}", fontsize=8)
    else:
        _no_data(fig, axes, "No CPU table recorded in docs/data/bandwidth_cpu.csv")
    fig.savefig(os.path.join(outdir, "bandwidth_cpu.png"))
    plt.close(fig)

    gpu_path = os.path.join(DATA, "bandwidth_gpu.csv")
    gpu = read_table(gpu_path)
    if gpu:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), layout="constrained")
        device = gpu[0].get("device", "GPU")
        _bandwidth_axes(axes, gpu, f", {gpu[0].get('dtype', '')}, {device}")
        info = "; ".join(c for c in _comments(gpu_path) if c.startswith(("machine", "date")))
        fig.suptitle(f"GPU, recorded in docs/data/bandwidth_gpu.csv: {info}", fontsize=8)
        facts["gpu_bandwidth_source"] = f"{device}, recorded in docs/data/bandwidth_gpu.csv"
    else:
        fig = plt.figure(figsize=(7, 0.8))
        fig.text(
            0.5,
            0.5,
            "No GPU measurements recorded yet in docs/data/bandwidth_gpu.csv",
            ha="center",
            va="center",
            fontsize=10,
        )
        facts["gpu_bandwidth_source"] = "no GPU table recorded yet"
    fig.savefig(os.path.join(outdir, "bandwidth_gpu.png"))
    plt.close(fig)
    return facts


def batch_figure(outdir):
    """``batch_fit.png``: time per problem against B for the batched-fit contenders, from
    the table ``benchmarks/bench_batch.py --record`` wrote (docs/data/batch_fit.csv)."""
    path = os.path.join(DATA, "batch_fit.csv")
    if not os.path.exists(path):
        fig = plt.figure(figsize=(7, 0.8))
        fig.text(0.5, 0.5, "No table recorded yet in docs/data/batch_fit.csv", ha="center")
        fig.savefig(os.path.join(outdir, "batch_fit.png"))
        plt.close(fig)
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(ln for ln in f if not ln.lstrip().startswith("#")))
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    names = list(dict.fromkeys(r["contender"] for r in rows))
    for k, name in enumerate(names):
        mine = [r for r in rows if r["contender"] == name]
        b = [int(r["problems"]) for r in mine]
        us = [float(r["us_per_problem"]) for r in mine]
        ax.plot(b, us, marker="os^vD"[k % 5], label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("problems B")
    ax.set_ylabel(f"microseconds per problem ({rows[0]['iterations']} Adam iterations)")
    ax.legend()
    ax.set_title("; ".join(_comments(path)), fontsize=8)
    fig.savefig(os.path.join(outdir, "batch_fit.png"))
    plt.close(fig)
    return {}


# -- checks and entry point --------------------------------------------------------------
#: Facts the pages state (lr_t.md, conventions.rst; default betas); checked at every build.
EXPECTED = {
    "lrt_t1": "0.316",
    "lrt_min": "0.152",
    "lrt_argmin": "12",
    "lrt_t100": "0.31",
    "lrt_t1000": "0.80",
    "lrt_first099": "3916",
}


def check(facts):
    wrong = {k: (facts[k], v) for k, v in EXPECTED.items() if facts[k] != v}
    if wrong:
        raise AssertionError(f"computed facts differ from the documented ones: {wrong}")
    # eps moves the steady step by about eps / |g| (1e-7 / 0.5 for keras' eps at t = 1)
    for key in ("step_alg1_dev", "step_epshat_dev", "step_schedule_dev"):
        if float(facts[key]) > 1e-5:
            raise AssertionError(f"{key} = {facts[key]}: the step does not follow lr")
    if float(facts["b1zero_vs_optax"]) > 1e-12:
        raise AssertionError("Adam(beta1=0) differs from optax RMSProp with bias correction")
    if not facts["beta1_one_error"].startswith("ValueError"):
        raise AssertionError("Adam(betas=(1, ...)) was accepted")


def main(outdir=DEFAULT_OUTDIR, measure=None, quick=False):
    """Draw every figure into ``outdir``; return the substitutions for the pages."""
    os.makedirs(outdir, exist_ok=True)
    facts = {}
    facts.update(lr_t_facts_and_figure(outdir, n_steps=1500 if quick else 6000))
    facts.update(relations_facts())
    facts.update(rosenbrock_figure(outdir, n_steps=300 if quick else 3000))
    facts.update(bandwidth_figures(outdir, measure=measure, quick=quick))
    facts.update(batch_figure(outdir))
    check(facts)
    return facts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", default=DEFAULT_OUTDIR)
    parser.add_argument("--quick", action="store_true", help="fewer steps and sizes (tests)")
    parser.add_argument(
        "--measure",
        action="store_true",
        help="measure the CPU bandwidth now, even if a table is recorded",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="measure the CPU table and write docs/data/bandwidth_cpu.csv",
    )
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.record:
        print(f"recorded {record_cpu()}", file=sys.stderr)
    result = main(args.outdir, measure=True if args.measure else None, quick=args.quick)
    for key, value in result.items():
        print(f"{key:28s} {value}")
    print(f"figures in {args.outdir} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
