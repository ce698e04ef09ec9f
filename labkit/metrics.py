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

from . import _checks, _gemm
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


_TILE = 1 << 18  # entries of one distance tile for d < _WIDE_DIM: 1 MiB in float32, stays in L2
_TILE_WIDE = 1 << 21  # from _WIDE_DIM on: 8 MiB; the GEMM's 2 d flops an entry dwarf its traffic
_WIDE_DIM = 256  # from here ||y||^2 is added to each tile rather than to copies of the inputs
_ROWS = 1024  # rows of x per tile at most by default: a GEMM of this height runs at full rate
_GROUP_MIN_BUDGET = 1 << 23  # entries of one row chunk's group minima: 32 MiB in float32
_REMEASURE = 1 << 18  # entries of candidate differences re-measured at once: 1 MiB
_SUPER = 16  # group minima per super-group: the candidates are found from their minima
_BOOTSTRAP_BLOCK = 1 << 21  # resampled indices per block of bootstrap_interval: 16 MiB of int64


def nearest_neighbors(x: torch.Tensor, ref: torch.Tensor, k: int = 2,
                      chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest neighbours of each row of x (m, d) among the rows of ref (n, d).

    Returns ``(distances (m, k), indices (m, k))``, sorted ascending. ``chunk_size`` is the
    number of rows of x handled at once (default: up to 1024, fewer where the group minima of a
    chunk would pass 2^23 entries); 16-bit inputs are computed in float32.

    The squared distances ``||x||^2 - 2 x.y + ||y||^2`` come from GEMMs over tiles of up to
    2^21 entries (2^18 below d = 256, so they stay in cache), each reduced at once to its minimum
    over groups of G reference points (G a power of two between 2 and 64, about
    ``sqrt(2 n / (k d))``: it balances the selection over n / G minima against re-measuring
    k G candidates), so no (m, n) matrix is ever stored or sorted. The expanded form is off by
    at most ``tol``, a bound that follows from the float error of a (d + 1)-term sum
    (:func:`_key_tolerance`). Every group whose minimum lies within ``2 tol`` of the k-th
    smallest group minimum is kept (normally exactly k groups; more on near-ties), and its
    points are re-measured directly as ``||x - y||``. The true k nearest always survive this,
    so the result is exact: cancellation in the expanded form cannot swap neighbours.

    Memory beyond the inputs and the result: one tile (at most 8 MiB in float32), the group
    minima of one row chunk (at most 32 MiB), 1 MiB of re-measured differences, and below
    d = 256 the augmented copies ``[x, 1]`` (m, d + 1) and ``[-2 y, ||y||^2]`` (n, d + 1).
    Large float32 products on the CPU run through the faster of torch's and numpy's BLAS
    (measured once per process; ``LABKIT_GEMM=torch|numpy`` forces one: ``labkit._gemm``).
    """
    x = _checks.points(x, "x", finite=False)
    ref = _checks.points(ref, "ref", dim=x.shape[1], finite=False)
    k = _checks.positive_int(k, "k")
    if k > ref.shape[0]:
        raise ValueError(f"k must be at most the number of reference points ({ref.shape[0]}), "
                         f"got {k}")
    chunk_size = _checks.optional_positive_int(chunk_size, "chunk_size")
    if ref.dtype != x.dtype or ref.device != x.device:
        raise ValueError(f"ref must have x's dtype and device ({x.dtype}, {x.device}), "
                         f"got ({ref.dtype}, {ref.device})")
    x_work, ref_work = _working_precision(x), _working_precision(ref)
    dist, idx = _nearest(x_work, _finite_sq_norms(x_work, "x"), ref_work,
                         _finite_sq_norms(ref_work, "ref"), k, chunk_size)
    return dist.to(x.dtype), idx


def _working_precision(x: torch.Tensor) -> torch.Tensor:
    # 16-bit GEMMs are slow on CPU and their squared norms overflow early
    return x.float() if x.element_size() < 4 else x


def _finite_sq_norms(x: torch.Tensor, name: str) -> torch.Tensor:
    """``||x_i||^2`` (m,); checking these is cheaper than checking every entry of x.

    From the norm, without the (m, d) temporary of ``(x * x).sum(1)``, which costs as much as a
    tenth of the search at d = 3072; its rounding error (a few units in the last place) is
    within the bound of :func:`_key_tolerance`."""
    sq_norms = torch.linalg.vector_norm(x, dim=1).square()
    if not torch.isfinite(sq_norms).all():
        raise ValueError(f"{name} contains NaN or infinite values (or values too large to square)")
    return sq_norms


def _group_size(n: int, d: int, k: int) -> int:
    """Reference points per group: the power of two nearest ``sqrt(2 n / (k d))``, in [2, 64]."""
    target = math.sqrt(2 * n / (k * d))
    return 1 << min(6, max(1, round(math.log2(max(target, 1.0)))))


def _nearest(x: torch.Tensor, x_sq: torch.Tensor, ref: torch.Tensor, ref_sq: torch.Tensor, k: int,
             chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`nearest_neighbors` on checked inputs, given their squared norms (m,) and (n,)."""
    (m, d), n = x.shape, ref.shape[0]
    group = _group_size(n, d, k)
    n_pad = n + (-n % group)
    num_groups = n_pad // group
    rows = min(m, chunk_size or _ROWS, max(1, _GROUP_MIN_BUDGET // num_groups))
    wide = d >= _WIDE_DIM
    budget = _TILE_WIDE if wide else _TILE
    # columns per tile: a multiple of 64 (whole groups; MKL runs some 20% slower at widths such
    # as 4194), and at least 64 columns a group (the minimum over each group's strided columns
    # vectorizes over them), fewer rows if that outgrows the budget
    block = min(n_pad, max(64 * group, budget // rows // 64 * 64))
    rows = min(rows, max(1, budget // block))
    rows = -(-m // -(-m // rows))  # the same height for every chunk: no thin last GEMM
    members = _group_members(n, n_pad, block, group, x.device)  # (num_groups, group)
    if wide:  # tile = ||y||^2 - 2 x.y, the bias added to the GEMM's x.y
        lhs, keys = x, ref
        bias = torch.cat([ref_sq, ref_sq.new_full((n_pad - n,), math.inf)])  # (n_pad,)
    else:  # tile = [x, 1] @ [-2 y, ||y||^2].T straight from the GEMM
        lhs = x.new_ones(m, d + 1)  # (m, d + 1)
        lhs[:, :d] = x
        keys = _key_matrix(ref, ref_sq, n_pad)  # (n_pad, d + 1)
    tol = _key_tolerance(x_sq, ref_sq.max(), d)  # (m,)
    tiles = x.new_empty(rows * block)
    group_min = x.new_empty(rows, num_groups)
    best_d, best_i = [], []
    for start in range(0, m, rows):
        q = lhs[start:start + rows]  # (c, d) or (c, d + 1)
        c = q.shape[0]
        for b in range(0, n_pad, block):
            width = min(block, n_pad - b)
            tile = tiles[:c * width].view(c, width)  # (c, width)
            if wide:
                real = min(width, n - b)
                _gemm.mm(q, keys[b:b + real].T, out=tile[:, :real])
                # ||y||^2 - 2 x.y in one pass (the factor -2 is exact)
                torch.add(bias[b:b + real], tile[:, :real], alpha=-2, out=tile[:, :real])
                tile[:, real:] = math.inf
            else:
                _gemm.mm(q, keys[b:b + width].T, out=tile)
            g = b // group
            torch.amin(tile.view(c, group, -1), dim=1, out=group_min[:c, g:g + width // group])
        chosen = _candidate_groups(group_min[:c], k, tol[start:start + c])  # (c, K)
        cand = members[chosen].flatten(1)  # (c, K * group)
        dist, idx = _remeasure(x[start:start + c], ref, cand, k)
        best_d.append(dist)
        best_i.append(idx)
    return torch.cat(best_d), torch.cat(best_i)


def _key_matrix(ref: torch.Tensor, ref_sq: torch.Tensor, n_pad: int) -> torch.Tensor:
    """Rows ``[-2 y, ||y||^2]`` (n, d + 1), padded with rows ``[0, inf]`` to ``n_pad`` rows so
    every block splits into whole groups."""
    n, d = ref.shape
    keys = ref.new_zeros(n_pad, d + 1)
    torch.mul(ref, -2, out=keys[:n, :d])
    keys[:n, d] = ref_sq
    keys[n:, d] = math.inf
    return keys


def _group_members(n: int, n_pad: int, block: int, group: int,
                   device: torch.device) -> torch.Tensor:
    """Reference indices of each group, (num_groups, group), -1 for padding.

    A block of ``width * group`` columns from ``start`` holds the groups
    ``start + j + s * width`` (s < group), j < width: the sets that
    ``view(c, group, width).amin(1)`` reduces over.
    """
    groups = []
    for start in range(0, n_pad, block):
        width = min(block, n_pad - start) // group
        first, step = torch.arange(width, device=device), torch.arange(group, device=device)
        groups.append(start + first[:, None] + width * step)  # (width, group)
    members = torch.cat(groups)
    return members.masked_fill(members >= n, -1)


def _key_tolerance(x_sq: torch.Tensor, max_ref_sq: torch.Tensor, d: int) -> torch.Tensor:
    """Bound (m,) on the error of each computed key ``||y||^2 - 2 x.y``.

    A key is a sum of d + 1 terms whose absolute values add up to at most ``R^2 + 2 ||x|| R``
    (R the largest reference norm), and its ``||y||^2`` term is itself a d-term sum. In any
    summation order (either BLAS, the bias added inside or after the GEMM) the error is below
    ``(d + 1) u (2 R^2 + 2 ||x|| R)`` to first order (u the unit roundoff); taking ``eps = 2 u``
    and ``d + 2`` leaves a factor-2 margin that covers the higher-order terms and the rounding
    of the comparison with the threshold.
    """
    eps = torch.finfo(x_sq.dtype).eps
    if x_sq.dtype == torch.float32 and _fp32_gemm_reduced():
        eps = 2.0 ** -7  # the GEMM may round its inputs to bfloat16 (TF32 is finer)
    return (d + 2) * eps * (2 * max_ref_sq + 2 * max_ref_sq.sqrt() * x_sq.sqrt())


def _fp32_gemm_reduced() -> bool:
    """Whether float32 matrix products may run in reduced precision (TF32 or bfloat16)."""
    settings = {torch.backends.mkldnn.matmul.fp32_precision,
                torch.backends.cuda.matmul.fp32_precision}
    return not settings <= {"none", "ieee"}


def _candidate_groups(group_min: torch.Tensor, k: int, tol: torch.Tensor) -> torch.Tensor:
    """Indices (c, K) of the groups that may hold one of the k nearest points: those whose
    minimum is within ``2 tol`` of the k-th smallest group minimum (K >= k, usually K = k).

    Where there are many groups, their minima are first reduced over super-groups of
    ``_SUPER`` (groups ``j + s * width``): the k smallest groups lie in the k super-groups of
    smallest minima, which give the k-th smallest group minimum exactly, and every group within
    the limit lies in a super-group within it. A sort-free minimum then does most of the work
    that ``topk`` would do over every group."""
    c, num_groups = group_min.shape
    k = min(k, num_groups)
    if num_groups < 16 * _SUPER:
        lowest = group_min.topk(min(k + 1, num_groups), dim=1, largest=False)  # sorted ascending
        limit = lowest.values[:, k - 1] + 2 * tol  # (c,)
        if k == num_groups or not (lowest.values[:, k] <= limit).any():
            return lowest.indices[:, :k]
        wide = int((group_min <= limit[:, None]).sum(1).max())  # near-ties: every close group
        return group_min.topk(wide, dim=1, largest=False).indices
    padded = torch.nn.functional.pad(group_min, (0, -num_groups % _SUPER), value=math.inf)
    width = padded.shape[1] // _SUPER
    supers = padded.view(c, _SUPER, width).amin(1)  # (c, width)
    offsets = width * torch.arange(_SUPER, device=group_min.device)  # (_SUPER,)

    def groups_of(chosen):  # (c, S) super-groups -> their groups (c, S * _SUPER) and minima
        ids = (chosen[:, :, None] + offsets).flatten(1)
        return ids, padded.gather(1, ids)

    ids, values = groups_of(supers.topk(min(k, width), dim=1, largest=False).indices)
    limit = values.topk(k, dim=1, largest=False).values[:, k - 1] + 2 * tol  # (c,)
    close = int((supers <= limit[:, None]).sum(1).max())
    if close > min(k, width):  # near-ties: every super-group within the limit
        ids, values = groups_of(supers.topk(close, dim=1, largest=False).indices)
    wide = max(k, int((values <= limit[:, None]).sum(1).max()))
    return ids.gather(1, values.topk(wide, dim=1, largest=False).indices)


def _remeasure(q: torch.Tensor, ref: torch.Tensor, cand: torch.Tensor,
               k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest of the candidate indices cand (c, C) (-1 for none), measured directly as
    ``||q - y||``; a few rows at a time, so their (rows, C, d) differences stay in cache."""
    (c, num_cand), d = cand.shape, q.shape[1]
    step = max(1, _REMEASURE // (num_cand * d))
    dist = q.new_empty(c, num_cand)
    points = q.new_empty(min(step, c) * num_cand, d)
    for start in range(0, c, step):
        rows = slice(start, start + step)
        index = cand[rows].clamp_min(0).flatten()
        diff = torch.index_select(ref, 0, index, out=points[:index.numel()])  # (rows * C, d)
        diff = diff.unflatten(0, (-1, num_cand)).sub_(q[rows, None, :])  # (rows, C, d)
        torch.linalg.vector_norm(diff, dim=2, out=dist[rows])  # (rows, C)
    dist = dist.masked_fill(cand < 0, math.inf)
    best = dist.topk(k, dim=1, largest=False)  # sorted ascending
    return best.values, cand.gather(1, best.indices)


def _check_threshold(threshold) -> float:
    return _checks.unit_interval(threshold, "threshold")


def memorized(samples: torch.Tensor, train: torch.Tensor, threshold: float = 1 / 3,
              dedupe: bool = True) -> torch.Tensor:
    """Boolean (m,): ``||x - NN1|| < threshold ||x - NN2||`` for each sample.

    samples: (m, d); train: (n, d) with at least two distinct points, compared in samples'
    dtype (float32 for 16-bit samples); threshold in (0, 1]. With ``dedupe``, NN2 is the
    second-nearest *distinct* point: the raw two nearest are found first, and only samples whose
    two nearest are copies of one point are measured again against the deduplicated set (so a
    training set without copies is never deduplicated). Exact, with the speed and memory bound
    of :func:`nearest_neighbors` at k = 2.
    """
    samples = _checks.points(samples, "samples", finite=False)
    train = _checks.points(train, "train", dim=samples.shape[1], finite=False)
    threshold = _check_threshold(threshold)
    if train.shape[0] < 2:
        raise ValueError("train must hold at least two distinct points for the nearest/second-nearest rule")
    samples = _working_precision(samples)
    train = train.to(samples.dtype)
    samples_sq, train_sq = _finite_sq_norms(samples, "samples"), _finite_sq_norms(train, "train")
    dist, idx = _nearest(samples, samples_sq, train, train_sq, 2)
    if dedupe:
        # Two copies of a point are measured at the same distance; the slack only guards
        # against the norm summing their differences in another order.
        tied = torch.nonzero(dist[:, 1] <= dist[:, 0] * (1 + 1e-3)).flatten()
        copies = tied[(train[idx[tied, 0]] == train[idx[tied, 1]]).all(1)]
        if copies.numel() > 0:
            distinct = deduplicate(train)[0]
            if distinct.shape[0] < 2:
                raise ValueError("train must hold at least two distinct points for the nearest/second-nearest rule")
            dist[copies] = _nearest(samples[copies], samples_sq[copies], distinct,
                                    (distinct * distinct).sum(1), 2)[0]
    return dist[:, 0] < threshold * dist[:, 1]


def memorization_ratio(samples: torch.Tensor, train: torch.Tensor, threshold: float = 1 / 3,
                       dedupe: bool = True) -> float:
    """Fraction of samples that are memorized (see :func:`memorized`)."""
    return memorized(samples, train, threshold, dedupe).double().mean().item()


def bootstrap_interval(values: torch.Tensor, level: float = 0.95, num_resamples: int = 2000,
                       generator: torch.Generator | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (m,), e.g. memorized flags.

    For 0/1 values (flags) a resample's mean is exactly ``Binomial(m, mean) / m``, so it is drawn
    as one (memory O(num_resamples) whatever m); other values are resampled in blocks of about
    2M indices, so memory stays near 50 MB instead of ``num_resamples x m`` indices.
    """
    if not isinstance(values, torch.Tensor) or values.ndim != 1 or values.numel() == 0:
        raise ValueError("values must be a non-empty 1-d tensor")
    level = _checks.unit_interval(level, "level", closed_right=False)
    num_resamples = _checks.positive_int(num_resamples, "num_resamples")
    _checks.generator(generator)
    v = values.detach().double().cpu()
    m = v.numel()
    if ((v == 0) | (v == 1)).all():
        count = torch.full((num_resamples,), float(m), dtype=torch.float64)
        means = torch.binomial(count, torch.full_like(count, v.mean().item()), generator=generator) / m
    else:
        # Buffers reused block after block: fresh 16 MiB tensors per block can pile up in malloc.
        rows = min(num_resamples, max(1, _BOOTSTRAP_BLOCK // m))
        idx, picked = torch.empty(rows * m, dtype=torch.long), torch.empty(rows * m, dtype=torch.float64)
        means = torch.empty(num_resamples, dtype=torch.float64)
        for start in range(0, num_resamples, rows):
            size = min(rows, num_resamples - start) * m
            torch.randint(0, m, (size,), generator=generator, out=idx[:size])
            torch.index_select(v, 0, idx[:size], out=picked[:size])
            means[start:start + size // m] = picked[:size].view(-1, m).mean(1)  # (r,)
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
