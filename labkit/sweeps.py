"""Cached, resumable, parallel experiment grids (introduced in notebook 02).

A sweep maps a grid of configurations to a table of results:

    table = run_sweep(point_fn, {"width": [16, 64], "n": [100, 1000]}, name="width_vs_n")

- The grid is a mapping (or a dataclass) of axis name -> non-empty list of JSON scalars; the
  sweep runs every combination (the Cartesian product) through ``point_fn(**config) -> dict``.
- Each point is cached on disk as ``<cache>/<name>/<key>.json`` where ``key`` hashes the
  configuration (canonical JSON), the sweep's ``version`` and the point function's identity
  (:func:`function_identity`: module, qualified name, a hash of its source and, for a
  ``functools.partial``, its bound arguments, as ``joblib.Memory`` does), so another function
  or an edited one never reads this one's results. Entries are written atomically
  (:func:`labkit.store.write_text`: tmp file, fsync, rename) and carry a schema tag and a
  SHA-256 checksum, so a truncated or edited entry is detected, reported and recomputed. An
  interrupted sweep resumes where it stopped: finished points are read back, never recomputed.
- Points run in parallel processes through :func:`labkit.dispatch.dispatch` (joblib, ``loky``
  by default, or Dask), each with one torch thread, behind a tqdm progress bar. For a cluster,
  a Dask scheduler (``pip install 'labkit-memgen[cluster]'``)::

      run_sweep(point_fn, grid, name="fig3a", backend="dask", scheduler="tcp://HOST:8786")

  (or ``backend="ray"`` after ``ray.util.joblib.register_ray()``, whose workers need to see the
  cache folder). The Dask path is tested against a ``LocalCluster`` of worker processes,
  including a worker killed mid-sweep.

The command line ``labkit-sweep`` (:func:`labkit.cli.sweep_main`) runs the paper-scale grids of Fig. 3 (d = 32,
n up to 100K, networks up to tens of millions of parameters, ``--device cuda``) into the same
cache that notebook 02 reads.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import itertools
import json
import marshal
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from . import _moved
from ._table import Table
from .store import storable, write_text

__all__ = ["expand_grid", "function_identity", "point_key", "run_sweep", "Table"]

SCHEMA = "labkit.sweep/2"
# Bound arguments left out of cache keys unless told otherwise: where a point runs, not what it is.
DEFAULT_IGNORE = ("device",)
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


def _source_digest(fn) -> str:
    """SHA-256 of a function's source text, or of its compiled code where no source exists
    (a function typed at ``python -c``); stable across processes and sessions."""
    try:
        text = inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = marshal.dumps(code) if code is not None else repr(fn).encode()
    return hashlib.sha256(text).hexdigest()


def _check_ignore(ignore) -> tuple[str, ...]:
    if isinstance(ignore, str) or not all(isinstance(name, str) for name in ignore):
        raise TypeError(f"ignore must be a sequence of argument names, got {ignore!r}")
    return tuple(ignore)


def function_identity(point_fn: Callable, ignore: Sequence[str] = DEFAULT_IGNORE) -> dict:
    """What names ``point_fn`` in a cache key: ``{"module", "qualname", "source", "bound"}``.

    ``source`` is a SHA-256 of the function's source (an edit, even of a comment, makes a new
    function; bump nothing). For a ``functools.partial``, a bound method or a callable object,
    ``bound`` is a ``joblib.hash`` of the bound arguments (or the object's state), leaving out
    the keyword arguments named in ``ignore``: those that do not change the result, by default
    the ``device`` a point runs on (so points computed on a GPU are found from a CPU session).
    Grid axes are not bound arguments: they are always in the key. Functions the point function calls are not hashed: bump the
    sweep's ``version`` when they change meaning.
    """
    import joblib

    ignore = _check_ignore(ignore)
    if not callable(point_fn):
        raise TypeError(f"point_fn must be callable, got {type(point_fn).__name__}")
    fn, args, kwargs, state = point_fn, (), {}, None
    while isinstance(fn, functools.partial):
        args, kwargs, fn = fn.args + args, {**fn.keywords, **kwargs}, fn.func
    if inspect.ismethod(fn):
        fn, state = fn.__func__, fn.__self__
    elif not (inspect.isfunction(fn) or inspect.isbuiltin(fn)):
        fn, state = type(fn), fn  # a callable object: its class and its attributes
    identity = {"module": getattr(fn, "__module__", None), "qualname": getattr(fn, "__qualname__", repr(fn)),
                "source": _source_digest(fn)}
    kwargs = {k: v for k, v in sorted(kwargs.items()) if k not in ignore}
    if args or kwargs or state is not None:
        try:
            identity["bound"] = joblib.hash((args, kwargs, state))
        except Exception as exc:  # pickling errors have many types
            raise TypeError(f"the arguments bound to {_fn_name(point_fn)} cannot be hashed for the cache key "
                            f"({exc}); bind JSON values or picklable objects") from exc
    return identity


def point_key(config: Mapping, version: int | str = 0, point_fn: Callable | None = None,
              ignore: Sequence[str] = DEFAULT_IGNORE) -> str:
    """Stable cache key of one configuration: 20 hex digits of SHA-256 of its canonical JSON,
    the ``version`` and, with ``point_fn`` given, its :func:`function_identity` (``run_sweep``
    always passes it; without it this is the key labkit 0.1 used)."""
    return _key(config, version, None if point_fn is None else function_identity(point_fn, ignore))


def _key(config: Mapping, version: int | str, fn: Mapping | None) -> str:
    payload = {"config": dict(config), "version": version}
    if fn is not None:
        payload["fn"] = fn
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:20]


def _checksum(config, result, fn=None) -> str:
    payload = {"config": config, "result": result}
    if fn is not None:
        payload["fn"] = fn
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def _read_entry(path: Path, config: Mapping, fn: Mapping | None = None):
    """The cached result at ``path``, or None when it is missing, partial, corrupt or stale."""
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
        ok = (entry.get("schema") == SCHEMA and entry.get("config") == dict(config)
              and entry.get("fn") == fn
              and entry.get("checksum") == _checksum(entry["config"], entry["result"], entry["fn"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        warnings.warn(f"sweep cache entry {path} is corrupt or partial; recomputing it", stacklevel=3)
        return None
    return entry["result"]


def _write_entry(path: Path, config: Mapping, result: Mapping, fn: Mapping | None = None,
                 version: int | str = 0) -> None:
    entry = {"schema": SCHEMA, "config": dict(config), "result": result, "fn": fn, "version": version,
             "checksum": _checksum(dict(config), result, fn)}
    write_text(path, _canonical(entry))


def _run_point(point_fn, config: dict, path: str | None, threads: int, fn: Mapping | None = None,
               version: int | str = 0):
    """Worker body: one torch thread, compute, validate, write the cache entry atomically.

    A point that raises is re-raised as a RuntimeError naming its configuration (the original
    exception is its ``__cause__`` in-process, and its text survives a trip through a worker).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = point_fn(**config)
    except Exception as exc:
        raise RuntimeError(f"point {config} of {_fn_name(point_fn)} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        torch.set_num_threads(before)
    if not isinstance(result, Mapping):
        raise TypeError(f"{_fn_name(point_fn)} must return a dict of results, got {type(result).__name__} "
                        f"(point {config})")
    try:
        result = json.loads(_canonical(dict(result)))
    except (TypeError, ValueError):  # numpy or torch numbers are stored as numbers; NaN is named
        try:
            result = storable(dict(result))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"point {config} of {_fn_name(point_fn)}: {exc}") from None
    if path is not None:
        _write_entry(Path(path), config, result, fn, version)
    return config, result


def run_sweep(point_fn: Callable, grid, *, name: str, cache: str | os.PathLike | None = None,
              version: int | str = 0, n_jobs: int = 1, backend: str | None = "loky",
              threads_per_point: int = 1, progress: bool = True, missing: str = "compute",
              ignore: Sequence[str] = DEFAULT_IGNORE, scheduler=None) -> Table:
    """Run ``point_fn(**config)`` over every configuration of ``grid``; return a :class:`Table`.

    ``point_fn`` must be a module-level function (so worker processes can import it), or a
    ``functools.partial`` of one, returning a dict of JSON values (numbers, strings, lists).
    ``name`` names the sweep's cache folder ``<cache>/<name>`` (``cache`` defaults to
    ``labkit.store.cache_dir("sweeps")``; pass ``cache=False`` to disable caching). The cache
    key holds the configuration, ``version`` and :func:`function_identity` of ``point_fn``, less
    the bound keyword arguments named in ``ignore`` (default ``("device",)``, so points computed
    on a GPU are found from a CPU session; ``ignore=()`` keys on every bound argument); bump ``version`` when a function that
    ``point_fn`` calls changes meaning. A point that raises stops the sweep with a RuntimeError
    naming its configuration; the points finished before it stay cached.

    ``n_jobs`` processes run the missing points (joblib; ``backend`` ``"loky"``, ``"threading"``,
    ``"ray"``, or None for the active ``joblib.parallel_config``), each limited to
    ``threads_per_point`` torch threads. ``backend="dask"`` submits every missing point to a
    ``dask.distributed`` cluster (``n_jobs`` is then the cluster's business): the client given
    as ``scheduler`` (or its address, ``"tcp://HOST:PORT"``), else the active client, else the
    ``DASK_SCHEDULER_ADDRESS`` setting; results are written to the cache here, as they arrive,
    so the workers need not see the cache folder, and a point lost with a dying worker is rerun
    by the scheduler on another. Rows come back in grid order, each the configuration merged
    with its result. ``missing="skip"`` only reads the cache: points not cached yet are left out
    of the table (to show results computed elsewhere, e.g. by ``labkit-sweep``).
    """
    from tqdm.auto import tqdm

    from .dispatch import dispatch

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
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler={scheduler!r} needs backend='dask', got backend={backend!r}")
    configs = expand_grid(grid, point_fn)
    fn = function_identity(point_fn, ignore)

    folder = None
    if cache is not False:
        if cache is None:
            from .store import cache_dir

            folder = cache_dir("sweeps", name)
        else:
            folder = Path(cache) / name
            folder.mkdir(parents=True, exist_ok=True)
    paths = [None if folder is None else folder / f"{_key(c, version, fn)}.json" for c in configs]
    results = [None if p is None else _read_entry(p, c, fn) for p, c in zip(paths, configs)]
    todo = [i for i, r in enumerate(results) if r is None]

    if todo and missing == "compute":
        by_key = {_canonical(configs[i]): i for i in todo}
        bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc=name, disable=not progress)
        with bar:
            # on a Dask cluster the workers need not see the cache: entries are written here
            local = backend != "dask"
            tasks = [(point_fn, configs[i], str(paths[i]) if local and paths[i] else None,
                      threads_per_point, fn, version) for i in todo]
            outputs = dispatch(_run_point, tasks, n_jobs=n_jobs, backend=backend, scheduler=scheduler)
            for config, result in outputs:
                i = by_key[_canonical(config)]
                if backend == "dask" and paths[i] is not None:
                    _write_entry(paths[i], config, result, fn, version)
                results[i] = result
                bar.update(1)
    return Table([{**c, **r} for c, r in zip(configs, results) if r is not None])


# The paper's grids and the labkit-sweep command moved to labkit.experiments and labkit.cli.
__getattr__ = _moved(__name__, {"PAPER_GRIDS": "labkit.experiments.PAPER_GRIDS",
                                "paper_grid": "labkit.experiments.paper_grid",
                                "main": "labkit.cli.sweep_main"}, remove_in="0.3")
