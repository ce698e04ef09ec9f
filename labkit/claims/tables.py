"""The claims as Markdown tables for the notebooks: :func:`claims_table` (estimate, adjusted p,
leave-one-seed-out stability, verdict and what it means), :func:`sensitivity_table` (a label
claim's margins) and :func:`choices_table` (a claim re-read under its analysis choices, e.g. a
law's memorization mark)."""

from __future__ import annotations

from .prose import fmt, meaning
from .verdicts import load_claims

__all__ = ["VERDICT_GUIDE", "claims_table", "sensitivity_table", "choices_table"]

# Where the tables send a reader for the meaning of their columns: notebook 02's box, a
# heading (its anchor, in the notebook and in the book).
VERDICT_GUIDE = "how-to-read-a-verdict"


def _guide(notebook: str) -> str:
    page = "" if notebook == "02" else "02_approximation_separation.ipynb"
    return f"*[How to read a verdict]({page}#{VERDICT_GUIDE}): what each column says.*"


def _p(value) -> str:
    return "-" if value is None else f"{value:.2g}"


def _loso(c) -> str:
    loso = c.get("loso")
    if not loso:
        return "-"
    return f"{loso['leave_outs'] - len(loso['changes'])}/{loso['leave_outs']}"


def claims_table(notebook: str, claims=None, ids=None, guide: bool = True) -> str:
    """A Markdown table of a notebook's claims (``claims``: dicts as computed, default
    ``results/claims.json``; ``ids``: only these, in this order): id, estimate [95% interval]
    (memorization in points), Holm-adjusted p and the adjusted exact sign-flip p (one column),
    seeds with the leave-one-seed-out readings that keep the verdict (one column), the verdict
    and what it means
    (:func:`~labkit.claims.prose.meaning`); ``guide``: a line under the table that links
    notebook 02's "How to read a verdict"."""
    claims = load_claims() if claims is None else claims
    picked = [c for c in claims if c["notebook"] == notebook and (ids is None or c["id"] in ids)]
    if ids is not None:
        picked.sort(key=lambda c: list(ids).index(c["id"]))
    lines = ["| claim | estimate [95% interval] | p: Holm, exact (adj.) "
             "| seeds (kept leaving one out) | verdict | what it means |",
             "|---|---|---|---|---|---|"]
    for c in picked:
        interval = (f" [{fmt(c['interval'][0], c['unit'])}, "
                    f"{fmt(c['interval'][1], c['unit'])}]" if c.get("interval") else "")
        lines.append(f"| `{c['id']}` | {fmt(c['estimate'], c['unit'])}{interval} | "
                     f"{_p(c.get('p_adjusted'))}, {_p(c.get('p_sign_flip_adjusted'))} | "
                     f"{len(c['seeds'])} ({_loso(c)}) | {c['verdict']} | {meaning(c)} |")
    if guide:
        lines += ["", _guide(notebook)]
    return "\n".join(lines)


def sensitivity_table(entry: dict, count: str | None = None) -> str:
    """A label claim's threshold-sensitivity table as Markdown: memorization margins
    (points) down, log-likelihood margins (nats) across, each cell "holds" or "fails" (and the
    ``count`` field of its detail, e.g. ``"runs_without_window"``); the declared margins in
    bold."""
    if entry.get("kind") != "label":
        raise ValueError(f"entry must be a label claim, got kind {entry.get('kind')!r}")
    cells = {(c["mem_margin"], c["ll_margin"]): c["value"] for c in entry["sensitivity"]}
    mems = sorted({m for m, _ in cells})
    lls = sorted({g for _, g in cells})
    declared = (entry["margins"]["mem_margin"], entry["margins"]["ll_margin"])
    lines = ["| memorization margin | " + " | ".join(f"{g:g} nat" for g in lls) + " |",
             "|---" * (len(lls) + 1) + "|"]
    for m in mems:
        row = []
        for g in lls:
            value = cells[(m, g)]
            text = ("holds" if value["holds"] else "fails") + (
                f" ({value[count]})" if count is not None else "")
            row.append(f"**{text}**" if (m, g) == declared else text)
        lines.append(f"| {100 * m:g} points | " + " | ".join(row) + " |")
    return "\n".join(lines)


def choices_table(claims, ids, choice: str) -> str:
    """The verdicts of claims ``ids`` re-read under one analysis ``choice`` (e.g.
    ``"memorization mark"``): one row per claim, one column per setting."""
    by_id = {c["id"]: c for c in claims}
    readings = {}
    for i in ids:
        found = [ch for ch in by_id[i].get("choices", []) if ch["choice"] == choice]
        if found:
            readings[i] = found[0]
    if not readings:
        raise ValueError(f"none of the claims {list(ids)} was re-read under {choice!r}")
    first = next(iter(readings.values()))
    scale = 100 if first["unit"] == "points" else 1
    head = [f"{scale * r['value']:g} {first['unit']}".strip() for r in first["readings"]]
    lines = [f"| claim (by {choice}) | " + " | ".join(head) + " |",
             "|---" * (len(head) + 1) + "|"]
    for i, ch in readings.items():
        lines.append(f"| `{i}` | " + " | ".join(r["verdict"] for r in ch["readings"]) + " |")
    return "\n".join(lines)
