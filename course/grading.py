"""Grade a folder of submissions with an autograder zip: one score table, one answer sheet.

``otter grade`` grades a folder in Docker containers. ``grade_folder`` does the same without
Docker: ``otter run`` on each submission (a notebook, or the zip its export cell wrote), each in
a scratch folder of its own with ``LABKIT_FIGURES``, ``LABKIT_CACHE`` and ``LABKIT_RESULTS``
inside it, so grading writes nothing anywhere else. It writes

- ``scores.csv``: one row per submission, one column per autograded question, the total and the
  maximum (an error column says why a submission could not be graded);
- ``written.md``: the written answers, question by question, under each question's rubric
  (taken from the instructor notebook); ``written.csv``: one row per submission and written
  question with an empty ``score`` column, for the instructor to fill in;
- ``points.json``: the points each question carries, and ``gradebook.csv`` (see
  ``gradebook``).

Each submission is keyed by the student id its notebook states (``STUDENT_ID = "..."`` in the
cell tagged ``student-id``, which also picks the student's variant of the exercises), or by
its file name when it states none.

``gradebook`` merges ``scores.csv`` and the filled-in ``written.csv`` into ``gradebook.csv``,
one row per student: every question's points, the coded, written and overall totals, the
maximum, and a status saying what is missing. ``export_roster`` writes the totals of one or
more gradebooks as a CSV that Canvas or Moodle imports (see ``export_roster``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

from .questions import questions

__all__ = ["submissions_in", "grade_submission", "written_answers", "student_id_of",
           "grade_folder", "gradebook", "export_roster", "POINTS_ROW"]

POINTS_ROW = "Points Possible"  # the first row of a gradebook, as in a Canvas export
_STUDENT_ID = re.compile(r"^STUDENT_ID\s*=\s*([\"'])(.*?)\1", re.M)


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


def student_id_of(nb) -> str:
    """The student id that notebook ``nb`` states (``STUDENT_ID = "..."`` in a code cell),
    stripped; ``""`` when it states none."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            match = _STUDENT_ID.search(cell.source)
            if match:
                return match.group(2).strip()
    return ""


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
    rows, names, answers, points = [], [], {}, {}
    for sub in subs:
        row = {"submission": sub.name}
        try:
            nb = _notebook_of(sub)
        except (StopIteration, zipfile.BadZipFile, nbformat.ValidationError, ValueError):
            nb = None
        row["student"] = (student_id_of(nb) if nb is not None else "") or sub.stem
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
            points[test["name"]] = test["max_score"]
            total, maximum = total + test["score"], maximum + test["max_score"]
            if test["name"] not in names:
                names.append(test["name"])
        row.update(total=total, max=maximum)
        rows.append(row)
        answers[sub.name] = (row["student"], written_answers(nb) if nb is not None else {})
    scores = out / "scores.csv"
    _write_csv(scores, ["submission", "student", *names, "total", "max", "error"], rows)
    points.update(_write_written(out, answers, instructor))
    _write_text(out / "points.json", json.dumps(points, indent=1) + "\n")
    gradebook(out)
    return scores


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _write_written(out: Path, answers: dict[str, tuple[str, dict[str, str]]],
                   instructor) -> dict[str, float]:
    """Write ``written.md`` and ``written.csv``; returns the written questions' points."""
    written = ([q for q in questions(nbformat.read(instructor, as_version=4)) if q.manual]
               if instructor else [])
    order = [q.name for q in written] or sorted({n for _, a in answers.values() for n in a})
    info = {q.name: q for q in written}
    lines, rows = ["# Written answers", ""], []
    for name in order:
        q = info.get(name)
        lines += [f"## {name}" + (f" ({q.points:g} points)" if q else ""), ""]
        if q:
            lines += [q.prompt.strip(), "", "**Model answer and rubric**", "",
                      q.solution.replace("<details><summary>Solution: why</summary>", "")
                      .replace("</details>", "").strip(), ""]
        for sub, (student, given) in answers.items():
            lines += [f"### {sub} (student {student})", "",
                      given.get(name, "*(no answer cell)*").strip(), ""]
            rows.append({"submission": sub, "student": student, "question": name,
                         "points": f"{q.points:g}" if q else "", "score": ""})
    _write_csv(out / "written.csv", ["submission", "student", "question", "points", "score"],
               rows)
    _write_text(out / "written.md", "\n".join(lines))
    return {q.name: q.points for q in written}


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text!r}") from None


def gradebook(folder: str | Path, out: str | Path | None = None) -> Path:
    """Merge ``folder/scores.csv`` (coded) and ``folder/written.csv`` (written, its ``score``
    column filled by the instructor) into ``gradebook.csv`` (in ``folder`` unless ``out``
    names a file); returns its path.

    One row per student id: ``student``, ``submission``, one column per question (coded ones
    first, each its points), ``coded``, ``written`` and ``total`` (the sums), ``max`` and
    ``status`` (``complete``, or what is missing: written questions not yet scored, an error
    of the coded grading, a student id that two submissions state). The first row, whose
    ``student`` is ``Points Possible``, holds each question's maximum. A blank written score
    counts 0 until it is filled in. Raises ValueError when a written score is not a number or
    lies outside ``[0, points]``, or when a file is missing.
    """
    folder = Path(folder)
    paths = {name: folder / name for name in ("scores.csv", "written.csv", "points.json")}
    for name, path in paths.items():
        if not path.is_file():
            raise ValueError(f"folder must hold {name} (python -m course grade writes it): "
                             f"{str(path)!r} does not exist")
    coded_rows, written_rows = _read_csv(paths["scores.csv"]), _read_csv(paths["written.csv"])
    points = json.loads(paths["points.json"].read_text())
    fixed = {"submission", "student", "total", "max", "error"}
    coded_names = [k for k in (coded_rows[0] if coded_rows else {}) if k not in fixed]
    written_names = list(dict.fromkeys(r["question"] for r in written_rows))
    scored: dict[str, dict[str, float | None]] = {}
    for i, row in enumerate(written_rows, start=2):
        limit = points.get(row["question"])
        value = row["score"].strip()
        score = None
        if value:
            score = _number(value, f"written.csv line {i} ({row['submission']}, "
                                   f"{row['question']}): score")
            if not 0 <= score <= (limit if limit is not None else float("inf")):
                raise ValueError(f"written.csv line {i} ({row['submission']}, "
                                 f"{row['question']}): score {score:g} lies outside "
                                 f"[0, {limit:g}]")
        scored.setdefault(row["submission"], {})[row["question"]] = score
    claims: dict[str, int] = {}
    for row in coded_rows:
        claims[row["student"]] = claims.get(row["student"], 0) + 1
    rows = [{"student": POINTS_ROW, "submission": "",
             **{n: f"{points.get(n, 0):g}" for n in coded_names + written_names},
             "coded": f"{sum(points.get(n, 0) for n in coded_names):g}",
             "written": f"{sum(points.get(n, 0) for n in written_names):g}",
             "total": f"{sum(points.get(n, 0) for n in coded_names + written_names):g}",
             "max": "", "status": ""}]
    for row in coded_rows:
        coded = {n: _number(row[n] or "0", f"scores.csv ({row['submission']}): {n}")
                 for n in coded_names}
        written = scored.get(row["submission"], {})
        missing = [n for n in written_names if written.get(n) is None]
        status = []
        if row.get("error"):
            status.append(f"coded grading failed: {row['error']}")
        if missing:
            status.append("written not scored: " + ", ".join(missing))
        if claims[row["student"]] > 1:
            status.append(f"student id {row['student']!r} stated by "
                          f"{claims[row['student']]} submissions")
        coded_total = sum(coded.values())
        written_total = sum(v or 0.0 for v in written.values())
        rows.append({"student": row["student"], "submission": row["submission"],
                     **{n: f"{v:g}" for n, v in coded.items()},
                     **{n: "" if written.get(n) is None else f"{written[n]:g}"
                        for n in written_names},
                     "coded": f"{coded_total:g}", "written": f"{written_total:g}",
                     "total": f"{coded_total + written_total:g}", "max": rows[0]["total"],
                     "status": "; ".join(status) or "complete"})
    target = Path(out) if out is not None else folder / "gradebook.csv"
    _write_csv(target, ["student", "submission", *coded_names, *written_names, "coded",
                        "written", "total", "max", "status"], rows)
    return target


# The roster columns that identify a student, in the order they are tried: Canvas's export
# (SIS User ID, ID, SIS Login ID), then Moodle's (ID number, Username, Email address).
ROSTER_KEYS = ("SIS User ID", "ID number", "Student ID", "SIS Login ID", "ID", "Username",
               "Email address")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def export_roster(gradebooks: dict[str, str | Path], out: str | Path,
                  roster: str | Path | None = None, key: str | None = None,
                  lms: str = "canvas", allow_incomplete: bool = False) -> Path:
    """Write the totals of ``gradebooks`` (``{assignment column: gradebook.csv}``) as a CSV
    an LMS imports, one row per student and one column per assignment; returns ``out``.

    roster: the LMS's own grade export (Canvas: Grades > Export; Moodle: Grades > Export >
    Plain text file). Its rows and columns are kept, in order; each assignment becomes a
    column (filled in, or added at the end), matched on the column ``key`` (default: the
    first of ``ROSTER_KEYS`` the roster has) against the student ids of the gradebooks. A
    roster student without a submission gets a blank cell, which both LMSs leave unchanged.
    Without a roster: ``lms="canvas"`` writes Canvas's columns (``Student``, ``ID``,
    ``SIS User ID``, ``SIS Login ID``, ``Section``; the student id as ``SIS User ID``) and a
    ``Points Possible`` row; ``lms="moodle"`` writes ``ID number`` and the assignments.
    Raises ValueError when a gradebook has students whose written answers are not all scored
    (unless ``allow_incomplete``), when a roster lacks ``key``, or when a gradebook's student
    is not on the roster.
    """
    if lms not in ("canvas", "moodle"):
        raise ValueError(f"lms must be 'canvas' or 'moodle', got {lms!r}")
    if not gradebooks:
        raise ValueError("gradebooks must name at least one gradebook.csv")
    totals: dict[str, dict[str, str]] = {}
    possible: dict[str, str] = {}
    for column, path in gradebooks.items():
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"gradebooks: {str(path)!r} does not exist")
        rows = _read_csv(path)
        incomplete = [r["student"] for r in rows[1:] if "written not scored" in r["status"]]
        if incomplete and not allow_incomplete:
            raise ValueError(f"gradebooks: {path} has written answers not yet scored for "
                             f"{', '.join(incomplete)} (fill in written.csv, then run "
                             "python -m course gradebook)")
        possible[column] = rows[0]["total"]
        totals[column] = {r["student"]: r["total"] for r in rows[1:]}
    students = list(dict.fromkeys(s for t in totals.values() for s in t))
    columns = list(gradebooks)
    if roster is None:
        if lms == "canvas":
            head = list(CANVAS_COLUMNS)
            rows = [{"Student": POINTS_ROW, **possible}]
            rows += [{"SIS User ID": s, **{c: totals[c].get(s, "") for c in columns}}
                     for s in students]
        else:
            head = ["ID number"]
            rows = [{"ID number": s, **{c: totals[c].get(s, "") for c in columns}}
                    for s in students]
        _write_csv(Path(out), head + columns, rows)
        return Path(out)
    roster_rows = _read_csv(Path(roster))
    head = list(roster_rows[0]) if roster_rows else []
    key = key or next((k for k in ROSTER_KEYS if k in head), None)
    if key is None or key not in head:
        raise ValueError(f"key: the roster {str(roster)!r} has no column "
                         f"{key or ' or '.join(ROSTER_KEYS)!r}; its columns: {head}")
    listed = {r[key].strip() for r in roster_rows}
    unknown = [s for s in students if s not in listed]
    if unknown:
        raise ValueError(f"gradebooks: students not on the roster (column {key!r}): "
                         + ", ".join(unknown))
    for row in roster_rows:
        is_points = any(v.strip() == POINTS_ROW for v in row.values() if v)
        for c in columns:
            row[c] = possible[c] if is_points else totals[c].get(row[key].strip(), "")
    _write_csv(Path(out), head + [c for c in columns if c not in head], roster_rows)
    return Path(out)
