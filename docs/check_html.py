"""Check a built HTML site for offline reading: exit 1 with the reasons if it fails.

    python docs/check_html.py docs/_build/html

- no page loads a script or a stylesheet from the network (MathJax from a CDN was the
  one), and every local one it loads exists in the build;
- the pages with formulas (``FORMULA_PAGES``) contain MathML (``<math>`` elements, see
  ``_ext/mathml.py``), and no page has a formula left as LaTeX for a script to typeset.

CI runs it after the docs build (.ci/run); tests/test_docs.py runs it on small made-up
sites.
"""

import argparse
import os
import re
import sys
from urllib.parse import urlsplit

#: Pages that must contain rendered formulas, with the least number of them.
FORMULA_PAGES = {"conventions.html": 20, "lr_t.html": 10}

_ASSET = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']|<link\b[^>]*\bhref\s*=\s*[\"']([^\"']+)[\"']",
    re.I,
)
_LINK_REL = re.compile(r"<link\b[^>]*\brel\s*=\s*[\"']([^\"']+)[\"']", re.I)
#: A formula left for MathJax: a math span/div whose text starts with a TeX delimiter.
_UNRENDERED = re.compile(r"class=\"math[^\"]*\"[^>]*>\s*(\\\(|\\\[|\$\$)", re.I)


def _assets(text):
    """(url, kind) of the scripts and stylesheets a page loads."""
    found = []
    for match in _ASSET.finditer(text):
        if match.group(1):
            found.append((match.group(1), "script"))
            continue
        rel = _LINK_REL.match(match.group(0))
        if rel and "stylesheet" in rel.group(1).lower():
            found.append((match.group(2), "stylesheet"))
    return found


def check(site):
    """The problems of the built site in the directory ``site`` (empty list: none)."""
    problems = []
    pages = []
    for root, _dirs, files in os.walk(site):
        pages += [os.path.join(root, f) for f in files if f.endswith(".html")]
    if not pages:
        return [f"{site}: no HTML page"]
    for path in sorted(pages):
        name = os.path.relpath(path, site)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for url, kind in _assets(text):
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                problems.append(f"{name}: loads a {kind} from the network: {url}")
                continue
            local = os.path.normpath(os.path.join(os.path.dirname(path), parts.path))
            if not os.path.isfile(local):
                problems.append(f"{name}: its {kind} {url} is not in the build")
        if re.search(r"mathjax", " ".join(url for url, _ in _assets(text)), re.I):
            problems.append(f"{name}: loads MathJax")
        if _UNRENDERED.search(text):
            problems.append(f"{name}: a formula is left as LaTeX for a script to typeset")
    for page, least in FORMULA_PAGES.items():
        path = os.path.join(site, page)
        if not os.path.isfile(path):
            problems.append(f"{page}: missing")
            continue
        with open(path, encoding="utf-8") as f:
            count = len(re.findall(r"<math\b", f.read()))
        if count < least:
            problems.append(f"{page}: {count} MathML formulas, expected at least {least}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", help="the built HTML directory, e.g. docs/_build/html")
    args = parser.parse_args(argv)
    problems = check(args.site)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.site}: no remote script or stylesheet; formulas rendered as MathML")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
