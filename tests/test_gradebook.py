"""From graded submissions to a gradebook and an LMS import (course/grading.py).

``gradebook`` merges a grading folder's ``scores.csv`` (coded) and ``written.csv`` (the
instructor's written scores) into ``gradebook.csv``: one row per student id with every
question's points, totals and a status; it refuses a written score that is not a number or
exceeds the question's points. ``export_roster`` writes the totals as Canvas's or Moodle's
import columns, or fills in the LMS's own export (the roster), and refuses students off the
roster and unscored written answers. The first tests use small hand-written grading folders;
the hand-outs' links to other pages become the book's address or plain text; the last grades
a folder of two students' variants of notebook 00 with ``otter run`` (one handed in as the
zip that the notebook's export cell writes, one as the notebook, and a file that is no
submission) and takes them, through ``python -m course``, to the score table, the answer
sheet under the rubrics, the gradebook and the CSV an LMS imports (its hand-out's links
resolving inside the zip).
"""

from __future__ import annotations

import csv
import json
import re
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course.__main__ import main as course_main  # noqa: E402
from course.grading import (POINTS_ROW, export_roster, grade_folder, gradebook,  # noqa: E402
                            student_id_of)
from course.questions import questions  # noqa: E402


def rows(path: Path) -> list[dict]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def write(path: Path, fields: list[str], data: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        writer.writerows(data)


@pytest.fixture
def graded(tmp_path):
    """A grading folder as ``python -m course grade`` writes it: two students, two coded
    questions (3 points), one written question (2 points), written scores not yet filled."""
    folder = tmp_path / "00_primer"
    folder.mkdir()
    write(folder / "scores.csv", ["submission", "student", "q1", "q2", "total", "max", "error"],
          [["ada.zip", "s1", 2.0, 1.0, 3.0, 3.0, ""], ["bob.zip", "s2", 0.0, 1.0, 1.0, 3.0, ""]])
    write(folder / "written.csv", ["submission", "student", "question", "points", "score"],
          [["ada.zip", "s1", "q1_why", "2", ""], ["bob.zip", "s2", "q1_why", "2", ""]])
    (folder / "points.json").write_text(json.dumps({"q1": 2, "q2": 1, "q1_why": 2}))
    return folder


def fill(folder: Path, scores: dict[str, str]) -> None:
    data = rows(folder / "written.csv")
    for row in data:
        row["score"] = scores.get(row["student"], row["score"])
    write(folder / "written.csv", list(data[0]), [list(r.values()) for r in data])


def test_gradebook_merges_coded_and_written_scores_per_student(graded):
    book = rows(gradebook(graded))
    points, ada, bob = book
    assert points["student"] == POINTS_ROW
    assert (points["q1"], points["q2"], points["q1_why"], points["total"]) == ("2", "1", "2", "5")
    assert (ada["student"], ada["coded"], ada["written"], ada["total"]) == ("s1", "3", "0", "3")
    assert ada["status"] == "written not scored: q1_why" and ada["max"] == "5"
    fill(graded, {"s1": "1.5", "s2": "2"})
    points, ada, bob = rows(gradebook(graded))
    assert (ada["q1_why"], ada["written"], ada["total"], ada["status"]) == ("1.5", "1.5", "4.5",
                                                                         "complete")
    assert (bob["q2"], bob["total"]) == ("1", "3")


@pytest.mark.parametrize("score, message", [("lots", "must be a number"),
                                            ("2.5", r"outside \[0, 2\]"),
                                            ("-1", "outside")])
def test_gradebook_refuses_a_written_score_it_cannot_add(graded, score, message):
    fill(graded, {"s1": score})
    with pytest.raises(ValueError, match=message):
        gradebook(graded)


def test_gradebook_flags_a_student_id_stated_twice_and_a_missing_file(graded, tmp_path):
    data = rows(graded / "scores.csv")
    data[1]["student"] = "s1"
    write(graded / "scores.csv", list(data[0]), [list(r.values()) for r in data])
    assert all("stated by 2 submissions" in r["status"] for r in rows(gradebook(graded))[1:])
    with pytest.raises(ValueError, match="scores.csv"):
        gradebook(tmp_path / "nothing")


def test_export_without_a_roster_writes_canvas_and_moodle_columns(graded, tmp_path):
    gradebook(graded)
    with pytest.raises(ValueError, match="not yet scored for s1, s2"):
        export_roster({"Lab 0": graded / "gradebook.csv"}, tmp_path / "lms.csv")
    fill(graded, {"s1": "2", "s2": "0.5"})
    book = gradebook(graded)
    canvas = rows(export_roster({"Lab 0": book}, tmp_path / "canvas.csv"))
    assert list(canvas[0]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 0"]
    assert canvas[0]["Student"] == POINTS_ROW and canvas[0]["Lab 0"] == "5"
    assert [(r["SIS User ID"], r["Lab 0"]) for r in canvas[1:]] == [("s1", "5"), ("s2", "1.5")]
    moodle = rows(export_roster({"Lab 0": book}, tmp_path / "moodle.csv", lms="moodle"))
    assert moodle == [{"ID number": "s1", "Lab 0": "5"}, {"ID number": "s2", "Lab 0": "1.5"}]
    with pytest.raises(ValueError, match="lms"):
        export_roster({"Lab 0": book}, tmp_path / "x.csv", lms="blackboard")


def test_export_fills_in_the_lms_roster(graded, tmp_path):
    fill(graded, {"s1": "2", "s2": "1"})
    book = gradebook(graded)
    roster = tmp_path / "roster.csv"  # a Canvas export: a points row, a student not graded
    write(roster, ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Quiz 1 (11)"],
          [["    Points Possible", "", "", "", "", "10"], ["Lovelace, Ada", "101", "s1", "ada",
                                                           "A", "9"],
           ["Babbage, C", "102", "s2", "cb", "A", "7"], ["Somerville, M", "103", "s3", "ms",
                                                        "A", "8"]])
    out = rows(export_roster({"Lab 0": book}, tmp_path / "import.csv", roster=roster))
    assert [r["Lab 0"] for r in out] == ["5", "5", "2", ""]  # s3 handed in nothing: left blank
    assert [r["Quiz 1 (11)"] for r in out] == ["10", "9", "7", "8"]  # the roster is kept
    with pytest.raises(ValueError, match="no column 'Email'"):
        export_roster({"Lab 0": book}, tmp_path / "x.csv", roster=roster, key="Email")
    write(roster, ["Student", "SIS User ID"], [["Lovelace, Ada", "s1"]])
    with pytest.raises(ValueError, match="not on the roster.*s2"):
        export_roster({"Lab 0": book}, tmp_path / "x.csv", roster=roster)


def test_student_id_of_reads_the_id_cell():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell('STUDENT_ID = " s42 "  # id')])
    assert student_id_of(nb) == "s42"
    nb.cells[1].source = 'STUDENT_ID = ""  # your student id, between the quotes'
    assert student_id_of(nb) == ""


# --- end to end: two students' variants of notebook 00 ---------------------------------------

@pytest.mark.slow
@pytest.mark.xdist_group("gradebook")
def test_two_students_are_graded_merged_and_exported(course_editions, tmp_path, monkeypatch,
                                                     capsys):
    sys.path.insert(0, str(ROOT / "tests"))
    from test_exercises import exercise_part, with_student_id

    monkeypatch.setenv("LABKIT_FAST", "1")
    instructor = ROOT / "notebooks" / "00_primer.ipynb"
    paths = course_editions["00_primer"]  # built by build_student_edition (tests/conftest.py)
    assert links_resolve(paths["handout"]) == []  # the next notebook's link became text
    with zipfile.ZipFile(paths["handout"]) as zf:
        handed = zf.read(paths["student"].name).decode()
    assert "01_estimation_separation.ipynb" in paths["student"].read_text()
    assert "01_estimation_separation.ipynb" not in handed
    folder = tmp_path / "submissions"
    folder.mkdir()
    solved = exercise_part(nbformat.read(paths["autograder"], as_version=4))
    blank = exercise_part(nbformat.read(paths["student"], as_version=4))
    with zipfile.ZipFile(folder / "ada.zip", "w") as zf:  # as the export cell hands it in
        zf.writestr(paths["student"].name, nbformat.writes(with_student_id(solved, "s1001")))
    answer = next(c for c in blank.cells if c.metadata.get("course", {}).get("question"))
    answer.source = "D tends to sign(x): the sampler ends on a training point."
    nbformat.write(with_student_id(blank, "s1002"), folder / "bob.ipynb")
    (folder / "notes.txt").write_text("not a submission")
    grades = tmp_path / "grades" / "00_primer"
    course_main(["grade", str(paths["zip"]), str(folder), "--out", str(grades),
                 "--instructor", str(instructor)])
    assert "python -m course gradebook" in capsys.readouterr().out
    # scores.csv: one row per submission, each coded question, the total and the maximum
    scores = rows(grades / "scores.csv")
    asked = questions(nbformat.read(instructor, as_version=4))
    coded = {q.name: q.points for q in asked if not q.manual}
    assert [r["submission"] for r in scores] == ["ada.zip", "bob.ipynb"]
    assert set(coded) <= set(scores[0]) and not scores[0]["error"]
    assert float(scores[0]["total"]) == float(scores[0]["max"]) == sum(coded.values()) > 0
    assert float(scores[1]["total"]) == 0
    sheet = (grades / "written.md").read_text()  # the answers under each rubric
    assert "**Rubric" in sheet and "the sampler ends on a training point" in sheet
    with pytest.raises(ValueError, match="submissions"):
        grade_folder(paths["zip"], tmp_path / "missing", tmp_path / "grades")
    book = rows(grades / "gradebook.csv")
    points, ada, bob = book
    assert (ada["student"], bob["student"]) == ("s1001", "s1002")
    assert ada["coded"] == points["coded"] != "0" and bob["coded"] == "0"
    assert ada["status"].startswith("written not scored")
    written = rows(grades / "written.csv")
    limits = {r["question"]: r["points"] for r in written}
    assert sorted((r["student"], r["question"]) for r in written) == sorted(
        (s, q.name) for s in ("s1001", "s1002") for q in asked if q.manual)
    assert {float(v) for v in limits.values()} and sum(map(float, limits.values())) == float(
        points["written"])
    for row in written:  # the instructor fills in the written scores
        row["score"] = row["points"] if row["student"] == "s1001" else "0"
    write(grades / "written.csv", list(written[0]), [list(r.values()) for r in written])
    course_main(["gradebook", str(grades)])
    points, ada, bob = rows(grades / "gradebook.csv")
    assert ada["total"] == points["total"] == ada["max"] and ada["status"] == "complete"
    assert bob["total"] == "0"
    out = tmp_path / "canvas.csv"
    course_main(["export", f"Notebook 00={grades / 'gradebook.csv'}", "--out", str(out)])
    canvas = rows(out)
    assert [(r["SIS User ID"], r["Notebook 00"]) for r in canvas[1:]] == [
        ("s1001", points["total"]), ("s1002", "0")]
    assert re.search(r"ready to import", capsys.readouterr().out)


# --- the hand-outs' links ------------------------------------------------------------------

def test_handout_links_point_to_the_book_or_become_text():
    from course.editions import handout_links

    md = nbformat.v4.new_markdown_cell
    source = ("**Next:** [01 · Estimation](01_estimation_separation.ipynb); the [guide]"
              "(../course.md#grade); [data](results/claims.json); [paper](https://arxiv.org/x)")
    nb = nbformat.v4.new_notebook(cells=[md(source)])
    assert handout_links(nb, ["00_primer.ipynb", "results/claims.json"]) == [
        "01_estimation_separation.ipynb", "../course.md#grade"]
    assert nb.cells[0].source == ("**Next:** 01 · Estimation; the guide; [data]"
                                  "(results/claims.json); [paper](https://arxiv.org/x)")
    nb = nbformat.v4.new_notebook(cells=[md(source)])
    handout_links(nb, ["results/claims.json"], book_url="https://example.org/labkit/")
    book = "https://example.org/labkit"
    assert f"[01 · Estimation]({book}/notebooks/01_estimation_separation.html)" in nb.cells[0].source
    assert "[guide](https://example.org/labkit/course.html#grade)" in nb.cells[0].source


def links_resolve(handout: Path) -> list[str]:
    """The relative links of a hand-out zip's notebook whose target the zip does not hold."""
    with zipfile.ZipFile(handout) as zf:
        names = set(zf.namelist())
        notebook = next(n for n in names if n.endswith(".ipynb"))
        nb = nbformat.reads(zf.read(notebook).decode(), as_version=4)
    targets = [m.group(1).split("#")[0] for c in nb.cells if c.cell_type == "markdown"
               for m in re.finditer(r"\]\(([^)\s]+)\)", c.source)]
    return [t for t in targets if t and not t.startswith(("http:", "https:")) and t not in names]


def test_every_handout_holds_what_its_links_name(course_editions, tmp_path):
    dead = tmp_path / "dead.zip"  # the check itself: a link to a page the zip lacks
    with zipfile.ZipFile(dead, "w") as zf:
        zf.writestr("x.ipynb", nbformat.writes(nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_markdown_cell("[next](01_x.ipynb), [data](results/a.json)")])))
        zf.writestr("results/a.json", "{}")
    assert links_resolve(dead) == ["01_x.ipynb"]
    for stem, paths in course_editions.items():
        assert links_resolve(paths["handout"]) == [], stem
