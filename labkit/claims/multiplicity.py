"""Familywise control within a family of claims: Holm's step-down adjustment of the t-test and
likelihood-ratio p (:func:`labkit.experiments.holm`, statsmodels), and the Westfall-Young
step-down min-p adjustment of the exact sign-flip p (:func:`sign_flip_minp`).

The sign-flip test flips the sign of every seed's differences at once, in every claim of the
family that reads the seed (the seeds are the independent units), so the adjustment keeps the
dependence between claims that share seeds: with eight seeds shared by all claims, an
adjusted p can be as small as 2 / 2^8, where Holm's bound on the exact p would multiply it by
the family's size. Up to :data:`EXACT_SEEDS` seeds every sign assignment is enumerated; above
that, :data:`DRAWS` random assignments (a fixed generator) and the observed one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EXACT_SEEDS", "DRAWS", "sign_flip_minp"]

EXACT_SEEDS = 16
DRAWS = 2**16


def _signs(k: int) -> np.ndarray:
    if k <= EXACT_SEEDS:
        return 1 - 2 * ((np.arange(2**k)[:, None] >> np.arange(k)) & 1)
    rng = np.random.default_rng(0)
    draws = rng.choice(np.array([-1, 1]), size=(DRAWS, k))
    return np.vstack([np.ones((1, k), dtype=int), draws])


def _null_p(stat: np.ndarray) -> np.ndarray:
    """For each assignment, the share of assignments with a statistic at least as large: the
    sign-flip p that assignment would have had."""
    order = np.sort(stat)
    tol = 1e-12 * max(1.0, float(np.max(stat)))
    below = np.searchsorted(order, stat - tol, side="left")
    return (len(stat) - below) / len(stat)


def sign_flip_minp(pairs: list[dict]) -> tuple[list[float], list[float]]:
    """``(raw, adjusted)`` sign-flip p of a family of paired claims: ``pairs[j]`` is claim j's
    ``{seed: difference}``. ``raw[j]`` is the two-sided exact sign-flip p of the mean difference
    (:func:`labkit.experiments.sign_flip_p` for k <= :data:`EXACT_SEEDS`); ``adjusted[j]`` the
    Westfall-Young step-down min-p adjustment over the family (Westfall & Young 1993, Alg. 2.8)."""
    if not pairs:
        return [], []
    seeds = sorted({s for p in pairs for s in p})
    column = {s: i for i, s in enumerate(seeds)}
    signs = _signs(len(seeds))
    null = np.empty((len(signs), len(pairs)))
    for j, p in enumerate(pairs):
        idx = [column[s] for s in p]
        d = np.array([p[s] for s in p], dtype=float)
        null[:, j] = _null_p(np.abs(signs[:, idx] @ d) / len(d))
    raw = null[0]  # the observed assignment is the first row (all signs +1)
    order = np.argsort(raw, kind="stable")
    # successive minima from the least significant claim up
    q = np.minimum.accumulate(null[:, order[::-1]], axis=1)[:, ::-1]
    adjusted_sorted = np.mean(q <= raw[order][None, :] + 1e-12, axis=0)
    adjusted_sorted = np.maximum.accumulate(adjusted_sorted)
    adjusted = np.empty(len(pairs))
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return [float(x) for x in raw], [float(x) for x in adjusted]
