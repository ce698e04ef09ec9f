"""The student edition of the book (``make book-student``): the student notebooks as pages.

``stage_student_book`` copies ``docs/`` into a source folder of its own (so the reader's and
the student's builds never share a folder) and writes there, for every student notebook, the
page Sphinx renders: the student notebook, with the outputs of the lesson cells (those before
the exercises, matched to the instructor notebook by their source) and the explorers' stored
frames, and with otter's plumbing cells (init, environment, checks, export) hidden. Exercise
cells get no outputs: the measurements of predict-then-check exercises stay unseen. The
download button of each page serves the student notebook itself (``make book-student`` copies
it over the page source in ``_sources/``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

from .editions import ROOT

__all__ = ["PLUMBING", "is_plumbing", "student_page", "stage_student_book"]

# Code that otter (or make exercises) adds to the student edition.
PLUMBING = ("otter.Notebook(", "grader.check(", "grader.export(", 'os.environ[variable]')


def is_plumbing(cell) -> bool:
    """Whether a code cell is otter's init, check or export cell, or the environment cell."""
    return cell.cell_type == "code" and any(mark in cell.source for mark in PLUMBING)


def student_page(student, instructor):
    """The page of one notebook: ``student`` with the lesson outputs of ``instructor``."""
    page = nbformat.from_dict(student)
    outputs = {}
    for cell in instructor.cells:
        if "exercises" in cell.metadata.get("tags", []):
            break
        if cell.cell_type == "code":
            outputs.setdefault(cell.source, cell.get("outputs", []))
    in_exercises = False
    for cell in page.cells:
        in_exercises = in_exercises or "exercises" in cell.metadata.get("tags", [])
        if cell.cell_type != "code":
            continue
        if is_plumbing(cell):
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), "remove-cell"]
        elif not in_exercises and cell.source in outputs:
            cell.outputs = outputs[cell.source]
    for key in ("widgets", "labkit"):
        if key in instructor.metadata:
            page.metadata[key] = instructor.metadata[key]
    return page


def stage_student_book(student_dir: str | Path, out: str | Path,
                       notebooks: str | Path = ROOT / "notebooks") -> Path:
    """Copy ``docs/`` to ``out/docs``, write the student pages into ``out/docs/notebooks`` and
    link ``out/figures`` to the checkout's figures (the pages refer to ``../figures``); returns
    ``out/docs``, the Sphinx source folder. student_dir: ``make exercises``' ``build/student``."""
    student_dir, out = Path(student_dir), Path(out)
    found = sorted(student_dir.glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise ValueError(f"no student notebooks in {str(student_dir)!r}: run make exercises")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "figures").symlink_to(ROOT / "figures", target_is_directory=True)
    out = out / "docs"
    shutil.copytree(ROOT / "docs", out, ignore=shutil.ignore_patterns("notebooks", "_build",
                                                                      "__pycache__"))
    (out / "notebooks").mkdir()
    for path in sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb")):
        instructor = nbformat.read(path, as_version=4)
        source = student_dir / path.name
        page = (student_page(nbformat.read(source, as_version=4), instructor) if source.is_file()
                else instructor)  # a notebook without exercises has one edition
        nbformat.write(page, out / "notebooks" / path.name)
    return out


_MIN_CHARS = 12  # shorter solution lines (``return x``) say nothing on their own


def solution_lines(nb) -> list[str]:
    """The text of every solution line of instructor notebook ``nb``: code lines marked
    ``# SOLUTION`` or inside ``# BEGIN SOLUTION`` / ``# END SOLUTION``, and the lines of the
    markdown solution cells (model answers and rubrics). Whitespace is collapsed; lines
    shorter than 12 characters are left out."""
    found = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and "solution" in tags:
            # As the page's text reads: no list markers, emphasis or code marks; lines with
            # math are left out (MathJax's source differs from the Markdown's).
            lines = [re.sub(r"^\s*[-*]\s+|\*\*|\*|`", "", line)
                     for line in cell.source.splitlines()
                     if "<summary>" not in line and "details>" not in line and "$" not in line]
        elif cell.cell_type == "code":
            lines, inside = [], False
            for line in cell.source.splitlines():
                marker = line.strip().upper()
                if marker == "# BEGIN SOLUTION":
                    inside = True
                elif marker == "# END SOLUTION":
                    inside = False
                elif inside or line.rstrip().endswith("# SOLUTION"):
                    lines.append(line.rsplit("# SOLUTION", 1)[0])
        else:
            continue
        found += [text for text in (" ".join(line.split()) for line in lines)
                  if len(text) >= _MIN_CHARS and not text.startswith("#")]
    return found


def _page_text(path: Path) -> str:
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts = []

        def handle_data(self, data):
            self.parts.append(data)

    parser = Text()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return " ".join("".join(parser.parts).split())


def _public_text(notebooks: Path) -> str:
    """What the student edition may show: the instructor notebooks without their solutions
    (lessons, prompts, given cells) and labkit's source (the book shows it)."""
    parts = [p.read_text(encoding="utf-8") for p in (ROOT / "labkit").rglob("*.py")]
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if "solution" not in cell.metadata.get("tags", []):
                parts.append(cell.source)
    return " ".join(" ".join(parts).split())


def solution_leaks(site: str | Path, notebooks: str | Path = ROOT / "notebooks") -> list[str]:
    """Every solution line (``solution_lines``) of the instructor notebooks that appears in a
    built site: in a page's text, a downloadable notebook or a page source. A line that the
    lessons, the prompts or labkit's source also hold (``alpha_t, sigma_t = alpha_sigma(t)``)
    gives nothing away and is not counted. Empty when the site holds no solution."""
    site = Path(site)
    if not (site / "index.html").is_file():
        raise ValueError(f"{str(site)!r} is not a built site (no index.html)")
    texts = {p: _page_text(p) for p in site.rglob("*.html")}
    for pattern in ("*.ipynb", "*.txt", "*.md"):
        for p in site.rglob(pattern):
            if "_static" not in p.parts:
                raw = p.read_text(encoding="utf-8", errors="replace")
                if p.suffix == ".ipynb":  # the cells' text, not their JSON escapes
                    nb = nbformat.reads(raw, as_version=4)
                    raw = "\n".join(c.source for c in nb.cells)
                texts[p] = " ".join(raw.split())
    leaks, public = [], _public_text(Path(notebooks))
    for path in sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb")):
        for line in solution_lines(nbformat.read(path, as_version=4)):
            if line in public:
                continue
            leaks += [f"{path.name}: {line!r} in {where.relative_to(site)}"
                      for where, text in texts.items() if line in text]
    return leaks
