"""Sphinx configuration of the labkit book (`make book` builds it into site/: see the Makefile).

The book is Sphinx + MyST-NB with sphinx-book-theme. It works offline: the widget renderer,
require.js and MathJax are copied from ``book/node_modules`` (``make assets`` runs ``npm ci``)
into the site's ``_static/``, and nothing on any page loads from a CDN.

Notebook execution is off here (``nb_execution_mode = "off"``): ``make book`` first executes
every notebook at full size in place with ``scripts/execute_notebooks.py`` (fresh kernel,
outputs and widget state stored, runtime recorded in ``metadata.labkit.runtime_s``) and the
executed notebooks are committed. Sphinx renders exactly what is committed, so the book, the
repository and GitHub's notebook view show the same outputs, and ``--no-execute`` re-renders
in seconds. jupyter-cache would re-run notebooks on any source change and keep its outputs
outside the notebooks, which is what we do not want.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

DOCS = Path(__file__).resolve().parent
# The student edition (`make book-student`) renders a staged copy of docs/ whose notebooks/ holds
# the student pages (course/book.py); LABKIT_CHECKOUT names the checkout it was staged from.
ROOT = Path(os.environ.get("LABKIT_CHECKOUT", DOCS.parent)).resolve()
STUDENT_EDITION = DOCS != ROOT / "docs"
NODE_MODULES = ROOT / "book" / "node_modules"
sys.path.insert(0, str(ROOT))  # autodoc imports the checkout's labkit, installed or not
sys.path.insert(0, str(DOCS / "_ext"))  # labkit_a11y: alt text, slider names, contrast

project = "labkit"
author = "the labkit authors"
copyright = "2026, the labkit authors"
language = "en"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_proof",
    "sphinx_exercise",
    "sphinx_togglebutton",
    "sphinx_copybutton",
    "sphinxcontrib.bibtex",
    "labkit_a11y",
]

root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# --- MyST and MyST-NB -------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # executed by `make book` and committed: see the module docstring
# Markdown that a cell displays (e.g. notebook 03's Table 1) is parsed as MyST, so pipe tables render
# as tables; the default, CommonMark, has no tables.
nb_render_markdown_format = "myst"
nb_merge_streams = True
# The widget renderer and its loader, from _static/ (copied from book/node_modules below), with
# the glue that points the renderer at its fonts and lets it typeset through MathJax 3.
nb_ipywidgets_js = {"require.js": {}, "labkit-widgets.js": {}, "html-manager/embed-amd.js": {}}

# --- MathJax 3, served from _static/mathjax (assistive MathML is on by default) -----------
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"options": {"menuOptions": {"settings": {"assistiveMml": True}}}}

# --- API reference --------------------------------------------------------------------
# Each module's __all__ decides what is documented. "imported-members" because Sphinx 9's
# autodoc drops module constants (an int's or a dict's __module__ is "builtins") otherwise.
autodoc_default_options = {"members": True, "undoc-members": True, "imported-members": True,
                           "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# --- Bibliography, theorem blocks -----------------------------------------------------
bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"
proof_minimal_theme = False

# --- HTML -------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "labkit: memorization and generalization in diffusion models" + (
    " (student edition)" if STUDENT_EDITION else "")
html_static_path = ["_static"]
html_css_files = ["labkit.css"]
html_sourcelink_suffix = ""  # the download button serves the .ipynb itself
html_last_updated_fmt = None
html_favicon = "_static/favicon.png"
html_context = {"default_mode": "light"}
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_prev_next": True,
    "navigation_with_keys": False,
    # One search box, in the sidebar: the header's persistent search button repeats it.
    "navbar_persistent": [],
}

# (source under book/node_modules, destination under _static): only what the pages load.
ASSETS = [
    ("requirejs/require.js", "require.js"),
    ("@jupyter-widgets/html-manager/dist", "html-manager"),
    ("mathjax/es5/tex-chtml.js", "mathjax/tex-chtml.js"),
    ("mathjax/es5/input/tex/extensions", "mathjax/input/tex/extensions"),
    ("mathjax/es5/output/chtml/fonts/woff-v2", "mathjax/output/chtml/fonts/woff-v2"),
    ("mathjax/es5/ui", "mathjax/ui"),
    ("mathjax/es5/a11y", "mathjax/a11y"),
]
SKIP_ASSETS = shutil.ignore_patterns("*.map", "embed.js", "libembed-amd.js", "*.LICENSE.txt")


def runtime_text(seconds: float | None) -> str:
    """How a measured runtime reads in the book: ``"43 s"``, ``"2 min 41 s"``."""
    if seconds is None:
        return "not measured yet (run make book)"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.0f} s"


# {{ runtime_00_primer }} ... in any page: the runtime `make book` measured (CPU, full size).
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
myst_substitutions = {
    f"runtime_{path.stem}": runtime_text(
        json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("labkit", {}).get("runtime_s"))
    for path in NOTEBOOKS
}


def sync_notebooks() -> None:
    """Mirror ``notebooks/*.ipynb`` into ``docs/notebooks/`` (git-ignored), where Sphinx reads them.

    Sphinx resolves links between documents to real paths, so the notebooks must sit inside
    the source folder (a symlink would point links outside it). Unchanged files keep their
    modification time, so an incremental build re-reads only the notebooks that changed.
    """
    mirror = DOCS / "notebooks"
    mirror.mkdir(exist_ok=True)
    for path in NOTEBOOKS:
        copy = mirror / path.name
        if not copy.is_file() or copy.read_bytes() != path.read_bytes():
            shutil.copy2(path, copy)
    for stale in set(mirror.glob("*.ipynb")) - {mirror / path.name for path in NOTEBOOKS}:
        stale.unlink()


# A figure is opened on the first line of code: `fig, ax = plt.subplots(...)`, `plt.figure()`,
# `fig = plotting.score_fields_figure(...)`.
OPENS_FIGURE = re.compile(r"(fig\w*|\(?fig\w*\s*,.*)\s*=|plt\.|plotting\.")


def is_drawing_cell(cell) -> bool:
    """A code cell that only draws: it opens a figure on its first line of code and every
    output is a figure. The book folds its code (``hide-input``); a cell that computes before
    it draws stays open (tag it ``hide-input`` in the notebook to fold it)."""
    outputs = cell.get("outputs", [])
    code = [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(outputs and code) and OPENS_FIGURE.match(code[0]) is not None and all(
        output.get("output_type") in ("display_data", "execute_result")
        and any(mime.startswith("image/") for mime in output.get("data", {})) for output in outputs)


def fold_drawing_cells(app, docname: str, source: list[str]) -> None:
    """``source-read``: tag drawing cells ``hide-input`` unless the notebook says otherwise.

    A cell already tagged ``show-input``, ``hide-input``, ``remove-input`` or ``hide-cell``
    keeps its author's choice. The notebook files are not changed.
    """
    if not app.env.doc2path(docname).name.endswith(".ipynb"):
        return
    nb = nbformat.reads(source[0], as_version=4)
    chosen = {"show-input", "hide-input", "remove-input", "remove_input", "hide-cell", "remove-cell"}
    changed = False
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and is_drawing_cell(cell) and not chosen & set(tags):
            cell.metadata["tags"] = [*tags, "hide-input"]
            changed = True
    if changed:
        source[0] = nbformat.writes(nb)


def undocumented_constants(module_name: str) -> list[tuple[str, bool]]:
    """Names in the module's ``__all__`` that autodoc's ``automodule`` skips: module-level
    data (not a class, function or module) without a ``#:`` doc comment. Each comes with
    whether its value is short enough to show."""
    import importlib
    import inspect

    from sphinx.pycode import ModuleAnalyzer

    module = importlib.import_module(module_name)
    documented = {name for (_, name) in ModuleAnalyzer.for_module(module_name).find_attr_docs()}
    out = []
    for name in getattr(module, "__all__", []):
        value = getattr(module, name)
        if name in documented or inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
            continue
        out.append((name, len(repr(value)) <= 80))
    return out


def document_constants(app, docname: str, source: list[str]) -> None:
    """``source-read`` of the API page: an ``autodata`` after each ``automodule`` for the
    constants of ``__all__`` that automodule would leave out, so every public name is there."""
    if docname != "api":
        return

    def add(match):
        lines = [match.group(0).rstrip("\n")]
        for name, short in undocumented_constants(match.group(1)):
            lines.append(f"\n.. autodata:: {match.group(1)}.{name}" + ("" if short else "\n   :no-value:"))
        return "\n".join(lines) + "\n"

    source[0] = re.sub(r"^\.\. automodule:: ([\w.]+)\n", add, source[0], flags=re.M)


def drop_type_docstrings(app, what, name, obj, options, lines) -> None:
    """``autodoc-process-docstring``: a constant shows no docstring rather than its type's
    (a dict's would read "dict() -> new empty dictionary")."""
    if what == "data" and getattr(obj, "__doc__", None) == getattr(type(obj), "__doc__", None):
        lines.clear()


def copy_assets(app, exception) -> None:
    """``build-finished``: ship the front-end assets from book/node_modules in _static/."""
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for source, dest in ASSETS:
        source, dest = NODE_MODULES / source, static / dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, ignore=SKIP_ASSETS, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest)


def check_assets(app) -> None:
    if app.builder.format == "html" and not (NODE_MODULES / "@jupyter-widgets/html-manager").is_dir():
        raise RuntimeError(f"book assets missing in {NODE_MODULES}: run `make assets` (npm ci in book/)")


def setup(app):
    if not STUDENT_EDITION:  # the staged student edition brings its own pages
        sync_notebooks()
    app.connect("builder-inited", check_assets)
    app.connect("source-read", fold_drawing_cells)
    app.connect("source-read", document_constants)
    app.connect("autodoc-process-docstring", drop_type_docstrings)
    app.connect("build-finished", copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
