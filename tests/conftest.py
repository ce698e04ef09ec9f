"""Shared fixtures: small, seeded problems where every quantity has a closed form, and one
book build that every browser test of a session reads."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import filelock
import pytest
import torch

from labkit import data

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def gmm64(gen):
    """A 3-D mixture with unequal weights and a non-identity covariance, float64."""
    means = torch.tensor([[1.0, -2.0, 0.5], [-1.5, 0.5, 2.0], [0.0, 2.5, -1.0]], dtype=torch.float64)
    a = torch.tensor([[1.0, 0.3, 0.0], [0.0, 0.7, 0.2], [0.1, 0.0, 0.5]], dtype=torch.float64)
    return data.GaussianMixture(means, cov=a @ a.T + 0.05 * torch.eye(3, dtype=torch.float64),
                                weights=torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))


@pytest.fixture
def paper_gmm(gen):
    """The paper's mixture (K = 8, mu ~ N(0, 4 I), identity covariance) at d = 4, float64."""
    return data.make_gmm(8, 4, generator=gen, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# The book, built once and shared by tests/test_book.py, test_a11y.py and test_layout.py.
#
# Under pytest-xdist (`--dist loadfile`) those files run in different worker processes, which
# cannot share a session fixture. The build is shared on disk instead: .cache/book-site-<key>/,
# where <key> hashes everything the book is made of (docs/, the notebooks, labkit's sources for
# the API page, the figures, the asset lock file, the installed packages and the command). The
# first process takes a file lock and builds into a temporary folder renamed into place when
# sphinx-build succeeds; the others wait on the lock and read the result. An unchanged checkout
# reuses the build across sessions; a changed one gets a new key.

BOOK_CACHE = ROOT / ".cache"
BOOK_TIMEOUT = 600  # seconds for one sphinx-build on a busy 2-core machine
BOOK_STALE = 3600  # seconds: older, unused builds under .cache are removed after a build


def book_command(out: Path) -> list[str]:
    """The strict render of the committed notebooks (``make book BOOK_ARGS=--no-execute``):
    ``-W --keep-going`` reports every warning and still writes the whole site."""
    sphinx = Path(sys.executable).with_name("sphinx-build")
    return [str(sphinx), "-b", "html", "-W", "--keep-going", "-q", "-d", str(out / "doctrees"),
            str(ROOT / "docs"), str(out / "site")]


def book_inputs() -> list[Path]:
    """The files the book is built from (the mirror docs/notebooks/ is rebuilt from notebooks/)."""
    docs = [path for path in (ROOT / "docs").rglob("*") if path.is_file()
            and not {"notebooks", "__pycache__"} & set(path.relative_to(ROOT / "docs").parts)]
    return sorted([*docs, *(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "labkit").rglob("*.py"),
                   *(ROOT / "figures").glob("*"), ROOT / "book" / "package-lock.json"])


def book_key() -> str:
    digest = hashlib.sha256()
    for path in book_inputs():
        if path.is_file():
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    packages = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions())
    digest.update("\n".join([sys.version, *packages, *book_command(Path("OUT"))]).encode())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class BookBuild:
    """A built book: ``site`` (its root folder), ``returncode`` of the strict sphinx-build and
    its ``log`` (both None for a site given by ``$LABKIT_BOOK_SITE``)."""

    site: Path
    returncode: int | None
    log: str | None


def build_book() -> BookBuild:
    """The shared strict build of the book: built once, race-safe across processes."""
    BOOK_CACHE.mkdir(exist_ok=True)
    final = BOOK_CACHE / f"book-site-{book_key()}"
    with filelock.FileLock(str(BOOK_CACHE / "book-site.lock"), timeout=2 * BOOK_TIMEOUT):
        if not (final / "build.json").is_file():
            tmp = BOOK_CACHE / f"{final.name}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            env = {key: value for key, value in os.environ.items() if key != "LABKIT_FAST"}
            result = subprocess.run(book_command(tmp), env=env, capture_output=True, text=True,
                                    timeout=BOOK_TIMEOUT, cwd=ROOT)
            shutil.rmtree(tmp / "doctrees", ignore_errors=True)
            log = {"returncode": result.returncode, "log": result.stdout + result.stderr}
            (tmp / "build.json").write_text(json.dumps(log), encoding="utf-8")
            if result.returncode not in (0, 1):  # 1: warnings under -W; 2: the build broke
                return BookBuild(tmp / "site", result.returncode, log["log"])
            shutil.rmtree(final, ignore_errors=True)  # a folder left without build.json
            os.replace(tmp, final)
            for old in BOOK_CACHE.glob("book-site-*"):
                if old != final and old.is_dir() and time.time() - old.stat().st_mtime > BOOK_STALE:
                    shutil.rmtree(old, ignore_errors=True)
        os.utime(final)  # in use: not stale
    log = json.loads((final / "build.json").read_text(encoding="utf-8"))
    return BookBuild(final / "site", log["returncode"], log["log"])


@pytest.fixture(scope="session")
def book_build() -> BookBuild:
    """The book of the committed notebooks, strictly built once (or ``$LABKIT_BOOK_SITE``)."""
    if os.environ.get("LABKIT_BOOK_SITE"):
        return BookBuild(Path(os.environ["LABKIT_BOOK_SITE"]).resolve(), None, None)
    return build_book()


@pytest.fixture(scope="session")
def book_site(book_build) -> Path:
    """The built site/ folder of the book (``index.html`` at its root)."""
    assert (book_build.site / "index.html").is_file(), \
        f"the book was not built (sphinx-build exit {book_build.returncode}):\n{book_build.log}"
    return book_build.site


# ---------------------------------------------------------------------------------------------
# One Dask LocalCluster for the tests that need a real one (tests/test_sweeps.py, test_results.py).

@pytest.fixture(scope="session")
def dask_cluster():
    """Two worker processes with one thread each on 127.0.0.1, shared by a session's Dask tests.

    The workers fork from a server process that has imported torch and labkit once
    (``forkserver`` with a preload) instead of each importing torch after a fresh spawn, which
    costs seconds per worker and per restart (a killed worker is restarted the same way).
    """
    distributed = pytest.importorskip("dask.distributed")
    import dask
    from distributed.utils import get_mp_context

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        # after distributed has set its own preload list (once per process), which this replaces
        get_mp_context().set_forkserver_preload(["distributed", "numpy", "torch", "labkit.sweeps",
                                                 "labkit.results"])
        with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                      host="127.0.0.1", dashboard_address=None) as cluster:
            yield cluster


# ---------------------------------------------------------------------------------------------
# How `make test` shares the tests between its two workers (`pytest -n 2 --dist loadfile
# --no-loadscope-reorder`): xdist hands each scope to one worker, whole. A scope is a file (so a
# notebook's nbval cells share one kernel, and a file's module fixtures are set up once), except
# for the slow tests named in OWN_SCOPE: each of their cases is a scope of its own, so both
# workers share them. The scopes in SLOW_FIRST are handed out first, the longest first (xdist
# would otherwise order them by their number of tests), so that no worker starts a long scope
# while the other has nothing left to do. (``--dist loadgroup`` with xdist_group marks would say
# the same, but pytest-xdist 3.8 cannot append the group to a test's id under pytest 9, so it
# schedules every test alone, nbval's cells included.)

EXERCISES = "tests/test_exercises.py::"
GRADING = EXERCISES + "test_grading_scores_blanks_and_mistakes_zero_and_solutions_full"
VARIANTS = EXERCISES + "test_two_student_ids_get_different_answers_each_graded_full_marks"
STUDENT_BOOK = EXERCISES + "test_student_book_holds_no_solution_and_serves_student_notebooks"
FRESH_ENV = ("tests/test_autograder.py::"
             "test_a_fresh_environment_from_the_zip_grades_full_marks_and_zero")
GRADESCOPE = "tests/test_gradescope.py::test_the_zip_grades_under_gradescopes_run_autograder"
GRADEBOOK = "tests/test_gradebook.py::test_two_students_are_graded_merged_and_exported"
OWN_SCOPE = {GRADING, VARIANTS, STUDENT_BOOK, FRESH_ENV, GRADESCOPE, GRADEBOOK}
# The first worker builds the course's editions, then the autograder's venv (course_editions
# and the grading fixture share them on disk across workers), while the other grades with the
# editions; the tests that need the venv come once it is likely built.
SLOW_FIRST = (f"{FRESH_ENV}[02_approximation_separation]", f"{GRADING}[03_pruning_mitigation]",
              f"{GRADING}[02_approximation_separation]", f"{GRADING}[01_estimation_separation]",
              f"{VARIANTS}[02_approximation_separation]", f"{VARIANTS}[00_primer]",
              f"{FRESH_ENV}[00_primer]", f"{GRADESCOPE}[02_approximation_separation]",
              f"{GRADESCOPE}[00_primer]", STUDENT_BOOK, f"{GRADING}[04_open_questions]",
              f"{GRADING}[00_primer]", GRADEBOOK, "tests/test_book.py",
              "tests/test_jupyterlab.py")


def test_scope(nodeid: str) -> str:
    """The scope of a test's id: the test itself for those in OWN_SCOPE, else its file."""
    return nodeid if nodeid.split("[")[0] in OWN_SCOPE else nodeid.split("::")[0]


test_scope.__test__ = False  # not a test


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own
    from xdist.scheduler import LoadFileScheduling

    class SlowTestsApart(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return test_scope(nodeid)

    return SlowTestsApart(config, log)


def pytest_collection_modifyitems(items):
    rank = {scope: i for i, scope in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(test_scope(item.nodeid), len(rank)))  # stable


# ---------------------------------------------------------------------------------------------
# The course's builds, made once per test session and shared by every worker: the editions of
# the notebooks with exercises (``make exercises``), which tests/test_exercises.py,
# test_autograder.py, test_gradescope.py and test_gradebook.py read and never write, and the
# autograder's fresh environment (tests/test_autograder.py). The workers' temporary folders
# share a parent; the first worker to ask builds there under a file lock, the others wait on
# the lock and read the same folder. A build that failed leaves no ``done.json`` and is redone.

def shared_build(tmp_path_factory, name: str, build):
    """``build(folder)`` once per test session, in ``<shared tmp>/name``: returns what it
    returned (JSON: the first call's value, read back by every later one)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # /tmp/pytest-of-<user>/pytest-N/, above each popen-gwK/
    folder, done = base / name, base / name / "done.json"
    with filelock.FileLock(str(base / f"{name}.lock")):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            value = build(folder)
            tmp = done.with_suffix(".tmp")
            tmp.write_text(json.dumps(value), encoding="utf-8")
            os.replace(tmp, done)
    return json.loads(done.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def shared_builds(tmp_path_factory):
    """``shared_builds(name, build)``: ``shared_build`` in this session's shared folder."""
    return lambda name, build: shared_build(tmp_path_factory, name, build)


@pytest.fixture(scope="session")
def course_editions(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """``build_student_edition`` of every notebook with exercises, built once per session:
    ``{stem: {"student", "handout", "autograder", "zip", "rubric": Path}}``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from course.editions import assignment_notebooks, build_student_edition

    notebooks = assignment_notebooks(ROOT / "notebooks")
    if not notebooks:
        pytest.skip("no notebook carries exercises")

    def build(folder: Path) -> dict:
        built = build_student_edition(notebooks, folder)
        return {stem: {k: str(p) for k, p in paths.items()} for stem, paths in built.items()}

    built = shared_build(tmp_path_factory, "course-editions", build)
    return {stem: {k: Path(p) for k, p in paths.items()} for stem, paths in built.items()}
