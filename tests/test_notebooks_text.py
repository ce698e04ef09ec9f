"""The notebooks' prose: no sentence of a notebook's markdown cells appears twice in it.

A sentence is a run of text ending in ``.``, ``!`` or ``?`` followed by a space and a new
sentence; fenced code blocks, inline code and math are part of the text, code cells are not
read. Sentences under 40 characters ("2 points.", "- 0: neither.") are boilerplate that may
recur; longer ones may not, anywhere across the notebook.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MIN_LENGTH = 40
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_END = re.compile(r"(?<=[.!?])\s+")


def sentences(markdown: str) -> list[str]:
    """The sentences of one markdown cell, whitespace collapsed, fenced code removed."""
    text = re.sub(r"\s+", " ", _FENCE.sub(" ", markdown)).strip()
    return [s.strip() for s in _END.split(text) if s.strip()]


def repeated_sentences(nb, min_length: int = MIN_LENGTH) -> dict[str, int]:
    """``{sentence: count}`` for every sentence of at least ``min_length`` characters that the
    markdown cells of ``nb`` hold more than once (in one cell or across cells)."""
    counts = Counter(s for cell in nb.cells if cell.cell_type == "markdown"
                     for s in sentences(cell.source) if len(s) >= min_length)
    return {s: n for s, n in counts.items() if n > 1}


def test_repeated_sentences_finds_a_repeat_within_and_across_cells():
    long = "Every conclusion drawn from them is a declared claim of the results."
    md = nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook(cells=[md(f"One sentence here, long enough to count. {long}")])
    assert repeated_sentences(nb) == {}
    nb.cells[0].source += f" {long}"  # within one cell
    assert repeated_sentences(nb) == {long: 2}
    nb.cells[0].source = long
    nb.cells.append(md(f"A different opening sentence of some length.\n{long}"))  # across
    assert repeated_sentences(nb) == {long: 2}
    # Short boilerplate, code cells and fenced code are not prose.
    nb = nbformat.v4.new_notebook(cells=[
        md("2 points. 2 points."), md("```\nx = a_long_enough_line_of_code(1, 2, 3, 4, 5)\n```"),
        md("```\nx = a_long_enough_line_of_code(1, 2, 3, 4, 5)\n```"),
        nbformat.v4.new_code_cell(long), nbformat.v4.new_code_cell(long)])
    assert repeated_sentences(nb) == {}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_repeats_a_sentence(path):
    repeats = repeated_sentences(nbformat.read(path, as_version=4))
    assert not repeats, f"{path.name} repeats:\n" + "\n".join(
        f"{n}x {s[:120]}" for s, n in repeats.items())
