import numpy as np
import pytest
import torch

from labkit import data, process


def _autograd_score(log_prob, x, t):
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_prob(x, t).sum(), x)
    return grad


@pytest.mark.parametrize("t", [0.0, 1e-3, 0.1, 1.0, 4.0])
def test_score_is_gradient_of_log_prob(gmm64, gen, t):
    x = gmm64.sample(20, generator=gen) + 0.3 * torch.randn(20, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(gmm64.score(x, t), _autograd_score(gmm64.log_prob, x, t), rtol=1e-8, atol=1e-8)


def test_per_point_times(gmm64, gen):
    x = gmm64.sample(4, generator=gen)
    t = torch.tensor([0.0, 0.1, 1.0, 3.0], dtype=torch.float64)
    per_point = gmm64.score(x, t)
    for i in range(4):
        torch.testing.assert_close(per_point[i], gmm64.score(x[i:i + 1], t[i].item())[0])


def test_log_prob_matches_multivariate_normal(gmm64, gen):
    """Against torch.distributions at t = 0.7 (diffused covariance alpha^2 Sigma + sigma^2 I)."""
    t = 0.7
    alpha, sigma = process.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    cov_t = alpha**2 * gmm64.cov + sigma**2 * torch.eye(3, dtype=torch.float64)
    x = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    comps = torch.stack([torch.distributions.MultivariateNormal(alpha * mu, cov_t).log_prob(x) for mu in gmm64.means])
    expected = torch.logsumexp(comps + gmm64.weights.log()[:, None], dim=0)
    torch.testing.assert_close(gmm64.log_prob(x, t), expected)


def test_identity_covariance_diffuses_to_identity(gen):
    gmm = data.make_gmm(4, 5, cov=1.0, generator=gen, dtype=torch.float64)
    x = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    for t in (0.0, 0.5, 3.0):
        pi = gmm.responsibilities(x, t)
        alpha, _ = process.alpha_sigma(t)
        torch.testing.assert_close(gmm.score(x, t), pi @ (alpha * gmm.means) - x)


def test_sample_moments(gmm64):
    x = gmm64.sample(100_000, generator=torch.Generator().manual_seed(0))
    mean = (gmm64.weights[:, None] * gmm64.means).sum(0)
    centered = gmm64.means - mean
    cov = gmm64.cov + (gmm64.weights[:, None, None] * centered[:, :, None] * centered[:, None, :]).sum(0)
    torch.testing.assert_close(x.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.06, rtol=0)


def test_sampling_is_deterministic(gen):
    gmm = data.make_gmm(generator=torch.Generator().manual_seed(0))
    a = gmm.sample(10, generator=torch.Generator().manual_seed(5))
    b = gmm.sample(10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (10, 32) and a.dtype == torch.float32


def test_make_gmm_paper_setting():
    gmm = data.make_gmm(generator=torch.Generator().manual_seed(0))
    assert (gmm.num_components, gmm.dim) == (8, 32)
    assert gmm.trace_cov == pytest.approx(32.0)
    assert gmm.means.std().item() == pytest.approx(2.0, rel=0.15)


@pytest.mark.parametrize("name", ["gmm4", "ring", "moons"])
def test_toys(name, gen):
    x = data.toy_2d(name, 100, generator=gen)
    assert x.shape == (100, 2) and torch.isfinite(x).all()
    assert data.toy_mixture("gmm4").num_components == 4


def test_deduplicate():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    uniq, counts = data.deduplicate(x)
    torch.testing.assert_close(uniq, torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))
    assert counts.tolist() == [3, 2, 1]
    signed_zero = torch.tensor([[0.0, 1.0], [-0.0, 1.0], [0.5, 1.0]])  # -0.0 == 0.0
    assert data.deduplicate(signed_zero)[1].tolist() == [2, 1]
    distinct = torch.randn(50, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    uniq, counts = data.deduplicate(distinct)
    assert torch.equal(uniq, distinct) and (counts == 1).all()
    near = torch.tensor([[0.0, 0.0], [0.05, 0.0], [1.0, 0.0]])
    uniq, counts = data.deduplicate(near, atol=0.1)
    assert uniq.shape == (2, 2) and counts.tolist() == [2, 1]


def test_with_duplicates(gen):
    x = torch.randn(10, 3, generator=gen)
    y = data.with_duplicates(x, 0.5, 3, generator=gen)
    assert y.shape == (10 + 5 * 2, 3)
    uniq, counts = data.deduplicate(y)
    assert uniq.shape[0] == 10 and sorted(counts.tolist()) == [1] * 5 + [3] * 5


def test_array_likes_from_numpy_and_lists(gmm64):
    """Issue 12 item 4: arrays handed over from scikit-learn or numpy are accepted."""
    means, cov, weights = gmm64.means.numpy(), gmm64.cov.numpy(), gmm64.weights.numpy()
    x = torch.randn(5, 3, dtype=torch.float64)
    for gmm in (data.GaussianMixture(means, cov=cov, weights=weights),
                data.GaussianMixture(means, cov=cov.tolist(), weights=weights.tolist()),
                data.GaussianMixture(torch.from_numpy(means), cov=cov, weights=tuple(weights.tolist()))):
        assert gmm.means.dtype == torch.float64 and gmm.means.shape == (3, 3)
        torch.testing.assert_close(gmm.score(x, 0.3), gmm64.score(x, 0.3))
    iso = data.GaussianMixture(means, cov=np.eye(3) * 0.5)
    assert not iso.isotropic or iso.trace_cov == pytest.approx(1.5)
    assert data.GaussianMixture(means, cov=np.float64(0.5)).trace_cov == pytest.approx(1.5)
    assert data.GaussianMixture(means.tolist()).means.dtype == torch.get_default_dtype()  # like torch.tensor
    assert data.GaussianMixture([[0, 1], [2, 3]]).means.dtype == torch.get_default_dtype()  # integers -> floats


@pytest.mark.parametrize("call, match", [
    (lambda: data.GaussianMixture("means"), "means must be"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), cov="big"), "cov must be"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), cov=[1.0, 2.0]), r"cov must be a float or a \(2, 2\)"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), weights="equal"), "weights must be"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), weights=[[0.5, 0.5]]), r"weights must be .*shape \(2,\)"),
    (lambda: data.GaussianMixture(torch.zeros(3)), "means must have shape"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), cov=-1.0), "cov must be a positive"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), cov=torch.eye(3)), r"cov must be a float or a \(2, 2\)"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), cov=torch.tensor([[1.0, 2.0], [2.0, 1.0]])), "positive definite"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), cov=torch.tensor([[1.0, 0.5], [0.0, 1.0]])), "symmetric"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), weights=torch.tensor([0.7, 0.7])), "sum to 1"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), weights=torch.tensor([1.5, -0.5])), "non-negative"),
    (lambda: data.GaussianMixture(torch.zeros(2, 2), weights=torch.tensor([1.0])), "weights must be a tensor of shape"),
    (lambda: data.GaussianMixture(torch.tensor([[float("nan"), 0.0]])), "means contains NaN"),
    (lambda: data.toy_mixture().score(torch.zeros(3, 3), 0.1), "x must have 2 columns"),
    (lambda: data.toy_mixture().score(torch.zeros(3, 2), -0.1), "t must satisfy"),
    (lambda: data.toy_mixture().sample(0), "n must be a positive integer"),
    (lambda: data.make_gmm(dim=0), "dim"),
    (lambda: data.toy_2d("spiral", 10), "name must be one of"),
    (lambda: data.deduplicate(torch.zeros(3, 2), atol=-1.0), "atol"),
    (lambda: data.with_duplicates(torch.zeros(3, 2), 1.5, 2), "fraction"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_one_registry_of_toys_and_point_clouds(gen):
    assert set(data.TOYS) == {"gmm4", "ring", "moons"}
    for name, toy in data.TOYS.items():
        cloud = data.toy_data(name, 50, generator=torch.Generator().manual_seed(3))
        assert cloud.n == 50 and cloud.dim == 2 and cloud.name == name
        assert torch.equal(cloud.points, data.toy_2d(name, 50, generator=torch.Generator().manual_seed(3)))
        assert cloud.sample(7, generator=gen).shape == (7, 2)
        assert (cloud.log_prob is None) == (toy.law is None)
    with pytest.raises(ValueError, match="'moons' is a toy without a closed-form law"):
        data.toy_mixture("moons")
    ring = data.toy_mixture("ring", dtype=torch.float64)
    cloud = data.PointCloud.from_law(ring, 20, generator=gen)
    assert cloud.points.dtype == torch.float64 and cloud.log_prob(cloud.points).shape == (20,)
    assert "PointCloud('points', n=20, dim=2" in repr(cloud)
    assert data.PointCloud([[0, 1], [2, 3]]).points.dtype == torch.float32  # integers become floats
    with pytest.raises(ValueError, match="NaN"):
        data.PointCloud([[0.0, float("nan")]])
