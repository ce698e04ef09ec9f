"""Computing the claims from the rows: :func:`compute_claims` (every claim's entry, its family,
the familywise-adjusted p, its verdict and the robustness readings beside it), and the claims
file: :func:`write_claims`, :func:`load_claims`, :func:`claims_by_id`, :func:`compare_claims`."""

from __future__ import annotations

import json
from pathlib import Path

from .. import store
from ..experiments import stats
from . import robustness
from .declarations import CLAIMS
from .kinds import KIND_REGISTRY
from .lock import declaration_digest, frozen_under
from .model import ALPHA, FAMILY_RULE, PRIMARY_MIN_SEEDS, Claim, experiment_of
from .multiplicity import sign_flip_minp
from .rows import load_rows

__all__ = ["compute_claims", "evaluate", "write_claims", "load_claims", "claims_by_id",
           "compare_claims", "family_of"]


def _confirmatory(c: Claim, read: list[dict], results_dir, locks: dict) -> bool:
    """True when every row ``c`` read recorded a claims lock under which ``c``'s current
    declaration was frozen."""
    if not read:
        return False
    want = declaration_digest(c)
    for provenance in read:
        lock = provenance.get("claims_lock")
        if lock not in locks:
            locks[lock] = frozen_under(lock, results_dir) if lock else {}
        if locks[lock].get(c.id) != want:
            return False
    return True


def family_of(c: Claim, confirmatory: bool) -> str:
    """A claim's multiplicity family: its experiment (:data:`~labkit.claims.model.FAMILY_RULE`)
    and its role there, ``confirmatory`` or its declared tier."""
    return f"{experiment_of(c)}: {'confirmatory' if confirmatory else c.family}"


def _adjust(entries: list[dict]) -> None:
    """Holm within each family over the t-test / likelihood-ratio p and the equivalence p, and
    the Westfall-Young min-p over the family's exact sign-flip tests."""
    for family in sorted({e["family"] for e in entries}):
        members = [e for e in entries if e["family"] == family]
        ps = [e["p"] for e in members] + [e.get("p_equivalence") for e in members]
        held = stats.holm(ps)
        for e, p, p_eq in zip(members, held[:len(members)], held[len(members):]):
            e["p_adjusted"] = p
            if "p_equivalence" in e:
                e["p_equivalence_adjusted"] = p_eq
        paired = [e for e in members if e["kind"] == "paired" and len(e["seeds"]) >= 2]
        _, adjusted = sign_flip_minp([{p["seed"]: p["a"] - p["b"] for p in e["pairs"]}
                                      for e in paired])
        for e, p in zip(paired, adjusted):
            e["p_sign_flip_adjusted"] = p
        for e in members:
            if e["kind"] == "paired" and len(e["seeds"]) < 2:
                e["p_sign_flip_adjusted"] = None


def _awaits(c: Claim, e: dict) -> str | None:
    if c.family != "primary":
        return None
    if c.seeds is not None and set(e["seeds"]) != set(c.seeds):
        return f"awaits its seeds: {len(e['seeds'])} of {len(c.seeds)} in the rows"
    if len(e["seeds"]) < PRIMARY_MIN_SEEDS:
        return f"awaits its seeds: {len(e['seeds'])} of {PRIMARY_MIN_SEEDS} in the rows"
    return None


def _decide(c: Claim, e: dict, awaits: bool = True) -> tuple[str, str, str]:
    awaits = _awaits(c, e) if awaits else None
    if awaits:
        return "unresolved", awaits, "too few seeds"
    if e["estimate"] is None:
        return "unresolved", "no rows", "no rows"
    return KIND_REGISTRY[c.kind].verdict(c, e)


def evaluate(claims, rows: dict, *, results_dir=None, ctx=None, drop_seed=None,
             confirmatory: dict | None = None, awaits: bool = True) -> list[dict]:
    """The entries of ``claims`` from ``rows`` (``{result set: rows}``), adjusted within their
    families and decided, without the robustness readings (``ctx``: the kinds' options, e.g.
    ``{"mem_points": 0.05}``; ``drop_seed``: leave that seed's rows out; ``confirmatory``:
    ``{id: bool}`` to use instead of deriving it; ``awaits=False``: decide a claim whose
    declared seeds are not all in the rows, as a leave-one-seed-out reading does)."""
    ctx = {} if ctx is None else ctx
    out, locks = [], {}
    for c in claims:
        data = rows[c.result_set]
        if drop_seed is not None:
            data = [r for r in data if r["seed"] != drop_seed]
        entry = KIND_REGISTRY[c.kind].compute(c, data, ctx)
        read = entry.pop("read")
        conf = confirmatory[c.id] if confirmatory is not None else _confirmatory(
            c, read, results_dir, locks)
        head = {"id": c.id, "statement": c.statement, "notebook": c.notebook,
                "tier": c.family, "family": family_of(c, conf), "confirmatory": conf,
                "experiment": experiment_of(c), "kind": c.kind, "result_set": c.result_set,
                "metric": c.metric, "unit": c.unit, "direction": c.direction}
        out.append({**head, **entry})
    _adjust(out)
    for c, e in zip(claims, out):
        e["awaits_seeds"] = _awaits(c, e) is not None
        e["verdict"], e["note"], e["reason"] = _decide(c, e, awaits)
        if e["p"] is None and e.get("p_reason") is None:
            e["p_reason"] = KIND_REGISTRY[c.kind].no_p or (
                "no rows" if e["estimate"] is None else "one run: no test")
    return out


def compute_claims(results_dir=None, claims=CLAIMS, *, robust: bool = True) -> list[dict]:
    """Every claim of ``claims`` computed from the committed rows (``results_dir``, default the
    repository's ``results/``): a list of JSON-ready dicts with ``id``, ``statement``,
    ``notebook``, ``tier`` (the declared one), ``family`` (derived: experiment and role),
    ``confirmatory``, ``kind``, ``result_set``, ``metric``, ``estimate``, ``interval``, ``p`` (or
    ``p_reason``), ``p_adjusted``, ``seeds``, ``awaits_seeds``, ``verdict``, ``note``,
    ``reason``, the kind's own fields and, with ``robust``, the readings of
    :mod:`labkit.claims.robustness` (``loso``, ``choices``): a verdict that changes under an
    analysis choice is unresolved, and its note names the choice."""
    claims = tuple(claims)
    rows = {}
    for c in claims:
        if c.result_set not in rows:
            rows[c.result_set] = load_rows(c.result_set, results_dir)
    out = evaluate(claims, rows, results_dir=results_dir)
    if robust:
        robustness.attach(claims, rows, out, evaluate)
    return out


def _rules() -> str:
    from . import __doc__ as doc

    return doc.split("\n\n", 1)[1]


def write_claims(path=None, results_dir=None) -> list[dict]:
    """Compute the claims and write them to ``path`` (default ``results/claims.json``), with
    the rules they follow and the family rule."""
    claims = compute_claims(results_dir)
    path = Path(path) if path is not None else Path(results_dir or store.results_dir()) \
        / "claims.json"
    store.write_json(path, {"alpha": ALPHA, "primary_min_seeds": PRIMARY_MIN_SEEDS,
                            "rules": _rules(),
                            "family_rule": [{"where": w, "experiment": n}
                                            for w, n in FAMILY_RULE],
                            "claims": claims})
    return claims


def load_claims(path=None) -> list[dict]:
    """The claims stored in ``path`` (default ``results/claims.json``)."""
    path = Path(path) if path is not None else store.results_dir() / "claims.json"
    if not path.is_file():
        raise ValueError(f"claims file {str(path)!r} does not exist (make it with `labkit claims`)")
    return json.loads(path.read_text())["claims"]


def claims_by_id(claims=None) -> dict:
    """``{id: claim}`` of ``claims`` (default: ``results/claims.json``), for a notebook that
    words its conclusions from their verdicts."""
    return {c["id"]: c for c in (load_claims() if claims is None else claims)}


def compare_claims(stored: list[dict], computed: list[dict], rtol: float = 1e-3,
                   atol: float = 1e-6) -> list[str]:
    """The ids whose stored entry differs from the recomputed one (numbers to ``rtol``/``atol``,
    everything else exactly), plus ids present on one side only. The tolerance allows another
    platform's rounding to move an optimum or a profile interval's bisected end (found to
    1e-4); a new row or a changed rule moves them much further."""
    from ..results import _close

    old, new = {c["id"]: c for c in stored}, {c["id"]: c for c in computed}
    differ = sorted(set(old) ^ set(new))
    differ += [i for i in new if i in old and not _close(json.loads(json.dumps(new[i])), old[i],
                                                         rtol, atol)]
    return differ
