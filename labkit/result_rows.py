"""What a result set's rows are computed from: the point function a ``"module:function"``
string names (:func:`resolve`), the experiment a name names (:func:`experiment_for`), the full
configs of its grids (every parameter of the point function at its current default:
:func:`full_config`), a row's key, its result as JSON (:func:`storable`) and one row computed
(used by :mod:`labkit.results` to run a set and by :mod:`labkit.verification` to recompute
one)."""

from __future__ import annotations

import importlib
import inspect
import time

from .store import row_key

__all__ = ["resolve", "experiment_for", "full_config", "storable"]


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


def _row_key(fn, config: dict, version) -> str | None:
    """A row's key (:func:`labkit.store.row_key`), or None when its config no longer fits the
    point function (a parameter it names was removed)."""
    try:
        return row_key(fn, config, version)
    except ValueError:
        return None


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
