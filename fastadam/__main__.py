"""``python -m fastadam``: a quick demonstration on this machine."""

import time

import numpy as np

import fastadam as fa


def main():
    rng = np.random.default_rng(0)
    n = 1_000_000
    target = rng.standard_normal(n)
    for name, make in [
        ("Adam (pytorch)", lambda x: fa.Adam(x, lr=1e-2)),
        ("Adam (keras)", lambda x: fa.Adam(x, lr=1e-2, convention="keras")),
        ("RMSProp (pytorch)", lambda x: fa.RMSProp(x, lr=1e-3)),
        ("RMSProp (keras, centered)", lambda x: fa.RMSProp(x, convention="keras", centered=True)),
    ]:
        x = np.zeros(n)
        opt = make(x)
        opt.step(x - target)  # compile outside the timing
        t0 = time.perf_counter()
        for _ in range(499):
            opt.step(x - target)
        dt = time.perf_counter() - t0
        loss = 0.5 * np.mean((x - target) ** 2)
        print(
            f"{name:28s} 500 steps on {n:,} elements: "
            f"loss {loss:.3e}, {dt / 499 * 1e3:.2f} ms/step"
        )


if __name__ == "__main__":
    main()
