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
in n; :func:`censored_power_law` fits ``log tau = a + b log n`` to the interval-censored times
(:func:`power_law`, the least-squares fit of the uncensored ones, is deprecated).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math

import numpy as np

from .. import _superseded

__all__ = ["GEN_NATS", "MEM_POINTS", "final", "crossing_step", "training_times", "power_law",
           "sign_flip_p", "paired_test", "holm", "LABEL_MEM_MARGIN", "LABEL_LL_MARGIN",
           "MEM_MARGINS", "LL_MARGINS", "label", "labels_over_training", "generalizing_window",
           "window_rows",
           "label_sensitivity", "window_rule", "time_interval", "time_observations", "censored_power_law",
           "censored_slope_p",
           "seed_interval", "at_end", "paired_difference", "time_table", "regime", "time_law",
           "COLUMNS_NEEDED"]

GEN_NATS = 0.25
MEM_POINTS = 0.10

# The columns each training time is read from, and how a row comes to hold each one.
COLUMNS_NEEDED = {"tau_mem": ("steps", "memorization", "null_memorization"),
                  "tau_gen": ("steps", "log_likelihood", "reference_log_likelihood")}
_HOW = {
    "steps": "a training curve: rows of mixture_curve or training_time_study",
    "memorization": "a training curve: rows of mixture_curve or training_time_study",
    "null_memorization": "memorization's null rate: give the data a sampler of fresh draws "
                         "(PointCloud(points, sample=...)), or pass training_time_study("
                         "..., null_memorization=RATE) or (..., holdout=FRACTION)",
    "log_likelihood": "the samples' log-likelihood: give the data a log-density "
                      "(PointCloud(points, log_prob=...))",
    "reference_log_likelihood": "fresh draws' log-likelihood: give the data both a sampler "
                                "and a log-density (PointCloud(points, sample=..., "
                                "log_prob=...))",
    "n": "the number of training points: rows of training_time_study and of the result sets "
         "carry it; add it to a mixture_curve row (row['n'] = n)",
    "seed": "the run's seed: rows of training_time_study and of the result sets carry it",
}


# The columns a label (and the generalizing window) reads.
_LABEL_COLUMNS = ("memorization", "null_memorization", "log_likelihood", "reference_log_likelihood")


def _need(row, columns, who: str, index=None) -> None:
    """ValueError naming the first of ``columns`` that ``row`` lacks (or holds as None), what
    ``who`` needs it for and how a row comes to hold it."""
    for column in columns:
        if not isinstance(row, dict) or row.get(column) is None:
            which = "the row" if index is None else f"row {index}"
            label = ", ".join(f"{k}={row[k]!r}" for k in ("n", "seed") if isinstance(row, dict)
                              and k in row)
            raise ValueError(f"{who} needs column {column!r}, which {which}"
                             f"{' (' + label + ')' if label else ''} lacks; it comes with "
                             f"{_HOW.get(column, 'the rows of the protocol that measures it')}")


def _times(times) -> tuple[str, ...]:
    times = (times,) if isinstance(times, str) else tuple(times)
    bad = [t for t in times if t not in COLUMNS_NEEDED]
    if bad or not times:
        raise ValueError(f"times must name some of {tuple(COLUMNS_NEEDED)}, got {times!r}")
    return times


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


def training_times(row: dict, gen_nats: float = GEN_NATS, mem_points: float = MEM_POINTS,
                   times=("tau_gen", "tau_mem")) -> dict:
    """``{"tau_gen": ..., "tau_mem": ...}`` of one :func:`mixture_curve` row (see the module
    docstring for the declared rules); None where the run never got there. ``times`` picks
    which (``"tau_mem"`` alone needs no log-likelihood); a ValueError names a column the row
    lacks for one of them (:data:`COLUMNS_NEEDED`) and how to get it."""
    out = {}
    for time in _times(times):
        _need(row, COLUMNS_NEEDED[time], f"training_times ({time})")
        if time == "tau_gen":
            gap = [ll - row["reference_log_likelihood"] for ll in row["log_likelihood"]]
            out[time] = crossing_step(row["steps"], gap, -gen_nats)
        else:
            excess = [m - row["null_memorization"] for m in row["memorization"]]
            out[time] = crossing_step(row["steps"], excess, mem_points)
    return out


@_superseded("labkit.experiments.censored_power_law", remove_in="0.3")
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
    from .._table import Table

    keys = ("memorization", "log_likelihood", "train_loss")
    return Table([{**r, **{k: r[k][-1] for k in keys if isinstance(r.get(k), list)}} for r in rows])


def paired_difference(rows, key: str, a: dict, b: dict, level: float = 0.95) -> dict:
    """The per-seed difference ``key(a) - key(b)`` between two settings (``a``, ``b``: dicts of
    config values), paired on the seed, with its t-interval: ``{"mean", "lo", "hi", "seeds",
    "verdict"}``; the verdict is ``"positive"`` / ``"negative"`` when the interval excludes 0 on
    that side, else ``"unresolved"``."""
    def pick(where):
        out = {}
        for i, r in enumerate(rows):
            if all(r.get(k) == v for k, v in where.items()):
                _need(r, ("seed", key), "paired_difference", i)
                if r["seed"] in out:  # two rows of one seed: pairing them is ambiguous
                    raise ValueError(f"paired_difference: several rows match {where} at seed "
                                     f"{r['seed']!r}; narrow the setting so each seed has one")
                out[r["seed"]] = r[key]
        return out

    left, right = pick(a), pick(b)
    seeds = sorted(set(left) & set(right))
    if not seeds:
        raise ValueError(f"no seed has both {a} and {b}")
    mean, lo, hi = seed_interval([left[s] - right[s] for s in seeds], level)
    verdict = "positive" if lo > 0 else "negative" if hi < 0 else "unresolved"
    return {"mean": mean, "lo": lo, "hi": hi, "seeds": seeds, "verdict": verdict}


def time_table(rows, times=("tau_gen", "tau_mem"), **where) -> dict:
    """``{n: {"tau_gen": [...], "tau_mem": [...], "seeds": [...]}}`` over the training-time rows
    matching ``where`` (e.g. ``mixture="gmm4", width=256``), one entry per seed; ``times``
    picks which times (a row need hold only their columns)."""
    times = _times(times)
    out = {}
    for i, row in enumerate(rows):
        if any(row.get(k) != v for k, v in where.items()):
            continue
        _need(row, ("n", "seed"), "time_table", i)
        entry = out.setdefault(row["n"], {**{t: [] for t in times}, "seeds": []})
        found = training_times(row, times=times)
        for t in times:
            entry[t].append(found[t])
        entry["seeds"].append(row["seed"])
    return dict(sorted(out.items()))


@_superseded("labkit.experiments.label", remove_in="0.3")
def regime(row: dict, at: int = -1) -> str:
    """The declared Fig. 2 label of a run at evaluation ``at`` (default: the last one):
    ``"failing"`` when the samples are more than 1 nat less likely than fresh draws,
    ``"generalizing"`` when within 0.5 nat and within 10 points of the null memorization rate,
    ``"memorizing"`` when 30 or more points above it, ``"-"`` otherwise."""
    _need(row, _LABEL_COLUMNS, "regime")
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
# Tests that hold with few seeds: the exact sign-flip test and Holm's step-down adjustment

def sign_flip_p(differences) -> float:
    """Exact two-sided sign-flip p of the mean of paired ``differences`` (k values): the share of
    the 2^k sign assignments whose absolute mean is at least the observed one. With k pairs it
    cannot go below 2 / 2^k (0.25 at k = 3, 0.0625 at k = 5, 0.0078 at k = 8): few pairs cannot
    reject."""
    d = np.asarray([float(x) for x in differences], dtype=float)
    if d.size == 0 or not np.isfinite(d).all():
        raise ValueError(f"differences must be finite numbers, at least one, got "
                         f"{list(differences)}")
    if d.size > 20:
        raise ValueError(f"sign_flip_p enumerates 2^k assignments; k must be <= 20, got {d.size}")
    k = d.size
    signs = 1 - 2 * ((np.arange(2**k)[:, None] >> np.arange(k)) & 1)  # (2^k, k) of +-1
    means = np.abs(signs @ d) / k
    observed = abs(d.mean())
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))


def paired_test(a_values, b_values, level: float = 0.95) -> dict:
    """The paired comparison of two arms (values in the same order, one per pair): the mean
    difference ``a - b`` with its Student-t interval at ``level``, the two-sided t-test p and
    the exact sign-flip p (:func:`sign_flip_p`): ``{"estimate", "interval", "p_t",
    "p_sign_flip", "pairs"}``."""
    from scipy import stats

    a = [float(x) for x in a_values]
    b = [float(x) for x in b_values]
    if len(a) != len(b) or not a:
        raise ValueError(f"a_values and b_values must be equally long and non-empty, got {len(a)} "
                         f"and {len(b)}")
    diff = [x - y for x, y in zip(a, b)]
    mean, lo, hi = seed_interval(diff, level)
    if len(diff) < 2:
        p_t = float("nan")
    elif np.std(diff) == 0:
        p_t = 0.0 if mean != 0 else 1.0
    else:
        p_t = float(stats.ttest_1samp(diff, 0.0).pvalue)
    return {"estimate": mean, "interval": [lo, hi], "p_t": p_t, "p_sign_flip": sign_flip_p(diff),
            "pairs": len(diff)}


def holm(pvalues) -> list:
    """Holm's step-down adjustment of a family of p-values (None entries pass through as None):
    the k-th smallest of m times (m - k + 1), made non-decreasing, capped at 1. The values of
    ``statsmodels.stats.multitest.multipletests(method="holm")`` (tests/test_claims.py checks
    them against it), without its ``gc.collect()`` on every call, which costs a tenth of a
    second each while many objects are alive (a claims computation adjusts hundreds of
    families)."""
    pvalues = list(pvalues)
    idx = [i for i, p in enumerate(pvalues) if p is not None and np.isfinite(p)]
    out = [None] * len(pvalues)
    if idx:
        ps = np.asarray([pvalues[i] for i in idx], dtype=float)
        order = np.argsort(ps, kind="stable")
        factor = len(ps) - np.arange(len(ps))  # m, m - 1, ..., 1
        adjusted = np.empty_like(ps)
        adjusted[order] = np.minimum(np.maximum.accumulate(ps[order] * factor), 1.0)
        for i, p in zip(idx, adjusted):
            out[i] = float(p)
    return out


# ----------------------------------------------------------------------------------------------
# Labels with declared margins on both sides (the Fig. 2 regimes, the generalizing window)

# A run *generalizes* at an evaluation when its memorization is within LABEL_MEM_MARGIN of the
# null rate and its samples' log-likelihood within LABEL_LL_MARGIN nat of fresh draws; it
# *memorizes* when memorization exceeds the null rate by more than LABEL_MEM_MARGIN (the
# training-time study's mark, MEM_POINTS); it *fails* when it does not memorize and its samples
# are more than LABEL_LL_MARGIN nat less likely than fresh draws. The rows store the *mean*
# log-likelihood of the samples per evaluation only (no median or trimmed mean), so the
# likelihood side of the rule is read off the mean, which a few far-off samples can drag down.
LABEL_MEM_MARGIN = MEM_POINTS
LABEL_LL_MARGIN = GEN_NATS
# The margins a label verdict is re-read at (the threshold-sensitivity table): 3 x 3.
MEM_MARGINS = (0.05, 0.075, 0.10)  # never wider than the memorizing mark, MEM_POINTS
LL_MARGINS = (0.10, 0.25, 0.50)
LABELS = ("failing", "generalizing", "memorizing", "-")


def _at(row, key, at):
    value = row[key]
    return value[at] if isinstance(value, list) else value


def label(row: dict, at: int = -1, mem_margin: float = LABEL_MEM_MARGIN,
          ll_margin: float = LABEL_LL_MARGIN) -> str:
    """The declared label of a run at evaluation ``at`` (default: the last): ``"memorizing"``
    when memorization exceeds its null rate by more than ``mem_margin``; else
    ``"generalizing"`` when it is no more than ``mem_margin`` below the null rate and the mean
    log-likelihood is within ``ll_margin`` nat of fresh draws; else ``"failing"`` when the
    samples are more than ``ll_margin`` nat less likely; ``"-"`` otherwise (more likely than
    fresh draws by more than the margin without memorizing). The likelihood side reads the
    *mean* log-likelihood, the only statistic the rows store: a few far-off samples drag it
    down and can move a label among generalizing, failing and "-", never to or from
    memorizing (decided by memorization alone).
    :func:`regime` is the looser one-sided rule with fixed margins."""
    if mem_margin <= 0 or ll_margin <= 0:
        raise ValueError(f"mem_margin and ll_margin must be positive, got {mem_margin}, "
                         f"{ll_margin}")
    _need(row, _LABEL_COLUMNS, "label")
    excess = _at(row, "memorization", at) - row["null_memorization"]
    gap = _at(row, "log_likelihood", at) - row["reference_log_likelihood"]
    if excess > mem_margin:
        return "memorizing"
    if abs(gap) <= ll_margin and excess >= -mem_margin:
        return "generalizing"
    return "failing" if gap < -ll_margin else "-"


def labels_over_training(row: dict, **margins) -> list[str]:
    """:func:`label` at every evaluation after step 0 of a curve row."""
    return [label(row, i, **margins) for i in range(1, len(row["steps"]))]


_WINDOW_CONSECUTIVE = contextvars.ContextVar("window_consecutive", default=1)


@contextlib.contextmanager
def window_rule(consecutive: int = 2):
    """Within the block, :func:`generalizing_window` (called without ``consecutive``) counts
    only runs of at least ``consecutive`` consecutive generalizing evaluations: a robustness
    reading of a declared window test whose code cannot change."""
    if not isinstance(consecutive, int) or isinstance(consecutive, bool) or consecutive < 1:
        raise ValueError(f"consecutive must be a positive int, got {consecutive!r}")
    token = _WINDOW_CONSECUTIVE.set(consecutive)
    try:
        yield
    finally:
        _WINDOW_CONSECUTIVE.reset(token)


def generalizing_window(row: dict, consecutive: int | None = None, **margins) -> dict:
    """When a run generalizes under :func:`label`: ``{"steps": [...], "first": step or None,
    "quality_step": ..., "memorization_step": ...}``: the evaluation steps labelled
    generalizing, the first of them, the first step whose log-likelihood is within the margin
    of fresh draws (either side) and the first step whose memorization exceeds the margin. A run
    with no generalizing step has no window: it memorizes before its samples reach the quality
    of fresh draws (or never reaches it). ``consecutive`` (default 1, or the one set by
    :func:`window_rule`): only generalizing evaluations in a run of at least that many
    consecutive ones count."""
    mem_margin = margins.get("mem_margin", LABEL_MEM_MARGIN)
    ll_margin = margins.get("ll_margin", LABEL_LL_MARGIN)
    consecutive = _WINDOW_CONSECUTIVE.get() if consecutive is None else consecutive
    _need(row, ("steps", *_LABEL_COLUMNS), "generalizing_window")
    steps = row["steps"][1:]
    labs = labels_over_training(row, mem_margin=mem_margin, ll_margin=ll_margin)
    gaps = [ll - row["reference_log_likelihood"] for ll in row["log_likelihood"][1:]]
    excess = [m - row["null_memorization"] for m in row["memorization"][1:]]
    gen = [s for s, lab in zip(steps, labs) if lab == "generalizing"]
    if consecutive > 1:  # keep the evaluations in runs of >= consecutive generalizing ones
        runs, current = [], []
        for s, lab in zip(steps, labs):
            if lab == "generalizing":
                current.append(s)
            else:
                runs, current = runs + [current], []
        gen = [s for run in runs + [current] if len(run) >= consecutive for s in run]
    quality = next((s for s, g in zip(steps, gaps) if abs(g) <= ll_margin), None)
    memorized = next((s for s, e in zip(steps, excess) if e > mem_margin), None)
    return {"steps": gen, "first": gen[0] if gen else None, "quality_step": quality,
            "memorization_step": memorized}


def window_rows(rows, **where) -> list[dict]:
    """One printable dict per training-time run matching ``where``: ``n``, ``seed``, the
    brackets of the memorization time (``mem_lower``, ``mem_upper``) and of the quality time of
    :func:`training_times` (``gen_lower``, ``gen_upper``: mean log-likelihood within
    ``GEN_NATS`` below fresh draws; an upper None: beyond the budget), ``memorizes_first``
    (True when the memorization bracket ends before the quality bracket starts, False when it
    starts after it ends, None when they overlap), the first step within the likelihood margin
    of fresh draws on either side (``quality_step``), the first generalizing step and how many
    evaluations are labelled generalizing (:func:`label`, declared margins)."""
    out = []
    for i, row in enumerate(rows):
        if any(row.get(k) != v for k, v in where.items()):
            continue
        _need(row, ("n", "seed", "steps", *_LABEL_COLUMNS), "window_rows", i)
        window = generalizing_window(row)
        excess = [m - row["null_memorization"] for m in row["memorization"]]
        gap = [ll - row["reference_log_likelihood"] for ll in row["log_likelihood"]]
        mem = time_interval(row["steps"], excess, MEM_POINTS)
        gen = time_interval(row["steps"], gap, -GEN_NATS)
        first = (True if mem["upper"] is not None and mem["upper"] <= gen["lower"] else
                 False if gen["upper"] is not None and gen["upper"] <= mem["lower"] else None)
        out.append({"n": row["n"], "seed": row["seed"], "mem_lower": mem["lower"],
                    "mem_upper": mem["upper"], "gen_lower": gen["lower"],
                    "gen_upper": gen["upper"], "memorizes_first": first,
                    "quality_step": window["quality_step"], "first_generalizing": window["first"],
                    "generalizing_evals": len(window["steps"])})
    return sorted(out, key=lambda r: (r["n"], r["seed"]))


def label_sensitivity(rows, verdict, mem_margins=MEM_MARGINS, ll_margins=LL_MARGINS) -> list[dict]:
    """A label verdict re-read at every pair of margins: ``verdict(rows, mem_margin, ll_margin)``
    (any JSON value) at each of ``mem_margins`` x ``ll_margins``; returns one dict per pair,
    ``{"mem_margin", "ll_margin", "value"}``, in the order a notebook prints them."""
    return [{"mem_margin": m, "ll_margin": g, "value": verdict(rows, m, g)}
            for m in mem_margins for g in ll_margins]


# ----------------------------------------------------------------------------------------------
# Censoring-aware training-time laws: log tau = a + b log n + sigma * N(0, 1), each time known
# only to lie between two evaluation steps (or beyond the budget)

def time_interval(steps, values, level: float) -> dict:
    """Where a curve first reaches ``level`` (>=), as evaluated: ``{"lower", "upper"}`` = the
    last evaluation step below the mark and the first at or above it; ``upper`` None when the
    curve never reaches it (right-censored at the last step, the budget). No interpolation."""
    steps, values = [int(s) for s in steps], [float(v) for v in values]
    if len(steps) != len(values) or not steps:
        raise ValueError(f"steps and values must be equally long and non-empty, got {len(steps)} "
                         f"and {len(values)}")
    for i, v in enumerate(values):
        if v >= level:
            if i == 0 or steps[i] <= 0:
                raise ValueError(f"the curve is at the mark {level} at its first evaluation "
                                 f"(step {steps[i]}): no time to bracket")
            return {"lower": steps[i - 1], "upper": steps[i]}
    return {"lower": steps[-1], "upper": None}


def time_observations(rows, time: str = "tau_mem", mem_points: float = MEM_POINTS,
                      gen_nats: float = GEN_NATS, **where) -> list[dict]:
    """The interval-censored times of the training-time rows matching ``where``: one
    ``{"x": n, "seed", "lower", "upper"}`` per run. ``time="tau_mem"``: memorization at least
    ``mem_points`` above its null rate; ``"tau_gen"``: the samples' mean log-likelihood within
    ``gen_nats`` below fresh draws (the quality time of :func:`training_times`). Each row needs
    ``n``, ``seed`` and the columns of that time only (:data:`COLUMNS_NEEDED`); a ValueError
    names the first one missing and how to get it."""
    _choice = ("tau_mem", "tau_gen")
    if time not in _choice:
        raise ValueError(f"time must be one of {_choice}, got {time!r}")
    out = []
    for i, row in enumerate(rows):
        if any(row.get(k) != v for k, v in where.items()):
            continue
        _need(row, ("n", "seed", *COLUMNS_NEEDED[time]), f"time_observations ({time})", i)
        if time == "tau_mem":
            values = [m - row["null_memorization"] for m in row["memorization"]]
            level = mem_points
        else:
            values = [ll - row["reference_log_likelihood"] for ll in row["log_likelihood"]]
            level = -gen_nats
        try:
            bounds = time_interval(row["steps"], values, level)
        except ValueError as exc:
            raise ValueError(f"time_observations ({time}), row {i} (n={row['n']!r}, "
                             f"seed={row['seed']!r}): {exc}") from None
        out.append({"x": row["n"], "seed": row["seed"], **bounds})
    return sorted(out, key=lambda o: (o["x"], o["seed"]))


def time_law(rows, time: str = "tau_mem", *, level: float = 0.95, null: float | None = None,
             mem_points: float = MEM_POINTS, gen_nats: float = GEN_NATS,
             local_intervals: bool = True, **where) -> dict:
    """The censoring-aware law ``log tau = a + b log n`` of one training time over the rows of
    a study (e.g. :func:`~labkit.experiments.training_time_study`'s at several n) matching
    ``where``, in one call: :func:`censored_power_law` of :func:`time_observations`. Returns
    the fit's dict with its ``"observations"`` and the ``"time"`` fitted. A ValueError says
    when no run reached the mark within its budget (every time right-censored: the rows do not
    bound a law) or a row lacks a column the time needs."""
    obs = time_observations(rows, time, mem_points, gen_nats, **where)
    if obs and all(o["upper"] is None for o in obs):
        raise ValueError(f"time_law ({time}): none of the {len(obs)} runs reached the mark "
                         f"within its budget (last steps {sorted({o['lower'] for o in obs})}), "
                         "so the rows do not bound a law; train longer (steps=...)")
    fit = censored_power_law(obs, level=level, null=null, local_intervals=local_intervals)
    return {**fit, "time": time, "observations": obs}


def _log_bounds(observations):
    lo = np.array([math.log(o["lower"]) if o["lower"] > 0 else -np.inf for o in observations])
    hi = np.array([math.log(o["upper"]) if o["upper"] is not None else np.inf
                   for o in observations])
    return lo, hi


@functools.lru_cache(maxsize=None)
def _scipy():
    """scipy's ``log_ndtr`` and ``minimize``, imported once (the fits call them thousands of
    times, and a ``from scipy... import`` inside them costs more than the arithmetic)."""
    from scipy.optimize import minimize
    from scipy.special import log_ndtr

    return log_ndtr, minimize


def _interval_loglik(mu, sigma, lo, hi):
    """``(loglik, d loglik / d mu (per observation), d loglik / d log sigma)`` of
    sum_i log P(lo_i < Y_i < hi_i), Y_i ~ N(mu_i, sigma^2), computed on the side of the normal
    where the difference of two CDFs does not cancel."""
    log_ndtr = _scipy()[0]
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    flip = a > 0  # upper tail: P(a < Z < b) = P(-b < Z < -a)
    a2, b2 = np.where(flip, -b, a), np.where(flip, -a, b)
    lb, la = log_ndtr(b2), log_ndtr(a2)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = lb + np.log1p(-np.exp(la - lb))
        # phi(z) / P and z phi(z) / P, zero at infinite z
        ra = np.where(np.isfinite(a), np.exp(-a**2 / 2 - 0.5 * math.log(2 * math.pi) - logp), 0)
        rb = np.where(np.isfinite(b), np.exp(-b**2 / 2 - 0.5 * math.log(2 * math.pi) - logp), 0)
        za = np.where(np.isfinite(a), a, 0) * ra
        zb = np.where(np.isfinite(b), b, 0) * rb
    return float(np.sum(logp)), (ra - rb) / sigma, float(np.sum(za - zb))


def _fit(design, lo, hi, fixed=None, sigma=None):
    """Maximum likelihood of the interval-censored normal regression ``Y = design @ beta +
    sigma Z``; ``fixed = (column, value)`` holds one coefficient fixed (a profile), ``sigma``
    holds the spread fixed. Returns ``(loglik, beta, sigma)``."""
    minimize = _scipy()[1]
    k = design.shape[1]
    free = [j for j in range(k) if fixed is None or j != fixed[0]]
    mid = np.where(np.isfinite(hi), (lo + np.where(np.isfinite(hi), hi, 0)) / 2, lo)
    mid = np.where(np.isfinite(lo), mid, hi)
    offset = 0.0 if fixed is None else design[:, fixed[0]] * fixed[1]
    start = np.linalg.lstsq(design[:, free], mid - offset, rcond=None)[0]
    resid = mid - offset - design[:, free] @ start
    theta0 = np.append(start, math.log(max(float(np.std(resid)), 0.05)))
    x_free = design[:, free]
    if sigma is not None:
        theta0[-1] = math.log(sigma)

    def nll(theta):
        ll, d_mu, d_log_sigma = _interval_loglik(offset + x_free @ theta[:-1],
                                                 math.exp(theta[-1]), lo, hi)
        return -ll, -np.append(x_free.T @ d_mu, 0.0 if sigma is not None else d_log_sigma)

    best = minimize(nll, theta0, jac=True, method="BFGS", options={"gtol": 1e-8})
    # BFGS can stop early at a flat tail of a censored likelihood: polish unless the gradient
    # already vanishes (it also reports failure when rounding stops it at the optimum)
    if not best.success and np.abs(best.jac).max() > 1e-5:
        best = minimize(lambda t: nll(t)[0], best.x, method="Nelder-Mead",
                        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20000})
    beta = np.zeros(k)
    beta[free] = best.x[:-1]
    if fixed is not None:
        beta[fixed[0]] = fixed[1]
    return -float(best.fun), beta, math.exp(best.x[-1])


def censored_power_law(observations, level: float = 0.95, null: float | None = None,
                       local_intervals: bool = True) -> dict:
    """Fit ``log tau = a + b log x + sigma Z`` by maximum likelihood to interval-censored times
    (``observations``: dicts ``{"x", "seed", "lower", "upper"}``, ``upper`` None = beyond the
    budget), the log-normal accelerated-failure-time model of lifelines'
    ``LogNormalAFTFitter.fit_interval_censoring``, written once here and tested against it.

    Returns ``{"slope", "intercept", "sigma", "interval"`` (profile-likelihood, at ``level``;
    an end is None where the data do not bound the slope), ``"p"`` (likelihood-ratio test of
    ``slope = null``; None without ``null``), ``"lack_of_fit_p"`` (likelihood-ratio test of a
    quadratic term in log x, centred), ``"curvature"`` (that term's coefficient),
    ``"local_slopes"`` (between neighbouring x: ``{"x0", "x1", "slope", "interval"}``, from one
    mean of log tau per x at the line's spread; ``"interval"`` None unless
    ``local_intervals``), ``"loglik"``, ``"runs"``, ``"censored"}``.
    """
    from scipy import stats

    obs = list(observations)
    xs = sorted({o["x"] for o in obs})
    if len(xs) < 2 or len(obs) < 3:
        raise ValueError(f"censored_power_law needs runs at 2 or more x, at least 3, got "
                         f"{len(obs)} at x = {xs}")
    lo, hi = _log_bounds(obs)
    if not np.all(np.isfinite(lo) | np.isfinite(hi)):
        raise ValueError("every observation needs a finite lower or upper bound")
    u = np.log([o["x"] for o in obs])
    centre = float(np.mean(np.log(xs)))
    line = np.column_stack([np.ones_like(u), u])
    ll, beta, sigma = _fit(line, lo, hi)
    crit = stats.chi2.ppf(level, 1)
    p_null = None if null is None else censored_slope_p(obs, null, ll)
    out = {"slope": float(beta[1]), "intercept": float(beta[0]), "sigma": sigma,
           "interval": _profile_bounds(line, lo, hi, 1, beta[1], ll, crit), "p": p_null,
           "loglik": ll, "runs": len(obs), "censored": sum(o["upper"] is None for o in obs),
           "lack_of_fit_p": None, "curvature": None, "local_slopes": []}
    if len(xs) >= 3:
        quad = np.column_stack([line, (u - centre) ** 2])
        ll_q, beta_q, _ = _fit(quad, lo, hi)
        out["lack_of_fit_p"] = float(stats.chi2.sf(max(0.0, 2 * (ll_q - ll)), 1))
        out["curvature"] = float(beta_q[2])
    # each local slope: the difference of the mean log tau at two neighbouring x, in a model
    # with one mean per x and the line's spread (a free spread would collapse to 0 when all
    # runs at an x share one bracket), with its profile-likelihood interval
    groups = np.column_stack([[o["x"] == x for o in obs] for x in xs]).astype(float)
    for j, (x0, x1) in enumerate(zip(xs, xs[1:])):
        design = groups.copy()
        design[:, j] += groups[:, j + 1]  # column j: the mean at x0; column j + 1: the step
        ll_j, coef, _ = _fit(design, lo, hi, sigma=sigma)
        scale = math.log(x1 / x0)
        entry = {"x0": x0, "x1": x1, "slope": float(coef[j + 1] / scale), "interval": None}
        if local_intervals:
            ends = _profile_bounds(design, lo, hi, j + 1, coef[j + 1], ll_j, crit, sigma=sigma)
            entry["interval"] = [None if e is None else e / scale for e in ends]
        out["local_slopes"].append(entry)
    return out


def _profile_bounds(design, lo, hi, col, estimate, loglik, crit, sigma=None):
    """The profile-likelihood interval of coefficient ``col``: where twice the drop of the
    log-likelihood from ``loglik`` reaches ``crit``; an end is None where it never does."""
    from scipy.optimize import brentq

    def deficit(b):
        return 2 * (loglik - _fit(design, lo, hi, fixed=(col, b), sigma=sigma)[0]) - crit

    bounds = []
    for sign in (-1, 1):  # walk out until the profile falls below the cut, then bisect
        near, far = estimate, estimate + sign * 0.5
        while (gap := deficit(far)) < 0 and abs(far - estimate) < 100:
            near, far = far, estimate + 2 * (far - estimate)
        bounds.append(None if gap < 0 else float(brentq(deficit, *sorted((near, far)),
                                                        xtol=1e-4)))
    return bounds


def censored_slope_p(observations, null: float, loglik: float | None = None) -> float:
    """Likelihood-ratio p of ``slope = null`` in :func:`censored_power_law`'s model (``loglik``:
    the unconstrained fit's, when already known)."""
    from scipy import stats

    obs = list(observations)
    lo, hi = _log_bounds(obs)
    u = np.log([o["x"] for o in obs])
    line = np.column_stack([np.ones_like(u), u])
    if loglik is None:
        loglik = _fit(line, lo, hi)[0]
    stat = max(0.0, 2 * (loglik - _fit(line, lo, hi, fixed=(1, float(null)))[0]))
    return float(stats.chi2.sf(stat, 1))
