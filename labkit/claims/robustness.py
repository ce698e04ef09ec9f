"""The readings beside every verdict (:func:`attach`):

- ``loso``: leave-one-seed-out. Each seed a claim reads is left out of every claim of its
  family, the family is adjusted and decided again; ``stability`` is the share of leave-outs
  that keep the verdict, ``changes`` the seeds whose removal changes it. Reported beside the
  verdict; it does not decide it.
- ``choices``: the analysis choices a verdict is re-read under. The laws' memorization mark
  (:data:`MEM_MARKS`, 5 to 20 points above the null rate) and quality mark (:data:`GEN_MARKS`);
  the window tests with a window of at least two consecutive evaluations. A supported,
  contradicted or equivalent verdict that changes under one of them becomes unresolved, and its
  note names the choice and the settings where it differs. (The label claims' margins are
  read within the claim itself: :data:`labkit.experiments.MEM_MARGINS` x ``LL_MARGINS``.)
"""

from __future__ import annotations

import contextlib

from .labeltests import WINDOW_TESTS, two_evaluations

__all__ = ["MEM_MARKS", "GEN_MARKS", "CHOICES", "attach"]

MEM_MARKS = (0.05, 0.075, 0.10, 0.125, 0.15, 0.20)
GEN_MARKS = (0.10, 0.25, 0.50)


def _uses(c, metric: str) -> bool:
    return c.kind.startswith("law") and metric in (c.metric, c.metric_b)


# name, unit, the claims it applies to, its settings, and how a setting is applied:
# (ctx for the kinds, or a context manager factory)
CHOICES = (
    ("memorization mark", "points", lambda c: _uses(c, "tau_mem"), MEM_MARKS,
     lambda v: ({"mem_points": v}, contextlib.nullcontext)),
    ("quality mark", "nat", lambda c: _uses(c, "tau_gen"), GEN_MARKS,
     lambda v: ({"gen_nats": v}, contextlib.nullcontext)),
    ("evaluations a window needs", "", lambda c: c.check in WINDOW_TESTS, (1, 2),
     lambda v: ({}, contextlib.nullcontext if v == 1 else two_evaluations)),
)


def _show(value, unit):
    return f"{100 * value:g} {unit}" if unit == "points" else f"{value:g}" + (
        f" {unit}" if unit else "")


def _family_members(claims, out, families):
    return [c for c, e in zip(claims, out) if e["family"] in families]


def _loso(claims, rows, out, evaluate, confirmatory):
    seeds = sorted({s for e in out for s in e["seeds"]})
    kept = {e["id"]: [] for e in out}
    for seed in seeds:
        families = {e["family"] for e in out if seed in e["seeds"]}
        subset = _family_members(claims, out, families)
        again = evaluate(subset, rows, drop_seed=seed, confirmatory=confirmatory, awaits=False)
        for e in again:
            if e["id"] in kept and seed in next(x for x in out if x["id"] == e["id"])["seeds"]:
                kept[e["id"]].append((seed, e["verdict"]))
    for e in out:
        readings = kept[e["id"]]
        if len(e["seeds"]) < 2 or e["awaits_seeds"]:
            e["loso"] = None
            continue
        base = e.get("reading", e["verdict"])  # the verdict at the declared settings
        changes = [{"seed": s, "verdict": v} for s, v in readings if v != base]
        e["loso"] = {"stability": 1 - len(changes) / len(readings), "leave_outs": len(readings),
                     "changes": changes}


def _choices(claims, rows, out, evaluate, confirmatory):
    by_id = {e["id"]: e for e in out}
    for name, unit, applies, values, setting in CHOICES:
        targets = [c for c in claims if applies(c) and not by_id[c.id]["awaits_seeds"]]
        if not targets:
            continue
        families = {by_id[c.id]["family"] for c in targets}
        subset = _family_members(claims, out, families)
        readings = {c.id: [] for c in targets}
        for v in values:
            ctx, manager = setting(v)
            with manager():
                again = evaluate(subset, rows, ctx=dict(ctx), confirmatory=confirmatory)
            for e in again:
                if e["id"] in readings:
                    readings[e["id"]].append({"value": v, "verdict": e["verdict"]})
        for c in targets:
            by_id[c.id].setdefault("choices", []).append(
                {"choice": name, "unit": unit, "readings": readings[c.id]})


def _at(choice, verdict) -> str:
    return ", ".join(_show(r["value"], choice["unit"]) for r in choice["readings"]
                     if r["verdict"] == verdict)


def _settle(out):
    """A verdict that changes under a choice becomes unresolved (its note names the choice);
    the verdict at the declared settings is kept as ``reading``."""
    for e in out:
        if e["verdict"] == "unresolved":
            continue
        for choice in e.get("choices", []):
            other = list(dict.fromkeys(r["verdict"] for r in choice["readings"]
                                       if r["verdict"] != e["verdict"]))
            if not other:
                continue
            e["reading"] = e["verdict"]
            e["verdict"], e["reason"] = "unresolved", "a threshold it turns on"
            e["note"] = (f"turns on the {choice['choice']}: {e['reading']} at "
                         f"{_at(choice, e['reading'])}; "
                         + "; ".join(f"{v} at {_at(choice, v)}" for v in other))
            break


def attach(claims, rows, out, evaluate) -> None:
    """Add ``loso`` and ``choices`` to every entry of ``out`` (the entries of ``claims`` as
    :func:`labkit.claims.verdicts.evaluate` made them from ``rows``) and settle the verdicts
    that turn on a choice."""
    confirmatory = {e["id"]: e["confirmatory"] for e in out}
    _choices(claims, rows, out, evaluate, confirmatory)
    _settle(out)
    _loso(claims, rows, out, evaluate, confirmatory)
