"""Head importance (Algorithm 2), head selection and structural pruning (Algorithm 1), and the
paper-scale command line that reproduces Table 1.

Every attention head ``h`` of a :class:`labkit.dit.DiT` carries a gate ``xi_h`` (1 by default).
Algorithm 2 scores a head by ``S(h) = E |dL/d xi_h|``, the loss being the noise-prediction
loss at times drawn mostly small (``u ~ Beta(0.8, 2)`` -> DDPM step ``u * 1000`` -> OU time,
see :func:`labkit.dit.ddpm_time`), and normalises within each layer:
``I(h) = S(h) / sqrt(sum_{h' in layer} S(h')^2)``. Algorithm 1 removes the fraction ``eta`` of
heads with the lowest ``I(h)`` and fine-tunes on the same data. The idea: heads that matter at
small t serve the empirical score, i.e. memorization.

Heads are named ``{layer: [head, ...]}``. :func:`masked_heads` switches heads off in place for a
``with`` block; :func:`prune_heads` returns a smaller DiT (narrower qkv and output projections)
that computes exactly what the gated model computes. Baselines: random heads and the smallest
weight norms. ``python -m labkit.pruning`` (or ``labkit-prune``) runs the whole protocol:
train, score, prune, fine-tune, sample and evaluate over several seeds, on the digits (CPU)
or on a local CIFAR-10 copy (GPU). Introduced in ``notebooks/03_pruning_mitigation.ipynb``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import _checks
from .dit import PRESETS, DDPMTime, DiT, load_dit, sample_images, save_dit, train_dit, with_heads
from .train import dsm_noise_loss, save_atomically

__all__ = [
    "masked_heads", "head_importance", "magnitude_importance", "random_importance", "select_heads",
    "prune_heads", "fine_tune", "PAPER_TABLE1", "METHODS", "Protocol", "CIFAR_PROTOCOL", "train_base", "importances",
    "pruned_arm", "run_protocol", "summarize", "format_table", "main",
]

# Table 1 of the paper: CIFAR-10 5,000-image subset, DiT, 20% of heads pruned, mean +- std over 5 runs.
PAPER_TABLE1 = {
    "original": {"precision": (0.39, 0.01), "recall": (0.08, 0.01), "memorization": (73.82, 1.12), "fd": (15.47, 0.28)},
    "small-t importance": {"precision": (0.33, 0.02), "recall": (0.12, 0.01), "memorization": (68.58, 0.77), "fd": (15.07, 0.33)},
    "random": {"precision": (0.30, 0.02), "recall": (0.09, 0.01), "memorization": (66.87, 0.94), "fd": (17.14, 0.25)},
}
# The protocol's arms: the paper's three plus a fine-tuned-but-unpruned control and two criteria.
METHODS = ("original", "fine-tuned control", "small-t importance", "uniform-t importance", "random", "magnitude")


def _attention(model: DiT) -> list:
    if not isinstance(model, DiT):
        raise TypeError(f"model must be a labkit.dit.DiT, got {type(model).__name__}")
    return [block.attn for block in model.blocks]


def _check_heads(model: DiT, heads, allow_emptying: bool = True) -> dict[int, list[int]]:
    """Validate ``{layer: [head, ...]}`` against ``model``; returns a clean sorted copy."""
    layers = _attention(model)
    if not isinstance(heads, dict):
        raise TypeError(f"heads must be a dict {{layer: [head, ...]}}, got {type(heads).__name__}")
    clean = {}
    for layer, hs in heads.items():
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(layers):
            raise ValueError(f"heads names layer {layer!r}; the model has layers 0..{len(layers) - 1}")
        hs = list(hs)
        num = layers[layer].num_heads
        if any(isinstance(h, bool) or not isinstance(h, int) or not 0 <= h < num for h in hs):
            raise ValueError(f"heads[{layer}] = {hs} names unknown heads; layer {layer} has heads 0..{num - 1}")
        if len(set(hs)) != len(hs):
            raise ValueError(f"heads[{layer}] = {hs} repeats a head")
        if not allow_emptying and len(hs) == num:
            raise ValueError(f"heads[{layer}] removes all {num} heads of layer {layer}; keep at least one")
        if hs:
            clean[layer] = sorted(hs)
    return clean


@contextlib.contextmanager
def masked_heads(model: DiT, heads):
    """``with masked_heads(model, {0: [1, 3]}):`` sets those heads' gates to 0, restores them after."""
    heads = _check_heads(model, heads)
    layers = _attention(model)
    saved = [attn.xi.detach().clone() for attn in layers]
    try:
        with torch.no_grad():
            for layer, hs in heads.items():
                layers[layer].xi[hs] = 0.0
        yield model
    finally:
        with torch.no_grad():
            for attn, xi in zip(layers, saved):
                attn.xi.copy_(xi)


def _per_layer(model: DiT, values: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-layer head scores into (L, H) with H = config.num_heads, NaN where a pruned
    layer has fewer heads."""
    out = torch.full((len(values), model.config.num_heads), float("nan"))
    for layer, v in enumerate(values):
        out[layer, : v.numel()] = v.detach().float().cpu()
    return out


def _layer_normalize(scores: torch.Tensor) -> torch.Tensor:
    """``I(h) = S(h) / sqrt(sum_{h' in layer} S(h')^2)`` on an (L, H) tensor (NaN-padded)."""
    norms = torch.sqrt(torch.nansum(scores**2, dim=1, keepdim=True)).clamp_min(1e-30)
    return scores / norms


def head_importance(model: DiT, images: torch.Tensor, *, time_dist: str = "small", batches: int = 16,
                    batch_size: int = 64, normalize: bool = True,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 2: ``S(h) = mean over batches of |d L_batch / d xi_h|`` -> (L, H) scores.

    ``images``: (n, C, H, W) training images; each batch draws ``batch_size`` of them, times from
    ``time_dist`` (``"small"``: u ~ Beta(0.8, 2), the paper's; ``"uniform"``: u ~ U[0, 1], the
    ablation) and fresh noise, all from ``generator``. ``L_batch`` is the batch-mean
    noise-prediction loss. With ``normalize`` each layer's scores are divided by their
    Euclidean norm. Pruned layers with fewer heads are NaN-padded to ``config.num_heads``.
    """
    layers = _attention(model)
    _checks.choice(time_dist, "time_dist", ("small", "uniform"))
    batches = _checks.positive_int(batches, "batches")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    _checks.generator(generator)
    _check_image_batch(model, images)
    device = next(model.parameters()).device
    sampler = DDPMTime(time_dist)
    was_training = model.training
    model.eval()
    totals = [torch.zeros_like(attn.xi) for attn in layers]
    try:
        for attn in layers:
            attn.xi.requires_grad_(True)
        for _ in range(batches):
            idx = torch.randint(images.shape[0], (batch_size,), generator=generator,
                                device=None if generator is None else generator.device)
            batch = images[idx.to(images.device)].to(device)
            loss = dsm_noise_loss(model, batch, sampler, generator=generator).mean()
            grads = torch.autograd.grad(loss, [attn.xi for attn in layers])
            for total, grad in zip(totals, grads):
                total += grad.abs()
    finally:
        for attn in layers:
            attn.xi.requires_grad_(False)
        model.train(was_training)
    scores = _per_layer(model, [total / batches for total in totals])
    return _layer_normalize(scores) if normalize else scores


def magnitude_importance(model: DiT) -> torch.Tensor:
    """Weight-magnitude baseline: the norm of each head's q, k, v rows and output-projection
    columns (times its gate), layer-normalised like Algorithm 2. Returns (L, H)."""
    values = []
    for attn in _attention(model):
        H, hd = attn.num_heads, attn.head_dim
        w_qkv = attn.qkv.weight.detach().reshape(3, H, hd, -1)                 # (3, H, hd, hidden)
        w_out = attn.proj.weight.detach().reshape(-1, H, hd)                   # (hidden, H, hd)
        norms = w_qkv.pow(2).sum((0, 2, 3)) + (attn.xi.detach()[None, :, None] * w_out).pow(2).sum((0, 2))
        values.append(norms.sqrt())
    return _layer_normalize(_per_layer(model, values))


def random_importance(model: DiT, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random baseline: i.i.d. uniform scores, so :func:`select_heads` picks random heads. (L, H)."""
    _checks.generator(generator)
    return _per_layer(model, [torch.rand(attn.num_heads, generator=generator) for attn in _attention(model)])


def select_heads(importance: torch.Tensor, ratio: float) -> dict[int, list[int]]:
    """The ``round(ratio * #heads)`` heads with the lowest scores across all layers, never all
    heads of a layer (a layer's last head is skipped in favour of the next lowest elsewhere).

    ``importance``: (L, H) scores (NaN marks absent heads); ``ratio`` in [0, 1).
    Returns ``{layer: [head, ...]}``.
    """
    if not isinstance(importance, torch.Tensor) or importance.ndim != 2:
        raise ValueError("importance must be an (L, H) tensor of head scores")
    ratio = _checks.unit_interval(ratio, "ratio", closed_left=True, closed_right=False)
    present = ~torch.isnan(importance)
    if (importance[present] < 0).any() or not torch.isfinite(importance[present]).all():
        raise ValueError("importance must hold finite, non-negative scores (NaN only for absent heads)")
    per_layer = present.sum(1).tolist()
    k = round(ratio * sum(per_layer))
    flat = torch.where(present, importance, torch.inf).flatten()
    order = torch.argsort(flat, stable=True)
    removed = [0] * len(per_layer)
    heads: dict[int, list[int]] = {}
    for index in order.tolist():
        if sum(removed) == k:
            break
        layer, head = divmod(index, importance.shape[1])
        if not present[layer, head] or removed[layer] + 1 >= per_layer[layer]:
            continue
        removed[layer] += 1
        heads.setdefault(layer, []).append(head)
    if sum(removed) < k:
        raise ValueError(f"ratio={ratio} asks for {k} heads but only {sum(removed)} can go while "
                         "every layer keeps one head")
    return {layer: sorted(hs) for layer, hs in sorted(heads.items())}


def prune_heads(model: DiT, heads) -> DiT:
    """Remove ``heads`` structurally: a new DiT whose blocks have narrower qkv and output
    projections (``config.heads_per_layer`` records the counts). It computes what ``model``
    computes inside ``masked_heads(model, heads)``, has fewer parameters and saves and loads
    like any DiT. ``model`` is left unchanged. Removing every head of a layer is an error."""
    heads = _check_heads(model, heads, allow_emptying=False)
    layers = _attention(model)
    kept = [[h for h in range(attn.num_heads) if h not in heads.get(i, [])] for i, attn in enumerate(layers)]
    reference = next(model.parameters())
    pruned = DiT(with_heads(model.config, [len(k) for k in kept])).to(device=reference.device, dtype=reference.dtype)
    state = model.state_dict()
    for i, (attn, keep) in enumerate(zip(layers, kept)):
        H, hd = attn.num_heads, attn.head_dim
        keep = torch.tensor(keep, dtype=torch.long, device=attn.xi.device)
        prefix = f"blocks.{i}.attn."
        w = state[prefix + "qkv.weight"].reshape(3, H, hd, -1)[:, keep]         # (3, H', hd, hidden)
        state[prefix + "qkv.weight"] = w.reshape(3 * len(keep) * hd, -1)
        b = state[prefix + "qkv.bias"].reshape(3, H, hd)[:, keep]                # (3, H', hd)
        state[prefix + "qkv.bias"] = b.reshape(-1)
        w = state[prefix + "proj.weight"].reshape(-1, H, hd)[:, keep]            # (hidden, H', hd)
        state[prefix + "proj.weight"] = w.reshape(w.shape[0], -1)
        state[prefix + "xi"] = state[prefix + "xi"][keep]
    pruned.load_state_dict(state)
    return pruned.train(model.training)


def fine_tune(model: DiT, images: torch.Tensor, *, steps: int, batch_size: int = 64, lr: float = 1e-4,
              generator: torch.Generator | None = None, checkpoint_path=None, progress: bool = False):
    """Algorithm 1's last step: train ``model`` (in place) on the same images with the training
    loss (uniform DDPM steps, noise prediction, AdamW). Returns the training History."""
    return train_dit(model, images, steps=steps, batch_size=batch_size, lr=lr, generator=generator,
                     checkpoint_path=checkpoint_path, progress=progress)


def _check_image_batch(model: DiT, images) -> None:
    c = model.config
    if not isinstance(images, torch.Tensor) or images.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError("images must be a floating tensor of shape (n, C, H, W)")
    if images.ndim != 4 or tuple(images.shape[1:]) != (c.channels, c.image_size, c.image_size) or not len(images):
        raise ValueError(f"images must have shape (n, {c.channels}, {c.image_size}, {c.image_size}), "
                         f"got {tuple(images.shape)}")


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


# The paper's scale (CIFAR-10 5,000-image subset, a DiT-S/2-sized model, 5 runs). The paper does
# not state its training, fine-tuning or sampling settings; these are labkit's choices for a GPU.
CIFAR_PROTOCOL = Protocol(preset="cifar", train_steps=100_000, train_lr=1e-4, batch_size=128, finetune_steps=10_000,
                          finetune_lr=1e-4, seeds=5, num_samples=5000, sample_steps=100, importance_batches=64,
                          classifier_steps=3000)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


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
        _write_json(path, stamp)


def train_base(data, protocol: Protocol, out_dir, *, device="cpu", callbacks=(), eval_every=None,
               progress: bool = False) -> tuple[DiT, dict]:
    """Train (or load) the original DiT on ``data.train``; cached as ``out_dir/base.pt`` and
    resumed from ``out_dir/base_train.pt`` after an interruption. Returns ``(model, extra)``
    where ``extra["evals"]`` holds the callbacks' history (``[]`` without callbacks)."""
    out_dir = Path(out_dir)
    _claim(out_dir, data, protocol)
    path = out_dir / "base.pt"
    if path.is_file():
        model, extra = load_dit(path, map_location=device)
        return model, extra
    model = DiT(PRESETS[protocol.preset], generator=torch.Generator().manual_seed(0)).to(device)
    history = train_dit(model, data.train.to(device), steps=protocol.train_steps, batch_size=protocol.batch_size,
                        lr=protocol.train_lr, generator=torch.Generator(device=device).manual_seed(1),
                        callbacks=callbacks, eval_every=eval_every, checkpoint_path=out_dir / "base_train.pt",
                        progress=progress)
    extra = {"evals": history.evals, "loss": history.loss}
    save_dit(model, path, **extra)
    (out_dir / "base_train.pt").unlink(missing_ok=True)
    return model, extra


def importances(model: DiT, data, protocol: Protocol) -> dict[str, torch.Tensor]:
    """The four head scores of the protocol, (L, H) each: small-t and uniform-t Algorithm 2,
    weight magnitude, and (per seed, in :func:`pruned_arm`) random."""
    common = dict(batches=protocol.importance_batches, batch_size=protocol.batch_size)
    device = next(model.parameters()).device
    return {
        "small-t importance": head_importance(model, data.train.to(device), time_dist="small",
                                              generator=torch.Generator(device=device).manual_seed(2), **common),
        "uniform-t importance": head_importance(model, data.train.to(device), time_dist="uniform",
                                                generator=torch.Generator(device=device).manual_seed(2), **common),
        "magnitude": magnitude_importance(model),
    }


def pruned_arm(base: DiT, data, protocol: Protocol, method: str, seed: int, classifier, out_dir, *,
               ratio: float | None = None, scores: dict | None = None) -> dict:
    """One cell of the table: build ``method``'s model from ``base`` (prune ``ratio`` of the
    heads and fine-tune, fine-tune only for the control, nothing for the original), draw
    ``num_samples`` images with seed ``seed`` and evaluate them. Cached as JSON plus the samples
    (``out_dir/<method>_r<ratio>_s<seed>.json / .pt``). Returns the metrics dict with
    ``params`` and the pruned ``heads``."""
    from .images import evaluate_images

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
    if method not in ("original", "fine-tuned control") and ratio > 0:
        if method == "random":
            score = random_importance(base, torch.Generator().manual_seed(1000 + seed))
        else:
            score = (scores or importances(base, data, protocol))[method]
        heads = select_heads(score, ratio)
        model = prune_heads(base, heads)
    if method != "original":
        fine_tune(model, data.train.to(device), steps=protocol.finetune_steps, batch_size=protocol.batch_size,
                  lr=protocol.finetune_lr, generator=torch.Generator(device=device).manual_seed(3000 + seed))
    samples = sample_images(model, protocol.num_samples, steps=protocol.sample_steps,
                            generator=torch.Generator(device=device).manual_seed(4000 + seed)).cpu()
    result = evaluate_images(samples, data, classifier)
    result.update(params=model.num_parameters(), heads={str(k): v for k, v in heads.items()}, method=method,
                  seed=seed, ratio=ratio)
    save_atomically(samples, out_dir / f"{stem}.pt")
    _write_json(path, result)
    return result


def run_protocol(data, protocol: Protocol, out_dir, *, device="cpu", methods=METHODS, classifier=None,
                 progress: bool = False, log=print) -> dict[str, list[dict]]:
    """Algorithm 1 with controls over ``protocol.seeds`` seeds: train (or load) the base DiT,
    train the feature classifier on the held-out images unless ``classifier`` is given, then
    every ``method`` x seed cell (cached, so an interrupted run resumes). Returns
    ``{method: [metrics per seed]}`` and writes ``out_dir/results.json``."""
    from .images import train_classifier

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
    _write_json(out_dir / "results.json", {"protocol": asdict(protocol), "dataset": data.name,
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


def main(argv=None) -> int:
    """``python -m labkit.pruning --dataset digits|cifar10 [--data-root DIR] [--device cpu|cuda]
    [--seeds 5] ...``: the Table-1 protocol end to end; prints the table beside the paper's and
    writes ``results.json`` (plus cached models and samples) to ``--out``."""
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
    settings = asdict(CIFAR_PROTOCOL if cifar else Protocol())
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    protocol = Protocol(**settings)
    generator = torch.Generator().manual_seed(0)
    n = args.n or (5000 if cifar else 32)
    data = load_cifar10(args.data_root, n=n, generator=generator) if cifar else load_digits(n, generator=generator)
    if data.shape != (PRESETS[protocol.preset].channels,) + (PRESETS[protocol.preset].image_size,) * 2:
        parser.error(f"--preset {protocol.preset} does not fit {args.dataset} images of shape {data.shape}")
    results = run_protocol(data, protocol, args.out, device=args.device, progress=args.progress,
                           log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"{args.dataset}: n = {n}, {protocol.ratio:.0%} of heads pruned, {protocol.seeds} seeds, "
          f"FD in the features of labkit's {args.dataset} classifier (not Inception: not FID)")
    print(format_table(results, fd_name=f"FD ({args.dataset} classifier)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
