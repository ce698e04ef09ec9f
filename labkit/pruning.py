"""Head importance (Algorithm 2), head selection and structural pruning (Algorithm 1).

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
weight norms. The Table 1 protocol built from these pieces (train, score, prune, fine-tune,
sample and evaluate over seeds) is :mod:`labkit.experiments`; ``labkit prune`` runs it.
Introduced in ``notebooks/03_pruning_mitigation.ipynb``.
"""

from __future__ import annotations

import contextlib

import torch

from . import _checks, _moved
from .dit import DDPMTime, DiT, train_dit, with_heads
from .losses import dsm_noise_loss
from .train import Checkpoint, TrainConfig, _check_config, _legacy_arguments

__all__ = [
    "masked_heads", "head_importance", "magnitude_importance", "random_importance", "IMPORTANCE",
    "importance", "select_heads", "prune_heads", "fine_tune", "WINDOWS", "WindowTime",
    "jaccard",
]

def _attention(model: DiT) -> list:
    if not isinstance(model, DiT):
        raise TypeError(f"model must be a labkit.dit.DiT, got {type(model).__name__}")
    return [block.attn for block in model.blocks]


def _check_heads(model: DiT, heads, allow_emptying: bool = True) -> dict[int, list[int]]:
    """Validate ``{layer: [head, ...]}`` against ``model``; returns a clean sorted copy. Layer keys
    may be ints or decimal strings (``{"0": [1]}``, as ``json.load`` gives them back)."""
    layers = _attention(model)
    if not isinstance(heads, dict):
        raise TypeError(f"heads must be a dict {{layer: [head, ...]}}, got {type(heads).__name__}")
    clean, seen = {}, set()
    for layer, hs in heads.items():
        if isinstance(layer, str) and layer.isdecimal():  # JSON object keys (results.json) are strings
            layer = int(layer)
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(layers):
            raise ValueError(f"heads names layer {layer!r}; the model has layers 0..{len(layers) - 1}")
        if layer in seen:
            raise ValueError(f"heads names layer {layer} twice (as {layer} and {str(layer)!r}?)")
        seen.add(layer)
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
    layer has fewer heads; in the model's floating dtype, on the CPU."""
    dtype = next(model.parameters()).dtype
    out = torch.full((len(values), model.config.num_heads), float("nan"), dtype=dtype)
    for layer, v in enumerate(values):
        out[layer, : v.numel()] = v.detach().to(device="cpu", dtype=dtype)
    return out


def _layer_normalize(scores: torch.Tensor) -> torch.Tensor:
    """``I(h) = S(h) / sqrt(sum_{h' in layer} S(h')^2)`` on an (L, H) tensor (NaN-padded)."""
    norms = torch.sqrt(torch.nansum(scores**2, dim=1, keepdim=True)).clamp_min(1e-30)
    return scores / norms


# Windows of the DDPM step fraction u in [0, 1] (step 1 + round(999 u), see ddpm_time): thirds of
# the schedule, and the whole of it. In OU time: small t < 1.1, medium 1.1-4.5, large > 4.5.
WINDOWS = {"small": (0.0, 1 / 3), "medium": (1 / 3, 2 / 3), "large": (2 / 3, 1.0),
           "uniform": (0.0, 1.0)}


class WindowTime:
    """Time sampler on a window of the DDPM schedule: ``u ~ U[low, high]`` mapped to OU time by
    :func:`labkit.dit.ddpm_time`. ``sampler(n, generator, dtype, device) -> (n,)`` OU times.
    ``WindowTime(0, 1)`` draws exactly what ``DDPMTime("uniform")`` draws from the same
    generator."""

    def __init__(self, low: float, high: float):
        for value, name in ((low, "low"), (high, "high")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if low >= high:
            raise ValueError(f"low must be below high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def __repr__(self) -> str:
        return f"WindowTime({self.low:g}, {self.high:g})"

    def __call__(self, n: int, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        from .dit import ddpm_time

        n = _checks.positive_int(n, "n")
        u = torch.rand(n, generator=_checks.generator(generator), dtype=torch.float64,
                       device=None if generator is None else generator.device)
        u = (self.low + (self.high - self.low) * u).clamp(0, 1)
        return ddpm_time(u).to(dtype=dtype, device=device)


def head_importance(model: DiT, images: torch.Tensor, *, time_dist: str = "small", batches: int = 16,
                    batch_size: int = 64, normalize: bool = True,
                    generator: torch.Generator | None = None,
                    window: tuple[float, float] | None = None) -> torch.Tensor:
    """Algorithm 2: ``S(h) = mean over batches of |d L_batch / d xi_h|`` -> (L, H) scores.

    ``images``: (n, C, H, W) training images; each batch draws ``batch_size`` of them, times from
    ``time_dist`` (``"small"``: u ~ Beta(0.8, 2), the paper's; ``"uniform"``: u ~ U[0, 1], the
    ablation) and fresh noise, all from ``generator``. ``L_batch`` is the batch-mean
    noise-prediction loss. ``window=(low, high)`` replaces ``time_dist`` by u ~ U[low, high]
    (:class:`WindowTime`; :data:`WINDOWS` names four). With ``normalize`` each layer's scores
    are divided by their Euclidean norm. Pruned layers with fewer heads are NaN-padded to ``config.num_heads``.
    """
    layers = _attention(model)
    _checks.choice(time_dist, "time_dist", ("small", "uniform"))
    batches = _checks.positive_int(batches, "batches")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    _checks.generator(generator)
    _check_image_batch(model, images)
    device = next(model.parameters()).device
    sampler = DDPMTime(time_dist) if window is None else WindowTime(*_window(window))
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


def _small_t(model: DiT, images, batches: int, batch_size: int, generator) -> torch.Tensor:
    return head_importance(model, images, time_dist="small", batches=batches, batch_size=batch_size,
                           generator=generator)


def _uniform_t(model: DiT, images, batches: int, batch_size: int, generator) -> torch.Tensor:
    return head_importance(model, images, time_dist="uniform", batches=batches,
                           batch_size=batch_size, generator=generator)


def _magnitude(model: DiT, images, batches: int, batch_size: int, generator) -> torch.Tensor:
    return magnitude_importance(model)


def _random(model: DiT, images, batches: int, batch_size: int, generator) -> torch.Tensor:
    return random_importance(model, generator)


def _window(window) -> tuple[float, float]:
    if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") or len(window) != 2:
        raise ValueError(f"window must be a pair (low, high) in [0, 1], got {window!r}")
    return tuple(window)


def _windowed(name: str):
    def method(model: DiT, images, batches: int, batch_size: int, generator) -> torch.Tensor:
        return head_importance(model, images, window=WINDOWS[name], batches=batches,
                               batch_size=batch_size, generator=generator)

    method.__name__ = method.__qualname__ = f"_window_{name}"
    method.__doc__ = f"Algorithm 2 with u ~ U{list(WINDOWS[name])} (the {name} window of t)."
    return method


# The registry of head-importance methods, each ``method(model, images, batches, batch_size,
# generator) -> (L, H)``: Algorithm 2 at small or uniform times, the two baselines, and
# Algorithm 2 restricted to a window of t (``"window-small"`` ... ``"window-uniform"``, see
# :data:`WINDOWS`; notebook 04 asks in which window memorization lives).
IMPORTANCE = {"small-t": _small_t, "uniform-t": _uniform_t, "magnitude": _magnitude,
              "random": _random, **{f"window-{w}": _windowed(w) for w in WINDOWS}}
_DATA_METHODS = ("small-t", "uniform-t", *(f"window-{w}" for w in WINDOWS))


def importance(method: str, model: DiT, images: torch.Tensor | None = None, *, batches: int = 16,
               batch_size: int = 64, generator: torch.Generator | None = None) -> torch.Tensor:
    """Head scores (L, H) by a method of :data:`IMPORTANCE`: ``"small-t"`` / ``"uniform-t"``
    (:func:`head_importance` on ``images`` at small or uniform times), ``"window-small"``,
    ``"-medium"``, ``"-large"``, ``"-uniform"`` (on ``images``, at u uniform in that window of
    :data:`WINDOWS`), ``"magnitude"`` (:func:`magnitude_importance`) or ``"random"``
    (:func:`random_importance`)."""
    _checks.choice(method, "method", tuple(IMPORTANCE))
    if method in _DATA_METHODS and images is None:
        raise ValueError(f"method {method!r} scores heads on data: pass images (n, C, H, W)")
    return IMPORTANCE[method](model, images, batches, batch_size, generator)


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


def _head_set(heads, name: str) -> set:
    if not isinstance(heads, dict):
        raise TypeError(f"{name} must be a dict {{layer: [head, ...]}}, got {type(heads).__name__}")
    out = set()
    for layer, hs in heads.items():
        if isinstance(layer, str) and layer.isdecimal():
            layer = int(layer)
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
            raise ValueError(f"{name} names layer {layer!r}; layers are non-negative ints")
        if isinstance(hs, (str, bytes)) or not hasattr(hs, "__iter__"):
            raise ValueError(f"{name}[{layer}] must be a list of heads, got {hs!r}")
        for h in hs:
            if isinstance(h, bool) or not isinstance(h, int) or h < 0:
                raise ValueError(f"{name}[{layer}] names head {h!r}; heads are non-negative ints")
            out.add((layer, h))
    return out


def jaccard(heads_a, heads_b) -> float:
    """The Jaccard overlap ``|A & B| / |A | B|`` of two pruned head sets ``{layer: [head, ...]}``
    (layer keys may be decimal strings, as JSON stores them): 1 for the same heads, 0 for
    disjoint ones, 1 when both are empty."""
    a, b = _head_set(heads_a, "heads_a"), _head_set(heads_b, "heads_b")
    return 1.0 if not (a or b) else len(a & b) / len(a | b)


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


def fine_tune(model: DiT, images: torch.Tensor, config: TrainConfig | None = None, *,
              generator: torch.Generator | None = None, checkpoint: Checkpoint | str | None = None,
              progress: bool = False, **legacy):
    """Algorithm 1's last step: train ``model`` (in place) on the same images with the training
    loss (uniform DDPM steps, noise prediction, AdamW), by :func:`labkit.dit.train_dit`.
    ``config``: a :class:`labkit.train.TrainConfig`, e.g. ``TrainConfig.preset("fine_tune",
    steps=200)`` (batches of 64 at lr 1e-4) or :meth:`labkit.experiments.Protocol.fine_tuning`.
    Returns the History. The keywords of labkit 0.2 (``steps=``, ``batch_size=``, ``lr=``,
    ``checkpoint_path=``; without ``config``, on top of the ``"fine_tune"`` preset) still work,
    with a ``DeprecationWarning``, until labkit 0.3."""
    config, _, checkpoint = _legacy_arguments("labkit.pruning.fine_tune", config, None,
                                              checkpoint, legacy, preset="fine_tune")
    return train_dit(model, images, _check_config(config), generator=generator,
                     checkpoint=checkpoint, progress=progress)


def _check_image_batch(model: DiT, images) -> None:
    c = model.config
    if not isinstance(images, torch.Tensor) or images.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError("images must be a floating tensor of shape (n, C, H, W)")
    if images.ndim != 4 or tuple(images.shape[1:]) != (c.channels, c.image_size, c.image_size) or not len(images):
        raise ValueError(f"images must have shape (n, {c.channels}, {c.image_size}, {c.image_size}), "
                         f"got {tuple(images.shape)}")


# The Table 1 protocol and its command line moved to labkit.experiments and labkit.cli.
__getattr__ = _moved(__name__, {name: f"labkit.experiments.{name}" for name in (
    "PAPER_TABLE1", "METHODS", "Protocol", "CIFAR_PROTOCOL", "train_base", "importances", "pruned_arm",
    "run_protocol", "summarize", "format_table")} | {"main": "labkit.cli.prune_main"},
    remove_in="0.3")
