"""The old home of the claims: every public name of :mod:`labkit.claims`, importable from here
as before (``from labkit.experiments import claims``). The label claims' tests are declared
(and frozen) under this module's name, so they are importable here too. New code imports
:mod:`labkit.claims`."""

from ..claims import *  # noqa: F401,F403
from ..claims import __all__ as _claims_all
from ..claims.labeltests import (_every_window, _fig2_generalizing_at_end,  # noqa: F401
                                 _fig2_ladder_over_time, _fig2_no_ladder_at_end, _no_window,
                                 _seeds_with_ladder, _window_2d, _window_d8_n128,
                                 _window_d8_small_n)
from ..claims.prose import _marked_sentences  # noqa: F401

__all__ = list(_claims_all)
