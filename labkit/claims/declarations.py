"""Every declared claim of notebooks 02 and 03 and the README: :data:`CLAIMS` (data only, one
:class:`~labkit.claims.model.Claim` each) and :func:`claim` to look one up. A frozen claim's
declaration never changes (``labkit claims freeze`` refuses): a changed conclusion is a new id.

The claims read the first eight runs of Table 1 and of the training-time study (seeds 0-7,
declared after some of their rows had been seen); :data:`CONFIRMATORY_CLAIMS` read only runs
computed after `labkit claims freeze` recorded their declarations.
"""

from __future__ import annotations

from dataclasses import replace

from ..experiments.registry import CONFIRMATORY_LAW_SEEDS, CONFIRMATORY_TABLE1_SEEDS, PRIMARY_SEEDS
from .labeltests import (_fig2_generalizing_at_end, _fig2_ladder_over_time,
                         _fig2_no_ladder_at_end, _window_2d, _window_d8_n128,
                         _window_d8_small_n)
from .model import Claim
from .open_questions import OPEN_CLAIMS

__all__ = ["CLAIMS", "CONFIRMATORY_CLAIMS", "claim"]


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
CLAIMS += OPEN_CLAIMS  # notebook 04


def claim(claim_id: str) -> Claim:
    """The declared :class:`Claim` called ``claim_id``."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise ValueError(f"claim_id must be one of {[c.id for c in CLAIMS]}, got {claim_id!r}")
