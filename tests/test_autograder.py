"""An autograder zip grades wherever otter grades (slow: a fresh venv, torch included).

For notebooks 00 and 02, the zip that ``make exercises`` builds is unpacked and a venv is made
from nothing but what it declares: ``python -m venv`` (no system site packages), then its
``requirements.txt`` (otter-grader, torch's CPU wheel and the labkit wheel in ``files/``;
nothing comes from the checkout). Where uv is installed (beside this Python, as ``make venv``
puts it, or on PATH), pip installs the torch line with its index (pip's configured indexes and
local wheels serve it; uv reads neither) and uv the other lines, several times faster; elsewhere
pip installs the whole file. Both installers use the caller's download caches. That venv's ``otter run`` then grades, in a scratch folder with its own
HOME and TMPDIR, an environment that names no path of the checkout (its venv is off PATH) and
at the fast size: the instructor notebook scores full marks, the blank student notebook zero,
with no import error. A cell added to each graded copy records where the kernel's labkit
lives and where it writes: in the venv and in otter's folder under the scratch folder; the
installed labkit does not know the checkout (``repo_root()`` is None), so nothing is written
into it.

The venv is built once per test session and shared by every test that grades in it, on
either worker (tests/conftest.py's ``shared_build``). Where a host
that the requirements name cannot be reached (torch's CPU index, on an offline machine), pip is
told not to retry it (``PIP_RETRIES=0``): it would otherwise wait on it for every package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course.editions import ENV_CELL  # noqa: E402

pytestmark = pytest.mark.slow
STEMS = ("00_primer", "02_approximation_separation")

# Appended after the environment cell of each graded copy: where the kernel's labkit lives and
# where it reads and writes (MARK is the scratch file it appends to).
PROBE = """\
import json, sys
import labkit, labkit.store, labkit.results
with open({mark!r}, "a") as f:
    f.write(json.dumps({{"prefix": sys.prefix, "labkit": labkit.__file__,
                        "checkout": str(labkit.store.repo_root()),
                        "figures": str(labkit.store.figures_dir()),
                        "cache": str(labkit.store.cache_dir()),
                        "results": str(labkit.results.RESULTS_DIR), "cwd": __import__("os").getcwd()}}) + "\\n")
"""


def _clean_env(scratch: Path, venv_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABKIT_", "PYTHON", "JUPYTER", "VIRTUAL_ENV", "PWD", "OLDPWD"))}
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not Path(p).is_relative_to(ROOT)]
    env.update(HOME=str(home), TMPDIR=str(scratch), PYTHONNOUSERSITE="1", LABKIT_FAST="1",
               PATH=os.pathsep.join([str(venv_dir / "bin"), *path]),
               MPLCONFIGDIR=str(scratch / "mpl"))
    named = sorted(k for k, v in env.items() if str(ROOT) in v)
    assert not named, f"the environment names the checkout: {named}"
    return env


def _uv() -> str | None:
    """uv beside this Python (``make venv`` installs it there) or on PATH, else None."""
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.is_file() else shutil.which("uv")


def _caches(uv: str | None) -> dict:
    """The caller's pip and uv download caches (the clean environment has its own HOME)."""
    caches = {}
    for key, command in (("PIP_CACHE_DIR", [sys.executable, "-m", "pip", "cache", "dir"]),
                         ("UV_CACHE_DIR", [uv, "cache", "dir"] if uv else None)):
        done = command and subprocess.run(command, capture_output=True, text=True)
        if done and done.returncode == 0 and done.stdout.strip():
            caches[key] = done.stdout.strip().splitlines()[-1]
    return caches


def install_requirements(source: Path, venv_dir: Path, env: dict, uv: str | None) -> None:
    """A venv at ``venv_dir`` holding what ``source/requirements.txt`` declares: torch (and the
    index line before it) by the venv's pip, the other lines by uv; everything by pip without uv."""
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(venv_dir)
    lines = [line.strip() for line in (source / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    torch_lines = [line for line in lines if line.startswith(("--", "torch=="))]
    steps = [[str(venv_dir / "bin" / "python"), "-m", "pip", "install", "--quiet",
              "-r", "requirements.txt"]]
    if uv and any(line.startswith("torch==") for line in torch_lines):
        (source / "torch.txt").write_text("\n".join(torch_lines) + "\n")
        (source / "rest.txt").write_text("\n".join(x for x in lines if x not in torch_lines) + "\n")
        steps = [[*steps[0][:-1], "torch.txt"],
                 [uv, "pip", "install", "--quiet", "--python", str(venv_dir / "bin" / "python"),
                  "-r", "rest.txt"]]
    for step in steps:
        done = subprocess.run(step, cwd=source, env=dict(env, PIP_RETRIES="0"),
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, (step, done.stdout[-3000:] + done.stderr[-3000:])


@pytest.fixture(scope="session")
def grading(course_editions, shared_builds, tmp_path_factory):
    """(the built editions, the venv's directory, a scratch root of this worker).

    The venv is built once per test session, from 00's zip, and shared by every worker and
    test that grades in it (``shared_build``, tests/conftest.py): this file's and
    tests/test_gradescope.py's."""

    def build(folder: Path) -> str:
        source = folder / "autograder"
        with zipfile.ZipFile(course_editions[STEMS[0]]["zip"]) as zf:
            zf.extractall(source)
        venv_dir = folder / "venv"
        uv = _uv()
        env = _clean_env(folder, venv_dir)
        install_requirements(source, venv_dir, dict(env, **_caches(uv)), uv)
        return str(venv_dir)

    venv_dir = Path(shared_builds("autograder-venv", build))
    return course_editions, venv_dir, tmp_path_factory.mktemp("grade")


def _graded(nb_path: Path, folder: Path, mark: Path) -> Path:
    nb = nbformat.read(nb_path, as_version=4)
    env_cell = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source == ENV_CELL)
    nb.cells.insert(env_cell + 1, nbformat.v4.new_code_cell(PROBE.format(mark=str(mark))))
    folder.mkdir(parents=True)
    path = folder / nb_path.name
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("stem", STEMS)
def test_a_fresh_environment_from_the_zip_grades_full_marks_and_zero(grading, stem):
    editions, venv_dir, root = grading
    paths = editions[stem]
    with zipfile.ZipFile(paths["zip"]) as zf:  # every zip declares the same environment
        with zipfile.ZipFile(editions[STEMS[0]]["zip"]) as first:
            assert zf.read("requirements.txt") == first.read("requirements.txt")
    scores = {}
    for kind in ("autograder", "student"):
        scratch = root / f"{stem}-{kind}"
        mark = scratch / "probe.jsonl"
        submission = _graded(paths[kind], scratch / "submission", mark)
        env = _clean_env(scratch, venv_dir)
        done = subprocess.run([str(venv_dir / "bin" / "otter"), "run", "--no-logo", "-a",
                               str(paths["zip"]), "-o", str(scratch), str(submission)],
                              cwd=scratch, env=env, capture_output=True, text=True, timeout=1800)
        log = done.stdout[-4000:] + done.stderr[-4000:]
        assert done.returncode == 0, log
        assert "ModuleNotFoundError" not in log and "ImportError" not in log, log
        results = json.loads((scratch / "results.json").read_text())
        scores[kind] = {t["name"]: (t["score"], t["max_score"]) for t in results["tests"]
                        if t.get("max_score") is not None}
        probe = [json.loads(line) for line in mark.read_text().splitlines()]
        assert probe, f"the probe cell did not run:\n{log}"
        for seen in probe:
            assert Path(seen["prefix"]) == venv_dir and seen["checkout"] == "None", seen
            assert Path(seen["labkit"]).is_relative_to(venv_dir), seen
            for key in ("figures", "cache", "results", "cwd"):
                assert Path(seen[key]).is_relative_to(scratch), (key, seen)
                assert not Path(seen[key]).is_relative_to(ROOT), (key, seen)
    assert scores["autograder"] and all(s == m > 0 for s, m in scores["autograder"].values()), scores
    assert all(s == 0 for s, _ in scores["student"].values()), scores
