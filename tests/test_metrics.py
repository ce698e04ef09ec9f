import math

import pytest
import torch

from labkit import data, metrics


def _naive_memorized(samples, train, threshold=1 / 3):
    d = torch.cdist(samples.double(), train.double())  # (m, n), independent brute force
    two = d.topk(2, dim=1, largest=False).values
    return two[:, 0] < threshold * two[:, 1]


def test_memorized_agrees_with_brute_force(gen):
    train = torch.randn(300, 6, generator=gen)
    near = train[:100] + 0.01 * torch.randn(100, 6, generator=gen)
    far = torch.randn(200, 6, generator=gen)
    samples = torch.cat([near, far])
    flags = metrics.memorized(samples, train)
    assert torch.equal(flags, _naive_memorized(samples, train))
    assert flags[:100].all() and flags.shape == (300,)
    assert metrics.memorization_ratio(samples, train) == pytest.approx(flags.float().mean().item())


def test_nearest_neighbors_exact(gen):
    x, ref = torch.randn(50, 4, generator=gen), torch.randn(80, 4, generator=gen)
    dist, idx = metrics.nearest_neighbors(x, ref, k=3, chunk_size=7)
    expected = torch.cdist(x, ref).topk(3, dim=1, largest=False)
    torch.testing.assert_close(dist, expected.values)
    assert torch.equal(idx, expected.indices)


def test_threshold_edges(gen):
    train = torch.tensor([[0.0], [3.0]])
    x = torch.tensor([[0.74], [0.76]])  # d1/d2 = 0.74/2.26 < 1/3, 0.76/2.24 > 1/3
    assert metrics.memorized(x, train).tolist() == [True, False]
    assert metrics.memorized(x, train, threshold=1.0).tolist() == [True, True]


def test_duplicates_are_handled(gen):
    train = torch.randn(20, 3, generator=gen)
    dup = torch.cat([train, train[:10]])
    copies = train[:10] + 1e-4
    assert metrics.memorized(copies, dup).all()  # distinct-point rule: still memorized
    assert not metrics.memorized(copies, dup, dedupe=False).any()  # the raw rule never fires


def test_bootstrap_interval_contains_mean(gen):
    flags = (torch.rand(400, generator=gen) < 0.3).double()
    lo, hi = metrics.bootstrap_interval(flags, generator=gen)
    p = flags.mean().item()
    se = math.sqrt(p * (1 - p) / 400)
    assert lo < p < hi and hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_report_with_null_rate(gen):
    gmm = data.make_gmm(8, 8, generator=gen)
    train = gmm.sample(100, generator=gen)
    rep = metrics.memorization_report(train + 1e-3, train, reference=gmm.sample(200, generator=gen), generator=gen)
    assert rep.ratio == 1.0 and rep.null_ratio < 0.05 and "null rate" in str(rep)


def test_quality_measures(gen):
    gmm = data.toy_mixture("gmm4")
    good, other = gmm.sample(500, generator=gen), gmm.sample(500, generator=gen)
    one_mode = gmm.means[0] + 0.5 * torch.randn(500, 2, generator=gen)
    assert metrics.mean_log_likelihood(good, gmm) > metrics.mean_log_likelihood(good * 1.5, gmm)
    cov_good, counts = metrics.mode_coverage(good, gmm)
    assert cov_good == 1.0 and counts.sum() == 500
    assert metrics.mode_coverage(one_mode, gmm)[0] == 0.25
    assert abs(metrics.mmd(good, other)) < 0.01 < metrics.mmd(good, one_mode)
    # W2 is sensitive to the multinomial imbalance of mode masses: same-law values of 0.1-0.4 here
    assert metrics.sliced_wasserstein(good, other, generator=gen) < 0.6 < 1.5 < metrics.sliced_wasserstein(good, one_mode, generator=gen)
    # sliced W2 of a shift by c along every axis is |c| (a translation moves every projection)
    shift = metrics.sliced_wasserstein(good, good + torch.tensor([1.0, 0.0]), num_projections=2000, generator=gen)
    assert shift == pytest.approx(math.sqrt(0.5), rel=0.05)  # E cos^2 = 1/2 in 2-D


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.zeros(1, 2)), "at least two distinct"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.zeros(0, 2)), "train must hold at least one"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.ones(4, 3)), "train must have 2 columns"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.randn(4, 2), threshold=0.0), "threshold must lie in"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.randn(4, 2), threshold=1.5), "threshold must lie in"),
    (lambda: metrics.memorized(torch.full((3, 2), float("nan")), torch.randn(4, 2)), "samples contains NaN"),
    (lambda: metrics.nearest_neighbors(torch.zeros(3, 2), torch.randn(2, 2), k=3), "k must be at most"),
    (lambda: metrics.bootstrap_interval(torch.zeros(0)), "values must be"),
    (lambda: metrics.bootstrap_interval(torch.zeros(3), level=1.0), "level"),
    (lambda: metrics.mean_log_likelihood(torch.zeros(3, 2), "gmm"), "gmm must be"),
    (lambda: metrics.mmd(torch.zeros(1, 2), torch.zeros(3, 2)), "at least two points"),
    (lambda: metrics.mmd(torch.randn(3, 2), torch.randn(3, 2), bandwidth=0.0), "bandwidth"),
    (lambda: metrics.sliced_wasserstein(torch.zeros(3, 2), torch.zeros(3, 2), num_projections=0), "num_projections"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
