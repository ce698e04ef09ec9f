"""Memorization and sample-quality measures.

Memorization (the paper, after Yoon et al. 2023 and Buchanan et al.): a generated x is
memorized when ``||x - NN1(x)|| < threshold * ||x - NN2(x)||`` with NN1, NN2 its nearest and
second-nearest training points (Euclidean, data space) and ``threshold = 1/3``. The ratio is
reported with a bootstrap interval and next to its *null rate*: the same metric on fresh
samples from the true law, which are not copies of anything.

Duplicated training points: if x_i appears twice, NN1 and NN2 of a copy of x_i coincide and the
rule could never fire. labkit therefore compares against the *distinct* training points
(``dedupe=True``, the default): NN2 is the second-nearest distinct point. Pass
``dedupe=False`` to apply the rule to the raw set.

Quality for the toys: mean log-likelihood under the true mixture (the dashed lines of the
paper's Fig. 3b), mode coverage, an unbiased RBF MMD^2 and the sliced Wasserstein distance.
Introduced in notebook 00.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import _checks
from .data import GaussianMixture, deduplicate

__all__ = [
    "nearest_neighbors",
    "memorized",
    "memorization_ratio",
    "bootstrap_interval",
    "MemorizationReport",
    "memorization_report",
    "mean_log_likelihood",
    "mode_coverage",
    "mmd",
    "sliced_wasserstein",
]


def nearest_neighbors(x: torch.Tensor, ref: torch.Tensor, k: int = 2,
                      chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours of each row of x among the rows of ref.

    Candidates come from chunked GEMM distances (``||x||^2 - 2 x.y + ||y||^2``); the best
    ``k + 8`` are then re-measured directly, so cancellation in the expanded form cannot swap
    neighbours. Returns ``(distances (m, k), indices (m, k))``, sorted ascending.
    """
    x = _checks.points(x, "x")
    ref = _checks.points(ref, "ref", dim=x.shape[1])
    k = _checks.positive_int(k, "k")
    if k > ref.shape[0]:
        raise ValueError(f"k must be at most the number of reference points ({ref.shape[0]}), got {k}")
    m, n = x.shape[0], ref.shape[0]
    num_cand = min(n, k + 8)
    # Bound both the (c, n) distance block and the (c, num_cand, d) re-measuring block.
    default = max(1, min((1 << 24) // n, (1 << 24) // (num_cand * x.shape[1])))
    chunk_size = _checks.optional_positive_int(chunk_size, "chunk_size") or default
    ref_sq = (ref * ref).sum(1)  # (n,)
    best_d, best_i = [], []
    for start in range(0, m, chunk_size):
        q = x[start:start + chunk_size]  # (c, d)
        approx = torch.addmm(ref_sq, q, ref.T, alpha=-2.0)  # (c, n); + ||q||^2 is rank-neutral
        cand = approx.topk(num_cand, dim=1, largest=False).indices  # (c, num_cand)
        exact = (q[:, None, :] - ref[cand]).norm(dim=2)  # (c, num_cand)
        order = exact.argsort(dim=1)[:, :k]
        best_d.append(exact.gather(1, order))
        best_i.append(cand.gather(1, order))
    return torch.cat(best_d), torch.cat(best_i)


def _check_threshold(threshold) -> float:
    return _checks.unit_interval(threshold, "threshold")


def memorized(samples: torch.Tensor, train: torch.Tensor, threshold: float = 1 / 3,
              dedupe: bool = True) -> torch.Tensor:
    """Boolean (m,): ``||x - NN1|| < threshold ||x - NN2||`` for each sample.

    samples: (m, d); train: (n, d) with at least two distinct points; threshold in (0, 1].
    """
    samples = _checks.points(samples, "samples")
    train = _checks.points(train, "train", dim=samples.shape[1])
    threshold = _check_threshold(threshold)
    ref = deduplicate(train)[0] if dedupe else train
    if ref.shape[0] < 2:
        raise ValueError("train must hold at least two distinct points for the nearest/second-nearest rule")
    dist, _ = nearest_neighbors(samples, ref.to(samples.dtype), k=2)
    return dist[:, 0] < threshold * dist[:, 1]


def memorization_ratio(samples: torch.Tensor, train: torch.Tensor, threshold: float = 1 / 3,
                       dedupe: bool = True) -> float:
    """Fraction of samples that are memorized (see :func:`memorized`)."""
    return memorized(samples, train, threshold, dedupe).double().mean().item()


def bootstrap_interval(values: torch.Tensor, level: float = 0.95, num_resamples: int = 2000,
                       generator: torch.Generator | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (m,), e.g. memorized flags."""
    if not isinstance(values, torch.Tensor) or values.ndim != 1 or values.numel() == 0:
        raise ValueError("values must be a non-empty 1-d tensor")
    level = _checks.unit_interval(level, "level", closed_right=False)
    num_resamples = _checks.positive_int(num_resamples, "num_resamples")
    _checks.generator(generator)
    v = values.detach().double().cpu()
    idx = torch.randint(0, v.numel(), (num_resamples, v.numel()), generator=generator)
    means = v[idx].mean(1)
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return lo.item(), hi.item()


@dataclass(frozen=True)
class MemorizationReport:
    """A memorization ratio with its bootstrap interval and the null rate beside it."""

    ratio: float
    interval: tuple[float, float]
    null_ratio: float | None
    null_interval: tuple[float, float] | None
    num_samples: int

    def __str__(self) -> str:
        text = f"memorized {100 * self.ratio:.1f}% [{100 * self.interval[0]:.1f}, {100 * self.interval[1]:.1f}]"
        if self.null_ratio is not None:
            lo, hi = self.null_interval
            text += f" (null rate {100 * self.null_ratio:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}])"
        return text + f", {self.num_samples} samples"


def memorization_report(samples: torch.Tensor, train: torch.Tensor, reference: torch.Tensor | None = None,
                        threshold: float = 1 / 3, level: float = 0.95,
                        generator: torch.Generator | None = None) -> MemorizationReport:
    """Memorization ratio of ``samples`` with a bootstrap interval; if ``reference`` (fresh
    draws from the true law, independent of train) is given, its ratio is the null rate."""
    flags = memorized(samples, train, threshold)
    null_ratio = null_interval = None
    if reference is not None:
        null_flags = memorized(reference, train, threshold)
        null_ratio = null_flags.double().mean().item()
        null_interval = bootstrap_interval(null_flags, level, generator=generator)
    return MemorizationReport(flags.double().mean().item(), bootstrap_interval(flags, level, generator=generator),
                              null_ratio, null_interval, flags.numel())


def mean_log_likelihood(samples: torch.Tensor, gmm: GaussianMixture) -> float:
    """Mean of ``log p(x)`` under the true (undiffused) mixture: higher is better."""
    if not isinstance(gmm, GaussianMixture):
        raise TypeError(f"gmm must be a GaussianMixture, got {type(gmm).__name__}")
    samples = _checks.points(samples, "samples", dim=gmm.dim)
    return gmm.log_prob(samples.to(gmm.means.dtype)).mean().item()


def mode_coverage(samples: torch.Tensor, gmm: GaussianMixture, min_share: float = 0.25) -> tuple[float, torch.Tensor]:
    """Fraction of components that receive at least ``min_share`` of their expected share of
    samples (each sample assigned to its most responsible component). Returns
    ``(coverage, counts (K,))``; coverage < 1 means modes were dropped."""
    if not isinstance(gmm, GaussianMixture):
        raise TypeError(f"gmm must be a GaussianMixture, got {type(gmm).__name__}")
    samples = _checks.points(samples, "samples", dim=gmm.dim)
    min_share = _checks.unit_interval(min_share, "min_share")
    assign = gmm.responsibilities(samples.to(gmm.means.dtype)).argmax(1)
    counts = torch.bincount(assign, minlength=gmm.num_components)
    expected = gmm.weights * samples.shape[0]
    covered = counts.double() >= min_share * expected
    return covered.double().mean().item(), counts


def _pairwise_sq(a, b):
    return ((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> float:
    """Unbiased estimate of MMD^2 with an RBF kernel ``exp(-||a-b||^2 / (2 h^2))``.

    x: (m, d), y: (k, d), m, k >= 2. ``bandwidth`` defaults to the median pairwise distance of
    the pooled sample. Can be slightly negative when the laws agree (it is unbiased).
    """
    x = _checks.points(x, "x")
    y = _checks.points(y, "y", dim=x.shape[1])
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("x and y must each hold at least two points")
    x, y = x.double(), y.double()
    if bandwidth is None:
        pooled = torch.cat([x, y])
        h = _pairwise_sq(pooled, pooled).sqrt().median().item() or 1.0
    else:
        h = _checks.positive_float(bandwidth, "bandwidth")
    kxx, kyy, kxy = (torch.exp(-_pairwise_sq(a, b) / (2 * h * h)) for a, b in ((x, x), (y, y), (x, y)))
    m, k = x.shape[0], y.shape[0]
    term_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    term_y = (kyy.sum() - kyy.diagonal().sum()) / (k * (k - 1))
    return (term_x + term_y - 2 * kxy.mean()).item()


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, num_projections: int = 128,
                       generator: torch.Generator | None = None) -> float:
    """Sliced 2-Wasserstein distance: the root-mean-square over random directions of the 1-D W2
    between projections (quantile matching, so sample sizes may differ)."""
    x = _checks.points(x, "x")
    y = _checks.points(y, "y", dim=x.shape[1])
    num_projections = _checks.positive_int(num_projections, "num_projections")
    _checks.generator(generator)
    d = x.shape[1]
    dirs = torch.randn(d, num_projections, generator=generator, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)  # (d, P)
    px, py = (x.double() @ dirs).sort(0).values, (y.double() @ dirs).sort(0).values  # (m, P), (k, P)
    grid = torch.linspace(0, 1, max(x.shape[0], y.shape[0]) + 1, dtype=torch.float64)[:-1]
    grid = grid + 0.5 / len(grid)
    qx, qy = _quantiles(px, grid), _quantiles(py, grid)
    return math.sqrt(((qx - qy) ** 2).mean().item())


def _quantiles(sorted_vals: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Empirical quantile function of each column at ``levels`` (step interpolation)."""
    m = sorted_vals.shape[0]
    idx = (levels * m).floor().long().clamp(0, m - 1)
    return sorted_vals[idx]
