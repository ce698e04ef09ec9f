"""Sphinx extension: what the book adds for accessibility (WCAG 2.1 AA; tests/test_a11y.py).

- Static figures get alt text that states their finding. ``labkit.plotting`` stores a figure's
  title in its PNG's ``Description`` text chunk (``savefig``, and every figure a notebook cell
  shows after ``plotting.setup()``); MyST-NB renders image outputs without ``alt`` (Sphinx then
  writes the file name), so on ``doctree-read`` each image whose PNG has a description gets
  it as its ``alt``. Notebooks executed before this carry no description and keep the name.
- Every slider handle is named after its label: ``labkit.widgets.SLIDER_NAMES_JS`` on every
  page (ipywidgets 8 leaves the handles unnamed; see ``labkit.widgets``).
- ``labkit-a11y.css``: contrast to 4.5:1 where the theme falls short (the source pages' links);
  ``labkit-a11y.js``: accessible names that contain the visible text (search button, folds),
  no deprecated ARIA roles on the bibliography.
"""

from __future__ import annotations

from pathlib import Path

import PIL.Image
from docutils import nodes


def png_description(path: Path) -> str | None:
    """The ``Description`` text chunk of the PNG at ``path`` (None if absent or not a PNG)."""
    try:
        with PIL.Image.open(path) as image:
            text = getattr(image, "text", {}) or {}
    except (OSError, ValueError):
        return None
    return (text.get("Description") or "").strip() or None


def figure_alt_text(app, doctree, docname=None) -> None:
    """``doctree-resolved`` (when MyST-NB's output images exist): an image without a real ``alt``
    whose PNG carries a description gets it."""
    docname = docname or app.env.docname
    for image in doctree.findall(nodes.image):
        uri = image.get("uri", "")
        alt = image.get("alt", "")
        # MyST-NB fills an output image's alt with its file name: that is no description
        placeholder = not alt or alt == uri or alt.endswith(".png") or alt.startswith("No description")
        if not placeholder or not uri.endswith(".png") or "://" in uri:
            continue
        candidates = [Path(app.env.relfn2path(uri, docname)[1]), Path(app.srcdir) / uri, Path(app.outdir) / uri,
                      Path(app.srcdir) / Path(docname).parent / uri, Path(uri)]
        description = next((d for d in map(png_description, candidates) if d), None)
        if description:
            image["alt"] = description


def setup(app):
    from labkit.widgets import SLIDER_NAMES_JS

    app.add_js_file(None, body=SLIDER_NAMES_JS)
    app.add_css_file("labkit-a11y.css")
    app.add_js_file("labkit-a11y.js")
    app.connect("doctree-resolved", figure_alt_text)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
