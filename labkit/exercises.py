"""Course tooling: the student edition of the notebooks and each notebook's generated runtime line.

Every numbered notebook ends with exercises written in otter-grader's assign format: a raw
``# ASSIGNMENT CONFIG`` cell, then per exercise raw ``# BEGIN QUESTION`` / ``# BEGIN SOLUTION`` /
``# BEGIN TESTS`` cells around the prompt, the solution and the check. The committed notebook
is the instructor's edition: its solutions run, and every check runs as a plain assert.
``build_student_edition`` (``make exercises``) calls ``otter assign`` on each of them and writes

- ``build/student/<notebook>.ipynb``: solutions replaced by ``...``, outputs removed, one
  ``grader.check("<exercise>")`` cell per exercise that passes on a right answer and prints a
  hint on a wrong one (the hints are the tests' assert messages);
- ``build/autograder/<notebook>.ipynb`` and ``<notebook>-autograder.zip``: the notebook with
  solutions and checks, and the zip that ``otter run`` (or Gradescope) grades submissions with.

Cell tags shared with the book (``docs/``): ``exercises`` on the section heading, ``exercise``
on each prompt, ``solution`` plus ``hide-cell`` on solution code and ``solution`` on solution
prose (a ``<details>`` block), ``remove-cell`` on the otter raw cells and on the checks.

The only runtime a notebook states is the line between ``<!-- runtime -->`` and
``<!-- /runtime -->`` in its first cell, written by ``stamp_runtime`` from
``metadata.labkit.runtime_s`` (the full-size runtime measured by ``make book``).
Introduced in ``docs/course.md``.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

__all__ = [
    "RUNTIME_MARK",
    "format_runtime",
    "runtime_line",
    "stamp_runtime",
    "is_assignment",
    "assignment_notebooks",
    "build_student_edition",
]

RUNTIME_MARK = re.compile(r"(<!-- runtime -->)(.*?)(<!-- /runtime -->)", re.S)
_CONFIG = re.compile(r"#\s+assignment\s+config", re.I)


def format_runtime(seconds: float | None) -> str:
    """An estimate a reader can plan with: ``format_runtime(43.2) == "about 45 s"``.

    Under a minute: rounded to 5 s (at least 5 s); above: to the half minute.
    ``None`` (never measured) says so.
    """
    if seconds is None:
        return "not measured yet (`make book` measures it)"
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0:
        raise ValueError(f"seconds must be a positive number or None, got {seconds!r}")
    if seconds < 57.5:
        return f"about {max(5, 5 * round(seconds / 5))} s"
    minutes = round(seconds / 30) / 2
    return f"about {minutes:g} minute" + ("" if minutes == 1 else "s")


def runtime_line(nb) -> str:
    """The text ``stamp_runtime`` puts between the runtime marks of notebook ``nb``."""
    seconds = nb.metadata.get("labkit", {}).get("runtime_s")
    return f"{format_runtime(seconds)} at full size on a laptop CPU, measured when the book was built"


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
        raise ValueError(f"{path}: the first markdown cell has no '<!-- runtime -->...<!-- /runtime -->' marks")
    source = RUNTIME_MARK.sub(lambda m: m.group(1) + runtime_line(nb) + m.group(3), cell.source, count=1)
    if source == cell.source:
        return False
    cell.source = source
    nbformat.write(nb, path)
    return True


def is_assignment(nb) -> bool:
    """Whether notebook ``nb`` carries exercises (an otter ``# ASSIGNMENT CONFIG`` raw cell)."""
    return any(c.cell_type == "raw" and _CONFIG.match(c.source.lstrip()) for c in nb.cells)


def assignment_notebooks(folder: str | Path) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in ``folder`` that carry exercises, in order."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if is_assignment(nbformat.read(p, as_version=4))]


def build_student_edition(notebooks, out: str | Path = "build") -> dict[str, dict[str, Path]]:
    """Run ``otter assign`` on each notebook; write ``out/student`` and ``out/autograder``.

    notebooks: paths of instructor notebooks (see ``assignment_notebooks``). Returns, per
    notebook stem, the paths written: ``{"student": ..., "autograder": ..., "zip": ...}``.
    Tests are not run here (``tests/test_exercises.py`` runs them).
    """
    from otter.assign import main as otter_assign

    notebooks = [Path(p) for p in notebooks]
    if not notebooks:
        raise ValueError("notebooks must name at least one notebook")
    for path in notebooks:
        if not path.is_file():
            raise ValueError(f"no such notebook: {path}")
    out = Path(out)
    student_dir, grader_dir = out / "student", out / "autograder"
    student_dir.mkdir(parents=True, exist_ok=True)
    grader_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for path in notebooks:
        with tempfile.TemporaryDirectory(prefix="otter-") as work:
            otter_assign(str(path), str(Path(work) / "dist"), no_run_tests=True, no_pdfs=True)
            dist = Path(work) / "dist"
            student = student_dir / path.name
            _write_student_notebook(dist / "student" / path.name, student)
            autograder = grader_dir / path.name
            shutil.copyfile(dist / "autograder" / path.name, autograder)
            zips = sorted((dist / "autograder").glob("*.zip"))
            zip_path = None
            if zips:
                zip_path = grader_dir / f"{path.stem}-autograder.zip"
                shutil.copyfile(zips[-1], zip_path)
        written[path.stem] = {"student": student, "autograder": autograder, "zip": zip_path}
    return written


BOOK_ONLY_TAGS = ("solution", "hide-cell")


def _write_student_notebook(source: Path, target: Path) -> None:
    # otter strips the outputs; the explorers' stored frames (notebook metadata) go with them,
    # and so do the book's tags on what are now the student's answer cells.
    nb = nbformat.read(source, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        tags = [tag for tag in cell.metadata.get("tags", []) if tag not in BOOK_ONLY_TAGS]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    nbformat.write(nb, target)


if __name__ == "__main__":
    import sys

    folder = sys.argv[1] if len(sys.argv) > 1 else "notebooks"
    target = sys.argv[2] if len(sys.argv) > 2 else "build"
    for stem, paths in build_student_edition(assignment_notebooks(folder), target).items():
        print(f"{stem}: student edition {paths['student']}, autograder {paths['zip'] or paths['autograder']}")
