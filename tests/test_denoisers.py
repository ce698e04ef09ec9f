"""Tests for labkit.denoisers: the Gaussian denoiser against an independent posterior mean, the
local patch denoiser against a brute-force loop and the empirical denoiser, the agreement
measures against direct formulas, and bad inputs rejected."""

import math

import pytest
import torch

from labkit.data import GaussianMixture
from labkit.denoisers import (fit_gaussian, gaussian_denoiser, local_denoiser, paired_distance,
                              relative_mse)
from labkit.process import alpha_sigma
from labkit.scores import empirical_denoiser


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _spd(d, seed=0):
    a = torch.randn(d, d, generator=_gen(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


@pytest.mark.parametrize("t", [0.01, 0.5, 3.0])
def test_gaussian_denoiser_is_the_posterior_mean_of_gaussian_data(t):
    d = 5
    mean = torch.randn(d, generator=_gen(1), dtype=torch.float64)
    cov = _spd(d)
    law = GaussianMixture(mean[None], cov)  # one component: an independent closed form
    x = torch.randn(7, d, generator=_gen(2), dtype=torch.float64) * 2
    torch.testing.assert_close(gaussian_denoiser(x, t, mean, cov), law.denoiser(x, t))


def test_gaussian_denoiser_per_row_times_and_singular_cov():
    d = 4
    train = torch.randn(3, d, generator=_gen(3), dtype=torch.float64)  # rank-2 covariance
    mean, cov = fit_gaussian(train)
    t = torch.tensor([0.1, 1.0, 2.0], dtype=torch.float64)
    x = torch.randn(3, d, generator=_gen(4), dtype=torch.float64)
    out = gaussian_denoiser(x, t, mean, cov)
    for i in range(3):
        a, s = (float(v) for v in alpha_sigma(t[i]))
        direct = mean + a * cov @ torch.linalg.solve(a * a * cov + s * s * torch.eye(d,
                                                     dtype=torch.float64), x[i] - a * mean)
        torch.testing.assert_close(out[i], direct)


def test_fit_gaussian_is_the_moments_of_the_rows():
    train = torch.randn(10, 3, generator=_gen(5), dtype=torch.float64)
    mean, cov = fit_gaussian(train)
    torch.testing.assert_close(mean, train.mean(0))
    torch.testing.assert_close(cov, torch.cov(train.T, correction=0))


def _brute_local(x, t, train, p, equivariant):
    """The local denoiser by explicit loops over pixels and patches."""
    m, c, h, w = x.shape
    a, s = (float(v) for v in alpha_sigma(torch.tensor(t, dtype=torch.float64)))
    r = p // 2
    pad = lambda v: torch.nn.functional.pad(v, (r, r, r, r))  # noqa: E731
    xp, tp = pad(x), pad(train)
    out = torch.zeros_like(x)
    for i in range(m):
        for y in range(h):
            for z in range(w):
                q = xp[i, :, y:y + p, z:z + p]
                logits, centres = [], []
                spots = [(yy, zz) for yy in range(h) for zz in range(w)] if equivariant \
                    else [(y, z)]
                for j in range(train.shape[0]):
                    for yy, zz in spots:
                        patch = tp[j, :, yy:yy + p, zz:zz + p]
                        logits.append(-((q - a * patch) ** 2).sum() / (2 * s * s))
                        centres.append(train[j, :, yy, zz])
                wts = torch.softmax(torch.stack(logits), 0)
                out[i, :, y, z] = (wts[:, None] * torch.stack(centres)).sum(0)
    return out


@pytest.mark.parametrize("equivariant", [True, False])
@pytest.mark.parametrize("p", [1, 3])
def test_local_denoiser_matches_brute_force(p, equivariant):
    train = torch.randn(3, 2, 4, 4, generator=_gen(6), dtype=torch.float64)
    x = torch.randn(2, 2, 4, 4, generator=_gen(7), dtype=torch.float64)
    got = local_denoiser(x, 0.7, train, p, equivariant=equivariant)
    torch.testing.assert_close(got, _brute_local(x, 0.7, train, p, equivariant))


def test_local_denoiser_with_a_whole_image_patch_is_the_empirical_denoiser():
    train = torch.randn(5, 1, 4, 4, generator=_gen(8), dtype=torch.float64)
    x = torch.randn(3, 1, 4, 4, generator=_gen(9), dtype=torch.float64)
    t = torch.tensor([0.05, 0.5, 2.0], dtype=torch.float64)
    got = local_denoiser(x, t, train, 7, equivariant=False)
    want = empirical_denoiser(x.flatten(1), t, train.flatten(1)).reshape(x.shape)
    torch.testing.assert_close(got, want)
    # a smaller patch sees less of the image, so it is a different denoiser
    assert not torch.allclose(local_denoiser(x, t, train, 3, equivariant=False), want)


def test_relative_mse_and_paired_distance_against_direct_formulas():
    a = torch.randn(6, 3, generator=_gen(10), dtype=torch.float64)
    b = torch.randn(6, 3, generator=_gen(11), dtype=torch.float64)
    spread = lambda v: ((v - v.mean(0)) ** 2).sum()  # noqa: E731
    assert relative_mse(a, b) == pytest.approx(float(((a - b) ** 2).sum() / spread(b)))
    assert relative_mse(a, b, symmetric=True) == pytest.approx(
        float(((a - b) ** 2).sum() / (0.5 * spread(a) + 0.5 * spread(b))))
    assert relative_mse(b, b) == 0.0
    unpaired = [float(((a[i] - b[j]) ** 2).sum()) for i in range(6) for j in range(6) if i != j]
    paired = float(((a - b) ** 2).sum(1).mean())
    assert paired_distance(a, b) == pytest.approx(paired / (sum(unpaired) / len(unpaired)))
    assert paired_distance(a, a) == 0.0
    # independent draws: about 1
    big_a = torch.randn(4000, 2, generator=_gen(12), dtype=torch.float64)
    big_b = torch.randn(4000, 2, generator=_gen(13), dtype=torch.float64)
    assert math.isclose(paired_distance(big_a, big_b), 1.0, abs_tol=0.08)


def test_bad_inputs_are_rejected_naming_the_argument():
    x = torch.randn(3, 2, dtype=torch.float64)
    cov = torch.eye(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="mean"):
        gaussian_denoiser(x, 0.1, torch.zeros(3, dtype=torch.float64), cov)
    with pytest.raises(ValueError, match="cov"):
        gaussian_denoiser(x, 0.1, torch.zeros(2, dtype=torch.float64), -cov)
    with pytest.raises(ValueError, match="cov"):
        gaussian_denoiser(x, 0.1, torch.zeros(2, dtype=torch.float64), torch.eye(3))
    with pytest.raises(ValueError, match="t"):
        gaussian_denoiser(x, 0.0, torch.zeros(2, dtype=torch.float64), cov)
    imgs = torch.randn(2, 1, 4, 4)
    for bad in (0, 2, 4, True, 3.0):
        with pytest.raises(ValueError, match="patch_size"):
            local_denoiser(imgs, 0.1, imgs, bad)
    assert local_denoiser(imgs, 0.1, imgs, 3).shape == imgs.shape  # the guard passes good input
    with pytest.raises(ValueError, match="train"):
        local_denoiser(imgs, 0.1, torch.randn(2, 1, 5, 5), 3)
    with pytest.raises(ValueError, match="x"):
        local_denoiser(imgs[0], 0.1, imgs, 3)
    with pytest.raises(ValueError, match="same shape"):
        relative_mse(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="reference"):
        relative_mse(torch.randn(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="a must hold"):
        paired_distance(torch.randn(1, 2), torch.randn(1, 2))
