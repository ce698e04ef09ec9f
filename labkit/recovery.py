"""Noise search: how many training images can a model still be made to reproduce?

A model's memorization rate counts copies among *random* draws. A model that no longer copies
on random noise may still copy from some noises (after pruning, small changes to the input
bring the copies back: Finding Dori, arXiv 2507.16880). This module searches the starting
noise of a deterministic sampler for copies of each training image:

- :func:`flow_map`: the probability-flow ODE (Heun, as :func:`labkit.sampling.sample` with
  ``method="ode"``) from a *given* starting noise, differentiable in it;
- :func:`dit_generator`: that map for a :class:`labkit.dit.DiT`, on flattened images;
- :func:`copied_index`: which training point each sample copies (the 1/3 rule of
  :func:`labkit.metrics.memorized`), -1 for none;
- :func:`noise_search`: best of many draws, then a few gradient steps per training image on
  the squared distance of the sample to that image (Adam, the noise kept on the sphere of
  radius ``sqrt(d)`` where standard Gaussian noise lives), and the count of training images
  reproduced at each stage.

Introduced in ``notebooks/04_open_questions.ipynb``.
"""

from __future__ import annotations

import math

import torch

from . import _checks
from .metrics import memorized, nearest_neighbors
from .process import denoiser_from_score, time_grid

__all__ = ["flow_map", "dit_generator", "copied_index", "noise_search"]


def flow_map(score_fn, noise: torch.Tensor, *, steps: int, t_min: float, t_max: float,
             denoise_final: bool = False) -> torch.Tensor:
    """Integrate the probability-flow ODE ``dx/dt = -x/2 - score(x, t)/2`` from ``noise`` at
    ``t_max`` down to ``t_min`` with Heun's method on :func:`labkit.process.time_grid`'s
    geometric grid: the same steps as ``sample(method="ode")``, from the noise you pass, and
    differentiable in it (no ``torch.no_grad``).

    score_fn: ``(x (m, d), t 0-d tensor) -> (m, d)``; noise: (m, d); denoise_final: return the
    Tweedie denoised mean at t_min. Returns (m, d).
    """
    if not callable(score_fn):
        raise TypeError("score_fn must be a callable score_fn(x, t) -> (m, d)")
    noise = _checks.points(noise, "noise")
    steps = _checks.positive_int(steps, "steps")
    times = time_grid(t_min, t_max, steps).to(dtype=noise.dtype, device=noise.device)
    x = noise
    for k in range(steps):
        t, t_next = times[k], times[k + 1]
        h = t - t_next
        velocity = 0.5 * x + 0.5 * score_fn(x, t)
        x_euler = x + h * velocity
        x = x + 0.5 * h * (velocity + 0.5 * x_euler + 0.5 * score_fn(x_euler, t_next))
    if denoise_final:
        x = denoiser_from_score(score_fn(x, times[-1]), x, times[-1])
    return x


def dit_generator(model, *, steps: int = 20, t_min: float = 1e-3, t_max: float = 10.0):
    """``generate(noise (m, C*H*W)) -> (m, C*H*W)``: :func:`flow_map` of a DiT's score
    ``-eps / sigma_t`` with the final Tweedie denoising, clamped to [-1, 1] as
    :func:`labkit.dit.sample_images` clamps. Differentiable in the noise; the model is put in
    eval mode and its parameters are not tracked by autograd (gradients reach the noise only)."""
    from .dit import DiT
    from .process import score_from_noise

    if not isinstance(model, DiT):
        raise TypeError(f"model must be a labkit.dit.DiT, got {type(model).__name__}")
    steps = _checks.positive_int(steps, "steps")
    c = model.config
    shape = (c.channels, c.image_size, c.image_size)
    model.eval().requires_grad_(False)

    def score_fn(x, t):
        eps = model(x.reshape(-1, *shape), t.expand(x.shape[0]))
        return score_from_noise(eps.reshape(x.shape[0], -1), t)

    def generate(noise):
        noise = _checks.points(noise, "noise", dim=math.prod(shape))
        return flow_map(score_fn, noise, steps=steps, t_min=t_min, t_max=t_max,
                        denoise_final=True).clamp(-1, 1)

    return generate


def copied_index(samples: torch.Tensor, train: torch.Tensor, threshold: float = 1 / 3) -> torch.Tensor:
    """(m,) long: the index of the training point a sample copies (its nearest, when the 1/3 rule
    of :func:`labkit.metrics.memorized` calls it memorized), -1 where it copies none.
    samples: (m, d); train: (n, d)."""
    samples = _checks.points(samples, "samples")
    train = _checks.points(train, "train", dim=samples.shape[1])
    copies = memorized(samples, train, threshold)
    nearest = nearest_neighbors(samples.to(train.dtype), train, k=1)[1][:, 0]
    return torch.where(copies, nearest, torch.full_like(nearest, -1))


def _sphere(z: torch.Tensor) -> torch.Tensor:
    return z * (math.sqrt(z.shape[1]) / z.norm(dim=1, keepdim=True).clamp_min(1e-12))


def noise_search(generate, train: torch.Tensor, *, draws: int = 1024, refine_steps: int = 8,
                 lr: float = 0.05, batch_size: int = 256, threshold: float = 1 / 3,
                 generator: torch.Generator | None = None) -> dict:
    """Search starting noises for copies of each training point.

    generate: ``noise (m, d) -> samples (m, d)``, deterministic and differentiable (e.g.
    :func:`dit_generator`); train: (n, d) training points (flattened images).

    1. *Draws*: ``draws`` standard Gaussian noises (from ``generator``), mapped in batches of
       ``batch_size``. ``draws_curve[k]`` is the number of distinct training points copied by
       the first ``2^k`` draws (the last entry: all of them), so the gain from more draws shows.
    2. *Refinement*: for each training point, the noise whose sample lies nearest to it is moved
       by ``refine_steps`` Adam steps (step size ``lr``) on ``||generate(z) - x_i||^2``, and put
       back on the sphere ``||z|| = sqrt(d)`` after each step.

    Returns ``{"reproduced_draws", "reproduced_search" (copied by a draw or by a refined noise),
    "draws_curve", "draws_at" (the draw counts of the curve), "targets" (n), "reproduced_ids"
    (sorted indices), "refined_ratio" (per training point i, ``||x - x_i|| / min_{j != i} ||x - x_j||`` of
    its refined sample x: below ``threshold`` is a copy of x_i)}``.
    """
    if not callable(generate):
        raise TypeError("generate must be a callable noise (m, d) -> samples (m, d)")
    train = _checks.points(train, "train")
    n, d = train.shape
    if n < 2:
        raise ValueError("train must hold at least two points (the 1/3 rule needs a second nearest)")
    draws = _checks.positive_int(draws, "draws")
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or refine_steps < 0:
        raise ValueError(f"refine_steps must be a non-negative int, got {refine_steps!r}")
    lr = _checks.positive_float(lr, "lr")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    threshold = _checks.unit_interval(threshold, "threshold")
    _checks.generator(generator)
    noise = torch.randn(draws, d, generator=generator, dtype=train.dtype)
    with torch.no_grad():
        samples = torch.cat([generate(noise[s:s + batch_size])
                             for s in range(0, draws, batch_size)])
    if samples.shape != (draws, d):
        raise ValueError(f"generate must return shape (m, {d}), got {tuple(samples.shape)[1:]}")
    ids = copied_index(samples, train, threshold)
    draws_at = sorted({min(2**k, draws) for k in range(int(math.log2(draws)) + 2)})
    curve = [int(torch.unique(ids[:k][ids[:k] >= 0]).numel()) for k in draws_at]
    found = set(ids[ids >= 0].tolist())
    start = noise[torch.cdist(train, samples).argmin(1)]  # (n, d) the nearest draw per target
    z = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    for _ in range(refine_steps):
        optimizer.zero_grad()
        loss = ((generate(z) - train) ** 2).sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            z.copy_(_sphere(z))
    with torch.no_grad():
        refined = generate(z.detach())
        dist = torch.cdist(refined, train)  # (n, n)
        own = dist.diagonal()
        others = dist.masked_fill(torch.eye(n, dtype=torch.bool), math.inf).min(1).values
        ratio = own / others.clamp_min(1e-12)  # < 1: x_i is the nearest; < 1/3: a copy
    refined_ids = copied_index(refined, train, threshold)
    found |= {i for i in range(n) if int(refined_ids[i]) == i}
    return {"reproduced_draws": curve[-1], "reproduced_search": len(found),
            "draws_curve": curve, "draws_at": draws_at, "targets": n,
            "reproduced_ids": sorted(found), "refined_ratio": ratio.tolist()}
