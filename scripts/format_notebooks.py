"""Lay out the notebooks' code at 88 columns: ``make format``; ``--check`` lists what does not fit.

Black sets the code of every code cell at 88 columns, with its preview style and its string
processing (long strings split into implicitly concatenated pieces at word boundaries, dict
values put in parentheses), but leaves comments as they are. So, before it runs on a cell,
this script moves a trailing comment that makes its line too long onto its own line above the
code (when the code alone fits), and rewraps a block of comment lines that has a line over 88
characters. ``--check`` names each cell that this script would change and each line still over
88 characters (a dict key or a URL that cannot be split), by notebook, cell and line, and
each printed output line over 88 characters (which only a change to what the cell prints
fixes).
Exercise cells are left alone (see ``exercise_cells``); the check names their long lines too.
tests/test_layout.py runs the check. Black's version is pinned in pyproject.toml: its preview
style changes between releases.

Cells are numbered as Jupyter shows them (1 = the first cell, Markdown included).

Usage:
    python scripts/format_notebooks.py [NOTEBOOK ...]          # format in place
    python scripts/format_notebooks.py --check [NOTEBOOK ...]  # what does not fit; exit 1 if any
The default is every notebook in notebooks/.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import textwrap
import tokenize
from pathlib import Path

import black
import nbformat

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 88
MODE = black.Mode(line_length=WIDTH, preview=True, enabled_features={black.Preview.string_processing})
# Comments that tools read, which stay where they are: linters' pragmas, and markers in capitals
# such as nbval's ``# NBVAL_CHECK_OUTPUT`` and otter's ``# SOLUTION`` (which marks its own line).
PRAGMA = re.compile(r"#\s*(noqa|type:|fmt:|pragma|[A-Z][A-Z0-9_ ]*$)")
EXERCISE_TAGS = {"solution", "exercise-check"}


def exercise_cells(nb) -> set[int]:
    """Indices of the cells of otter questions (from a raw ``# BEGIN QUESTION`` to its ``# END
    QUESTION``) and of cells tagged as solutions or checks. Their lines are otter's to read (a
    line ending in ``# SOLUTION`` is replaced whole in the student edition, so it must not be
    split over lines): the formatter leaves them as they are, and the check names their long
    lines for a person to split."""
    inside, found = False, set()
    for k, cell in enumerate(nb.cells):
        first = cell.source.lstrip().split("\n", 1)[0].strip()
        if cell.cell_type == "raw" and first == "# BEGIN QUESTION":
            inside = True
        if inside or EXERCISE_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            found.add(k)
        if cell.cell_type == "raw" and first == "# END QUESTION":
            inside = False
    return found


def comments(source: str) -> list[tuple[int, int, bool]]:
    """``(line, column, alone)`` of each comment of ``source`` (lines from 0); ``alone``: nothing
    but blanks before it on its line. Source that does not tokenize has none."""
    lines = source.splitlines()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    return [(tok.start[0] - 1, tok.start[1], not lines[tok.start[0] - 1][:tok.start[1]].strip())
            for tok in tokens if tok.type == tokenize.COMMENT]


def string_ends_on(source: str) -> set[int]:
    """The lines (from 0) on which a string that began on an earlier line ends."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return set()
    return {tok.end[0] - 1 for tok in tokens if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]}


def move_trailing_comments(source: str) -> str:
    """A trailing comment on a line over ``WIDTH`` whose code alone fits goes on its own line
    above, at the line's indentation (pragmas such as ``# noqa`` stay where they are)."""
    lines = source.splitlines()
    ends = string_ends_on(source)
    moves = {}
    for row, col, alone in comments(source):
        line = lines[row]
        if alone or len(line) <= WIDTH or len(line[:col].rstrip()) > WIDTH \
                or PRAGMA.match(line[col:]) or row in ends:
            continue
        if row > 0 and lines[row - 1].rstrip().endswith("\\"):
            continue  # a backslash continuation cannot take a comment line in between
        moves[row] = col
    if not moves:
        return source
    out = []
    for row, line in enumerate(lines):
        if row in moves:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + line[moves[row]:].strip(), line[: moves[row]].rstrip()]
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def wrap_comment_blocks(source: str) -> str:
    """Rewrap each run of whole-line comments (same indentation, paragraphs split at a bare
    ``#``) that has a line over ``WIDTH``."""
    lines = source.splitlines()
    alone = {row for row, _, is_alone in comments(source) if is_alone and not PRAGMA.match(lines[row].strip())}
    out, row = [], 0
    while row < len(lines):
        if row not in alone:
            out.append(lines[row])
            row += 1
            continue
        indent = lines[row][: len(lines[row]) - len(lines[row].lstrip())]
        block = [row]
        while block[-1] + 1 in alone and lines[block[-1] + 1].startswith(indent + "#") \
                and len(lines[block[-1] + 1]) - len(lines[block[-1] + 1].lstrip()) == len(indent):
            block.append(block[-1] + 1)
        row = block[-1] + 1
        if max(len(lines[r]) for r in block) <= WIDTH:
            out += [lines[r] for r in block]
            continue
        paragraphs, words = [], []
        for r in block:
            text = lines[r].strip()[1:].strip()
            if text:
                words.append(text)
            else:
                paragraphs.append(words)
                words = []
        paragraphs.append(words)
        for k, paragraph in enumerate(paragraphs):
            if k:
                out.append(indent + "#")
            out += textwrap.wrap(" ".join(paragraph), WIDTH, initial_indent=indent + "# ",
                                 subsequent_indent=indent + "# ", break_long_words=False,
                                 break_on_hyphens=False) or []
    return "\n".join(out) + ("\n" if source.endswith("\n") else "")


def black_format(source: str) -> str:
    """``source`` (one cell) as Black lays it out, checked by Black to compile to the same code
    (``fast=False``); a cell keeps no trailing newline."""
    try:
        return black.format_file_contents(source + "\n", fast=False, mode=MODE).rstrip("\n")
    except black.NothingChanged:
        return source


def formatted(source: str) -> str:
    """``source`` as ``make format`` leaves it: comments first, then Black."""
    return black_format(wrap_comment_blocks(move_trailing_comments(source)))


def format_notebooks(paths: list[Path]) -> None:
    """Lay out each code cell of each notebook (exercise cells aside) and write back the
    notebooks whose cells changed; nothing but code cells' sources changes."""
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        exercises, changed = exercise_cells(nb), False
        for k, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and k not in exercises:
                source = formatted(cell.source)
                changed |= source != cell.source
                cell.source = source
        if changed:
            nbformat.write(nb, path)


def problems(paths: list[Path]) -> list[str]:
    """``"<notebook>: cell N: ..."`` for each code cell that ``make format`` would change and
    each code line over ``WIDTH`` characters."""
    found = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        exercises = exercise_cells(nb)
        for k, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            where = f"{path}: cell {k + 1}"
            if k not in exercises and formatted(cell.source) != cell.source:
                found.append(f"{where}: not formatted (run `make format`)")
            note = " (an exercise cell: split it by hand)" if k in exercises else ""
            found += [f"{where}: line {n} has {len(line)} characters (> {WIDTH}){note}"
                      for n, line in enumerate(cell.source.splitlines(), start=1) if len(line) > WIDTH]
    return found


def long_outputs(paths: list[Path]) -> list[str]:
    """``"<notebook>: cell N: output line K has X characters"`` for each line of printed text
    (streams, and plain text where the output has no richer form) over ``WIDTH``: the book
    shows it in a box as wide as the code's, so it scrolls sideways. Only a change to what
    the cell prints (and running it) fixes one; tables can be displayed as Markdown instead."""
    found = []
    for path in paths:
        for n, cell in enumerate(nbformat.read(path, as_version=4).cells, start=1):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if output.get("output_type") == "stream":
                    text = output.get("text", "")
                elif set(data) == {"text/plain"}:
                    text = data["text/plain"]
                else:
                    continue  # a figure, a widget, HTML or Markdown: not a text box
                found += [f"{path}: cell {n}: output line {k} has {len(line)} characters (> {WIDTH})"
                          for k, line in enumerate(text.splitlines(), start=1) if len(line) > WIDTH]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="change nothing; list what does not fit")
    args = parser.parse_args(argv)
    paths = sorted(args.notebooks or (ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        parser.error(f"not found: {', '.join(missing)}")
    if not args.check:
        format_notebooks(paths)
    found = problems(paths)
    print("\n".join(found) or f"{len(paths)} notebook(s): every code line fits {WIDTH} columns")
    outputs = long_outputs(paths)
    print("\n".join(outputs) or f"{len(paths)} notebook(s): every printed line fits {WIDTH} columns")
    return 1 if found or outputs else 0


if __name__ == "__main__":
    sys.exit(main())
