import pytest
import torch

from labkit import data, metrics, sampling, scores


def _gaussian_score(mean, cov):
    """Exact score of N(mean, cov) diffused by the OU process."""
    gmm = data.GaussianMixture(mean[None], cov=cov)
    return gmm.score


@pytest.mark.parametrize("method", ["sde", "ode"])
def test_recovers_gaussian_mean_and_covariance(method):
    mean = torch.tensor([1.0, -0.5], dtype=torch.float64)
    cov = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=torch.float64)
    x = sampling.sample(_gaussian_score(mean, cov), 20_000, 2, steps=200, t_min=1e-3, t_max=10.0,
                        method=method, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(x.mean(0), mean, atol=0.03, rtol=0)
    # at t_min the law is N(alpha mean, alpha^2 cov + sigma^2 I): within 1e-3 of cov
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.03, rtol=0)


def test_empirical_score_memorizes_true_score_does_not():
    g = torch.Generator().manual_seed(0)
    gmm = data.make_gmm(8, 8, generator=g)
    train = gmm.sample(100, generator=g)
    emp = lambda x, t: scores.empirical_score(x, t, train)
    kw = dict(steps=100, t_min=1e-3, t_max=8.0, generator=g)
    x_emp = sampling.sample(emp, 300, 8, **kw)
    x_true = sampling.sample(gmm.score, 300, 8, **kw)
    null = metrics.memorization_ratio(gmm.sample(300, generator=g), train)
    assert metrics.memorization_ratio(x_emp, train) >= 0.9
    assert metrics.memorization_ratio(x_true, train) <= null + 0.03


def test_trajectory_and_determinism():
    score = _gaussian_score(torch.zeros(3), 1.0)
    out, traj, times = sampling.sample(score, 5, 3, steps=10, t_min=0.01, t_max=5.0,
                                       generator=torch.Generator().manual_seed(1), return_trajectory=True)
    assert traj.shape == (11, 5, 3) and times.shape == (11,) and torch.equal(traj[-1], out)
    again = sampling.sample(score, 5, 3, steps=10, t_min=0.01, t_max=5.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


def test_denoise_final_lands_on_training_points():
    train = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], dtype=torch.float64)
    emp = lambda x, t: scores.empirical_score(x, t, train)
    x = sampling.sample(emp, 50, 2, steps=100, t_min=1e-4, t_max=5.0, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(0), denoise_final=True)
    dist = torch.cdist(x, train).min(1).values
    assert dist.max().item() < 1e-6


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="euler"), "method must be one of"),
    (dict(steps=0), "steps"),
    (dict(t_min=0.0), "t_min"),
    (dict(t_min=2.0, t_max=1.0), "t_min must be smaller"),
    (dict(num_samples=-1), "num_samples"),
    (dict(dim=0), "dim"),
    (dict(dtype=torch.int64), "dtype"),
    (dict(score_fn=lambda x, t: x[:, :1]), "score_fn must return a tensor of shape"),
    (dict(score_fn=3), "score_fn must be a callable"),
    (dict(generator="seed"), "generator"),
])
def test_bad_input(kwargs, match):
    args = dict(score_fn=lambda x, t: -x, num_samples=4, dim=2, steps=5, t_min=0.01, t_max=1.0)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        sampling.sample(args.pop("score_fn"), args.pop("num_samples"), args.pop("dim"), **args)


def test_a_device_this_machine_lacks_is_named():
    score = lambda x, t: -x  # noqa: E731
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device cuda requested"):
            sampling.sample(score, 4, 2, steps=3, t_min=1e-2, t_max=1.0, device="cuda")
    with pytest.raises(ValueError, match="device must be a torch device"):
        sampling.sample(score, 4, 2, steps=3, t_min=1e-2, t_max=1.0, device="gpu0")
    assert sampling.sample(score, 4, 2, steps=3, t_min=1e-2, t_max=1.0, device="cpu").shape == (4, 2)
