"""The declared claims of notebook 04 (the open questions), read from the result sets of
:data:`labkit.experiments.open_questions.OPEN_EXPERIMENTS`; frozen with ``labkit claims freeze``
before their rows were computed."""

from __future__ import annotations

from ..experiments.open_questions import MATCH_TIMES, OPEN_SEEDS
from ..pruning import WINDOWS  # noqa: F401  (the windows the q1 claims name)
from .model import Claim

__all__ = ["OPEN_CLAIMS"]


def _window(name):
    return {"method": f"window-{name} importance", "ratio": 0.2}


def _t1(method):
    return {"method": method, "ratio": 0.2}


_P, _S = "primary", "secondary"
_SEEDS = tuple(OPEN_SEEDS)
_SMALL, _LARGE = MATCH_TIMES.index(0.05), MATCH_TIMES.index(5.0)
_MID = MATCH_TIMES.index(0.5)
OPEN_CLAIMS: tuple[Claim, ...] = (
    # -- question 1: windows of t (Table 1 arms; the random arm's rows come from table1)
    *(Claim(f"q1_{w}_vs_random", f"Pruning by importance in the {w} window of t lowers "
            "memorization more than random pruning.", "04", _P, "paired", "open_windows+table1",
            "memorization", _window(w), _t1("random"), direction=-1, unit="percent",
            seeds=_SEEDS) for w in ("small", "medium", "large")),
    Claim("q1_medium_vs_small", "Pruning by importance in the medium window of t lowers "
          "memorization more than in the small window (the danger zone at medium noise).", "04",
          _P, "paired", "open_windows", "memorization", _window("medium"), _window("small"),
          direction=-1, unit="percent", seeds=_SEEDS),
    Claim("q1_uniform_vs_random", "Pruning by importance over the whole schedule lowers "
          "memorization more than random pruning.", "04", _S, "paired", "open_windows+table1",
          "memorization", _window("uniform"), _t1("random"), direction=-1, unit="percent",
          seeds=_SEEDS),
    *(Claim(f"q1_toy_{w}", f"On the 2-D toy the empirical score inside the {w} window of t "
            "alone memorizes more than the true score alone.", "04", _P, "paired", "open_hybrid",
            "memorization", {"window": w}, {"window": "none"}, unit="fraction")
      for w in ("small", "medium", "large")),
    Claim("q1_toy_medium_vs_small", "On the 2-D toy the empirical score inside the medium "
          "window memorizes more than inside the small window.", "04", _P, "paired",
          "open_hybrid", "memorization", {"window": "medium"}, {"window": "small"},
          unit="fraction"),
    # -- question 2: search after pruning, and head-set overlaps
    Claim("q2_search_finds_more_pruned", "After small-t pruning, the noise search reproduces "
          "more training digits than the draws alone.", "04", _P, "paired", "open_search",
          "reproduced_search", {"method": "small-t importance"}, {"method": "small-t importance"},
          metric_b="reproduced_draws", seeds=_SEEDS),
    Claim("q2_search_vs_null_pruned", "After small-t pruning, the noise search reproduces "
          "more training digits than it reaches held-out digits (the copies are memory, not "
          "the generator's reach).", "04", _P, "paired", "open_search", "reproduced_search",
          {"method": "small-t importance"}, {"method": "small-t importance"},
          metric_b="reproduced_search_null", seeds=_SEEDS),
    Claim("q2_pruned_vs_control", "After the noise search, the small-t pruned model reproduces "
          "fewer training digits than the fine-tuned, unpruned control.", "04", _P, "paired",
          "open_search", "reproduced_search", {"method": "small-t importance"},
          {"method": "fine-tuned control"}, direction=-1, seeds=_SEEDS),
    Claim("q2_pruned_vs_original", "After the noise search, the small-t pruned model "
          "reproduces fewer training digits than the original model.", "04", _P, "paired",
          "open_search", "reproduced_search", {"method": "small-t importance"},
          {"method": "original"}, direction=-1, seeds=_SEEDS),
    Claim("q2_random_vs_control", "After the noise search, the randomly pruned model "
          "reproduces fewer training digits than the fine-tuned control.", "04", _P, "paired",
          "open_search", "reproduced_search", {"method": "random"},
          {"method": "fine-tuned control"}, direction=-1, seeds=_SEEDS),
    Claim("q2_jaccard_medium", "The heads pruned by medium-window importance overlap the small-t "
          "set more than a random set does.", "04", _S, "paired", "open_windows",
          "jaccard_small_t", _window("medium"), _window("medium"),
          metric_b="jaccard_random_small_t", seeds=_SEEDS),
    Claim("q2_jaccard_small", "The heads pruned by small-window importance overlap the small-t "
          "set more than a random set does.", "04", _S, "paired", "open_windows",
          "jaccard_small_t", _window("small"), _window("small"),
          metric_b="jaccard_random_small_t", seeds=_SEEDS),
    # -- question 3: disjoint halves
    Claim("q3_samples_agree", "Networks trained on disjoint halves draw closer samples from the "
          "same noise at n = 128 than at n = 4.", "04", _P, "paired", "open_halves",
          "sample_distance", {"n": 128}, {"n": 4}, direction=-1),
    Claim("q3_denoisers_agree", "The two halves' denoisers agree better at n = 128 than at "
          "n = 4 (mean relative MSE over t).", "04", _P, "paired", "open_halves",
          "denoiser_mse_mean", {"n": 128}, {"n": 4}, direction=-1),
    Claim("q3_memorization_falls", "The halves' networks memorize less at n = 128 than at "
          "n = 4.", "04", _P, "paired", "open_halves", "memorization", {"n": 128}, {"n": 4},
          direction=-1, unit="fraction"),
    Claim("q3_agree_small_t", "At the smallest t the two halves' denoisers agree better at "
          "n = 128 than at n = 4.", "04", _S, "paired", "open_halves", "denoiser_mse@0",
          {"n": 128}, {"n": 4}, direction=-1),
    # -- question 4: which closed form the DiT follows
    Claim("q4_small_t_empirical", f"At t = {MATCH_TIMES[_SMALL]} the DiT's denoiser is nearer "
          "the empirical (memorizing) denoiser than the local patch denoiser.", "04", _P,
          "paired", "open_denoisers", f"mse_empirical@{_SMALL}", {"n": 32}, {"n": 32},
          metric_b=f"mse_local@{_SMALL}", direction=-1, seeds=_SEEDS),
    Claim("q4_mid_t_local", f"At t = {MATCH_TIMES[_MID]} the DiT's denoiser is nearer the local "
          "patch denoiser than the empirical denoiser.", "04", _P, "paired", "open_denoisers",
          f"mse_local@{_MID}", {"n": 32}, {"n": 32}, metric_b=f"mse_empirical@{_MID}",
          direction=-1, seeds=_SEEDS),
    Claim("q4_large_t_gaussian", f"At t = {MATCH_TIMES[_LARGE]} the DiT's denoiser is nearer the "
          "Gaussian (Wiener) denoiser than the empirical denoiser.", "04", _P, "paired",
          "open_denoisers", f"mse_gaussian@{_LARGE}", {"n": 32}, {"n": 32},
          metric_b=f"mse_empirical@{_LARGE}", direction=-1, seeds=_SEEDS),
    Claim("q4_local_vs_gaussian_mid", f"At t = {MATCH_TIMES[_MID]} the local patch denoiser "
          "predicts the DiT better than the Gaussian denoiser.", "04", _S, "paired",
          "open_denoisers", f"mse_local@{_MID}", {"n": 32}, {"n": 32},
          metric_b=f"mse_gaussian@{_MID}", direction=-1, seeds=_SEEDS),
)
