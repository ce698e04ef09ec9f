"""What a claim is: the :class:`Claim` record, the constants its verdict rules use and the rule
that puts each claim in its multiplicity family (:func:`experiment_of`). Data and validation
only; the verdicts are computed in :mod:`labkit.claims.verdicts`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..experiments.registry import PRIMARY_SEEDS

__all__ = ["ALPHA", "POWER", "PRIMARY_MIN_SEEDS", "TIERS", "FAMILIES", "KINDS", "VERDICTS",
           "FAMILY_RULE", "Claim", "experiment_of"]

ALPHA = 0.05
POWER = 0.8  # the power at which a minimal detectable effect is stated
PRIMARY_MIN_SEEDS = len(PRIMARY_SEEDS)
# A claim's declared tier: ``primary`` (declared before its rows, at PRIMARY_SEEDS),
# ``secondary`` (three seeds, or a test added after the rows were seen), ``exploratory``
# (found by looking at the data). FAMILIES is the old name of TIERS.
TIERS = ("primary", "secondary", "exploratory")
FAMILIES = TIERS
KINDS = ("paired", "law", "law_curvature", "law_compare", "label")
VERDICTS = ("supported", "contradicted", "equivalent", "unresolved")

# The experiment a claim belongs to, from its kind and result set: the first rule that
# matches. Holm's adjustment and the sign-flip max-T run within one family, which is the
# experiment and the claim's role in it (confirmatory, else its tier).
FAMILY_RULE = (
    ({"kind": "label"}, "labels"),
    ({"kind": "law"}, "laws"),
    ({"kind": "law_curvature"}, "laws"),
    ({"kind": "law_compare"}, "laws"),
    ({"result_set": "fig3"}, "fig3"),
    ({"result_set": "duplication+fig3"}, "duplication"),
    ({"result_set": "training_time"}, "training curves"),
    ({"result_set": "table1"}, "table1"),
    ({"result_set": "table1_larger_n"}, "table1"),
    ({"result_set": "open_windows+table1"}, "noise windows"),
    ({"result_set": "open_windows"}, "noise windows"),
    ({"result_set": "open_hybrid"}, "noise windows"),
    ({"result_set": "open_search"}, "noise search"),
    ({"result_set": "open_halves"}, "disjoint halves"),
    ({"result_set": "open_denoisers"}, "closed-form denoisers"),
)


@dataclass(frozen=True)
class Claim:
    """One conclusion and how it is computed (the rules: :mod:`labkit.claims`).

    ``a`` and ``b``: the two arms as config filters (a paired claim), or the runs of a law
    (``a``) and of the law it is compared with (``b``), or the rows a label claim reads
    (``a``); ``metric``: a row's key (a curve's last value, or ``"key@i"`` for its i-th),
    ``"tau_mem"`` / ``"tau_gen"`` for a law;
    ``direction``: the sign the statement asserts (of ``a - b``, of ``slope - null``, of the
    curvature); ``check``: a label claim's test, ``check(rows, mem_margin, ll_margin) -> dict``
    with a boolean ``"holds"``; ``seeds``: the seeds the claim reads (None: every seed in the
    rows); ``margin``: an equivalence margin (a paired claim may then be found equivalent,
    within plus or minus ``margin``, by two one-sided tests). ``family`` is the declared tier
    (:data:`TIERS`); the multiplicity family is derived (:func:`experiment_of`)."""

    id: str
    statement: str
    notebook: str
    family: str
    kind: str
    result_set: str
    metric: str
    a: dict = field(default_factory=dict)
    b: dict = field(default_factory=dict)
    direction: int = 1
    null: float = 0.0
    metric_b: str | None = None
    check: Callable | None = None
    unit: str = ""
    seeds: tuple | None = None  # the seeds the claim reads (None: every seed in the rows)
    margin: float | None = None  # an equivalence margin for "no difference larger than"

    def __post_init__(self):
        if self.family not in TIERS:
            raise ValueError(f"family must be one of {TIERS}, got {self.family!r} ({self.id})")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r} ({self.id})")
        if not (isinstance(self.notebook, str) and self.notebook):
            raise ValueError(f"notebook must be a non-empty string (a notebook's number, e.g. "
                             f"'02'), got {self.notebook!r} ({self.id})")
        if self.seeds is not None and (isinstance(self.seeds, (str, bytes)) or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in self.seeds)):
            raise TypeError(f"seeds must be a tuple of ints (the seeds the claim reads) or None, "
                            f"got {self.seeds!r} ({self.id})")
        if self.margin is not None and not (isinstance(self.margin, (int, float))
                                            and self.margin > 0):
            raise ValueError(f"margin must be a positive number (the equivalence margin), got "
                             f"{self.margin!r} ({self.id})")
        if self.margin is not None and self.kind != "paired":
            raise ValueError(f"margin is for paired claims only, got kind {self.kind!r} "
                             f"({self.id})")
        if self.direction not in (1, -1):
            raise ValueError(f"direction must be 1 or -1, got {self.direction!r} ({self.id})")
        if self.kind == "label" and self.check is None:
            raise ValueError(f"a label claim needs a check ({self.id})")


def experiment_of(c: Claim) -> str:
    """The experiment of claim ``c`` by :data:`FAMILY_RULE` (ValueError when no rule
    matches: a new result set needs its rule)."""
    for where, name in FAMILY_RULE:
        if all(getattr(c, k) == v for k, v in where.items()):
            return name
    raise ValueError(f"no family rule matches claim {c.id!r} (kind {c.kind!r}, result set "
                     f"{c.result_set!r}): add one to FAMILY_RULE")
