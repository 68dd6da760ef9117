"""Every docstring example (``>>>``) of every module of the fastadam package runs.

The modules are found with ``pkgutil.walk_packages``, so a module added later is tested
without touching this file. Each module is one test (its id is the module's name); a failing
example is reported with its module, object and line. A module without examples passes, but
the package as a whole must have some. GPU modules import under numba's CUDA simulator
(tests/conftest.py enables it); a module is skipped only when its import fails for want of
numba-cuda.
"""

import doctest
import importlib
import pkgutil

import pytest

import fastadam

OPTIONFLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _module_names():
    names = [fastadam.__name__]
    for info in pkgutil.walk_packages(fastadam.__path__, prefix=fastadam.__name__ + "."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def _import(name):
    """The module, or a skip when (and only when) it needs numba-cuda and that is absent."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing.split(".")[0] in ("numba_cuda", "cuda") or "numba.cuda" in str(exc):
            try:
                importlib.import_module("numba_cuda")
            except ImportError:
                pytest.skip(f"{name} needs numba-cuda, which is not installed ({exc})")
        raise


def _prompts_in_source(module):
    """How many ``>>>`` lines the module's source file has."""
    with open(module.__file__, encoding="utf-8") as f:
        return sum(line.lstrip().startswith(">>>") for line in f)


def _examples(module):
    """The module's doctests that have examples (its own objects only, not imported ones)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = finder.find(module, module.__name__)
    return sorted((t for t in tests if t.examples), key=lambda t: t.name)


def _run(test):
    """Run one DocTest (in a copy of its module's namespace): (attempted, failed, report)."""
    out = []
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS, verbose=False)
    result = runner.run(test, out=out.append, clear_globs=True)
    return result.attempted, result.failed, "".join(out)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = _import(name)
    tests = _examples(module)
    # every ``>>>`` of the source is found: none hides where the finder does not look
    # (a nested function, a string that is not a docstring, an object of another module)
    assert sum(len(t.examples) for t in tests) == _prompts_in_source(module), (
        f"{name}: some '>>>' lines of {module.__file__} are not docstring examples that "
        "doctest finds"
    )
    reports = []
    for test in tests:
        attempted, failed, report = _run(test)
        assert attempted == len(test.examples)
        if failed:
            reports.append(f"{test.name} ({test.filename}:{test.lineno}):\n{report}")
    assert not reports, "\n".join(reports)


def test_the_package_has_examples():
    """Discovery works and finds examples: not every module can be example-free."""
    assert "fastadam" in MODULES and "fastadam.optimizers" in MODULES
    total = 0
    for name in MODULES:
        try:
            module = _import(name)
        except pytest.skip.Exception:
            continue
        total += sum(len(t.examples) for t in _examples(module))
    assert total > 0, "no docstring example found in the fastadam package"
