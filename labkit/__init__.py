"""labkit: a lab for *Provable Separations between Memorization and Generalization in
Diffusion Models* (Ye, Zhu, Tao, Chen; arXiv 2511.03202).

One file per concept, in the order the notebooks introduce them:

- ``process``   the OU forward process; score / denoiser / noise conversions   (notebook 00)
- ``data``      Gaussian mixtures with exact diffused scores, 2-D toys          (00)
- ``scores``    the empirical score, denoiser and log-density (chunked GEMMs)   (00)
- ``losses``    DSM loss, Fisher divergence, the Loss-Gap of Prop. 4.1,        (00, 01)
                the noise-prediction training loss and its time samplers
- ``sampling``  reverse SDE and probability-flow ODE samplers                  (00)
- ``metrics``   memorization ratio (1/3 rule) with intervals, quality measures (00)
- ``nets``      time-conditioned MLPs and the attention constructions          (01, 02)
- ``train``     the training loop, ``TrainConfig``, ``Checkpoint``               (01, 02, 03)
- ``capacity``  width needed to fit a score, Hessians / Lipschitz, duplication (02)
- ``sweeps``    cached, resumable, parallel experiment grids                   (02)
- ``store``     environment, paths, row keys, atomic writes (imports no labkit) (02)
- ``dispatch``  where rows run: in-process, joblib workers or a Dask cluster    (02)
- ``dit``       a small diffusion transformer with gated heads                 (03)
- ``pruning``   head importance (Alg. 2), selection and structural pruning     (03)
- ``images``    digits and CIFAR-10 loaders, classifier features, FD, P/R     (03)
- ``plotting``  notebook setup, theme, ``savefig``                             (all)
- ``widgets``   explorers over pure ``render(...) -> Figure`` functions        (all)

Around them: ``experiments`` (the paper's protocols: point functions, grids, the paper's
numbers), ``results`` (the committed result sets ``results/<NAME>.json``; their
``verification``, ``provenance``, ``result_rows`` and ``result_file`` beside it), ``store``
and ``dispatch`` (where results are kept and where rows run) and ``cli`` (every command),
``claims`` (the notebooks' conclusions computed from the result sets). The modules sit in
layers, interface > claims > runs > experiments > algorithms > store, each importing only
from its own layer and those below (``docs/architecture.md``; the contract in
``pyproject.toml`` is checked by ``make test``). The course tooling (student editions,
autograders) lives outside the library, in a checkout's ``course/`` package.

Submodules load on first use (``labkit.scores`` or ``import labkit.scores``), so importing
labkit stays cheap.
"""

import functools
import importlib
import warnings

# The one version source: the wheel's metadata (pyproject's dynamic version) and the results'
# provenance read it. Bump it together with CHANGELOG.md.
__version__ = "0.2.0"

_SUBMODULES = (
    "process", "data", "scores", "losses", "sampling", "metrics", "nets", "train", "capacity", "sweeps",
    "dit", "pruning", "images", "plotting", "widgets", "store", "dispatch",
)
__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


# Every deprecated name, as (old dotted name, its replacement, the version that removes it),
# recorded by the helpers below when the module that holds the old name is imported:
# tests/test_packaging.py fails once ``__version__`` reaches a removal version, naming the shim
# to delete.
_SHIMS: list[tuple[str, str, str]] = []


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"0.3"`` -> ``(0, 3)``, ``"0.2.0"`` -> ``(0, 2, 0)``: release numbers only."""
    parts = version.split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"remove_in must be a release number such as '0.3', got {version!r}")
    return tuple(int(p) for p in parts)


def _deprecated(old: str, new: str, stacklevel: int = 3, remove_in: str | None = None) -> None:
    """Warn that ``old`` (a dotted name) was renamed or moved to ``new``.

    Emits a ``DeprecationWarning`` that names both (and ``remove_in``, the release that
    removes ``old``), attributed to the caller of the function that calls this one
    (``stacklevel=3``), so the user sees the line that used the old name.
    """
    when = f"in labkit {remove_in}" if remove_in else "in a later release"
    warnings.warn(f"{old} is deprecated; use {new} instead (it will be removed {when})",
                  DeprecationWarning, stacklevel=stacklevel)


def _shim(old: str, new: str, remove_in: str) -> str:
    """Record that ``old`` is a deprecated name for ``new``, removed in ``remove_in``; returns
    ``remove_in`` (checked: a release number)."""
    _version_tuple(remove_in)
    if (old, new, remove_in) not in _SHIMS:
        _SHIMS.append((old, new, remove_in))
    return remove_in


def _superseded(new: str, remove_in: str):
    """Decorator: the function keeps working, with a ``DeprecationWarning`` naming ``new`` (its
    replacement, a dotted name, which may compute a different thing) and ``remove_in``::

        @_superseded("labkit.experiments.censored_power_law", remove_in="0.3")
        def power_law(ns, taus, level=0.95): ...
    """
    def wrap(fn):
        old = f"{fn.__module__}.{fn.__qualname__}"
        _shim(old, new, remove_in)

        @functools.wraps(fn)
        def shim(*args, **kwargs):
            _deprecated(old, new, remove_in=remove_in)
            return fn(*args, **kwargs)

        shim.__doc__ = (f"Deprecated (removed in labkit {remove_in}): use :func:`{new}`.\n\n"
                        + (fn.__doc__ or ""))
        shim.__deprecated__ = (new, remove_in)
        return shim

    return wrap


def _moved(module: str, names: dict[str, str], remove_in: str | None = None):
    """A module-level ``__getattr__`` that keeps moved names importable, with a warning.

    ``names`` maps each old attribute of ``module`` to its new home as ``"package.module.attr"``;
    ``remove_in`` is the release that deletes the old names::

        # in labkit/capacity.py, after memorization_point moved to labkit.experiments
        __getattr__ = _moved(__name__, {"memorization_point": "labkit.experiments.memorization_point"},
                             remove_in="0.3")

    ``from labkit.capacity import memorization_point`` then returns the new object and emits a
    ``DeprecationWarning`` naming ``labkit.experiments.memorization_point``. The new module is
    imported on first use only, so it may itself import the old one without a cycle.
    """
    for old, new in names.items():
        if new.count(".") < 1 or not all(part.isidentifier() for part in new.split(".")):
            raise ValueError(f"new home of {module}.{old} must be a dotted 'package.module.attr', got {new!r}")
        if remove_in is not None:
            _shim(f"{module}.{old}", new, remove_in)

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_module, _, attr = names[name].rpartition(".")
        _deprecated(f"{module}.{name}", names[name], remove_in=remove_in)
        return getattr(importlib.import_module(new_module), attr)

    __getattr__.moved = dict(names)  # for the changelog's test: every moved name is listed there
    __getattr__.remove_in = remove_in
    return __getattr__
