"""Where a result set's rows came from: the commit checked out and whether labkit's files
differed from it, digests of labkit's sources (:func:`labkit_digest`) and of a user's
experiment modules (:func:`user_digest`), the provenance recorded with each row and in the
file block, and the checks a referee would make of it (:func:`provenance_problems`: a row
with no provenance, or one naming a commit created after it started, which
:func:`set_aside_late_commits` sets aside)."""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

from .result_file import _lock, _short, _write_atomically, load_results

__all__ = ["labkit_digest", "user_digest", "provenance_problems", "set_aside_late_commits"]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _git_dirty() -> bool | None:
    """Whether the checkout's labkit/ has uncommitted changes (None outside a checkout)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "."],
                             cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def _source(fn) -> str:
    from .sweeps import function_identity

    return function_identity(fn)["source"][:16]


def _files_digest(files, root: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(Path(f).relative_to(root)).encode() + b"\0" + Path(f).read_bytes() + b"\0")
    return h.hexdigest()[:20]


def labkit_digest() -> str:
    """A digest of every source file of the labkit package (its ``.py`` files, by path and
    content): two runs with the same digest ran the same labkit code."""
    root = Path(__file__).resolve().parent
    return _files_digest(root.rglob("*.py"), root)


def user_digest(module: str | None) -> dict | None:
    """``{"module", "folder", "digest"}`` of a user's experiment module and every module it
    imported from the same folder tree (a helper module the experiment uses included), or
    None for labkit's own experiments."""
    if not module or module.startswith("labkit"):
        return None
    mod = importlib.import_module(module)
    top = Path(mod.__file__).resolve().parent
    if mod.__name__.count(".") or (top / "__init__.py").exists():  # a package: its whole tree
        while (top.parent / "__init__.py").exists():
            top = top.parent
    labkit_root = Path(__file__).resolve().parent
    files = {Path(m.__file__).resolve() for m in list(sys.modules.values())
             if getattr(m, "__file__", None) and str(m.__file__).endswith(".py")
             and Path(m.__file__).is_absolute() and Path(m.__file__).is_file()}
    mine = [f for f in files if f.is_relative_to(top) and not f.is_relative_to(labkit_root)
            and "site-packages" not in f.parts]
    return {"module": module, "folder": str(top), "files": len(mine),
            "digest": _files_digest(mine, top)}


def _module_provenance(label: str, exp) -> dict:
    """The module that defines the experiment (and its point function) and a SHA-256 of its
    source, so a file says which code made it even when that code lives outside labkit."""
    import hashlib

    module = label.partition(":")[0] if ":" in label else "labkit.experiments.registry"
    out = {"module": module}
    try:
        source = inspect.getsource(importlib.import_module(module))
    except (ImportError, OSError, TypeError):
        return out
    return {**out, "module_sha256": hashlib.sha256(source.encode()).hexdigest()}


def _code_provenance(fn, device: str, module: str | None = None) -> dict:
    """What computes a run's rows, read once when the run starts (the workers import the same
    code): the commit checked out then, whether labkit's files differed from it (``dirty``),
    labkit's and torch's versions, the device and torch threads, a digest of the point
    function's source, of all of labkit's sources and (a user's experiment) of the user's
    modules, the start time, and the digest of the claims frozen then
    (:func:`labkit.store.claims_lock_digest`)."""
    import torch

    from . import __version__
    from .store import claims_lock_digest as lock_digest

    out = {"commit": _git_commit(), "dirty": _git_dirty(), "labkit": __version__,
           "torch": torch.__version__, "device": device, "threads": 1, "source": _source(fn),
           "labkit_digest": labkit_digest(),
           "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "claims_lock": lock_digest()}
    user = user_digest(module)
    if user is not None:
        out["user_code"] = user
    return out


def _row_provenance(code: dict) -> dict:
    return {**code, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _summary(rows) -> dict:
    """The file block's account of where its rows came from: ``{commit: rows}`` (``"unrecorded"``
    for rows stored without their own provenance)."""
    counts = {}
    for row in rows:
        commit = (row.get("provenance") or {}).get("commit") or "unrecorded"
        counts[commit] = counts.get(commit, 0) + 1
    return counts


def _code_versions(rows) -> list[dict]:
    """The code versions the rows came from: ``{commit, labkit_digest, rows}`` each."""
    counts = {}
    for r in rows:
        made = r.get("provenance") or {}
        key = (made.get("commit"), made.get("labkit_digest"))
        counts[key] = counts.get(key, 0) + 1
    return [{"commit": c, "labkit_digest": d, "rows": n} for (c, d), n in counts.items()]


def provenance_problems(path) -> list[str]:
    """What a referee would reject in the provenance of the result file at ``path``: a row with
    neither its own provenance nor a ``verified_by`` stamp, and a row whose provenance names a
    commit created after the row's computation started (the commit read when it was stored,
    not the code that ran). Commit times come from git; outside a checkout only the first
    check applies."""
    data = load_results(path)
    out = []
    for i, row in enumerate(data["rows"]):
        made, checked = row.get("provenance"), row.get("verified_by")
        if not made and not checked:
            out.append(f"row {i} ({_short(row['config'])}): no provenance and no verified_by")
            continue
        late = _commit_after_start(row)
        if late:
            out.append(f"row {i} ({_short(row['config'])}): {late}")
    return out


def _commit_after_start(row) -> str | None:
    made = row.get("provenance") or {}
    commit = made.get("commit")
    if not commit:
        return None
    started = made.get("started")
    if started is None and made.get("date"):
        end = _dt.datetime.fromisoformat(made["date"])
        started = (end - _dt.timedelta(seconds=row.get("wall_s") or 0)).isoformat()
    when = _commit_time(commit)
    if started is None or when is None:
        return None
    if when > _dt.datetime.fromisoformat(started):
        return (f"names commit {commit[:10]}, created {when.isoformat()}, after the row's "
                f"computation started ({started})")
    return None


@functools.lru_cache(maxsize=None)  # a commit's time never changes; a file names few commits
def _commit_time(commit: str):
    try:
        out = subprocess.run(["git", "show", "-s", "--format=%cI", commit],
                             cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return _dt.datetime.fromisoformat(text) if out.returncode == 0 and text else None


def set_aside_late_commits(path, log=print) -> int:
    """Move the provenance of rows that name a commit created after their computation started
    (see :func:`provenance_problems`) to ``provenance_unreliable``, with the reason: such a
    row's code is unknown until :func:`verify` ``(stamp=True)`` reproduces it. Returns how many
    rows were changed."""
    path = Path(path)
    lock = _lock(path)
    try:
        data = load_results(path)
        changed = 0
        for row in data["rows"]:
            late = _commit_after_start(row)
            if late:
                row["provenance_unreliable"] = {**row.pop("provenance"), "reason": late}
                changed += 1
        if changed:
            _write_atomically(path, data)
    finally:
        lock.close()
    log(f"{path}: provenance of {changed} rows set aside (a commit later than the row)")
    return changed
