"""Packaging metadata: one distribution name, one version, citation files that agree, the two
dependency lists (pyproject.toml for pip, environment.yml for conda), the CHANGELOG, where an
installed package writes, and the deprecation helpers. tests/test_install.py builds and installs."""

import importlib
import importlib.metadata
import json
import re
import sys
import tomllib
import types
import warnings
from pathlib import Path

import jsonschema
import pytest
import yaml

import labkit
from labkit import plotting, store

ROOT = Path(__file__).resolve().parent.parent
DIST = "labkit-memgen"  # `labkit` on the package index is an unrelated project (0.0.3.dev11, 2015)
PAPER_KEY = "ye2026provable"
# The CFF 1.2.0 JSON schema (draft-07), vendored because the tests run offline. Its source is
# the Citation File Format project (CC-BY-4.0), as shipped in cffconvert 2.0.0's wheel
# (cffconvert/schemas/1.2.0/schema.json); cffconvert itself pins jsonschema<4, which Jupyter
# cannot use, so the file is validated with jsonschema directly.
CFF_SCHEMA = Path(__file__).with_name("cff-1.2.0.schema.json")
# conda spells a few packages differently from PyPI
CONDA_NAMES = {"torch": "pytorch", "build": "python-build"}
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


# --- the distribution name and the single version source -------------------------------------

def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_distribution_name_is_free_and_used_everywhere():
    project = _pyproject()["project"]
    assert project["name"] == DIST
    assert yaml.safe_load((ROOT / "environment.yml").read_text())["name"] == DIST
    assert f"pip install {DIST}" in (ROOT / "README.md").read_text()
    # the bare name would install the unrelated project: no install line, error message or page may say it
    bare = re.compile(r"pip install\s+(-\S+\s+)*['\"]?labkit(?![-\w])")
    assert bare.search("pip install -U 'labkit[cluster]'") and not bare.search(f"pip install '{DIST}[cluster]'")
    texts = [ROOT / "README.md", ROOT / "Makefile", *(ROOT / "labkit").glob("*.py"), *(ROOT / "docs").glob("*.md"),
             *(ROOT / "notebooks").glob("*.ipynb")]
    offenders = [f"{path.relative_to(ROOT)}: {m.group(0)}" for path in texts for m in bare.finditer(path.read_text())]
    assert not offenders, f"install lines that name the unrelated `labkit` instead of {DIST}: {offenders}"
    assert DIST in yaml.safe_load((ROOT / "CITATION.cff").read_text())["abstract"]
    assert importlib.metadata.distribution(DIST).read_text("top_level.txt").split() == ["labkit"]


def test_version_has_one_source():
    pyproject = _pyproject()
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "labkit.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", labkit.__version__)
    # the installed (editable) metadata; tests/test_install.py checks the built wheel and sdist
    assert importlib.metadata.version(DIST) == labkit.__version__, "stale editable install: run `make venv`"
    assert str(yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"]) == labkit.__version__
    assert _bibtex((ROOT / "README.md").read_text())["labkit"]["version"] == labkit.__version__


def test_changelog_records_every_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in text and "Semantic Versioning" in text
    versions = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", text, flags=re.M)
    assert versions and versions[0] == labkit.__version__, versions
    assert "0.1.0" in versions and versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))),
                                                      reverse=True)
    for v in versions:  # every heading has its section of changes
        section = text.split(f"## [{v}]", 1)[1].split("\n## ", 1)[0]
        assert re.search(r"^### (Added|Changed|Deprecated|Removed|Fixed|Security)$", section, flags=re.M), v


# --- citation: CITATION.cff validates, and the README and the book cite the paper alike -------

def _cff():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_file_validates_against_the_cff_schema():
    schema = json.loads(CFF_SCHEMA.read_text())
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    # the guard first: the schema rejects a file with a bad licence and no authors
    bad = dict(_cff(), license="MIT License")
    del bad["authors"]
    errors = list(validator.iter_errors(bad))
    assert any("'authors' is a required property" in e.message for e in errors)
    assert any(list(e.path) == ["license"] for e in errors)
    cff = _cff()
    assert not [e.message for e in validator.iter_errors(cff)]
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["license"] == _pyproject()["project"]["license"] == "MIT"


def _bibtex(text: str) -> dict[str, dict[str, str]]:
    """``{key: {field: value}}`` for the ``@type{key, field = {value} | "value" | number}``
    entries in ``text`` (braces nest; enough BibTeX for a README and a .bib file)."""
    entries = {}
    for m in re.finditer(r"@(\w+)\s*\{\s*([^,\s]+)\s*,", text):
        fields, i = {"ENTRYTYPE": m.group(1).lower()}, m.end()
        while True:
            f = re.compile(r"\s*(\w+)\s*=\s*").match(text, i)
            if not f:
                break
            i = f.end()
            if text[i] == "{":  # to the matching brace
                depth, j = 0, i
                while True:
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                    j += 1
                    if depth == 0:
                        break
                value = text[i + 1:j - 1]
            elif text[i] == "\"":  # to the next quote outside braces
                depth, j = 0, i + 1
                while not (text[j] == "\"" and depth == 0):
                    depth += {"{": 1, "}": -1}.get(text[j], 0)
                    j += 1
                j += 1
                value = text[i + 1:j - 1]
            else:
                j = re.compile(r"[^,}\s]+").match(text, i).end()
                value = text[i:j]
            fields[f.group(1).lower()] = re.sub(r"\s+", " ", value.replace("{", "").replace("}", "")).strip()
            i = re.compile(r"\s*,?").match(text, j).end()
        entries[m.group(2)] = fields
    return entries


def _bib_authors(value: str) -> list[tuple[str, str]]:
    """``"Ye, Zeqi and Zhu, Q."`` -> ``[("Ye", "Zeqi"), ("Zhu", "Q.")]`` (family, given)."""
    out = []
    for name in re.split(r"\s+and\s+", value.strip()):
        family, _, given = name.partition(",") if "," in name else (name.rsplit(" ", 1)[-1], "", name.rsplit(" ", 1)[0])
        out.append((family.strip(), given.strip()))
    return out


def _same_person(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Same family name; given names equal, or one is the other's initial ("Z." and "Zeqi")."""
    (fa, ga), (fb, gb) = a, b
    if fa.casefold() != fb.casefold() or not ga or not gb or ga[0].casefold() != gb[0].casefold():
        return False
    return ga.casefold() == gb.casefold() or ga.endswith(".") or gb.endswith(".")


def _norm_title(title: str) -> str:
    return re.sub(r"\s+", " ", title.replace("{", "").replace("}", "")).strip().casefold()


def _paper_from_cff() -> dict:
    cff = _cff()
    refs = [r for r in cff.get("references", []) + [cff.get("preferred-citation", {})]
            if "2511.03202" in json.dumps(r)]
    assert refs, "CITATION.cff must name the paper (arXiv 2511.03202) under references"
    ref = refs[0]
    return {"title": ref["title"], "year": int(ref["year"]),
            "authors": [(a["family-names"], a["given-names"]) for a in ref["authors"]]}


def _paper_from_bib(text: str, where: str) -> dict:
    entry = _bibtex(text).get(PAPER_KEY)
    assert entry, f"{where} has no BibTeX entry {PAPER_KEY!r}"
    return {"title": entry["title"], "year": int(entry["year"]), "authors": _bib_authors(entry["author"])}


def _agree(a: dict, b: dict) -> bool:
    return (_norm_title(a["title"]) == _norm_title(b["title"]) and a["year"] == b["year"]
            and len(a["authors"]) == len(b["authors"])
            and all(_same_person(x, y) for x, y in zip(a["authors"], b["authors"])))


def test_the_paper_is_cited_alike_in_citation_file_readme_and_book():
    cff = _paper_from_cff()
    assert cff["title"] == "Provable Separations between Memorization and Generalization in Diffusion Models"
    assert [f for f, _ in cff["authors"]] == ["Ye", "Zhu", "Tao", "Chen"] and cff["year"] == 2026
    # the guard first: a reordered author list or another year does not agree
    assert not _agree(cff, dict(cff, authors=cff["authors"][::-1]))
    assert not _agree(cff, dict(cff, year=2025))
    sources = {"README.md": (ROOT / "README.md").read_text()}
    bib = ROOT / "docs" / "references.bib"
    if bib.exists():  # the book's shared bibliography
        sources["docs/references.bib"] = bib.read_text()
    for where, text in sources.items():
        paper = _paper_from_bib(text, where)
        assert _agree(paper, cff), (where, paper, cff)


def test_bibtex_reader_on_a_known_entry():
    text = '@article{k1,\n title = {A {Nested} Title},\n author = "Doe, J. and Jane Roe",\n year = 2024\n}\n'
    assert _bibtex(text) == {"k1": {"ENTRYTYPE": "article", "title": "A Nested Title",
                                    "author": "Doe, J. and Jane Roe", "year": "2024"}}
    assert _bib_authors("Doe, J. and Jane Roe") == [("Doe", "J."), ("Roe", "Jane")]


# --- where files go: the checkout's folders, or the user's when installed ----------------------

def _without_overrides(monkeypatch):
    monkeypatch.delenv("LABKIT_CACHE", raising=False)
    monkeypatch.delenv("LABKIT_FIGURES", raising=False)


def test_a_checkout_is_recognised_and_site_packages_is_not(tmp_path, monkeypatch):
    installed = tmp_path / "site-packages" / "labkit"
    installed.mkdir(parents=True)
    monkeypatch.setattr(store, "__file__", str(installed / "store.py"))
    assert store.repo_root() is None
    checkout = tmp_path / "clone"
    (checkout / "labkit").mkdir(parents=True)
    (checkout / "notebooks").mkdir()
    (checkout / "pyproject.toml").write_text("[project]\n")
    monkeypatch.setattr(store, "__file__", str(checkout / "labkit" / "store.py"))
    assert store.repo_root() == checkout


def test_defaults_in_the_source_checkout(monkeypatch):
    _without_overrides(monkeypatch)
    assert store.repo_root() == ROOT
    assert store.figures_dir() == ROOT / "figures"
    assert store.cache_dir() == ROOT / ".cache" / ("fast" if store.is_fast() else "full")


def test_defaults_when_installed(tmp_path, monkeypatch):
    _without_overrides(monkeypatch)
    monkeypatch.setattr(store, "repo_root", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # platformdirs' user cache on Linux
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LABKIT_FAST", "1")
    assert store.figures_dir() == tmp_path / "figures"
    if sys.platform.startswith("linux"):
        assert store.cache_dir("sweeps") == tmp_path / "xdg" / "labkit" / "fast" / "sweeps"
    assert store.cache_dir("sweeps").is_dir()


@pytest.mark.parametrize("installed", [False, True])
def test_environment_variables_always_win(tmp_path, monkeypatch, installed):
    if installed:
        monkeypatch.setattr(store, "repo_root", lambda: None)
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("LABKIT_FIGURES", str(tmp_path / "f"))
    monkeypatch.setenv("LABKIT_FAST", "0")
    assert store.cache_dir("x") == tmp_path / "c" / "full" / "x"
    assert store.figures_dir() == tmp_path / "f"


# --- deprecated names keep working and name their replacement ----------------------------------

def test_deprecated_warns_with_the_new_name_at_the_callers_line():
    def old_function():
        labkit._deprecated("labkit.sweeps.old_function", "labkit.experiments.new_function")

    with pytest.warns(DeprecationWarning, match=r"use labkit\.experiments\.new_function instead") as record:
        old_function()  # the line the warning must point at
    assert record[0].filename == __file__


def test_moved_names_resolve_to_their_new_home_with_a_warning():
    module = types.ModuleType("labkit_old_home")
    module.__getattr__ = labkit._moved("labkit_old_home", {"savefig": "labkit.plotting.savefig"})
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        module.nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning, match=r"labkit_old_home\.savefig is deprecated; use labkit\.plotting\.savefig"):
            module.savefig
    with pytest.warns(DeprecationWarning) as record:
        assert module.savefig is plotting.savefig
    assert record[0].filename == __file__
    with pytest.raises(ValueError, match="dotted"):
        labkit._moved("labkit_old_home", {"x": "nowhere"})


def _deprecated_sections() -> str:
    """The text of every release's "Deprecated" section of CHANGELOG.md."""
    parts = (ROOT / "CHANGELOG.md").read_text().split("### Deprecated")[1:]
    return "\n".join(part.split("\n### ", 1)[0].split("\n## ", 1)[0] for part in parts)


def _every_shim() -> list[tuple[str, str, str]]:
    """``labkit._SHIMS`` once every module of labkit is imported (each records its shims)."""
    import pkgutil

    for info in pkgutil.walk_packages(labkit.__path__, "labkit."):
        importlib.import_module(info.name)
    return list(labkit._SHIMS)


def expired_shims(version: str) -> list[str]:
    """The shims that labkit ``version`` must no longer hold (it reached their removal version)."""
    return [f"{old} (use {new}; removed in {remove_in})" for old, new, remove_in in _every_shim()
            if labkit._version_tuple(version)[:2] >= labkit._version_tuple(remove_in)[:2]]


def test_no_shim_outlives_its_removal_version():
    # The guard first: at the removal version every shim of that version is reported.
    assert any("labkit.plotting.cache_dir" in s for s in expired_shims("0.3.0"))
    assert len(expired_shims("0.3.0")) == sum(r == "0.3" for _, _, r in _every_shim())
    expired = expired_shims(labkit.__version__)
    assert not expired, (f"labkit {labkit.__version__} has reached the removal version of: "
                         f"{expired}; delete them (and their tests), and say so in CHANGELOG.md")
    with pytest.raises(ValueError, match="release number"):
        labkit._version_tuple("soon")


def test_every_shim_has_a_removal_version_in_the_changelog():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    shims = _every_shim()
    assert len(shims) >= 20, shims
    missing = [old for old, _, remove_in in shims
               if f"`{old.rpartition('.')[2]}`" not in _deprecated_sections()
               and f"`{old}`" not in changelog]
    assert not missing, f"CHANGELOG.md's Deprecated sections do not list {missing}"
    for module in ("capacity", "sweeps", "pruning", "plotting", "train"):
        moved = importlib.import_module(f"labkit.{module}").__getattr__
        assert moved.remove_in == "0.3", f"labkit.{module}'s moved names have no removal version"


def test_every_moved_name_still_works_and_is_in_the_changelog():
    deprecated = _deprecated_sections()
    found = 0
    for module_name in labkit.__all__:
        module = importlib.import_module(f"labkit.{module_name}")
        for old, new in getattr(getattr(module, "__getattr__", None), "moved", {}).items():
            found += 1
            new_module, _, attr = new.rpartition(".")
            with pytest.warns(DeprecationWarning, match=re.escape(new)):
                assert getattr(module, old) is getattr(importlib.import_module(new_module), attr)
            assert f"`{old}`" in deprecated or f"`labkit.{module_name}.{old}`" in deprecated, \
                f"CHANGELOG.md's Deprecated section does not list labkit.{module_name}.{old}"
            assert f"`{new_module}" in deprecated, f"CHANGELOG.md does not say where {old} went ({new})"
    assert found, "no moved names found (labkit._moved records them on the module's __getattr__)"
