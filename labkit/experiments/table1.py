"""Table 1 of the paper: the pruning protocol (Algorithms 1-2) with controls, on scikit-learn's
digits (notebook 03) or a local CIFAR-10 copy (``labkit prune --dataset cifar10``).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from .. import _checks
from ..dit import PRESETS, DiT, load_dit, sample_images, save_dit, train_dit
from ..pruning import fine_tune, importance, prune_heads, select_heads
from ..store import write_json
from ..train import TrainConfig, save_atomically
from .mixtures import eval_steps

__all__ = ["PAPER_TABLE1", "Arm", "ARMS", "METHODS", "Protocol", "CIFAR_PROTOCOL", "train_base",
           "importances",
           "pruned_arm", "run_protocol", "summarize", "format_table", "TABLE1_RATIOS", "table1_seed",
           "table1_arm", "split_seed_row", "table1_runs"]


# ----------------------------------------------------------------------------------------------
# Table 1: the pruning protocol (Algorithms 1-2) with controls, on digits or CIFAR-10

# Table 1 of the paper: CIFAR-10 5,000-image subset, DiT, 20% of heads pruned, mean +- std over 5 runs.
PAPER_TABLE1 = {
    "original": {"precision": (0.39, 0.01), "recall": (0.08, 0.01), "memorization": (73.82, 1.12), "fd": (15.47, 0.28)},
    "small-t importance": {"precision": (0.33, 0.02), "recall": (0.12, 0.01), "memorization": (68.58, 0.77), "fd": (15.07, 0.33)},
    "random": {"precision": (0.30, 0.02), "recall": (0.09, 0.01), "memorization": (66.87, 0.94), "fd": (17.14, 0.25)},
}


@dataclass(frozen=True)
class Arm:
    """One arm of the protocol: the head-importance method that prunes it (a key of
    :data:`labkit.pruning.IMPORTANCE`; None: nothing pruned), whether that method draws anew
    for each seed (the random baseline) or scores the base model once, and whether the arm is
    fine-tuned."""

    importance: str | None
    per_seed: bool = False
    fine_tune: bool = True


# The protocol's arms: the paper's three plus a fine-tuned-but-unpruned control and two criteria.
ARMS = {
    "original": Arm(None, fine_tune=False),
    "fine-tuned control": Arm(None),
    "small-t importance": Arm("small-t"),
    "uniform-t importance": Arm("uniform-t"),
    "random": Arm("random", per_seed=True),
    "magnitude": Arm("magnitude"),
}
METHODS = tuple(ARMS)




# --------------------------------------------------------------------------------------------
# The protocol behind Table 1, shared by notebook 03 and the command line
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Protocol:
    """Settings of one Table-1 run. Defaults are notebook 03's full CPU size on the digits; the
    CLI's ``--dataset cifar10`` switches to :data:`CIFAR_PROTOCOL`, the paper's scale."""

    preset: str = "digits"
    train_steps: int = 5000
    train_lr: float = 3e-3
    batch_size: int = 32
    finetune_steps: int = 200
    finetune_lr: float = 1e-3
    ratio: float = 0.2
    seeds: int = 3
    num_samples: int = 400
    sample_steps: int = 40
    importance_batches: int = 16
    classifier_steps: int = 400

    def __post_init__(self):
        _checks.choice(self.preset, "preset", tuple(PRESETS))
        for name in ("train_steps", "batch_size", "finetune_steps", "seeds", "num_samples", "sample_steps",
                     "importance_batches", "classifier_steps"):
            _checks.positive_int(getattr(self, name), name)
        _checks.positive_float(self.train_lr, "train_lr")
        _checks.positive_float(self.finetune_lr, "finetune_lr")
        _checks.unit_interval(self.ratio, "ratio", closed_left=True, closed_right=False)

    def base_training(self) -> TrainConfig:
        """How the original DiT is trained (:func:`train_base`)."""
        return TrainConfig(steps=self.train_steps, batch_size=self.batch_size, lr=self.train_lr)

    def fine_tuning(self) -> TrainConfig:
        """How a pruned model (and the fine-tuned control) is fine-tuned (:func:`pruned_arm`)."""
        return TrainConfig(steps=self.finetune_steps, batch_size=self.batch_size,
                           lr=self.finetune_lr)


# The paper's scale (CIFAR-10 5,000-image subset, a DiT-S/2-sized model, 5 runs). The paper does
# not state its training, fine-tuning or sampling settings; these are labkit's choices for a GPU.
CIFAR_PROTOCOL = Protocol(preset="cifar", train_steps=100_000, train_lr=1e-4, batch_size=128, finetune_steps=10_000,
                          finetune_lr=1e-4, seeds=5, num_samples=5000, sample_steps=100, importance_batches=64,
                          classifier_steps=3000)


def _claim(out_dir: Path, data, protocol: Protocol) -> None:
    """Record which data and protocol ``out_dir``'s cache belongs to; refuse a different one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = {"dataset": data.name, "n": int(data.train.shape[0]), "protocol": asdict(protocol)}
    path = out_dir / "protocol.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != stamp:
            raise ValueError(f"{str(out_dir)!r} caches a run of {old}, not {stamp}; use another output folder "
                             "or delete this one")
    else:
        write_json(path, stamp)


def train_base(data, protocol: Protocol, out_dir, *, device="cpu", callbacks=(), eval_every=None,
               progress: bool = False, seed: int = 0, eval_at=None) -> tuple[DiT, dict]:
    """Train (or load) the original DiT on ``data.train``; cached as ``out_dir/base.pt`` and
    resumed from ``out_dir/base_train.pt`` after an interruption. ``seed`` draws the initial
    weights and the training noise. The ``callbacks`` run on the schedule ``eval_at`` (see
    :func:`labkit.train.train`); their evaluations are checkpointed with the training run and
    stored in ``base.pt``, so a resumed or cached base returns the same ``extra["evals"]`` as
    an uninterrupted one (``[]`` without callbacks). Returns ``(model, extra)``."""
    out_dir = Path(out_dir)
    _claim(out_dir, data, protocol)
    path = out_dir / "base.pt"
    if path.is_file():
        model, extra = load_dit(path, map_location=device)
        return model, extra
    model = DiT(PRESETS[protocol.preset], generator=torch.Generator().manual_seed(10_000 * seed)).to(device)
    if eval_every is not None and eval_at is not None:
        raise ValueError("pass eval_at or eval_every (its older name), not both")
    history = train_dit(model, data.train.to(device), protocol.base_training(),
                        generator=torch.Generator(device=device).manual_seed(10_000 * seed + 1),
                        callbacks=callbacks, eval_at=eval_at if eval_every is None else eval_every,
                        checkpoint=out_dir / "base_train.pt", progress=progress)
    extra = {"evals": history.evals, "loss": history.loss}
    save_dit(model, path, **extra)
    (out_dir / "base_train.pt").unlink(missing_ok=True)
    return model, extra


def importances(model: DiT, data, protocol: Protocol) -> dict[str, torch.Tensor]:
    """The head scores (L, H) of every arm that scores the base model once (small-t and
    uniform-t Algorithm 2, weight magnitude), by arm name; the random arm draws its own per
    seed in :func:`pruned_arm`."""
    device = next(model.parameters()).device
    return {name: importance(arm.importance, model, data.train.to(device),
                             batches=protocol.importance_batches, batch_size=protocol.batch_size,
                             generator=torch.Generator(device=device).manual_seed(2))
            for name, arm in ARMS.items() if arm.importance is not None and not arm.per_seed}


def pruned_arm(base: DiT, data, protocol: Protocol, method: str, seed: int, classifier, out_dir, *,
               ratio: float | None = None, scores: dict | None = None) -> dict:
    """One cell of the table: build ``method``'s model from ``base`` (prune ``ratio`` of the
    heads and fine-tune, fine-tune only for the control, nothing for the original), draw
    ``num_samples`` images with seed ``seed`` and evaluate them. Cached as JSON plus the samples
    (``out_dir/<method>_r<ratio>_s<seed>.json / .pt``). Returns the metrics dict with
    ``params`` and the pruned ``heads``."""
    from ..images import evaluate_images

    _checks.choice(method, "method", METHODS)
    ratio = protocol.ratio if ratio is None else _checks.unit_interval(ratio, "ratio", closed_left=True,
                                                                      closed_right=False)
    out_dir = Path(out_dir)
    stem = f"{method.replace(' ', '_')}_r{ratio:.2f}_s{seed}"
    path = out_dir / f"{stem}.json"
    if path.is_file():
        return json.loads(path.read_text())
    device = next(base.parameters()).device
    model, heads = copy.deepcopy(base).requires_grad_(True), {}
    arm = ARMS[method]
    if arm.importance is not None and ratio > 0:
        if arm.per_seed:
            score = importance(arm.importance, base,
                               generator=torch.Generator().manual_seed(1000 + seed))
        else:
            score = (scores or importances(base, data, protocol))[method]
        heads = select_heads(score, ratio)
        model = prune_heads(base, heads)
    if arm.fine_tune:
        fine_tune(model, data.train.to(device), protocol.fine_tuning(),
                  generator=torch.Generator(device=device).manual_seed(3000 + seed))
    samples = sample_images(model, protocol.num_samples, steps=protocol.sample_steps,
                            generator=torch.Generator(device=device).manual_seed(4000 + seed)).cpu()
    result = evaluate_images(samples, data, classifier)
    result.update(params=model.num_parameters(), heads={str(k): v for k, v in heads.items()}, method=method,
                  seed=seed, ratio=ratio)
    save_atomically(samples, out_dir / f"{stem}.pt")
    write_json(path, result)
    return result


def run_protocol(data, protocol: Protocol, out_dir, *, device="cpu", methods=METHODS, classifier=None,
                 progress: bool = False, log=print) -> dict[str, list[dict]]:
    """Algorithm 1 with controls over ``protocol.seeds`` seeds: train (or load) the base DiT,
    train the feature classifier on the held-out images unless ``classifier`` is given, then
    every ``method`` x seed cell (cached, so an interrupted run resumes). Returns
    ``{method: [metrics per seed]}`` and writes ``out_dir/results.json``."""
    from ..images import train_classifier

    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol must be a Protocol, got {type(protocol).__name__}")
    for method in methods:
        _checks.choice(method, "methods", METHODS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base, _ = train_base(data, protocol, out_dir, device=device, progress=progress)
    if classifier is None:
        classifier = train_classifier(data.held_out.to(device), data.held_out_labels.to(device),
                                      steps=protocol.classifier_steps, generator=torch.Generator().manual_seed(5))
    scores = importances(base, data, protocol)
    results = {}
    for method in methods:
        results[method] = [pruned_arm(base, data, protocol, method, seed, classifier, out_dir, scores=scores)
                           for seed in range(protocol.seeds)]
        log(f"done: {method}")
    write_json(out_dir / "results.json", {"protocol": asdict(protocol), "dataset": data.name,
                                           "n": int(data.train.shape[0]), "results": results})
    return results


def summarize(results: dict[str, list[dict]]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{method: {metric: (mean, std)}}`` over seeds (std with Bessel's correction; 0 for one seed)."""
    out = {}
    for method, runs in results.items():
        out[method] = {}
        for key in ("precision", "recall", "memorization", "fd", "params"):
            values = torch.tensor([float(r[key]) for r in runs], dtype=torch.float64)
            std = values.std().item() if len(values) > 1 else 0.0
            out[method][key] = (values.mean().item(), std)
    return out


def format_table(results: dict[str, list[dict]], fd_name: str = "FD") -> str:
    """Markdown table of mean +- std per method, with the paper's Table 1 row (CIFAR-10, FID)
    beside each method it reports."""
    summary = summarize(results)
    lines = [f"| model | precision | recall | memorization % | {fd_name} | params | paper: prec / rec / mem % / FID |",
             "|---|---|---|---|---|---|---|"]
    for method, row in summary.items():
        cells = [f"{row[k][0]:.2f} +- {row[k][1]:.2f}" for k in ("precision", "recall", "memorization", "fd")]
        paper = PAPER_TABLE1.get(method)
        paper_cell = " / ".join(f"{paper[k][0]:g}" for k in ("precision", "recall", "memorization", "fd")) \
            if paper else "-"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {row['params'][0]:,.0f} | {paper_cell} |")
    return "\n".join(lines)


TABLE1_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5)
# Part of every Table 1 cache folder's name: bumped when a change alters what a cached base holds.
TABLE1_VERSION = 2


# table1_seed's protocol settings default to the Protocol's (notebook 03's full CPU size): one
# source for the eleven values, which are also the keys of every committed Table 1 row.
_DIGITS = Protocol()


def _base_dir(n: int, seed: int, protocol: Protocol, probe_samples: int, first_probe: int) -> Path:
    """The cache folder of run ``seed``'s base DiT (and its arms' cells). Its name depends on
    what the base depends on; the pruning ratio is left out (every ratio shares the base)."""
    import hashlib

    from ..store import cache_dir

    key = {**asdict(protocol), "ratio": _DIGITS.ratio, "seeds": 1}
    tag = hashlib.sha256(json.dumps([n, seed, key, TABLE1_VERSION, probe_samples, first_probe],
                                    sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir("table1", f"n{n}_s{seed}_{tag}")


def _table1_base(n, seed, protocol, probe_samples, first_probe, dev):
    """``(base, data, probe)`` of run ``seed``: the base DiT trained (or read from its cache)
    with its memorization probe on the step grid, and the probe's numbers with the null rate."""
    from dataclasses import replace

    from ..images import image_memorized, load_digits

    protocol = replace(protocol, ratio=_DIGITS.ratio)  # the base does not depend on the ratio
    data = load_digits(n, generator=torch.Generator().manual_seed(0))
    grid = eval_steps(protocol.train_steps, first_probe, 1)

    def memorization_probe(step, model):
        # a fresh generator per evaluation: the probe has no state to checkpoint
        x = sample_images(model, probe_samples, steps=protocol.sample_steps,
                          generator=torch.Generator(device=dev).manual_seed(10 + seed))
        return {"memorization": 100 * image_memorized(x.cpu(), data.train).double().mean().item()}

    out_dir = _base_dir(n, seed, protocol, probe_samples, first_probe)
    base, extra = train_base(data, protocol, out_dir, device=dev, seed=seed,
                             callbacks=[memorization_probe], eval_at=grid)
    evals = [e for e in extra["evals"] if "memorization" in e]
    probe = {"steps": [int(e["step"]) for e in evals],
             "memorization": [e["memorization"] for e in evals]}
    if probe["steps"] != grid:
        raise RuntimeError(f"the cached base model in {str(out_dir)!r} holds probe steps "
                           f"{probe['steps']}, not {grid}; delete that folder to train it again")
    held = data.held_out[:protocol.num_samples]
    out = {"probe_steps": probe["steps"], "probe_memorization": probe["memorization"],
           "null_memorization": 100 * image_memorized(held, data.train).double().mean().item()}
    return base, data, out


def table1_seed(n: int, seed: int, preset: str = _DIGITS.preset,
                train_steps: int = _DIGITS.train_steps, train_lr: float = _DIGITS.train_lr,
                batch_size: int = _DIGITS.batch_size, finetune_steps: int = _DIGITS.finetune_steps,
                finetune_lr: float = _DIGITS.finetune_lr, ratio: float = _DIGITS.ratio,
                num_samples: int = _DIGITS.num_samples, sample_steps: int = _DIGITS.sample_steps,
                importance_batches: int = _DIGITS.importance_batches,
                classifier_steps: int = _DIGITS.classifier_steps, sweep_ratios=TABLE1_RATIOS,
                probe_samples: int = 200, first_probe: int = 250, curve_only: bool = False,
                device: str = "cpu") -> dict:
    """One run of Table 1 on ``n`` of scikit-learn's digits (the training set is the same for every
    ``seed``: seed 0 of :func:`labkit.images.load_digits`, as the paper fixes its CIFAR-10 subset).

    ``seed`` draws the base DiT's initial weights and training noise, the random heads, the
    fine-tuning and the sampler, so runs differ in everything but the data. The base is trained
    ``train_steps`` steps with a memorization probe (``probe_samples`` samples, 1/3 rule) on the
    step grid :func:`eval_steps` (``first_probe``, one per octave), then every arm of
    :data:`METHODS` at ``ratio``, and the ratio sweep (small-t importance and random pruning at
    each of ``sweep_ratios``). Models and samples are cached under the labkit cache folder, so an
    interrupted run resumes. ``curve_only`` stops after the probe curve (for ``labkit verify``).

    Returns ``probe_steps``, ``probe_memorization`` (lists), ``null_memorization`` (the 1/3 rule on
    held-out digits, percent), ``arms`` ({method: metrics}), ``sweep`` ({method: [metrics per
    ratio]}) and ``wall_s``.
    """
    from ..images import train_classifier

    start = time.perf_counter()
    dev = _checks.device(device)
    settings = locals()
    protocol = Protocol(**{f.name: settings[f.name] for f in fields(Protocol) if f.name != "seeds"},
                        seeds=1)
    base, data, out = _table1_base(n, seed, protocol, probe_samples, first_probe, dev)
    if curve_only:
        return out
    out_dir = _base_dir(n, seed, protocol, probe_samples, first_probe)
    classifier = train_classifier(data.held_out.to(dev), data.held_out_labels.to(dev), steps=classifier_steps,
                                  generator=torch.Generator().manual_seed(5))
    scores = importances(base, data, protocol)
    out["arms"] = {m: pruned_arm(base, data, protocol, m, seed, classifier, out_dir, scores=scores)
                   for m in METHODS}
    out["sweep"] = {m: [pruned_arm(base, data, protocol, m, seed, classifier, out_dir, ratio=r, scores=scores)
                        for r in sweep_ratios] for m in ("small-t importance", "random")}
    out["wall_s"] = round(time.perf_counter() - start, 2)
    return out


def table1_arm(n: int, seed: int, arm: str, ratio: float = _DIGITS.ratio,
               preset: str = _DIGITS.preset, train_steps: int = _DIGITS.train_steps,
               train_lr: float = _DIGITS.train_lr, batch_size: int = _DIGITS.batch_size,
               finetune_steps: int = _DIGITS.finetune_steps,
               finetune_lr: float = _DIGITS.finetune_lr, num_samples: int = _DIGITS.num_samples,
               sample_steps: int = _DIGITS.sample_steps,
               importance_batches: int = _DIGITS.importance_batches,
               classifier_steps: int = _DIGITS.classifier_steps, probe_samples: int = 200,
               first_probe: int = 250, curve_only: bool = False, device: str = "cpu") -> dict:
    """One cell of Table 1: the arm ``arm`` (a key of :data:`ARMS`) of run ``seed`` on ``n``
    digits, ``ratio`` of the heads pruned (the unpruned arms ignore it).

    The base DiT of a run is trained once and cached (the same cache folder for every arm and
    ratio of the run, see :func:`table1_seed`), so a run's arms share it and a new arm computes
    only its own cell. The arm's numbers equal those :func:`table1_seed` reports for it: the
    same base, classifier, importance scores and generators.

    Returns the arm's metrics (``memorization``, ``fd``, ``precision``, ``recall``,
    ``params``, ``heads``) with the base's ``probe_steps``, ``probe_memorization`` and
    ``null_memorization``; ``curve_only`` returns the probe alone (for ``labkit verify``).
    """
    from ..images import train_classifier

    _checks.choice(arm, "arm", METHODS)
    _checks.unit_interval(ratio, "ratio", closed_left=True, closed_right=False)
    start = time.perf_counter()
    dev = _checks.device(device)
    settings = {k: v for k, v in locals().items() if k in {f.name for f in fields(Protocol)}}
    protocol = Protocol(**{**settings, "ratio": _DIGITS.ratio}, seeds=1)
    base, data, out = _table1_base(n, seed, protocol, probe_samples, first_probe, dev)
    if curve_only:
        return out
    out_dir = _base_dir(n, seed, protocol, probe_samples, first_probe)
    classifier = train_classifier(data.held_out.to(dev), data.held_out_labels.to(dev),
                                  steps=classifier_steps,
                                  generator=torch.Generator().manual_seed(5))
    method = ARMS[arm]
    scores = None
    if method.importance is not None and not method.per_seed:
        scores = {arm: importance(method.importance, base, data.train.to(dev),
                                  batches=protocol.importance_batches,
                                  batch_size=protocol.batch_size,
                                  generator=torch.Generator(device=dev).manual_seed(2))}
    cell = pruned_arm(base, data, protocol, arm, seed, classifier, out_dir, ratio=ratio,
                      scores=scores)
    metrics = {k: v for k, v in cell.items() if k not in ("method", "seed", "ratio")}
    return {**metrics, **out, "wall_s": round(time.perf_counter() - start, 2)}


def split_seed_row(row: dict) -> list[dict]:
    """The rows of :func:`table1_arm` held by one row of :func:`table1_seed`: one per arm at the
    protocol's ratio and one per other ratio of its sweep, each with the run's probe. Values are
    copied, not recomputed (they are the same numbers: see :func:`table1_arm`); each row keeps
    the seed row's provenance and says what it was split from."""
    config = {k: v for k, v in row["config"].items() if k != "sweep_ratios"}
    probe = {k: row["result"][k] for k in ("probe_steps", "probe_memorization",
                                            "null_memorization")}
    cells = list(row["result"]["arms"].values())
    seen = {(c["method"], c["ratio"]) for c in cells}
    for entries in row["result"].get("sweep", {}).values():
        cells += [e for e in entries if (e["method"], e["ratio"]) not in seen]
    out = []
    for cell in cells:
        metrics = {k: v for k, v in cell.items() if k not in ("method", "seed", "ratio")}
        new = {"config": {**config, "arm": cell["method"], "ratio": cell["ratio"]},
               "result": {**metrics, **probe},
               "wall_s": round(row["wall_s"] / len(cells), 2),
               "split_from": {"point_fn": "labkit.experiments:table1_seed",
                              "wall_s": row["wall_s"], "cells": len(cells)}}
        for key in ("version", "provenance", "verified_by"):
            if key in row:
                new[key] = row[key]
        out.append(new)
    return out


def table1_runs(rows, seeds=None) -> list[dict]:
    """Table 1's rows (one per run, arm and ratio: :func:`table1_arm`) gathered per run, in seed
    order: ``{"seed", "n", "probe_steps", "probe_memorization", "null_memorization", "arms": {arm:
    metrics at the protocol's ratio}, "sweep": {arm: [metrics per ratio, ascending]},
    "sweep_ratios"}``. ``seeds`` keeps those runs only. A run holds whichever arms have rows."""
    runs = {}
    for row in sorted(rows, key=lambda r: (r["seed"], r["ratio"])):
        if seeds is not None and row["seed"] not in seeds:
            continue
        run = runs.setdefault(row["seed"], {
            "seed": row["seed"], "n": row["n"], "probe_steps": row["probe_steps"],
            "probe_memorization": row["probe_memorization"],
            "null_memorization": row["null_memorization"], "arms": {}, "sweep": {}})
        cell = {k: row[k] for k in ("memorization", "fd", "precision", "recall", "params",
                                    "heads")}
        cell.update(method=row["arm"], seed=row["seed"], ratio=row["ratio"])
        if row["ratio"] == _DIGITS.ratio:
            run["arms"][row["arm"]] = cell
        run["sweep"].setdefault(row["arm"], []).append(cell)
    for run in runs.values():
        run["sweep"] = {m: cells for m, cells in run["sweep"].items() if len(cells) > 1}
        ratios = {tuple(c["ratio"] for c in cells) for cells in run["sweep"].values()}
        run["sweep_ratios"] = list(ratios.pop()) if len(ratios) == 1 else []
    return [runs[s] for s in sorted(runs)]
