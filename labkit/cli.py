"""Every labkit command in one place (the console scripts point here).

``labkit --help`` / ``labkit --version``  the commands and their purpose; the version
``labkit results list [--names]``       the registered result sets (``labkit.experiments.EXPERIMENTS``)
``labkit results run NAME``             compute ``results/NAME.json``; rerunning resumes from the file
``labkit results run MOD:ATTR --out F`` an ``Experiment`` of your own module (current folder)
``labkit verify results/NAME.json``     recompute random rows and compare them with the file
``labkit claims [--check]``             every notebook conclusion computed into results/claims.json
``labkit claims freeze``                record the declared claims in results/claims.lock
``labkit sweep GRID`` / ``labkit-sweep`` the paper-scale Fig. 3 grids into the sweep cache
``labkit prune`` / ``labkit-prune``     the Table 1 protocol on digits or a local CIFAR-10 copy

A result set is a small JSON file committed with the repository::

    {"name": ..., "provenance": {"command", "commit", "labkit", "torch", "device",
     "date", "wall_s", "threads"}, "point_fn": "module:function",
     "rows": [{"config": {...every argument of point_fn...}, "result": {...},
               "wall_s": s}, ...]}

``results run`` writes the file atomically after every finished row, so an interrupted run
loses at most the rows in flight, and a rerun computes only the rows the file lacks. Rows are
seeded and deterministic at one torch thread, so ``verify`` expects agreement to within
``--rtol`` (default 1e-4) and ``--atol`` (default 1e-6) on the same platform.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

from .results import run_results, verify

__all__ = ["main", "sweep_main", "prune_main"]


def _import_error(module: str, what: str) -> str | None:
    """Import ``module`` (a researcher's, named by ``what``); a one-paragraph message when its
    code raises, None when it imports (or is simply not there: the caller names that)."""
    import importlib
    import traceback

    if not module or module.startswith("labkit"):
        return None
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None  # the module itself is missing: the command's own error says so
        cause = exc
    except Exception as exc:  # anything a module's code may raise while it is imported
        cause = exc
    else:
        return None
    frames = [f for f in traceback.extract_tb(cause.__traceback__)
              if not f.filename.startswith("<frozen")]
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return (f"importing {module} (for {what}) raised {type(cause).__name__}: {cause}{where}. "
            f"Fix the module and rerun; python -c \"import {module}\" shows the full "
            "traceback.")


def _results_main(argv) -> int:
    from .experiments import EXPERIMENTS

    parser = argparse.ArgumentParser(prog="labkit results",
                                     description="Compute the result sets: the registered ones "
                                     "under results/, or an Experiment of your own module.")
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="print the registered result sets")
    listing.add_argument("--names", action="store_true", help="only the names, one per line")
    run = sub.add_parser("run", help="compute (or resume) results/NAME.json")
    run.add_argument("name", help=f"a registered set ({', '.join(EXPERIMENTS)}) or "
                     "MODULE:ATTRIBUTE, an Experiment in a module of the current folder")
    run.add_argument("--out", help="output file (default results/NAME.json; needed for "
                     "MODULE:ATTRIBUTE)")
    run.add_argument("--device", default="cpu", help="torch device of every row (cuda on a GPU)")
    run.add_argument("--n-jobs", type=int, default=1, help="parallel rows (worker processes)")
    run.add_argument("--scheduler", help="a Dask scheduler address, tcp://HOST:PORT")
    run.add_argument("--limit", type=int,
                     help="compute at most this many new rows (0: report only)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--drop-stale", action="store_true",
                     help="drop the file's rows that no longer match the grid, defaults or "
                     "version (by default they are kept under 'superseded')")
    args = parser.parse_args(argv)
    if args.action == "list":
        from .results import _configs as configs

        for name, exp in EXPERIMENTS.items():
            print(name if args.names else
                  f"{name}: {len(configs(name)[1])} rows, {exp.point_fn}\n  {exp.purpose}")
        return 0
    if ":" in args.name:
        problem = _import_error(args.name.partition(":")[0], args.name)
        if problem:
            parser.error(problem)
    try:
        run_results(args.name, args.out, device=args.device, n_jobs=args.n_jobs, limit=args.limit,
                    scheduler=args.scheduler, log=lambda m: print(m, flush=True),
                    progress=not args.quiet, drop_stale=args.drop_stale)
    except ValueError as exc:
        parser.error(str(exc))
    return 0


def _verify_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="labkit verify",
                                     description="Recompute rows of a result file and compare them.")
    parser.add_argument("path", help="a result file, e.g. results/fig2.json")
    parser.add_argument("--rows", type=_rows_arg, default=1,
                        help="how many rows to recompute (default 1), 'all', or 'unverified' (the rows "
                        "with neither provenance nor verified_by)")
    parser.add_argument("--all", dest="rows", action="store_const", const="all",
                        help="every row (with --max-steps: a cheap pass over all of them)")
    parser.add_argument("--stamp", action="store_true",
                        help="write verified_by into the rows that agree")
    parser.add_argument("--provenance", action="store_true",
                        help="recompute nothing: fail when a row has neither provenance nor "
                        "verified_by, names a commit created after it started, or does not "
                        "match its checksum")
    parser.add_argument("--set-aside-late-commits", action="store_true",
                        help="move provenance that names a commit created after its row "
                        "started to provenance_unreliable (then verify --stamp those rows)")
    parser.add_argument("--seed", type=int, default=0, help="which random rows")
    parser.add_argument("--cheapest", action="store_true", help="take the cheapest rows (by wall_s)")
    parser.add_argument("--max-steps", type=int,
                        help="recompute training curves only up to this step (for sets whose "
                        "experiment declares a prefix_key)")
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--atol", type=float, default=1e-6)
    args = parser.parse_args(argv)
    for module, what in _user_modules(args.path):
        problem = _import_error(module, what)
        if problem:
            print(f"labkit verify: error: {problem}", file=sys.stderr)
            return 2
    if args.provenance or args.set_aside_late_commits:
        return _provenance_main(args)
    try:
        ok = verify(args.path, args.rows, seed=args.seed, rtol=args.rtol, atol=args.atol,
                    max_steps=args.max_steps, cheapest=args.cheapest, stamp=args.stamp,
                    log=lambda m: print(m, flush=True))
    except ValueError as exc:
        print(f"labkit verify: error: {exc}", file=sys.stderr)
        return 2
    print("verified" if ok else "verification FAILED")
    return 0 if ok else 1


def _rows_arg(text: str):
    if text in ("all", "unverified"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--rows must be a positive integer or 'all', got "
                                         f"{text!r}") from None


def _provenance_main(args) -> int:
    from .results import check_checksums, provenance_problems, set_aside_late_commits

    try:
        if args.set_aside_late_commits:
            set_aside_late_commits(args.path)
        problems = check_checksums(args.path) + provenance_problems(args.path)
    except ValueError as exc:
        print(f"labkit verify: error: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"{args.path}: {problem}")
    print(f"{args.path}: provenance " + ("complete" if not problems else
                                         f"INCOMPLETE ({len(problems)} problems)"))
    return 1 if problems else 0


def _user_modules(path) -> list[tuple[str, str]]:
    """``(module, what)`` of the user code a result file names (its experiment and point
    function), with the folders that hold it put on ``sys.path``: the folders the file
    recorded for that code, the file's own folder and the folder above it (a project's root,
    for ``results/NAME.json``), so ``labkit verify`` finds the code from any folder."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []  # verify itself names a missing or malformed file
    if not isinstance(data, dict):
        return []
    provenance = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
    recorded = [provenance.get("user_code")] + [
        (row.get("provenance") or {}).get("user_code") for row in data.get("rows") or []
        if isinstance(row, dict) and isinstance(row.get("provenance"), dict)]
    folders = []
    for code in recorded:
        if isinstance(code, dict) and isinstance(code.get("folder"), str):
            folder = Path(code["folder"])
            folders += [folder.parent] if (folder / "__init__.py").exists() else [folder]
    here = Path(path).resolve().parent
    folders += [here, here.parent]
    for folder in folders:
        if folder.is_dir() and str(folder) not in sys.path:
            sys.path.append(str(folder))  # after the current folder: it still comes first
    out = []
    for key in ("name", "point_fn"):
        spec = data.get(key)
        if isinstance(spec, str) and ":" in spec:
            out.append((spec.partition(":")[0], spec))
    return out


def _claims_main(argv) -> int:
    from . import claims as _claims

    parser = argparse.ArgumentParser(prog="labkit claims",
                                     description="Compute every declared claim of notebooks 02-04 "
                                     "from the result sets (labkit.claims).")
    parser.add_argument("--out", default=None, help="claims file (default results/claims.json)")
    parser.add_argument("--check", action="store_true",
                        help="recompute and compare with the file instead of writing it")
    if argv[:1] == ["freeze"]:
        return _freeze_main(argv[1:])
    args = parser.parse_args(argv)
    try:
        if args.check:
            differ = _claims.compare_claims(_claims.load_claims(args.out),
                                            _claims.compute_claims())
            print("claims recompute" if not differ else "claims DIFFER: " + ", ".join(differ))
            return 1 if differ else 0
        claims = _claims.write_claims(args.out)
    except ValueError as exc:
        print(f"labkit claims: error: {exc}", file=sys.stderr)
        return 2
    counts = {}
    for c in claims:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    print(f"{len(claims)} claims: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    return 0


def _freeze_main(argv) -> int:
    from .claims import freeze

    parser = argparse.ArgumentParser(
        prog="labkit claims freeze",
        description="Record the declarations of every declared claim not frozen yet in "
        "results/claims.lock (a digest each). Rows computed afterwards record the lock's digest, "
        "and a claim is confirmatory only when every row it reads was computed under a lock "
        "that holds its declaration.")
    parser.parse_args(argv)
    try:
        freeze()
    except ValueError as exc:
        print(f"labkit claims freeze: error: {exc}", file=sys.stderr)
        return 2
    return 0


# name: (function, purpose), in the order `labkit --help` lists them
def _commands() -> dict:
    return {
        "results": (_results_main, "compute, resume or list result sets (results/NAME.json; "
                                   "MODULE:ATTR: your own)"),
        "verify": (_verify_main, "recompute rows of a result file and compare them with it"),
        "claims": (_claims_main, "compute every declared claim into results/claims.json "
                                 "(--check: compare)"),
        "sweep": (sweep_main, "run a paper-scale Fig. 3 grid into the sweep cache"),
        "prune": (prune_main, "the Table 1 protocol on digits or a local CIFAR-10 copy"),
    }


def _usage(commands: dict) -> str:
    width = max(len(name) for name in commands)
    lines = ["usage: labkit [--version] COMMAND [ARGS ...]", "",
             "The command line of labkit, a lab for arXiv 2511.03202 (memorization and "
             "generalization in diffusion models).", "", "commands:"]
    lines += [f"  {name:<{width}}  {purpose}" for name, (_, purpose) in commands.items()]
    lines += ["", "labkit COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv=None) -> int:
    """``labkit COMMAND ...``: ``labkit --help`` lists the commands, ``labkit COMMAND --help``
    shows one's options, ``labkit --version`` prints the version."""
    from . import __version__

    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(commands))
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"labkit {__version__}")
        return 0
    if argv[0] not in commands:
        print(_usage(commands), file=sys.stderr)
        print(f"\nlabkit: error: unknown command {argv[0]!r} (choose from {', '.join(commands)})",
              file=sys.stderr)
        return 2
    # a researcher's own experiments and point functions live in modules of the current folder
    if argv[0] in ("results", "verify") and "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return commands[argv[0]][0](argv[1:])
    except KeyboardInterrupt:
        again = "labkit " + " ".join(argv)
        kept = {"results": "the rows finished so far are saved in the result file; rerun "
                           f"`{again}` to resume from them",
                "sweep": f"finished points are cached; rerun `{again}` to resume",
                "prune": f"finished steps are cached; rerun `{again}` to resume"}
        print(f"labkit {argv[0]}: interrupted; "
              + kept.get(argv[0], f"nothing was written; rerun `{again}` to start again"),
              file=sys.stderr)
        return 130


def sweep_main(argv=None) -> int:
    """``labkit sweep GRID`` (or ``labkit-sweep GRID``): one of the paper-scale grids of
    :data:`labkit.experiments.PAPER_GRIDS` through :func:`labkit.experiments.memorization_point`
    into the sweep cache ``<cache>/sweeps/<GRID>``; rerunning resumes."""
    from . import _checks
    from .experiments import PAPER_GRIDS, memorization_point, paper_grid
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
        _checks.device(args.device, "--device")
    except ValueError as exc:
        parser.error(str(exc))
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
    backend = "dask" if args.scheduler else args.backend
    table = run_sweep(point_fn, grid, name=args.grid, cache=cache, n_jobs=args.n_jobs, backend=backend,
                      scheduler=args.scheduler, progress=not args.quiet)
    for row in table:
        print(json.dumps(row, sort_keys=True))
    return 0


def prune_main(argv=None) -> int:
    """``labkit prune`` (or ``labkit-prune``): the Table 1 protocol end to end on the digits or
    a local CIFAR-10 copy; prints the table beside the paper's and writes ``results.json`` (plus
    cached models and samples) to ``--out``. Every argument is checked before any training."""
    import torch

    from .dit import PRESETS
    from . import _checks
    from .experiments import CIFAR_PROTOCOL, Protocol, format_table, run_protocol
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
        _checks.device(args.device, "--device")
    except ValueError as exc:
        parser.error(str(exc))
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
