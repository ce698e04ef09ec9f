"""The training loop shared by the MLPs of notebooks 01-02 and the DiT of notebook 03.

:func:`train` ``(model, loss_fn, data, config)`` is a plain loop: shuffled mini-batches,
Adam/AdamW/SGD, optional linear warm-up, gradient clipping and EMA, evaluation callbacks, a
tqdm bar, and atomic, resumable checkpoints. How it optimizes is one :class:`TrainConfig`
(:meth:`TrainConfig.preset` gives the named settings of :data:`TRAIN_PRESETS`); where it keeps
its resumable state is a :class:`Checkpoint`. A checkpoint carries a fingerprint of its run
(the data's shape and SHA-256, the model's class, config and parameter shapes, the loss
function with its bound arguments such as the time sampler, and the step count) and resumes
only the same run. Everything random comes from one ``generator``, so a fixed seed gives
identical weights, and a run resumed from a checkpoint ends at exactly the weights of an
uninterrupted one. The loss it is used with, :func:`labkit.losses.dsm_noise_loss` (DSM weighted
by ``sigma_t^2``, i.e. noise prediction), and its time samplers live in :mod:`labkit.losses`.
Introduced in ``notebooks/01_estimation_separation.ipynb``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import inspect
import math
import os
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from . import _checks, _deprecated, _moved, _shim

__all__ = [
    "History",
    "TrainConfig",
    "TRAIN_PRESETS",
    "Checkpoint",
    "train",
    "load_checkpoint",
    "save_atomically",
]


# --------------------------------------------------------------------------------------------
# History, batches, EMA, checkpoints
# --------------------------------------------------------------------------------------------

@dataclass
class History:
    """What :func:`train` records.

    ``loss[s]``: mean training loss of step ``s + 1``. ``evals``: one dict per evaluation,
    ``{"step": s, **merged callback outputs}``. ``ema``: the EMA copy of the model (None
    without ``ema_decay``).
    """

    loss: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    ema: nn.Module | None = None

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """``(steps, values)`` of one evaluated quantity, e.g. ``history.series("memorized")``."""
        rows = [e for e in self.evals if key in e]
        if not rows:
            raise KeyError(f"no evaluation recorded {key!r}; recorded: "
                           f"{sorted({k for e in self.evals for k in e})}")
        return [e["step"] for e in rows], [e[key] for e in rows]

    def state_dict(self) -> dict:
        return {"loss": list(self.loss), "evals": [dict(e) for e in self.evals]}

    def load_state_dict(self, state: dict) -> None:
        self.loss = list(state["loss"])
        self.evals = [dict(e) for e in state["evals"]]


class _Batches:
    """Mini-batches without replacement: a fresh permutation per epoch, the last incomplete
    batch dropped. A batch as large as the data set means full-batch training."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None, device):
        self.n, self.batch_size = n, min(batch_size, n)
        self.generator, self.device = generator, device
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> torch.Tensor | None:
        """Indices of the next batch, or None for "the whole data set"."""
        if self.batch_size == self.n:
            return None
        if self.perm is None or self.pos + self.batch_size > self.n:
            self.perm = torch.randperm(self.n, generator=self.generator, device=self.device)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict:
        return {"perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        self.pos = int(state["pos"])


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def save_atomically(obj, path) -> None:
    """``torch.save(obj, path)`` through a tmp file, ``fsync`` and ``os.replace``: a crash never
    leaves a truncated file at ``path`` (:func:`labkit.store.save_torch`). Used for training
    checkpoints, DiT checkpoints and samples."""
    from .store import save_torch

    save_torch(obj, path)


def load_checkpoint(path, model: nn.Module | None = None, use_ema: bool = False,
                    map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`train` (``torch.load(..., weights_only=True)``).

    Returns the dict (keys ``model``, ``optimizer``, ``ema``, ``step``, ``generator``,
    ``batches``, ``history``, ``config``, ``fingerprint``). With ``model`` given, also loads the
    trained weights into it (the EMA weights when ``use_ema``), after checking that its class,
    config and parameter shapes are the checkpoint's (ValueError naming what differs).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path must be an existing checkpoint file, got {str(path)!r}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if model is not None:
        if use_ema and ckpt["ema"] is None:
            raise ValueError("use_ema=True but this checkpoint was trained without ema_decay")
        if "fingerprint" in ckpt:
            _check_fingerprint(ckpt, {"model": _model_fingerprint(model)}, path, parts=("model",))
        model.load_state_dict(ckpt["ema"] if use_ema else ckpt["model"])
    return ckpt


def _describe(obj, depth: int = 0):
    """A JSON description of a loss function, a time sampler or a config, stable across runs:
    functions by qualified name, partials with their bound arguments, dataclasses and plain
    objects by class and attributes, tensors by shape, dtype and content hash."""
    if depth > 6:
        return repr(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_describe(v, depth + 1) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _describe(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, torch.Tensor):
        return {"shape": list(obj.shape), "dtype": str(obj.dtype), "sha256": _digest(obj)}
    if isinstance(obj, functools.partial):
        return {"function": _describe(obj.func, depth + 1), "args": _describe(list(obj.args), depth + 1),
                **{k: _describe(v, depth + 1) for k, v in sorted(obj.keywords.items())}}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.ismethod(obj) or isinstance(obj, type):
        return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if isinstance(obj, nn.Module):
        return {"class": name}
    if dataclasses.is_dataclass(obj):
        return {"class": name, **{f.name: _describe(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj)}}
    if hasattr(obj, "__dict__"):
        return {"class": name, **{k: _describe(v, depth + 1) for k, v in sorted(vars(obj).items())}}
    return {"class": name}


def _digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's bytes (any dtype, any device)."""
    raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    return hashlib.sha256(raw.numpy().tobytes()).hexdigest()


def _model_fingerprint(model: nn.Module) -> dict:
    return {"class": f"{type(model).__module__}.{type(model).__qualname__}",
            "config": _describe(getattr(model, "config", None)),
            "state": {k: list(v.shape) for k, v in model.state_dict().items()}}


def _fingerprint(model: nn.Module, loss_fn, data: torch.Tensor, steps: int) -> dict:
    """What a checkpoint must match to be resumed: data, model, loss (with its time sampler), steps."""
    return {"data": {"shape": list(data.shape), "dtype": str(data.dtype), "sha256": _digest(data)},
            "model": _model_fingerprint(model), "loss_fn": _describe(loss_fn), "steps": steps}


def _differences(old, new, where: str = "") -> list[str]:
    """``"path: old -> new"`` for every leaf where two fingerprints differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(key, "(absent)"), new.get(key, "(absent)"), f"{where}.{key}" if where else str(key))
        return out
    if old == new:
        return []
    short = lambda v: (repr(v)[:60] + "...") if len(repr(v)) > 63 else repr(v)
    return [f"{where}: {short(old)} -> {short(new)}"]


# Names a fingerprint written by labkit 0.2 gives the loss and its time samplers, by their
# current names: a checkpoint of 0.2 resumes the same run under 0.3.
_RENAMED = {f"labkit.train.{name}": f"labkit.losses.{name}"
            for name in ("UniformTime", "LogUniformTime", "dsm_noise_loss")}


def _current_names(obj):
    """``obj`` (a fingerprint) with the names of :data:`_RENAMED` replaced by the new ones."""
    if isinstance(obj, dict):
        return {k: _current_names(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_current_names(v) for v in obj]
    return _RENAMED.get(obj, obj) if isinstance(obj, str) else obj


def _check_fingerprint(ckpt: dict, fingerprint: dict, path: Path, parts=("data", "model", "loss_fn", "steps")) -> None:
    old = ckpt.get("fingerprint")
    old = None if old is None else _current_names(old)
    if old is None:
        raise ValueError(f"checkpoint {str(path)!r} has no fingerprint (written by labkit < 0.2), so it cannot be "
                         "checked against this run; delete it to train again")
    diffs = [d for part in parts for d in _differences({part: old.get(part)}, {part: fingerprint.get(part)})]
    if diffs:
        more = f"; and {len(diffs) - 6} more" if len(diffs) > 6 else ""
        raise ValueError(f"checkpoint {str(path)!r} belongs to another run: " + "; ".join(diffs[:6]) + more
                         + ". Delete it, or pass the data, model, loss_fn and steps it was written with")


def _make_optimizer(name: str, params, lr: float, weight_decay: float, betas) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=betas)
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=betas[0])


def _evaluate(callbacks, step: int, model: nn.Module, history: History) -> None:
    was_training = model.training
    model.eval()
    row = {"step": step}
    for callback in callbacks:
        out = callback(step, model)
        for key, value in (out or {}).items():
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(f"callback {callback!r} returned {key}={value!r}; callbacks must "
                                "return a dict of numbers")
            row[key] = float(value)
    history.evals.append(row)
    model.train(was_training)


# --------------------------------------------------------------------------------------------
# The configuration
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    """How :func:`train` optimizes: ``steps`` optimizer steps on batches of ``batch_size``
    (``batch_size >= n`` trains full-batch) at learning rate ``lr``; ``optimizer`` ``"adamw"``
    (decoupled ``weight_decay``), ``"adam"`` (L2 penalty in the gradient) or ``"sgd"``
    (momentum ``betas[0]``); ``warmup_steps`` of linear learning-rate warm-up; ``grad_clip``
    (max gradient norm); ``ema_decay`` (an exponential moving average of the weights).

    One object for every training run of the lab: ``train(model, loss_fn, data, config)``,
    ``labkit.dit.train_dit(model, images, config)``, ``labkit.pruning.fine_tune`` and the
    protocols (:meth:`labkit.experiments.Protocol.base_training`) all take it. Each field is
    checked here (ValueError naming it); ``dataclasses.replace(config, lr=...)`` derives one,
    and :meth:`preset` builds one from the named settings of :data:`TRAIN_PRESETS`.
    """

    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    grad_clip: float | None = None
    ema_decay: float | None = None

    def __post_init__(self):
        put = functools.partial(object.__setattr__, self)
        put("steps", _checks.positive_int(self.steps, "steps"))
        put("batch_size", _checks.positive_int(self.batch_size, "batch_size"))
        put("lr", _checks.positive_float(self.lr, "lr"))
        wd = self.weight_decay
        if isinstance(wd, bool) or not isinstance(wd, Real) or wd < 0 or not math.isfinite(wd):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {wd!r}")
        put("weight_decay", float(wd))
        _checks.choice(self.optimizer, "optimizer", ("adamw", "adam", "sgd"))
        betas = self.betas
        if not isinstance(betas, (tuple, list)) or len(betas) != 2 or \
                not all(isinstance(b, Real) and 0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        put("betas", tuple(float(b) for b in betas))
        w = self.warmup_steps
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {w!r}")
        if self.grad_clip is not None:
            put("grad_clip", _checks.positive_float(self.grad_clip, "grad_clip"))
        if self.ema_decay is not None:
            put("ema_decay", _checks.unit_interval(self.ema_decay, "ema_decay", closed_left=True,
                                                   closed_right=False))

    @classmethod
    def preset(cls, name: str, **fields) -> TrainConfig:
        """The named settings ``TRAIN_PRESETS[name]`` with ``fields`` (``steps`` at least) on
        top: ``TrainConfig.preset("dit", steps=500)``. ValueError naming an unknown preset."""
        _checks.choice(name, "name", tuple(TRAIN_PRESETS))
        return cls(**{**TRAIN_PRESETS[name], **fields})


# Named training settings (the fields of a TrainConfig but steps): "dit" is how
# labkit.dit.train_dit trains a DiT, "fine_tune" how labkit.pruning.fine_tune fine-tunes a
# pruned one. Add an entry to name another.
TRAIN_PRESETS: dict[str, dict] = {
    "dit": {"batch_size": 64, "lr": 1e-3},
    "fine_tune": {"batch_size": 64, "lr": 1e-4},
}


@dataclass(frozen=True)
class Checkpoint:
    """Where :func:`train` keeps a run's resumable state: the file ``path``, written atomically
    every ``every`` steps (default: a tenth of the run) and at the end. ``train(...,
    checkpoint=path)`` is ``Checkpoint(path)``."""

    path: str | os.PathLike
    every: int | None = None

    def __post_init__(self):
        if not isinstance(self.path, (str, os.PathLike)):
            raise TypeError(f"checkpoint path must be a str or a path, got {type(self.path).__name__}")
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "every", _checks.optional_positive_int(self.every, "every"))


# --------------------------------------------------------------------------------------------
# The keywords train() took before TrainConfig and Checkpoint (deprecated, removed in 0.3)
# --------------------------------------------------------------------------------------------

_LEGACY_REMOVE_IN = _shim("labkit.train.train(steps=..., eval_every=..., checkpoint_path=...)",
                          "labkit.train.train(model, loss_fn, data, TrainConfig(...), "
                          "eval_at=..., checkpoint=Checkpoint(...))", remove_in="0.3")
_LEGACY = ("eval_every", "checkpoint_path", "checkpoint_every")


def _legacy_arguments(who: str, config, eval_at, checkpoint, legacy: dict, preset=None):
    """``(config, eval_at, checkpoint)`` with the deprecated keywords of ``legacy`` folded in:
    a :class:`TrainConfig` field replaces that field of ``config`` (a new one from them, on
    top of ``TRAIN_PRESETS[preset]`` if given, without ``config``), ``eval_every`` is an int
    ``eval_at``, ``checkpoint_path`` and ``checkpoint_every`` a :class:`Checkpoint`."""
    if not legacy:
        return config, eval_at, checkpoint
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(legacy) - fields - set(_LEGACY))
    if unknown:
        raise TypeError(f"{who}() got unexpected keyword arguments {unknown}")
    _deprecated(f"{who}(..., {', '.join(f'{k}=' for k in legacy)})",
                f"{who}(..., TrainConfig(...), eval_at=..., checkpoint=Checkpoint(...))",
                stacklevel=4, remove_in=_LEGACY_REMOVE_IN)
    settings = {k: v for k, v in legacy.items() if k in fields}
    if config is None:
        settings = {**TRAIN_PRESETS.get(preset, {}), **settings}
        missing = [k for k in ("steps", "batch_size", "lr") if k not in settings]
        if missing:
            raise TypeError(f"training needs {', '.join(missing)}: pass "
                            "config=TrainConfig(steps=..., batch_size=..., lr=...)")
        config = TrainConfig(**settings)
    elif settings:
        _check_config(config)
        config = dataclasses.replace(config, **settings)
    every = _checks.optional_positive_int(legacy.get("eval_every"), "eval_every")
    if every is not None:
        if eval_at is not None:
            raise ValueError("pass eval_at or eval_every (its older name), not both")
        eval_at = every
    path = legacy.get("checkpoint_path")
    every = _checks.optional_positive_int(legacy.get("checkpoint_every"), "checkpoint_every")
    if path is not None:
        if checkpoint is not None:
            raise ValueError("pass checkpoint or checkpoint_path (its older form), not both")
        checkpoint = Checkpoint(path, every)
    return config, eval_at, checkpoint


def _check_config(config) -> TrainConfig:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a labkit.train.TrainConfig, got {type(config).__name__}")
    return config


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------

def train(model: nn.Module, loss_fn, data: torch.Tensor, config: TrainConfig | None = None, *,
          callbacks=(), eval_at=None, generator: torch.Generator | None = None,
          checkpoint: Checkpoint | str | os.PathLike | None = None, progress: bool = True,
          **legacy) -> History:
    """Train ``model`` on ``data`` as ``config`` (a :class:`TrainConfig`) says and return its
    :class:`History`.

    ``loss_fn(model, batch, generator=generator) -> (b,)`` per-sample losses (the loop
    averages them), e.g. ``partial(dsm_noise_loss, t_sampler=LogUniformTime(1e-3, 10))``
    (:mod:`labkit.losses`). ``data``: (n, ...) training set, moved to the model's device and
    of the dtype of its parameters; batches are drawn without replacement.

    ``callbacks``: functions ``callback(step, model) -> dict of numbers | None`` run (in eval
    mode, on the EMA model when there is one) on the evaluation schedule ``eval_at``: an int
    period (step 0, every ``eval_at`` steps and the end), or a collection of steps in
    ``[0, steps]`` (exactly those); without it, at step 0 and at the end. Their outputs go to
    ``history.evals``, which is part of the checkpoint: a resumed run returns the same
    evaluations as an uninterrupted one. A callback with its own state (the generator it
    samples with, say) exposes ``state_dict()`` / ``load_state_dict(state)``, and that state is
    checkpointed with the run. Callbacks should use their own generator, so evaluating does not
    change the training run.

    ``generator`` (on the model's device) drives batches, times and noise: the same seed
    gives the same weights. ``checkpoint`` (a :class:`Checkpoint`, or its path): write model,
    optimizer, EMA, step, generator and batch state and history there atomically and at the
    end; if the file exists the run resumes from it and finishes with exactly the weights of an
    uninterrupted run, provided it is the same run: a checkpoint written for other data,
    another model (class, config, shapes), another loss function or time sampler, or another
    ``steps`` raises a ValueError naming what differs. ``progress``: show a tqdm bar.

    The keywords of labkit 0.2 (the fields of :class:`TrainConfig`, ``eval_every``,
    ``checkpoint_path``, ``checkpoint_every``) still work, with a ``DeprecationWarning``, until
    labkit 0.3.
    """
    config, eval_at, checkpoint = _legacy_arguments("labkit.train.train", config, eval_at,
                                                    checkpoint, legacy)
    params = _check_inputs(model, loss_fn, data)
    cfg = _check_config(config)
    callbacks = _check_callbacks(callbacks)
    schedule = _schedule(eval_at, cfg.steps)
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint(checkpoint)
    device = params[0].device
    generator = _training_generator(generator, device)
    # Hashing the data costs a pass over it: only runs that checkpoint need the fingerprint.
    fingerprint = None if checkpoint is None else _fingerprint(model, loss_fn, data, cfg.steps)
    data = data.to(device)
    opt = _make_optimizer(cfg.optimizer, params, cfg.lr, cfg.weight_decay, cfg.betas)
    history = History()
    if cfg.ema_decay is not None:
        history.ema = copy.deepcopy(model).requires_grad_(False)
    batches = _Batches(data.shape[0], cfg.batch_size, generator, device)
    state = {"model": model, "optimizer": opt, "history": history, "generator": generator,
             "batches": batches, "callbacks": callbacks, "loss_fn": loss_fn,
             "config": _checkpoint_config(cfg, data), "fingerprint": fingerprint}
    step = 0 if checkpoint is None else _resume(checkpoint.path, state, cfg.steps, device)
    every = None if checkpoint is None else checkpoint.every or max(cfg.steps // 10, 1)

    eval_model = history.ema if history.ema is not None else model
    if callbacks and step == 0 and schedule(0):
        _evaluate(callbacks, 0, eval_model, history)
    model.train()
    with tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train", leave=False) as bar:
        while step < cfg.steps:
            value = _step(state, cfg, params, data, step)
            step += 1
            if not math.isfinite(value):
                raise FloatingPointError(f"training loss became {value} at step {step}; lower lr "
                                         "or set grad_clip")
            history.loss.append(value)
            if callbacks and schedule(step):
                _evaluate(callbacks, step, eval_model, history)
            if checkpoint is not None and (step % every == 0 or step == cfg.steps):
                _save(checkpoint.path, state, step)
            bar.update(1)
            if step % 50 == 0 or step == cfg.steps:
                bar.set_postfix(loss=f"{value:.4g}")
    return history


def _step(state: dict, cfg: TrainConfig, params, data: torch.Tensor, step: int) -> float:
    """One optimizer step (the ``step + 1``-th) on the next batch: warm-up, loss, gradient
    (clipped), update, EMA. Returns the batch's mean loss."""
    model, opt, history = state["model"], state["optimizer"], state["history"]
    if cfg.warmup_steps:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)
    idx = state["batches"].next()
    batch = data if idx is None else data[idx]
    losses = state["loss_fn"](model, batch, generator=state["generator"])
    if not isinstance(losses, torch.Tensor) or losses.shape != (batch.shape[0],):
        raise ValueError(f"loss_fn must return one loss per sample, shape ({batch.shape[0]},), "
                         f"got {getattr(losses, 'shape', type(losses).__name__)}")
    loss = losses.mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    opt.step()
    if history.ema is not None:
        _update_ema(history.ema, model, cfg.ema_decay)
    return loss.item()


def _check_inputs(model, loss_fn, data) -> list[nn.Parameter]:
    """The trainable parameters of ``model``, after checking ``model``, ``loss_fn`` and
    ``data`` (TypeError or ValueError naming the argument)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not isinstance(data, torch.Tensor) or data.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"data must be a floating torch.Tensor of shape (n, ...), got {type(data).__name__}")
    if data.ndim < 2 or data.shape[0] == 0:
        raise ValueError(f"data must have shape (n, ...) with n >= 1, got {tuple(data.shape)}")
    if data.dtype != params[0].dtype:
        raise TypeError(f"data is {data.dtype} but the model's parameters are {params[0].dtype}; "
                        f"pass data.to({params[0].dtype}) or convert the model "
                        f"(model.to({data.dtype}))")
    if not torch.isfinite(data).all():
        raise ValueError("data contains NaN or infinite values")
    return params


def _check_callbacks(callbacks) -> tuple:
    callbacks = tuple(callbacks)
    if not all(callable(c) for c in callbacks):
        raise TypeError("callbacks must be a sequence of callables callback(step, model)")
    return callbacks


def _training_generator(generator, device) -> torch.Generator:
    """``generator`` (checked to be on ``device``), or a fresh one seeded from torch's global
    generator."""
    _checks.generator(generator)
    if generator is None:
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        return torch.Generator(device=device).manual_seed(seed)
    if generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device} but the model is on {device}; "
                         "create the generator on the model's device")
    return generator


def _checkpoint_config(cfg: TrainConfig, data: torch.Tensor) -> dict:
    """The settings a checkpoint records and a resumed run must repeat."""
    return {"n": int(data.shape[0]), "batch_size": cfg.batch_size, "lr": cfg.lr,
            "weight_decay": float(cfg.weight_decay), "optimizer": cfg.optimizer,
            "betas": [float(b) for b in cfg.betas], "warmup_steps": cfg.warmup_steps,
            "grad_clip": cfg.grad_clip, "ema_decay": cfg.ema_decay}


def _resume(path: Path, state: dict, steps: int, device) -> int:
    """Load the run ``state`` from the checkpoint at ``path`` if there is one (after checking
    that it belongs to this run); the step it reached, 0 without a checkpoint."""
    if not path.exists():
        return 0
    ckpt = load_checkpoint(path, map_location=device)
    _check_fingerprint(ckpt, state["fingerprint"], path)
    if ckpt["config"] != state["config"]:
        raise ValueError(f"checkpoint {str(path)!r} was written with {ckpt['config']}, "
                         f"not {state['config']}; delete it or pass the same settings")
    if ckpt["step"] > steps:
        raise ValueError(f"checkpoint {str(path)!r} is at step {ckpt['step']} > steps={steps}")
    history = state["history"]
    state["model"].load_state_dict(ckpt["model"])
    state["optimizer"].load_state_dict(ckpt["optimizer"])
    if history.ema is not None:
        history.ema.load_state_dict(ckpt["ema"])
    state["generator"].set_state(ckpt["generator"])
    state["batches"].load_state_dict(ckpt["batches"])
    history.load_state_dict(ckpt["history"])
    for callback, saved in zip(state["callbacks"], ckpt.get("callbacks") or ()):
        if saved is not None:
            callback.load_state_dict(saved)
    return int(ckpt["step"])


def _save(path: Path, state: dict, step: int) -> None:
    """Write the run ``state`` at ``step`` to ``path`` atomically."""
    history = state["history"]
    save_atomically({
        "model": state["model"].state_dict(), "optimizer": state["optimizer"].state_dict(),
        "ema": None if history.ema is None else history.ema.state_dict(),
        "step": step, "generator": state["generator"].get_state(),
        "batches": state["batches"].state_dict(), "history": history.state_dict(),
        "config": state["config"], "fingerprint": state["fingerprint"],
        "callbacks": [c.state_dict() if hasattr(c, "state_dict") else None
                      for c in state["callbacks"]]}, path)


def _schedule(eval_at, steps: int):
    """``at(step) -> bool``: whether the callbacks run at ``step`` (see :func:`train`)."""
    if eval_at is None:
        return lambda step: step in (0, steps)
    if isinstance(eval_at, bool):
        raise ValueError(f"eval_at must be a positive int period or a collection of steps, got {eval_at!r}")
    if isinstance(eval_at, int):
        period = _checks.positive_int(eval_at, "eval_at")
        return lambda step: step % period == 0 or step == steps
    try:
        wanted = sorted(set(eval_at))
    except TypeError:
        raise ValueError(f"eval_at must be a positive int period or a collection of steps, "
                         f"got {eval_at!r}") from None
    bad = [s for s in wanted if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= steps]
    if bad:
        raise ValueError(f"eval_at must hold integer steps in [0, steps={steps}], got {bad[:5]}")
    wanted = frozenset(wanted)
    return wanted.__contains__


# The time samplers and the noise-prediction loss live in labkit.losses (the loss functions).
__getattr__ = _moved(__name__, {name: f"labkit.losses.{name}" for name in (
    "UniformTime", "LogUniformTime", "dsm_noise_loss")}, remove_in="0.3")
