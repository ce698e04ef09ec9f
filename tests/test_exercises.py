"""The exercises and their editions (course/, ``make exercises``).

The student edition, hand-outs and autograder zips of every numbered notebook are built once.
Then, without running a notebook:

- every exercise is an autograded question, whose public test checks the answer's form and
  carries no points and whose hidden tests check its value and carry the points, and a written
  (manual) question with a model answer and a rubric; the points each heading states are those
  its questions carry, and they add up to the section's total;
- the student edition holds no solution line, no hidden test and no rubric, no outputs, no raw
  MyST citation, and marks each written answer cell for the collector;
- the zip declares what grading needs (otter-grader, torch's CPU wheel, the labkit wheel in
  ``files/``) and ships the result sets the notebook reads.

And with ``otter run`` in this environment, on submissions made of the exercise part of each
edition (the notebook's setup cell and its exercises section, at the fast size): the student
edition as handed out scores zero; planted wrong answers (one mistake a student could make per
exercise, in ``PLANTED``) pass every public check, yet score zero on every question, each with
a hint from a hidden test rather than a crash; the instructor's solutions score full marks.
A predict-then-check cell refuses to run once its measurement exists, and the measurement
refuses to run before a prediction.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course.editions import ENV_CELL, assignment_notebooks, results_read_by  # noqa: E402
from course.questions import exercise_points, questions  # noqa: E402
from course.reading import MINUTES_PER_EXERCISE, WORDS_PER_MINUTE, student_minutes  # noqa: E402
from course.references import render_citations  # noqa: E402
from course.runtime import RUNTIME_MARK, format_runtime, runtime_line, stamp_runtime  # noqa: E402

NOTEBOOKS = assignment_notebooks(ROOT / "notebooks")
CHECK = re.compile(r'^grader\.check\("(\w+)"\)', re.M)
SOLUTION_TAG = "otter_assign_solution_cell"

# One wrong answer per autograded question: the source that replaces its solution cell. Each is
# a mistake a student could make with the right form, not a blank (the student edition tests
# the blanks).
PLANTED = {
    "ex00_denoiser": (  # forgets alpha_t
        "def denoiser_two_points(x, t):\n"
        "    return torch.tanh(x / -math.expm1(-t))"),
    "ex00_threshold": (  # the null rate at 1/3 for every threshold
        "copies_ratio = {t: metrics.memorization_ratio(ex_copies, ex_train, t) for t in THRESHOLDS}\n"
        "null_ratio = {t: metrics.memorization_ratio(ex_fresh, ex_train) for t in THRESHOLDS}\n"
        "best_threshold = 0.5"),
    "ex00_stopping_time": (  # sigma_t taken as sqrt(t), and the wrong prediction
        'prediction = "more"\n'
        "noise_at_t0 = math.sqrt(0.1) * math.sqrt(2)"),
    "ex01_per_decade": (  # log base 10 instead of the natural log
        "per_decade_d8 = 8 * math.log10(10)"),
    "ex01_window": (  # the window at t0 = 1e-3 copied from section 5
        "ratios = [ex_hybrid(tau, 1e-3) for tau in EX_TAUS]\n"
        "decisive_tau = 1e-2\n"
        "window_moves = True"),
    "ex01_duplicates": (  # rows counted as points
        'prediction = "down"\n'
        "effective_n = 200"),
    "ex02_mixture_denoiser": (  # the identity-covariance layer of section 1 for every c
        "def mixture_denoiser(x, t, means, c):\n"
        "    alpha_t, sigma_t = alpha_sigma(torch.tensor(t, dtype=x.dtype))\n"
        "    logits = x @ (alpha_t * means).T - alpha_t**2 * (means**2).sum(1) / 2\n"
        "    return (1 - alpha_t**2) * torch.softmax(logits, dim=1) @ means + alpha_t * x"),
    "ex02_weight_decay": (  # the decay never changed
        "decayed = ex_baseline\n"
        'decay_lowers = {"memorization": True, "lipschitz_median": True, "log_likelihood": False}'),
    "ex02_duplication": (  # every row counted as a point
        'prediction = "larger"\n'
        "effective_n = 88"),
    "ex03_small_times": (  # u taken for the time: the schedule forgotten
        "p_small = float(stats.beta.cdf(T_SMALL, 0.8, 2))\n"
        "p_uniform = T_SMALL"),
    "ex03_head_params": (  # 20% of the heads taken for 20% of the model; output projection forgotten
        'prediction = "about"\n'
        "params_per_head = 3 * ex_config.hidden * ex_config.head_dim + 3 * ex_config.head_dim"),
    "ex03_fixed_time": (  # Algorithm 2's Beta draws left in; Table 1 read as if small-t won on both
        "def fixed_time(t):\n"
        '    return DDPMTime("small")\n'
        "at_small = ex_importance(fixed_time(T_SMALL))\n"
        "at_large = ex_importance(fixed_time(3.0))\n"
        "heads_small = heads_large = {}\n"
        "shared_heads = 0\n"
        'paper_lower_memorization = "small-t importance"\n'
        'paper_lower_fid = "small-t importance"'),
    "ex04_wiener": (  # the noise variance sigma_t^2 taken as t
        "def wiener(x, t, m, v):\n"
        "    alpha = math.exp(-t / 2)\n"
        "    return m + alpha * v / (alpha**2 * v + t) * (x - alpha * m)"),
    "ex04_chance_jaccard": (  # the ratio of the expected sizes for the expected ratio
        "def chance_jaccard(H, k):\n"
        "    shared = k * k / H\n"
        "    return shared / (2 * k - shared)"),
    "ex04_deciding_window": (  # section 1's n = 16 kept, and the medium window guessed
        "mem_by_window = {w: open_questions.window_hybrid(w, EX_SEED, num_samples=EX_SAMPLES)"
        "['memorization'] for w in open_questions.TOY_WINDOWS}\n"
        'deciding_window = "medium"\n'
        "share = 0.5"),
}


@pytest.fixture(scope="session")
def editions(course_editions):
    """Every edition of every notebook with exercises, built once per test session and shared
    by the workers and the course's test files (``course_editions``, tests/conftest.py)."""
    return course_editions


def read(path):
    return nbformat.read(path, as_version=4)


# --- structure: questions, points, rubrics ------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_hidden_value_tests_a_form_check_and_a_written_part(path):
    nb = read(path)
    found = questions(nb)
    auto = [q for q in found if not q.manual]
    written = [q for q in found if q.manual]
    assert len(auto) >= 3 and len(written) == len(auto), f"{path.name}: {len(auto)} exercises"
    for q in auto:
        assert q.public and q.hidden and q.points > 0, f"{q.name}: needs public and hidden tests"
        for source in q.public:  # the public test carries no points: the form is not graded
            assert re.search(r"^points: 0$", source, re.M), f"{q.name}: a public test has points"
        assert q.name in PLANTED, f"{q.name}: add a planted wrong answer to PLANTED"
    for q in written:
        assert q.points > 0 and "**Rubric" in q.solution, f"{q.name}: needs points and a rubric"
        assert q.prompt.startswith("**Explain"), q.name
    rows = exercise_points(nb)
    assert len(rows) == len(auto)
    for heading, stated, carried in rows:
        assert stated == carried, f"{path.name}: {heading!r} states {stated:g}, carries {carried:g}"
    intro = next(c.source for c in nb.cells if "exercises" in c.metadata.get("tags", []))
    total = sum(q.points for q in found)
    assert f"{total:g} points in all" in intro, f"{path.name}: the section carries {total:g} points"


def test_exercise_points_notices_a_heading_that_disagrees():
    nb = read(NOTEBOOKS[0])
    heading = next(c for c in nb.cells if c.source.startswith("### Exercise 1"))
    heading.source = re.sub(r"\(\d+ points?\)", "(9 points)", heading.source)
    assert any(stated != carried for _, stated, carried in exercise_points(nb))


# --- the student edition and the zip --------------------------------------------------------

def test_student_edition_holds_no_solution_no_hidden_test_and_no_rubric(editions):
    for path in NOTEBOOKS:
        paths = editions[path.stem]
        student, instructor = read(paths["student"]), read(path)
        text = "\n".join(c.source for c in student.cells)
        for marker in ("# SOLUTION", "BEGIN SOLUTION", "Solution: why", "Rubric", "BEGIN TESTS",
                       "ASSIGNMENT CONFIG", "{cite:"):
            assert marker not in text, f"{path.stem}: the student edition contains {marker!r}"
        assert "**Works cited**" in text
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
        assert "widgets" not in student.metadata
        tests = json.dumps(student.metadata["otter"]["tests"])
        assert "hidden=True" not in tests and "hidden=False" in tests
        for q in questions(instructor):
            for source in q.hidden:  # not one line of a hidden test reaches the student
                body = [line.strip() for line in source.splitlines()
                        if line.startswith("def ") or "assert" in line.lower()]
                assert body and not any(line in tests for line in body), q.name
        marked = [c.metadata["course"]["question"] for c in student.cells if "course" in c.metadata]
        assert marked == [q.name for q in questions(instructor) if q.manual]
        code = [c.source for c in student.cells if c.cell_type == "code"]
        assert "otter.Notebook(" in code[0] and code[1] == ENV_CELL
        assert paths["rubric"].read_text().count("**Rubric") == len(marked)


def test_the_zip_declares_everything_grading_needs(editions):
    import torch
    from otter import __version__ as otter_version

    for path in NOTEBOOKS:
        with zipfile.ZipFile(editions[path.stem]["zip"]) as zf:
            names = set(zf.namelist())
            env = yaml.safe_load(zf.read("environment.yml"))
            pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
            requirements = zf.read("requirements.txt").decode().split("\n")
        wheel = next(n for n in names if n.startswith("files/") and n.endswith(".whl"))
        assert pip == [line for line in requirements if line], path.stem
        assert f"otter-grader[grading,plugins]=={otter_version}" in pip
        assert f"torch=={torch.__version__.split('+')[0]}" in pip and any("whl/cpu" in p for p in pip)
        assert f"./{wheel}" in pip
        needed = {f"files/results/{name}.json" for name in results_read_by(read(path))}
        assert needed <= names, f"{path.stem}: the zip lacks {needed - names}"
        assert {f"tests/{q.name}.py" for q in questions(read(path)) if not q.manual} <= names
    assert results_read_by(read(ROOT / "notebooks" / "02_approximation_separation.ipynb"))


# --- the checks, graded by otter run -------------------------------------------------------

def exercise_part(nb):
    """otter's init cell, the notebook's setup cell and its exercises section (without the
    environment cell: the test's own LABKIT_CACHE is shared by the three submissions)."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    init = next(i for i in code if "otter.Notebook(" in nb.cells[i].source)
    setup = next(i for i in code if i != init and nb.cells[i].source != ENV_CELL)
    start = next(i for i, c in enumerate(nb.cells) if "exercises" in c.metadata.get("tags", []))
    out = nbformat.from_dict(nb)
    out.cells = [nb.cells[init], nb.cells[setup], *nb.cells[start:]]
    return out


def planted(nb):
    out, solution = nbformat.from_dict(nb), None
    for cell in out.cells:
        if cell.cell_type == "code" and SOLUTION_TAG in cell.metadata.get("tags", []):
            solution = cell
        match = CHECK.match(cell.source) if cell.cell_type == "code" else None
        if match:
            assert solution is not None, f"no solution cell before check {match.group(1)}"
            solution.source, solution = PLANTED[match.group(1)], None
    return out


# One Python process grades a notebook's variants one after the other with otter's own
# ``otter run`` (``otter.run.main``), each in its folder with its own environment and kernel:
# otter's start-up (seconds) is paid once per notebook, not once per variant.
OTTER_BATCH = """\
import json, os, sys
from otter.run import main
for job in json.load(open(sys.argv[1])):
    os.environ.update(job["env"])
    os.chdir(job["folder"])
    main(job["submission"], autograder=job["zip"], output_dir=job["folder"], no_logo=True)
"""


def grade_all(runs: dict, zip_path, root: Path, name: str) -> dict:
    """``otter run`` on each notebook of ``runs`` ({kind: nb}) saved as ``root/kind/name``, all
    in one process: ``{kind: otter's results.json}``."""
    jobs = []
    for kind, nb in runs.items():
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / name)
        jobs.append({"folder": str(folder), "submission": str(folder / name), "zip": str(zip_path),
                     "env": {"LABKIT_FAST": "1", "LABKIT_CACHE": str(root / "cache"),
                             "LABKIT_FIGURES": str(folder / "figures"),
                             "LABKIT_RESULTS": str(ROOT / "results")}})
    (root / "jobs.json").write_text(json.dumps(jobs))
    done = subprocess.run([sys.executable, "-c", OTTER_BATCH, str(root / "jobs.json")],
                          cwd=root, capture_output=True, text=True, timeout=600 * len(jobs))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {kind: json.loads((root / kind / "results.json").read_text()) for kind in runs}


def by_question(results) -> dict:
    return {t["name"]: t for t in results["tests"] if t.get("max_score") is not None}


# Each notebook's grading is a scope of its own for `make test`'s two workers (tests/conftest.py).
@pytest.mark.parametrize("stem", [p.stem for p in NOTEBOOKS])
def test_grading_scores_blanks_and_mistakes_zero_and_solutions_full(stem, editions, tmp_path):
    paths = editions[stem]
    solved = exercise_part(read(paths["autograder"]))
    runs = {"blank": exercise_part(read(paths["student"])), "planted": planted(solved),
            "solved": solved}
    results = grade_all(runs, paths["zip"], tmp_path, paths["student"].name)
    for kind in ("blank", "planted"):
        for name, test in by_question(results[kind]).items():
            assert test["score"] == 0, f"{stem} {kind}: {name} scored {test['score']}"
    for name, test in by_question(results["planted"]).items():
        # The mistake fails a hidden test's own assert (its hint), not the test itself.
        assert "AssertionError" in test["output"], f"{name}: no hint\n{test['output']}"
    public = next(t for t in results["planted"]["tests"] if t["name"] == "Public Tests")
    assert "failed" not in public.get("status", ""), f"a public test checks a value:\n{public['output']}"
    blank_public = next(t for t in results["blank"]["tests"] if t["name"] == "Public Tests")
    assert blank_public.get("status") == "failed"
    for name, test in by_question(results["solved"]).items():
        assert test["score"] == test["max_score"] > 0, f"{stem}: {name}\n{test['output']}"


def test_a_prediction_cannot_follow_its_measurement(editions, tmp_path, monkeypatch):
    # 00's predict-then-check exercise in a kernel: the measurement refuses to run without a
    # prediction; once it has run, the prediction cell refuses to run.
    monkeypatch.setenv("LABKIT_FAST", "1")
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    nb = exercise_part(read(editions["00_primer"]["autograder"]))
    predict = next(c for c in nb.cells if "prediction = " in c.source and "globals()" in c.source)
    measure = next(c for c in nb.cells if "ratio_by_t0 = " in c.source)
    setup = [c for c in nb.cells[:nb.cells.index(predict)]
             if c.cell_type == "code" and "grader" not in c.source and "def denoiser" not in c.source]
    blank = nbformat.v4.new_code_cell("prediction = ...")
    for order, fails in (([blank, measure], "record a prediction"),
                         ([predict, measure, predict], "the measurement has run")):
        run = nbformat.v4.new_notebook(cells=[nbformat.from_dict(c) for c in setup + order])
        for i, cell in enumerate(run.cells):
            cell.id = f"cell-{i}"
        client = NotebookClient(run, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}})
        with pytest.raises(CellExecutionError, match=fails):
            client.execute()


# --- citations, reading time, runtime line ------------------------------------------------

def test_citations_render_as_author_year_with_the_works_cited():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("The paper {cite:p}`ye2026provable`; {cite:t}`song2021score`."),
        nbformat.v4.new_markdown_cell("## References\n\n- x\n\n**Next:** [01](01.ipynb)")])
    assert render_citations(nb) == ["ye2026provable", "song2021score"]
    assert nb.cells[0].source == "The paper (Ye et al. 2026); Song et al. (2021)."
    refs = nb.cells[1].source
    assert "**Works cited**" in refs and "Provable separations" in refs
    assert refs.rstrip().endswith("**Next:** [01](01.ipynb)")
    with pytest.raises(ValueError, match="nobody2020"):
        render_citations(nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_markdown_cell("{cite:p}`nobody2020`")]))


def test_student_minutes_count_words_code_cells_and_exercises():
    words = " ".join(["word"] * (2 * WORDS_PER_MINUTE))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(words), nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("## Exercises", metadata={"tags": ["exercises"]}),
        nbformat.v4.new_markdown_cell("### Exercise 1 (derive): a (2 points)"),
        nbformat.v4.new_code_cell("check()", metadata={"tags": ["remove-cell"]})])
    t = student_minutes(nb)
    assert t["code"] == 1 and t["exercises"] == 15
    assert abs(t["reading"] - (2 + 7 / WORDS_PER_MINUTE)) < 1e-9  # the headings are read too
    assert t["total"] == pytest.approx(t["reading"] + t["code"] + t["exercises"])
    nb.cells[3].source = "### Exercise 1 (measure): a (2 points)"
    assert student_minutes(nb)["exercises"] == MINUTES_PER_EXERCISE["measure"]
    nb.cells[3].source = "### Exercise 1 (guess): a (2 points)"  # a kind with no time
    with pytest.raises(ValueError, match="'guess'"):
        student_minutes(nb)


def test_format_runtime():
    with pytest.raises(ValueError, match="seconds"):
        format_runtime(-3.0)
    assert format_runtime(None).startswith("not measured")
    assert format_runtime(2.0) == "about 5 s"
    assert format_runtime(43.2) == "about 45 s"
    assert format_runtime(61.0) == "about 1 minute"
    assert format_runtime(161.0) == "about 2.5 minutes"


def test_the_library_imports_no_course_tooling():
    # The course tooling lives in the checkout's course/ package only (python -m course); the
    # import contract of pyproject.toml (tests/test_layers.py) forbids labkit to import it.
    assert not (ROOT / "labkit" / "exercises.py").exists()
    library = subprocess.run([sys.executable, "-c", "import sys, labkit, labkit.experiments, "
                              "labkit.results; print('otter' in sys.modules, 'course' in sys.modules)"],
                             capture_output=True, text=True, cwd=ROOT / "tests", check=True)
    assert library.stdout.split() == ["False", "False"]  # the library imports neither


def test_runtime_line_is_generated_from_the_measured_runtime(tmp_path):
    # The stamp refuses a notebook without the marks, then writes the line from runtime_s.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99 · x\n\n**Time:** 3 minutes")])
    path = tmp_path / "99_x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="runtime"):
        stamp_runtime(path)
    assert not stamp_runtime(path, missing_ok=True)
    nb.cells[0].source = "# 99 · x\n\n**Time:** <!-- runtime -->3 minutes, typed<!-- /runtime -->"
    nb.metadata["labkit"] = {"runtime_s": 12.0}
    nbformat.write(nb, path)
    assert stamp_runtime(path) and not stamp_runtime(path)
    assert "about 10 s" in nbformat.read(path, as_version=4).cells[0].source

    # Every committed notebook with the marks states exactly what its metadata says.
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        committed = nbformat.read(notebook, as_version=4)
        first = next(c for c in committed.cells if c.cell_type == "markdown")
        found = RUNTIME_MARK.search(first.source)
        if found:
            assert found.group(2) == runtime_line(committed), f"{notebook.name}: run course.runtime.stamp_runtime"


# --- the student edition of the book ------------------------------------------------------

@pytest.fixture(scope="module")
def student_site(editions, tmp_path_factory):
    """The student book built as ``make book-student`` builds it, from this module's editions."""
    from course.book import stage_student_book

    student_dir = next(iter(editions.values()))["student"].parent
    work = tmp_path_factory.mktemp("student-book")
    docs = stage_student_book(student_dir, work / "src")
    site = work / "site"
    done = subprocess.run([str(Path(sys.executable).with_name("sphinx-build")), "-b", "html", "-q",
                           "--keep-going", "-d", str(work / "doctrees"), str(docs), str(site)],
                          env=dict(os.environ, LABKIT_CHECKOUT=str(ROOT)), capture_output=True,
                          text=True, timeout=1800)
    assert (site / "index.html").is_file(), done.stderr[-3000:]
    for path in student_dir.glob("[0-9][0-9]_*.ipynb"):  # the download buttons' files
        (site / "_sources" / "notebooks" / path.name).write_bytes(path.read_bytes())
    return site, docs, done.stderr


def test_solution_leaks_finds_a_solution_line_in_a_site(tmp_path):
    from course.book import solution_leaks, solution_lines

    secret = next(line for line in solution_lines(read(NOTEBOOKS[0])) if "tanh" in line)
    (tmp_path / "index.html").write_text("<html><body><p>nothing</p></body></html>")
    assert solution_leaks(tmp_path) == []
    (tmp_path / "page.html").write_text(f"<pre><span>{secret[:10]}</span>{secret[10:]}</pre>")
    assert len(solution_leaks(tmp_path)) == 1


def test_student_book_holds_no_solution_and_serves_student_notebooks(student_site, editions):
    from course.book import _page_text, solution_leaks

    site, docs, log = student_site
    assert solution_leaks(site) == []
    pages = [line for line in log.splitlines() if "/notebooks/" in line]
    assert not pages, "the student pages warn:\n" + "\n".join(pages)
    for path in NOTEBOOKS:
        served = site / "_sources" / "notebooks" / path.name
        assert served.read_bytes() == editions[path.stem]["student"].read_bytes()
        html = (site / "notebooks" / f"{path.stem}.html").read_text()
        text = _page_text(site / "notebooks" / f"{path.stem}.html")
        assert "{cite:" not in text and "Works cited" in text
        assert 'grader.check("ex' not in text and "otter.Notebook(" not in text  # hidden plumbing
        assert html.count("<img") >= 2, f"{path.stem}: the lesson's figures are missing"
        page = read(docs / "notebooks" / path.name)
        start = next(i for i, c in enumerate(page.cells) if "exercises" in c.metadata.get("tags", []))
        assert not any(c.get("outputs") for c in page.cells[start:] if c.cell_type == "code")


def test_course_guide_states_the_computed_student_times(tmp_path):
    from course.reading import times_block, write_times

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    page = (ROOT / "docs" / "course.md").read_text()
    assert times_block(notebooks) in page, "run: python -m course times --write docs/course.md"
    stale = tmp_path / "course.md"
    stale.write_text("<!-- student-time -->\n| typed | 5 min |\n<!-- /student-time -->\n")
    assert write_times(stale, notebooks) and not write_times(stale, notebooks)
    assert "typed" not in stale.read_text() and "the path" in stale.read_text()


# --- per-student variants -------------------------------------------------------------------

# Two student ids and, per notebook, the answers that their variants must set apart and the
# questions whose hidden checks must refuse one student's answers under the other's id.
VARIANT_IDS = ("s1001", "s1002")
VARIED_ANSWERS = {"00_primer": ("copies_ratio", "null_ratio", "noise_at_t0"),
                  "02_approximation_separation": ("effective_n",)}
VARIED_QUESTIONS = {"00_primer": ("ex00_threshold", "ex00_stopping_time"),
                    "02_approximation_separation": ("ex02_duplication",)}


def with_student_id(nb, student_id: str):
    """A copy of ``nb`` whose student-id cell states ``student_id``."""
    out = nbformat.from_dict(nb)
    cell = next(c for c in out.cells if "student-id" in c.metadata.get("tags", []))
    cell.source, found = re.subn(r"^STUDENT_ID\s*=.*$", f"STUDENT_ID = {student_id!r}",
                                 cell.source, count=1, flags=re.M)
    assert found == 1, cell.source
    return out


def with_answers_written(nb, names, path: Path):
    """A copy of ``nb`` whose last cell writes ``{name: repr(value)}`` of ``names`` to ``path``
    (JSON), so that grading the copy also reports the answers it graded."""
    out = nbformat.from_dict(nb)
    out.cells.append(nbformat.v4.new_code_cell(
        f"with open({str(path)!r}, 'w') as _answers_file:\n"
        f"    __import__('json').dump({{n: repr(globals()[n]) for n in {list(names)!r}}},"
        " _answers_file)"))
    return out


def with_answers_read(nb, names, path: Path):
    """A copy of ``nb`` whose solution cells end by setting each of ``names`` they assign to
    the value that ``path`` (written by ``with_answers_written``) holds."""
    out = nbformat.from_dict(nb)
    for cell in out.cells:
        if cell.cell_type == "code" and SOLUTION_TAG in cell.metadata.get("tags", []):
            cell.source += "".join(
                f"\n{n} = eval(__import__('json').load(open({str(path)!r}))[{n!r}])"
                for n in names if re.search(rf"^{n} = ", cell.source, re.M))
    return out


def test_the_student_edition_asks_for_the_student_id(editions):
    from course.editions import BLANK_ID, variant_seed

    for stem in VARIED_ANSWERS:
        student = read(editions[stem]["student"])
        cells = [c for c in student.cells if "student-id" in c.metadata.get("tags", [])]
        assert len(cells) == 1 and BLANK_ID in cells[0].source, stem
        instructor = read(ROOT / "notebooks" / f"{stem}.ipynb")
        given = next(c for c in instructor.cells if "student-id" in c.metadata.get("tags", []))
        namespace = {}
        exec(given.source.replace("print(", "str("), namespace)  # the notebook's own seed
        assert namespace["VARIANT"] == variant_seed(namespace["STUDENT_ID"])
        with pytest.raises(ValueError, match="STUDENT_ID"):
            namespace["variant_seed"]("  ")
    with pytest.raises(ValueError, match="student_id"):
        variant_seed("")
    assert variant_seed(VARIANT_IDS[0]) != variant_seed(VARIANT_IDS[1])


@pytest.mark.parametrize("stem", [pytest.param(s, marks=pytest.mark.xdist_group(f"variants-{s}"))
                                  for s in VARIED_ANSWERS])
def test_two_student_ids_get_different_answers_each_graded_full_marks(stem, editions, tmp_path,
                                                                      monkeypatch):
    # Each id's solved notebook measures other values and scores full marks; the first id's
    # answers handed in under the second id score less than full on the varied questions.
    monkeypatch.setenv("LABKIT_FAST", "1")
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    paths = editions[stem]
    solved = exercise_part(read(paths["autograder"]))
    first, second = VARIANT_IDS
    names = VARIED_ANSWERS[stem]
    files = {kind: tmp_path / f"answers-{kind}.json" for kind in (*VARIANT_IDS, "copied")}
    runs = {sid: with_answers_written(with_student_id(solved, sid), names, files[sid])
            for sid in VARIANT_IDS}
    # graded after the first id (one otter process grades the runs in order): the second id's
    # notebook, each solution cell ending on the values the first id's graded run wrote
    copied = with_answers_read(with_student_id(solved, second), names, files[first])
    assert sum(c.source.count(str(files[first])) for c in copied.cells) == len(names)
    runs["copied"] = with_answers_written(copied, names, files["copied"])
    results = grade_all(runs, paths["zip"], tmp_path / "graded", paths["student"].name)
    answers = {kind: json.loads(path.read_text()) for kind, path in files.items()}
    same = [n for n in names if answers[first][n] == answers[second][n]]
    assert not same, f"{stem}: {same} are the same for {first} and {second}: {answers}"
    assert answers["copied"] == answers[first], answers
    for sid in VARIANT_IDS:
        for name, test in by_question(results[sid]).items():
            assert test["score"] == test["max_score"] > 0, f"{stem} {sid}: {name}\n{test['output']}"
    graded = by_question(results["copied"])
    for name in VARIED_QUESTIONS[stem]:
        assert graded[name]["score"] < graded[name]["max_score"], f"{stem}: {name} took a copy"
