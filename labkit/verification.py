"""Verifying a result file (:func:`verify`, the ``labkit verify`` command): its checksums
first, then rows recomputed in an empty cache folder and every number compared with the stored
one (to ``rtol`` = 1e-4 and ``atol`` = 1e-6: rows are seeded and deterministic at one torch
thread), a training curve up to a smaller step count where the experiment declares its prefix
rule, and ``verified_by`` stamps written into the rows that agree."""

from __future__ import annotations

import contextlib
import datetime as _dt
import inspect
import math
import os
import random
import tempfile
from pathlib import Path

from .provenance import _git_commit, _git_dirty, _source, labkit_digest
from .result_file import _checksum_problems, _lock, _short, _write_atomically, load_results, \
    row_checksum
from .result_rows import _configs, _one_row, _row_key, _rules, experiment_for, full_config, \
    resolve, storable

__all__ = ["verify"]


def _close(a, b, rtol: float, atol: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rtol, atol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= atol + rtol * abs(b)
    return a == b


def verify(path, rows: int | str = 1, *, seed: int = 0, rtol: float = 1e-4, atol: float = 1e-6,
           max_steps: int | None = None, cheapest: bool = False, device: str = "cpu",
           stamp: bool = False, where: dict | None = None, share_cache=None,
           log=print) -> bool:
    """Recompute ``rows`` rows of the result file at ``path`` (an int, or ``"all"``) and
    compare every number they hold with the recomputation.

    The checksums come first (:func:`check_checksums`): a file edited by hand fails without
    recomputing anything. Rows are drawn at random (``seed``), or the cheapest by recorded
    ``wall_s`` with ``cheapest``. Every key of a stored result is compared (curves in full);
    ``max_steps`` recomputes a training curve only up to that step and compares the curves'
    evaluations it covers (a curve's prefix is exact: see :mod:`labkit.experiments`), for sets
    whose rules (the file's, or the registered experiment's) declare a ``prefix_key``.
    ``stamp`` writes ``verified_by`` (the commit and labkit digest that recomputed the row, the
    date, ``max_steps`` and the compared keys) into every row that agrees, so a row whose own
    provenance is unknown carries the code that reproduced it. Raises ValueError for a missing
    file, a point function that no longer exists, a row whose config is not in the
    experiment's current grid, or a ``max_steps`` that cannot apply; returns True when every
    compared value agrees. Each row is recomputed in an empty cache folder, so nothing the
    first computation cached (a trained base model, say) stands in for the recomputation.

    ``where``: only rows whose config has these values (e.g. ``{"seed": 8}``). ``share_cache``:
    a folder the recomputations cache into instead, that verifications of several files share
    (give it empty: a base model the first recomputation trains from scratch is then reused by
    the rows of other files that read the same base, never one the rows' own run cached)."""
    data = load_results(path)
    problems = _checksum_problems(data)
    if problems:
        for problem in problems:
            log(f"{path}: {problem}")
        return False
    spec, fn = data["point_fn"], resolve(data["point_fn"])
    _check_verify_args(rows, max_steps)
    name, current_keys, version, rules = _verify_rules(data, spec, fn)
    picked = _pick_rows(data, rows, seed, cheapest, where)
    if max_steps is not None:
        _check_prefix(path, data, picked, rules, name, spec, fn)
    agreed, ok_all = [], True
    for i in picked:
        row = data["rows"][i]
        if current_keys is not None and (row.get("version", 1) != version
                                         or _row_key(fn, row["config"], version) not in current_keys):
            raise ValueError(f"{path}: row {i}'s config is not in experiment {name!r}'s current grid "
                             f"(the grid or {spec}'s defaults changed): {_short(row['config'])}; rerun "
                             f"`labkit results run {name}`")
        _log_made(i, row, data, spec, fn, log)
        bad, keys, wall = _recompute_and_compare(path, i, row, spec, fn, rules, max_steps, device,
                                                 rtol, atol, share_cache)
        status = "ok" if not bad else "MISMATCH in " + ", ".join(bad)
        log(f"row {i} ({_short(row['config'])}"
            f"{', up to step ' + str(max_steps) if max_steps else ''}): {status}  [{wall:.1f} s]")
        ok_all &= not bad
        if not bad:
            agreed.append((i, keys))
    if stamp and agreed:
        _stamp(Path(path), data, agreed, max_steps, log)
    return ok_all


def _check_verify_args(rows, max_steps) -> None:
    if rows not in ("all", "unverified") and (isinstance(rows, bool) or not isinstance(rows, int)
                                              or rows < 1):
        raise ValueError(f"rows must be an integer >= 1, 'all' or 'unverified', got {rows!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int)
                                  or max_steps < 1):
        raise ValueError(f"max_steps must be a positive integer (the step to recompute a curve up "
                         f"to), got {max_steps!r}")


def _verify_rules(data, spec, fn):
    """``(name, current keys or None, version, rules)`` of a result file."""
    from .experiments import EXPERIMENTS, Experiment

    name = data.get("name")
    exp = None
    if name in EXPERIMENTS or (isinstance(name, str) and ":" in name):
        _, exp = experiment_for(name)
    current_keys, version = None, None
    if exp is not None:
        if exp.point_fn != spec:
            raise ValueError(f"made by {spec}, but experiment {name!r} now uses {exp.point_fn}")
        _, current = _configs(exp)
        version = exp.version
        current_keys = {_row_key(fn, c, version) for c in current}
    defaults = Experiment(point_fn=spec, grids=(), purpose="")
    rules = _rules(exp) if exp is not None else data.get("experiment") or _rules(defaults)
    return name, current_keys, version, rules


def _pick_rows(data, rows, seed, cheapest, where=None) -> list[int]:
    candidates = list(range(len(data["rows"])))
    if not candidates:
        raise ValueError("the file holds no rows")
    if where is not None:
        if not isinstance(where, dict):
            raise TypeError(f"where must be a dict of config values, got {type(where).__name__}")
        candidates = [i for i in candidates
                      if all(data["rows"][i]["config"].get(k) == v for k, v in where.items())]
        if not candidates:
            raise ValueError(f"where={where!r}: no row of the file has these config values")
    if rows == "all":
        return candidates
    if rows == "unverified":  # neither their own provenance nor a verified_by stamp
        return [i for i in candidates
                if not (data["rows"][i].get("provenance") or data["rows"][i].get("verified_by"))]
    if cheapest:
        return sorted(candidates, key=lambda i: data["rows"][i]["wall_s"])[:rows]
    return random.Random(seed).sample(candidates, min(rows, len(candidates)))


def _check_prefix(path, data, picked, rules, name, spec, fn) -> None:
    prefix_key, steps_key = rules["prefix_key"], rules["curve_steps"]
    if prefix_key is None:
        raise ValueError(f"{path}: the rows of {name!r} cannot be shortened (its experiment "
                         "declares prefix_key=None); verify them without --max-steps")
    params = inspect.signature(fn).parameters
    if prefix_key not in params:
        raise ValueError(f"{path}: cannot shorten the rows of {name!r}: its prefix_key "
                         f"{prefix_key!r} is not a parameter of {spec} (parameters: "
                         f"{', '.join(params)}); declare Experiment(prefix_key=...) as "
                         "the step parameter, or verify without --max-steps")
    lacking = [i for i in picked if steps_key not in data["rows"][i]["result"]]
    if lacking:
        raise ValueError(f"{path}: cannot shorten row {lacking[0]}: its result holds no "
                         f"{steps_key!r} (the experiment's curve_steps) to match a prefix on")


def _log_made(i, row, data, spec, fn, log) -> None:
    made = row.get("provenance") or {}
    if made:
        changed = made.get("source") != _source(fn)
        log(f"row {i} was computed by {spec} at commit {str(made.get('commit'))[:10]} "
            f"({made.get('date')}); its source has {'CHANGED' if changed else 'not changed'} since")
    else:
        log(f"row {i} does not record the code that computed it (the file block names "
            f"{str(data['provenance'].get('commit'))[:10]})")


def _recompute_and_compare(path, i, row, spec, fn, rules, max_steps, device, rtol, atol,
                           share_cache=None):
    """``(mismatched keys, compared keys, seconds)`` of one row recomputed."""
    try:
        config = full_config(fn, dict(row["config"]))
    except ValueError as exc:
        raise ValueError(f"{path}: row {i}: {exc} (the point function changed)") from None
    prefix_key, steps_key = rules["prefix_key"], rules["curve_steps"]
    expected = dict(row["result"])
    truncated = max_steps is not None and config[prefix_key] > max_steps
    if truncated:
        config[prefix_key] = int(max_steps)
        config.update(rules["prefix_args"])
    with _fresh_cache(share_cache):  # never what the first computation cached
        _, got, wall = _one_row(spec, config, device, 1)
    got = storable(got)
    bad, compared = [], []
    for key, want in expected.items():
        have = got.get(key)
        if truncated:
            if (not isinstance(want, list) or key == steps_key or steps_key not in got
                    or len(want) != len(expected[steps_key])):
                continue  # only the curves (one value per evaluation) cover a shortened run
            have_steps, want_steps = got[steps_key], expected[steps_key]
            common = [s for s in have_steps if s in want_steps]
            want = [want[want_steps.index(s)] for s in common]
            have = [have[have_steps.index(s)] for s in common] if isinstance(have, list) else have
        compared.append(key)
        if key not in got or not _close(have, want, rtol, atol):
            bad.append(key)
    if not truncated:
        bad += [f"{k} (not stored)" for k in got if k not in expected and k != "wall_s"]
    return bad, compared, wall


def _stamp(path: Path, data: dict, agreed, max_steps, log) -> None:
    """Write ``verified_by`` into the rows that agreed, under the file's lock."""
    lock = _lock(path)
    try:
        fresh = load_results(path)
        if [row_checksum(r) for r in fresh["rows"]] != [row_checksum(r) for r in data["rows"]]:
            raise ValueError(f"{path} changed while it was verified; verify again")
        stamp = {"commit": _git_commit(), "dirty": _git_dirty(), "labkit_digest": labkit_digest(),
                 "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "max_steps": max_steps}
        for i, keys in agreed:
            fresh["rows"][i]["verified_by"] = {**stamp, "compared": keys}
        _write_atomically(path, fresh)
    finally:
        lock.close()
    log(f"{path}: verified_by written into {len(agreed)} rows")


@contextlib.contextmanager
def _fresh_cache(shared=None):
    """``LABKIT_CACHE`` pointed at an empty temporary folder (or at ``shared``, a folder that
    recomputations share) for the duration."""
    old = os.environ.get("LABKIT_CACHE")
    with (contextlib.nullcontext(str(shared)) if shared is not None
          else tempfile.TemporaryDirectory(prefix="labkit-verify-")) as folder:
        os.environ["LABKIT_CACHE"] = folder
        try:
            yield folder
        finally:
            if old is None:
                os.environ.pop("LABKIT_CACHE", None)
            else:
                os.environ["LABKIT_CACHE"] = old
