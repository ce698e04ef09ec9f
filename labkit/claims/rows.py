"""The rows the claims read: a result set's rows as the notebooks read them
(:func:`labkit.results.results_table`), each with the provenance its file records for it (under
the key ``PROVENANCE``), and the two readers a claim uses (:func:`value`, :func:`pick`)."""

from __future__ import annotations

from pathlib import Path

from .. import store

__all__ = ["PROVENANCE", "load_rows", "value", "pick", "where"]

PROVENANCE = "_provenance"  # a row's own provenance ({} when its file records none)


def _table1_rows(rows):
    """Table 1's rows, one per (seed, arm, ratio) with the arm as ``method``, and the base's
    memorization probe of every run as method ``"base"`` (with the provenance of its first
    arm row: the base is computed with each of them)."""
    out, bases = [], {}
    for row in rows:
        out.append({**row, "method": row["arm"]})
        bases.setdefault(row["seed"], {"seed": row["seed"], "method": "base",
                                       "probe_memorization": row["probe_memorization"],
                                       "null_memorization": row["null_memorization"],
                                       PROVENANCE: row.get(PROVENANCE, {})})
    return out + list(bases.values())


def _with_provenance(name: str, rows: list[dict], path: Path | None) -> list[dict]:
    """``rows`` (as :func:`~labkit.results.results_table` returns them: config, result and
    ``wall_s`` merged) with each file row's ``provenance`` matched by its content."""
    from ..results import RESULTS_DIR, load_results

    path = path if path is not None else RESULTS_DIR / f"{name}.json"
    if not Path(path).is_file():
        return rows
    by_content = {}
    for raw in load_results(path)["rows"]:
        merged = {**raw["config"], **raw["result"], "wall_s": raw["wall_s"]}
        by_content[store.canonical(merged)] = raw.get("provenance") or {}
    return [{**r, PROVENANCE: by_content.get(store.canonical(r), {})} for r in rows]


def load_rows(result_set: str, results_dir=None) -> list[dict]:
    """The rows of a result set (``"a+b"``: of both, e.g. the duplication set and the Fig. 3 set
    that holds its 0% setting), as the notebooks read them, each with its provenance."""
    from ..results import results_table

    rows = []
    for name in result_set.split("+"):
        path = None if results_dir is None else Path(results_dir) / f"{name}.json"
        found = results_table(name, missing="skip", path=path, log=lambda _: None).rows
        found = _with_provenance(name, found, path)
        rows += _table1_rows(found) if name == "table1" else found
    return rows


def value(row: dict, metric: str):
    """A row's ``metric``: a key, a curve's last value, or ``"key@i"`` for its i-th."""
    key, _, index = metric.partition("@")
    out = row[key]
    if isinstance(out, list):
        out = out[int(index) if index else -1]
    elif index:
        raise ValueError(f"metric {metric!r}: {key!r} is not a curve")
    return out


def where(rows, filters: dict, seeds=None) -> list[dict]:
    """The rows matching every ``filters`` item (and, with ``seeds``, at one of them)."""
    return [r for r in rows if all(r.get(k) == v for k, v in filters.items())
            and (seeds is None or r["seed"] in seeds)]


def pick(rows, filters: dict, metric: str) -> dict:
    """``{seed: (value, row)}`` of the rows matching ``filters`` (one per seed)."""
    out = {}
    for row in where(rows, filters):
        if row["seed"] in out:
            raise ValueError(f"the filter {filters} matches two rows at seed {row['seed']}")
        out[row["seed"]] = (value(row, metric), row)
    return out
