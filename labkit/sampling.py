"""Reverse-time samplers driven by any score function.

For the OU forward process ``dX = -X/2 dt + dB`` the time reversal and the probability-flow
ODE are (Anderson 1982; Song et al. 2021)

    reverse SDE:  dY = [Y/2 + score(Y, t)] ds + dB_s,        run from t = t_max down to t_min
    flow ODE:     dx/dt = -x/2 - score(x, t)/2,              integrated backwards in t

Both start from ``N(0, I)`` (the OU stationary law, exact as t_max -> infinity) and stop early
at ``t_min`` (the paper's t0). The SDE is stepped with Euler-Maruyama, the ODE with Heun's
method, both on a geometric time grid (small steps where the score changes fastest). With the
empirical score both reproduce training points: notebook 00.
"""

from __future__ import annotations

import torch

from . import _checks
from .process import denoiser_from_score, time_grid

__all__ = ["sample"]


def sample(score_fn, num_samples: int, dim: int, *, steps: int, t_min: float, t_max: float,
           method: str = "sde", generator: torch.Generator | None = None,
           dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
           return_trajectory: bool = False, denoise_final: bool = False):
    """Draw ``num_samples`` points of dimension ``dim`` by reversing the OU process.

    score_fn: ``(x (m, d), t 0-d tensor) -> (m, d)``; steps: number of time steps; t_min, t_max:
    the time window (0 < t_min < t_max); method: ``"sde"`` (Euler-Maruyama) or ``"ode"`` (Heun);
    denoise_final: replace the output at t_min by its Tweedie denoised mean.
    Returns (num_samples, dim), or with ``return_trajectory`` a tuple ``(samples, trajectory,
    times)`` where trajectory is (steps + 1, num_samples, dim) and times (steps + 1,).
    """
    if not callable(score_fn):
        raise TypeError("score_fn must be a callable score_fn(x, t) -> (m, d)")
    num_samples = _checks.positive_int(num_samples, "num_samples")
    dim = _checks.positive_int(dim, "dim")
    steps = _checks.positive_int(steps, "steps")
    _checks.choice(method, "method", ("sde", "ode"))
    _checks.generator(generator)
    device = None if device is None else _checks.device(device)  # None: torch's default
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    times = time_grid(t_min, t_max, steps).to(dtype=dtype, device=device)  # decreasing, (steps + 1,)

    def score(x, t):
        out = score_fn(x, t)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"score_fn must return a tensor of shape {tuple(x.shape)}, got {got}")
        return out

    x = torch.randn(num_samples, dim, generator=generator, dtype=dtype, device=device)
    trajectory = [x] if return_trajectory else None
    with torch.no_grad():
        for k in range(steps):
            t, t_next = times[k], times[k + 1]
            h = t - t_next  # > 0: the reverse-time step
            if method == "sde":
                drift = 0.5 * x + score(x, t)
                noise = torch.randn(x.shape, generator=generator, dtype=dtype, device=device)
                x = x + h * drift + torch.sqrt(h) * noise
            else:
                velocity = 0.5 * x + 0.5 * score(x, t)  # d x / d(-t)
                x_euler = x + h * velocity
                velocity_next = 0.5 * x_euler + 0.5 * score(x_euler, t_next)
                x = x + 0.5 * h * (velocity + velocity_next)
            if not torch.isfinite(x).all():
                raise FloatingPointError(f"sampler diverged at t={t.item():.3g}; use more steps or a larger t_min")
            if return_trajectory:
                trajectory.append(x)
        if denoise_final:
            x = denoiser_from_score(score(x, times[-1]), x, times[-1])
    if return_trajectory:
        return x, torch.stack(trajectory), times
    return x

