"""Sphinx extension: formulas rendered to MathML at build time, so that the HTML shows them
without JavaScript and without network access (MathJax would be loaded from a CDN).

Every ``:math:`` role, ``.. math::`` directive and MyST ``$...$``/``$$...$$`` formula is
converted with ``latex2mathml`` (pure Python, in the ``docs`` extra) into a ``<math>``
element that browsers render natively; the LaTeX source is kept in its ``alttext``. A
formula that uses a command the converter does not know is reported as a warning, so the
``-W`` build (CI) fails instead of showing raw LaTeX. Display formulas get the same
wrapping as with sphinx.ext.mathjax (``split`` for one multi-line equation, ``aligned``
for several equations separated by blank lines) and the same equation numbers.

``docs/check_html.py`` checks a built site: no remote script, MathML on the pages with
formulas.
"""

import html
import os
import re

from docutils import nodes
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

logger = logging.getLogger(__name__)

#: Escaped characters of LaTeX text mode (in ``\text{...}``), which latex2mathml keeps.
_TEXT_ESCAPES = {"&": "&amp;", "%": "%", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}"}


def _clean_mtext(match):
    inner = re.sub(r"\\([&%$#_{}])", lambda m: _TEXT_ESCAPES[m.group(1)], match.group(2))
    return match.group(1) + inner + match.group(3)


def latex_to_mathml(latex, display):
    """MathML for ``latex``; raises ValueError if some LaTeX was not converted."""
    from latex2mathml.converter import convert

    mathml = convert(latex, display="block" if display else "inline")
    mathml = re.sub(r"(<mtext[^>]*>)(.*?)(</mtext>)", _clean_mtext, mathml, flags=re.S)
    leftover = re.findall(r"\\[A-Za-z]+|\\.", re.sub(r"<[^>]*>", " ", mathml))
    if leftover:
        raise ValueError(f"not converted: {' '.join(sorted(set(leftover)))}")
    alt = html.escape(" ".join(latex.split()), quote=True)
    return mathml.replace("<math ", f'<math alttext="{alt}" ', 1)


def display_latex(text):
    """The LaTeX of a display formula, wrapped as sphinx.ext.mathjax wraps it."""
    parts = [part for part in text.split("\n\n") if part.strip()]
    wrapped = [rf"\begin{{split}}{p}\end{{split}}" if r"\\" in p else p for p in parts]
    if len(wrapped) > 1:
        return r"\begin{aligned}" + r"\\".join(wrapped) + r"\end{aligned}"
    return wrapped[0] if wrapped else ""


def _convert(self, node, latex, display):
    try:
        return latex_to_mathml(latex, display)
    except Exception as exc:  # shown as the LaTeX source, and a warning (an error with -W)
        logger.warning("formula not rendered to MathML (%s): %s", exc, latex, location=node)
        return f"<code>{self.encode(latex)}</code>"


def visit_math(self, node):
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate"))
    self.body.append(_convert(self, node, node.astext(), display=False) + "</span>")
    raise nodes.SkipNode


def visit_displaymath(self, node):
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node.get("no-wrap", node.get("nowrap", False)):
        latex = node.astext()
    else:
        if node["number"]:
            number = get_node_equation_number(self, node)
            self.body.append(f'<span class="eqno">({number})')
            self.add_permalink_ref(node, _("Link to this equation"))
            self.body.append("</span>")
        latex = display_latex(node.astext())
    self.body.append(_convert(self, node, latex, display=True) + "</div>\n")
    raise nodes.SkipNode


def _add_static(app):
    app.config.html_static_path.append(os.path.join(os.path.dirname(__file__), "static"))


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_html_math_renderer(
        "mathml",
        inline_renderers=(visit_math, None),
        block_renderers=(visit_displaymath, None),
    )
    app.add_css_file("mathml.css")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
