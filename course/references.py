"""Citations a plain Jupyter renders: MyST's ``{cite:p}`key``` as "(Author year)" text.

The book resolves ``{cite:p}`` and ``{cite:t}`` roles against ``docs/references.bib``
(sphinxcontrib-bibtex); Jupyter shows them raw. ``render_citations`` rewrites a notebook's
markdown for the student edition: each role becomes ``(Ye et al. 2026)`` (``{cite:p}``) or
``Ye et al. (2026)`` (``{cite:t}``), and the notebook's ``## References`` cell gains the full
entries of every work it cites, formatted by pybtex's plain style.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["CITE", "load_bibliography", "short_citation", "render_citations"]

CITE = re.compile(r"\{cite:([pt])\}`([^`]+)`")
BIB = Path(__file__).resolve().parent.parent / "docs" / "references.bib"


def load_bibliography(path: str | Path = BIB):
    """The entries of a BibTeX file, as pybtex's ``BibliographyData``."""
    from pybtex.database import parse_file

    return parse_file(str(path))


def _surnames(entry) -> list[str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    from pybtex.richtext import Text

    return [Text.from_latex(" ".join(p.last_names)).render_as("text") for p in people]


def short_citation(entry) -> tuple[str, str]:
    """(authors, year) as an author-year citation writes them: ``("Ye et al.", "2026")``."""
    names = _surnames(entry)
    if not names:
        raise ValueError(f"bibliography entry {entry.key!r} has no author")
    authors = (names[0] if len(names) == 1 else f"{names[0]} and {names[1]}" if len(names) == 2
               else f"{names[0]} et al.")
    return authors, entry.fields.get("year", "n.d.")


def render_citations(nb, bibliography=None) -> list[str]:
    """Rewrite the cite roles of notebook ``nb`` in place; returns the keys cited, in order.

    An unknown key raises ``ValueError`` naming it (the book's strict build fails the same way).
    """
    bib = load_bibliography() if bibliography is None else bibliography
    cited: list[str] = []

    def replace(match):
        parts = []
        for key in (k.strip() for k in match.group(2).split(",")):
            if key not in bib.entries:
                raise ValueError(f"citation key {key!r} is not in the bibliography")
            if key not in cited:
                cited.append(key)
            parts.append(short_citation(bib.entries[key]))
        if match.group(1) == "t":
            return "; ".join(f"{authors} ({year})" for authors, year in parts)
        return "(" + "; ".join(f"{authors} {year}" for authors, year in parts) + ")"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = CITE.sub(replace, cell.source)
    if cited:
        _append_entries(nb, bib, cited)
    return cited


def _append_entries(nb, bib, keys) -> None:
    from nbformat.v4 import new_markdown_cell
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "plain")()
    formatted = style.format_entries(bib.entries[key] for key in keys)
    lines = "\n".join("- " + " ".join(entry.text.render_as("markdown").split())
                      for entry in formatted)
    block = "**Works cited**\n\n" + lines
    cell = next((c for c in nb.cells if c.cell_type == "markdown"
                 and re.search(r"^## References", c.source, re.M)), None)
    if cell is None:
        nb.cells.append(new_markdown_cell("## References\n\n" + block))
        return
    # The entries go before the "Next:" link that closes the cell, when there is one.
    head, sep, tail = cell.source.partition("\n**Next:**")
    cell.source = head.rstrip() + "\n\n" + block + ("\n" + sep + tail if sep else "")
