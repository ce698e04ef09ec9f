"""Result sets that travel with the repository: ``results/<NAME>.json``, computed, resumed,
read and verified (introduced in notebook 02; the commands are in :mod:`labkit.cli`).

A result set is a small JSON file::

    {"name": ..., "purpose": ..., "provenance": {"command", "commit", "labkit", "torch",
     "device", "threads", "date", "wall_s"}, "point_fn": "module:function",
     "rows": [{"config": {...every argument of point_fn...}, "result": {...}, "wall_s": s}, ...]}

- :func:`run_results` computes a registered experiment (:data:`labkit.experiments.EXPERIMENTS`)
  row by row, rewriting the file atomically after every finished row: an interrupted run
  loses at most the rows in flight, and a rerun computes only the rows the file lacks.
- :func:`results_table` is what notebooks call: the rows of the file as a
  :class:`labkit.sweeps.Table` (config merged with result), computing the missing ones or not.
- :func:`verify` recomputes random rows and compares them. Rows are seeded and deterministic
  at one torch thread, so agreement is expected to ``rtol`` = 1e-4 and ``atol`` = 1e-6 on the
  same platform; a training curve can be recomputed up to a smaller step count (its prefix is
  exact, see :mod:`labkit.experiments`).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import json
import math
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

__all__ = ["RESULTS_DIR", "resolve", "full_config", "load_results", "run_results", "results_table", "verify"]

def _results_dir() -> Path:
    """``$LABKIT_RESULTS``, else ``<checkout>/results`` in a source checkout, else ``./results``."""
    from .plotting import repo_root

    if os.environ.get("LABKIT_RESULTS"):
        return Path(os.environ["LABKIT_RESULTS"])
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "results"


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


def _configs(name: str) -> tuple[str, list[dict]]:
    from .experiments import experiment
    from .sweeps import expand_grid

    exp = experiment(name)
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


def _row_key(fn, config: dict, version) -> str | None:
    """A row's key (:func:`labkit.store.row_key`), or None when its config no longer fits the
    point function (a parameter it names was removed)."""
    from .store import row_key

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


def _row_provenance(fn, device: str) -> dict:
    import torch

    from . import __version__

    return {"commit": _git_commit(), "labkit": __version__, "torch": torch.__version__, "device": device,
            "source": _source(fn), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


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


def run_results(name: str, out=None, *, device: str = "cpu", n_jobs: int = 1, limit: int | None = None,
                scheduler: str | None = None, log=print) -> dict:
    """Compute the registered result set ``name`` into ``out`` (default ``results/NAME.json``),
    computing only rows the file lacks and rewriting it atomically after every finished row.
    ``n_jobs`` worker processes (joblib, one torch thread each); ``scheduler="tcp://HOST:PORT"``
    runs the rows on a Dask cluster instead. ``limit`` computes at most that many new rows."""

    from .experiments import experiment

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer, got {n_jobs!r}")
    from . import _checks

    _checks.device(device)
    exp = experiment(name)
    spec, configs = _configs(name)
    path = Path(out) if out is not None else RESULTS_DIR / f"{name}.json"
    lock = _lock(path)  # held until the function returns (closed in the finally below)
    try:
        return _run_locked(name, exp, spec, configs, path, device, n_jobs, limit, scheduler, log)
    finally:
        lock.close()


def _run_locked(name, exp, spec, configs, path, device, n_jobs, limit, scheduler, log) -> dict:
    import joblib
    import torch

    from . import __version__

    fn = resolve(spec)
    version = exp.version
    keyed = [(_row_key(fn, c, version), c) for c in configs]
    done = {}
    if path.exists():
        old = load_results(path)
        if old["point_fn"] != spec:
            raise ValueError(f"{path} was made by {old['point_fn']}, not {spec}; move it away to recompute")
        found = _index(fn, old["rows"], version)
        done = {k: found[k] for k, _ in keyed if k in found}
    todo = [c for k, c in keyed if k not in done]
    if limit is not None:
        todo = todo[:limit]
    log(f"{name}: {len(configs)} rows, {len(done)} in {path}, computing {len(todo)}")
    provenance = {"command": "labkit " + " ".join(sys.argv[1:]) if sys.argv and "labkit" in sys.argv[0]
                  else f"labkit results run {name}",
                  "commit": _git_commit(), "labkit": __version__, "torch": torch.__version__,
                  "device": device, "threads": 1,
                  "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    start = time.perf_counter()

    def write():
        order = {k: i for i, (k, _) in enumerate(keyed)}
        rows = sorted(done.values(), key=lambda r: order[_row_key(fn, r["config"], version)])
        prov = {**provenance, "version": version, "rows_by_commit": _summary(rows),
                "wall_s": round(sum(r["wall_s"] for r in rows), 1)}
        _write_atomically(path, {"name": name, "purpose": exp.purpose, "provenance": prov,
                                 "point_fn": spec, "rows": rows})

    if todo:
        jobs = (joblib.delayed(_one_row)(spec, c, device, 1) for c in todo)
        if scheduler is not None:
            from dask.distributed import Client

            client = Client(scheduler)
            ctx = joblib.parallel_config(backend="dask")
        else:
            client, ctx = None, joblib.parallel_config(backend="loky")
        try:
            with ctx:
                outputs = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs) \
                    if (n_jobs != 1 or client is not None) else (j[0](*j[1], **j[2]) for j in jobs)
                for k, (config, result, wall) in enumerate(outputs, 1):
                    done[_row_key(fn, config, version)] = {
                        "config": config, "result": result, "wall_s": wall, "version": version,
                        "provenance": _row_provenance(fn, device)}
                    write()
                    log(f"  [{k}/{len(todo)}] {wall:7.1f} s  {_short(config)}")
        finally:
            if client is not None:
                client.close()
    elif not path.exists():
        write()
    log(f"{name}: {len(done)} of {len(configs)} rows in {path} ({time.perf_counter() - start:.0f} s this run)")
    return load_results(path)


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


def _short(config: dict) -> str:
    keys = [k for k in ("mixture", "dim", "n", "width", "weight_decay", "steps", "seed", "method") if k in config]
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


def verify(path, rows: int = 1, *, seed: int = 0, rtol: float = 1e-4, atol: float = 1e-6,
           max_steps: int | None = None, cheapest: bool = False, device: str = "cpu", log=print) -> bool:
    """Recompute ``rows`` rows of the result file at ``path`` and compare them with what it holds.

    Rows are drawn at random (``seed``), or the cheapest by recorded ``wall_s`` with ``cheapest``.
    ``max_steps`` recomputes a training curve only up to that step (a curve's prefix is exact:
    see :mod:`labkit.experiments`) and compares the evaluations it covers. Raises ValueError for
    a missing file, a point function that no longer exists, or a row whose config is not in the
    registered experiment's current grid; returns True when every compared value agrees."""
    data = load_results(path)
    spec = data["point_fn"]
    fn = resolve(spec)
    rows = int(rows)
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    from .experiments import EXPERIMENTS

    name = data.get("name")
    if name in EXPERIMENTS:
        if EXPERIMENTS[name].point_fn != spec:
            raise ValueError(f"{path}: made by {spec}, but experiment {name!r} now uses {EXPERIMENTS[name].point_fn}")
        _, current = _configs(name)
        version = EXPERIMENTS[name].version
        current_keys = {_row_key(fn, c, version) for c in current}
    else:
        current_keys, version = None, None
    candidates = list(range(len(data["rows"])))
    if not candidates:
        raise ValueError(f"{path} holds no rows")
    if cheapest:
        picked = sorted(candidates, key=lambda i: data["rows"][i]["wall_s"])[:rows]
    else:
        picked = random.Random(seed).sample(candidates, min(rows, len(candidates)))
    compare = EXPERIMENTS[name].compare if name in EXPERIMENTS else None
    ok_all = True
    for i in picked:
        row = data["rows"][i]
        config = dict(row["config"])
        if current_keys is not None and (row.get("version", 1) != version
                                         or _row_key(fn, config, version) not in current_keys):
            raise ValueError(f"{path}: row {i}'s config is not in experiment {name!r}'s current grid "
                             f"(the grid or {spec}'s defaults changed): {_short(config)}; rerun "
                             f"`labkit results run {name}`")
        try:
            config = full_config(fn, config)
        except ValueError as exc:
            raise ValueError(f"{path}: row {i}: {exc} (the point function changed)") from None
        made = row.get("provenance") or {}
        if made:
            changed = made.get("source") != _source(fn)
            log(f"row {i} was computed by {spec} at commit {str(made.get('commit'))[:10]} "
                f"({made.get('date')}); its source has {'CHANGED' if changed else 'not changed'} since")
        else:
            log(f"row {i} does not record the commit that computed it (the file block names "
                f"{str(data['provenance'].get('commit'))[:10]})")
        expected = dict(row["result"])
        exp = EXPERIMENTS.get(name)
        prefix_key = exp.prefix_key if exp is not None else "steps"
        truncated = (max_steps is not None and prefix_key is not None and prefix_key in config
                     and config[prefix_key] > max_steps)
        if truncated:
            config[prefix_key] = int(max_steps)
            config.update(exp.prefix_args if exp is not None else {})
        _, got, wall = _one_row(spec, config, device, 1)
        steps_key = exp.curve_steps if exp is not None else "steps"
        keys = compare or [k for k in expected if k != "wall_s"]
        bad = []
        for key in keys:
            if key not in expected:
                continue
            want, have = expected[key], got.get(key)
            if truncated:
                if not isinstance(want, list) or key == steps_key:
                    continue  # only the curves cover a shortened run
                have_steps, want_steps = got[steps_key], expected[steps_key]
                common = [s for s in have_steps if s in want_steps]
                want = [want[want_steps.index(s)] for s in common]
                have = [have[have_steps.index(s)] for s in common]
            if not _close(have, want, rtol, atol):
                bad.append(key)
        status = "ok" if not bad else "MISMATCH in " + ", ".join(bad)
        log(f"row {i} ({_short(row['config'])}{', up to step ' + str(max_steps) if truncated else ''}): "
            f"{status}  [{wall:.1f} s]")
        ok_all &= not bad
    return ok_all


def results_table(name: str, *, missing: str = "compute", path=None, log=print):
    """The rows of the result set ``name`` as a :class:`labkit.sweeps.Table` (each row: its config
    merged with its result and ``wall_s``), in the registered grid's order.

    Rows are read from ``path`` (default ``results/NAME.json``). Rows of the registered grid that
    the file lacks are computed here (``missing="compute"``; kept in the labkit cache, never
    written into the committed file) or left out (``"skip"``). ``log`` receives one line that
    says how many rows came from the file (with its commit and date) and how many were computed.
    """
    from .plotting import cache_dir
    from .sweeps import Table

    if missing not in ("compute", "skip"):
        raise ValueError(f"missing must be 'compute' or 'skip', got {missing!r}")
    from .experiments import experiment

    spec, configs = _configs(name)
    fn, version = resolve(spec), experiment(name).version
    path = Path(path) if path is not None else RESULTS_DIR / f"{name}.json"
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
                folder = cache_dir("results", name)
            # a row computed here is keyed on the point function's source too: an edit of the
            # function recomputes it (committed rows are keyed on the experiment's version)
            entry = folder / (digest({"key": key, "source": _source(fn)}) + ".json")
            if entry.exists():
                row = json.loads(entry.read_text())
            else:
                _, result, wall = _one_row(spec, config, "cpu", 1)
                row = {"config": config, "result": result, "wall_s": wall}
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
