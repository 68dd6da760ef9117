"""The documentation's code, the figures script, the demo and the asv result check.

- Every ``python`` code block of the pages listed in ``PAGES`` runs, in order, in one
  namespace per page, and each page's test checks what its blocks computed (the value of
  each top-level expression statement is kept, as a REPL would show it). GPU blocks run on
  numba's CUDA simulator (tests/conftest.py enables it), with the array size cut down.
- Every code block of every page in docs/ is one of those, or a shell block whose commands
  are checked (scripts and files exist, options and asv subcommands exist, extras exist in
  pyproject.toml), or a ``text`` listing of output; any other kind fails the test.
- ``docs/make_figures.py`` draws every figure and reproduces the documented numbers.
- ``python -m fastadam --help`` lists the options; a tiny demo run prints both tables.
- ``asv_benchmarks/check_results.py`` fails a run with a failed benchmark or with none.
"""

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap

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
    "minimize.md": [],
    "dask.md": [],
    # the GPU example on the CUDA simulator (each device thread is a Python thread): 2 peaks
    "batch.md": [
        ("cuda.to_device(x0),", "cuda.to_device(x0[:2]),"),
        (
            "args=(y, t[np.newaxis]),\n    jac=True,\n    options=dict(lr=0.05, maxiter=3000",
            "args=(y[:2], t[np.newaxis]),\n    jac=True,\n    options=dict(lr=0.05, maxiter=3000",
        ),
    ],
}

#: Languages of code blocks that are output, not code (nothing to run).
OUTPUT_LANGUAGES = {"text"}
#: Languages of shell blocks (checked by test_shell_blocks).
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}


def find_blocks(text, markdown, lines=False):
    """Every code block of a Markdown or reStructuredText text: (language, code) pairs, or
    with ``lines`` (language, code, line of the text where the code starts) triples.

    Markdown: fenced blocks, indented ones included (MyST directives such as ``{figure}``
    are not code). rst: ``code-block``/``code``/``sourcecode`` directives, and ``::``
    literal blocks (language ``""``).
    """
    blocks = []
    if markdown:
        fence = r"^([ \t]*)(`{3,}|~{3,})([^\n]*)\n(.*?)^[ \t]*\2[ \t]*$"
        for match in re.finditer(fence, text, re.S | re.M):
            lang = match.group(3).strip()
            if not lang.startswith("{"):
                line = text.count("\n", 0, match.start(4)) + 1
                blocks.append((lang, textwrap.dedent(match.group(4)), line))
        return blocks if lines else [b[:2] for b in blocks]
    directive = r"^([ \t]*)\.\. (?:code-block|code|sourcecode)::[ \t]*(\S*)[^\n]*\n"
    literal = r"^([ \t]*)(?![ \t]|\.\. )[^\n]*::[ \t]*\n"
    for match in re.finditer(f"{directive}|{literal}", text, re.M):
        is_directive = match.group(1) is not None
        indent = match.group(1) if is_directive else match.group(3)
        lang = match.group(2) if is_directive else ""
        body, first = [], None
        after = text.count("\n", 0, match.end()) + 1  # the line after the directive
        for i, line in enumerate(text[match.end() :].splitlines()):
            if line.strip() and not line.startswith(indent + " "):
                break
            if is_directive and not body and line.lstrip().startswith(":"):
                continue  # a directive option
            if first is None and line.strip():
                first = after + i
            body.append(line)
        code = textwrap.dedent("\n".join(body)).strip("\n")
        if code.strip():
            blocks.append((lang, code + "\n", first))
    return blocks if lines else [b[:2] for b in blocks]


def all_blocks(page, lines=False):
    """Every code block of the page docs/<page>: (language, code[, line]) tuples."""
    with open(os.path.join(DOCS, page)) as f:
        return find_blocks(f.read(), page.endswith(".md"), lines)


def code_blocks(page):
    """The python code blocks of a page, each preceded by blank lines so that its line
    numbers (in tracebacks, numba's errors) are the page's."""
    return [
        "\n" * (line - 1) + code
        for lang, code, line in all_blocks(page, lines=True)
        if lang == "python"
    ]


def _cuda_usable():
    try:
        from numba import cuda

        return cuda.is_available()
    except Exception:
        return False


def _exec_keeping_values(code, filename, namespace):
    """Run ``code`` statement by statement; return the values of its top-level expression
    statements (what a REPL would display), in order."""
    values = []
    for node in ast.parse(code, filename).body:
        if isinstance(node, ast.Expr):
            expr = ast.Expression(node.value)
            values.append(eval(compile(expr, filename, "eval"), namespace))
        else:
            exec(compile(ast.Module([node], type_ignores=[]), filename, "exec"), namespace)
    return values


def run_page(page, capsys, tmp_path=None):
    """Run the page's python blocks in one namespace; ``namespace["_values"]`` holds the
    values of their top-level expression statements.

    With ``tmp_path``, the code is compiled as if from a copy of the page there, so numba's
    cache of the ``@njit(cache=True)`` functions the page defines (their source file is the
    page) goes to ``tmp_path`` and not to docs/, and is never loaded by a later run.
    """
    blocks = code_blocks(page)
    assert blocks, f"no python code block found in {page}"
    filename = os.path.join(DOCS, page)
    if tmp_path is not None:
        filename = str(shutil.copy(filename, tmp_path / page))
    namespace = {"__name__": f"docs_{page.split('.')[0]}"}
    values = []
    for code in blocks:
        if "cuda" in code and not _cuda_usable():
            pytest.skip("numba.cuda (or its simulator) is not available")
        for old, new in PAGES[page]:
            code = code.replace(old, new)
        values += _exec_keeping_values(code, filename, namespace)
    capsys.readouterr()
    namespace["_values"] = values
    return namespace


def test_every_code_block_is_tested():
    """Every page's code blocks: python ones on a page that PAGES runs, shell ones checked by
    test_shell_blocks, output listings; nothing else."""
    pages = sorted(p for p in os.listdir(DOCS) if p.endswith((".md", ".rst")))
    assert "conventions.rst" in pages and "minimize.md" in pages
    known = {"python"} | SHELL_LANGUAGES | OUTPUT_LANGUAGES
    for page in pages:
        for lang, _code in all_blocks(page):
            assert lang in known, f"docs/{page}: a {lang or 'literal'!r} block no test runs"
            if lang == "python":
                assert page in PAGES, f"docs/{page} has python blocks that no test runs"
    for page in PAGES:
        assert code_blocks(page), f"docs/{page} is in PAGES but has no python block"


def test_block_finder():
    """find_blocks finds fenced, directive and literal blocks, not MyST directives."""
    md = (
        "a\n\n```python\nx = 1\n```\n\n```{figure} f.png\n:width: 1\n```\n\n"
        "  ~~~bash\n  ls\n  ~~~\n"
    )
    assert find_blocks(md, markdown=True) == [("python", "x = 1\n"), ("bash", "ls\n")]
    rst = (
        "Text::\n\n   literal\n\n.. code-block:: python\n   :caption: c\n\n   y = 2\n"
        "   if y:\n       z = 3\n\nend\n\n.. list-table::\n   :header-rows: 1\n"
    )
    assert find_blocks(rst, markdown=False) == [
        ("", "literal\n"),
        ("python", "y = 2\nif y:\n    z = 3\n"),
    ]
    assert [b[2] for b in find_blocks(md, True, lines=True)] == [4, 12]
    assert [b[2] for b in find_blocks(rst, False, lines=True)] == [3, 8]


def _shell_commands():
    """(page, words) of every command of every shell block in docs/ (``&&`` splits
    commands, ``$(...)`` becomes one word, comments are dropped)."""
    commands = []
    for page in sorted(os.listdir(DOCS)):
        if not page.endswith((".md", ".rst")):
            continue
        for lang, code in all_blocks(page):
            if lang not in SHELL_LANGUAGES:
                continue
            for line in code.splitlines():
                line = re.sub(r"\$\([^)]*\)", "SUBSTITUTED", line)
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    if words:
                        commands.append((page, words))
    return commands


def _extras():
    """The optional-dependency groups of pyproject.toml."""
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        text = f.read()
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([A-Za-z0-9_-]+)\s*=", section, re.M))


def _help(*cmd):
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, f"{' '.join(cmd)} --help failed:\n{out.stderr}"
    return out.stdout


def test_shell_blocks():
    """Each command of the docs' shell blocks is checked without being run (they install
    packages, run the benchmarks for minutes or need a GPU; CI runs the asv ones):
    ``pip install`` names existing extras, ``python -m fastadam`` and the scripts exist and
    accept the options given, ``asv`` subcommands and their options exist, shell scripts
    parse (``bash -n``)."""
    commands = _shell_commands()
    assert len(commands) >= 10, commands  # benchmarks.md, performance.md, quickstart.md
    extras = _extras()
    helps = {}
    programs = set()
    for page, words in commands:
        where = f"docs/{page}: {' '.join(words)}"
        program, args = words[0], words[1:]
        programs.add(program)
        options = [a.split("=")[0] for a in args if a.startswith("--")]
        if program in ("python", "python3") and args[:3] == ["-m", "pip", "install"]:
            for target in args[3:]:
                if target.startswith("-"):
                    continue
                match = re.fullmatch(r"(\.|fastadam)(?:\[([\w,-]+)\])?", target)
                assert match, where
                assert set(filter(None, (match.group(2) or "").split(","))) <= extras, where
        elif program in ("python", "python3") and args[:2] == ["-m", "fastadam"]:
            if "fastadam" not in helps:
                helps["fastadam"] = _help(sys.executable, "-m", "fastadam")
            for option in options:
                assert option in helps["fastadam"], where
        elif program in ("python", "python3"):
            script = os.path.join(ROOT, args[0])
            assert args[0].endswith(".py") and os.path.isfile(script), where
            with open(script) as f:
                source = f.read()
            for option in options:
                assert f'"{option}"' in source, f"{where}: {option} not in {args[0]}"
        elif program == "asv":
            if shutil.which("asv") is None:
                continue  # the bench extra is not installed
            sub = args[0]
            if sub not in helps:
                helps[sub] = _help("asv", sub)
            for option in options:
                assert option in helps[sub], where
        elif program == "bash":
            script = os.path.join(ROOT, args[0])
            assert os.path.isfile(script), where
            assert subprocess.run(["bash", "-n", script]).returncode == 0, where
        else:
            pytest.fail(f"{where}: no check for {program!r} commands")
    assert {"python", "asv", "bash"} <= programs


def _page_formulas(page):
    """The LaTeX of every formula of a docs page: rst ``:math:`` roles and ``.. math::``
    directives, MyST ``$...$`` and ``$$...$$`` (outside code)."""
    with open(os.path.join(DOCS, page)) as f:
        text = f.read()
    if page.endswith(".rst"):
        inline = re.findall(r":math:`([^`]*)`", text)
        blocks = [
            textwrap.dedent(m.group(1)).strip()
            for m in re.finditer(r"^\.\. math::[^\n]*\n\n((?:(?:[ \t]+.*)?\n)+)", text, re.M)
        ]
        return [(f, False) for f in inline] + [(f, True) for f in blocks]
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", text, flags=re.S | re.M)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    blocks = re.findall(r"\$\$(.*?)\$\$", text, re.S)
    inline = re.findall(r"\$([^$\n]+)\$", re.sub(r"\$\$(.*?)\$\$", "", text, flags=re.S))
    return [(f, False) for f in inline] + [(f, True) for f in blocks]


def test_math_is_rendered_offline():
    """The HTML docs render formulas to MathML at build time (docs/_ext/mathml.py) instead of
    loading MathJax from a CDN, and every formula of the pages converts without leftovers
    (the -W build would fail on one that does not)."""
    with open(os.path.join(DOCS, "conf.py")) as f:
        conf = f.read()
    assert "sphinx.ext.mathjax" not in conf and "mathjax_path" not in conf
    assert re.search(r'^html_math_renderer = "mathml"$', conf, re.M)
    assert re.search(r'^    "mathml",$', conf, re.M)  # in extensions
    pytest.importorskip("latex2mathml", reason="the docs extra (latex2mathml) is missing")
    sys.path.insert(0, os.path.join(DOCS, "_ext"))
    try:
        import mathml
    finally:
        sys.path.remove(os.path.join(DOCS, "_ext"))
    count = 0
    for page in sorted(os.listdir(DOCS)):
        if page.endswith((".md", ".rst")):
            for latex, display in _page_formulas(page):
                tex = mathml.display_latex(latex) if display else latex
                out = mathml.latex_to_mathml(tex, display)  # raises on leftovers
                assert out.startswith("<math ") and out.endswith("</math>"), (page, latex)
                count += 1
    assert count > 50
    with pytest.raises(ValueError, match=r"\\unknowncommand"):
        mathml.latex_to_mathml(r"x + \unknowncommand{y}", False)
    out = mathml.latex_to_mathml(r"a \text{(Kingma \& Ba)}", False)
    assert "Kingma&#x000A0;&amp;&#x000A0;Ba" in out or "Kingma &amp; Ba" in out
    split = mathml.display_latex("a &= b \\\\\n c &= d\n\ne = f")
    assert (
        split == r"\begin{aligned}\begin{split}a &= b \\"
        "\n"
        r" c &= d\end{split}\\e = f\end{aligned}"
    )


def _check_html():
    sys.path.insert(0, DOCS)
    try:
        import check_html
    finally:
        sys.path.remove(DOCS)
    return check_html


def test_check_html(tmp_path):
    """docs/check_html.py (run by CI on the built site) passes a site that works offline
    and names what is wrong with one that does not."""
    check_html = _check_html()
    site = tmp_path / "html"
    (site / "_static").mkdir(parents=True)
    (site / "_static" / "doctools.js").write_text("")
    (site / "_static" / "mathml.css").write_text("")
    head = (
        '<script src="_static/doctools.js?v=1"></script>'
        '<link rel="stylesheet" type="text/css" href="_static/mathml.css?v=2" />'
        '<a href="https://numba.pydata.org">links are fine</a>'
    )
    math = '<span class="math notranslate"><math alttext="x"><mi>x</mi></math></span>'
    for page, least in check_html.FORMULA_PAGES.items():
        (site / page).write_text(head + math * least)
    (site / "index.html").write_text(head)
    assert check_html.check(str(site)) == []
    assert check_html.main([str(site)]) == 0

    cdn = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
    (site / "index.html").write_text(
        head + f'<script defer="defer" src="{cdn}"></script>'
        '<script src="_static/missing.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/x.css" />'
        '<span class="math notranslate nohighlight">\\(x\\)</span>'
    )
    (site / "lr_t.html").write_text(head + math)
    problems = check_html.check(str(site))
    text = "\n".join(problems)
    assert f"index.html: loads a script from the network: {cdn}" in text
    assert "index.html: loads MathJax" in text
    assert "index.html: its script _static/missing.js is not in the build" in text
    assert "index.html: loads a stylesheet from the network: //fonts.example/x.css" in text
    assert "index.html: a formula is left as LaTeX" in text
    assert "lr_t.html: 1 MathML formulas" in text
    assert len(problems) == 6, problems
    assert check_html.main([str(site)]) == 1
    assert check_html.check(str(tmp_path / "nothing")) != []


def test_quickstart(capsys):
    ns = run_page("quickstart.md", capsys)
    assert ns["opt"].t >= 1
    assert [g["lr"] for g in ns["grouped"].param_groups] == [5e-4, 5e-3]
    assert ns["grouped"].t == 100 and np.all(ns["bias"] > 0)
    assert ns["res"].nit > 0
    x = ns["x"]
    host = x.copy_to_host() if hasattr(x, "copy_to_host") else x
    assert np.all(np.isfinite(host))


def test_numba_page(capsys):
    ns = run_page("numba.md", capsys)
    np.testing.assert_allclose(ns["w"], ns["w_true"], atol=1e-3)
    np.testing.assert_allclose(ns["w_nadam"], ns["w_true"], atol=1e-3)
    np.testing.assert_allclose(ns["simulate"](np.zeros(2), np.ones(2), 2000, 1e-2), 1.0, atol=1e-3)
    assert ns["coefficients_in_compiled_code"](1).amsgrad == 1
    x = ns["x"].copy_to_host()
    np.testing.assert_allclose(x[[0, -1]], [-0.03, 0.03], rtol=1e-3)


def test_lr_t_page(capsys):
    ns = run_page("lr_t.md", capsys)
    x, y = ns["x"], ns["y"]
    assert np.max(np.abs(x - y)) / np.max(np.abs(x)) < 1e-12


def test_conventions_page(capsys):
    """Each line of the block is one framework's optimizer, under the documented convention
    and with the framework's defaults where the line leaves them out."""
    ns = run_page("conventions.rst", capsys)
    opts = ns["_values"]
    names = [type(o).__name__ + ":" + o.convention.name for o in opts]
    assert names == [
        "Adam:pytorch", "AdamW:pytorch", "Adam:keras", "AdamW:keras", "Adam:tf1",
        "Adam:optax", "AdamW:optax", "Adam:optax", "RMSProp:pytorch", "RMSProp:keras",
        "RMSProp:tf1", "RMSProp:optax", "RMSProp:basic", "NAdam:pytorch", "NAdam:keras",
        "NAdam:optax",
    ]  # fmt: skip
    assert opts[1].weight_decay == 1e-2 and opts[3].weight_decay == 0.004
    assert opts[4].convention.eps == 1e-8 and opts[10].convention.eps == 1e-10
    assert opts[10].convention.initial_scale == 1.0  # TF1's mean square starts at 1
    assert opts[13].lr == 2e-3 and opts[14].eps == 1e-7 and not opts[15].momentum_schedule
    assert np.all(ns["x"] == 0)  # creating an optimizer does not touch the parameters


def test_minimize_page(capsys, tmp_path):
    """The three blocks: scipy's Rosenbrock on the Python path and as a scipy method, @njit
    objectives on the compiled path, and minimize_njit from the user's own @njit code, which
    gives the iterates of fa.minimize (both paths share the compiled step)."""
    ns = run_page("minimize.md", capsys, tmp_path)
    first, (compiled, compile_time), fitted = ns["_values"]
    x, fun, nit, nfev, njev, status, success, message = first
    assert success and status == 0 and fun < 1e-8 and 0 < nit == njev - 1 == nfev - 1
    assert "gtol" in message or "gradient" in message
    np.testing.assert_allclose(x, np.ones(10), atol=1e-4)
    assert ns["res"].compiled is True and compiled is True and compile_time >= 0
    assert ns["res"].nit > 0 and np.isfinite(ns["res"].fun)
    starts = np.random.default_rng(0).uniform(-2.0, 2.0, size=(4, 10))
    assert fitted.shape == (4, 10)
    f, g = ns["f"], ns["g"]
    for start, row in zip(starts, fitted, strict=True):
        res = ns["fa"].minimize(f, start, jac=g, options=dict(lr=1e-2, maxiter=5000, gtol=1e-6))
        np.testing.assert_allclose(row, res.x, rtol=1e-12, atol=1e-14)


def test_dask_page(capsys, tmp_path):
    """The zarr cube's fits: stored back, most pixels converged, the positions found; the
    result's fields were dask arrays until stored."""
    pytest.importorskip("dask.array", reason="the dask extra is not installed")
    pytest.importorskip("zarr", reason="the dask extra is not installed")
    pytest.importorskip("xarray", reason="the dask extra is not installed")
    ns = run_page("dask.md", capsys, tmp_path)
    values = ns["_values"]  # (with the None and stores that store and to_zarr return)
    lazy_x, (converged, worst), xr_worst, (t, chunks, error) = [values[i] for i in (0, 2, -2, -1)]
    assert type(lazy_x).__name__ == "Array" and lazy_x.shape == (4096, 4)
    assert converged > 4000 and worst < 0.05 and xr_worst == worst  # (the same fits)
    assert t == 200 and chunks == ((200,) * 4,) and error < 0.05


def test_batch_page(capsys):
    """Both paths fit the peaks; a problem of the batch is fa.minimize on that problem alone,
    bit for bit; the sweep gives one objective value per learning rate."""
    ns = run_page("batch.md", capsys)
    values = ns["_values"]
    (compiled, message), (median_nit, median_error), (vec_compiled, diff) = values[:3]
    (device, gpu_message, gpu_diff), sweep = values[3:]
    assert device == "cuda" and "succeeded" in gpu_message and gpu_diff < 1e-6
    assert compiled is True and "2000 of 2000 problems succeeded" in message
    assert 0 < median_nit < 3000 and median_error < 0.05
    assert vec_compiled is False and diff < 1e-5
    assert sweep.shape == (7,) and np.all(np.isfinite(sweep))
    fa, res = ns["fa"], ns["res"]
    for i in (0, 1234):
        one = fa.minimize(ns["peak"], ns["x0"][i], args=(ns["y"][i], ns["t"]), jac=True,
                          options=dict(lr=0.05, maxiter=3000, gtol=1e-6))  # fmt: skip
        np.testing.assert_array_equal(res.x[i], one.x)
        assert res.nit[i] == one.nit


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


def test_warmup_fills_the_cache_for_later_processes():
    """``python -m fastadam warmup`` prepares every algorithm's step and minimize variants; a
    later process's first minimize of the warmed signature then only loads from the cache."""
    out = _run_demo("warmup", "--dtype", "float64", "--algorithm", "adam")
    assert out.returncode == 0, out.stderr
    for what in ("adam step, float64, parallel", "adam minimize, float64, problems",
                 "adam minimize, float64, elements", "compiled minimize loop"):  # fmt: skip
        assert what in out.stdout, out.stdout
    assert "nadam" not in out.stdout and "rmsprop" not in out.stdout
    script = (
        "import numpy as np, fastadam as fa\n"
        "from fastadam._njit_samples import quadratic, jac\n"
        "from fastadam.optimize import compiled, engine\n"
        "res = fa.minimize(quadratic, np.ones(5), jac=jac, options=dict(maxiter=3))\n"
        "loop = compiled.loops('adam', engine.SERIAL, (0,) * 12)[0]\n"
        "print(res.compiled, sum(loop.stats.cache_misses.values()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    compiled, misses = out.stdout.split()
    assert compiled == "True" and misses == "0"  # loaded from the cache, not compiled


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
