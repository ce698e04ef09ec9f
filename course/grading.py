"""Grade a folder of submissions with an autograder zip: one score table, one answer sheet.

``otter grade`` grades a folder in Docker containers. ``grade_folder`` does the same without
Docker: ``otter run`` on each submission (a notebook, or the zip its export cell wrote), each in
a scratch folder of its own with ``LABKIT_FIGURES``, ``LABKIT_CACHE`` and ``LABKIT_RESULTS``
inside it, so grading writes nothing anywhere else. It writes

- ``scores.csv``: one row per submission, one column per autograded question, the total and the
  maximum (an error column says why a submission could not be graded);
- ``written.md``: the written answers, question by question, under each question's rubric
  (taken from the instructor notebook); ``written.csv``: one row per submission and written
  question with an empty ``score`` column, for the instructor to fill in.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

from .questions import questions

__all__ = ["submissions_in", "grade_submission", "written_answers", "grade_folder"]


def submissions_in(folder: str | Path) -> list[Path]:
    """The submissions in ``folder``: ``*.ipynb`` and ``*.zip`` files, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"submissions must be a folder, got {str(folder)!r}")
    return sorted(p for p in folder.iterdir() if p.suffix in (".ipynb", ".zip") and p.is_file())


def grade_submission(autograder: str | Path, submission: str | Path, scratch: str | Path,
                     timeout: float = 1800, otter: str | None = None) -> dict:
    """``otter run`` one submission inside ``scratch``; returns otter's ``results.json``.

    otter: the ``otter`` command to use (default: the one beside this Python).
    """
    scratch = Path(scratch)
    (scratch / "home").mkdir(parents=True, exist_ok=True)
    otter = otter or str(Path(sys.executable).with_name("otter"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_") or k == "LABKIT_FAST"}
    env.update(LABKIT_FIGURES=str(scratch / "figures"), LABKIT_CACHE=str(scratch / "cache"),
               LABKIT_RESULTS=str(scratch / "results"), TMPDIR=str(scratch),
               MPLCONFIGDIR=str(scratch / "mpl"))
    done = subprocess.run([otter, "run", "--no-logo", "-a", str(Path(autograder).resolve()),
                           "-o", str(scratch), str(Path(submission).resolve())],
                          cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
    results = scratch / "results.json"
    if done.returncode != 0 or not results.is_file():
        raise RuntimeError(f"otter run failed on {Path(submission).name} "
                           f"(exit {done.returncode}):\n"
                           + (done.stdout + done.stderr)[-3000:])
    return json.loads(results.read_text())


def _notebook_of(submission: Path):
    if submission.suffix == ".zip":
        with zipfile.ZipFile(submission) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".ipynb") and "/" not in n)
            return nbformat.reads(zf.read(name).decode(), as_version=4)
    return nbformat.read(submission, as_version=4)


def written_answers(nb) -> dict[str, str]:
    """The written answers of a student notebook: ``{question name: markdown}`` (the answer
    cells that ``make exercises`` marks with ``metadata.course.question``)."""
    return {c.metadata["course"]["question"]: c.source for c in nb.cells
            if c.cell_type == "markdown" and "question" in c.metadata.get("course", {})}


def grade_folder(autograder: str | Path, folder: str | Path, out: str | Path,
                 instructor: str | Path | None = None, timeout: float = 1800) -> Path:
    """Grade every submission in ``folder`` (see the module docstring); returns ``scores.csv``.

    instructor: the instructor notebook, for the rubrics of ``written.md`` (without it the
    answers are listed without rubrics).
    """
    subs = submissions_in(folder)
    if not subs:
        raise ValueError(f"no submissions (*.ipynb, *.zip) in {str(folder)!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, names, answers = [], [], {}
    for sub in subs:
        row = {"submission": sub.name}
        with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
            try:
                results = grade_submission(autograder, sub, scratch, timeout=timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                row["error"] = str(error).splitlines()[0]
                results = {"tests": []}
        total = maximum = 0.0
        for test in results["tests"]:
            if "max_score" not in test or test.get("max_score") is None:
                continue  # otter's "Public Tests" summary
            row[test["name"]] = test["score"]
            total, maximum = total + test["score"], maximum + test["max_score"]
            if test["name"] not in names:
                names.append(test["name"])
        row.update(total=total, max=maximum)
        rows.append(row)
        try:
            answers[sub.name] = written_answers(_notebook_of(sub))
        except (StopIteration, zipfile.BadZipFile, nbformat.ValidationError, ValueError):
            answers[sub.name] = {}
    scores = out / "scores.csv"
    with scores.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["submission", *names, "total", "max", "error"], restval="")
        writer.writeheader()
        writer.writerows(rows)
    _write_written(out, answers, instructor)
    return scores


def _write_written(out: Path, answers: dict[str, dict[str, str]], instructor) -> None:
    written = ([q for q in questions(nbformat.read(instructor, as_version=4)) if q.manual]
               if instructor else [])
    order = [q.name for q in written] or sorted({n for a in answers.values() for n in a})
    info = {q.name: q for q in written}
    lines = ["# Written answers", ""]
    with (out / "written.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "question", "points", "score"])
        for name in order:
            q = info.get(name)
            lines += [f"## {name}" + (f" ({q.points:g} points)" if q else ""), ""]
            if q:
                lines += [q.prompt.strip(), "", "**Model answer and rubric**", "",
                          q.solution.replace("<details><summary>Solution: why</summary>", "")
                          .replace("</details>", "").strip(), ""]
            for sub, given in answers.items():
                lines += [f"### {sub}", "", given.get(name, "*(no answer cell)*").strip(), ""]
                writer.writerow([sub, name, f"{q.points:g}" if q else "", ""])
    (out / "written.md").write_text("\n".join(lines))
