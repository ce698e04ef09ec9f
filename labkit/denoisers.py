"""Closed-form denoisers beside the empirical one, and how to measure two denoisers' agreement.

A denoiser maps a noisy input ``x`` at OU time ``t`` (``x = alpha_t x_0 + sigma_t z``) to an
estimate of ``x_0``; the optimal one is the posterior mean ``E[X_0 | X_t = x]``. The empirical
denoiser (:func:`labkit.scores.empirical_denoiser`) is the posterior mean under the training
set itself and reproduces training points. This module holds two other closed forms that
trained networks have been compared with (Kamb & Ganguli 2024; Niedoba et al. 2024):

- :func:`gaussian_denoiser`: the posterior mean when the data law is ``N(mu, Sigma)`` (the
  Wiener filter), ``D(x) = mu + alpha_t Sigma (alpha_t^2 Sigma + sigma_t^2 I)^{-1}
  (x - alpha_t mu)``; with ``(mu, Sigma)`` from :func:`fit_gaussian` it is the best *linear*
  denoiser of the training set;
- :func:`local_denoiser`: the patch-based local empirical denoiser for images. Each output
  pixel is the softmax-weighted mean of the centre pixels of training patches, the weights
  comparing the query's ``patch_size x patch_size`` neighbourhood with each training patch
  (translation-equivariant: patches from every position of every training image; or, with
  ``equivariant=False``, only from the same position). It generalizes by recombining patches.

and two threshold-free measures of agreement (Kadkhodaie et al. 2024: networks trained on
disjoint halves of the data agree once they generalize):

- :func:`relative_mse`: ``E||a - b||^2`` over the spread of the reference (``1 - r^2``), or,
  symmetric, over the mean spread of both;
- :func:`paired_distance`: the mean squared distance of samples drawn from the *same* noise by
  two models, over that of samples from different noise: 0 when the models agree, about 1 when
  their samples are as far apart as independent draws.

Introduced in ``notebooks/04_open_questions.ipynb``.
"""

from __future__ import annotations

import torch

from . import _checks
from .process import alpha_sigma
from .scores import empirical_denoiser

__all__ = ["fit_gaussian", "gaussian_denoiser", "local_denoiser", "relative_mse",
           "paired_distance"]


def fit_gaussian(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d,) and covariance (d, d) of the empirical law of ``train`` (n, d): the moments of
    the uniform law on the rows (divided by n, not n - 1)."""
    train = _checks.points(train, "train")
    mean = train.mean(0)
    centred = train - mean
    return mean, centred.T @ centred / train.shape[0]


def gaussian_denoiser(x: torch.Tensor, t, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Posterior mean of ``X_0 ~ N(mean, cov)`` given ``X_t = x``:
    ``mean + alpha_t cov (alpha_t^2 cov + sigma_t^2 I)^{-1} (x - alpha_t mean)``.

    x: (m, d); t: float, 0-d or (m,) tensor, t > 0; mean: (d,); cov: (d, d) symmetric positive
    semi-definite (a singular covariance is allowed: ``sigma_t > 0`` keeps the system
    invertible). Returns (m, d) in x's dtype. Computed in the covariance's eigenbasis.
    """
    x = _checks.points(x, "x")
    d = x.shape[1]
    if not isinstance(mean, torch.Tensor) or mean.shape != (d,):
        raise ValueError(f"mean must be a tensor of shape ({d},), got "
                         f"{tuple(mean.shape) if isinstance(mean, torch.Tensor) else type(mean).__name__}")
    if not isinstance(cov, torch.Tensor) or cov.shape != (d, d):
        raise ValueError(f"cov must be a tensor of shape ({d}, {d}), got "
                         f"{tuple(cov.shape) if isinstance(cov, torch.Tensor) else type(cov).__name__}")
    c64 = cov.detach().to(torch.float64)
    if not torch.isfinite(c64).all() or not torch.allclose(c64, c64.T, atol=1e-8):
        raise ValueError("cov must be a finite symmetric matrix")
    lam, u = torch.linalg.eigh(c64)
    if lam.min() < -1e-8 * max(1.0, float(lam.abs().max())):
        raise ValueError(f"cov must be positive semi-definite, got eigenvalue {lam.min().item():.3g}")
    lam = lam.clamp_min(0)
    t = _checks.time(t, "t", x, m=x.shape[0])
    alpha_t, sigma_t = (v.reshape(-1, 1).to(torch.float64) for v in alpha_sigma(t))
    gain = alpha_t * lam / (alpha_t**2 * lam + sigma_t**2)  # (m or 1, d) per eigen-direction
    mu = mean.detach().to(torch.float64)
    resid = (x.to(torch.float64) - alpha_t * mu) @ u  # (m, d) in the eigenbasis
    return (mu + (gain * resid) @ u.T).to(x.dtype)


def _check_images(x, name: str, like=None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating tensor of shape (m, C, H, W), got "
                        f"{type(x).__name__}")
    if x.ndim != 4 or not x.shape[0]:
        raise ValueError(f"{name} must have shape (m, C, H, W) with m >= 1, got {tuple(x.shape)}")
    if like is not None and (x.shape[1:] != like.shape[1:] or x.dtype != like.dtype):
        raise ValueError(f"{name} must have x's image shape and dtype {tuple(like.shape[1:])}, "
                         f"{like.dtype}; got {tuple(x.shape[1:])}, {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _patches(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(m, C, H, W) -> (m, L, C * P * P): the zero-padded P x P neighbourhood of each of the
    L = H W pixels, row-major; the centre pixel of channel c sits at index c P^2 + P^2 // 2."""
    out = torch.nn.functional.unfold(x, patch_size, padding=patch_size // 2)  # (m, C P^2, L)
    return out.transpose(1, 2)


def local_denoiser(x: torch.Tensor, t, train: torch.Tensor, patch_size: int, *,
                   equivariant: bool = True) -> torch.Tensor:
    """The patch-based local empirical denoiser.

    For each pixel ``p`` of each query image, the weights ``w_j = softmax_j(-||N_p(x) - alpha_t
    N_j||^2 / (2 sigma_t^2))`` compare the query's ``patch_size x patch_size`` neighbourhood
    ``N_p(x)`` (all channels, zero padding at the border) with training patches ``N_j``: every
    patch of every training image (``equivariant=True``, Kamb & Ganguli's equivariant local
    score machine) or the patches at the same position ``p`` only (``equivariant=False``). The
    output pixel is ``sum_j w_j`` (centre pixel of ``N_j``). It is the empirical denoiser
    (:func:`labkit.scores.empirical_denoiser`) of the patch set, read at the centre pixel; with
    ``equivariant=False`` and a patch that covers the whole image from every pixel
    (``patch_size >= 2 max(H, W) - 1``) it equals the empirical denoiser of the images.

    x: (m, C, H, W) noisy images; t: float, 0-d or (m,) tensor, t > 0; train: (n, C, H, W) in
    x's dtype; patch_size: odd positive int. Returns (m, C, H, W).
    """
    x = _check_images(x, "x")
    train = _check_images(train, "train", like=x)
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1 \
            or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be an odd positive int, got {patch_size!r}")
    if not isinstance(equivariant, bool):
        raise TypeError(f"equivariant must be a bool, got {type(equivariant).__name__}")
    m, c, h, w = x.shape
    t = _checks.time(t, "t", x, m=m)
    queries, pool = _patches(x, patch_size), _patches(train, patch_size)  # (m, L, K), (n, L, K)
    size = patch_size * patch_size
    centre = torch.arange(c) * size + size // 2  # (C,) the centre pixel of each channel
    if equivariant:
        times = t if t.ndim == 0 else t.repeat_interleave(h * w)
        out = empirical_denoiser(queries.reshape(m * h * w, -1), times,
                                 pool.reshape(-1, pool.shape[-1]).contiguous())
        out = out[:, centre].reshape(m, h * w, c)
    else:
        out = torch.stack([empirical_denoiser(queries[:, p].contiguous(), t,
                                              pool[:, p].contiguous())[:, centre]
                           for p in range(h * w)], dim=1)  # (m, L, C)
    return out.transpose(1, 2).reshape(m, c, h, w)


def _pair(a, b, names=("a", "b")) -> tuple[torch.Tensor, torch.Tensor]:
    for v, name in zip((a, b), names):
        if not isinstance(v, torch.Tensor) or v.dtype not in _checks.FLOAT_DTYPES:
            raise TypeError(f"{name} must be a floating tensor of shape (m, ...), got "
                            f"{type(v).__name__}")
        if v.ndim < 1 or v.shape[0] < 2:
            raise ValueError(f"{name} must hold at least two rows, got shape {tuple(v.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    return a.flatten(1).double(), b.flatten(1).double()


def relative_mse(estimate: torch.Tensor, reference: torch.Tensor, *,
                 symmetric: bool = False) -> float:
    """``sum_i ||estimate_i - reference_i||^2 / sum_i ||reference_i - mean(reference)||^2``:
    0 when they agree, 1 for an estimate no better than the reference's mean (so ``1 - value``
    is the r^2 of the estimate). With ``symmetric`` the denominator is the mean of both spreads
    (for two models, neither of which is the reference). Shapes (m, ...), m >= 2."""
    a, b = _pair(estimate, reference, ("estimate", "reference"))
    spread = lambda v: ((v - v.mean(0)) ** 2).sum()  # noqa: E731
    denom = 0.5 * (spread(a) + spread(b)) if symmetric else spread(b)
    if denom <= 0:
        raise ValueError("reference must vary across rows (its spread is 0)")
    return float(((a - b) ** 2).sum() / denom)


def paired_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """``mean_i ||a_i - b_i||^2 / mean_{i != j} ||a_i - b_j||^2`` for samples ``a`` and ``b``
    drawn by two models from the same starting noises (row i from noise i): 0 when the models
    map each noise to the same point, about 1 when paired samples are as far apart as unpaired
    ones. Shapes (m, ...), m >= 2; the unpaired mean is exact (all m (m - 1) pairs)."""
    a, b = _pair(a, b)
    m = a.shape[0]
    paired = ((a - b) ** 2).sum(1)  # (m,)
    total = m * (a**2).sum() + m * (b**2).sum() - 2 * (a.sum(0) @ b.sum(0))  # all m^2 pairs
    unpaired = (total - paired.sum()) / (m * (m - 1))
    if unpaired <= 0:
        raise ValueError("a and b must not all be one point (unpaired distance 0)")
    return float(paired.mean() / unpaired)
