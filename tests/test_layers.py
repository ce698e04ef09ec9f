"""The import contracts of pyproject.toml (``[tool.importlinter]``), checked by import-linter's
``lint-imports``: labkit's layers (interface > claims > runs > experiments > algorithms >
store, docs/architecture.md) with every module placed in one, no import cycle, and no import
of the course tooling. The guard tests break a copy of the package and watch the check fail."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` (the console script's entry point, in this interpreter) on the
    checkout ``root``, with ``root`` first on the import path."""
    if importlib.util.find_spec("importlinter") is None:
        pytest.fail("import-linter is not installed: `make venv` (pip install -e '.[dev]') installs it")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout and "kept" in done.stdout.lower(), done.stdout


@pytest.fixture
def copy(tmp_path) -> Path:
    """A copy of the checkout's packages and pyproject.toml, to break."""
    for name in ("labkit", "course"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_upward_import_breaks_the_layers(copy):
    assert lint_imports(copy).returncode == 0  # the copy, unbroken, passes
    with open(copy / "labkit" / "store.py", "a") as f:
        f.write("\nfrom . import plotting  # noqa: E402  (store is the bottom layer)\n")
    done = lint_imports(copy)
    assert done.returncode != 0
    assert "labkit.store -> labkit.plotting" in done.stdout, done.stdout


def test_a_module_outside_every_layer_breaks_the_contract(copy):
    (copy / "labkit" / "unplaced.py").write_text('"""A module no layer names."""\n')
    done = lint_imports(copy)
    assert done.returncode != 0
    assert "labkit.unplaced" in done.stdout, done.stdout


def test_importing_the_course_tooling_breaks_the_contract(copy):
    with open(copy / "labkit" / "train.py", "a") as f:
        f.write("\nimport course.runtime  # noqa: E402,F401\n")
    done = lint_imports(copy)
    assert done.returncode != 0
    assert "labkit.train -> course.runtime" in done.stdout, done.stdout
