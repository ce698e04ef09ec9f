"""The student edition of the notebooks and the autograder zips that grade it (``make exercises``).

Every numbered notebook ends with exercises written in otter-grader's assign format: a raw
``# ASSIGNMENT CONFIG`` cell, then per exercise raw ``# BEGIN QUESTION`` / ``# BEGIN SOLUTION``
/ ``# BEGIN TESTS`` cells around the prompt, the solution and the checks. Each exercise has an
autograded part, whose public test checks the answer's form (type, shape, keys) and whose
hidden tests check its value and carry the points, and a written part (``manual: true``) whose
model answer and rubric only the instructor's edition holds. The committed notebook is that
edition: its solutions run, and every check runs as a plain assert.

``build_student_edition`` runs ``otter assign`` on each notebook, after adding what grading
needs to its assignment config, and writes under ``out/``:

- ``student/<notebook>.ipynb``: solutions replaced by ``...``, outputs removed, one
  ``grader.check("<exercise>")`` cell per exercise (public tests only), an export cell that
  zips the notebook for submission, and citations as plain "(Author year)" text; beside the
  notebooks, the files they need (``results/*.json``, the labkit wheel, ``requirements.txt``);
- ``handout/<notebook>.zip``: one notebook with those files, to give to each student; its
  links to other pages of the book (the next notebook, the course guide) point to the book's
  address (``book_url``) or, without one, become plain text, since the zip holds no other page;
- ``autograder/<notebook>.ipynb`` and ``<notebook>-autograder.zip``: the notebook with
  solutions, and the zip that ``otter run`` or Gradescope grades submissions with. The zip
  declares everything grading needs: its ``environment.yml`` (conda, as Gradescope builds it)
  and ``requirements.txt`` (pip) list otter-grader, torch's CPU wheel and the labkit wheel
  shipped in ``files/``, which also holds the result sets the notebook reads.

Per-student variants: a notebook's exercises may open with a code cell tagged ``student-id``
that sets ``STUDENT_ID`` and derives the seed of the exercises' data from it (``VARIANT``), so
that every student gets other data and other expected values; the hidden checks recompute the
seed from ``STUDENT_ID``. The instructor's edition names an example id; the student edition
leaves it blank (``STUDENT_ID = ""``), and the cell refuses to run until the student fills it.

Both editions set ``LABKIT_FIGURES``, ``LABKIT_CACHE`` and ``LABKIT_RESULTS`` to folders beside
the notebook in a cell after otter's init cell, so running or grading a notebook writes
nowhere else (not into a labkit checkout that happens to be importable).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import yaml

from .questions import questions, rubric_sheet
from .references import render_citations

__all__ = ["ROOT", "TORCH_CPU_INDEX", "ENV_CELL", "is_assignment", "assignment_notebooks",
           "results_read_by", "build_wheel", "grading_requirements", "build_student_edition",
           "variant_seed", "handout_links", "STUDENT_ID_TAG"]

ROOT = Path(__file__).resolve().parent.parent
# torch's CPU wheels (PyTorch's own instructions): of the equal versions pip finds there and on
# PyPI it prefers the local version 2.x.y+cpu, so grading installs no CUDA libraries.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_CONFIG = re.compile(r"#\s+assignment\s+config", re.I)
_RESULTS = re.compile(r"results_table\(\s*[\"'](\w+)[\"']")
_CLAIMS = re.compile(r"claims\.load_claims\(")  # reads results/claims.json
# What the wheel is built from (a copy, so the build writes nothing into the checkout).
WHEEL_SOURCES = ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "CITATION.cff",
                 "CHANGELOG.md", "labkit")
BOOK_ONLY_TAGS = ("solution", "hide-cell")

ENV_CELL = """\
import os

# Figures, cache and result sets stay in this notebook's folder: running or grading the
# notebook writes nowhere else.
for variable, folder in (("LABKIT_FIGURES", "figures"), ("LABKIT_CACHE", ".labkit-cache"),
                         ("LABKIT_RESULTS", "results")):
    os.environ[variable] = os.path.abspath(folder)"""

STUDENT_ID_TAG = "student-id"
_ID_LINE = re.compile(r"^STUDENT_ID\s*=.*$", re.M)
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
BLANK_ID = 'STUDENT_ID = ""  # your student id, between the quotes'


def variant_seed(student_id: str) -> int:
    """The seed of a student's variant: the first 8 bytes of the SHA-256 of the stripped id,
    modulo 2**31 (the notebooks' ``student-id`` cells compute the same)."""
    import hashlib

    if not isinstance(student_id, str) or not student_id.strip():
        raise ValueError(f"student_id must be a non-empty string, got {student_id!r}")
    digest = hashlib.sha256(student_id.strip().encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


def handout_links(nb, present, book_url: str | None = None) -> list[str]:
    """Rewrite the relative markdown links of ``nb`` whose target is not among ``present``
    (the names of the hand-out's files): to ``book_url`` (``NN_x.ipynb`` ->
    ``<book_url>/notebooks/NN_x.html``, ``../page.md`` -> ``<book_url>/page.html``), or, without
    a ``book_url``, to their text alone. Returns the targets rewritten."""
    present, rewritten = set(present), []

    def fix(match):
        text, target = match.groups()
        if target.startswith(("http:", "https:", "mailto:", "#")):
            return match.group(0)
        path = target.split("#", 1)[0]
        if path in present or not path:
            return match.group(0)
        rewritten.append(target)
        if not book_url:
            return text
        page = Path(path)
        if page.suffix == ".ipynb" and page.parent == Path("."):
            name = f"notebooks/{page.stem}.html"  # a notebook beside this one
        elif page.parent == Path(".."):
            name = page.with_suffix(".html").name  # a page of docs/, like the course guide
        else:
            name = page.with_suffix(".html").as_posix()
        anchor = "#" + target.split("#", 1)[1] if "#" in target else ""
        return f"[{text}]({book_url.rstrip('/')}/{name}{anchor})"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _LINK.sub(fix, cell.source)
    return rewritten


EXPORT_INSTRUCTIONS = "Hand in the zip file that the cell below writes into this folder."


def is_assignment(nb) -> bool:
    """Whether notebook ``nb`` carries exercises (an otter ``# ASSIGNMENT CONFIG`` raw cell)."""
    return any(c.cell_type == "raw" and _CONFIG.match(c.source.lstrip()) for c in nb.cells)


def assignment_notebooks(folder: str | Path) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in ``folder`` that carry exercises, in order."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if is_assignment(nbformat.read(p, as_version=4))]


def results_read_by(nb) -> list[str]:
    """The result sets (``results/<name>.json``) that notebook ``nb``'s code reads, in order,
    and ``claims`` (``results/claims.json``) when it loads the declared claims."""
    names: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            names += [n for n in _RESULTS.findall(cell.source) if n not in names]
            if _CLAIMS.search(cell.source) and "claims" not in names:
                names.append("claims")
    return names


def build_wheel(out: str | Path) -> Path:
    """Build labkit's wheel (``python -m build --wheel``) from a copy of the sources into
    ``out``; returns its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-wheel-") as src:
        for name in WHEEL_SOURCES:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, Path(src) / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
            elif (ROOT / name).is_file():
                shutil.copy2(ROOT / name, Path(src) / name)
        before = set(out.glob("*.whl"))
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                        str(out), src], check=True, capture_output=True, text=True)
    wheels = sorted(set(out.glob("*.whl")) - before) or sorted(out.glob("*.whl"))
    if not wheels:
        raise RuntimeError(f"python -m build wrote no wheel into {out}")
    return wheels[-1]


def grading_requirements(wheel_name: str) -> list[str]:
    """The pip requirements of grading, besides otter-grader: torch's CPU wheel (the version
    this environment runs) and the labkit wheel at ``files/<wheel_name>`` of the zip."""
    import torch

    torch_version = torch.__version__.split("+")[0]
    return [f"--extra-index-url {TORCH_CPU_INDEX}", f"torch=={torch_version}",
            f"./files/{wheel_name}"]


def _otter_requirement() -> str:
    from otter import __version__

    return f"otter-grader[grading,plugins]=={__version__}"


def _set_config(nb, **updates) -> None:
    cell = next(c for c in nb.cells if c.cell_type == "raw" and _CONFIG.match(c.source.lstrip()))
    header, _, body = cell.source.partition("\n")
    config = yaml.safe_load(body) or {}
    config.update(updates)
    cell.source = header + "\n" + yaml.safe_dump(config, sort_keys=False).rstrip()


def build_student_edition(notebooks, out: str | Path = "build",
                          book_url: str | None = None) -> dict[str, dict[str, Path]]:
    """Run ``otter assign`` on each notebook; write ``out/student``, ``out/handout`` and
    ``out/autograder`` (see the module docstring).

    notebooks: paths of instructor notebooks (see ``assignment_notebooks``). Returns, per
    notebook stem, the paths written: ``{"student", "handout", "autograder", "zip", "rubric"}``
    (``rubric``: ``autograder/<notebook>-written.md``, the written questions' model answers and
    rubrics, for the instructor). book_url: the book's address, for the hand-outs' links to
    its other pages (default: the ``LABKIT_BOOK_URL`` environment variable, else none).
    Tests are not run here (``tests/test_exercises.py`` runs them).
    """
    from otter.assign import main as otter_assign

    notebooks = [Path(p).resolve() for p in notebooks]
    if not notebooks:
        raise ValueError("notebooks must name at least one notebook")
    for path in notebooks:
        if not path.is_file():
            raise ValueError(f"no such notebook: {path}")
    book_url = book_url if book_url is not None else os.environ.get("LABKIT_BOOK_URL") or None
    out = Path(out).resolve()
    dirs = {name: out / name for name in ("student", "handout", "autograder", "wheel")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(dirs["wheel"])
    requirements = grading_requirements(wheel.name)
    built_paths = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        results = [f"results/{name}.json" for name in results_read_by(nb)]
        for name in results:
            if not (ROOT / name).is_file():
                raise ValueError(f"{path.name} reads {name}, which does not exist")
        with tempfile.TemporaryDirectory(prefix="otter-") as tmp:
            work = Path(tmp) / "work"
            (work / "results").mkdir(parents=True)
            for name in results:
                shutil.copy2(ROOT / name, work / name)
            shutil.copy2(wheel, work / wheel.name)
            (work / "requirements.txt").write_text("\n".join(requirements) + "\n")
            _set_config(nb, requirements="requirements.txt", files=[wheel.name, *results],
                        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
                        export_cell={"pdf": False, "force_save": False, "run_tests": True,
                                     "instructions": EXPORT_INSTRUCTIONS})
            nbformat.write(nb, work / path.name)
            dist = Path(tmp) / "dist"
            with contextlib.chdir(work):
                otter_assign(str(work / path.name), str(dist), no_run_tests=True, no_pdfs=True)
            student = dirs["student"] / path.name
            written = [q for q in questions(nb) if q.manual]
            _write_edition(dist / "student" / path.name, student, written=written)
            for name in [wheel.name, *results]:
                (dirs["student"] / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(work / name, dirs["student"] / name)
            (dirs["student"] / "requirements.txt").write_text(
                "\n".join([_otter_requirement(), *requirements[:2], f"./{wheel.name}"]) + "\n")
            autograder = dirs["autograder"] / path.name
            _write_edition(dist / "autograder" / path.name, autograder, written=None)
            rubric = dirs["autograder"] / f"{path.stem}-written.md"
            rubric.write_text(rubric_sheet(nb, path.stem))
            zip_path = dirs["autograder"] / f"{path.stem}-autograder.zip"
            built = sorted((dist / "autograder").glob("*.zip"))
            if not built:
                raise RuntimeError(f"otter assign wrote no autograder zip for {path.name}")
            _finish_zip(built[-1], zip_path, [_otter_requirement(), *requirements])
            handout = dirs["handout"] / f"{path.stem}.zip"
            _write_handout(handout, student, dirs["student"], [wheel.name, *results,
                                                                "requirements.txt"], book_url)
        built_paths[path.stem] = {"student": student, "handout": handout,
                                  "autograder": autograder, "zip": zip_path, "rubric": rubric}
    return built_paths


def _write_edition(source: Path, target: Path, written) -> None:
    """Add the environment cell; for the student edition (``written``: its written questions,
    in order) also drop the book's tags and the explorers' frames, render the citations and
    mark each written answer cell with ``metadata.course.question`` (the collector reads it)."""
    # otter strips the outputs; the explorers' stored frames (notebook metadata) go with them,
    # and so do the book's tags on what are now the student's answer cells.
    nb = nbformat.read(source, as_version=4)
    init = next((i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and "otter.Notebook(" in c.source), None)
    if init is None:
        raise RuntimeError(f"{source.name}: otter assign wrote no init cell (init_cell: true)")
    nb.cells.insert(init + 1, nbformat.v4.new_code_cell(ENV_CELL))
    if written is not None:
        answers = [c for c in nb.cells if c.cell_type == "markdown"
                   and "otter_answer_cell" in c.metadata.get("tags", [])]
        if len(answers) != len(written):
            raise RuntimeError(f"{source.name}: {len(answers)} written answer cells for "
                               f"{len(written)} written questions")
        for cell, question in zip(answers, written):
            cell.metadata["course"] = {"question": question.name, "points": question.points}
        for cell in nb.cells:  # the student fills in their own id
            if cell.cell_type == "code" and STUDENT_ID_TAG in cell.metadata.get("tags", []):
                cell.source = _ID_LINE.sub(BLANK_ID, cell.source, count=1)
        nb.metadata.pop("widgets", None)
        render_citations(nb)
        for cell in nb.cells:
            tags = [tag for tag in cell.metadata.get("tags", []) if tag not in BOOK_ONLY_TAGS]
            if tags:
                cell.metadata["tags"] = tags
            else:
                cell.metadata.pop("tags", None)
    nbformat.write(nb, target)


def _finish_zip(built: Path, target: Path, requirements: list[str]) -> None:
    """Copy otter's zip, adding ``requirements.txt``: the same pip requirements as its
    ``environment.yml``, for graders who build a venv instead of a conda environment."""
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr("requirements.txt", "\n".join(requirements) + "\n")
    os.replace(tmp, target)


def _write_handout(target: Path, notebook: Path, folder: Path, files: list[str],
                   book_url: str | None = None) -> None:
    nb = nbformat.read(notebook, as_version=4)
    handout_links(nb, [notebook.name, *files], book_url)
    tmp = target.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(notebook.name, nbformat.writes(nb))
        for name in files:
            zf.write(folder / name, name)
    os.replace(tmp, target)
