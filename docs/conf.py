"""Sphinx configuration of the skl_tfreg documentation.

Build it from the project's root (``pip install ".[docs]"`` first)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import inspect

import skl_tfreg

project = "skl_tfreg"
author = "skl_tfreg developers"
copyright = "skl_tfreg developers"
version = release = skl_tfreg.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store"]

# MyST: "[text](#heading)" links within a page need anchors on the headings.
myst_heading_anchors = 3

# autodoc + numpydoc: the docstrings are numpydoc. The methods are documented by
# autodoc under their class, so numpydoc adds no table of them; scikit-learn's
# inherited methods (get_params, score, set_callbacks, ...) are documented by it.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc Parameters sections give the types
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
autosummary_generate = False

html_theme = "alabaster"
html_title = f"skl_tfreg {release}"
html_theme_options = {"page_width": "1140px"}  # room for 80-column output and code
html_static_path: list[str] = []

# The line of api.md replaced by one section per name of skl_tfreg.__all__.
API_MARKER = "<!-- the public names of skl_tfreg.__all__ are inserted here by conf.py -->"


def _public_names():
    return [name for name in skl_tfreg.__all__ if not name.startswith("_")]


def _api_sections():
    """Return a summary table and one autodoc section per public name, in MyST."""
    names = _public_names()
    table = "\n".join(f"   {name}" for name in names)
    parts = ["```{eval-rst}", ".. currentmodule:: skl_tfreg", "", ".. autosummary::", "", table,
             "```", ""]  # fmt: skip
    for name in names:
        obj = getattr(skl_tfreg, name)
        if inspect.isclass(obj):
            directive = "autoclass"
        else:
            directive = "autofunction" if callable(obj) else "autodata"
        parts += [f"## {name}", "", "```{eval-rst}", f".. {directive}:: {name}", "```", ""]
    return "\n".join(parts)


def _fill_pages(app, docname, source):
    if docname == "api":
        if API_MARKER not in source[0]:
            raise RuntimeError(f"docs/api.md lost its marker line {API_MARKER!r}")
        source[0] = source[0].replace(API_MARKER, _api_sections())


def _reread_generated(app, env, added, changed, removed):
    # api.md's text depends on skl_tfreg.__all__, not on the file alone.
    return ["api"]


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn's metadata-routing setters (set_fit_request, ...) are generated on
    # every estimator class, with scikit-learn's own docstrings and references.
    if what == "class" and name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    """Fill the generated parts of the pages, and leave out scikit-learn's boilerplate."""
    app.connect("source-read", _fill_pages)
    app.connect("env-get-outdated", _reread_generated)
    app.connect("autodoc-skip-member", _skip_member)
