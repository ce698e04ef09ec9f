"""Every labkit command in one place (the console scripts point here).

``labkit results list``                 the registered result sets (:data:`labkit.experiments.EXPERIMENTS`)
``labkit results run NAME``             compute ``results/NAME.json``; rerunning resumes from the file
``labkit verify results/NAME.json``     recompute random rows and compare them with the file
``labkit sweep GRID`` / ``labkit-sweep`` the paper-scale Fig. 3 grids into the sweep cache
``labkit prune`` / ``labkit-prune``     the Table 1 protocol on digits or a local CIFAR-10 copy

A result set is a small JSON file committed with the repository::

    {"name": ..., "provenance": {"command", "commit", "labkit", "torch", "device", "date",
     "wall_s", "threads"}, "point_fn": "module:function",
     "rows": [{"config": {...every argument of point_fn...}, "result": {...}, "wall_s": s}, ...]}

``results run`` writes the file atomically after every finished row, so an interrupted run
loses at most the rows in flight, and a rerun computes only the rows the file lacks. Rows are
seeded and deterministic at one torch thread, so ``verify`` expects agreement to within
``--rtol`` (default 1e-4) and ``--atol`` (default 1e-6) on the same platform.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import inspect
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

__all__ = ["main", "run_results", "verify", "load_results", "resolve", "full_config", "RESULTS_DIR"]

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


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
    """``config`` with every other parameter of ``fn`` at its default (minus ``bound`` ones, which
    the command line sets), so a row records everything that produced it."""
    sig = inspect.signature(fn)
    unknown = [k for k in config if k not in sig.parameters]
    if unknown:
        raise ValueError(f"config keys {unknown} are not parameters of {fn.__module__}.{fn.__qualname__}")
    out = {}
    for name, p in sig.parameters.items():
        if name in bound:
            continue
        if name in config:
            out[name] = config[name]
        elif p.default is inspect.Parameter.empty:
            raise ValueError(f"config lacks {name!r}, required by {fn.__qualname__}")
        else:
            out[name] = p.default
    return out


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _write_atomically(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
    import joblib
    import torch

    from . import __version__
    from .experiments import experiment

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer, got {n_jobs!r}")
    from .experiments import _device

    _device(device)
    exp = experiment(name)
    spec, configs = _configs(name)
    path = Path(out) if out is not None else RESULTS_DIR / f"{name}.json"
    done = {}
    if path.exists():
        old = load_results(path)
        if old["point_fn"] != spec:
            raise ValueError(f"{path} was made by {old['point_fn']}, not {spec}; move it away to recompute")
        wanted = {_canonical(c) for c in configs}
        for row in old["rows"]:
            key = _canonical(row["config"])
            if key in wanted:
                done[key] = row
    todo = [c for c in configs if _canonical(c) not in done]
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
        order = {_canonical(c): i for i, c in enumerate(configs)}
        rows = sorted(done.values(), key=lambda r: order[_canonical(r["config"])])
        prov = {**provenance, "wall_s": round(sum(r["wall_s"] for r in rows), 1)}
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
                    done[_canonical(config)] = {"config": config, "result": result, "wall_s": wall}
                    write()
                    log(f"  [{k}/{len(todo)}] {wall:7.1f} s  {_short(config)}")
        finally:
            if client is not None:
                client.close()
    elif not path.exists():
        write()
    log(f"{name}: {len(done)} of {len(configs)} rows in {path} ({time.perf_counter() - start:.0f} s this run)")
    return load_results(path)


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
        current_keys = {_canonical(c) for c in current}
    else:
        current_keys = None
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
        if current_keys is not None and _canonical(config) not in current_keys:
            raise ValueError(f"{path}: row {i}'s config is not in experiment {name!r}'s current grid "
                             f"(the grid or {spec}'s defaults changed): {_short(config)}; rerun "
                             f"`labkit results run {name}`")
        try:
            full_config(fn, config)
        except ValueError as exc:
            raise ValueError(f"{path}: row {i}: {exc} (the point function changed)") from None
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


def _results_main(argv) -> int:
    from .experiments import EXPERIMENTS

    parser = argparse.ArgumentParser(prog="labkit results",
                                     description="Compute the committed result sets under results/.")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="print the registered result sets")
    run = sub.add_parser("run", help="compute (or resume) results/NAME.json")
    run.add_argument("name", choices=sorted(EXPERIMENTS))
    run.add_argument("--out", help="output file (default results/NAME.json)")
    run.add_argument("--device", default="cpu", help="torch device of every row (cuda on a GPU)")
    run.add_argument("--n-jobs", type=int, default=1, help="parallel rows (worker processes)")
    run.add_argument("--scheduler", help="a Dask scheduler address, tcp://HOST:PORT")
    run.add_argument("--limit", type=int, help="compute at most this many new rows")
    args = parser.parse_args(argv)
    if args.action == "list":
        from .cli import _configs as configs

        for name, exp in EXPERIMENTS.items():
            print(f"{name}: {len(configs(name)[1])} rows, {exp.point_fn}\n  {exp.purpose}")
        return 0
    try:
        run_results(args.name, args.out, device=args.device, n_jobs=args.n_jobs, limit=args.limit,
                    scheduler=args.scheduler, log=lambda m: print(m, flush=True))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


def _verify_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="labkit verify",
                                     description="Recompute rows of a result file and compare them.")
    parser.add_argument("path", help="a result file, e.g. results/fig2.json")
    parser.add_argument("--rows", type=int, default=1, help="how many rows to recompute (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="which random rows")
    parser.add_argument("--cheapest", action="store_true", help="take the cheapest rows (by wall_s)")
    parser.add_argument("--max-steps", type=int, help="recompute training curves only up to this step")
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--atol", type=float, default=1e-6)
    args = parser.parse_args(argv)
    try:
        ok = verify(args.path, args.rows, seed=args.seed, rtol=args.rtol, atol=args.atol,
                    max_steps=args.max_steps, cheapest=args.cheapest, log=lambda m: print(m, flush=True))
    except ValueError as exc:
        print(f"labkit verify: error: {exc}", file=sys.stderr)
        return 2
    print("verified" if ok else "verification FAILED")
    return 0 if ok else 1


def main(argv=None) -> int:
    """``labkit {results,verify,sweep,prune} ...`` (``labkit COMMAND --help`` for each)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"results": _results_main, "verify": _verify_main,
                "sweep": sweep_main, "prune": prune_main}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print(__doc__.split("\n\n")[0])
        print("\ncommands: " + ", ".join(commands) + "  (labkit COMMAND --help)")
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    return commands[argv[0]](argv[1:])


def sweep_main(argv=None) -> int:
    """``labkit sweep GRID`` (or ``labkit-sweep GRID``): one of the paper-scale grids of
    :data:`labkit.experiments.PAPER_GRIDS` through :func:`labkit.experiments.memorization_point`
    into the sweep cache ``<cache>/sweeps/<GRID>``; rerunning resumes."""
    from .experiments import PAPER_GRIDS, _device, memorization_point, paper_grid
    from .sweeps import expand_grid, run_sweep

    parser = argparse.ArgumentParser(
        prog="labkit-sweep",
        description="Run one of the paper-scale Fig. 3 grids (d = 32, n up to 100K, networks up to tens of "
                    "millions of parameters) into labkit's sweep cache; rerunning resumes where it stopped.")
    parser.add_argument("grid", nargs="?", choices=sorted(PAPER_GRIDS))
    parser.add_argument("--list", action="store_true", help="print the grids and exit")
    parser.add_argument("--device", default="cpu", help="torch device of every point (cuda for GPUs)")
    parser.add_argument("--steps", type=int, default=20000, help="training steps per network")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--num-samples", type=int, default=10000, help="generated samples per network")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel points (1 per GPU)")
    parser.add_argument("--backend", default="loky", help="joblib backend: loky, dask, ray")
    parser.add_argument("--scheduler", help="a Dask scheduler address tcp://HOST:PORT (implies --backend dask)")
    parser.add_argument("--cache", default=None, help="cache root (default: labkit's cache folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override one axis, e.g. --set 'n=[1000,3200]' --set depth=3")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.list or args.grid is None:
        for name, grid in PAPER_GRIDS.items():
            print(f"{name}: {len(expand_grid(grid))} points  {grid}")
        return 0
    try:
        _device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    grid = paper_grid(args.grid, args.steps, args.batch_size, args.num_samples, args.seed)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set needs KEY=JSON, got {item!r}")
        try:
            grid[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--set {key}: {value!r} is not JSON (strings need quotes)")
    try:
        expand_grid(grid, memorization_point)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    cache = None if args.cache is None else Path(args.cache) / "sweeps"
    point_fn = partial(memorization_point, device=args.device)
    backend, client = args.backend, None
    if args.scheduler:
        from dask.distributed import Client

        client, backend = Client(args.scheduler), "dask"
    try:
        table = run_sweep(point_fn, grid, name=args.grid, cache=cache, n_jobs=args.n_jobs,
                          backend=backend, progress=not args.quiet)
    finally:
        if client is not None:
            client.close()
    for row in table:
        print(json.dumps(row, sort_keys=True))
    return 0


def prune_main(argv=None) -> int:
    """``labkit prune`` (or ``labkit-prune``): the Table 1 protocol end to end on the digits or
    a local CIFAR-10 copy; prints the table beside the paper's and writes ``results.json`` (plus
    cached models and samples) to ``--out``. Every argument is checked before any training."""
    import torch

    from .dit import PRESETS
    from .experiments import CIFAR_PROTOCOL, Protocol, _device, format_table, run_protocol
    from .images import load_cifar10, load_digits

    parser = argparse.ArgumentParser(
        prog="labkit-prune", description="Table 1 of arXiv 2511.03202 with controls: train a DiT, score its heads "
        "(Algorithm 2), prune and fine-tune (Algorithm 1), sample, and report memorization, FD and precision/recall "
        "over seeds. Every step is cached in --out, so an interrupted run resumes.")
    parser.add_argument("--dataset", choices=("digits", "cifar10"), default="digits")
    parser.add_argument("--data-root", help="folder holding the CIFAR-10 python batches (cifar-10-batches-py)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--out", default="labkit-prune-out", help="output and cache folder")
    parser.add_argument("--n", type=int, help="training images (default: 5000 for cifar10, 32 for digits)")
    parser.add_argument("--preset", choices=tuple(PRESETS), help="DiT size (default: cifar / digits)")
    digits, cifar10 = asdict(Protocol()), asdict(CIFAR_PROTOCOL)
    for name, value in digits.items():
        if name != "preset":
            parser.add_argument("--" + name.replace("_", "-"), type=type(value),
                                help=f"default {value} (digits), {cifar10[name]} (cifar10)")
    parser.add_argument("--progress", action="store_true", help="show training progress bars")
    args = parser.parse_args(argv)

    cifar = args.dataset == "cifar10"
    if cifar and not args.data_root:
        parser.error("--dataset cifar10 needs --data-root (a local copy; nothing is downloaded)")
    try:
        _device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    settings = asdict(CIFAR_PROTOCOL if cifar else Protocol())
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    try:
        protocol = Protocol(**settings)
    except ValueError as exc:  # e.g. --ratio 1.5, named by the Protocol's own check
        parser.error(str(exc).replace("ratio must", "--ratio must"))
    n = args.n if args.n is not None else (5000 if cifar else 32)
    limit = 50000 if cifar else 1797
    if not 2 <= n < limit:
        parser.error(f"--n must be between 2 and {limit - 1} for {args.dataset} (some images are held out "
                     f"as the reference set), got {n}")
    generator = torch.Generator().manual_seed(0)
    data = load_cifar10(args.data_root, n=n, generator=generator) if cifar else load_digits(n, generator=generator)
    if tuple(data.train.shape[1:]) != (PRESETS[protocol.preset].channels,) + (PRESETS[protocol.preset].image_size,) * 2:
        parser.error(f"--preset {protocol.preset} does not fit {args.dataset} images of shape "
                     f"{tuple(data.train.shape[1:])}")
    results = run_protocol(data, protocol, args.out, device=args.device, progress=args.progress,
                           log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"{args.dataset}: n = {n}, {protocol.ratio:.0%} of heads pruned, {protocol.seeds} seeds, "
          f"FD in the features of labkit's {args.dataset} classifier (not Inception: not FID)")
    print(format_table(results, fd_name=f"FD ({args.dataset} classifier)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
