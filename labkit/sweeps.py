"""Cached, resumable, parallel experiment grids (introduced in notebook 02).

A sweep maps a grid of configurations to a table of results:

    table = run_sweep(point_fn, {"width": [16, 64], "n": [100, 1000]}, name="width_vs_n")

- The grid is a mapping (or a dataclass) of axis name -> non-empty list of JSON scalars; the
  sweep runs every combination (the Cartesian product) through ``point_fn(**config) -> dict``.
- Each point is cached on disk as ``<cache>/<name>/<key>.json`` where ``key`` hashes the
  configuration (canonical JSON) and the sweep's ``version``. Entries are written atomically
  (tmp file + ``os.replace``) and carry a schema tag and a SHA-256 checksum, so a truncated or
  edited entry is detected, reported and recomputed. An interrupted sweep resumes where it
  stopped: finished points are read back, never recomputed.
- Points run in parallel processes through joblib (``loky`` by default), each with one torch
  thread, behind a tqdm progress bar. For a cluster, hand the same grid to an existing engine
  through joblib's backend mechanism, e.g. Dask::

      from dask.distributed import Client; client = Client("scheduler:8786")
      run_sweep(point_fn, grid, name="fig3a", backend="dask", n_jobs=-1)

  (or ``backend="ray"`` after ``ray.util.joblib.register_ray()``). The cache folder must then be
  on a file system every worker sees. labkit tests the local backends only.

The command line ``labkit-sweep`` (:func:`main`) runs the paper-scale grids of Fig. 3 (d = 32,
n up to 100K, networks up to tens of millions of parameters, ``--device cuda``) into the same
cache that notebook 02 reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import itertools
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from . import _moved

__all__ = ["expand_grid", "point_key", "run_sweep", "Table"]

SCHEMA = "labkit.sweep/1"
_SCALARS = (bool, int, float, str, type(None))


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _fn_name(fn) -> str:
    return getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", repr(fn))


def expand_grid(grid, point_fn: Callable | None = None) -> list[dict]:
    """Validate ``grid`` and return the list of its configurations (Cartesian product).

    ``grid``: a mapping or dataclass instance, axis name -> non-empty list/tuple of JSON scalars
    (bool, int, finite float, str, None); a lone scalar counts as a one-value axis. With
    ``point_fn`` given, every axis must be a parameter of it (unless it takes ``**kwargs``) and
    every parameter without a default must be an axis. Order: the last axis varies fastest.
    """
    if dataclasses.is_dataclass(grid) and not isinstance(grid, type):
        grid = {f.name: getattr(grid, f.name) for f in dataclasses.fields(grid)}
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a mapping or a dataclass of axis -> list of values, got {type(grid).__name__}")
    if not grid:
        raise ValueError("grid must have at least one axis")
    axes = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"grid axis names must be identifiers, got {name!r}")
        if isinstance(values, _SCALARS):
            values = [values]
        if not isinstance(values, (list, tuple)):
            raise TypeError(f"grid axis {name!r} must be a list of values, got {type(values).__name__}")
        if len(values) == 0:
            raise ValueError(f"grid axis {name!r} is empty: give at least one value")
        for v in values:
            if not isinstance(v, _SCALARS):
                raise TypeError(f"grid axis {name!r} holds {v!r} ({type(v).__name__}); values must be "
                                "hashable JSON scalars (bool, int, float, str, None)")
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"grid axis {name!r} holds a non-finite value {v!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"grid axis {name!r} repeats a value: {list(values)}")
        axes[name] = list(values)
    if point_fn is not None:
        params = inspect.signature(point_fn).parameters
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        unknown = [a for a in axes if a not in params]
        if unknown and not takes_kwargs:
            raise ValueError(f"grid axes {unknown} are not parameters of {_fn_name(point_fn)}; "
                             f"known: {[p for p in params if params[p].kind is not inspect.Parameter.VAR_KEYWORD]}")
        missing = [p.name for p in params.values() if p.default is inspect.Parameter.empty
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in axes]
        if missing:
            raise ValueError(f"grid lacks axes {missing}, required by {_fn_name(point_fn)}")
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*axes.values())]


def point_key(config: Mapping, version: int | str = 0) -> str:
    """Stable cache key of one configuration: 20 hex digits of SHA-256 of its canonical JSON."""
    return hashlib.sha256(_canonical({"config": dict(config), "version": version}).encode()).hexdigest()[:20]


def _checksum(config, result) -> str:
    return hashlib.sha256(_canonical({"config": config, "result": result}).encode()).hexdigest()


def _read_entry(path: Path, config: Mapping):
    """The cached result at ``path``, or None when it is missing, partial, corrupt or stale."""
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
        ok = (entry.get("schema") == SCHEMA and entry.get("config") == dict(config)
              and entry.get("checksum") == _checksum(entry["config"], entry["result"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        warnings.warn(f"sweep cache entry {path} is corrupt or partial; recomputing it", stacklevel=3)
        return None
    return entry["result"]


def _write_entry(path: Path, config: Mapping, result: Mapping) -> None:
    entry = {"schema": SCHEMA, "config": dict(config), "result": result,
             "checksum": _checksum(dict(config), result)}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(_canonical(entry))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _run_point(point_fn, config: dict, path: str | None, threads: int):
    """Worker body: one torch thread, compute, validate, write the cache entry atomically."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = point_fn(**config)
    finally:
        torch.set_num_threads(before)
    if not isinstance(result, Mapping):
        raise TypeError(f"{_fn_name(point_fn)} must return a dict of results, got {type(result).__name__}")
    result = json.loads(_canonical(dict(result)))  # fails loudly on non-JSON values (or NaN)
    if path is not None:
        _write_entry(Path(path), config, result)
    return config, result


def run_sweep(point_fn: Callable, grid, *, name: str, cache: str | os.PathLike | None = None,
              version: int | str = 0, n_jobs: int = 1, backend: str | None = "loky",
              threads_per_point: int = 1, progress: bool = True, missing: str = "compute") -> Table:
    """Run ``point_fn(**config)`` over every configuration of ``grid``; return a :class:`Table`.

    ``point_fn`` must be a module-level function (so worker processes can import it) returning
    a dict of JSON values (numbers, strings, lists). ``name`` names the sweep's cache folder
    ``<cache>/<name>`` (``cache`` defaults to ``labkit.plotting.cache_dir("sweeps")``; pass
    ``cache=False`` to disable caching); bump ``version`` when ``point_fn`` changes meaning.
    ``n_jobs`` processes run the missing points (joblib; ``backend`` ``"loky"``, ``"threading"``,
    ``"dask"``, ``"ray"``, or None for the active ``joblib.parallel_config``), each limited to
    ``threads_per_point`` torch threads. Rows come back in grid order, each the configuration
    merged with its result. ``missing="skip"`` only reads the cache: points not cached yet are
    left out of the table (to show results computed elsewhere, e.g. by ``labkit-sweep``).
    """
    import joblib
    from tqdm.auto import tqdm

    if not isinstance(name, str) or not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"name must be a plain folder name, got {name!r}")
    if not callable(point_fn):
        raise TypeError(f"point_fn must be callable, got {type(point_fn).__name__}")
    if n_jobs == 0 or isinstance(n_jobs, bool) or not isinstance(n_jobs, int):
        raise ValueError(f"n_jobs must be a non-zero integer (-1: all cores), got {n_jobs!r}")
    if isinstance(threads_per_point, bool) or not isinstance(threads_per_point, int) or threads_per_point < 1:
        raise ValueError(f"threads_per_point must be a positive integer, got {threads_per_point!r}")
    if missing not in ("compute", "skip"):
        raise ValueError(f"missing must be 'compute' or 'skip', got {missing!r}")
    configs = expand_grid(grid, point_fn)

    folder = None
    if cache is not False:
        if cache is None:
            from .plotting import cache_dir

            folder = cache_dir("sweeps", name)
        else:
            folder = Path(cache) / name
            folder.mkdir(parents=True, exist_ok=True)
    paths = [None if folder is None else folder / f"{point_key(c, version)}.json" for c in configs]
    results = [None if p is None else _read_entry(p, c) for p, c in zip(paths, configs)]
    todo = [i for i, r in enumerate(results) if r is None]

    if todo and missing == "compute":
        jobs = (joblib.delayed(_run_point)(point_fn, configs[i], None if paths[i] is None else str(paths[i]),
                                           threads_per_point) for i in todo)
        by_key = {_canonical(configs[i]): i for i in todo}
        bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc=name, disable=not progress)
        with bar:
            if n_jobs == 1 and backend in ("loky", None):
                outputs = (job[0](*job[1], **job[2]) for job in jobs)  # in-process: easy to debug
            else:
                outputs = joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")(jobs)
            for config, result in outputs:
                results[by_key[_canonical(config)]] = result
                bar.update(1)
    return Table([{**c, **r} for c, r in zip(configs, results) if r is not None])


class Table:
    """Rows of a sweep (dicts: configuration merged with results), with a few lookups.

    ``table.column("ratio")`` -> numpy array; ``table.where(n=100)`` -> sub-table;
    ``table.pivot("width", "n", "ratio")`` -> (row values, column values, 2-D array, NaN where
    a combination is missing). No pandas needed; ``table.rows`` is the plain list.
    """

    def __init__(self, rows: Sequence[Mapping]):
        self.rows = [dict(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]

    def __repr__(self) -> str:
        cols = list(self.rows[0]) if self.rows else []
        return f"Table({len(self)} rows, columns {cols})"

    def column(self, name: str) -> np.ndarray:
        missing = [i for i, r in enumerate(self.rows) if name not in r]
        if missing:
            raise KeyError(f"column {name!r} missing from rows {missing[:5]}")
        return np.asarray([r[name] for r in self.rows])

    def unique(self, name: str) -> list:
        return sorted({r[name] for r in self.rows}, key=lambda v: (v is None, v))

    def where(self, **conditions) -> Table:
        return Table([r for r in self.rows if all(r.get(k) == v for k, v in conditions.items())])

    def pivot(self, row: str, col: str, value: str):
        rows, cols = self.unique(row), self.unique(col)
        out = np.full((len(rows), len(cols)), np.nan)
        for r in self.rows:
            out[rows.index(r[row]), cols.index(r[col])] = r[value]
        return rows, cols, out


# The paper's grids and the labkit-sweep command moved to labkit.experiments and labkit.cli.
__getattr__ = _moved(__name__, {"PAPER_GRIDS": "labkit.experiments.PAPER_GRIDS",
                                "paper_grid": "labkit.experiments.paper_grid",
                                "main": "labkit.cli.sweep_main"})
