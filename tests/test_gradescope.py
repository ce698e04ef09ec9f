"""The autograder zip grades under Gradescope's own entry point (slow: the fresh venv of
tests/test_autograder.py).

Gradescope unpacks the zip into ``/autograder/source``, puts the student's upload into
``/autograder/submission``, runs the zip's ``run_autograder`` (which activates the environment
built from ``environment.yml`` and runs ``source/run_otter.py``, i.e.
``otter.run.run_autograder.main("/autograder")``), and reads
``/autograder/results/results.json``. Here that layout is made under a scratch folder, the
zip's own ``run_otter.py`` runs with that folder for ``/autograder`` in the fresh venv that
tests/test_autograder.py builds from the zip's requirements, and the results Gradescope would
show are read: for notebooks 00 and 02, the instructor notebook under one student id scores
full marks on every coded question, the blank student notebook zero, and the written questions
are not in the results (Gradescope grades them by hand). The uploads are each notebook's
exercise part (otter's init cell, the environment and setup cells and the exercises, as
tests/test_exercises.py grades them); tests/test_autograder.py grades the whole notebooks in
the same venv.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from course.editions import ENV_CELL  # noqa: E402
from course.questions import questions  # noqa: E402
from test_autograder import STEMS, _clean_env, grading  # noqa: E402, F401  (the fixture)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder")]


def gradescope_layout(zip_path: Path, submission: Path, root: Path) -> Path:
    """``root/autograder`` as Gradescope lays it out; returns its ``run_otter.py``, with
    ``/autograder`` pointed at that folder."""
    autograder = root / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(autograder / "source")
    (autograder / "submission").mkdir()
    (autograder / "results").mkdir()
    shutil.copy2(submission, autograder / "submission" / submission.name)
    script = autograder / "source" / "run_otter.py"
    text = script.read_text()
    assert re.search(r'run_autograder\("/autograder"\)', text), text
    script.write_text(text.replace('"/autograder"', repr(str(autograder))))
    assert "run_otter.py" in (autograder / "source" / "run_autograder").read_text()
    return script


@pytest.mark.parametrize("stem", STEMS)
def test_the_zip_grades_under_gradescopes_run_autograder(grading, stem, tmp_path):
    from test_exercises import exercise_part, with_student_id

    editions, venv_dir, _ = grading
    paths = editions[stem]
    written = {q.name for q in questions(nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb",
                                                       as_version=4)) if q.manual}
    scores = {}
    for kind in ("autograder", "student"):
        full = nbformat.read(paths[kind], as_version=4)
        nb = exercise_part(full)  # with the environment cell, after otter's init cell
        nb.cells.insert(1, next(c for c in full.cells if c.source == ENV_CELL))
        if kind == "autograder":
            nb = with_student_id(nb, "s2001")
        upload = tmp_path / kind / paths["student"].name
        upload.parent.mkdir(parents=True)
        nbformat.write(nb, upload)
        script = gradescope_layout(paths["zip"], upload, tmp_path / kind)
        env = _clean_env(tmp_path / kind, venv_dir)
        done = subprocess.run([str(venv_dir / "bin" / "python"), str(script)], cwd=tmp_path / kind,
                              env=env, capture_output=True, text=True, timeout=1800)
        log = done.stdout[-4000:] + done.stderr[-4000:]
        assert done.returncode == 0, log
        results = json.loads((script.parent.parent / "results" / "results.json").read_text())
        scores[kind] = {t["name"]: (t["score"], t["max_score"]) for t in results["tests"]
                        if t.get("max_score") is not None}
        assert not written & set(scores[kind]), f"written questions autograded: {scores[kind]}"
    full = scores["autograder"]
    assert full and all(s == m > 0 for s, m in full.values()), scores
    assert all(s == 0 for s, _ in scores["student"].values()), scores
