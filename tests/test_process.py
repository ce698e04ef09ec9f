import math

import pytest
import torch

from labkit import process


@pytest.mark.parametrize("t", [0.0, 1e-6, 0.3, 5.0])
def test_alpha_sigma_closed_form(t):
    alpha, sigma = process.alpha_sigma(t)
    assert alpha.item() == pytest.approx(math.exp(-t / 2), rel=1e-6)
    assert sigma.item() ** 2 == pytest.approx(1 - math.exp(-t), rel=1e-5, abs=1e-12)
    assert (alpha**2 + sigma**2).item() == pytest.approx(1.0, rel=1e-6)


def test_alpha_sigma_keeps_shape_and_dtype():
    t = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    alpha, sigma = process.alpha_sigma(t)
    assert alpha.shape == sigma.shape == (3,) and alpha.dtype == sigma.dtype == torch.float64
    # tiny t: sigma^2 ~ t without cancellation
    _, sigma = process.alpha_sigma(torch.tensor(1e-9))
    assert sigma.item() ** 2 == pytest.approx(1e-9, rel=1e-4)


def test_diffuse_matches_formula_and_is_deterministic():
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    x_t, z = process.diffuse(x0, 0.5, generator=torch.Generator().manual_seed(1))
    alpha, sigma = process.alpha_sigma(0.5)
    torch.testing.assert_close(x_t, alpha * x0 + sigma * z)
    x_t2, _ = process.diffuse(x0, 0.5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x_t, x_t2, rtol=0, atol=0)
    # per-point times broadcast over trailing dimensions, images included
    imgs = torch.zeros(4, 1, 8, 8)
    x_t, z = process.diffuse(imgs, torch.tensor([0.1, 0.2, 0.3, 0.4]))
    assert x_t.shape == z.shape == imgs.shape


def test_diffused_moments():
    """X_t of a point mass at 1 has mean alpha_t and variance sigma_t^2."""
    x0 = torch.ones(200_000, 1, dtype=torch.float64)
    x_t, _ = process.diffuse(x0, 1.0, generator=torch.Generator().manual_seed(0))
    alpha, sigma = process.alpha_sigma(1.0)
    assert x_t.mean().item() == pytest.approx(alpha.item(), abs=5e-3)
    assert x_t.var().item() == pytest.approx(sigma.item() ** 2, rel=1e-2)


def test_time_grid():
    grid = process.time_grid(1e-3, 10.0, 4)
    assert grid.shape == (5,)
    assert grid[0].item() == pytest.approx(10.0) and grid[-1].item() == pytest.approx(1e-3)
    ratios = grid[:-1] / grid[1:]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 10.0))
    lin = process.time_grid(1.0, 2.0, 2, kind="linear")
    torch.testing.assert_close(lin, torch.tensor([2.0, 1.5, 1.0], dtype=torch.float64))


def test_conversions_round_trip():
    g = torch.Generator().manual_seed(0)
    x, s = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    t = torch.linspace(0.01, 2.0, 6)
    torch.testing.assert_close(process.score_from_denoiser(process.denoiser_from_score(s, x, t), x, t), s)
    torch.testing.assert_close(process.score_from_noise(process.noise_from_score(s, t), t), s)
    # Tweedie on a point mass at y: D = y, score = (alpha y - x)/sigma^2
    y = torch.randn(6, 4, generator=g)
    alpha, sigma = process.alpha_sigma(t)
    torch.testing.assert_close(process.score_from_denoiser(y, x, t), (alpha[:, None] * y - x) / sigma[:, None] ** 2)


def test_ou_time_from_alpha_bar():
    t = process.ou_time_from_alpha_bar(torch.tensor([1.0, math.exp(-2.0)]))
    torch.testing.assert_close(t, torch.tensor([0.0, 2.0]))


@pytest.mark.parametrize("call, match", [
    (lambda: process.alpha_sigma(-1.0), "t must"),
    (lambda: process.alpha_sigma(float("nan")), "t must be finite"),
    (lambda: process.alpha_sigma("1"), "t must be a float"),
    (lambda: process.alpha_sigma(torch.zeros(2, 2)), "t must be a scalar"),
    (lambda: process.diffuse([1.0], 0.1), "x0 must be"),
    (lambda: process.diffuse(torch.zeros(3, 2), torch.ones(2)), "t has 2 times"),
    (lambda: process.diffuse(torch.zeros(3, 2), 0.1, generator=1), "generator"),
    (lambda: process.time_grid(1.0, 0.5, 3), "t_min must be smaller"),
    (lambda: process.time_grid(0.0, 1.0, 3), "t_min"),
    (lambda: process.time_grid(0.1, 1.0, 0), "steps"),
    (lambda: process.time_grid(0.1, 1.0, 3, kind="cosine"), "kind"),
    (lambda: process.score_from_noise(torch.zeros(2, 2), 0.0), "t must satisfy"),
    (lambda: process.ou_time_from_alpha_bar(0.0), "alpha_bar"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
