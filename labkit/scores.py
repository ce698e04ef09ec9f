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
"""

from __future__ import annotations

import math

import torch

from . import _checks, _gemm
from .process import alpha_sigma, score_from_denoiser

__all__ = [
    "empirical_score",
    "empirical_denoiser",
    "empirical_log_prob",
    "switched_score",
    "default_chunk_size",
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

