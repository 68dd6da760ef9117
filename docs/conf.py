"""Sphinx configuration for the fastadam documentation.

Build (warnings are errors, as in CI)::

    python -m pip install -e ".[docs]"
    sphinx-build -W -b html docs docs/_build/html
    python docs/check_html.py docs/_build/html    # readable offline (CI runs it too)

The figures and the numbers quoted in the text are computed at build time by
``make_figures.py`` (run below) with fastadam itself; nothing generated is committed.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the checkout's fastadam, for autodoc
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "_ext"))  # mathml: formulas as MathML, offline

import make_figures  # noqa: E402

import fastadam  # noqa: E402

project = "fastadam"
author = "the fastadam developers"
copyright = f"{time.strftime('%Y')}, {author}"
release = fastadam.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "mathml",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

# Formulas are converted to MathML at build time (_ext/mathml.py, latex2mathml): the pages
# need no JavaScript and no network to show them. check_html.py checks the built site.
html_math_renderer = "mathml"

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "generated/*.md", "data", "_ext"]
templates_path = []

# numpydoc: render the docstrings (numpy/scipy convention); members are listed explicitly
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"

# MyST (Markdown pages): $...$ math, and {{ name }} substitutions filled from the numbers
# that make_figures.py computes with fastadam at every build
myst_enable_extensions = ["dollarmath", "amsmath", "substitution", "colon_fence"]
myst_heading_anchors = 3

_t0 = time.perf_counter()
myst_substitutions = make_figures.main(os.path.join(HERE, "generated", "figures"))
print(f"make_figures.py: figures and numbers in {time.perf_counter() - _t0:.1f} s")

html_theme = "alabaster"
html_title = f"fastadam {release}"
html_static_path = []
html_theme_options = {"description": "Numba-compiled Adam and RMSProp, every convention"}
