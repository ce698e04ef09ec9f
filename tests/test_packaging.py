"""The two dependency lists (pyproject.toml for pip, environment.yml for conda) must agree."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# conda spells a few packages differently from PyPI
CONDA_NAMES = {"torch": "pytorch"}
CONDA_ONLY = {"python", "pip", "nodejs"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower()


def _pip_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {CONDA_NAMES.get(_name(r), _name(r)): r for r in reqs}


def _conda_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    return {_name(d): d for d in env["dependencies"] if isinstance(d, str)}


def test_environment_lists_the_same_packages():
    pip, conda = _pip_requirements(), _conda_requirements()
    assert set(pip) == set(conda) - CONDA_ONLY, (set(pip) ^ (set(conda) - CONDA_ONLY))


def test_lower_bounds_agree():
    pip, conda = _pip_requirements(), _conda_requirements()
    for name, req in pip.items():
        pin = re.search(r">=\s*([\w.]+)", req)
        assert pin, f"{req}: give a lower bound"
        assert re.search(r">=\s*" + re.escape(pin.group(1)) + r"\b", conda[name]), (req, conda[name])


def test_environment_installs_the_project():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_section and "-e ." in pip_section[0]["pip"]
