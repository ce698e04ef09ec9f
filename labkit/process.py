"""The forward (noising) process and the conversions between score, denoiser and noise.

The paper (Section 2) uses the Ornstein-Uhlenbeck process ``dX_t = -X_t/2 dt + dB_t``, so

    X_t = alpha_t X_0 + sigma_t Z,   alpha_t = exp(-t/2),   sigma_t^2 = 1 - exp(-t),   Z ~ N(0, I).

Everything in labkit lives in this OU time ``t`` on ``[t0, T]``. Tweedie's formula links the
three equivalent parameterisations a network may output:

    score(x, t)  = (alpha_t D(x) - x) / sigma_t^2      (D = E[X_0 | X_t = x], the denoiser)
    score(x, t)  = -eps(x, t) / sigma_t               (eps = E[Z | X_t = x], the noise prediction)

These conversions live here and nowhere else. Introduced in ``notebooks/00_primer.ipynb``.
"""

from __future__ import annotations

import math

import torch

from . import _checks

__all__ = [
    "alpha_sigma",
    "diffuse",
    "time_grid",
    "ou_time_from_alpha_bar",
    "score_from_denoiser",
    "denoiser_from_score",
    "score_from_noise",
    "noise_from_score",
]


def _as_time(t, like: torch.Tensor | None = None, allow_zero: bool = True) -> torch.Tensor:
    ref = like if like is not None else torch.empty((), dtype=torch.get_default_dtype())
    if isinstance(t, torch.Tensor) and like is None and t.dtype in _checks.FLOAT_DTYPES:
        ref = t
    return _checks.time(t, "t", ref, allow_zero=allow_zero)


def alpha_sigma(t) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(alpha_t, sigma_t)`` of the OU process at time(s) ``t``.

    ``t``: float, 0-d tensor or (m,) tensor with ``t >= 0``. The outputs have ``t``'s shape,
    device and (floating) dtype; a Python float gives torch's default dtype (float32), so pass
    ``torch.tensor(t, dtype=torch.float64)`` when working in double precision. ``sigma_t`` is computed as ``sqrt(-expm1(-t))`` so it stays
    accurate at tiny ``t`` where ``1 - exp(-t)`` would cancel.

    Example: the signal and noise levels always satisfy ``alpha_t^2 + sigma_t^2 = 1``.

    >>> import torch
    >>> t = torch.tensor([0.0, 1.0, 1e-8], dtype=torch.float64)
    >>> alpha_t, sigma_t = alpha_sigma(t)
    >>> alpha_t ** 2 + sigma_t ** 2
    tensor([1., 1., 1.], dtype=torch.float64)
    >>> print(f"{float(sigma_t[2]):.6g}")  # ~ sqrt(t) at tiny t, with no cancellation
    0.0001
    """
    t = _as_time(t)
    return torch.exp(-0.5 * t), torch.sqrt(-torch.expm1(-t))


def diffuse(x0: torch.Tensor, t, generator: torch.Generator | None = None):
    """Draw ``x_t = alpha_t x0 + sigma_t z`` and return ``(x_t, z)``.

    ``x0``: (m, ...) clean data; ``t``: float, 0-d or (m,) tensor of times ``>= 0``.
    Returns two tensors shaped like ``x0``.
    """
    if not isinstance(x0, torch.Tensor) or x0.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"x0 must be a floating torch.Tensor, got {type(x0).__name__}")
    if x0.ndim < 1 or x0.shape[0] == 0:
        raise ValueError(f"x0 must have shape (m, ...) with m >= 1, got {tuple(x0.shape)}")
    _checks.generator(generator)
    t = _checks.time(t, "t", x0, m=x0.shape[0], allow_zero=True)
    alpha_t, sigma_t = alpha_sigma(t)
    alpha_t, sigma_t = _checks.broadcast_time(alpha_t, x0), _checks.broadcast_time(sigma_t, x0)
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    return alpha_t * x0 + sigma_t * z, z


def time_grid(t_min: float, t_max: float, steps: int, kind: str = "geometric",
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Return ``steps + 1`` decreasing times from ``t_max`` to ``t_min``.

    ``kind="geometric"`` spaces them evenly in ``log t`` (the default for samplers and for
    integrals over ``[t0, T]``: the interesting behaviour lives at small t); ``"linear"`` evenly
    in t. Returns a (steps + 1,) tensor.
    """
    t_min = _checks.positive_float(t_min, "t_min")
    t_max = _checks.positive_float(t_max, "t_max")
    if t_min >= t_max:
        raise ValueError(f"t_min must be smaller than t_max, got t_min={t_min}, t_max={t_max}")
    steps = _checks.positive_int(steps, "steps")
    _checks.choice(kind, "kind", ("geometric", "linear"))
    if kind == "geometric":
        return torch.logspace(math.log10(t_max), math.log10(t_min), steps + 1, dtype=dtype)
    return torch.linspace(t_max, t_min, steps + 1, dtype=dtype)


def ou_time_from_alpha_bar(alpha_bar) -> torch.Tensor:
    """OU time of a discrete-schedule noise level: ``alpha_bar = alpha_t^2 = exp(-t)``, so
    ``t = -log(alpha_bar)``. Used to map DDPM-style step indices into labkit's time."""
    a = torch.as_tensor(alpha_bar, dtype=torch.float64 if not isinstance(alpha_bar, torch.Tensor)
                        else alpha_bar.dtype)
    if not torch.isfinite(a).all() or (a <= 0).any() or (a > 1).any():
        raise ValueError("alpha_bar must lie in (0, 1]")
    return -torch.log(a)


def _coefficients(t, x: torch.Tensor):
    t = _checks.time(t, "t", x, m=x.shape[0], allow_zero=False)
    alpha_t, sigma_t = alpha_sigma(t)
    return _checks.broadcast_time(alpha_t, x), _checks.broadcast_time(sigma_t, x)


def score_from_denoiser(denoised: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
    """Tweedie: ``score = (alpha_t D(x) - x) / sigma_t^2``. Shapes (m, ...); t > 0."""
    alpha_t, sigma_t = _coefficients(t, x)
    return (alpha_t * denoised - x) / sigma_t**2


def denoiser_from_score(score: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
    """Inverse of :func:`score_from_denoiser`: ``D(x) = (x + sigma_t^2 score) / alpha_t``."""
    alpha_t, sigma_t = _coefficients(t, x)
    return (x + sigma_t**2 * score) / alpha_t


def score_from_noise(eps: torch.Tensor, t) -> torch.Tensor:
    """``score = -eps / sigma_t`` for a noise prediction ``eps`` of shape (m, ...); t > 0."""
    _, sigma_t = _coefficients(t, eps)
    return -eps / sigma_t


def noise_from_score(score: torch.Tensor, t) -> torch.Tensor:
    """``eps = -sigma_t score``, the inverse of :func:`score_from_noise`."""
    _, sigma_t = _coefficients(t, score)
    return -sigma_t * score
