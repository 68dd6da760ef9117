"""The documentation's code, the figures script, the demo and the asv result check.

- Every ``python`` code block of the pages listed in ``PAGES`` runs, in order, in one
  namespace per page; a few results are then checked. GPU blocks run on numba's CUDA
  simulator (tests/conftest.py enables it), with the array size cut down.
- ``docs/make_figures.py`` draws every figure and reproduces the documented numbers.
- ``python -m fastadam --help`` lists the options; a tiny demo run prints both tables.
- ``asv_benchmarks/check_results.py`` fails a run with a failed benchmark or with none.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

#: Pages whose code blocks run, and replacements that keep GPU blocks small on the simulator.
PAGES = {
    "quickstart.md": [("n = 1_000_000", "n = 1_000")],
    "numba.md": [],
    "lr_t.md": [],
    "conventions.rst": [],
    "gpu.md": [("n = 1_000_000", "n = 1_000")],
}


def code_blocks(page):
    """The python code blocks of a Markdown (fenced) or reStructuredText page."""
    with open(os.path.join(DOCS, page)) as f:
        text = f.read()
    if page.endswith(".md"):
        return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    blocks = []
    for match in re.finditer(r"^\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", text, re.M):
        lines = match.group(1).splitlines()
        blocks.append("\n".join(line[3:] for line in lines) + "\n")
    return blocks


def _cuda_usable():
    try:
        from numba import cuda

        return cuda.is_available()
    except Exception:
        return False


def run_page(page, capsys):
    blocks = code_blocks(page)
    assert blocks, f"no python code block found in {page}"
    namespace = {"__name__": f"docs_{page.split('.')[0]}"}
    for code in blocks:
        if "cuda" in code and not _cuda_usable():
            pytest.skip("numba.cuda (or its simulator) is not available")
        for old, new in PAGES[page]:
            code = code.replace(old, new)
        exec(compile(code, f"docs/{page}", "exec"), namespace)
    capsys.readouterr()
    return namespace


def test_every_page_with_code_is_tested():
    pages = [p for p in os.listdir(DOCS) if p.endswith((".md", ".rst"))]
    for page in pages:
        if page in PAGES or page == "minimize.md":  # minimize.md: tests/test_minimize*.py
            continue
        assert not code_blocks(page), f"docs/{page} has code blocks that no test runs"


def test_quickstart(capsys):
    ns = run_page("quickstart.md", capsys)
    assert ns["opt"].t >= 1
    assert ns["res"].nit > 0
    x = ns["x"]
    host = x.copy_to_host() if hasattr(x, "copy_to_host") else x
    assert np.all(np.isfinite(host))


def test_numba_page(capsys):
    ns = run_page("numba.md", capsys)
    np.testing.assert_allclose(ns["w"], ns["w_true"], atol=1e-3)
    x = ns["x"].copy_to_host()
    np.testing.assert_allclose(x[[0, -1]], [-0.03, 0.03], rtol=1e-3)


def test_lr_t_page(capsys):
    ns = run_page("lr_t.md", capsys)
    x, y = ns["x"], ns["y"]
    assert np.max(np.abs(x - y)) / np.max(np.abs(x)) < 1e-12


def test_conventions_page(capsys):
    run_page("conventions.rst", capsys)


def test_figures_script(tmp_path):
    pytest.importorskip("matplotlib", reason="the docs extra (matplotlib) is not installed")
    sys.path.insert(0, DOCS)
    try:
        import make_figures
    finally:
        sys.path.remove(DOCS)
    facts = make_figures.main(str(tmp_path), quick=True)  # raises if a fact is off
    for key, value in make_figures.EXPECTED.items():
        assert facts[key] == value
    for name in ("lr_t", "rosenbrock", "bandwidth_cpu", "bandwidth_gpu"):
        path = tmp_path / f"{name}.png"
        assert path.stat().st_size > 5_000, name
    assert float(facts["b1zero_vs_optax"]) < 1e-12
    assert facts["beta1_one_error"].startswith("ValueError")


def _run_demo(*args):
    return subprocess.run(
        [sys.executable, "-m", "fastadam", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_demo_help():
    out = _run_demo("--help")
    assert out.returncode == 0, out.stderr
    for option in ("--problem", "--size", "--method", "--convention", "--device", "--quick"):
        assert option in out.stdout


def test_demo_quick_run():
    out = _run_demo("--quick", "--iters", "20")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "Summary" in text and "CPU kernel throughput" in text
    assert "[8/8]" in text  # progress: 2 problems x 2 methods x 2 conventions
    for word in ("logistic", "rosenbrock", "adam", "rmsprop", "pytorch", "keras"):
        assert word in text
    summary = text.split("Summary", 1)[1].split("CPU kernel throughput", 1)[0]
    rows = [line for line in summary.splitlines() if line.startswith(("logistic", "rosen"))]
    assert len(rows) == 8
    assert all(" 20 " in row for row in rows)  # iterations column


def test_demo_rejects_bad_options():
    assert _run_demo("--size", "1").returncode == 2
    assert _run_demo("--convention", "nope").returncode == 2


def test_asv_result_check(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "asv_benchmarks"))
    try:
        import check_results
    finally:
        sys.path.pop(0)
    results = tmp_path / "results"
    (results / "machine").mkdir(parents=True)
    (results / "benchmarks.json").write_text(json.dumps({"a.A.time_x": {}, "version": 2}))

    def write(values):
        data = {"results": {"a.A.time_x": [values, [["1", "2"]]]}}
        (results / "machine" / "abcdef12-existing.json").write_text(json.dumps(data))
        return check_results.main(["abcdef1234", "--results-dir", str(results)])

    assert write([1.0, float("nan")]) == 0  # one ran, one skipped
    assert write([1.0, None]) == 1  # a failure
    assert write([float("nan"), float("nan")]) == 1  # nothing ran


def test_readme_quickstart(capsys):
    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = re.findall(r"^```python\n(.*?)^```", f.read(), flags=re.S | re.M)
    assert blocks, "README.md has no python code block"
    namespace = {"__name__": "readme"}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), namespace)
    capsys.readouterr()
    assert namespace["res"].success
    np.testing.assert_allclose(namespace["res"].x, np.ones(5), atol=1e-3)


def test_gpu_page(capsys):
    ns = run_page("gpu.md", capsys)
    assert ns["opt"].t == 1
    assert ns["state"]["exp_avg.0"].dtype == np.float32
