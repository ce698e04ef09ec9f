"""The paper's experiments: protocols, statistics and the registry of result sets.

Algorithms live in their own modules (``train``, ``sampling``, ``metrics``, ``pruning`` ...);
this package only says *which* runs make a figure and how their rows are read:

- :mod:`labkit.experiments.stats`: per-seed intervals, paired differences, declared labels,
  training-time laws;
- :mod:`labkit.experiments.mixtures`: the mixture protocols of notebook 02
  (:func:`mixture_curve`, :func:`memorization_point`, the paper's Fig. 3 grids);
- :mod:`labkit.experiments.table1`: the pruning protocol of Table 1 (notebook 03);
- :mod:`labkit.experiments.registry`: :data:`EXPERIMENTS`, every committed result set, computed
  by ``labkit results run NAME`` (:mod:`labkit.cli`) into ``results/<NAME>.json``.

Every name is importable from ``labkit.experiments`` itself, as the committed result files'
``point_fn`` strings (``labkit.experiments:mixture_curve``) expect.
"""

from . import mixtures, registry, stats, table1
from .mixtures import *  # noqa: F401,F403
from .registry import *  # noqa: F401,F403
from .stats import *  # noqa: F401,F403
from .table1 import *  # noqa: F401,F403
from . import open_questions  # noqa: E402  (notebook 04's result sets)

registry.EXPERIMENTS.update(open_questions.OPEN_EXPERIMENTS)

__all__ = [*stats.__all__, *mixtures.__all__, *table1.__all__, *registry.__all__]
