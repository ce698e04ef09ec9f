"""labkit: a lab for *Provable Separations between Memorization and Generalization in
Diffusion Models* (Ye, Zhu, Tao, Chen; arXiv 2511.03202).

The package is flat, one file per concept, in the order the notebooks introduce them:

- ``process``   the OU forward process; score / denoiser / noise conversions   (notebook 00)
- ``data``      Gaussian mixtures with exact diffused scores, 2-D toys          (00)
- ``scores``    the empirical score, denoiser and log-density (chunked GEMMs)   (00)
- ``losses``    DSM loss, Fisher divergence, the Loss-Gap of Prop. 4.1         (00, 01)
- ``sampling``  reverse SDE and probability-flow ODE samplers                  (00)
- ``metrics``   memorization ratio (1/3 rule) with intervals, quality measures (00)
- ``nets``      time-conditioned MLPs and the attention constructions          (01, 02)
- ``train``     the training loop                                              (01, 02, 03)
- ``capacity``  width needed to fit a score, Hessians / Lipschitz, duplication (02)
- ``sweeps``    cached, resumable, parallel experiment grids                   (02)
- ``dit``       a small diffusion transformer with gated heads                 (03)
- ``pruning``   head importance (Alg. 2), selection and structural pruning     (03)
- ``images``    digits and CIFAR-10 loaders, classifier features, FD, P/R     (03)
- ``plotting``  notebook setup, theme, ``savefig``                             (all)
- ``widgets``   explorers over pure ``render(...) -> Figure`` functions        (all)

Submodules load on first use (``labkit.scores`` or ``import labkit.scores``), so importing
labkit stays cheap.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "process", "data", "scores", "losses", "sampling", "metrics", "nets", "train", "capacity", "sweeps",
    "dit", "pruning", "images", "plotting", "widgets",
)
__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
