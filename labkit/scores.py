"""The empirical score: the closed-form global minimizer of the DSM loss, and its relatives.

With training points ``x_1..x_n`` the empirical law is ``P^_t = (1/n) sum_i N(alpha_t x_i,
sigma_t^2 I)`` and (the book's Background page, ``docs/background.md``)

    D(x)              = sum_i w_i(x) x_i,   w = softmax_i(-||x - alpha_t x_i||^2 / (2 sigma_t^2))
    grad log p^_t(x)  = (alpha_t D(x) - x) / sigma_t^2                (Tweedie)

Sampling with it returns training points: memorization (notebook 00).

How it is computed: the logits are expanded as ``(alpha_t x.x_i - alpha_t^2 ||x_i||^2 / 2) /
sigma_t^2`` (the ``||x||^2`` term is the same for every i and cancels in the softmax), so the
work is two GEMMs of shape (m, d) x (d, n). ``||x_i||^2`` is recomputed chunk by chunk in the
same pass (n d work against the GEMMs' m n d), never cached: a cache keyed on the tensor cannot
see edits made through numpy, ``.data`` or another view, and would serve stale norms. The
training set is streamed in chunks with an online log-sum-exp (running max and rescaled sums,
as in flash attention), so memory is bounded by the chunk whatever n is, and nothing ever
underflows at tiny t. Without autograd, the float32 GEMMs on the CPU run through the faster
of torch's and numpy's BLAS, measured once per process (``LABKIT_GEMM=torch|numpy`` forces one;
``labkit._gemm`` says how the pick is made); the two agree to rounding.

At small t nearly all of the softmax weight sits on the few training points nearest to x:
:func:`empirical_denoiser_topk` and :func:`empirical_score_topk` keep only those (found by the
exact search of :mod:`labkit.metrics`) and return a proven bound on what the truncation drops.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from . import _checks, _gemm, metrics
from .process import alpha_sigma, score_from_denoiser

__all__ = [
    "empirical_score",
    "empirical_denoiser",
    "empirical_log_prob",
    "switched_score",
    "default_chunk_size",
    "empirical_denoiser_topk",
    "empirical_score_topk",
    "TopK",
]

# Logit block budget: m x chunk floats. 2**24 floats = 64 MiB in float32.
_BLOCK_BUDGET = 1 << 24
# Shifted logits are clamped here before exp: exp of a very negative number lands in the
# denormal range, where CPUs run some 50x slower, and the weights lost (< e^-79) are nil.
_EXP_FLOOR = {torch.float32: math.log(torch.finfo(torch.float32).tiny) + 8,
              torch.float64: math.log(torch.finfo(torch.float64).tiny) + 8}


def default_chunk_size(m: int, n: int) -> int:
    """Training points per chunk so that one (m, chunk) logit block stays near 64 MiB (fp32)."""
    return max(256, min(n, _BLOCK_BUDGET // max(m, 1)))


def _squared_norms(block: torch.Tensor) -> torch.Tensor:
    """``||x_i||^2`` of the rows of a (c, d) block, (c,), without a (c, d) temporary."""
    return torch.linalg.vector_norm(block, dim=1).square()


def _prepare(x, t, train, chunk_size):
    # Finiteness of train is checked in the streaming pass, on its squared norms.
    train = _checks.points(train, "train", finite=False)
    n, d = train.shape
    x = _checks.points(x, "x", dim=d)
    if x.dtype not in _EXP_FLOOR:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if train.dtype != x.dtype or train.device != x.device:
        raise ValueError(f"train must have x's dtype and device ({x.dtype}, {x.device}), "
                         f"got ({train.dtype}, {train.device})")
    m = x.shape[0]
    t = _checks.time(t, "t", x, m=m)
    chunk_size = _checks.optional_positive_int(chunk_size, "chunk_size") or default_chunk_size(m, n)
    alpha_t, sigma_t = alpha_sigma(t)
    return x, t, train, chunk_size, alpha_t.reshape(-1, 1), sigma_t.reshape(-1, 1)  # (m or 1, 1) each


def _stream(x, train, chunk_size, alpha_t, sigma_t, want_mean: bool):
    """One pass over the training set with an online log-sum-exp.

    Returns ``(log_rest (m,), mean (m, d) or None, top (m,))``: ``log sum_i exp(l_i - l_top)``
    over the expanded logits (>= 0), the softmax-weighted mean of the training points, and the
    index ``top`` of the largest logit.
    """
    m, d = x.shape
    x_scaled = x * (alpha_t / sigma_t**2)  # (m, d): folds the per-row logit scale into the GEMM
    bias = alpha_t**2 / (2 * sigma_t**2)  # (m or 1, 1)
    run_max = torch.full((m,), -math.inf, dtype=x.dtype, device=x.device)
    run_sum = torch.zeros(m, dtype=x.dtype, device=x.device)
    run_mean = torch.zeros(m, d, dtype=x.dtype, device=x.device) if want_mean else None
    top = torch.zeros(m, dtype=torch.long, device=x.device)
    floor = _EXP_FLOOR[x.dtype]
    finite = torch.ones((), dtype=torch.bool, device=x.device)
    for start in range(0, train.shape[0], chunk_size):
        block = train[start:start + chunk_size]  # (c, d)
        norms = _squared_norms(block)  # (c,)
        finite &= torch.isfinite(norms).all()  # one check after the loop: no sync per chunk
        logits = _gemm.addmm(-bias * norms, x_scaled, block.T)  # (m, c)
        block_max, block_arg = logits.max(dim=1)  # (m,)
        new_max = torch.maximum(run_max, block_max)
        rescale = torch.exp(run_max - new_max)  # (m,), 0 on the first chunk
        if logits.requires_grad:
            weights = (logits - new_max[:, None]).clamp(min=floor).exp()  # (m, c)
        else:
            weights = logits.sub_(new_max[:, None]).clamp_(min=floor).exp_()  # (m, c), in place
        run_sum = run_sum * rescale + weights.sum(dim=1)
        if want_mean:
            run_mean = run_mean * rescale[:, None] + _gemm.mm(weights, block)  # (m, d)
        top = torch.where(block_max > run_max, block_arg + start, top)
        run_max = new_max
    if not finite:
        raise ValueError("train contains NaN or infinite values (or values too large to square)")
    mean = run_mean / run_sum[:, None] if want_mean else None
    return torch.log(run_sum), mean, top


def empirical_denoiser(x: torch.Tensor, t, train: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """``D(x) = E_{P^}[X_0 | X_t = x] = sum_i w_i(x) x_i``.

    x: (m, d) query points; t: float, 0-d or (m,) tensor, t > 0; train: (n, d) in x's dtype and
    device; chunk_size: training points per block (default: a 64 MiB logit block). Returns (m, d).
    """
    x, t, train, chunk_size, alpha_t, sigma_t = _prepare(x, t, train, chunk_size)
    _, mean, _ = _stream(x, train, chunk_size, alpha_t, sigma_t, want_mean=True)
    return mean


def empirical_score(x: torch.Tensor, t, train: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """The empirical score ``grad log p^_t(x) = (alpha_t D(x) - x) / sigma_t^2``.

    Same arguments as :func:`empirical_denoiser`. Returns (m, d). This is the exact minimizer of
    the DSM training loss (Proposition 4.1's reference point).
    """
    return score_from_denoiser(empirical_denoiser(x, t, train, chunk_size), x, t)


def empirical_log_prob(x: torch.Tensor, t, train: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
    """``log p^_t(x) = logsumexp_i(-||x - alpha_t x_i||^2 / (2 sigma_t^2)) - log n - (d/2) log(2 pi sigma_t^2)``.

    Returns (m,). The largest term is recomputed from the exact distance (not the expanded GEMM
    form, whose cancellation would cost float32 about one nat at sigma_t ~ 1e-3), so the value
    is accurate wherever one training point dominates. Differentiable in x.
    """
    x, t, train, chunk_size, alpha_t, sigma_t = _prepare(x, t, train, chunk_size)
    n, d = train.shape
    log_rest, _, top = _stream(x, train, chunk_size, alpha_t, sigma_t, want_mean=False)
    var = sigma_t.squeeze(1) ** 2  # (m,) or (1,)
    exact_top = -((x - alpha_t * train[top]) ** 2).sum(1) / (2 * var)
    log_norm = math.log(n) + 0.5 * d * torch.log(2 * math.pi * var)
    return exact_top + log_rest - log_norm


def switched_score(high, low, tau: float):
    """A score function that uses ``high`` for ``t >= tau`` and ``low`` for ``t < tau``.

    ``high`` and ``low`` are score functions ``(x, t) -> (m, d)``; ``t`` passed to the result
    must be a scalar (as the samplers pass it). Used to ask at which times memorization is
    decided (notebook 01): e.g. ``switched_score(gmm.score, empirical, tau)`` follows the true
    score until ``tau`` and the empirical score after.
    """
    tau = _checks.positive_float(tau, "tau")
    if not (callable(high) and callable(low)):
        raise TypeError("high and low must be callables score_fn(x, t) -> (m, d)")

    def score_fn(x, t):
        t_value = float(t)
        return high(x, t) if t_value >= tau else low(x, t)

    return score_fn



class TopK(NamedTuple):
    """What :func:`empirical_denoiser_topk` / :func:`empirical_score_topk` return with
    ``return_bound=True``.

    value: (m, d), the truncated denoiser or score. k: (m,) long, the training points kept for
    each row (n where the row fell back to the full sum). weight_bound: (m,), a bound ``B`` on
    the softmax weight of the dropped points relative to the largest weight, so the dropped
    share of the full softmax is at most ``B / (1 + B)``. error_bound: (m,), a bound on the
    Euclidean error of each row of ``value`` against the full (untruncated) computation.
    """

    value: torch.Tensor
    k: torch.Tensor
    weight_bound: torch.Tensor
    error_bound: torch.Tensor


def _topk_candidates(q, train, c, screen):
    """Candidates (m, c) for the nearest rows of train to q, sorted by exact distance, their
    distances ||q - x_i|| (m, c), and a lower bound (m,) on ||q - x_j|| for every j outside.

    Without ``screen`` they are the exact c nearest (``labkit.metrics.nearest_neighbors``), and
    the c-th distance bounds the rest. With ``screen = p`` the search runs on p evenly spaced
    coordinates: a distance over a subset of coordinates never exceeds the full one, so the
    (c + 1)-th smallest screened distance bounds every point outside the c screened-nearest,
    which are then measured in full.
    """
    n, d = train.shape
    if screen is None or c >= n:
        dist, idx = metrics.nearest_neighbors(q, train, k=c)
        return dist, idx, dist[:, -1]
    sdist, sidx = metrics.nearest_neighbors(_screened(q, screen), _screened(train, screen),
                                            k=c + 1)
    idx = sidx[:, :c]
    step = max(1, (1 << 20) // (c * d))  # rows per block: (rows, c, d) differences of 4 MiB
    dist = torch.cat([torch.linalg.vector_norm(train[idx[rows]] - q[rows, None, :], dim=2)
                      for rows in (slice(s, s + step) for s in range(0, q.shape[0], step))])
    order = dist.argsort(dim=1)
    return dist.gather(1, order), idx.gather(1, order), sdist[:, c]


def _screened(points, screen):
    """``screen`` of the columns of points (rows, d), copied contiguous: runs of 16 consecutive
    coordinates (64 bytes in float32, one cache line) spread evenly over the d, so the copy
    reads a few lines of each row rather than all of it (for images: patches across the
    picture)."""
    d = points.shape[1]
    run = min(16, screen)
    runs = -(-screen // run)  # ceil
    if runs > 1 and (d - run) / (runs - 1) < run:  # runs would overlap: the leading columns
        return points[:, :screen].contiguous()
    starts = [round(i * (d - run) / max(1, runs - 1)) for i in range(runs)]  # disjoint runs
    return torch.cat([points[:, s:s + run] for s in starts], dim=1)[:, :screen].contiguous()


def _log_weight_bound(dist_sq, outside_sq, c, n, var, rel):
    """log B_k for k = 1..c (m, c): ``log(n - k) - (L_k^2 - d_1^2) / (2 sigma^2)``.

    dist_sq (m, c + 1), or (m, n) where c = n: the candidates' squared distances, sorted;
    outside_sq (m,): a lower bound for every point that is not a candidate. A point dropped
    at k is the (k+1)-th candidate, a later one, or no candidate, so ``L_k^2 = min(d_(k+1)^2,
    outside^2)``; both distances are shifted by the relative rounding margin rel."""
    m = dist_sq.shape[0]
    nxt = dist_sq[:, 1:c + 1]
    if nxt.shape[1] < c:  # c = n: nothing beyond the last point
        nxt = torch.cat([nxt, nxt.new_full((m, 1), math.inf)], dim=1)
    lower = torch.minimum(nxt, outside_sq[:, None]) * (1 - rel)  # (m, c)
    top = dist_sq[:, :1] * (1 + rel)
    kept = torch.arange(1, c + 1, device=dist_sq.device, dtype=dist_sq.dtype)
    log_dropped = torch.log(n - kept).expand(m, c)  # -inf at k = n: nothing dropped
    return log_dropped - (lower - top) / (2 * var)


def _topk_rows(x, alpha_t, var, train, c, screen, k=None, tol=None):
    """``(value (m, d), keep (m,), bound (m,))`` from c candidates per row: k kept, or the
    fewest whose bound is at most tol (``keep = n`` and value unset where none is)."""
    m, (n, d) = x.shape[0], train.shape
    with torch.no_grad():
        dist, idx, outside = _topk_candidates(x / alpha_t, train, min(c + 1, n), screen)
        dist_sq = (alpha_t * dist) ** 2  # ||x - alpha_t x_i||^2, (m, c + 1) or (m, n)
        outside_sq = (alpha_t.squeeze(1) * outside) ** 2 if c < n else \
            torch.full((m,), math.inf, dtype=x.dtype, device=x.device)
        rel = (d + 2) * torch.finfo(x.dtype).eps
        log_b = _log_weight_bound(dist_sq, outside_sq, c, n, var, rel)  # (m, c)
        dist_sq, idx = dist_sq[:, :c], idx[:, :c]
        if k is not None:
            keep = torch.full((m,), k, dtype=torch.long, device=x.device)
        else:
            ok = log_b <= math.log(tol)
            keep = torch.where(ok.any(1), ok.float().argmax(1) + 1, n)
    ranks = torch.arange(c, device=x.device)
    logits = torch.where(ranks < keep[:, None], -dist_sq / (2 * var), -math.inf)
    weights = torch.softmax(logits, dim=1)  # (m, c)
    value = torch.bmm(weights[:, None, :], train[idx]).squeeze(1)  # (m, d)
    bound = log_b.gather(1, (keep.clamp_max(c) - 1)[:, None]).squeeze(1).exp()
    return value, keep, bound


def empirical_denoiser_topk(x: torch.Tensor, t, train: torch.Tensor, k: int | None = None, *,
                            tol: float | None = None, max_k: int = 64,
                            screen: int | None = None, return_bound: bool = False):
    """The empirical denoiser from the training points nearest to x only: truncated top-k.

    ``D_K(x) = sum_{i in K} w_i x_i / sum_{i in K} w_i`` over the set K of the k training points
    nearest to x after scaling by alpha_t (``||x - alpha_t x_i||`` smallest), with the weights
    ``w_i = exp(-||x - alpha_t x_i||^2 / (2 sigma_t^2))`` of :func:`empirical_denoiser`. Give
    either ``k`` (1 <= k <= n, the same for every row) or ``tol``: then each row keeps the
    smallest k <= ``max_k`` whose bound B below is at most tol (8 candidates are tried first,
    ``max_k`` for the rows they do not settle), and a row where none is falls back to the full
    sum (:func:`empirical_denoiser`; its k is reported as n, its bounds as 0).

    The bound. Let ``d_1 <= d_2 <= ...`` be the distances ``||x - alpha_t x_i||`` in order. Each
    dropped point has ``d_i >= d_(k+1)``, so its weight relative to the largest one is at most
    ``exp(-(d_(k+1)^2 - d_1^2) / (2 sigma_t^2))``, and the n - k of them together at most

        B = (n - k) exp(-(d_(k+1)^2 - d_1^2) / (2 sigma_t^2)).

    The dropped share of the full softmax is ``W = sum_out w / sum_all w <= B / (1 + B)``.
    The full denoiser is ``D = (1 - W) D_K + W M`` with M the weighted mean of the dropped
    points, so ``D - D_K = W (M - D_K)``; M and D_K both lie in the convex hull of the training
    set, hence ``||D - D_K|| <= W (R + ||D_K - c||) <= 2 W R``, with c the mean of the training
    points and R the largest ``||x_i - c||`` (at most the diameter of the training set). At small
    t the gap ``d_(k+1)^2 - d_1^2`` is of the order of the data's spacing while sigma_t^2 is tiny,
    so B falls below float32 resolution with k of a few; at large t it does not, and top-k
    does not apply (``tol`` then falls back to the full sum).

    x: (m, d); t: float, 0-d or (m,) tensor, t > 0; train: (n, d) in x's dtype and device.
    screen: find the neighbours on ``screen`` evenly spaced coordinates only (1 <= screen < d),
    then measure ``max_k + 1`` (or ``k + 1``) candidates in full; a distance over some
    coordinates never exceeds the full distance, so the smallest screened distance outside the
    candidates replaces ``d_(k+1)`` in B, and B stays a bound (a looser one where the screen
    separates the points less well). Without it the search is exact, one GEMM over all n d.
    The distances used in B are widened by their float rounding ((d + 2) eps relative).
    Not differentiable (the weights are computed without autograd).

    Returns (m, d), or with ``return_bound=True`` a :class:`TopK` ``(value, k, weight_bound,
    error_bound)``: B and the bound on ``||D - D_K||`` per row (computing R reads the training
    set once more). The error bound is the truncation's; each sum also carries float rounding,
    of the order of x's eps times the largest ``||x_i||``.

    Example: at small t a single neighbour carries all the weight of well-separated points.

    >>> import torch
    >>> train = torch.eye(3, dtype=torch.float64)
    >>> out = empirical_denoiser_topk(train, 0.01, train, k=1, return_bound=True)
    >>> bool(out.weight_bound.max() < 1e-40), out.k.tolist()
    (True, [1, 1, 1])
    """
    x, t, train, _, alpha_t, sigma_t = _prepare(x, t, train, None)
    n, m = train.shape[0], x.shape[0]
    k, tol, c, screen = _topk_arguments(train.shape, k, tol, max_k, screen, return_bound)
    alpha_t, var = alpha_t.expand(m, 1), (sigma_t**2).expand(m, 1)  # (m, 1) each
    if k is not None:
        value, keep, bound = _topk_rows(x, alpha_t, var, train, k, screen, k=k)
    else:  # a few candidates first; the rows they do not settle try max_k, then the full sum
        value, keep, bound = _topk_rows(x, alpha_t, var, train, min(c, 8), screen, tol=tol)
        retry = (keep == n).nonzero().squeeze(1)
        if c > 8 and retry.numel():
            value[retry], keep[retry], bound[retry] = _topk_rows(
                x[retry], alpha_t[retry], var[retry], train, c, screen, tol=tol)
    full = (keep == n) & (keep > c)
    if full.any():
        rows = full.nonzero().squeeze(1)
        value[rows] = empirical_denoiser(x[rows], t[rows] if t.ndim else t, train)
        bound[rows] = 0
    if not return_bound:
        return value
    return TopK(value, keep, bound, _topk_error(train, value, bound))


def _topk_arguments(shape, k, tol, max_k, screen, return_bound):
    """The checked arguments of :func:`empirical_denoiser_topk` for a training set of
    ``shape`` (n, d): ``(k, tol, c, screen)``, c the candidates per row."""
    n, d = shape
    if k is None and tol is None:
        raise ValueError("give k (training points kept) or tol (bound on the dropped weight)")
    if k is not None and tol is not None:
        raise ValueError(f"give k or tol, not both (got k={k!r}, tol={tol!r})")
    if k is not None:
        k = _checks.positive_int(k, "k")
        if k > n:
            raise ValueError(f"k must be at most the number of training points ({n}), got {k}")
        c = k
    else:
        tol = _checks.positive_float(tol, "tol")
        c = min(_checks.positive_int(max_k, "max_k"), n)
    screen = _checks.optional_positive_int(screen, "screen")
    if screen is not None and screen >= d:
        raise ValueError(f"screen must be below the dimension d = {d}, got {screen}")
    if not isinstance(return_bound, bool):
        raise TypeError(f"return_bound must be True or False, got {type(return_bound).__name__}")
    return k, tol, c, screen


def _topk_error(train, value, bound):
    """The bound on ``||D - D_K||`` per row: ``B / (1 + B) (R + ||D_K - c||)``, c the mean of
    the training points and R the largest ``||x_i - c||`` (read 4,096 rows at a time)."""
    with torch.no_grad():
        center = train.mean(0)
        radius = max(torch.linalg.vector_norm(train[s:s + 4096] - center, dim=1).max()
                     for s in range(0, train.shape[0], 4096))
        share = 1 / (1 + 1 / bound)  # B / (1 + B), 1 where B is infinite
        return torch.where(bound > 0, share * (radius + torch.linalg.vector_norm(
            value - center, dim=1)), 0.0)


def empirical_score_topk(x: torch.Tensor, t, train: torch.Tensor, k: int | None = None, *,
                         tol: float | None = None, max_k: int = 64, screen: int | None = None,
                         return_bound: bool = False):
    """The empirical score from the k nearest training points: ``(alpha_t D_K(x) - x) /
    sigma_t^2`` with ``D_K`` of :func:`empirical_denoiser_topk` (same arguments and bound B).

    The score's error is ``alpha_t / sigma_t^2`` times the denoiser's, which is what
    ``error_bound`` holds here. With ``k = n`` it is :func:`empirical_score` to rounding.
    Returns (m, d), or a :class:`TopK` with ``return_bound=True``.
    """
    out = empirical_denoiser_topk(x, t, train, k, tol=tol, max_k=max_k, screen=screen,
                                  return_bound=return_bound)
    value = out.value if return_bound else out
    score = score_from_denoiser(value, x, t)
    if not return_bound:
        return score
    alpha_t, sigma_t = alpha_sigma(_checks.time(t, "t", x, m=x.shape[0]))
    return TopK(score, out.k, out.weight_bound,
                out.error_bound * (alpha_t / sigma_t**2).reshape(-1).expand(x.shape[0]))
