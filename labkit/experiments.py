"""The paper's experiments in one place: point functions, grids and the paper's reported numbers.

Algorithms live in their own modules (``train``, ``sampling``, ``metrics``, ``pruning`` ...);
this module only says *which* runs make a figure. "Where is Fig. 3 defined?" has one answer:
:data:`EXPERIMENTS` here, computed by ``labkit results run NAME`` (:mod:`labkit.cli`) into the
committed result set ``results/<NAME>.json`` that the notebooks read.

Mixture experiments (notebook 02). Every run is :func:`mixture_curve`: a ``ScoreMLP`` trained by
denoising score matching on ``n`` draws of a Gaussian mixture, evaluated on a geometric grid of
training steps (:func:`eval_steps`). At each evaluation it samples the reverse SDE and records

- ``memorization``: the 1/3 rule against the training set (its ``null_memorization`` is the same
  rule on fresh draws of the true law, so only the excess ``memorization - null`` means
  memorizing);
- ``log_likelihood``: the mean log-density of the samples under the true mixture
  (``reference_log_likelihood``: of fresh draws), the dashed curves of the paper's Fig. 3b;
- ``train_loss``: the mean training loss since the previous evaluation.

Training is deterministic given ``seed`` and the evaluations draw from their own generator, so the
curve of a shorter run is exactly the prefix of a longer one: ``labkit verify --max-steps``
recomputes a prefix of a row and compares it.

The training-time study (Bonnaire, Urfin, Biroli & Mezard 2025, arXiv 2505.17638). From a curve,
:func:`training_times` reads two times, declared before any run was looked at:

- the generalization time ``tau_gen``: the first step at which the samples are within
  ``GEN_NATS`` = 0.25 nat of fresh draws in mean log-likelihood;
- the memorization time ``tau_mem``: the first step at which memorization exceeds its null rate
  by ``MEM_POINTS`` = 0.10 (ten percentage points);

both interpolated linearly in log(step) between evaluations, ``None`` when never reached.
Bonnaire et al. find ``tau_gen`` about independent of n and ``tau_mem`` growing about linearly
in n; :func:`power_law` fits ``log tau = a + b log n`` with a t-interval on b.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from . import _checks
from .dit import PRESETS, DiT, load_dit, sample_images, save_dit, train_dit
from .pruning import (fine_tune, head_importance, magnitude_importance, prune_heads, random_importance,
                      select_heads)
from .train import save_atomically

__all__ = [
    "GEN_NATS",
    "MEM_POINTS",
    "eval_steps",
    "mixture_curve",
    "final",
    "crossing_step",
    "training_times",
    "power_law",
    "seed_interval",
    "at_end",
    "paired_difference",
    "time_table",
    "regime",
    "Experiment",
    "EXPERIMENTS",
    "experiment",
    "memorization_point",
    "PAPER_GRIDS",
    "paper_grid",
    "PAPER_TABLE1",
    "METHODS",
    "Protocol",
    "CIFAR_PROTOCOL",
    "train_base",
    "importances",
    "pruned_arm",
    "run_protocol",
    "summarize",
    "format_table",
    "TABLE1_RATIOS",
    "table1_seed",
]

GEN_NATS = 0.25
MEM_POINTS = 0.10


def eval_steps(steps: int, first: int = 125, per_octave: int = 2) -> list[int]:
    """The evaluation steps of a run of ``steps`` steps: 0, then ``first * 2^(k / per_octave)``
    rounded, up to and including ``steps``. The grid depends only on ``first`` and
    ``per_octave``, so a shorter run's grid is a prefix of a longer one's."""
    steps = _checks.positive_int(steps, "steps")
    first = _checks.positive_int(first, "first")
    per_octave = _checks.positive_int(per_octave, "per_octave")
    out, k = [0], 0
    while True:
        s = int(round(first * 2 ** (k / per_octave)))
        if s >= steps:
            break
        if s > out[-1]:
            out.append(s)
        k += 1
    out.append(steps)
    return out


def _mixture(mixture: str, dim: int, num_components: int, mean_std: float, generator):
    from .data import make_gmm, toy_mixture

    _checks.choice(mixture, "mixture", ("paper", "gmm4"))
    if mixture == "gmm4":
        if dim != 2:
            raise ValueError(f"dim must be 2 for the gmm4 toy, got {dim}")
        return toy_mixture("gmm4")
    return make_gmm(num_components, dim, mean_std, generator=generator)


def mixture_curve(dim: int, n: int, width: int, depth: int = 2, weight_decay: float = 0.0,
                  steps: int = 4000, batch_size: int = 128, lr: float = 3e-3,
                  num_samples: int = 1000, sample_steps: int = 100, t_min: float = 1e-3,
                  t_max: float = 8.0, mixture: str = "paper", num_components: int = 8,
                  mean_std: float = 2.0, duplicate_fraction: float = 0.0, duplicate_copies: int = 1,
                  first_eval: int = 125, evals_per_octave: int = 2, keep_samples: bool = False,
                  device: str = "cpu", seed: int = 0) -> dict:
    """Train a ``ScoreMLP(dim, width, depth)`` by DSM on ``n`` draws of a mixture, evaluating it
    on the step grid :func:`eval_steps` (``first_eval``, ``evals_per_octave``).

    ``mixture="paper"``: ``make_gmm(num_components, dim, mean_std)`` (the paper: K = 8, means
    ~ N(0, 4 I), identity covariance) drawn with ``seed``; ``"gmm4"``: the 2-D K = 4 toy of the
    paper's Fig. 2. ``duplicate_fraction`` of the points repeated ``duplicate_copies`` times.
    Training: noise prediction (DSM weighted by sigma_t^2), times log-uniform on
    ``[t_min, t_max]``, AdamW with ``weight_decay``, batches of ``batch_size`` (a small set is
    tiled up to one batch, which leaves the empirical law unchanged). Each evaluation samples
    ``num_samples`` points with the reverse SDE (``sample_steps`` steps, stopped at ``t_min``).

    Returns a JSON-ready dict: ``steps`` (list), ``memorization``, ``log_likelihood``,
    ``train_loss`` (lists, one per evaluation; the loss at step 0 is the first batch's),
    ``null_memorization``, ``reference_log_likelihood``, ``params``, ``n_total``,
    ``lipschitz_max`` / ``lipschitz_median`` (the spectral norm of the final network's score
    Jacobian at t = 0.01 over 64 diffused training points), ``wall_s``, and with
    ``keep_samples`` the final ``samples`` and the ``train`` set (rounded to 1e-4).
    """
    from .capacity import _draw, lipschitz_constant
    from .data import with_duplicates
    from .metrics import memorization_ratio
    from .nets import ScoreMLP
    from .sampling import sample
    from .train import LogUniformTime, dsm_noise_loss, train

    start = time.perf_counter()
    n = _checks.positive_int(n, "n")
    width = _checks.positive_int(width, "width")
    grid = eval_steps(steps, first_eval, evals_per_octave)
    dev = _checks.device(device)
    g = torch.Generator().manual_seed(seed)
    gmm = _mixture(mixture, dim, num_components, mean_std, g)
    data = gmm.sample(n, generator=g)
    if duplicate_fraction > 0 and duplicate_copies > 1:
        data = with_duplicates(data, duplicate_fraction, duplicate_copies, generator=g)
    fresh = gmm.sample(num_samples, generator=g)
    model = ScoreMLP(dim, width=width, depth=depth, generator=g).to(dev)
    g_train = torch.Generator(device=dev).manual_seed(seed + 1)
    g_eval = torch.Generator(device=dev).manual_seed(seed + 2)
    tiled = data.repeat(math.ceil(batch_size / data.shape[0]), 1)

    wanted = set(grid)
    curve = {"steps": [], "memorization": [], "log_likelihood": []}
    last = {}

    def evaluate(step, net):
        # train() calls this every step (eval_every=1); only the grid's steps are evaluated.
        if step in wanted:
            with torch.no_grad():
                x = sample(net.score, num_samples, dim, steps=sample_steps, t_min=t_min, t_max=t_max,
                           method="sde", generator=g_eval, device=dev).cpu()
            curve["steps"].append(step)
            curve["memorization"].append(memorization_ratio(x, data))
            curve["log_likelihood"].append(float(gmm.log_prob(x).mean()))
            last["samples"] = x
        return None

    history = train(model, partial(dsm_noise_loss, t_sampler=LogUniformTime(t_min, t_max)), tiled,
                    steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    generator=g_train, callbacks=(evaluate,), eval_every=1, progress=False)
    # mean training loss since the previous evaluation (at step 0: the first batch's loss)
    bounds = [0] + curve["steps"][1:]
    curve["train_loss"] = [float(np.mean(history.loss[max(a, 0):max(b, 1)]))
                           for a, b in zip([0] + bounds[:-1], bounds)]
    # the spectral norm of the trained score's Jacobian at t = 0.01 over 64 diffused training
    # points (see labkit.capacity.lipschitz_constant): what weight decay acts on
    probe, _ = _draw(data, 64, 0.01, 0.01, g)
    lip = lipschitz_constant(model.score, probe.to(dev), 0.01).cpu()
    out = {
        **curve,
        "lipschitz_max": float(lip.max()),
        "lipschitz_median": float(lip.median()),
        "null_memorization": memorization_ratio(fresh, data),
        "reference_log_likelihood": float(gmm.log_prob(fresh).mean()),
        "params": model.num_parameters(),
        "n_total": int(data.shape[0]),
    }
    if keep_samples:  # rounded to 1e-4: enough for a scatter plot, a quarter of the file size
        out["samples"] = [[round(v, 4) for v in p] for p in last["samples"].tolist()]
        out["train"] = [[round(v, 4) for v in p] for p in data.tolist()]
    out["wall_s"] = round(time.perf_counter() - start, 2)
    return out


def final(row: dict, key: str):
    """The last evaluation of a curve ``key`` ("memorization", "log_likelihood", ...) of a row."""
    return row[key][-1]


def crossing_step(steps, values, level: float):
    """First step at which ``values`` reaches ``level`` (>=), linearly interpolated in log(step)
    between the two evaluations that bracket it; ``steps[0]`` if it starts there; None if never."""
    steps, values = list(steps), list(values)
    for i, v in enumerate(values):
        if v >= level:
            if i == 0:
                return float(steps[0])
            s0, s1, v0 = steps[i - 1], steps[i], values[i - 1]
            if s0 <= 0:
                return float(s1)
            frac = (level - v0) / (v - v0)
            return float(math.exp(math.log(s0) + frac * (math.log(s1) - math.log(s0))))
    return None


def training_times(row: dict, gen_nats: float = GEN_NATS, mem_points: float = MEM_POINTS) -> dict:
    """``{"tau_gen": ..., "tau_mem": ...}`` of one :func:`mixture_curve` row (see the module
    docstring for the declared rules); None where the run never got there."""
    gap = [ll - row["reference_log_likelihood"] for ll in row["log_likelihood"]]
    excess = [m - row["null_memorization"] for m in row["memorization"]]
    return {"tau_gen": crossing_step(row["steps"], gap, -gen_nats),
            "tau_mem": crossing_step(row["steps"], excess, mem_points)}


def power_law(ns, taus, level: float = 0.95) -> dict:
    """Least-squares fit of ``log tau = a + b log n`` over the uncensored points; returns
    ``{"slope", "lo", "hi", "intercept", "points"}`` (t-interval on the slope at ``level``)."""
    from scipy import stats

    pairs = [(float(n), float(t)) for n, t in zip(ns, taus) if t is not None and t > 0]
    if len({n for n, _ in pairs}) < 2 or len(pairs) < 3:
        raise ValueError(f"power_law needs at least 3 uncensored points at 2 or more n, got {pairs}")
    x = np.log([n for n, _ in pairs])
    y = np.log([t for _, t in pairs])
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + level / 2, len(pairs) - 2) * fit.stderr
    return {"slope": float(fit.slope), "lo": float(fit.slope - half), "hi": float(fit.slope + half),
            "intercept": float(fit.intercept), "points": len(pairs)}


def seed_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of per-seed values with its Student-t interval at ``level``
    (``lo = hi = mean`` for a single value). Use it on paired differences to test a claim."""
    from scipy import stats

    v = np.asarray([float(x) for x in values], dtype=float)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"values must be finite numbers, at least one, got {list(values)}")
    mean = float(v.mean())
    if v.size == 1:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - half, mean + half


def at_end(rows):
    """The rows of training curves with each curve (``memorization``, ``log_likelihood``,
    ``train_loss``) replaced by its last evaluation, as a :class:`labkit.sweeps.Table`."""
    from .sweeps import Table

    keys = ("memorization", "log_likelihood", "train_loss")
    return Table([{**r, **{k: r[k][-1] for k in keys if isinstance(r.get(k), list)}} for r in rows])


def paired_difference(rows, key: str, a: dict, b: dict, level: float = 0.95) -> dict:
    """The per-seed difference ``key(a) - key(b)`` between two settings (``a``, ``b``: dicts of
    config values), paired on the seed, with its t-interval: ``{"mean", "lo", "hi", "seeds",
    "verdict"}``; the verdict is ``"positive"`` / ``"negative"`` when the interval excludes 0 on
    that side, else ``"unresolved"``."""
    def pick(where):
        return {r["seed"]: r[key] for r in rows if all(r.get(k) == v for k, v in where.items())}

    left, right = pick(a), pick(b)
    seeds = sorted(set(left) & set(right))
    if not seeds:
        raise ValueError(f"no seed has both {a} and {b}")
    mean, lo, hi = seed_interval([left[s] - right[s] for s in seeds], level)
    verdict = "positive" if lo > 0 else "negative" if hi < 0 else "unresolved"
    return {"mean": mean, "lo": lo, "hi": hi, "seeds": seeds, "verdict": verdict}


def time_table(rows, **where) -> dict:
    """``{n: {"tau_gen": [...], "tau_mem": [...], "seeds": [...]}}`` over the training-time rows
    matching ``where`` (e.g. ``mixture="gmm4", width=256``), one entry per seed."""
    out = {}
    for row in rows:
        if any(row.get(k) != v for k, v in where.items()):
            continue
        entry = out.setdefault(row["n"], {"tau_gen": [], "tau_mem": [], "seeds": []})
        times = training_times(row)
        entry["tau_gen"].append(times["tau_gen"])
        entry["tau_mem"].append(times["tau_mem"])
        entry["seeds"].append(row["seed"])
    return dict(sorted(out.items()))


def regime(row: dict, at: int = -1) -> str:
    """The declared Fig. 2 label of a run at evaluation ``at`` (default: the last one):
    ``"failing"`` when the samples are more than 1 nat less likely than fresh draws,
    ``"generalizing"`` when within 0.5 nat and within 10 points of the null memorization rate,
    ``"memorizing"`` when 30 or more points above it, ``"-"`` otherwise."""
    ll = row["log_likelihood"][at] if isinstance(row["log_likelihood"], list) else row["log_likelihood"]
    mem = row["memorization"][at] if isinstance(row["memorization"], list) else row["memorization"]
    gap = ll - row["reference_log_likelihood"]
    excess = mem - row["null_memorization"]
    if gap < -1.0:
        return "failing"
    if abs(gap) <= 0.5 and abs(excess) <= 0.10:
        return "generalizing"
    return "memorizing" if excess >= 0.30 else "-"


# ----------------------------------------------------------------------------------------------
# The registry of result sets: what `labkit results run NAME` computes into results/NAME.json.

@dataclass(frozen=True)
class Experiment:
    """A named result set: a point function (``"module:function"``), its grids (a list of
    grids whose union is the set; each a mapping axis -> list or scalar), a one-line purpose,
    and the keys of a row's result that :func:`labkit.cli.verify` compares."""

    point_fn: str
    grids: tuple
    purpose: str
    compare: tuple = ("memorization", "log_likelihood", "train_loss", "null_memorization")
    prefix_key: str | None = "steps"  # the config key that shortens a run (None: rows are atomic)
    curve_steps: str = "steps"  # the result key holding the steps at which curves were evaluated
    prefix_args: dict = field(default_factory=dict)  # extra arguments of a shortened run


_STUDY_TRAIN = {"depth": 2, "batch_size": 128, "lr": 3e-3, "num_samples": 1000, "sample_steps": 100}


def _study_grids():
    # The step budget grows with n (500 n, at least 16,000): enough for the curves to flatten if
    # the memorization time grows about linearly in n, and visibly censored if it grows faster.
    grids = []
    for mixture, dim, widths in (("gmm4", 2, [64, 256]), ("paper", 8, [256])):
        for n in (16, 32, 64, 128):
            grids.append({"mixture": mixture, "dim": dim, "n": n, "width": widths,
                          "steps": max(16000, 500 * n), "seed": [0, 1, 2], **_STUDY_TRAIN})
    return tuple(grids)


EXPERIMENTS: dict[str, Experiment] = {
    "training_time": Experiment(
        point_fn="labkit.experiments:mixture_curve",
        grids=_study_grids(),
        purpose="memorization and log-likelihood against training steps, n = 16-128, 3 seeds: the "
                "2-D toy at widths 64 and 256, the d = 8 mixture at width 256 (Bonnaire et al.'s "
                "training-time law)",
    ),
}

# Fig. 2 (2-D, K = 4): widths from 2 to 256, three seeds, trained 32,000 steps: twice the study's
# budget at n = 16-32, where memorization still rose by 5-15 points per doubling of steps at 16,000
# (no plateau within reach on a CPU), so every width is far past its memorization time.
_FIG2 = {"mixture": "gmm4", "dim": 2, "width": [2, 4, 8, 16, 64, 256], "steps": 32000, **_STUDY_TRAIN}
EXPERIMENTS["fig2"] = Experiment(
    point_fn="labkit.experiments:mixture_curve",
    grids=({**_FIG2, "n": 16, "seed": 0, "keep_samples": True}, {**_FIG2, "n": 16, "seed": [1, 2]}),
    purpose="the paper's Fig. 2 on the 2-D toy at n = 16: widths 2-256, 3 seeds, 32,000 steps "
            "(samples kept for seed 0)",
)

# Fig. 3 at CPU scale (d = 8 unless said): 16,000 steps, the study's budget at n <= 32.
_FIG3 = {"mixture": "paper", "steps": 16000, "seed": [0, 1, 2], **_STUDY_TRAIN}
EXPERIMENTS["fig3"] = Experiment(
    point_fn="labkit.experiments:mixture_curve",
    grids=(
        {**_FIG3, "dim": 8, "n": [16, 256], "width": [16, 64, 256], "weight_decay": 0.0},  # 3a left, 3b width
        {**_FIG3, "dim": 8, "n": 64, "width": 256, "weight_decay": 0.0},  # the middle n (and 0% duplication)
        {**_FIG3, "dim": [4, 16], "n": 16, "width": 256, "weight_decay": 0.0},  # 3a right
        {**_FIG3, "dim": 8, "n": [16, 256], "width": 256, "weight_decay": [0.1, 1.0]},  # 3b decay
    ),
    purpose="the paper's Fig. 3 at CPU scale: d = 8 (4 and 16 for the dimension panel), n = 16-256, "
            "widths 16-256, weight decay 0-1, 3 seeds, 16,000 steps",
)

EXPERIMENTS["duplication"] = Experiment(
    point_fn="labkit.experiments:mixture_curve",
    grids=({**_FIG3, "dim": 8, "n": 64, "width": 256, "duplicate_fraction": [0.1, 0.3],
            "duplicate_copies": 10},),
    purpose="duplicated training points (10 copies of 10% or 30% of 64 points), d = 8, width 256, "
            "3 seeds (0% is the matching Fig. 3 row)",
)


def experiment(name: str) -> Experiment:
    """The registered :class:`Experiment` called ``name`` (see :data:`EXPERIMENTS`)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[name]


# ----------------------------------------------------------------------------------------------
# One trained network, measured once at the end (the first landing's Figs. 2-3 point function)

def memorization_point(dim: int, n: int, width: int, depth: int = 3, weight_decay: float = 0.0,
                       steps: int = 2000, batch_size: int = 256, lr: float = 2e-3,
                       num_samples: int = 1000, sample_steps: int = 100, t_min: float = 1e-3,
                       t_max: float = 8.0, mixture: str = "paper", num_components: int = 8,
                       mean_std: float = 2.0, duplicate_fraction: float = 0.0,
                       duplicate_copies: int = 1, keep_samples: bool = False,
                       lipschitz_t: float = 0.01, device: str = "cpu", seed: int = 0) -> dict:
    """Train, sample, measure: one point of the paper's mixture experiments (Figs. 2-3).

    ``mixture="paper"``: ``make_gmm(num_components, dim, mean_std)`` (paper: K = 8, means
    ~ N(0, 4 I), identity covariance) drawn with seed ``seed``; ``"gmm4"``: the 2-D K = 4 toy of
    Fig. 2 (``dim`` must be 2). ``n`` training points, optionally with a ``duplicate_fraction``
    of them repeated ``duplicate_copies`` times. A ``ScoreMLP(dim, width, depth)`` is trained by
    :func:`labkit.train.train` with :func:`labkit.train.dsm_noise_loss` (noise prediction, i.e.
    DSM weighted by sigma_t^2; times log-uniform on ``[t_min, t_max]``), AdamW with
    ``weight_decay``; then ``num_samples`` samples from the reverse SDE stopped at ``t_min``.

    Returns a JSON-ready dict: ``memorization`` (1/3 rule against the training set),
    ``null_memorization`` (the same rule on fresh draws of the law), ``log_likelihood`` (mean
    log-density of the samples under the true law) and ``reference_log_likelihood`` (of fresh
    draws), ``params``, ``train_loss`` (mean of the last 10% of steps), ``n_total`` (with
    duplicates), ``lipschitz_max`` / ``lipschitz_median`` (spectral norm of the Jacobian of the
    network's score at ``lipschitz_t``, over 64 diffused training points: see
    :func:`lipschitz_constant`), and with ``keep_samples`` the samples and the training set as
    nested lists.
    """
    from .capacity import _draw, lipschitz_constant
    from .data import make_gmm, toy_mixture, with_duplicates
    from .metrics import memorization_ratio
    from .nets import ScoreMLP
    from .sampling import sample
    from .train import LogUniformTime, dsm_noise_loss, train

    _checks.choice(mixture, "mixture", ("paper", "gmm4"))
    dev = _checks.device(device)
    g = torch.Generator().manual_seed(seed)
    if mixture == "gmm4":
        if dim != 2:
            raise ValueError(f"dim must be 2 for the gmm4 toy, got {dim}")
        gmm = toy_mixture("gmm4")
    else:
        gmm = make_gmm(num_components, dim, mean_std, generator=g)
    data = gmm.sample(n, generator=g)
    if duplicate_fraction > 0 and duplicate_copies > 1:
        data = with_duplicates(data, duplicate_fraction, duplicate_copies, generator=g)
    model = ScoreMLP(dim, width=width, depth=depth, generator=g).to(dev)
    gd = torch.Generator(device=dev).manual_seed(seed + 1)
    # labkit.train draws batches without replacement (a batch is at most the whole set), so a
    # small set is tiled up to one batch: every step sees batch_size noisy copies, and the
    # empirical law (uniform over the rows) is unchanged.
    tiled = data.repeat(math.ceil(batch_size / data.shape[0]), 1)
    history = train(model, partial(dsm_noise_loss, t_sampler=LogUniformTime(t_min, t_max)), tiled,
                    steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    generator=gd, progress=False)
    model.eval()
    with torch.no_grad():
        samples = sample(model.score, num_samples, dim, steps=sample_steps, t_min=t_min, t_max=t_max,
                         method="sde", generator=gd, device=dev).cpu()
        fresh = gmm.sample(num_samples, generator=g)
        tail = history.loss[-max(steps // 10, 1):]
        probe, _ = _draw(data, 64, lipschitz_t, lipschitz_t, g)
    lip = lipschitz_constant(model.score, probe.to(dev), lipschitz_t).cpu()
    with torch.no_grad():
        out = {
            "memorization": memorization_ratio(samples, data),
            "null_memorization": memorization_ratio(fresh, data),
            "log_likelihood": float(gmm.log_prob(samples).mean()),
            "reference_log_likelihood": float(gmm.log_prob(fresh).mean()),
            "params": model.num_parameters(),
            "train_loss": sum(tail) / len(tail),
            "n_total": int(data.shape[0]),
            "lipschitz_max": float(lip.max()),
            "lipschitz_median": float(lip.median()),
        }
    if keep_samples:
        out["samples"] = samples.tolist()
        out["train"] = data.tolist()
    return out


# ----------------------------------------------------------------------------------------------
# The paper's Fig. 3 grids, for a bigger machine (the notebook runs CPU-sized versions).

PAPER_GRIDS = {
    # Fig. 3a left: memorization over (network size, n) at d = 32; ScoreMLP widths 64..4096 at
    # depth 4 span about 25K to 51M parameters (the paper's nets: 24K to 44M).
    "fig3a_size_n": dict(dim=32, n=[1000, 3200, 10000, 32000, 100000],
                         width=[64, 256, 1024, 2048, 4096], depth=4, weight_decay=0.0),
    # Fig. 3a right: a fixed network of about 13M parameters (the paper's: 12M), d from 8 to 64.
    "fig3a_n_dim": dict(dim=[8, 16, 32, 64], n=[1000, 3200, 10000, 32000, 100000],
                        width=2048, depth=4, weight_decay=0.0),
    # Fig. 3b: width and weight-decay sweeps at n = 3.2K and 10K.
    "fig3b_width": dict(dim=32, n=[3200, 10000], width=[256, 512, 1024, 2048, 4096], depth=4,
                        weight_decay=0.0),
    "fig3b_decay": dict(dim=32, n=[3200, 10000], width=2048, depth=4,
                        weight_decay=[0.0, 1e-4, 1e-3, 1e-2, 1e-1]),
}


def paper_grid(name: str, steps: int = 20000, batch_size: int = 1024, num_samples: int = 10000,
               seed: int = 0) -> dict:
    """The full grid ``labkit-sweep NAME`` runs (its defaults): one of :data:`PAPER_GRIDS` plus
    the training settings. Notebook 02 reads these points back with ``missing="skip"``. The
    device is not part of a point's configuration (it is bound by the command line), so results
    computed on a GPU are found from a CPU session."""
    if name not in PAPER_GRIDS:
        raise ValueError(f"name must be one of {sorted(PAPER_GRIDS)}, got {name!r}")
    return {**PAPER_GRIDS[name], "steps": steps, "batch_size": batch_size, "num_samples": num_samples,
            "seed": seed}


# ----------------------------------------------------------------------------------------------
# Table 1: the pruning protocol (Algorithms 1-2) with controls, on digits or CIFAR-10

# Table 1 of the paper: CIFAR-10 5,000-image subset, DiT, 20% of heads pruned, mean +- std over 5 runs.
PAPER_TABLE1 = {
    "original": {"precision": (0.39, 0.01), "recall": (0.08, 0.01), "memorization": (73.82, 1.12), "fd": (15.47, 0.28)},
    "small-t importance": {"precision": (0.33, 0.02), "recall": (0.12, 0.01), "memorization": (68.58, 0.77), "fd": (15.07, 0.33)},
    "random": {"precision": (0.30, 0.02), "recall": (0.09, 0.01), "memorization": (66.87, 0.94), "fd": (17.14, 0.25)},
}
# The protocol's arms: the paper's three plus a fine-tuned-but-unpruned control and two criteria.
METHODS = ("original", "fine-tuned control", "small-t importance", "uniform-t importance", "random", "magnitude")




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
               progress: bool = False, seed: int = 0) -> tuple[DiT, dict]:
    """Train (or load) the original DiT on ``data.train``; cached as ``out_dir/base.pt`` and
    resumed from ``out_dir/base_train.pt`` after an interruption. ``seed`` draws the initial
    weights and the training noise (seed 0 is the first landing's base model). Returns
    ``(model, extra)`` where ``extra["evals"]`` holds the callbacks' history (``[]`` without
    callbacks)."""
    out_dir = Path(out_dir)
    _claim(out_dir, data, protocol)
    path = out_dir / "base.pt"
    if path.is_file():
        model, extra = load_dit(path, map_location=device)
        return model, extra
    model = DiT(PRESETS[protocol.preset], generator=torch.Generator().manual_seed(10_000 * seed)).to(device)
    history = train_dit(model, data.train.to(device), steps=protocol.train_steps, batch_size=protocol.batch_size,
                        lr=protocol.train_lr, generator=torch.Generator(device=device).manual_seed(10_000 * seed + 1),
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


TABLE1_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5)


def table1_seed(n: int, seed: int, preset: str = "digits", train_steps: int = 5000, train_lr: float = 3e-3,
                batch_size: int = 32, finetune_steps: int = 200, finetune_lr: float = 1e-3, ratio: float = 0.2,
                num_samples: int = 400, sample_steps: int = 40, importance_batches: int = 16,
                classifier_steps: int = 400, sweep_ratios=TABLE1_RATIOS, probe_samples: int = 200,
                first_probe: int = 250, curve_only: bool = False, device: str = "cpu") -> dict:
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
    import hashlib

    from .images import image_memorized, load_digits, train_classifier
    from .plotting import cache_dir

    start = time.perf_counter()
    dev = _checks.device(device)
    protocol = Protocol(preset=preset, train_steps=train_steps, train_lr=train_lr, batch_size=batch_size,
                        finetune_steps=finetune_steps, finetune_lr=finetune_lr, ratio=ratio, seeds=1,
                        num_samples=num_samples, sample_steps=sample_steps,
                        importance_batches=importance_batches, classifier_steps=classifier_steps)
    data = load_digits(n, generator=torch.Generator().manual_seed(0))
    grid = eval_steps(train_steps, first_probe, 1)
    probe = {"steps": [], "memorization": []}

    def memorization_probe(step, model):
        if step in grid:
            x = sample_images(model, probe_samples, steps=sample_steps,
                              generator=torch.Generator(device=dev).manual_seed(10 + seed))
            probe["steps"].append(step)
            probe["memorization"].append(100 * image_memorized(x.cpu(), data.train).double().mean().item())
        return None

    tag = hashlib.sha256(json.dumps([n, seed, asdict(protocol)], sort_keys=True).encode()).hexdigest()[:12]
    out_dir = cache_dir("table1", f"n{n}_s{seed}_{tag}")
    base, extra = train_base(data, protocol, out_dir, device=dev, seed=seed, callbacks=[memorization_probe],
                             eval_every=1)
    if not probe["steps"]:  # the base came from the cache: its probe curve was stored with it
        probe = extra["probe"]
    elif "probe" not in extra:
        save_dit(base, out_dir / "base.pt", **{**extra, "probe": probe})
    held = data.held_out[:num_samples]
    out = {"probe_steps": probe["steps"], "probe_memorization": probe["memorization"],
           "null_memorization": 100 * image_memorized(held, data.train).double().mean().item()}
    if curve_only:
        return out
    classifier = train_classifier(data.held_out.to(dev), data.held_out_labels.to(dev), steps=classifier_steps,
                                  generator=torch.Generator().manual_seed(5))
    scores = importances(base, data, protocol)
    out["arms"] = {m: pruned_arm(base, data, protocol, m, seed, classifier, out_dir, scores=scores)
                   for m in METHODS}
    out["sweep"] = {m: [pruned_arm(base, data, protocol, m, seed, classifier, out_dir, ratio=r, scores=scores)
                        for r in sweep_ratios] for m in ("small-t importance", "random")}
    out["wall_s"] = round(time.perf_counter() - start, 2)
    return out


EXPERIMENTS["table1"] = Experiment(
    point_fn="labkit.experiments:table1_seed",
    grids=({"n": 32, "seed": [0, 1, 2, 3, 4]},),
    purpose="Table 1 on 32 digits with controls and the 10-50% ratio sweep, 5 runs (each its own base DiT)",
    compare=("probe_memorization", "null_memorization", "arms", "sweep"),
    prefix_key="train_steps", curve_steps="probe_steps", prefix_args={"curve_only": True},
)

# How long until the original DiT's memorization levels off, at n = 32 and at a larger n? The
# base's memorization probe alone (no arms), 20,000 steps in batches of 32 (full-batch at n = 32).
EXPERIMENTS["table1_larger_n"] = Experiment(
    point_fn="labkit.experiments:table1_seed",
    grids=({"n": [32, 128], "seed": 0, "train_steps": 20000, "curve_only": True},),
    purpose="the original DiT's memorization during 20,000 training steps on 32 and 128 digits (probe only): "
            "where does it level off, and is there a larger n where Table 1 can be run on a CPU?",
    compare=("probe_memorization", "null_memorization"),
    prefix_key="train_steps", curve_steps="probe_steps",
)
