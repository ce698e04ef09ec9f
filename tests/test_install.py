"""The built distributions install into a fresh venv and work there, outside the checkout.

``python -m build`` runs once per test session (the ``dists`` fixture): an sdist, then a wheel
built from that sdist. Each test installs one of them into its own fresh venv. To keep this
cheap, the venv is made without pip and reads the heavy dependencies (torch, numpy, matplotlib
...) from the project's ``.venv`` through a ``.pth`` line, and the artifact is installed with
``--no-deps --no-build-isolation``; nothing is downloaded. A plain path line in a ``.pth`` file
does not run the ``.venv``'s own ``.pth`` hooks, so its editable labkit stays invisible: each test
asserts that ``labkit`` is imported from the fresh venv.
"""

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

import labkit

ROOT = Path(__file__).resolve().parent.parent
DIST = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
VERSION = labkit.__version__  # of the checkout being built
WHEEL_NAME = DIST.replace("-", "_")


def _run(cmd, **kwargs) -> str:
    """Run ``cmd``; on failure show its output in the assertion message."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _clean_env(**extra) -> dict:
    """The environment without labkit's overrides or a PYTHONPATH that could reach the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LABKIT_") and k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PYTHONNOUSERSITE="1", **extra)
    return env


# What the sdist is built from. The build runs on a copy, so it writes no egg-info into the
# checkout (where `python -m pytest` would find it before the installed metadata).
SOURCES = ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "CITATION.cff", "CHANGELOG.md", "labkit")


@pytest.fixture(scope="session")
def dists(tmp_path_factory):
    """``{"sdist": path, "wheel": path}``, built once for the whole session."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src], env=_clean_env())
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, sorted(out.iterdir())
    return {"sdist": sdists[0], "wheel": wheels[0]}


def _fresh_venv(path: Path, artifact: Path) -> tuple[Path, Path]:
    """A venv at ``path`` with ``artifact`` installed and ``.venv``'s packages on its path;
    returns (its python, its site-packages)."""
    _run([sys.executable, "-m", "venv", "--without-pip", path])
    python = path / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "_labkit_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: the .venv's editable labkit-memgen is visible through the .pth line;
    # without it pip would consider it installed (and try to uninstall it).
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
          "--no-build-isolation", "--ignore-installed", artifact], env=_clean_env())
    return python, site


IMPORT_CHECK = """
import importlib.metadata, json, labkit
dist = importlib.metadata.distribution({dist!r})
print(json.dumps({{"file": labkit.__file__, "version": labkit.__version__, "metadata": dist.version,
                   "dist_path": str(dist.locate_file("")), "top_level": dist.read_text("top_level.txt")}}))
"""


def _check_installed(python: Path, site: Path, cwd: Path) -> dict:
    info = json.loads(_run([python, "-c", IMPORT_CHECK.format(dist=DIST)], cwd=cwd, env=_clean_env()))
    assert Path(info["file"]).is_relative_to(site), f"labkit imported from {info['file']}, not the fresh venv"
    assert Path(info["dist_path"]) == site
    assert info["version"] == info["metadata"] == VERSION
    assert info["top_level"].split() == ["labkit"]
    return info


def test_build_makes_an_sdist_and_a_wheel_that_twine_accepts(dists):
    _run([sys.executable, "-m", "twine", "check", "--strict", dists["sdist"], dists["wheel"]])
    assert dists["wheel"].name == f"{WHEEL_NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = whl.namelist()
        meta = email.message_from_bytes(whl.read(f"{WHEEL_NAME}-{VERSION}.dist-info/METADATA"))
    assert {n.split("/")[0] for n in names} == {"labkit", f"{WHEEL_NAME}-{VERSION}.dist-info"}
    assert meta["Name"] == DIST and meta["Version"] == VERSION and meta["License-Expression"] == "MIT"
    assert any(r.startswith("platformdirs") for r in meta.get_all("Requires-Dist"))
    with tarfile.open(dists["sdist"]) as sdist:
        files = {Path(n).relative_to(f"{WHEEL_NAME}-{VERSION}").as_posix()
                 for n in sdist.getnames() if "/" in n}
    assert {"pyproject.toml", "PKG-INFO", "README.md", "LICENSE", "CITATION.cff", "CHANGELOG.md",
            "labkit/__init__.py", "labkit/plotting.py"} <= files
    assert not any(f.startswith(("tests/", "notebooks/", ".cache/", "figures/")) for f in files)


def test_sdist_installs_into_a_fresh_venv(dists, tmp_path):
    python, site = _fresh_venv(tmp_path / "venv", dists["sdist"])
    _check_installed(python, site, cwd=tmp_path)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert all((tmp_path / "venv" / "bin" / name).is_file() for name in scripts), sorted(scripts)


SMOKE = textwrap.dedent("""
    import importlib.metadata
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from labkit import plotting, sweeps

    def square(n):
        return {"y": n * n}

    table = sweeps.run_sweep(square, {"n": [2, 3]}, name="smoke", progress=False)
    assert [row["y"] for row in table.rows] == [4, 9], table.rows
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    # every console script's target imports from the installed package
    scripts = importlib.metadata.distribution("DIST").entry_points.select(group="console_scripts")
    assert scripts and all(callable(script.load()) for script in scripts), scripts
    print(plotting.savefig(fig, "00_smoke"))
""").replace("DIST", DIST)


def _files(folder: Path) -> set[str]:
    """Every file under ``folder`` except byte code (Python's, not labkit's, to write)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_installed_wheel_writes_nothing_under_site_packages(dists, tmp_path):
    python, site = _fresh_venv(tmp_path / "venv", dists["wheel"])
    _check_installed(python, site, cwd=tmp_path)
    work, xdg = tmp_path / "work", tmp_path / "xdg-cache"
    work.mkdir()
    (work / "smoke.py").write_text(SMOKE)
    before = _files(site)
    import matplotlib  # keep matplotlib's font cache where it is: a fresh one costs seconds

    figure = _run([python, "smoke.py"], cwd=work,
                  env=_clean_env(XDG_CACHE_HOME=str(xdg), MPLCONFIGDIR=matplotlib.get_cachedir())).strip()
    assert _files(site) == before, sorted(_files(site) ^ before)
    assert not (site / ".cache").exists() and not (site / "figures").exists()
    assert Path(figure) == work / "figures" / "00_smoke.png" and Path(figure).is_file()
    cached = [p for p in (xdg / "labkit").rglob("*.json")]  # platformdirs' user cache on Linux
    assert len(cached) == 2, sorted((xdg / "labkit").rglob("*"))
    assert all(p.is_relative_to(xdg / "labkit" / "full" / "sweeps" / "smoke") for p in cached)
