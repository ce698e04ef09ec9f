"""A result file on disk (``results/<NAME>.json``, :mod:`labkit.results`): reading it
(:func:`load_results`), the checksums that reveal an edit by hand (:func:`row_checksum`,
:func:`file_checksum`, :func:`check_checksums`), the lock a process holds while it writes one,
and a row's config in a few words for messages."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["load_results", "row_checksum", "file_checksum", "check_checksums"]


def _write_atomically(path: Path, obj) -> None:
    from .store import write_json

    write_json(path, obj)


def load_results(path) -> dict:
    """Read a result set; ValueError naming ``path`` when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"result file {str(path)!r} does not exist (make it with `labkit results run NAME`)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"result file {str(path)!r} is not valid JSON: {exc}") from None
    for key in ("provenance", "point_fn", "rows"):
        if key not in data:
            raise ValueError(f"result file {str(path)!r} lacks {key!r}")
    for i, row in enumerate(data["rows"]):
        if not isinstance(row, dict) or not {"config", "result", "wall_s"} <= set(row):
            raise ValueError(f"result file {str(path)!r}: row {i} needs 'config', 'result' and 'wall_s'")
    return data


def row_checksum(row: dict) -> str:
    """A digest of a row's stored content (config, result, version): an edit changes it."""
    from .store import digest

    return digest({"config": row["config"], "result": row["result"],
                   "version": row.get("version", 1)})


def _with_checksum(row: dict) -> dict:
    return row if "checksum" in row else {**row, "checksum": row_checksum(row)}


def file_checksum(doc: dict) -> str:
    """A digest of a result file's rows (their checksums, in order) and superseded rows."""
    from .store import digest

    return digest({"rows": [row_checksum(r) for r in doc["rows"]],
                   "superseded": [row_checksum(r) for r in doc.get("superseded", [])]})


def _checksum_problems(doc: dict) -> list[str]:
    """The rows whose stored checksum differs from their content, and a file checksum that
    differs from the rows (a row added or removed by hand)."""
    out = [f"row {i} ({_short(r['config'])}) does not match its checksum"
           for i, r in enumerate(doc["rows"]) if "checksum" in r and r["checksum"] != row_checksum(r)]
    if not out and "checksum" in doc and doc["checksum"] != file_checksum(doc):
        out.append("the rows do not match the file's checksum (a row added or removed)")
    return out


def check_checksums(path) -> list[str]:
    """Problems with the checksums of the result file at ``path`` (empty: none), found without
    recomputing anything."""
    return _checksum_problems(load_results(path))


def _lock(path: Path):
    """An exclusive lock on ``path``'s sidecar ``.NAME.lock``: two processes computing the same
    result set would each rewrite the file with only their own rows."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path.with_name(f".{path.name}.lock"), "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ValueError(f"{path} is being computed by another process; wait for it to finish") from None
    return handle


_SHORT_KEYS = ("mixture", "dim", "n", "width", "weight_decay", "steps", "seed", "method", "arm",
               "ratio")


def _short(config: dict) -> str:
    """A row's config in a few words: the lab's usual axes, or (for another point function's
    config) its first six scalar settings."""
    keys = [k for k in _SHORT_KEYS if k in config]
    if len(keys) < 2:
        keys = [k for k, v in config.items() if isinstance(v, (int, float, str))][:6]
    return " ".join(f"{k}={config[k]}" for k in keys)
