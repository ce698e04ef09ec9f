"""Statistics of the paper's protocols: per-seed intervals, paired differences, the declared
labels of a training curve (Fig. 2's regimes, the training-time study's two times) and power
laws in n. Introduced in ``notebooks/02_approximation_separation.ipynb``.

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

import math

import numpy as np

__all__ = ["GEN_NATS", "MEM_POINTS", "final", "crossing_step", "training_times", "power_law",
           "seed_interval", "at_end", "paired_difference", "time_table", "regime"]

GEN_NATS = 0.25
MEM_POINTS = 0.10


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
    from ..sweeps import Table

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
