"""Denoising score matching, the Fisher divergence, and the Loss-Gap of Proposition 4.1.

The per-point DSM loss of a score model ``s`` at time t (unweighted, as in the paper) is

    l_t(x_i, s) = E_Z || -Z/sigma_t - s(alpha_t x_i + sigma_t Z, t) ||^2,

and Proposition 4.1 is the exact identity

    Loss-Gap_t = (1/n) sum_i [l_t(x_i, true) - l_t(x_i, empirical)]
               = E_{X ~ P^_t} || grad log p^_t(X) - grad log p_t(X) ||^2,

a Fisher divergence under the *empirical* law: the true score never minimizes the training
loss. Functions return one value per training point; callers average. Introduced in notebook
00, measured in notebook 01.

The loss networks are trained on (by :func:`labkit.train.train`): labkit's networks predict the
noise ``eps(x_t, t)`` with ``s = -eps / sigma_t``, so

    sigma_t^2 l_t(x, s) = E_Z || Z - eps(alpha_t x + sigma_t Z, t) ||^2,

the noise-prediction MSE of :func:`dsm_noise_loss`, is DSM weighted by ``sigma_t^2``. The
weight changes how times are traded off, not the minimizer at each t: the empirical score still
minimizes it, which is what drives memorization (Proposition 4.1). Its training times come from
a time sampler, :class:`UniformTime` or :class:`LogUniformTime` (``sampler(n, generator, dtype,
device) -> (n,)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import _checks
from .process import alpha_sigma, diffuse, time_grid
from .scores import empirical_score

__all__ = [
    "dsm_loss",
    "integrated_dsm_loss",
    "fisher_divergence",
    "GapEstimate",
    "loss_gap",
    "integrated_loss_gap",
    "UniformTime",
    "LogUniformTime",
    "dsm_noise_loss",
]


def _call_score(score_fn, x_t, t, name="score_fn"):
    out = score_fn(x_t, t)
    if not isinstance(out, torch.Tensor) or out.shape != x_t.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name} must return a tensor of shape {tuple(x_t.shape)}, got {got}")
    return out


def _noisy_copies(train, t, num_noise, generator):
    """``num_noise`` diffused copies of each training point: (num_noise * n, d) and their noise."""
    n, d = train.shape
    alpha_t, sigma_t = alpha_sigma(t)
    z = torch.randn(num_noise, n, d, generator=generator, dtype=train.dtype, device=train.device)
    x_t = (alpha_t * train + sigma_t * z).reshape(num_noise * n, d)  # (r n, d)
    return x_t, z.reshape(num_noise * n, d), sigma_t  # (r n, d), (r n, d), 0-d


def _check_common(score_fn, train, t, num_noise, generator):
    if not callable(score_fn):
        raise TypeError("score_fn must be a callable score_fn(x_t, t) -> (m, d)")
    train = _checks.points(train, "train")
    t = _checks.time(t, "t", train)
    if t.ndim != 0:
        raise ValueError(f"t must be a single time (float or 0-d tensor), got shape {tuple(t.shape)}")
    num_noise = _checks.positive_int(num_noise, "num_noise")
    _checks.generator(generator)
    return train, t, num_noise


def dsm_loss(score_fn, train: torch.Tensor, t, num_noise: int = 1,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Monte Carlo estimate of ``l_t(x_i, s)`` for every training point.

    score_fn: ``(x_t (m, d), t 0-d tensor) -> (m, d)``; train: (n, d); t: one time > 0;
    num_noise: noise draws per point. Returns (n,).
    """
    train, t, num_noise = _check_common(score_fn, train, t, num_noise, generator)
    n, _ = train.shape
    x_t, z, sigma_t = _noisy_copies(train, t, num_noise, generator)
    residual = -z / sigma_t - _call_score(score_fn, x_t, t)  # (r n, d)
    return (residual**2).sum(1).reshape(num_noise, n).mean(0)  # (r, n) -> (n,)


def _integrate_log_t(per_time, t0: float, T: float, num_times: int) -> torch.Tensor:
    """``integral_{t0}^{T} f(t) dt`` for ``per_time(t: float) -> (n,)``, per entry, (n,).

    Trapezoid rule in log t on a geometric grid of ``num_times`` points (dt = t dlog t), which
    resolves the ~1/t growth of the integrands at small t that a uniform grid would miss.
    """
    num_times = _checks.positive_int(num_times, "num_times")
    if num_times < 2:
        raise ValueError(f"num_times must be at least 2, got {num_times}")
    times = time_grid(t0, T, num_times - 1).flip(0)  # increasing, float64
    values = torch.stack([per_time(float(t)).to(torch.float64) for t in times])  # (num_times, n)
    return torch.trapezoid(values * times[:, None], times.log(), dim=0)


def integrated_dsm_loss(score_fn, train: torch.Tensor, t0: float, T: float, num_times: int = 32,
                        num_noise: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """``integral_{t0}^{T} l_t(x_i, s) dt`` per training point, (n,) in train's dtype
    (trapezoid rule in log t on ``num_times`` geometric points)."""
    integral = _integrate_log_t(lambda t: dsm_loss(score_fn, train, t, num_noise, generator), t0, T, num_times)
    return integral.to(train.dtype)


def fisher_divergence(score_a, score_b, points: torch.Tensor, t) -> torch.Tensor:
    """``|| score_a(x, t) - score_b(x, t) ||^2`` at each point, (m,). Average it over points drawn
    from a law to get the Fisher divergence under that law."""
    points = _checks.points(points, "points")
    t = _checks.time(t, "t", points, m=points.shape[0])
    diff = _call_score(score_a, points, t, "score_a") - _call_score(score_b, points, t, "score_b")
    return (diff**2).sum(1)


@dataclass(frozen=True)
class GapEstimate:
    """A Monte Carlo estimate with its standard error and a normal 95% interval."""

    value: float
    stderr: float
    num_samples: int

    @property
    def interval(self) -> tuple[float, float]:
        return self.value - 1.96 * self.stderr, self.value + 1.96 * self.stderr

    def __str__(self) -> str:
        return f"{self.value:.4g} +- {1.96 * self.stderr:.2g}"


def _estimate(values: torch.Tensor) -> GapEstimate:
    values = values.detach().to(torch.float64)
    m = values.numel()
    stderr = values.std(unbiased=True).item() / math.sqrt(m) if m > 1 else math.inf
    return GapEstimate(values.mean().item(), stderr, m)


def loss_gap(true_score, train: torch.Tensor, t, num_noise: int = 1, method: str = "fisher",
             generator: torch.Generator | None = None, chunk_size: int | None = None) -> GapEstimate:
    """Estimate ``Loss-Gap_t`` of Proposition 4.1 on a training set, with a standard error.

    true_score: ``(x, t) -> (m, d)``, the score of the law the data came from; train: (n, d).
    ``method="fisher"`` averages ``||grad log p^_t - grad log p_t||^2`` over X ~ P^_t (diffused
    training points); ``method="dsm"`` averages the difference of the two DSM losses on common
    noise. Both estimate the same number (Prop. 4.1). The standard error is over training
    points (each point's draws are averaged first).
    """
    _checks.choice(method, "method", ("fisher", "dsm"))
    return _estimate(_fisher_per_point(true_score, train, t, num_noise, generator, chunk_size, method))


def _fisher_per_point(true_score, train, t, num_noise, generator, chunk_size=None, method="fisher"):
    """Per training point, the mean over ``num_noise`` draws of the Loss-Gap integrand: (n,)."""
    train, t, num_noise = _check_common(true_score, train, t, num_noise, generator)
    n, _ = train.shape
    x_t, z, sigma_t = _noisy_copies(train, t, num_noise, generator)
    s_emp = empirical_score(x_t, t, train, chunk_size)
    s_true = _call_score(true_score, x_t, t, "true_score")
    if method == "fisher":
        per_draw = ((s_emp - s_true) ** 2).sum(1)
    else:
        target = -z / sigma_t
        per_draw = ((target - s_true) ** 2).sum(1) - ((target - s_emp) ** 2).sum(1)
    return per_draw.reshape(num_noise, n).mean(0)  # (r, n) -> (n,): the SE is over points


def integrated_loss_gap(true_score, train: torch.Tensor, t0: float, T: float, num_times: int = 32,
                        num_noise: int = 1, generator: torch.Generator | None = None) -> GapEstimate:
    """``integral_{t0}^{T} Loss-Gap_t dt`` (Fisher form, trapezoid in log t) with a standard error.

    Theorem 4.3 predicts growth like ``d log(1/t0)`` as t0 -> 0.
    """
    train = _checks.points(train, "train")
    return _estimate(_integrate_log_t(lambda t: _fisher_per_point(true_score, train, t, num_noise, generator),
                                      t0, T, num_times))


# ----------------------------------------------------------------------------------------------
# The training loss: time samplers and the noise-prediction loss

@dataclass(frozen=True)
class UniformTime:
    """Training times ``t ~ Uniform[t_min, t_max]``. ``sampler(n, generator, dtype, device)``
    returns an (n,) tensor."""

    t_min: float
    t_max: float

    def __post_init__(self):
        _checks.positive_float(self.t_min, "t_min")
        _checks.positive_float(self.t_max, "t_max")
        if self.t_min >= self.t_max:
            raise ValueError(f"t_min must be smaller than t_max, got {self.t_min} >= {self.t_max}")

    def __call__(self, n: int, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        u = torch.rand(n, generator=generator, dtype=dtype, device=device)
        return self.t_min + (self.t_max - self.t_min) * u


@dataclass(frozen=True)
class LogUniformTime(UniformTime):
    """Training times with ``log t ~ Uniform[log t_min, log t_max]``: equal effort per decade,
    so the small times where memorization is decided are not starved."""

    def __call__(self, n: int, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        u = torch.rand(n, generator=generator, dtype=dtype, device=device)
        lo, hi = math.log(self.t_min), math.log(self.t_max)
        return torch.exp(lo + (hi - lo) * u)


def dsm_noise_loss(model: nn.Module, x0: torch.Tensor, t_sampler,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise-prediction loss ``|| Z - eps(alpha_t x0 + sigma_t Z, t) ||^2`` per sample.

    One fresh time (from ``t_sampler``, e.g. :class:`LogUniformTime`) and one fresh noise per
    sample. This is the DSM loss weighted by ``sigma_t^2`` (see the module docstring).
    ``model(x_t, t)`` must predict the noise; ``x0``: (b, ...) clean data. Returns (b,), the
    squared error summed over all non-batch dimensions. Use with :func:`labkit.train.train` as
    ``functools.partial(dsm_noise_loss, t_sampler=LogUniformTime(1e-3, 10.0))``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x0, torch.Tensor) or x0.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"x0 must be a floating torch.Tensor, got {type(x0).__name__}")
    if not callable(t_sampler):
        raise TypeError(f"t_sampler must be callable (e.g. LogUniformTime), got {type(t_sampler).__name__}")
    _checks.generator(generator)
    b = x0.shape[0]
    t = t_sampler(b, generator, x0.dtype, x0.device)                   # (b,)
    x_t, z = diffuse(x0, t, generator)                                 # (b, ...), (b, ...)
    eps = model(x_t, t)
    if eps.shape != x0.shape:
        raise ValueError(f"model must return a noise prediction shaped like x0 {tuple(x0.shape)}, "
                         f"got {tuple(eps.shape)}")
    return (eps - z).pow(2).reshape(b, -1).sum(1)                      # (b,)
