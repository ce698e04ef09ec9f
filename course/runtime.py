"""The runtime line of a notebook: the measured full-size runtime, stamped into its first cell.

The only runtime a notebook states is the line between ``<!-- runtime -->`` and
``<!-- /runtime -->`` in its first markdown cell, written by ``stamp_runtime`` from
``metadata.labkit.runtime_s`` (the full-size runtime that ``make book`` measures).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat

__all__ = ["RUNTIME_MARK", "format_runtime", "runtime_line", "stamp_runtime"]

RUNTIME_MARK = re.compile(r"(<!-- runtime -->)(.*?)(<!-- /runtime -->)", re.S)


def format_runtime(seconds: float | None) -> str:
    """An estimate a reader can plan with: ``format_runtime(43.2) == "about 45 s"``.

    Under a minute: rounded to 5 s (at least 5 s); above: to the half minute.
    ``None`` (never measured) says so.
    """
    if seconds is None:
        return "not measured yet (`make book` measures it)"
    if (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds) or seconds <= 0):
        raise ValueError(f"seconds must be a positive number or None, got {seconds!r}")
    if seconds < 57.5:
        return f"about {max(5, 5 * round(seconds / 5))} s"
    minutes = round(seconds / 30) / 2
    return f"about {minutes:g} minute" + ("" if minutes == 1 else "s")


def runtime_line(nb) -> str:
    """The text ``stamp_runtime`` puts between the runtime marks of notebook ``nb``."""
    seconds = nb.metadata.get("labkit", {}).get("runtime_s")
    return (f"{format_runtime(seconds)} at full size on a laptop CPU, "
            "measured when the book was built")


def stamp_runtime(path: str | Path, missing_ok: bool = False) -> bool:
    """Rewrite the runtime line of the notebook at ``path`` from its ``runtime_s``.

    The line sits in the first markdown cell between ``<!-- runtime -->`` and
    ``<!-- /runtime -->``. Returns whether the file changed. A notebook without the marks
    raises ``ValueError``, or is left as it is when ``missing_ok`` (the book's executor, which
    runs every notebook, passes it).
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    cell = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if cell is None or not RUNTIME_MARK.search(cell.source):
        if missing_ok:
            return False
        raise ValueError(f"{path}: the first markdown cell has no "
                         "'<!-- runtime -->...<!-- /runtime -->' marks")
    source = RUNTIME_MARK.sub(lambda m: m.group(1) + runtime_line(nb) + m.group(3), cell.source,
                              count=1)
    if source == cell.source:
        return False
    cell.source = source
    nbformat.write(nb, path)
    return True
