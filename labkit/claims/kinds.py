"""The kinds of claim, one registry entry each (:data:`KIND_REGISTRY`): how a claim of the kind
is computed from its rows (``compute(claim, rows, ctx) -> entry``), how its verdict follows once
the family's adjusted p are known (``verdict(claim, entry) -> (verdict, note, reason)``) and,
for a kind without a p, why not (``no_p``). A new kind is one entry here and its name in
:data:`labkit.claims.model.KINDS`.

``reason`` is a short plain-language category of why a verdict is what it is (``"too few
seeds"``, ``"a line does not fit"``, ``"not detected"``, ...), read by the tables and
:func:`labkit.claims.prose.sentence`. Each entry also lists ``read``: the provenance of every row
it read (the confirmatory status is derived from them, then the list is dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..experiments import stats
from . import rows as R
from .model import ALPHA, KINDS, POWER, Claim
from .multiplicity import EXACT_SEEDS, sign_flip_minp

__all__ = ["Kind", "KIND_REGISTRY", "minimal_detectable_effect"]


@dataclass(frozen=True)
class Kind:
    """How one kind of claim is computed and decided (see the module docstring)."""

    compute: Callable
    verdict: Callable
    no_p: str | None = None


def _side(estimate, direction):
    return "supported" if np.sign(estimate) == direction else "contradicted"


def minimal_detectable_effect(sd: float, pairs: int, alpha: float = ALPHA,
                              power: float = POWER) -> float | None:
    """The smallest true mean difference a two-sided paired t-test at ``alpha`` detects with
    probability ``power`` over ``pairs`` pairs whose differences have SD ``sd``
    (statsmodels' ``TTestPower``); None below two pairs or at SD 0."""
    from statsmodels.stats.power import TTestPower

    if pairs < 2 or not sd > 0:
        return None
    effect = TTestPower().solve_power(nobs=pairs, alpha=alpha, power=power,
                                      alternative="two-sided")
    return float(effect * sd)


# --- paired ---------------------------------------------------------------------------------------

def _paired(c: Claim, rows, ctx) -> dict:
    rows = rows if c.seeds is None else [r for r in rows if r["seed"] in c.seeds]
    left, right = R.pick(rows, c.a, c.metric), R.pick(rows, c.b, c.metric_b or c.metric)
    seeds = sorted(set(left) & set(right))
    entry = {"a": c.a, "b": c.b, "pair_on": "seed", "seeds": seeds,
             "pairs": [{"seed": s, "a": left[s][0], "b": right[s][0]} for s in seeds],
             "read": [side[s][1].get(R.PROVENANCE, {}) for s in seeds for side in (left, right)]}
    if c.metric_b:
        entry["metric_b"] = c.metric_b
    if not seeds:
        return {**entry, "estimate": None, "interval": None, "p": None, "p_sign_flip": None}
    a, b = [left[s][0] for s in seeds], [right[s][0] for s in seeds]
    if len(seeds) <= EXACT_SEEDS:
        test = stats.paired_test(a, b)
    else:  # too many pairs to enumerate: the sign-flip p from random assignments
        test = {**_t_only(a, b),
                "p_sign_flip": sign_flip_minp([dict(zip(seeds, np.subtract(a, b)))])[0][0]}
    p_t = test["p_t"] if math.isfinite(test["p_t"]) else None
    diff = np.subtract(a, b)
    sd = float(np.std(diff, ddof=1)) if len(seeds) > 1 else None
    out = {**entry, "estimate": test["estimate"],
           "interval": test["interval"] if len(seeds) > 1 else None,  # one run: no interval
           "p": p_t, "p_sign_flip": test["p_sign_flip"], "sd": sd,
           "mde": None if sd is None else minimal_detectable_effect(sd, len(seeds))}
    if c.margin is not None:
        out["margin"] = c.margin
        out["p_equivalence"] = None
        if len(seeds) > 1 and sd > 0:
            from statsmodels.stats.weightstats import ttost_paired

            out["p_equivalence"] = float(ttost_paired(np.asarray(a, float), np.asarray(b, float),
                                                      -c.margin, c.margin)[0])
    return out


def _t_only(a, b) -> dict:
    """The t part of :func:`labkit.experiments.paired_test` (estimate, interval, p)."""
    from scipy import stats as sps

    diff = np.subtract(a, b)
    mean, lo, hi = stats.seed_interval(diff)
    p_t = float(sps.ttest_1samp(diff, 0.0).pvalue) if np.std(diff) > 0 else float(mean == 0)
    return {"estimate": mean, "interval": [lo, hi], "p_t": p_t}


def _few_pairs_note(k: int) -> str:
    return (f"{k} pairs: the exact sign-flip test cannot go below 2 / 2^{k} = {2 / 2**k:.3g}, "
            "too few seeds to reach 0.05")


def _paired_verdict(c: Claim, e: dict):
    k = len(e["seeds"])
    if k < 2:
        return "unresolved", "one run: no interval and no test", "too few seeds"
    if e["p_adjusted"] is not None and e["p_adjusted"] < ALPHA \
            and e["p_sign_flip_adjusted"] < ALPHA:
        return _side(e["estimate"], c.direction), "", ""
    if c.margin is not None and e.get("p_equivalence_adjusted") is not None \
            and e["p_equivalence_adjusted"] < ALPHA:
        return "equivalent", (f"the two one-sided tests place the difference within "
                              f"+-{c.margin:g} (adjusted p {e['p_equivalence_adjusted']:.2g})"), ""
    if 2 / 2**k >= ALPHA:
        return "unresolved", _few_pairs_note(k), "too few seeds"
    if e["p_adjusted"] is not None and e["p_adjusted"] < ALPHA:
        return "unresolved", (f"the t-test rejects (Holm p {e['p_adjusted']:.2g}) but the exact "
                              f"sign-flip test does not (adjusted p "
                              f"{e['p_sign_flip_adjusted']:.2g}, {k} pairs)"), "too few seeds"
    return "unresolved", "Holm-adjusted p at or above 0.05", "not detected"


# --- laws -----------------------------------------------------------------------------------------

def _law_fit(c: Claim, metric: str, where: dict, rows, ctx):
    mem_points = ctx.get("mem_points", stats.MEM_POINTS)
    gen_nats = ctx.get("gen_nats", stats.GEN_NATS)
    key = (metric, tuple(sorted(where.items())), c.seeds, mem_points, gen_nats)
    cache = ctx.setdefault("laws", {})
    if key not in cache:
        read, obs = R.where(rows, where, c.seeds), []
        try:  # local slopes' intervals only where a conclusion reads them
            obs = stats.time_observations(read, metric, mem_points=mem_points,
                                          gen_nats=gen_nats)
            fit = stats.censored_power_law(obs, local_intervals=metric == "tau_mem")
        except ValueError:  # too few runs for a law, or a mark reached at the first evaluation
            fit = None
        cache[key] = (obs, fit, [r.get(R.PROVENANCE, {}) for r in read])
    return cache[key]


def _law_seeds(obs):
    by_x = {}
    for o in obs:
        by_x.setdefault(o["x"], set()).add(o["seed"])
    return sorted(set.intersection(*by_x.values())) if by_x else []


def _law(c: Claim, rows, ctx) -> dict:
    obs, fit, read = _law_fit(c, c.metric, c.a, rows, ctx)
    head = {"a": c.a, "seeds": _law_seeds(obs), "observations": obs, "null": c.null,
            "read": read}
    if fit is None:
        return {**head, "estimate": None, "interval": None, "p": None}
    out = {**head, "estimate": fit["slope"], "interval": fit["interval"],
           "p": stats.censored_slope_p(obs, c.null, fit["loglik"]),
           **{k: fit[k] for k in ("intercept", "sigma", "censored", "lack_of_fit_p",
                                  "local_slopes", "curvature")}}
    if c.kind == "law_curvature":
        out.update(estimate=fit["curvature"], interval=None, p=fit["lack_of_fit_p"],
                   slope=fit["slope"])
    return out


def _local_off_side(c: Claim, e: dict, want: int):
    """The first local slope whose 95% interval is not wholly on side ``want`` of ``null``
    (None when every one is; a law without local slopes returns a placeholder)."""
    if not e.get("local_slopes"):
        return {"x0": None, "x1": None}
    for s in e["local_slopes"]:
        lo, hi = s["interval"] or (None, None)
        side = 1 if lo is not None and lo > c.null else -1 if hi is not None and hi < c.null else 0
        if side != want:
            return s
    return None


def _law_verdict(c: Claim, e: dict):
    p_adj = e["p_adjusted"]
    if p_adj is None or p_adj >= ALPHA:
        return "unresolved", "Holm-adjusted p at or above 0.05", "not detected"
    delta = e["estimate"] - (c.null if c.kind == "law" else 0.0)
    if c.kind == "law" and c.null != 0:  # "faster than linear": at every n, on the local slopes
        open_ = _local_off_side(c, e, int(np.sign(delta)))
        if open_ is not None:
            where = "" if open_["x0"] is None else f" (n = {open_['x0']} to {open_['x1']})"
            return "unresolved", (f"the line's slope differs from {c.null:g}, but not every "
                                  f"local slope's 95% interval excludes {c.null:g}{where}: "
                                  "a line does not describe the law at every n"), \
                "a line does not fit"
        return _side(delta, c.direction), f"every local slope is on the same side of {c.null:g}", ""
    return _side(delta, c.direction), "", ""


def _law_compare(c: Claim, rows, ctx) -> dict:
    obs_a, fit_a, read_a = _law_fit(c, c.metric, c.a, rows, ctx)
    obs_b, fit_b, read_b = _law_fit(c, c.metric_b, c.b, rows, ctx)
    head = {"a": c.a, "b": c.b, "metric_b": c.metric_b, "read": read_a + read_b}
    if fit_a is None or fit_b is None:
        return {**head, "seeds": [], "estimate": None, "interval": None, "p": None}
    (lo_a, hi_a), (lo_b, hi_b) = fit_a["interval"], fit_b["interval"]
    interval = [None if lo_a is None or hi_b is None else lo_a - hi_b,
                None if hi_a is None or lo_b is None else hi_a - lo_b]
    return {**head, "seeds": sorted(set(_law_seeds(obs_a)) & set(_law_seeds(obs_b))),
            "estimate": fit_a["slope"] - fit_b["slope"], "interval": interval, "p": None,
            "slopes": [fit_a["slope"], fit_b["slope"]]}


def _law_compare_verdict(c: Claim, e: dict):
    lo, hi = e["interval"]
    if (lo is not None and lo > 0) or (hi is not None and hi < 0):
        return _side(e["estimate"], c.direction), "the slopes' 95% intervals do not overlap", ""
    return "unresolved", "the slopes' 95% intervals overlap", "not detected"


# --- labels ---------------------------------------------------------------------------------------

def _label(c: Claim, rows, ctx) -> dict:
    rows = R.where(rows, c.a, c.seeds)
    if not rows:
        return {"seeds": [], "estimate": None, "interval": None, "p": None, "read": []}
    table = stats.label_sensitivity(rows, c.check)
    declared = c.check(rows, stats.LABEL_MEM_MARGIN, stats.LABEL_LL_MARGIN)
    holds = [cell["value"]["holds"] for cell in table]
    verdict = "supported" if all(holds) else "contradicted" if not any(holds) else "unresolved"
    return {"seeds": sorted({r["seed"] for r in rows}), "estimate": float(declared["holds"]),
            "interval": None, "p": None, "detail": declared, "sensitivity": table,
            "label_verdict": verdict, "margins": {"mem_margin": stats.LABEL_MEM_MARGIN,
                                                  "ll_margin": stats.LABEL_LL_MARGIN},
            "read": [r.get(R.PROVENANCE, {}) for r in rows]}


def _label_verdict(c: Claim, e: dict):
    n = len(e["sensitivity"])
    if e["label_verdict"] == "unresolved":
        held = sum(cell["value"]["holds"] for cell in e["sensitivity"])
        return "unresolved", (f"turns on the label margins: holds at {held} of the {n} pairs "
                              "of margins, fails at the others"), "a threshold it turns on"
    return e["label_verdict"], f"the same at all {n} pairs of margins", ""


KIND_REGISTRY: dict[str, Kind] = {
    "paired": Kind(_paired, _paired_verdict),
    "law": Kind(_law, _law_verdict),
    "law_curvature": Kind(_law, _law_verdict),
    "law_compare": Kind(_law_compare, _law_compare_verdict,
                        no_p="decided by whether the two slopes' 95% intervals overlap (a "
                             "conservative rule; the slopes come from fits without a joint "
                             "model, so no p)"),
    "label": Kind(_label, _label_verdict,
                  no_p="a count of runs read at every pair of margins, with no sampling model "
                       "of the labels, so no p"),
}
assert tuple(KIND_REGISTRY) == KINDS
