"""Conclusions worded from verdicts, and the guard on the ones a person writes.

- :func:`sentence` words a claim's conclusion from its statement, verdict, estimate, interval
  and reason; :func:`meaning` says in a few plain words what the verdict means for the
  section's question (the claims tables' last column); :func:`conclusions` is a Markdown list
  of sentences that a notebook cell displays.
- :func:`text_problems` checks Markdown text sentence by sentence: a sentence after a
  ``<!-- claim: ID -->`` marker must match its claim's verdict (:data:`PHRASES`), and an
  unmarked sentence must not draw a conclusion from a result set (a verdict's words, or a
  restatement of a declared claim). :func:`check_notebook` applies it to every Markdown cell.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .verdicts import claims_by_id, load_claims

__all__ = ["PHRASES", "CONCLUSION_PHRASES", "sentence", "meaning", "conclusions", "fmt",
           "text_problems", "notebook_problems", "check_notebook"]

# The words a conclusion's sentence must contain for each verdict (lower case); a supported
# claim's sentence must contain none of the others'.
PHRASES = {
    "unresolved": ("could not tell", "cannot tell", "unresolved", "no detectable", "not resolved",
                   "not told apart", "awaits"),
    "contradicted": ("contradict", "the opposite", "not supported"),
    "equivalent": ("equivalent",),
}
# Words that draw a conclusion: an unmarked sentence holding one fails the check.
CONCLUSION_PHRASES = ("could not tell", "not told apart", "the data contradict",
                      "mattered less", "mattered more", "does not help", "no single line fits",
                      "is supported", "are supported", "is contradicted", "are contradicted",
                      "is unresolved", "are unresolved", "slows the re-memorization")
_STOP = {"with", "than", "that", "more", "less", "from", "against", "their", "there", "this",
         "width", "which", "when", "does", "the", "and", "at", "on", "of", "in", "to"}
_POINTS = ("fraction", "percent")


def fmt(value, unit: str = "", sign: bool = True) -> str:
    """A claim's number as the tables print it: memorization fractions and percentages in
    points, two decimals below 100."""
    if value is None:
        return "-"
    if unit == "fraction":
        value = 100 * value
    spec = "+" if sign else ""
    return f"{value:{spec}.1f}" if unit in _POINTS else (
        f"{value:{spec}.2f}" if abs(value) < 100 else f"{value:{spec}.0f}")


def _unit_word(e) -> str:
    return {"fraction": " points", "percent": " points", "nats": " nat"}.get(e.get("unit"), "")


def _numbers(e) -> str:
    if e["kind"] == "label":
        d = e.get("detail") or {}
        counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in d.items() if k != "holds")
        return f"at the declared margins: {counts}" if counts else "no rows"
    what = {"law": "slope", "law_curvature": "quadratic term", "law_compare": "slope difference"}
    head = what.get(e["kind"], "estimate")
    text = f"{head} {fmt(e['estimate'], e['unit'])}{_unit_word(e)}"
    if e.get("interval"):
        lo, hi = e["interval"]
        text += f" [{fmt(lo, e['unit'])}, {fmt(hi, e['unit'])}]"
    return text + f", {len(e['seeds'])} seeds"


def _clause(statement: str) -> str:
    s = statement.strip().rstrip(".")
    return s if len(s) > 1 and s[1].isupper() else s[:1].lower() + s[1:]


def _why(e) -> str:
    """Why an unresolved claim is unresolved, in words."""
    note, reason = e.get("note", ""), e.get("reason", "")
    if reason == "not detected" and e["kind"] == "paired" and e.get("mde") is not None:
        return (f"no difference detected; {len(e['seeds'])} pairs detect a true difference of "
                f"{fmt(e['mde'], e['unit'], sign=False)}{_unit_word(e)} with 80% power")
    if reason and reason not in note:
        return f"{reason} ({note})" if note else reason
    return note or reason


def sentence(claim_id: str, claims=None) -> str:
    """The conclusion of claim ``claim_id`` worded from its verdict (``claims``: entries as
    computed, default ``results/claims.json``): the statement itself when supported, "the data
    contradict ..." when contradicted, "equivalent within ..." for an equivalence, "we could not
    tell whether ... : why" when unresolved; each with its estimate and interval."""
    by_id = claims_by_id(claims)
    if claim_id not in by_id:
        raise ValueError(f"claim_id must be one of the claims, got {claim_id!r}")
    e = by_id[claim_id]
    role = " (exploratory)" if e.get("tier") == "exploratory" else (
        " (confirmatory)" if e.get("confirmatory") else "")
    verdict, numbers, clause = e["verdict"], _numbers(e), _clause(e["statement"])
    if verdict == "supported":
        return f"{e['statement'].strip().rstrip('.')} ({numbers}){role}."
    if verdict == "contradicted":
        return f"The data contradict that {clause}: {numbers}, on the other side{role}."
    if verdict == "equivalent":
        return (f"Equivalent within the declared margin of +-{e['margin']:g}"
                f"{_unit_word(e)}: {numbers}{role}.")
    side = ""
    if e["kind"] == "paired" and e.get("estimate") is not None \
            and e["estimate"] * e["direction"] < 0:
        side = "; the estimate points the other way"
    return f"We could not tell whether {clause} ({numbers}{side}): {_why(e)}{role}."


def meaning(e: dict) -> str:
    """What a verdict means for the question of its section, in a few plain words (and why,
    for an unresolved one): the claims tables' last column."""
    verdict, reason = e["verdict"], e.get("reason", "")
    loso = e.get("loso") or {}
    if verdict in ("supported", "contradicted", "equivalent"):
        head = {"supported": "yes", "contradicted": "no: the other way",
                "equivalent": f"no difference beyond +-{e.get('margin', 0):g}"}[verdict]
        if loso and loso["stability"] < 1:
            head += f"; {len(loso['changes'])} of {loso['leave_outs']} leave-outs change it"
        return head
    if e.get("awaits_seeds"):
        return "open: awaits its seeds"
    if reason == "too few seeds":
        return f"open: too few seeds ({len(e['seeds'])})"
    if reason == "a threshold it turns on":
        choice = e["note"].split(":")[0].replace("turns on the ", "")
        return f"open: turns on the {choice}"
    if reason == "a line does not fit":
        return "open: a line does not fit, so no single slope"
    if reason == "not detected" and e.get("mde") is not None:
        return (f"open: no difference detected (80% power at "
                f"{fmt(e['mde'], e['unit'], sign=False)}{_unit_word(e)})")
    return f"open: {reason or e.get('note', '')}"


def conclusions(ids, claims=None) -> str:
    """A Markdown list of the :func:`sentence` of each of ``ids``, each with its id."""
    by_id = claims_by_id(claims)
    return "\n".join(f"- {sentence(i, list(by_id.values()))} (`{i}`)" for i in ids)


# --- the guard ------------------------------------------------------------------------------------

_MARK = re.compile(r"<!--\s*claim:\s*([\w.-]+)\s*-->")
_END = re.compile(r"[.!?](?=\s+(?:[A-Z(*<`$\[]|$))|[.!?]$|<!--\s*claim:|\n\s*\n"
                  r"|\n\s*(?:[-*]|\d+\.)\s")


def _marked_sentences(text: str):
    """``(claim id, sentence, (start, end))`` for every marker in a Markdown text: the sentence
    runs from the marker to its first sentence end (or the next marker, blank line or list
    item; markers side by side share the sentence after the last of them); ``(start, end)``
    is the span of the markers and their sentence."""
    pending, first = [], None
    for m in _MARK.finditer(text):
        pending.append(m.group(1))
        first = m.start() if first is None else first
        rest = text[m.end():]
        stop = _END.search(rest)
        if stop is not None and not rest[:stop.start()].strip() \
                and stop.group().startswith("<!--"):
            continue
        end = stop.end() if stop is not None and not stop.group().startswith("<!--") else (
            stop.start() if stop is not None else len(rest))
        sentence = " ".join(rest[:end].split())
        for claim_id in pending:
            yield claim_id, sentence, (first, m.end() + end)
        pending, first = [], None


def _plain(text: str) -> str:
    text = re.sub(r"^\s*\|.*$", " ", text, flags=re.M)  # table rows: data, not sentences
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " x ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return text


def _unmarked_sentences(text: str):
    kept, last = [], 0
    for start, end in sorted({span for _, _, span in _marked_sentences(text)}):
        kept.append(text[last:start])
        last = max(last, end)
    kept.append(text[last:])
    for chunk in kept:
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(*\[])|\n\s*\n|\n\s*[-*]\s", _plain(chunk)):
            if s.strip():
                yield " ".join(s.split())


def _words(text: str) -> set:
    return {w for w in re.findall(r"[a-z0-9][a-z0-9-]+", text.lower())
            if len(w) > 2 and w not in _STOP}


def _restates(s: str, statements) -> str | None:
    words = _words(s)
    for st in statements:
        want = _words(st)
        if len(want) >= 4 and len(want & words) / len(want) >= 0.8:
            return st
    return None


def text_problems(text: str, claims=None) -> list[str]:
    """The problems of a Markdown ``text``: a marked conclusion (``<!-- claim: ID -->``) whose
    words do not match its claim's verdict (see :data:`PHRASES`; an unknown id too), and an
    unmarked sentence that draws a conclusion (:data:`CONCLUSION_PHRASES`, or 80% of the words
    of a declared claim's statement). The README and the notebooks are checked with it."""
    claims = load_claims() if claims is None else claims
    verdicts = {c["id"]: c["verdict"] for c in claims}
    problems = []
    for claim_id, sentence_, _ in _marked_sentences(text):
        if claim_id not in verdicts:
            problems.append(f"{claim_id}: no such claim ({sentence_[:60]}...)")
            continue
        verdict, low = verdicts[claim_id], sentence_.lower()
        says = {v for v, words in PHRASES.items() if any(w in low for w in words)}
        ok = verdict in says if verdict in PHRASES else not says
        if not ok:
            problems.append(f"{claim_id} is {verdict}, but its sentence says "
                            f"{'/'.join(sorted(says)) or 'it holds'}: {sentence_!r}")
    statements = [c["statement"] for c in claims if c.get("statement")]
    for s in _unmarked_sentences(text):
        low = s.lower()
        phrase = next((p for p in CONCLUSION_PHRASES if p in low), None)
        restated = _restates(s, statements)
        if phrase or restated:
            why = f"says {phrase!r}" if phrase else f"restates the claim {restated!r}"
            problems.append(f"unmarked conclusion ({why}): {s[:120]!r}")
    return problems


def notebook_problems(path, claims=None) -> list[str]:
    """:func:`text_problems` of every Markdown cell of notebook ``path``."""
    claims = load_claims() if claims is None else claims
    cells = json.loads(Path(path).read_text())["cells"]
    return [problem for cell in cells if cell["cell_type"] == "markdown"
            for problem in text_problems("".join(cell["source"]), claims)]


def check_notebook(path, claims=None) -> int:
    """Raise ValueError listing every problem of :func:`notebook_problems`; else return how
    many marked conclusions notebook ``path`` holds."""
    problems = notebook_problems(path, claims)
    if problems:
        raise ValueError(f"{path}: conclusions that outrun their claims:\n  "
                         + "\n  ".join(problems))
    cells = json.loads(Path(path).read_text())["cells"]
    return sum(len(_MARK.findall("".join(c["source"]))) for c in cells
               if c["cell_type"] == "markdown")
