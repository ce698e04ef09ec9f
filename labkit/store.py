"""Where labkit keeps what it computes, and how: one home for the environment, paths, keys and
atomic writes. The bottom layer of the package: it imports nothing else of labkit, so every
other module may use it (``docs/architecture.md``).

- Environment: :func:`repo_root` (the source checkout that holds labkit, or None for an
  installed package), :func:`is_fast` (the size switch ``LABKIT_FAST=1`` of the test run).
- Paths: :func:`figures_dir` (``$LABKIT_FIGURES``, else ``<checkout>/figures``, else
  ``./figures``), :func:`cache_dir` (``$LABKIT_CACHE``, else ``<checkout>/.cache``, else the user cache
  folder), :func:`results_dir` (``$LABKIT_RESULTS``, else ``<checkout>/results``, else
  ``./results``).
- Keys: :func:`canonical` (one canonical JSON for every key and comparison) and :func:`digest`
  (its SHA-256); :func:`storable` turns a result into JSON values (numpy and torch numbers
  become numbers) or names the key that cannot be stored. A row of a result set is keyed by
  :func:`row_key`: its configuration with the point function's *current* defaults filled in,
  plus the experiment's ``version``. A new defaulted parameter therefore leaves every stored
  row findable; a change that alters results bumps the version.
- Writes: :func:`write_json` and :func:`save_torch` write through a temporary file, ``fsync``
  and ``os.replace``: a crash leaves the old file or the new one, never a truncated one. The
  sweep cache, the result sets, training checkpoints and the Table 1 protocol all use them.
- :func:`run_dir`: the folder of one computation's resumable state (its checkpoints), named
  by the digest of what it depends on.

Introduced with the result sets of notebook 02.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
from pathlib import Path

__all__ = ["repo_root", "is_fast", "figures_dir", "cache_dir", "results_dir", "canonical", "digest",
           "storable", "write_text", "write_json", "save_torch", "fill_defaults", "row_key",
           "run_dir", "claims_lock_path", "read_claims_lock", "claims_lock_digest"]


def canonical(obj) -> str:
    """Canonical JSON of ``obj`` (sorted keys, no spaces, NaN refused): equal values give equal
    strings, so it serves as a key."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(obj, length: int = 20) -> str:
    """The first ``length`` hex digits of the SHA-256 of :func:`canonical` ``(obj)``."""
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:length]


def _replace(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (tmp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    _replace(tmp, path)


def write_json(path, obj, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (tmp file, fsync, rename). NaN and
    infinities are refused (``ValueError``), so a file never holds what JSON cannot read."""
    write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def save_torch(obj, path) -> None:
    """``torch.save(obj, path)`` atomically (tmp file, fsync, rename)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    _replace(tmp, path)


def repo_root() -> Path | None:
    """The source checkout that holds the ``labkit`` package, or None when labkit is installed.

    A checkout has ``pyproject.toml`` and ``notebooks/`` beside ``labkit/``; a wheel or sdist
    install (into ``site-packages``) has neither, and must not write there.
    """
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def is_fast() -> bool:
    """True when ``LABKIT_FAST`` is set to a true value (1, true, yes): the test-run size.
    ValueError for a value that is neither true nor false."""
    value = os.environ.get("LABKIT_FAST", "0").strip().lower()
    if value not in {"", "0", "1", "true", "false", "yes", "no"}:
        raise ValueError(f"LABKIT_FAST must be 0 or 1, got {value!r}")
    return value in {"1", "true", "yes"}


def figures_dir() -> Path:
    """Where ``labkit.plotting.savefig`` writes: ``$LABKIT_FIGURES``, else ``<checkout>/figures``
    in a source checkout, else ``./figures`` (of the current directory) for an installed
    package."""
    if os.environ.get("LABKIT_FIGURES"):
        return Path(os.environ["LABKIT_FIGURES"])
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "figures"


def cache_dir(*parts: str) -> Path:
    """A cache folder ``<root>/<size>/<parts>``, created on demand.

    ``root`` is ``$LABKIT_CACHE``, else ``<checkout>/.cache`` in a source checkout, else the
    user cache directory (``platformdirs.user_cache_path("labkit")``) for an installed package.
    The fast size (``LABKIT_FAST=1``) gets its own sub-folder so a test run never reads
    full-size results.
    """
    import platformdirs

    checkout = repo_root()
    if os.environ.get("LABKIT_CACHE"):
        root = Path(os.environ["LABKIT_CACHE"])
    elif checkout is not None:
        root = checkout / ".cache"
    else:
        root = platformdirs.user_cache_path("labkit")
    path = root.joinpath("fast" if is_fast() else "full", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """``$LABKIT_RESULTS``, else ``<checkout>/results`` in a source checkout, else ``./results``."""
    if os.environ.get("LABKIT_RESULTS"):
        return Path(os.environ["LABKIT_RESULTS"])
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "results"


def fill_defaults(fn, config: dict, bound=("device",)) -> dict:
    """``config`` with every other parameter of ``fn`` at its current default (minus the
    ``bound`` ones, which the command line sets). ValueError naming the keys that are not
    parameters of ``fn`` or the required ones ``config`` lacks."""
    sig = inspect.signature(fn)
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
    unknown = [k for k in config if k not in sig.parameters]
    if unknown:
        raise ValueError(f"config keys {unknown} are not parameters of {name}")
    out = {}
    for key, p in sig.parameters.items():
        if key in bound or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if key in config:
            out[key] = config[key]
        elif p.default is inspect.Parameter.empty:
            raise ValueError(f"config lacks {key!r}, required by {name}")
        else:
            out[key] = p.default
    return json.loads(canonical(out)) if _jsonable(out) else out


def storable(result, where: str = "result"):
    """``result`` as JSON values: numpy and torch numbers and arrays become numbers and lists.
    ValueError naming the first key (``result['loss'][3]``) holding NaN or an infinity,
    TypeError naming one holding an object JSON cannot hold."""
    import numpy as np

    if isinstance(result, dict):
        out = {}
        for key, value in result.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the key {key!r}; JSON keys are strings")
            out[key] = storable(value, f"{where}[{key!r}]")
        return out
    if isinstance(result, (list, tuple)):
        return [storable(v, f"{where}[{i}]") for i, v in enumerate(result)]
    if result is None or isinstance(result, (bool, str)):
        return result
    if isinstance(result, (np.generic, np.ndarray)) or type(result).__module__.startswith("torch"):
        if not hasattr(result, "tolist"):
            raise TypeError(f"{where} is a {type(result).__name__}, which JSON cannot hold")
        if hasattr(result, "detach"):
            result = result.detach().cpu()
        return storable(result.tolist(), where)
    if isinstance(result, int):
        return int(result)
    if isinstance(result, float):
        if not math.isfinite(result):
            raise ValueError(f"{where} is {result}, which a result set cannot hold")
        return float(result)
    raise TypeError(f"{where} is a {type(result).__name__}, which JSON cannot hold")


def _jsonable(obj) -> bool:
    try:
        canonical(obj)
    except (TypeError, ValueError):
        return False
    return True


def row_key(fn, config: dict, version: int | str = 1, bound=("device",)) -> str:
    """The key a result-set row is stored and found under: the canonical JSON of ``config``
    with ``fn``'s current defaults filled in (:func:`fill_defaults`), and ``version``."""
    return canonical({"config": fill_defaults(fn, config, bound), "version": version})


def run_dir(kind: str, depends_on) -> Path:
    """The cache folder of one resumable computation of ``kind`` (e.g. ``"mixture_curve"``),
    named by the digest of ``depends_on`` (every argument that changes its result, plus a
    version): two different runs never share a folder, the same run always finds its own."""
    return cache_dir("runs", kind, digest(depends_on))


# ----------------------------------------------------------------------------------------------
# The lock file of frozen claim declarations (written by ``labkit claims freeze``, read by the
# run layer, which stamps every row it computes with the lock's digest)

def claims_lock_path(folder=None) -> Path:
    """The lock file of frozen claim declarations: ``<results>/claims.lock`` (JSON), in
    ``folder`` (default :func:`results_dir`)."""
    return Path(folder or results_dir()) / "claims.lock"


def read_claims_lock(folder=None) -> dict:
    """The lock file's content, ``{"freezes": [...]}`` (empty when nothing is frozen); each
    freeze holds ``claims`` (``{claim id: declaration digest}``) and its own ``digest``."""
    path = claims_lock_path(folder)
    if not path.is_file():
        return {"freezes": []}
    return json.loads(path.read_text())


def claims_lock_digest(folder=None) -> str | None:
    """The digest of the latest freeze, or None when nothing is frozen: what every row
    computed now records as ``provenance.claims_lock``."""
    freezes = read_claims_lock(folder)["freezes"]
    return freezes[-1]["digest"] if freezes else None
