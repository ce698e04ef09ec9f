"""The exercises check themselves (labkit.exercises, ``make exercises``).

For every numbered notebook with exercises, the student edition is built with otter assign, then
only the exercise part of each edition runs (the setup cell, the ``exercises`` section and its
``grader.check`` cells, at the fast size) in a fresh kernel:

- a planted wrong answer for every exercise: every check fails, with a hint;
- the student edition as it is (answers ``...``): every check fails with a hint, nothing crashes;
- the instructor's solutions: every check passes.

Adding exercises to a notebook: give each a planted wrong answer in ``PLANTED``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from labkit.exercises import (RUNTIME_MARK, assignment_notebooks, build_student_edition, format_runtime,
                              runtime_line, stamp_runtime)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = assignment_notebooks(ROOT / "notebooks")
CHECK = re.compile(r'^grader\.check\("(\w+)"\)', re.M)
SOLUTION_TAG = "otter_assign_solution_cell"

# One wrong answer per exercise: the source that replaces its solution cell. Each is a mistake a
# student could make, not a blank (the student edition tests the blanks).
PLANTED = {
    "ex00_denoiser": (  # forgets alpha_t
        "def denoiser_two_points(x, t):\n"
        "    return torch.tanh(x / -math.expm1(-t))"),
    "ex00_threshold": (  # the null rate at 1/3 for every threshold
        "copies_ratio = {thr: metrics.memorization_ratio(ex_copies, ex_train, threshold=thr) for thr in THRESHOLDS}\n"
        "null_ratio = {thr: metrics.memorization_ratio(ex_fresh, ex_train) for thr in THRESHOLDS}\n"
        "best_threshold = 0.5"),
    "ex00_stopping_time": (  # sigma_t taken as sqrt(t)
        'prediction = "less"\n'
        "noise_at_t0 = math.sqrt(0.1) * math.sqrt(2)"),
    "ex01_per_decade": (  # log base 10 instead of the natural log
        "per_decade_d8 = 8 * math.log10(10)"),
    "ex01_window": (  # the window at t0 = 1e-3 copied from section 5
        "ratios = [ex_hybrid(tau, 1e-2) for tau in EX_TAUS]\n"
        "decisive_tau = 1e-2\n"
        "window_moves = False"),
    "ex01_duplicates": (
        'prediction = "down"\n'
        "effective_n = 200"),
    "ex02_mixture_denoiser": (  # the identity-covariance layer of section 1 for every c (s_t^2 = 1)
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
    "ex03_head_params": (  # 20% of the heads taken for 20% of the model; the output projection forgotten
        'prediction = "about"\n'
        "params_per_head = 3 * ex_config.hidden * ex_config.head_dim"),
    "ex03_fixed_time": (  # the sampler left at Algorithm 2's Beta draws; Table 1 read as if small-t pruning won on both
        "def fixed_time(t):\n"
        '    return DDPMTime("small")\n'
        "at_small = ex_importance(fixed_time(T_SMALL))\n"
        "at_large = ex_importance(fixed_time(3.0))\n"
        "shared_heads = 0\n"
        'paper_lower_memorization = "small-t importance"\n'
        'paper_lower_fid = "small-t importance"'),
}


def setup_and_exercises(nb):
    """(otter's init cell and the notebook's setup cell, the cells from the ``exercises`` heading on):
    all that an exercise check needs."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    init = [i for i in code if "otter.Notebook(" in nb.cells[i].source]
    setup = next(i for i in code if i not in init)
    start = next(i for i, c in enumerate(nb.cells) if "exercises" in c.metadata.get("tags", []))
    return [nb.cells[i] for i in init + [setup]], nb.cells[start:]


def run_checks(nb, folder: Path, name: str) -> list[tuple[str, str]]:
    """Execute ``nb`` saved as ``folder/name`` (otter reads its tests there): (exercise, text) of
    every check, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()  # raises on any cell error
    results = []
    for cell in nb.cells:
        match = CHECK.match(cell.source) if cell.cell_type == "code" else None
        if match:
            results.append((match.group(1), "".join(
                "".join(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)))
    return results


def assert_all_fail_with_hints(results) -> None:
    for name, text in results:
        assert "All test cases passed" not in text, f"{name} passed on a wrong answer:\n{text}"
        assert "message:" in text, f"{name} failed without its hint:\n{text}"
        # The failure is one of the check's own asserts (its hint), not a crash in the test.
        assert "AssertionError:" in text, f"{name} failed for another reason than a hint:\n{text}"


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    if not NOTEBOOKS:
        pytest.skip("no notebook carries exercises")
    return build_student_edition(NOTEBOOKS, tmp_path_factory.mktemp("build"))


def test_every_exercise_has_a_planted_wrong_answer(editions):
    for stem, paths in editions.items():
        nb = nbformat.read(paths["autograder"], as_version=4)
        names = CHECK.findall("\n".join(c.source for c in nb.cells if c.cell_type == "code"))
        assert len(names) >= 3, f"{stem} has {len(names)} exercises, fewer than 3"
        assert set(names) <= set(PLANTED), f"{stem}: add planted wrong answers for {set(names) - set(PLANTED)}"


def test_student_edition_has_no_solutions_and_no_outputs(editions):
    for stem, paths in editions.items():
        student = nbformat.read(paths["student"], as_version=4)
        text = "\n".join(c.source for c in student.cells)
        for marker in ("# SOLUTION", "BEGIN SOLUTION", "Solution: why", "BEGIN TESTS", "ASSIGNMENT CONFIG"):
            assert marker not in text, f"{stem}: the student edition still contains {marker!r}"
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
        assert "widgets" not in student.metadata
        assert paths["zip"] is not None and paths["zip"].stat().st_size > 0


@pytest.mark.parametrize("stem", [p.stem for p in NOTEBOOKS])
def test_checks_fail_on_wrong_answers_and_pass_on_solutions(stem, editions, tmp_path, monkeypatch):
    # One kernel runs the exercises three times: planted wrong answers, the student edition as it
    # is, the instructor's solutions. Each run assigns every answer again, so none leaks into the next.
    monkeypatch.setenv("LABKIT_FAST", "1")
    paths = editions[stem]
    instructor = nbformat.read(paths["autograder"], as_version=4)
    student = nbformat.read(paths["student"], as_version=4)
    head, solved = setup_and_exercises(instructor)
    _, blank = setup_and_exercises(student)

    planted, solution = nbformat.from_dict(solved), None
    for cell in planted:
        if cell.cell_type == "code" and SOLUTION_TAG in cell.metadata.get("tags", []):
            solution = cell
        match = CHECK.match(cell.source) if cell.cell_type == "code" else None
        if match:
            assert solution is not None, f"{stem}: no solution cell before check {match.group(1)}"
            solution.source, solution = PLANTED[match.group(1)], None

    run = nbformat.from_dict(student)
    run.cells = [nbformat.from_dict(c) for c in head + planted + blank + solved]
    for i, cell in enumerate(run.cells):
        cell.id = f"cell-{i}"  # the three runs repeat cells: ids must stay unique
    results = run_checks(run, tmp_path, paths["student"].name)
    k = len(results) // 3
    assert k >= 3 and len(results) == 3 * k
    # A planted wrong answer fails every check, with its hint.
    assert_all_fail_with_hints(results[:k])
    # The student edition as it is: every check fails with its hint, and nothing else crashes.
    assert_all_fail_with_hints(results[k:2 * k])
    # The instructor's solutions pass every check.
    for name, text in results[2 * k:]:
        assert "All test cases passed" in text, f"{name} fails on the instructor's solution:\n{text}"


def test_format_runtime():
    with pytest.raises(ValueError, match="seconds"):
        format_runtime(-3.0)
    assert format_runtime(None).startswith("not measured")
    assert format_runtime(2.0) == "about 5 s"
    assert format_runtime(43.2) == "about 45 s"
    assert format_runtime(61.0) == "about 1 minute"
    assert format_runtime(161.0) == "about 2.5 minutes"


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
            assert found.group(2) == runtime_line(committed), f"{notebook.name}: run labkit.exercises.stamp_runtime"
