"""Write the generated numbers and sentences into README.md: each notebook's measured runtime (from its
``metadata.labkit.runtime_s``, written by ``make book``) and the CPU time of every committed
result set (from its provenance). They sit between ``<!-- NAME -->`` and ``<!-- /NAME -->``
marks, so README.md never holds a runtime typed by hand; each conclusion drawn from a result
set sits between ``<!-- claim: ID -->`` and ``<!-- /claim -->``, worded from its verdict. ``make book`` runs this after executing
the notebooks; ``--check`` exits 1 when README.md is stale (the test suite uses it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {rest:02d} s" if minutes else f"{round(seconds)} s"


def runtimes_table(root: Path = ROOT) -> str:
    lines = ["| notebook | question | full size, measured by `make book` |", "|---|---|---|"]
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        meta = nb.get("metadata", {}).get("labkit", {})
        seconds = meta.get("runtime_s")
        question = meta.get("question", "")
        lines.append(f"| [{path.stem}](notebooks/{path.name}) | {question} | "
                     f"{_duration(seconds) if seconds is not None else 'not measured yet'} |")
    return "\n".join(lines)


def results_table(root: Path = ROOT) -> str:
    lines = ["| result set | what it holds | rows | time (sum of its rows, one torch thread each) |", "|---|---|---|---|"]
    total = 0.0
    for path in sorted((root / "results").glob("*.json")):
        if path.name == "claims.json":  # the claims computed from the sets, not a result set
            continue
        data = json.loads(path.read_text())
        wall = float(data["provenance"].get("wall_s", 0.0))
        total += wall
        lines.append(f"| [`{path.name}`](results/{path.name}) | {data.get('purpose', '')} | {len(data['rows'])} | "
                     f"{_duration(wall)} |")
    lines.append(f"| all | | | {_duration(total)} |")
    return "\n".join(lines)


_CLAIM = re.compile(r"(<!-- claim: ([\w.-]+) -->).*?(<!-- /claim -->)", re.S)


def claim_sentences(text: str, root: Path = ROOT) -> str:
    """Each ``<!-- claim: ID -->...<!-- /claim -->`` span filled with the claim's sentence,
    generated from its verdict in ``results/claims.json`` (:func:`labkit.claims.sentence`)."""
    from labkit import claims

    found = claims.load_claims(root / "results" / "claims.json")
    return _CLAIM.sub(lambda m: m.group(1) + claims.sentence(m.group(2), found) + m.group(3),
                      text)


def stamp(text: str, root: Path = ROOT) -> str:
    text = claim_sentences(text, root)
    for name, make in (("runtimes", runtimes_table), ("results", results_table)):
        pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md lacks the marks <!-- {name} --> ... <!-- /{name} -->")
        text = pattern.sub(lambda m: m.group(1) + make(root) + "\n" + m.group(2), text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md is not up to date")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    old = readme.read_text()
    new = stamp(old)
    if args.check:
        if new != old:
            print("README.md is stale: run python scripts/stamp_readme.py", file=sys.stderr)
            return 1
        return 0
    if new != old:
        readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
