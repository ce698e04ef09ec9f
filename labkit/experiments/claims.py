"""Every conclusion that notebooks 02 and 03 and the README draw from a committed result set,
declared once as a :class:`Claim` in :data:`CLAIMS` and computed from the rows by
:func:`compute_claims` (``labkit claims`` writes them to ``results/claims.json``).

A claim belongs to a family: ``primary`` (declared before its rows were computed, at
:data:`labkit.experiments.PRIMARY_SEEDS`), ``secondary`` (three seeds, or a test added after the
rows were seen) or ``exploratory`` (found by looking at the data: best-of-many readings). Holm's
adjustment runs within each family. The verdict rules, declared here once:

- ``paired``: the per-seed difference ``metric(a) - metric(b)``, paired on the seed. Its
  estimate and 95% interval are Student-t; ``p`` is the two-sided paired t-test, ``p_adjusted``
  its Holm adjustment within the family, and ``p_sign_flip`` the exact sign-flip p (all 2^k
  sign assignments of k pairs). A claim is *supported* when ``p_adjusted`` < :data:`ALPHA` *and*
  ``p_sign_flip`` < ALPHA with the difference on the stated side (``direction``),
  *contradicted* when both are below ALPHA on the other side, *unresolved* otherwise. Both p
  drive the verdict: the sign-flip p needs no normality, and it cannot go below 2 / 2^k, so
  three pairs (0.25) or five (0.0625) cannot support anything.
- ``law``: the interval-censored log-normal regression of a training time on log n
  (:func:`labkit.experiments.censored_power_law`); ``p`` is the likelihood-ratio test of
  ``slope = null``, the interval profile-likelihood. A claim about the slope's value (``null``
  other than 0) is unresolved when the quadratic lack-of-fit test rejects the line (p < ALPHA):
  no single slope describes a curved law; its local slopes do.
- ``law_curvature``: ``p`` is that lack-of-fit test, the estimate the quadratic coefficient.
- ``law_compare``: the difference of two laws' slopes, with the conservative interval
  ``[lo_a - hi_b, hi_a - lo_b]``; supported only when it excludes 0 on the stated side (no p).
- ``label``: a statement about the declared labels (:func:`labkit.experiments.label`),
  re-read at every pair of margins of :data:`labkit.experiments.MEM_MARGINS` x
  :data:`labkit.experiments.LL_MARGINS`: supported when it holds at all nine, contradicted when
  it fails at all nine, unresolved when the margins decide it (no p).

A primary claim with fewer than :data:`PRIMARY_MIN_SEEDS` seeds in the rows is unresolved and
says what it awaits. Notebooks word each conclusion from its verdict: a Markdown cell marks the
sentence with ``<!-- claim: ID -->`` and :func:`check_notebook` fails when the sentence's words do
not match the verdict (:data:`PHRASES`). :func:`claims_table` renders a notebook's claims.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import stats
from .registry import CONFIRMATORY_LAW_SEEDS, CONFIRMATORY_TABLE1_SEEDS, PRIMARY_SEEDS

__all__ = ["ALPHA", "PRIMARY_MIN_SEEDS", "PHRASES", "Claim", "CLAIMS", "claim", "compute_claims",
           "write_claims", "load_claims", "claims_by_id", "compare_claims", "claims_table",
           "sensitivity_table", "text_problems", "notebook_problems", "check_notebook"]

ALPHA = 0.05
PRIMARY_MIN_SEEDS = len(PRIMARY_SEEDS)
FAMILIES = ("primary", "secondary", "exploratory")
KINDS = ("paired", "law", "law_curvature", "law_compare", "label")
# The words a conclusion's sentence must contain for each verdict (lower case); a supported
# claim's sentence must contain none of the others'.
PHRASES = {
    "unresolved": ("could not tell", "cannot tell", "unresolved", "no detectable", "not resolved",
                   "not told apart", "awaits"),
    "contradicted": ("contradict", "the opposite", "not supported"),
}


@dataclass(frozen=True)
class Claim:
    """One conclusion and how it is computed (see the module docstring for the rules).

    ``a`` and ``b``: the two arms as config filters (a paired claim), or the runs of a law
    (``a``) and of the law it is compared with (``b``), or the rows a label claim reads
    (``a``); ``metric``: a row's key (a curve's last value, or ``"key@i"`` for its i-th),
    ``"tau_mem"`` / ``"tau_gen"`` for a law;
    ``direction``: the sign the statement asserts (of ``a - b``, of ``slope - null``, of the
    curvature); ``check``: a label claim's test, ``check(rows, mem_margin, ll_margin) -> dict``
    with a boolean ``"holds"``."""

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
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r} ({self.id})")
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
        if self.direction not in (1, -1):
            raise ValueError(f"direction must be 1 or -1, got {self.direction!r} ({self.id})")
        if self.kind == "label" and self.check is None:
            raise ValueError(f"a label claim needs a check ({self.id})")


# ----------------------------------------------------------------------------------------------
# The label claims' tests: (rows, mem_margin, ll_margin) -> {"holds": bool, ...counts}

def _fig2_generalizing_at_end(rows, mem_margin, ll_margin):
    labels = [stats.label(r, -1, mem_margin, ll_margin) for r in rows]
    count = labels.count("generalizing")
    return {"holds": count == 0, "generalizing_runs": count, "runs": len(rows)}


def _seeds_with_ladder(rows, mem_margin, ll_margin, at_end):
    found = 0
    for seed in sorted({r["seed"] for r in rows}):
        runs = [r for r in rows if r["seed"] == seed]
        steps = range(len(runs[0]["steps"]) - 1, len(runs[0]["steps"])) if at_end \
            else range(1, len(runs[0]["steps"]))
        if any({"failing", "generalizing", "memorizing"}
               <= {stats.label(r, i, mem_margin, ll_margin) for r in runs} for i in steps):
            found += 1
    return found


def _fig2_no_ladder_at_end(rows, mem_margin, ll_margin):
    found = _seeds_with_ladder(rows, mem_margin, ll_margin, at_end=True)
    return {"holds": found == 0, "seeds_with_three_labels": found}


def _fig2_ladder_over_time(rows, mem_margin, ll_margin):
    found = _seeds_with_ladder(rows, mem_margin, ll_margin, at_end=False)
    return {"holds": found > 0, "seeds_with_three_labels": found}


def _no_window(rows, mem_margin, ll_margin):
    windows = [stats.generalizing_window(r, mem_margin=mem_margin, ll_margin=ll_margin)
               for r in rows]
    early = sum(w["memorization_step"] is not None
                and (w["quality_step"] is None or w["memorization_step"] < w["quality_step"])
                for w in windows)
    empty = sum(not w["steps"] for w in windows)
    return {"holds": empty == len(rows), "runs": len(rows), "runs_without_window": empty,
            "memorization_before_quality": early}


def _every_window(rows, mem_margin, ll_margin):
    out = _no_window(rows, mem_margin, ll_margin)
    return {**out, "holds": out["runs_without_window"] == 0}


def _d8_small_n(rows):
    return [r for r in rows if r["mixture"] == "paper" and r["width"] == 256 and r["n"] <= 64]


def _window_d8_small_n(rows, mem_margin, ll_margin):
    return _no_window(_d8_small_n(rows), mem_margin, ll_margin)


def _window_d8_n128(rows, mem_margin, ll_margin):
    return _every_window([r for r in rows if r["mixture"] == "paper" and r["width"] == 256
                          and r["n"] == 128], mem_margin, ll_margin)


def _window_2d(rows, mem_margin, ll_margin):
    return _every_window([r for r in rows if r["mixture"] == "gmm4" and r["width"] == 256],
                         mem_margin, ll_margin)


# ----------------------------------------------------------------------------------------------
# The registry

def _fig3(n=16, width=256, decay=0.0, dim=8):
    return {"dim": dim, "n": n, "width": width, "weight_decay": decay}


def _arm(method, ratio=0.2):
    return {"method": method, "ratio": ratio}


_P, _S, _E = "primary", "secondary", "exploratory"
_MEM, _LL = "fraction", "nats"
CLAIMS: tuple[Claim, ...] = (
    # -- notebook 02, the training-time laws (width 256: primary; width 64: secondary)
    Claim("law_mem_2d_grows", "On the 2-D toy (width 256) the memorization time grows with n.",
          "02", _P, "law", "training_time", "tau_mem", {"mixture": "gmm4", "width": 256}),
    Claim("law_mem_2d_vs_linear", "On the 2-D toy (width 256) the memorization time grows "
          "faster than Bonnaire et al.'s linear law (slope above 1).", "02", _P, "law",
          "training_time", "tau_mem", {"mixture": "gmm4", "width": 256}, null=1.0),
    Claim("law_mem_d8_grows", "On the d = 8 mixture (width 256) the memorization time grows "
          "with n.", "02", _P, "law", "training_time", "tau_mem",
          {"mixture": "paper", "width": 256}),
    Claim("law_mem_d8_vs_linear", "On the d = 8 mixture (width 256) the memorization time grows "
          "faster than linearly in n (slope above 1).", "02", _P, "law", "training_time",
          "tau_mem", {"mixture": "paper", "width": 256}, null=1.0),
    Claim("law_mem_2d_w64_grows", "On the 2-D toy at width 64 the memorization time grows with "
          "n.", "02", _S, "law", "training_time", "tau_mem", {"mixture": "gmm4", "width": 64}),
    Claim("law_mem_2d_w64_vs_linear", "On the 2-D toy at width 64 the memorization time grows "
          "faster than linearly (slope above 1).", "02", _S, "law", "training_time", "tau_mem",
          {"mixture": "gmm4", "width": 64}, null=1.0),
    Claim("law_mem_d8_curved", "On the d = 8 mixture the memorization-time law is not a line in "
          "log-log: steeper at larger n.", "02", _S, "law_curvature", "training_time", "tau_mem",
          {"mixture": "paper", "width": 256}),
    Claim("law_mem_2d_curved", "On the 2-D toy (width 256) the memorization-time law is steeper "
          "at larger n.", "02", _S, "law_curvature", "training_time", "tau_mem",
          {"mixture": "gmm4", "width": 256}),
    Claim("law_gen_2d_grows", "On the 2-D toy (width 256) the time to reach fresh-draw quality "
          "grows with n.", "02", _S, "law", "training_time", "tau_gen",
          {"mixture": "gmm4", "width": 256}),
    Claim("law_gen_d8_grows", "On the d = 8 mixture the time to reach fresh-draw quality grows "
          "with n.", "02", _S, "law", "training_time", "tau_gen",
          {"mixture": "paper", "width": 256}),
    Claim("law_mem_faster_than_gen_2d", "On the 2-D toy the memorization time grows faster with "
          "n than the time to reach fresh-draw quality.", "02", _S, "law_compare",
          "training_time", "tau_mem", {"mixture": "gmm4", "width": 256},
          {"mixture": "gmm4", "width": 256}, metric_b="tau_gen"),
    Claim("law_mem_faster_than_gen_d8", "On the d = 8 mixture the memorization time grows faster "
          "with n than the time to reach fresh-draw quality.", "02", _S, "law_compare",
          "training_time", "tau_mem", {"mixture": "paper", "width": 256},
          {"mixture": "paper", "width": 256}, metric_b="tau_gen"),
    Claim("law_mem_steeper_2d", "The memorization-time law is steeper on the 2-D toy than on the "
          "d = 8 mixture.", "02", _S, "law_compare", "training_time", "tau_mem",
          {"mixture": "gmm4", "width": 256}, {"mixture": "paper", "width": 256},
          metric_b="tau_mem"),
    # -- notebook 02, still memorizing more at the end of the budget? (the last doubling of
    # steps: the curve's last evaluation against the one two before; a reading of the curves)
    *(Claim(f"rising_{tag}_n{n}", f"On the {name} (width 256, n = {n}) memorization still rises "
            "over the last doubling of training steps.", "02", _E, "paired", "training_time",
            "memorization@-1", {"mixture": mixture, "width": 256, "n": n},
            {"mixture": mixture, "width": 256, "n": n}, metric_b="memorization@-3", unit=_MEM)
      for tag, name, mixture, ns in (("2d", "2-D toy", "gmm4", (16, 32, 64, 128)),
                                     ("d8", "d = 8 mixture", "paper", (16, 128)))
      for n in ns),
    # -- notebook 02, the generalizing window (labels with declared margins)
    Claim("window_d8_none", "At d = 8 (width 256, n = 16 to 64) no run has a generalizing "
          "window: memorization starts before the samples reach the quality of fresh draws.",
          "02", _S, "label", "training_time", "label", {"mixture": "paper", "width": 256},
          check=_window_d8_small_n),
    Claim("window_d8_n128", "At d = 8, n = 128 (width 256) every run has a generalizing window.",
          "02", _S, "label", "training_time", "label", {"mixture": "paper", "width": 256, "n": 128},
          check=_window_d8_n128),
    Claim("window_2d_every", "On the 2-D toy (width 256) every run has a generalizing window.",
          "02", _S, "label", "training_time", "label", {"mixture": "gmm4", "width": 256},
          check=_window_2d),
    # -- notebook 02, Fig. 2
    Claim("fig2_none_generalize_end", "At the end of training (n = 16, 32,000 steps) no width "
          "generalizes, in any seed.", "02", _S, "label", "fig2", "label",
          check=_fig2_generalizing_at_end),
    Claim("fig2_no_ladder_end", "At the end of training no seed shows Fig. 2's three regimes "
          "side by side.", "02", _S, "label", "fig2", "label", check=_fig2_no_ladder_at_end),
    Claim("fig2_ladder_over_time", "At some evaluation step the widths of one seed carry all "
          "three labels at once (the ladder along the time axis; a best-of-steps reading).",
          "02", _E, "label", "fig2", "label", check=_fig2_ladder_over_time),
    # -- notebook 02, Fig. 3 trends (primary)
    Claim("fig3_width_mem_n16", "Bigger nets memorize more at n = 16 (width 256 vs 16).", "02",
          _P, "paired", "fig3", "memorization", _fig3(16, 256), _fig3(16, 16), unit=_MEM),
    Claim("fig3_width_mem_n256", "Bigger nets memorize more at n = 256 (width 256 vs 16).", "02",
          _P, "paired", "fig3", "memorization", _fig3(256, 256), _fig3(256, 16), unit=_MEM),
    Claim("fig3_n_mem_16_256", "Fewer samples memorize more (n = 16 vs 256, width 256).", "02",
          _P, "paired", "fig3", "memorization", _fig3(16), _fig3(256), unit=_MEM),
    Claim("fig3_decay1_mem_n16", "Strong weight decay (1.0) lowers memorization at n = 16.",
          "02", _P, "paired", "fig3", "memorization", _fig3(16, decay=1.0), _fig3(16),
          direction=-1, unit=_MEM),
    Claim("fig3_decay01_mem_n16", "Moderate weight decay (0.1) lowers memorization at n = 16.",
          "02", _P, "paired", "fig3", "memorization", _fig3(16, decay=0.1), _fig3(16),
          direction=-1, unit=_MEM),
    Claim("fig3_decay01_ll_n16", "Moderate weight decay (0.1) raises the log-likelihood at "
          "n = 16 (the paper's Fig. 3b claim at its small n).", "02", _P, "paired", "fig3",
          "log_likelihood", _fig3(16, decay=0.1), _fig3(16), unit=_LL),
    Claim("fig3_decay1_ll_n256", "Strong weight decay (1.0) lowers the log-likelihood at "
          "n = 256.", "02", _P, "paired", "fig3", "log_likelihood", _fig3(256, decay=1.0),
          _fig3(256), direction=-1, unit=_LL),
    # -- notebook 02, Fig. 3 (secondary: three seeds)
    Claim("fig3_n_mem_16_64", "Fewer samples memorize more (n = 16 vs 64, width 256).", "02", _S,
          "paired", "fig3", "memorization", _fig3(16), _fig3(64), unit=_MEM),
    Claim("fig3_dim_mem_8_16", "Higher d memorizes less (d = 8 vs 16, n = 16, width 256).", "02",
          _S, "paired", "fig3", "memorization", _fig3(16), _fig3(16, dim=16), unit=_MEM),
    Claim("fig3_dim_mem_4_8", "Higher d memorizes less (d = 4 vs 8, n = 16, width 256).", "02",
          _S, "paired", "fig3", "memorization", _fig3(16, dim=4), _fig3(16), unit=_MEM),
    Claim("fig3_width_ll_n256", "Wider nets reach a higher log-likelihood at n = 256 (width 256 "
          "vs 16).", "02", _S, "paired", "fig3", "log_likelihood", _fig3(256, 256),
          _fig3(256, 16), unit=_LL),
    Claim("fig3_decay1_ll_n16", "Strong weight decay (1.0) raises the log-likelihood at n = 16.",
          "02", _S, "paired", "fig3", "log_likelihood", _fig3(16, decay=1.0), _fig3(16),
          unit=_LL),
    Claim("lipschitz_decay_n16", "Strong weight decay (1.0) lowers the trained score's Jacobian "
          "norm at n = 16.", "02", _S, "paired", "fig3", "lipschitz_median",
          _fig3(16, decay=1.0), _fig3(16), direction=-1),
    Claim("lipschitz_decay_n256", "Strong weight decay (1.0) lowers the trained score's Jacobian "
          "norm at n = 256.", "02", _S, "paired", "fig3", "lipschitz_median",
          _fig3(256, decay=1.0), _fig3(256), direction=-1),
    Claim("dup_10_mem", "Duplicating 10% of the points (x10) raises memorization (d = 8, n = 64).",
          "02", _S, "paired", "duplication+fig3", "memorization", {"duplicate_fraction": 0.1},
          {**_fig3(64), "duplicate_fraction": 0.0}, unit=_MEM),
    Claim("dup_30_mem", "Duplicating 30% of the points (x10) raises memorization (d = 8, n = 64).",
          "02", _S, "paired", "duplication+fig3", "memorization", {"duplicate_fraction": 0.3},
          {**_fig3(64), "duplicate_fraction": 0.0}, unit=_MEM),
    # -- notebook 03, Table 1 (memorization in percent; primary)
    Claim("t1_small_vs_random", "Small-t importance pruning memorizes more than random pruning "
          "(the paper's ordering: random lowers memorization more).", "03", _P, "paired",
          "table1", "memorization", _arm("small-t importance"), _arm("random"), unit="percent"),
    Claim("t1_small_vs_control", "Small-t importance pruning lowers memorization against the "
          "fine-tuned, unpruned control.", "03", _P, "paired", "table1", "memorization",
          _arm("small-t importance"), _arm("fine-tuned control"), direction=-1, unit="percent"),
    Claim("t1_random_vs_control", "Random pruning lowers memorization against the fine-tuned, "
          "unpruned control.", "03", _P, "paired", "table1", "memorization", _arm("random"),
          _arm("fine-tuned control"), direction=-1, unit="percent"),
    Claim("t1_small_vs_original", "Small-t importance pruning (and fine-tuning) lowers "
          "memorization below the original model's.", "03", _P, "paired", "table1",
          "memorization", _arm("small-t importance"), _arm("original"), direction=-1,
          unit="percent"),
    Claim("t1_random_vs_original", "Random pruning (and fine-tuning) lowers memorization below "
          "the original model's.", "03", _P, "paired", "table1", "memorization", _arm("random"),
          _arm("original"), direction=-1, unit="percent"),
    Claim("t1_fd_small_vs_random", "Small-t importance pruning keeps quality better than random "
          "pruning (lower FD).", "03", _P, "paired", "table1", "fd", _arm("small-t importance"),
          _arm("random"), direction=-1),
    # -- notebook 03, secondary
    Claim("t1_original_memorizes", "The original DiT memorizes: its samples are memorized far "
          "more often than held-out digits (the null rate).", "03", _S, "paired", "table1",
          "memorization", _arm("original"), {"method": "base"}, metric_b="null_memorization",
          unit="percent"),
    Claim("t1_control_vs_original", "Fine-tuning the unpruned model for the same steps raises "
          "memorization.", "03", _S, "paired", "table1", "memorization",
          _arm("fine-tuned control"), _arm("original"), unit="percent"),
    Claim("t1_base_still_rising", "The base DiT's memorization is still rising at the end of "
          "Table 1's training (last probe above the one before).", "03", _S, "paired", "table1",
          "probe_memorization@-1", {"method": "base"}, {"method": "base"},
          metric_b="probe_memorization@-2", unit="percent"),
    Claim("t1_small_vs_uniform", "Small-t importance memorizes less than uniform-t importance.",
          "03", _S, "paired", "table1", "memorization", _arm("small-t importance"),
          _arm("uniform-t importance"), direction=-1, unit="percent"),
    Claim("t1_fd_small_vs_original", "Small-t importance pruning lowers the FD against the "
          "original.", "03", _S, "paired", "table1", "fd", _arm("small-t importance"),
          _arm("original"), direction=-1),
    Claim("t1_precision_small_vs_original", "Small-t importance pruning lowers precision "
          "against the original.", "03", _S, "paired", "table1", "precision",
          _arm("small-t importance"), _arm("original"), direction=-1),
    Claim("t1_recall_small_vs_original", "Small-t importance pruning raises recall against the "
          "original.", "03", _S, "paired", "table1", "recall", _arm("small-t importance"),
          _arm("original")),
    # -- notebook 03, exploratory
    Claim("t1_magnitude_vs_random", "Magnitude pruning memorizes less than random pruning.",
          "03", _E, "paired", "table1", "memorization", _arm("magnitude"), _arm("random"),
          direction=-1, unit="percent"),
    *(Claim(f"t1_sweep_{int(round(100 * r))}", f"At {r:.0%} of heads pruned, small-t importance "
            "memorizes less than random pruning.", "03", _E, "paired", "table1", "memorization",
            _arm("small-t importance", r), _arm("random", r), direction=-1, unit="percent")
      for r in (0.1, 0.3, 0.4, 0.5)),
    Claim("larger_n_32_rising", "At n = 32 the base DiT memorizes more after 16,000 steps than "
          "after 4,000 (one run).", "03", _E, "paired", "table1_larger_n",
          "probe_memorization@7", {"n": 32}, {"n": 32}, metric_b="probe_memorization@5",
          unit="percent"),
    Claim("larger_n_128_late", "At n = 128 the base DiT memorizes less after 20,000 steps than "
          "the n = 32 base (one run).", "03", _E, "paired", "table1_larger_n",
          "probe_memorization", {"n": 128}, {"n": 32}, direction=-1, unit="percent"),
)

# The claims above read the first eight runs of Table 1 and of the training-time study (seeds
# 0-7, declared after some of their rows had been seen). The confirmatory claims below read only
# runs computed after `labkit claims freeze` recorded their declarations.
_FIRST_RUNS = tuple(PRIMARY_SEEDS)
CLAIMS = tuple(replace(c, seeds=_FIRST_RUNS)
               if c.result_set in ("table1", "training_time") and c.seeds is None else c
               for c in CLAIMS)
_T1C, _LAWC = tuple(CONFIRMATORY_TABLE1_SEEDS), tuple(CONFIRMATORY_LAW_SEEDS)
_2D = {"mixture": "gmm4", "width": 256}
CONFIRMATORY_CLAIMS: tuple[Claim, ...] = (
    # -- notebook 03, Table 1 on runs 8-31 (memorization in percent)
    Claim("t1c_small_vs_random", "Small-t importance pruning memorizes more than random pruning "
          "(the paper's ordering), or the two differ by less than 3 points.", "03", _P,
          "paired", "table1", "memorization", _arm("small-t importance"), _arm("random"),
          unit="percent", seeds=_T1C, margin=3.0),
    Claim("t1c_fd_small_vs_random", "Small-t importance pruning keeps quality better than random "
          "pruning (lower FD).", "03", _P, "paired", "table1", "fd",
          _arm("small-t importance"), _arm("random"), direction=-1, seeds=_T1C),
    Claim("t1c_small_vs_original", "Small-t importance pruning (and fine-tuning) lowers "
          "memorization below the original model's.", "03", _P, "paired", "table1",
          "memorization", _arm("small-t importance"), _arm("original"), direction=-1,
          unit="percent", seeds=_T1C),
    Claim("t1c_random_vs_original", "Random pruning (and fine-tuning) lowers memorization below "
          "the original model's.", "03", _P, "paired", "table1", "memorization",
          _arm("random"), _arm("original"), direction=-1, unit="percent", seeds=_T1C),
    Claim("t1c_small_vs_control", "Small-t importance pruning lowers memorization against the "
          "fine-tuned, unpruned control.", "03", _P, "paired", "table1", "memorization",
          _arm("small-t importance"), _arm("fine-tuned control"), direction=-1,
          unit="percent", seeds=_T1C),
    Claim("t1c_random_vs_control", "Random pruning lowers memorization against the fine-tuned, "
          "unpruned control.", "03", _P, "paired", "table1", "memorization", _arm("random"),
          _arm("fine-tuned control"), direction=-1, unit="percent", seeds=_T1C),
    Claim("t1c_control_vs_original", "Fine-tuning the unpruned model for the same steps raises "
          "memorization.", "03", _P, "paired", "table1", "memorization",
          _arm("fine-tuned control"), _arm("original"), unit="percent", seeds=_T1C),
    # -- notebook 02, the 2-D memorization-time law on runs 8-15 (n = 128 at 128,000 steps)
    Claim("lawc_mem_2d_grows", "On the 2-D toy (width 256) the memorization time grows with n.",
          "02", _P, "law", "training_time", "tau_mem", _2D, seeds=_LAWC),
    Claim("lawc_mem_2d_vs_linear", "On the 2-D toy (width 256) the memorization time grows "
          "faster than Bonnaire et al.'s linear law (slope above 1).", "02", _P, "law",
          "training_time", "tau_mem", _2D, null=1.0, seeds=_LAWC),
    Claim("lawc_mem_2d_curved", "On the 2-D toy (width 256) the memorization-time law is "
          "steeper at larger n.", "02", _P, "law_curvature", "training_time", "tau_mem", _2D,
          seeds=_LAWC),
    Claim("lawc_gen_2d_grows", "On the 2-D toy (width 256) the time to reach fresh-draw quality "
          "grows with n.", "02", _P, "law", "training_time", "tau_gen", _2D, seeds=_LAWC),
)
CLAIMS += CONFIRMATORY_CLAIMS


# ----------------------------------------------------------------------------------------------
# Freezing the declarations before their rows are computed

def declaration(c: Claim) -> dict:
    """What a claim declares, as JSON: its fields that differ from their defaults (a field
    added later with a default leaves every earlier declaration's digest unchanged), its label
    test named by module, name and a digest of its source."""
    import dataclasses
    import inspect

    from ..store import digest

    out = {}
    for f in dataclasses.fields(c):
        value = getattr(c, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else object())
        if value == default and f.name not in ("id",):
            continue
        if callable(value):
            value = {"fn": f"{value.__module__}:{value.__qualname__}",
                     "source": digest(inspect.getsource(value))}
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def declaration_digest(c: Claim) -> str:
    """The digest of :func:`declaration` ``(c)``: what ``labkit claims freeze`` records."""
    from ..store import digest

    return digest(declaration(c))


def lock_path(results_dir=None) -> Path:
    """The lock file of frozen declarations: ``results/claims.lock`` (JSON)."""
    from ..store import results_dir as _results_dir

    return Path(results_dir or _results_dir()) / "claims.lock"


def read_lock(results_dir=None) -> dict:
    """The lock file's content, ``{"freezes": [...]}`` (empty when nothing is frozen)."""
    path = lock_path(results_dir)
    if not path.is_file():
        return {"freezes": []}
    return json.loads(path.read_text())


def lock_digest(results_dir=None) -> str | None:
    """The digest of the latest freeze (every claim frozen so far, with its declaration's
    digest), or None when nothing is frozen. Every row a run computes records it."""
    freezes = read_lock(results_dir)["freezes"]
    return freezes[-1]["digest"] if freezes else None


def freeze(claims=None, results_dir=None, *, log=print) -> dict:
    """Freeze the declarations of ``claims`` (default :data:`CLAIMS`): append a freeze to the lock
    file that records each claim's declaration digest (the claims frozen before keep theirs), the
    commit and the date. A claim whose declaration changed since it was frozen is refused
    (ValueError naming it): a frozen claim is changed only by declaring a new one."""
    import datetime as dt

    from ..results import _git_commit
    from ..store import digest, write_json

    claims = CLAIMS if claims is None else claims
    lock = read_lock(results_dir)
    frozen = dict(lock["freezes"][-1]["claims"]) if lock["freezes"] else {}
    changed = [c.id for c in claims if c.id in frozen and frozen[c.id] != declaration_digest(c)]
    if changed:
        raise ValueError(f"claims {changed} were frozen with another declaration; declare a new "
                         "claim (a new id) instead of changing a frozen one")
    new = {c.id: declaration_digest(c) for c in claims if c.id not in frozen}
    if not new:
        log(f"nothing to freeze: all {len(frozen)} declared claims are frozen")
        return lock
    frozen.update(new)
    entry = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "commit": _git_commit(), "added": sorted(new), "claims": frozen,
             "digest": digest(frozen)}
    lock["freezes"].append(entry)
    write_json(lock_path(results_dir), lock)
    log(f"froze {len(new)} claims ({len(frozen)} in all); lock {entry['digest']}")
    return lock


def frozen_under(lock_id: str | None, results_dir=None) -> dict:
    """``{claim id: declaration digest}`` frozen when a row recorded ``lock_id`` (empty for
    None or an unknown lock)."""
    for entry in read_lock(results_dir)["freezes"]:
        if entry["digest"] == lock_id:
            return entry["claims"]
    return {}


def claim(claim_id: str) -> Claim:
    """The declared :class:`Claim` called ``claim_id``."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise ValueError(f"claim_id must be one of {[c.id for c in CLAIMS]}, got {claim_id!r}")


# ----------------------------------------------------------------------------------------------
# Reading the rows

def _table1_rows(rows):
    """Table 1's rows, one per (seed, arm, ratio) with the arm as ``method``, and the base's
    memorization probe of every run as method ``"base"``."""
    out, bases = [], {}
    for row in rows:
        out.append({**row, "method": row["arm"]})
        bases.setdefault(row["seed"], {"seed": row["seed"], "method": "base",
                                       "probe_memorization": row["probe_memorization"],
                                       "null_memorization": row["null_memorization"]})
    return out + list(bases.values())


def _load(result_set: str, results_dir) -> list[dict]:
    """The rows of a result set (``"a+b"``: of both, e.g. the duplication set and the Fig. 3 set
    that holds its 0% setting), as the notebooks read them."""
    from ..results import results_table

    rows = []
    for name in result_set.split("+"):
        path = None if results_dir is None else Path(results_dir) / f"{name}.json"
        found = results_table(name, missing="skip", path=path, log=lambda _: None).rows
        rows += _table1_rows(found) if name == "table1" else found
    return rows


def _value(row: dict, metric: str):
    key, _, index = metric.partition("@")
    value = row[key]
    if isinstance(value, list):
        value = value[int(index) if index else -1]
    elif index:
        raise ValueError(f"metric {metric!r}: {key!r} is not a curve")
    return value


def _pick(rows, where: dict, metric: str) -> dict:
    out = {}
    for row in rows:
        if all(row.get(k) == v for k, v in where.items()):
            if row["seed"] in out:
                raise ValueError(f"the filter {where} matches two rows at seed {row['seed']}")
            out[row["seed"]] = _value(row, metric)
    return out


# ----------------------------------------------------------------------------------------------
# Computing the claims

def _side(estimate, direction):
    return "supported" if np.sign(estimate) == direction else "contradicted"


def _paired(c: Claim, rows) -> dict:
    if c.seeds is not None:
        rows = [r for r in rows if r["seed"] in c.seeds]
    left, right = _pick(rows, c.a, c.metric), _pick(rows, c.b, c.metric_b or c.metric)
    seeds = sorted(set(left) & set(right))
    entry = {"a": c.a, "b": c.b, "pair_on": "seed", "seeds": seeds,
             "pairs": [{"seed": s, "a": left[s], "b": right[s]} for s in seeds]}
    if c.metric_b:
        entry["metric_b"] = c.metric_b
    if not seeds:
        return {**entry, "estimate": None, "interval": None, "p": None, "p_sign_flip": None}
    test = stats.paired_test([left[s] for s in seeds], [right[s] for s in seeds])
    p_t = test["p_t"] if math.isfinite(test["p_t"]) else None
    interval = test["interval"] if len(seeds) > 1 else None  # one run: no interval
    return {**entry, "estimate": test["estimate"], "interval": interval, "p": p_t,
            "p_sign_flip": test["p_sign_flip"]}


def _law_seeds(obs):
    by_x = {}
    for o in obs:
        by_x.setdefault(o["x"], set()).add(o["seed"])
    return sorted(set.intersection(*by_x.values())) if by_x else []


def _law(c: Claim, rows, cache) -> dict:
    key = (c.result_set, c.metric, tuple(sorted(c.a.items())), c.seeds)
    if c.seeds is not None:
        rows = [r for r in rows if r["seed"] in c.seeds]
    if key not in cache:
        obs = stats.time_observations(rows, c.metric, **c.a)
        try:  # local slopes' intervals only where a conclusion reads them (memorization times)
            fit = stats.censored_power_law(obs, local_intervals=c.metric == "tau_mem")
        except ValueError:  # too few runs in the rows for a law
            fit = None
        cache[key] = (obs, fit)
    obs, fit = cache[key]
    if fit is None:
        return {"a": c.a, "seeds": _law_seeds(obs), "observations": obs, "null": c.null,
                "estimate": None, "interval": None, "p": None}
    out = {"a": c.a, "seeds": _law_seeds(obs), "observations": obs, "null": c.null,
           "estimate": fit["slope"], "interval": fit["interval"],
           "p": stats.censored_slope_p(obs, c.null, fit["loglik"]),
           **{k: fit[k] for k in ("intercept", "sigma", "censored", "lack_of_fit_p",
                                  "local_slopes", "curvature")}}
    if c.kind == "law_curvature":
        out.update(estimate=fit["curvature"], interval=None, p=fit["lack_of_fit_p"],
                   slope=fit["slope"])
    return out


def _law_compare(c: Claim, rows, cache) -> dict:
    first = _law(Claim(c.id, "", c.notebook, c.family, "law", c.result_set, c.metric, c.a,
                       seeds=c.seeds), rows, cache)
    second = _law(Claim(c.id, "", c.notebook, c.family, "law", c.result_set, c.metric_b, c.b,
                        seeds=c.seeds), rows, cache)
    if first["estimate"] is None or second["estimate"] is None:
        return {"a": c.a, "b": c.b, "metric_b": c.metric_b, "seeds": [], "estimate": None,
                "interval": None, "p": None}
    (lo_a, hi_a), (lo_b, hi_b) = first["interval"], second["interval"]
    interval = [None if lo_a is None or hi_b is None else lo_a - hi_b,
                None if hi_a is None or lo_b is None else hi_a - lo_b]
    return {"a": c.a, "b": c.b, "metric_b": c.metric_b,
            "seeds": sorted(set(first["seeds"]) & set(second["seeds"])),
            "estimate": first["estimate"] - second["estimate"], "interval": interval, "p": None,
            "slopes": [first["estimate"], second["estimate"]]}


def _label(c: Claim, rows) -> dict:
    rows = [r for r in rows if all(r.get(k) == v for k, v in c.a.items())
            and (c.seeds is None or r["seed"] in c.seeds)]
    if not rows:
        return {"seeds": [], "estimate": None, "interval": None, "p": None}
    table = stats.label_sensitivity(rows, c.check)
    declared = c.check(rows, stats.LABEL_MEM_MARGIN, stats.LABEL_LL_MARGIN)
    holds = [cell["value"]["holds"] for cell in table]
    verdict = "supported" if all(holds) else "contradicted" if not any(holds) else "unresolved"
    return {"seeds": sorted({r["seed"] for r in rows}), "estimate": float(declared["holds"]),
            "interval": None, "p": None, "detail": declared, "sensitivity": table,
            "label_verdict": verdict, "margins": {"mem_margin": stats.LABEL_MEM_MARGIN,
                                                  "ll_margin": stats.LABEL_LL_MARGIN}}


def _verdict(c: Claim, entry: dict) -> tuple[str, str]:
    """``(verdict, note)`` by the module's declared rules, once ``p_adjusted`` is known."""
    if c.family == "primary" and len(entry["seeds"]) < PRIMARY_MIN_SEEDS:
        return "unresolved", (f"awaits its seeds: {len(entry['seeds'])} of {PRIMARY_MIN_SEEDS} "
                              "in the rows")
    if entry["estimate"] is None:
        return "unresolved", "no rows"
    if c.kind == "paired" and len(entry["seeds"]) < 2:
        return "unresolved", "one run: no interval and no test"
    if c.kind == "label":
        return entry["label_verdict"], "read at 3 x 3 margins"
    if c.kind == "law_compare":
        lo, hi = entry["interval"]
        if (lo is not None and lo > 0) or (hi is not None and hi < 0):
            return _side(entry["estimate"], c.direction), "the slopes' 95% intervals do not overlap"
        return "unresolved", "the slopes' 95% intervals overlap"
    if c.kind == "law" and c.null != 0 and entry["lack_of_fit_p"] is not None \
            and entry["lack_of_fit_p"] < ALPHA:
        return "unresolved", (f"a line does not fit (lack-of-fit p {entry['lack_of_fit_p']:.3f}): "
                              "read the local slopes")
    p_adj = entry["p_adjusted"]
    if p_adj is None or p_adj >= ALPHA:
        return "unresolved", "Holm-adjusted p at or above 0.05"
    if c.kind == "paired" and entry["p_sign_flip"] >= ALPHA:
        return "unresolved", (f"exact sign-flip p {entry['p_sign_flip']:.3g} at or above 0.05 "
                              f"({len(entry['seeds'])} pairs)")
    delta = entry["estimate"] - (c.null if c.kind == "law" else 0.0)
    return _side(delta, c.direction), ""


def compute_claims(results_dir=None, claims=CLAIMS) -> list[dict]:
    """Every claim of ``claims`` computed from the committed rows (``results_dir``, default the
    repository's ``results/``), Holm-adjusted within each family: a list of JSON-ready dicts
    with ``id``, ``statement``, ``notebook``, ``family``, ``kind``, ``result_set``, ``metric``,
    ``estimate``, ``interval``, ``p``, ``p_adjusted``, ``seeds``, ``awaits_seeds`` (a primary
    claim with fewer than :data:`PRIMARY_MIN_SEEDS`), ``verdict``, ``note`` and the kind's own
    fields (see the module docstring)."""
    rows, laws, out = {}, {}, []
    for c in claims:
        if c.result_set not in rows:
            rows[c.result_set] = _load(c.result_set, results_dir)
        data = rows[c.result_set]
        if c.kind == "paired":
            entry = _paired(c, data)
        elif c.kind in ("law", "law_curvature"):
            entry = _law(c, data, laws)
        elif c.kind == "law_compare":
            entry = _law_compare(c, data, laws)
        else:
            entry = _label(c, data)
        head = {"id": c.id, "statement": c.statement, "notebook": c.notebook, "family": c.family,
                "kind": c.kind, "result_set": c.result_set, "metric": c.metric, "unit": c.unit,
                "direction": c.direction}
        out.append({**head, **entry})
    for family in FAMILIES:
        members = [e for e in out if e["family"] == family]
        for e, p in zip(members, stats.holm([e["p"] for e in members])):
            e["p_adjusted"] = p
    for c, e in zip(claims, out):
        e["awaits_seeds"] = c.family == "primary" and len(e["seeds"]) < PRIMARY_MIN_SEEDS
        e["verdict"], e["note"] = _verdict(c, e)
    return out


def write_claims(path=None, results_dir=None) -> list[dict]:
    """Compute the claims and write them to ``path`` (default ``results/claims.json``)."""
    from ..results import RESULTS_DIR
    from ..store import write_json

    claims = compute_claims(results_dir)
    path = Path(path) if path is not None else Path(results_dir or RESULTS_DIR) / "claims.json"
    write_json(path, {"alpha": ALPHA, "primary_min_seeds": PRIMARY_MIN_SEEDS,
                      "rules": __doc__.split("\n\n", 2)[2].split("\n\nA primary")[0],
                      "claims": claims})
    return claims


def load_claims(path=None) -> list[dict]:
    """The claims stored in ``path`` (default ``results/claims.json``)."""
    from ..results import RESULTS_DIR

    path = Path(path) if path is not None else RESULTS_DIR / "claims.json"
    if not path.is_file():
        raise ValueError(f"claims file {str(path)!r} does not exist (make it with `labkit claims`)")
    return json.loads(path.read_text())["claims"]


def claims_by_id(claims=None) -> dict:
    """``{id: claim}`` of ``claims`` (default: ``results/claims.json``), for a notebook that
    words its conclusions from their verdicts."""
    return {c["id"]: c for c in (load_claims() if claims is None else claims)}


def compare_claims(stored: list[dict], computed: list[dict], rtol: float = 1e-3,
                   atol: float = 1e-6) -> list[str]:
    """The ids whose stored entry differs from the recomputed one (numbers to ``rtol``/``atol``,
    everything else exactly), plus ids present on one side only. The tolerance allows another
    platform's rounding to move an optimum or a profile interval's bisected end (found to
    1e-4); a new row or a changed rule moves them much further."""
    from ..results import _close

    old, new = {c["id"]: c for c in stored}, {c["id"]: c for c in computed}
    differ = sorted(set(old) ^ set(new))
    differ += [i for i in new if i in old and not _close(json.loads(json.dumps(new[i])), old[i],
                                                         rtol, atol)]
    return differ


# ----------------------------------------------------------------------------------------------
# The notebooks: a claims table, and conclusions that do not outrun their verdicts

def _number(value, unit):
    if value is None:
        return "-"
    if unit == _MEM:
        return f"{100 * value:+.1f}"
    return f"{value:+.2f}" if abs(value) < 100 else f"{value:+.0f}"


def claims_table(notebook: str, claims=None, ids=None) -> str:
    """A Markdown table of a notebook's claims (``claims``: dicts as computed, default
    ``results/claims.json``; ``ids``: only these): id, estimate [95% interval] (memorization
    fractions in points), Holm-adjusted p, seeds, verdict."""
    claims = load_claims() if claims is None else claims
    lines = ["| claim | estimate [95% interval] | p (Holm) | seeds | verdict |",
             "|---|---|---|---|---|"]
    for c in claims:
        if c["notebook"] != notebook or (ids is not None and c["id"] not in ids):
            continue
        interval = (f" [{_number(c['interval'][0], c['unit'])}, "
                    f"{_number(c['interval'][1], c['unit'])}]" if c.get("interval") else "")
        p = "-" if c.get("p_adjusted") is None else f"{c['p_adjusted']:.2g}"
        lines.append(f"| `{c['id']}` | {_number(c['estimate'], c['unit'])}{interval} | {p} | "
                     f"{len(c['seeds'])} | {c['verdict']} |")
    return "\n".join(lines)


def sensitivity_table(entry: dict, count: str | None = None) -> str:
    """A label claim's 3 x 3 threshold-sensitivity table as Markdown: memorization margins
    (points) down, log-likelihood margins (nats) across, each cell "holds" or "fails" (and the
    ``count`` field of its detail, e.g. ``"runs_without_window"``); the declared margins in
    bold."""
    if entry.get("kind") != "label":
        raise ValueError(f"entry must be a label claim, got kind {entry.get('kind')!r}")
    cells = {(c["mem_margin"], c["ll_margin"]): c["value"] for c in entry["sensitivity"]}
    mems = sorted({m for m, _ in cells})
    lls = sorted({g for _, g in cells})
    declared = (entry["margins"]["mem_margin"], entry["margins"]["ll_margin"])
    lines = ["| memorization margin | " + " | ".join(f"{g:g} nat" for g in lls) + " |",
             "|---" * (len(lls) + 1) + "|"]
    for m in mems:
        row = []
        for g in lls:
            value = cells[(m, g)]
            text = ("holds" if value["holds"] else "fails") + (
                f" ({value[count]})" if count is not None else "")
            row.append(f"**{text}**" if (m, g) == declared else text)
        lines.append(f"| {100 * m:g} points | " + " | ".join(row) + " |")
    return "\n".join(lines)


_MARK = re.compile(r"<!--\s*claim:\s*([\w.-]+)\s*-->")


def _marked_sentences(text: str):
    """``(claim id, sentence)`` for every marker in a Markdown text: the sentence runs from the
    marker to the next marker, blank line or list item (markers side by side share the
    sentence that follows the last of them)."""
    pending = []
    for m in _MARK.finditer(text):
        pending.append(m.group(1))
        rest = text[m.end():]
        stop = re.search(r"<!--\s*claim:|\n\s*\n|\n\s*(?:[-*]|\d+\.)\s", rest)
        sentence = " ".join(rest[:stop.start() if stop else len(rest)].split())
        if not sentence and stop is not None and rest[stop.start():].lstrip().startswith("<!--"):
            continue
        for claim_id in pending:
            yield claim_id, sentence
        pending = []


def text_problems(text: str, claims=None) -> list[str]:
    """The marked conclusions (``<!-- claim: ID -->`` markers) of a Markdown ``text`` whose
    words do not match their claim's verdict (see :data:`PHRASES`): an unresolved claim's
    sentence must say so ("could not tell", "unresolved", ...), a contradicted one's must say
    that, a supported one's must use neither; an unknown id is a problem too. The README and
    the notebooks are checked with it."""
    claims = load_claims() if claims is None else claims
    verdicts = {c["id"]: c["verdict"] for c in claims}
    problems = []
    for claim_id, sentence in _marked_sentences(text):
        if claim_id not in verdicts:
            problems.append(f"{claim_id}: no such claim ({sentence[:60]}...)")
            continue
        verdict, low = verdicts[claim_id], sentence.lower()
        says = {v for v, words in PHRASES.items() if any(w in low for w in words)}
        ok = verdict in says if verdict in PHRASES else not says
        if not ok:
            problems.append(f"{claim_id} is {verdict}, but its sentence says "
                            f"{'/'.join(sorted(says)) or 'it holds'}: {sentence!r}")
    return problems


def notebook_problems(path, claims=None) -> list[str]:
    """:func:`text_problems` of every Markdown cell of notebook ``path``."""
    claims = load_claims() if claims is None else claims
    cells = json.loads(Path(path).read_text())["cells"]
    return [problem for cell in cells if cell["cell_type"] == "markdown"
            for problem in text_problems("".join(cell["source"]), claims)]


def check_notebook(path, claims=None) -> int:
    """Raise ValueError listing every problem of :func:`notebook_problems`; else return how
    many marked conclusions notebook ``path`` holds."""
    problems = notebook_problems(path, claims)
    if problems:
        raise ValueError(f"{path}: conclusions that outrun their claims:\n  "
                         + "\n  ".join(problems))
    cells = json.loads(Path(path).read_text())["cells"]
    return sum(len(_MARK.findall("".join(c["source"]))) for c in cells
               if c["cell_type"] == "markdown")
