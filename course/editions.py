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
- ``handout/<notebook>.zip``: one notebook with those files, to give to each student;
- ``autograder/<notebook>.ipynb`` and ``<notebook>-autograder.zip``: the notebook with
  solutions, and the zip that ``otter run`` or Gradescope grades submissions with. The zip
  declares everything grading needs: its ``environment.yml`` (conda, as Gradescope builds it)
  and ``requirements.txt`` (pip) list otter-grader, torch's CPU wheel and the labkit wheel
  shipped in ``files/``, which also holds the result sets the notebook reads.

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
           "results_read_by", "build_wheel", "grading_requirements", "build_student_edition"]

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


def build_student_edition(notebooks, out: str | Path = "build") -> dict[str, dict[str, Path]]:
    """Run ``otter assign`` on each notebook; write ``out/student``, ``out/handout`` and
    ``out/autograder`` (see the module docstring).

    notebooks: paths of instructor notebooks (see ``assignment_notebooks``). Returns, per
    notebook stem, the paths written: ``{"student", "handout", "autograder", "zip", "rubric"}``
    (``rubric``: ``autograder/<notebook>-written.md``, the written questions' model answers and
    rubrics, for the instructor).
    Tests are not run here (``tests/test_exercises.py`` runs them).
    """
    from otter.assign import main as otter_assign

    notebooks = [Path(p).resolve() for p in notebooks]
    if not notebooks:
        raise ValueError("notebooks must name at least one notebook")
    for path in notebooks:
        if not path.is_file():
            raise ValueError(f"no such notebook: {path}")
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
                                                                "requirements.txt"])
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


def _write_handout(target: Path, notebook: Path, folder: Path, files: list[str]) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(notebook, notebook.name)
        for name in files:
            zf.write(folder / name, name)
