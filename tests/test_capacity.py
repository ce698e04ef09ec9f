"""Tests for labkit.capacity: closed-form Hessians against autograd, width fits, crossing widths,
Lipschitz constants, effective sample size, and a tiny memorization point."""

import math

import pytest
import torch

from labkit import capacity
from labkit.data import GaussianMixture, toy_mixture, with_duplicates
from labkit.scores import empirical_log_prob, empirical_score


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_sample_window_times_in_range_and_shape():
    t = capacity.sample_window_times(1000, 0.01, 0.1, _gen())
    assert t.shape == (1000,) and t.min() >= 0.01 and t.max() <= 0.1
    assert (t < math.sqrt(0.01 * 0.1)).float().mean().item() == pytest.approx(0.5, abs=0.06)  # log-uniform median


@pytest.mark.parametrize("t", [0.01, 0.3])
def test_empirical_hessian_matches_autograd(t):
    train = torch.randn(6, 3, generator=_gen(), dtype=torch.float64)
    x = torch.randn(4, 3, generator=_gen(1), dtype=torch.float64) * 0.5
    closed = capacity.empirical_hessian(x, t, train)
    auto = capacity.autograd_hessian(lambda v: empirical_log_prob(v, t, train), x)
    assert closed.shape == (4, 3, 3)
    torch.testing.assert_close(closed, auto, rtol=1e-6, atol=1e-6 / t)


def test_mixture_hessian_matches_autograd_and_gaussian_limit():
    gmm = GaussianMixture(torch.randn(3, 2, generator=_gen(), dtype=torch.float64) * 2, cov=0.5)
    x = torch.randn(5, 2, generator=_gen(2), dtype=torch.float64)
    for t in (0.05, 1.0):
        closed = capacity.mixture_hessian(x, t, gmm)
        auto = capacity.autograd_hessian(lambda v: gmm.log_prob(v, t), x)
        torch.testing.assert_close(closed, auto, rtol=1e-6, atol=1e-8)
    # one Gaussian N(0, c I): Hess = -I / (alpha^2 c + sigma^2), bounded as t -> 0
    single = GaussianMixture(torch.zeros(1, 2, dtype=torch.float64), cov=0.5)
    h = capacity.mixture_hessian(x, 1e-4, single)
    torch.testing.assert_close(h, -torch.eye(2, dtype=torch.float64).expand(5, 2, 2) / (math.exp(-1e-4) * 0.5 - math.expm1(-1e-4)))


def test_mixture_hessian_rejects_full_covariance():
    gmm = GaussianMixture(torch.zeros(1, 2), cov=torch.tensor([[1.0, 0.2], [0.2, 1.0]]))
    with pytest.raises(ValueError, match="isotropic"):
        capacity.mixture_hessian(torch.zeros(1, 2), 0.1, gmm)


def test_empirical_hessian_bad_input():
    with pytest.raises(ValueError, match="x must have 2 columns"):
        capacity.empirical_hessian(torch.zeros(3, 3), 0.1, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="t must satisfy"):
        capacity.empirical_hessian(torch.zeros(3, 2), -1.0, torch.zeros(4, 2))


def test_lipschitz_constant_of_a_linear_score():
    # score(x) = -x / s2 has Jacobian -I / s2: spectral norm 1 / s2 everywhere
    lip = capacity.lipschitz_constant(lambda x, t: -x / 0.25, torch.randn(7, 3, generator=_gen()), 0.1)
    assert lip.shape == (7,)
    torch.testing.assert_close(lip, torch.full((7,), 4.0))


def test_lipschitz_constant_of_empirical_score_equals_hessian_norm():
    train = torch.randn(5, 2, generator=_gen(), dtype=torch.float64)
    x = torch.randn(3, 2, generator=_gen(3), dtype=torch.float64)
    lip = capacity.lipschitz_constant(lambda v, t: empirical_score(v, t, train), x, 0.05)
    hess = capacity.empirical_hessian(x, 0.05, train)
    torch.testing.assert_close(lip, torch.linalg.matrix_norm(hess, ord=2))


def test_crossing_width_interpolates_in_log_log():
    assert capacity.crossing_width([8, 16, 32], [0.4, 0.2, 0.05], 0.1) == pytest.approx(16 * 2 ** 0.5)
    assert capacity.crossing_width([8, 16], [0.05, 0.01], 0.1) == 8.0
    assert capacity.crossing_width([8, 16], [0.5, 0.3], 0.1) == math.inf
    with pytest.raises(ValueError, match="increasing"):
        capacity.crossing_width([16, 8], [0.5, 0.3], 0.1)
    with pytest.raises(ValueError, match="equal length"):
        capacity.crossing_width([8, 16], [0.5], 0.1)


def test_random_feature_errors_fall_with_width_and_fit_a_smooth_score():
    gmm = toy_mixture("gmm4")
    pts = gmm.sample(64, generator=_gen())
    errors = capacity.random_feature_errors(gmm.score, pts, [4, 16, 64], t_min=0.01, t_max=0.02,
                                            num_fit=3000, num_eval=1000, generator=_gen(1))
    assert len(errors) == 3 and errors[-1] < errors[0] and errors[-1] < 0.1
    stopped = capacity.random_feature_errors(gmm.score, pts, [4, 16, 64, 256], t_min=0.01, t_max=0.02,
                                             num_fit=3000, num_eval=1000, stop_below=0.5, generator=_gen(1))
    assert len(stopped) < 4 and stopped[-1] <= 0.5


def test_random_feature_errors_bad_input():
    gmm = toy_mixture("gmm4")
    pts = gmm.sample(8, generator=_gen())
    with pytest.raises(ValueError, match="increasing"):
        capacity.random_feature_errors(gmm.score, pts, [16, 8], t_min=0.01, t_max=0.02)
    with pytest.raises(ValueError, match="t_min must not exceed"):
        capacity.random_feature_errors(gmm.score, pts, [8], t_min=0.1, t_max=0.02)


def test_fit_point_empirical_needs_more_width_than_true():
    emp = capacity.fit_point(16, "empirical", num_fit=4000, max_width=1024)
    true = capacity.fit_point(16, "true", num_fit=4000, max_width=1024)
    assert true["width_needed"] is not None
    assert emp["width_needed"] is None or emp["width_needed"] > 2 * true["width_needed"]
    assert len(emp["widths"]) == len(emp["errors"])
    with pytest.raises(ValueError, match="target"):
        capacity.fit_point(16, "both")


def test_fit_point_true_law_ignores_n_and_fits_the_mixture_score():
    a = capacity.fit_point(4, "true_law", num_fit=3000, max_width=256)
    b = capacity.fit_point(64, "true_law", num_fit=3000, max_width=256)
    assert a == b and a["width_needed"] is not None and a["widths"][0] == 2


def test_effective_sample_size_falls_with_duplication():
    train = torch.randn(20, 2, generator=_gen())
    assert capacity.effective_sample_size(train) == pytest.approx(20.0)
    dup = with_duplicates(train, 0.5, 5, generator=_gen(1))  # 10 points x5, 10 points x1: 60 rows
    assert dup.shape[0] == 60
    assert capacity.effective_sample_size(dup) == pytest.approx(60**2 / (10 * 25 + 10))
