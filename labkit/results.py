"""Result sets that travel with the repository: ``results/<NAME>.json``, computed, resumed,
read and verified (introduced in notebook 02; the commands are in :mod:`labkit.cli`).

A result set is a small JSON file::

    {"name": ..., "purpose": ..., "provenance": {"command", "commit", "labkit",
     "torch", "device", "threads", "date", "wall_s"}, "point_fn": "module:function",
     "rows": [{"config": {...every argument of point_fn...}, "result": {...},
               "wall_s": s}, ...]}

- :func:`run_results` computes a registered experiment (:data:`labkit.experiments.EXPERIMENTS`)
  row by row, rewriting the file atomically after every finished row: an interrupted run
  loses at most the rows in flight, and a rerun computes only the rows the file lacks.
- :func:`results_table` is what notebooks call: the rows of the file as a
  :class:`labkit.sweeps.Table` (config merged with result), computing the missing ones or not.
- :func:`verify` recomputes random rows and compares them. Rows are seeded and deterministic
  at one torch thread, so agreement is expected to ``rtol`` = 1e-4 and ``atol`` = 1e-6 on the
  same platform; a training curve can be recomputed up to a smaller step count (its prefix is
  exact, see :mod:`labkit.experiments`).

A result set is named by a registered name (``"fig2"``) or, for an :class:`Experiment` defined
in a researcher's own module, by ``"module:attribute"`` (``"my_experiments:ring_time"``; the
command line puts the current folder on the import path). The file carries the experiment's
rules (the keys :func:`verify` compares, the prefix rule that shortens a row, the version) and
its provenance names the module and a SHA-256 of its source, so a file is verified from what it
holds. A point function's result must be JSON: numpy and torch numbers are stored as numbers,
and a result that cannot be stored (NaN, an object) is reported with its key and config, its
raw value kept under the labkit cache (``results/rejected``) while the other rows go on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import importlib
import inspect
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from .store import row_key

__all__ = ["RESULTS_DIR", "resolve", "experiment_for", "full_config", "storable", "load_results",
           "run_results", "results_table", "verify", "provenance_problems", "check_checksums",
           "set_aside_late_commits", "labkit_digest", "user_digest", "row_checksum",
           "file_checksum", "merge_results"]

def _results_dir() -> Path:
    from .store import results_dir

    return results_dir()


RESULTS_DIR = _results_dir()


def resolve(spec: str):
    """The function named by ``"module:function"``; ValueError naming ``point_fn`` when it is gone."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"point_fn must be 'module:function', got {spec!r}")
    module, name = spec.split(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"point_fn {spec!r} cannot be found ({exc}); the result set was made by code "
                         "that no longer exists") from None
    if not callable(fn):
        raise ValueError(f"point_fn {spec!r} is not callable")
    return fn


def full_config(fn, config: dict, bound=("device",)) -> dict:
    """``config`` with every other parameter of ``fn`` at its current default (minus ``bound``
    ones, which the command line sets), so a row records everything that produced it
    (:func:`labkit.store.fill_defaults`)."""
    from .store import fill_defaults

    return fill_defaults(fn, config, bound)


def _canonical(obj) -> str:
    from .store import canonical  # one canonical JSON for sweep keys and result rows

    return canonical(obj)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _write_atomically(path: Path, obj) -> None:
    from .store import write_json

    write_json(path, obj)


def load_results(path) -> dict:
    """Read a result set; ValueError naming ``path`` when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"result file {str(path)!r} does not exist (make it with `labkit results run NAME`)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"result file {str(path)!r} is not valid JSON: {exc}") from None
    for key in ("provenance", "point_fn", "rows"):
        if key not in data:
            raise ValueError(f"result file {str(path)!r} lacks {key!r}")
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, dict) or not {"config", "result", "wall_s"} <= set(row):
            raise ValueError(f"result file {str(path)!r}: row {i} needs 'config', 'result' and 'wall_s'")
    return data


def experiment_for(name):
    """``(label, experiment)`` for a registered name (:data:`labkit.experiments.EXPERIMENTS`),
    ``"module:attribute"`` naming an :class:`~labkit.experiments.Experiment` in an importable
    module, or an ``Experiment`` itself (labelled ``"experiment"``). ValueError names what is
    missing."""
    from .experiments import Experiment, experiment

    if isinstance(name, Experiment):
        return "experiment", name
    if isinstance(name, str) and ":" in name:
        module, _, attr = name.partition(":")
        try:
            found = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"experiment {name!r} cannot be found ({exc}); a user's experiment is "
                             "'module:attribute' in a module on the import path (the labkit "
                             "command line adds the current folder)") from None
        if not isinstance(found, Experiment):
            raise ValueError(f"experiment {name!r} is a {type(found).__name__}, not a "
                             "labkit.experiments.Experiment")
        return name, found
    try:
        return name, experiment(name)
    except ValueError as exc:
        raise ValueError(f"{exc}, or 'module:attribute' naming an Experiment of your own") from None


def _rules(exp) -> dict:
    """What a file says about reading its rows: compared keys, prefix rule, version."""
    return {"compare": list(exp.compare), "prefix_key": exp.prefix_key,
            "curve_steps": exp.curve_steps, "prefix_args": dict(exp.prefix_args),
            "version": exp.version}


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


def _configs(name) -> tuple[str, list[dict]]:
    from .sweeps import expand_grid

    _, exp = experiment_for(name)
    fn = resolve(exp.point_fn)
    seen, configs = set(), []
    for grid in exp.grids:
        for c in expand_grid(grid, fn):
            full = full_config(fn, c)
            key = _canonical(full)
            if key not in seen:
                seen.add(key)
                configs.append(full)
    return exp.point_fn, configs


def storable(result, where: str = "result"):
    """``result`` as JSON values (:func:`labkit.store.storable`)."""
    from .store import storable as _storable

    return _storable(result, where)


def _keep_rejected(label: str, key: str, config: dict, result) -> Path:
    """Save a result that cannot be stored (raw, with torch.save) so its work is not lost."""
    from .store import cache_dir, digest, save_torch

    folder = cache_dir("results", "rejected", label.replace(":", "_").replace("/", "_"))
    path = folder / f"{digest(key)}.pt"
    save_torch({"config": config, "key": key, "result": result}, path)
    return path


def _row_key(fn, config: dict, version) -> str | None:
    """A row's key (:func:`labkit.store.row_key`), or None when its config no longer fits the
    point function (a parameter it names was removed)."""
    try:
        return row_key(fn, config, version)
    except ValueError:
        return None


def _index(fn, rows, version) -> dict:
    """``{key: row}`` of the stored rows at the experiment's ``version`` (a row without one is
    version 1), keyed with the point function's current defaults filled in."""
    out = {}
    for row in rows:
        if row.get("version", 1) != version:
            continue
        key = _row_key(fn, row["config"], version)
        if key is not None:
            out[key] = row
    return out


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


def _git_dirty() -> bool | None:
    """Whether the checkout's labkit/ has uncommitted changes (None outside a checkout)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "."],
                             cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


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


def _one_row(spec: str, config: dict, device: str, threads: int) -> tuple[dict, dict, float]:
    import torch

    torch.set_num_threads(threads)
    fn = resolve(spec)
    start = time.perf_counter()
    kwargs = dict(config)
    if "device" in inspect.signature(fn).parameters:
        kwargs["device"] = device
    try:
        result = fn(**kwargs)
    except Exception as exc:
        raise RuntimeError(f"{spec} failed at config {config}: {type(exc).__name__}: {exc}") from exc
    wall = result.pop("wall_s", None) if isinstance(result, dict) else None
    return config, result, round(wall if wall is not None else time.perf_counter() - start, 2)


def run_results(name, out=None, *, device: str = "cpu", n_jobs: int = 1, limit: int | None = None,
                scheduler: str | None = None, log=print, progress: bool = False,
                drop_stale: bool = False) -> dict:
    """Compute the result set ``name`` (a registered name or ``"module:attribute"``, see
    :func:`experiment_for`) into ``out`` (default ``results/NAME.json``), computing only rows
    the file lacks and rewriting it atomically after every finished row. ``n_jobs`` worker
    processes (joblib, one torch thread each); ``scheduler="tcp://HOST:PORT"`` runs the rows on
    a Dask cluster instead (its workers must import the point function). ``limit`` computes at
    most that many new rows (0: only report what is missing). ``progress`` shows a tqdm bar
    with the time left, estimated from the rows' recorded times. A row whose result cannot be
    stored (:func:`storable`) is kept under the labkit cache and reported, with its key and
    config, in a ValueError raised once the other rows are done.

    A file never loses a row silently: rows that no longer match the grid, the point function's
    defaults or the experiment's version are moved to the file's ``superseded`` section with the
    reason (``drop_stale=True`` drops them, saying how many); a file made by another experiment
    is refused; a row whose checksum does not match its content (an edit by hand) stops the run
    before anything is written. The log says how many stored rows were computed by other code
    (another digest of labkit's sources) than the code running now."""
    from . import _checks

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer, got {n_jobs!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be an integer >= 0 (the most new rows to compute), "
                         f"got {limit!r}")
    _checks.device(device)
    label, exp = experiment_for(name)
    spec, configs = _configs(exp)
    if out is None and ":" in label:
        raise ValueError(f"out is needed for {label!r}, an experiment outside labkit's registry "
                         "(e.g. results/ring_time.json)")
    path = Path(out) if out is not None else RESULTS_DIR / f"{label}.json"
    lock = _lock(path)  # held until the function returns (closed in the finally below)
    try:
        return _run_locked(label, exp, spec, configs, path, device, n_jobs, limit, scheduler, log,
                           progress, drop_stale)
    finally:
        lock.close()


def _time_left(pending: list[dict], rows, prefix_key: str | None, workers: int) -> float | None:
    """Seconds the ``pending`` configs should take, from the recorded times of ``rows``: seconds
    per step (``prefix_key``) when every config has one, else the mean time of a row."""
    walls = [(r["config"], r["wall_s"]) for r in rows if r.get("wall_s")]
    if not walls or not pending:
        return None

    def steps(c):
        v = c.get(prefix_key) if prefix_key else None
        return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None
    if all(steps(c) for c, _ in walls) and all(steps(c) for c in pending):
        rate = sum(w for _, w in walls) / sum(steps(c) for c, _ in walls)
        total = rate * sum(steps(c) for c in pending)
    else:
        total = sum(w for _, w in walls) / len(walls) * len(pending)
    return total / max(workers, 1)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _run_locked(name, exp, spec, configs, path, device, n_jobs, limit, scheduler, log,
                progress, drop_stale=False) -> dict:
    import torch
    from tqdm.auto import tqdm

    from . import __version__
    from .dispatch import Failure, dispatch
    from .store import digest

    fn = resolve(spec)
    version = exp.version
    keyed = [(_row_key(fn, c, version), c) for c in configs]
    module = _module_provenance(name, exp)
    code = _code_provenance(fn, device, module["module"])
    done, superseded, old, stale = {}, [], {}, []
    if path.exists():
        old = load_results(path)
        _check_owner(path, old, name, spec)
        checksum_problems = _checksum_problems(old)
        if checksum_problems:
            raise ValueError(f"{path}: {'; '.join(checksum_problems[:3])}: the file was edited by "
                             "hand; restore it from git (or recompute those rows) before a run "
                             "writes it")
        current = {k for k, _ in keyed}
        done, stale = _partition(fn, old["rows"], version, current, spec)
        superseded = list(old.get("superseded", []))
        if stale and drop_stale:
            log(f"{name}: dropping {len(stale)} stale rows (--drop-stale): {_reasons(stale)}")
        elif stale:
            superseded += stale
            log(f"{name}: {len(stale)} rows of {path.name} do not match the current grid, defaults "
                f"or version; kept under 'superseded' ({_reasons(stale)}); --drop-stale drops them")
        _log_code(name, list(done.values()), log, code)
    missing = [c for k, c in keyed if k not in done]
    todo = missing if limit is None else missing[:limit]
    workers = (os.cpu_count() or 1) if n_jobs < 0 else n_jobs
    left = _time_left(todo or missing, list(done.values()), exp.prefix_key, workers)
    log(f"{name}: {len(configs)} rows, {len(done)} in {path}, computing {len(todo)}"
        + (f" of {len(missing)} missing" if len(todo) < len(missing) else "")
        + (f" (about {_duration(left)}, from the recorded times of {len(done)} rows)"
           if left else ""))
    provenance = {"command": "labkit " + " ".join(sys.argv[1:]) if sys.argv and "labkit" in sys.argv[0]
                  else f"labkit results run {name}",
                  "commit": _git_commit(), "labkit": __version__, "torch": torch.__version__,
                  "device": device, "threads": 1, **module,
                  "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    start = time.perf_counter()

    def write():
        order = {k: i for i, (k, _) in enumerate(keyed)}
        rows = [_with_checksum(r) for r in
                sorted(done.values(), key=lambda r: order[_row_key(fn, r["config"], version)])]
        prov = {**provenance, "version": version, "rows_by_commit": _summary(rows),
                "code_versions": _code_versions(rows),
                "wall_s": round(sum(r["wall_s"] for r in rows), 1)}
        doc = {"name": name, "purpose": exp.purpose, "provenance": prov, "point_fn": spec,
               "experiment": _rules(exp), "rows": rows}
        if superseded:
            doc["superseded"] = superseded
        doc["checksum"] = file_checksum(doc)
        _write_atomically(path, doc)

    rejected, failed = [], []
    if todo:
        outputs = dispatch(_one_row, [(spec, c, device, 1) for c in todo], n_jobs=n_jobs,
                           backend="dask" if scheduler is not None else "loky", scheduler=scheduler,
                           errors="keep")
        pending = {_canonical(c): c for c in todo}
        with tqdm(total=len(todo), desc=name, unit="row", disable=not progress, leave=False) as bar:
            for k, output in enumerate(outputs, 1):
                if isinstance(output, Failure):  # the other rows go on; a rerun retries this one
                    config = output.arguments[1]
                    pending.pop(_canonical(config), None)
                    bar.update(1)
                    failed.append(f"{_short(config)}: {output.error}")
                    log(f"  [{k}/{len(todo)}] FAILED: {failed[-1]}")
                    continue
                config, result, wall = output
                key = _row_key(fn, config, version)
                pending.pop(_canonical(config), None)
                bar.update(1)
                try:
                    if not isinstance(result, dict):
                        raise ValueError(f"the result is a {type(result).__name__}, not a dict")
                    result = storable(result)
                except (TypeError, ValueError) as exc:
                    kept = _keep_rejected(name, key, config, result)
                    rejected.append(f"{spec} at key {digest(key)}, config {config}: {exc}; its raw "
                                    f"result is kept in {kept}")
                    log(f"  [{k}/{len(todo)}] NOT STORED: {rejected[-1]}")
                    continue
                done[key] = {"config": config, "result": result, "wall_s": wall, "version": version,
                             "provenance": _row_provenance(code)}
                write()
                left = _time_left(list(pending.values()), list(done.values()), exp.prefix_key,
                                  workers)
                bar.set_postfix_str(f"about {_duration(left)} left" if pending else "")
                log(f"  [{k}/{len(todo)}] {wall:7.1f} s  {_short(config)}"
                    + (f"  (about {_duration(left)} left)" if pending and left else ""))
    elif not path.exists() or superseded != list(old.get("superseded", [])) or (
            drop_stale and stale):
        write()
    log(f"{name}: {len(done)} of {len(configs)} rows in {path} ({time.perf_counter() - start:.0f} s this run)")
    if rejected or failed:
        raise ValueError(
            (f"{len(failed)} row(s) of {name} failed: " + "; ".join(failed) + ". " if failed else "")
            + (f"{len(rejected)} row(s) of {name} could not be stored: " + "; ".join(rejected) + ". "
               if rejected else "")
            + f"The other rows are stored in {path}; a rerun computes the rest")
    return load_results(path)


def merge_results(path, other, log=print) -> int:
    """Add to the result file at ``path`` the rows of the result file ``other`` that it lacks
    (rows computed elsewhere: another machine, another checkout), under ``path``'s lock. Both
    files must hold the same experiment and point function; a row both hold must hold the same
    numbers (its config, result and version), else ValueError names it. A row both hold keeps
    ``path``'s copy, with the other's ``verified_by`` stamp added when it has none. Returns the
    number of rows added."""
    path = Path(path)
    lock = _lock(path)
    try:
        data, extra = load_results(path), load_results(other)
        _check_owner(path, extra, data.get("name"), data["point_fn"])
        for doc, where in ((data, path), (extra, other)):
            problems = _checksum_problems(doc)
            if problems:
                raise ValueError(f"{where}: {'; '.join(problems[:3])}")
        fn = resolve(data["point_fn"])
        index = {row_key(fn, r["config"], r.get("version", 1)): r for r in data["rows"]}
        added = 0
        for row in extra["rows"]:
            key = row_key(fn, row["config"], row.get("version", 1))
            mine = index.get(key)
            if mine is None:
                data["rows"].append(_with_checksum(row))
                index[key] = row
                added += 1
            elif row_checksum(mine) != row_checksum(row):
                raise ValueError(f"{path} and {other} hold different numbers for the row "
                                 f"{_short(row['config'])}")
            elif row.get("verified_by") and not mine.get("verified_by"):
                mine["verified_by"] = row["verified_by"]
        data["rows"] = [_with_checksum(r) for r in data["rows"]]
        data["provenance"] = {**data["provenance"], "rows_by_commit": _summary(data["rows"]),
                              "code_versions": _code_versions(data["rows"]),
                              "wall_s": round(sum(r["wall_s"] for r in data["rows"]), 1)}
        data["checksum"] = file_checksum(data)
        _write_atomically(path, data)
    finally:
        lock.close()
    log(f"{path}: {added} rows added from {other}")
    return added


def _check_owner(path: Path, data: dict, name: str, spec: str) -> None:
    """Refuse to write ``name``'s rows into a file another experiment made."""
    if data["point_fn"] != spec:
        raise ValueError(f"{path} was made by {data['point_fn']}, not {spec}; give this "
                         "experiment its own file (--out) or move that one away")
    owner = data.get("name")
    if owner is not None and owner != name:
        raise ValueError(f"{path} holds the rows of experiment {owner!r}, not {name!r}; give "
                         "this experiment its own file (--out)")


def _partition(fn, rows, version, current: set, spec: str) -> tuple[dict, list]:
    """``({key: row}, stale)``: the stored rows the current grid holds, and the others, each
    with the reason it no longer matches under ``"superseded"``."""
    import datetime as dt

    done, stale = {}, []
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for row in rows:
        row_version = row.get("version", 1)
        try:
            key = row_key(fn, row["config"], row_version)
            reason = None
        except ValueError as exc:
            key, reason = None, f"its config no longer fits {spec}: {exc}"
        if reason is None and row_version != version:
            reason = f"computed at version {row_version}; the experiment is at version {version}"
        elif reason is None and key not in current:
            reason = "not in the current grid (the grid or the point function's defaults changed)"
        elif reason is None and key in done:
            reason = "a second row with the same key"
        if reason is None:
            done[key] = row
        else:
            stale.append({**row, "superseded": {"reason": reason, "date": when}})
    return done, stale


def _reasons(stale: list) -> str:
    counts = {}
    for row in stale:
        reason = row["superseded"]["reason"]
        counts[reason] = counts.get(reason, 0) + 1
    return "; ".join(f"{n} {reason}" for reason, n in counts.items())


def _log_code(name: str, rows: list, log, code: dict) -> None:
    """Say how many stored rows ran the current ``code`` (:func:`_code_provenance`: labkit's
    sources and, for a user's experiment, its modules), other code, or unrecorded code."""
    now, mine = code["labkit_digest"], (code.get("user_code") or {}).get("digest")

    def same(made):
        return made.get("labkit_digest") == now and (
            mine is None or (made.get("user_code") or {}).get("digest") == mine)
    made = [r.get("provenance") or {} for r in rows]
    current = sum(1 for m in made if same(m))
    unknown = sum(1 for m in made if not m.get("labkit_digest"))
    other = len(rows) - current - unknown
    if other or unknown:
        log(f"{name}: of {len(rows)} stored rows, {current} ran the current code, {other} "
            f"other code, {unknown} code with no recorded digest; `labkit verify` recomputes "
            "rows to check them against the current code")


def row_checksum(row: dict) -> str:
    """A digest of a row's stored content (config, result, version): an edit changes it."""
    from .store import digest

    return digest({"config": row["config"], "result": row["result"],
                   "version": row.get("version", 1)})


def _with_checksum(row: dict) -> dict:
    return row if "checksum" in row else {**row, "checksum": row_checksum(row)}


def file_checksum(doc: dict) -> str:
    """A digest of a result file's rows (their checksums, in order) and superseded rows."""
    from .store import digest

    return digest({"rows": [row_checksum(r) for r in doc["rows"]],
                   "superseded": [row_checksum(r) for r in doc.get("superseded", [])]})


def _checksum_problems(doc: dict) -> list[str]:
    """The rows whose stored checksum differs from their content, and a file checksum that
    differs from the rows (a row added or removed by hand)."""
    out = [f"row {i} ({_short(r['config'])}) does not match its checksum"
           for i, r in enumerate(doc["rows"]) if "checksum" in r and r["checksum"] != row_checksum(r)]
    if not out and "checksum" in doc and doc["checksum"] != file_checksum(doc):
        out.append("the rows do not match the file's checksum (a row added or removed)")
    return out


def check_checksums(path) -> list[str]:
    """Problems with the checksums of the result file at ``path`` (empty: none), found without
    recomputing anything."""
    return _checksum_problems(load_results(path))


def _code_versions(rows) -> list[dict]:
    """The code versions the rows came from: ``{commit, labkit_digest, rows}`` each."""
    counts = {}
    for r in rows:
        made = r.get("provenance") or {}
        key = (made.get("commit"), made.get("labkit_digest"))
        counts[key] = counts.get(key, 0) + 1
    return [{"commit": c, "labkit_digest": d, "rows": n} for (c, d), n in counts.items()]


def _lock(path: Path):
    """An exclusive lock on ``path``'s sidecar ``.NAME.lock``: two processes computing the same
    result set would each rewrite the file with only their own rows."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path.with_name(f".{path.name}.lock"), "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ValueError(f"{path} is being computed by another process; wait for it to finish") from None
    return handle


_SHORT_KEYS = ("mixture", "dim", "n", "width", "weight_decay", "steps", "seed", "method", "arm",
               "ratio")


def _short(config: dict) -> str:
    """A row's config in a few words: the lab's usual axes, or (for another point function's
    config) its first six scalar settings."""
    keys = [k for k in _SHORT_KEYS if k in config]
    if len(keys) < 2:
        keys = [k for k, v in config.items() if isinstance(v, (int, float, str))][:6]
    return " ".join(f"{k}={config[k]}" for k in keys)


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
           stamp: bool = False, log=print) -> bool:
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
    first computation cached (a trained base model, say) stands in for the recomputation."""
    data = load_results(path)
    problems = _checksum_problems(data)
    if problems:
        for problem in problems:
            log(f"{path}: {problem}")
        return False
    spec, fn = data["point_fn"], resolve(data["point_fn"])
    _check_verify_args(rows, max_steps)
    name, current_keys, version, rules = _verify_rules(data, spec, fn)
    picked = _pick_rows(data, rows, seed, cheapest)
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
                                                 rtol, atol)
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


def _pick_rows(data, rows, seed, cheapest) -> list[int]:
    candidates = list(range(len(data["rows"])))
    if not candidates:
        raise ValueError("the file holds no rows")
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


def _recompute_and_compare(path, i, row, spec, fn, rules, max_steps, device, rtol, atol):
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
    with _fresh_cache():  # a recomputation must not read what the first computation cached
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


@contextlib.contextmanager
def _fresh_cache():
    """``LABKIT_CACHE`` pointed at an empty temporary folder for the duration."""
    old = os.environ.get("LABKIT_CACHE")
    with tempfile.TemporaryDirectory(prefix="labkit-verify-") as folder:
        os.environ["LABKIT_CACHE"] = folder
        try:
            yield folder
        finally:
            if old is None:
                os.environ.pop("LABKIT_CACHE", None)
            else:
                os.environ["LABKIT_CACHE"] = old


def results_table(name, *, missing: str = "compute", path=None, log=print):
    """The rows of the result set ``name`` (a registered name or ``"module:attribute"``, see
    :func:`experiment_for`) as a :class:`labkit.sweeps.Table` (each row: its config merged with
    its result and ``wall_s``), in the grid's order.

    Rows are read from ``path`` (default ``results/NAME.json``). Rows of the registered grid that
    the file lacks are computed here (``missing="compute"``; kept in the labkit cache, never
    written into the committed file) or left out (``"skip"``). ``log`` receives one line that
    says how many rows came from the file (with its commit and date) and how many were computed.
    """
    from .store import cache_dir
    from .sweeps import Table

    if missing not in ("compute", "skip"):
        raise ValueError(f"missing must be 'compute' or 'skip', got {missing!r}")
    label, exp = experiment_for(name)
    spec, configs = _configs(exp)
    fn, version = resolve(spec), exp.version
    if path is None and ":" in label:
        raise ValueError(f"path is needed for {label!r}, an experiment outside labkit's registry")
    path = Path(path) if path is not None else RESULTS_DIR / f"{label}.json"
    found, provenance = {}, None
    if path.exists():
        data = load_results(path)
        if data["point_fn"] != spec:
            raise ValueError(f"{path} was made by {data['point_fn']}, but {name!r} now uses {spec}")
        provenance = data["provenance"]
        found = _index(fn, data["rows"], version)
    rows, computed, skipped = [], 0, 0
    folder = None
    for config in configs:
        key = _row_key(fn, config, version)
        row = found.get(key)
        if row is None and missing == "compute":
            from .store import digest

            if folder is None:
                folder = cache_dir("results", label.replace(":", "_"))
            # a row computed here is keyed on the point function's source too: an edit of the
            # function recomputes it (committed rows are keyed on the experiment's version)
            entry = folder / (digest({"key": key, "source": _source(fn)}) + ".json")
            if entry.exists():
                row = json.loads(entry.read_text())
            else:
                _, result, wall = _one_row(spec, config, "cpu", 1)
                row = {"config": config, "result": storable(result), "wall_s": wall}
                _write_atomically(entry, row)
            computed += 1
        if row is None:
            skipped += 1
            continue
        rows.append({**row["config"], **row["result"], "wall_s": row["wall_s"]})
    source = (f"{len(rows) - computed} of {len(configs)} rows read from {path.name}"
              + (f" (commit {str(provenance.get('commit'))[:7]}, {provenance.get('date')}, "
                 f"{provenance.get('wall_s', 0) / 60:.0f} min of computing)" if provenance else ""))
    message = (f"{name}: {source}; {computed} computed here"
               + (f"; {skipped} missing, skipped" if skipped else ""))
    log(textwrap.fill(message, 88, subsequent_indent="  "))  # a notebook's output column
    return Table(rows)
