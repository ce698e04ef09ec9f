"""Freezing the declarations before their rows are computed: :func:`declaration` (what a claim
declares, as JSON), :func:`declaration_digest`, :func:`freeze` (``labkit claims freeze``, which
appends to ``results/claims.lock``) and :func:`frozen_under` (the declarations frozen when a row
recorded a lock digest). The lock file itself is read by :mod:`labkit.store`, below the run
layer that stamps every row with its digest."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from .. import store
from ..store import digest, write_json
from .declarations import CLAIMS
from .model import Claim

__all__ = ["declaration", "declaration_digest", "lock_path", "read_lock", "lock_digest", "freeze",
           "frozen_under"]


def declaration(c: Claim) -> dict:
    """What a claim declares, as JSON: its fields that differ from their defaults (a field
    added later with a default leaves every earlier declaration's digest unchanged), its label
    test named by module, name and a digest of its source."""
    out = {}
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else object())
        if value == default and f.name not in ("id",):
            continue
        if callable(value):  # named where it was first declared (labeltests.declared_as)
            name = getattr(value, "declared_as", f"{value.__module__}:{value.__qualname__}")
            value = {"fn": name,
                     "source": digest(inspect.getsource(value))}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def declaration_digest(c: Claim) -> str:
    """The digest of :func:`declaration` ``(c)``: what ``labkit claims freeze`` records."""
    return digest(declaration(c))


def lock_path(results_dir=None) -> Path:
    """The lock file of frozen declarations: ``results/claims.lock`` (JSON)."""
    return store.claims_lock_path(results_dir)


def read_lock(results_dir=None) -> dict:
    """The lock file's content, ``{"freezes": [...]}`` (empty when nothing is frozen)."""
    return store.read_claims_lock(results_dir)


def lock_digest(results_dir=None) -> str | None:
    """The digest of the latest freeze (every claim frozen so far, with its declaration's
    digest), or None when nothing is frozen. Every row a run computes records it."""
    return store.claims_lock_digest(results_dir)


def freeze(claims=None, results_dir=None, *, log=print) -> dict:
    """Freeze the declarations of ``claims`` (default :data:`CLAIMS`): append a freeze to the lock
    file that records each claim's declaration digest (the claims frozen before keep theirs), the
    commit and the date. A claim whose declaration changed since it was frozen is refused
    (ValueError naming it): a frozen claim is changed only by declaring a new one."""
    import datetime as dt

    from ..results import _git_commit  # the run layer's commit reader

    claims = CLAIMS if claims is None else claims
    lock = read_lock(results_dir)
    frozen = dict(lock["freezes"][-1]["claims"]) if lock["freezes"] else {}
    changed = [c.id for c in claims if c.id in frozen and frozen[c.id] != declaration_digest(c)]
    if changed:
        raise ValueError(f"claims {changed} were frozen with another declaration; declare a new "
                         "claim (a new id) instead of changing a frozen one")
    new = {c.id: declaration_digest(c) for c in claims if c.id not in frozen}
    if not new:
        log(f"nothing to freeze: all {len(frozen)} declared claims are frozen")
        return lock
    frozen.update(new)
    entry = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "commit": _git_commit(), "added": sorted(new), "claims": frozen,
             "digest": digest(frozen)}
    lock["freezes"].append(entry)
    write_json(lock_path(results_dir), lock)
    log(f"froze {len(new)} claims ({len(frozen)} in all); lock {entry['digest']}")
    return lock


def frozen_under(lock_id: str | None, results_dir=None) -> dict:
    """``{claim id: declaration digest}`` frozen when a row recorded ``lock_id`` (empty for
    None or an unknown lock)."""
    for entry in read_lock(results_dir)["freezes"]:
        if entry["digest"] == lock_id:
            return entry["claims"]
    return {}
