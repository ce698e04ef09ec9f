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

The run and its files are in this module; the other parts of a result set have modules of
their own, whose public names this one re-exports: :mod:`labkit.result_file` (reading,
checksums, the writer's lock), :mod:`labkit.result_rows` (point functions, experiments, full
configs, one row computed), :mod:`labkit.provenance` (commits, source digests, the provenance
checks) and :mod:`labkit.verification` (:func:`verify`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import textwrap
import time
from pathlib import Path

from .provenance import (_code_provenance, _code_versions, _git_commit, _module_provenance,
                         _row_provenance, _source, _summary, labkit_digest,
                         provenance_problems, set_aside_late_commits, user_digest)
from .result_file import (_checksum_problems, _lock, _short, _with_checksum, _write_atomically,
                          check_checksums, file_checksum, load_results, row_checksum)
from .result_rows import (_canonical, _configs, _one_row, _row_key, _rules, experiment_for,
                          full_config, resolve, storable)
from .store import row_key
from .verification import _close, verify  # noqa: F401  (_close: read by labkit.claims)

__all__ = ["RESULTS_DIR", "resolve", "experiment_for", "full_config", "storable", "load_results",
           "run_results", "results_table", "verify", "provenance_problems", "check_checksums",
           "set_aside_late_commits", "labkit_digest", "user_digest", "row_checksum",
           "file_checksum", "merge_results"]


def _results_dir() -> Path:
    from .store import results_dir

    return results_dir()


RESULTS_DIR = _results_dir()


def _keep_rejected(label: str, key: str, config: dict, result) -> Path:
    """Save a result that cannot be stored (raw, with torch.save) so its work is not lost."""
    from .store import cache_dir, digest, save_torch

    folder = cache_dir("results", "rejected", label.replace(":", "_").replace("/", "_"))
    path = folder / f"{digest(key)}.pt"
    save_torch({"config": config, "key": key, "result": result}, path)
    return path


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
    """:func:`run_results` under the file's lock: resume from the stored rows, compute the
    missing ones (at most ``limit``), rewrite the file after each, report what failed."""
    fn = resolve(spec)
    keyed = [(_row_key(fn, c, exp.version), c) for c in configs]
    module = _module_provenance(name, exp)
    code = _code_provenance(fn, device, module["module"])
    old, done, superseded, stale = {}, {}, [], []
    if path.exists():
        old, done, superseded, stale = _stored_rows(path, name, spec, fn, exp.version, keyed,
                                                    drop_stale, log)
        _log_code(name, list(done.values()), log, code)
    missing = [c for k, c in keyed if k not in done]
    todo = missing if limit is None else missing[:limit]
    workers = (os.cpu_count() or 1) if n_jobs < 0 else n_jobs
    left = _time_left(todo or missing, list(done.values()), exp.prefix_key, workers)
    log(f"{name}: {len(configs)} rows, {len(done)} in {path}, computing {len(todo)}"
        + (f" of {len(missing)} missing" if len(todo) < len(missing) else "")
        + (f" (about {_duration(left)}, from the recorded times of {len(done)} rows)"
           if left else ""))
    target = _RunFile(name, exp, spec, fn, keyed, path, _file_provenance(name, device, module),
                      done, superseded)
    start = time.perf_counter()
    rejected, failed = [], []
    if todo:
        rejected, failed = _compute(target, todo, code, device, n_jobs, scheduler, workers,
                                    progress, log)
    elif not path.exists() or superseded != list(old.get("superseded", [])) or (
            drop_stale and stale):
        target.write()
    log(f"{name}: {len(done)} of {len(configs)} rows in {path} ({time.perf_counter() - start:.0f} s this run)")
    if rejected or failed:
        raise ValueError(
            (f"{len(failed)} row(s) of {name} failed: " + "; ".join(failed) + ". " if failed else "")
            + (f"{len(rejected)} row(s) of {name} could not be stored: " + "; ".join(rejected) + ". "
               if rejected else "")
            + f"The other rows are stored in {path}; a rerun computes the rest")
    return load_results(path)


def _stored_rows(path: Path, name, spec, fn, version, keyed, drop_stale, log):
    """``(file, done, superseded, stale)`` of the file a run resumes: the rows it keeps (by
    key), its superseded section with the ``stale`` rows added (unless ``drop_stale``), and
    the stale rows. A file another experiment made, or one edited by hand, is refused."""
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
    return old, done, superseded, stale


def _file_provenance(name, device: str, module: dict) -> dict:
    """The file block's provenance of a run: its command, commit, versions, device, module."""
    import torch

    from . import __version__

    return {"command": "labkit " + " ".join(sys.argv[1:]) if sys.argv and "labkit" in sys.argv[0]
            else f"labkit results run {name}",
            "commit": _git_commit(), "labkit": __version__, "torch": torch.__version__,
            "device": device, "threads": 1, **module,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


class _RunFile:
    """The result file a run writes: its rows by key (``done``, in the grid's order when
    written), superseded rows and provenance, rewritten whole (atomically) by :meth:`write`."""

    def __init__(self, name, exp, spec, fn, keyed, path, provenance, done, superseded):
        self.name, self.exp, self.spec, self.fn, self.path = name, exp, spec, fn, path
        self.order = {k: i for i, (k, _) in enumerate(keyed)}
        self.provenance, self.done, self.superseded = provenance, done, superseded

    def key(self, config: dict) -> str | None:
        return _row_key(self.fn, config, self.exp.version)

    def write(self) -> None:
        rows = [_with_checksum(r) for r in
                sorted(self.done.values(), key=lambda r: self.order[self.key(r["config"])])]
        prov = {**self.provenance, "version": self.exp.version,
                "rows_by_commit": _summary(rows), "code_versions": _code_versions(rows),
                "wall_s": round(sum(r["wall_s"] for r in rows), 1)}
        doc = {"name": self.name, "purpose": self.exp.purpose, "provenance": prov,
               "point_fn": self.spec, "experiment": _rules(self.exp), "rows": rows}
        if self.superseded:
            doc["superseded"] = self.superseded
        doc["checksum"] = file_checksum(doc)
        _write_atomically(self.path, doc)


def _compute(target: _RunFile, todo, code, device, n_jobs, scheduler, workers, progress, log):
    """Compute the ``todo`` configs (:mod:`labkit.dispatch`), storing each row as it arrives;
    ``(rejected, failed)``: what could not be stored and what failed, one message a row."""
    from tqdm.auto import tqdm

    from .dispatch import Failure, dispatch

    outputs = dispatch(_one_row, [(target.spec, c, device, 1) for c in todo], n_jobs=n_jobs,
                       backend="dask" if scheduler is not None else "loky", scheduler=scheduler,
                       errors="keep")
    pending = {_canonical(c): c for c in todo}
    rejected, failed = [], []
    with tqdm(total=len(todo), desc=target.name, unit="row", disable=not progress,
              leave=False) as bar:
        for k, output in enumerate(outputs, 1):
            if isinstance(output, Failure):  # the other rows go on; a rerun retries this one
                config = output.arguments[1]
                pending.pop(_canonical(config), None)
                bar.update(1)
                failed.append(f"{_short(config)}: {output.error}")
                log(f"  [{k}/{len(todo)}] FAILED: {failed[-1]}")
                continue
            config, result, wall = output
            pending.pop(_canonical(config), None)
            bar.update(1)
            problem = _store(target, config, result, wall, code)
            if problem is not None:
                rejected.append(problem)
                log(f"  [{k}/{len(todo)}] NOT STORED: {problem}")
                continue
            left = _time_left(list(pending.values()), list(target.done.values()),
                              target.exp.prefix_key, workers)
            bar.set_postfix_str(f"about {_duration(left)} left" if pending else "")
            log(f"  [{k}/{len(todo)}] {wall:7.1f} s  {_short(config)}"
                + (f"  (about {_duration(left)} left)" if pending and left else ""))
    return rejected, failed


def _store(target: _RunFile, config: dict, result, wall: float, code: dict) -> str | None:
    """Store one computed row and rewrite the file; or, for a result that cannot be stored
    (:func:`storable`), keep it under the labkit cache and return the message saying so."""
    from .store import digest

    key = target.key(config)
    try:
        if not isinstance(result, dict):
            raise ValueError(f"the result is a {type(result).__name__}, not a dict")
        result = storable(result)
    except (TypeError, ValueError) as exc:
        kept = _keep_rejected(target.name, key, config, result)
        return (f"{target.spec} at key {digest(key)}, config {config}: {exc}; its raw "
                f"result is kept in {kept}")
    target.done[key] = {"config": config, "result": result, "wall_s": wall,
                        "version": target.exp.version, "provenance": _row_provenance(code)}
    target.write()
    return None


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
