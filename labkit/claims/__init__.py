"""Every conclusion that notebooks 02, 03 and 04 and the README draw from a committed result set,
declared once as a :class:`Claim` in :data:`CLAIMS` (:mod:`labkit.claims.declarations`) and
computed from the rows by :func:`compute_claims` (``labkit claims`` writes
``results/claims.json``); ``labkit claims freeze`` records each declaration's digest in
``results/claims.lock`` before its confirmatory rows are computed.

Status and families. A claim is *confirmatory* when every row it reads recorded (in its
provenance) a claims lock under which the claim's current declaration was frozen; otherwise it
is read in its declared tier (``primary``, ``secondary`` or ``exploratory``). Its family is its
experiment (:data:`FAMILY_RULE`: labels, laws, fig3, duplication, training curves, table1) and
that role; familywise control runs within each family: Holm's adjustment of the t-test and
likelihood-ratio p (and of the equivalence p), and the Westfall-Young step-down min-p
adjustment of the exact sign-flip p (seeds flipped jointly across the family's claims). A claim
without a p says why (``p_reason``). The verdict rules, by kind:

- ``paired``: the per-seed difference ``metric(a) - metric(b)``, paired on the seed: a Student-t
  estimate and 95% interval, the two-sided paired t-test (``p``, Holm-adjusted
  ``p_adjusted``) and the exact sign-flip p (``p_sign_flip``, adjusted ``p_sign_flip_adjusted``).
  *Supported* when both adjusted p are below ALPHA with the difference on the stated side,
  *contradicted* when both are below it on the other side; with a declared ``margin``,
  *equivalent* when the two one-sided tests (TOST) place the difference within plus or minus
  the margin (Holm-adjusted p below ALPHA); *unresolved* otherwise, with the minimal detectable
  effect (80% power, from the observed SD and the number of pairs) beside it. The sign-flip p
  cannot go below 2 / 2^k: three pairs (0.25) or four (0.125) cannot support a paired claim.
- ``law``: the interval-censored log-normal regression of a training time on log n; ``p`` is
  the likelihood-ratio test of ``slope = null``. A claim about the slope's value (``null`` other
  than 0, "faster than linear") is also tested on the local slopes: it holds only when every
  local slope's 95% interval lies on the stated side of ``null``.
- ``law_curvature``: ``p`` is the lack-of-fit test of a quadratic term, the estimate its
  coefficient.
- ``law_compare``: the difference of two laws' slopes, with the conservative interval
  ``[lo_a - hi_b, hi_a - lo_b]``; supported only when it excludes 0 on the stated side.
- ``label``: a statement about the declared labels, re-read at every pair of margins of
  ``MEM_MARGINS`` x ``LL_MARGINS`` (never wider than the memorizing mark): supported when it
  holds at all nine, contradicted when it fails at all nine, unresolved otherwise.

A primary claim whose rows lack its declared seeds (or, without declared seeds, hold fewer than
PRIMARY_MIN_SEEDS) is unresolved and says what it awaits. Beside every verdict
(:mod:`labkit.claims.robustness`): leave-one-seed-out stability, and the analysis choices it is
re-read under (the laws' memorization mark from 5 to 20 points, their quality mark, a window of
two consecutive evaluations); a verdict that changes under a choice is unresolved, and its note
names the choice.

The package's layers: :mod:`~labkit.claims.model` and :mod:`~labkit.claims.declarations` (data),
:mod:`~labkit.claims.lock` (freezing), :mod:`~labkit.claims.rows`, :mod:`~labkit.claims.kinds`
(a registry of claim kinds), :mod:`~labkit.claims.multiplicity`,
:mod:`~labkit.claims.robustness` and :mod:`~labkit.claims.verdicts` (computing, the claims
file), :mod:`~labkit.claims.prose` and :mod:`~labkit.claims.tables` (words and tables). It sits
above :mod:`labkit.results`, which imports none of it (the run layer reads the lock through
:mod:`labkit.store`).
"""

from .declarations import CLAIMS, CONFIRMATORY_CLAIMS, claim
from .kinds import KIND_REGISTRY, Kind, minimal_detectable_effect
from .labeltests import LABEL_TESTS, WINDOW_TESTS, two_evaluations
from .lock import (declaration, declaration_digest, freeze, frozen_under, lock_digest,
                   lock_path, read_lock)
from .model import (ALPHA, FAMILIES, FAMILY_RULE, KINDS, POWER, PRIMARY_MIN_SEEDS, TIERS,
                    VERDICTS, Claim, experiment_of)
from .multiplicity import sign_flip_minp
from .prose import (CONCLUSION_PHRASES, PHRASES, check_notebook, conclusions, meaning,
                    notebook_problems, sentence, text_problems)
from .robustness import GEN_MARKS, MEM_MARKS
from .tables import VERDICT_GUIDE, choices_table, claims_table, sensitivity_table
from .verdicts import (claims_by_id, compare_claims, compute_claims, evaluate, family_of,
                       load_claims, write_claims)

__all__ = ["ALPHA", "POWER", "PRIMARY_MIN_SEEDS", "TIERS", "FAMILIES", "KINDS", "VERDICTS",
           "FAMILY_RULE", "PHRASES", "CONCLUSION_PHRASES", "MEM_MARKS", "GEN_MARKS",
           "VERDICT_GUIDE", "Claim", "Kind", "KIND_REGISTRY", "CLAIMS", "CONFIRMATORY_CLAIMS",
           "LABEL_TESTS", "WINDOW_TESTS", "claim", "experiment_of", "family_of",
           "compute_claims", "evaluate", "write_claims", "load_claims", "claims_by_id",
           "compare_claims", "sentence", "meaning", "conclusions", "claims_table",
           "sensitivity_table", "choices_table", "text_problems", "notebook_problems",
           "check_notebook", "declaration", "declaration_digest", "lock_path", "read_lock",
           "lock_digest", "freeze", "frozen_under", "sign_flip_minp",
           "minimal_detectable_effect", "two_evaluations"]
