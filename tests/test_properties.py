"""Property-based tests (hypothesis) of the estimators and metrics against brute force.

Random shapes, times, dtypes, chunk sizes and duplicate patterns; each property compares the
streamed, chunked or deduplicated computation of labkit with the formula written out by
broadcasting in float64. Tensors come from a seeded torch generator (hypothesis draws the
seed), so every failure is reproducible from hypothesis's report. Kept fast: a few dozen
examples each, no deadline (the first call of a torch kernel is slow).
"""

import math

import pytest
import torch

from labkit import data, metrics, process, scores

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FAST = settings(max_examples=30, deadline=None, derandomize=True)

seeds = st.integers(0, 2**31 - 1)
times = st.floats(1e-3, 5.0)
dtypes = st.sampled_from([torch.float32, torch.float64])


def _training_set(seed: int, n: int, d: int, copies: list[int], dtype=torch.float64) -> torch.Tensor:
    """n distinct random points, then copies of the points indexed by ``copies`` (duplicates)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g, dtype=torch.float64)
    extra = base[[c % n for c in copies]] if copies else base[:0]
    return torch.cat([base, extra]).to(dtype)


def _queries(seed: int, train: torch.Tensor, m: int, t: float) -> torch.Tensor:
    """m queries, half of them near diffused training points (where the softmax is peaked)."""
    g = torch.Generator().manual_seed(seed + 1)
    alpha, sigma = process.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    picks = torch.randint(0, train.shape[0], (m,), generator=g)
    near = alpha * train[picks].double() + sigma * torch.randn(m, train.shape[1], generator=g, dtype=torch.float64)
    far = 2 * torch.randn(m, train.shape[1], generator=g, dtype=torch.float64)
    return torch.where((torch.arange(m) % 2 == 0)[:, None], near, far).to(train.dtype)


def _brute_force(x, t, train):
    """log p^_t(x) and the empirical score by broadcasting, in float64."""
    x, train = x.double(), train.double()
    alpha, sigma = process.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    sq = ((x[:, None, :] - alpha * train[None]) ** 2).sum(-1)  # (m, n)
    n, d = train.shape
    log_prob = torch.logsumexp(-sq / (2 * sigma**2), 1) - math.log(n) - 0.5 * d * torch.log(2 * math.pi * sigma**2)
    w = torch.softmax(-sq / (2 * sigma**2), dim=1)  # (m, n)
    return log_prob, (alpha * (w @ train) - x) / sigma**2


@FAST
@given(seed=seeds, n=st.integers(1, 25), d=st.integers(1, 6), m=st.integers(1, 8), t=times,
       chunk=st.one_of(st.none(), st.integers(1, 30)), copies=st.lists(st.integers(0, 100), max_size=6))
def test_empirical_score_and_log_prob_match_brute_force_float64(seed, n, d, m, t, chunk, copies):
    train = _training_set(seed, n, d, copies)
    x = _queries(seed, train, m, t)
    log_prob, score = _brute_force(x, t, train)
    got = scores.empirical_score(x, t, train, chunk_size=chunk)
    assert got.shape == (m, d) and got.dtype == torch.float64
    scale = 1 + score.abs().max().item()
    torch.testing.assert_close(got, score, rtol=1e-8, atol=1e-9 * scale)
    torch.testing.assert_close(scores.empirical_log_prob(x, t, train, chunk_size=chunk), log_prob,
                               rtol=1e-9, atol=1e-8)


@FAST
@given(seed=seeds, n=st.integers(2, 25), d=st.integers(1, 6), m=st.integers(1, 8), t=st.floats(0.05, 5.0),
       chunk=st.integers(1, 30), copies=st.lists(st.integers(0, 100), max_size=6))
def test_empirical_denoiser_float32_agrees_with_float64(seed, n, d, m, t, chunk, copies):
    train = _training_set(seed, n, d, copies)
    x = _queries(seed, train, m, t)
    _, score = _brute_force(x, t, train)
    alpha, sigma = process.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    denoised = (score * sigma**2 + x) / alpha  # Tweedie, float64
    got = scores.empirical_denoiser(x.float(), t, train.float(), chunk_size=chunk)
    assert got.dtype == torch.float32 and got.shape == (m, d)
    spread = 1 + train.abs().max().item()
    # float32 logits carry an absolute error ~ eps * ||x|| ||x_i|| / sigma^2 (the expanded GEMM form)
    tol = 2e-3 * spread * (1 + x.norm(dim=1).max().item() * spread / sigma.item() ** 2 * 1e-3)
    assert (got.double() - denoised).abs().max().item() < tol


@FAST
@given(seed=seeds, n=st.integers(1, 25), d=st.integers(1, 5), m=st.integers(1, 8), t=times,
       chunks=st.tuples(st.integers(1, 30), st.integers(1, 30)), copies=st.lists(st.integers(0, 100), max_size=6))
def test_chunk_size_does_not_change_the_result(seed, n, d, m, t, chunks, copies):
    train = _training_set(seed, n, d, copies)
    x = _queries(seed, train, m, t)
    a, b = (scores.empirical_denoiser(x, t, train, chunk_size=c) for c in chunks)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@FAST
@given(seed=seeds, n=st.integers(2, 40), d=st.integers(1, 6), m=st.integers(1, 10), k=st.integers(1, 3),
       dtype=dtypes, chunk=st.one_of(st.none(), st.integers(1, 12)), copies=st.lists(st.integers(0, 100), max_size=8))
def test_nearest_neighbors_match_cdist(seed, n, d, m, k, dtype, chunk, copies):
    ref = _training_set(seed, n, d, copies, dtype)
    k = min(k, ref.shape[0])
    x = _queries(seed, ref, m, 0.01)
    dist, idx = metrics.nearest_neighbors(x, ref, k=k, chunk_size=chunk)
    assert dist.shape == idx.shape == (m, k) and dist.dtype == dtype
    brute = torch.cdist(x.double(), ref.double())  # (m, n)
    expected = brute.topk(k, dim=1, largest=False).values
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(dist.double(), expected, rtol=tol, atol=tol)
    # the indices point at points at those distances (ties between copies may pick either copy)
    torch.testing.assert_close(brute.gather(1, idx), expected, rtol=tol, atol=tol)


@FAST
@given(seed=seeds, n=st.integers(2, 30), d=st.integers(1, 5), m=st.integers(1, 10),
       copies=st.lists(st.integers(0, 100), max_size=8), threshold=st.sampled_from([1 / 3, 0.5, 1.0]))
def test_memorized_matches_the_rule_on_distinct_points(seed, n, d, m, copies, threshold):
    train = _training_set(seed, n, d, copies)
    g = torch.Generator().manual_seed(seed + 2)
    picks = torch.randint(0, train.shape[0], (m,), generator=g)
    scale = torch.rand(m, 1, generator=g, dtype=torch.float64) * 0.6  # from on a point to far from it
    samples = train[picks] + scale * torch.randn(m, d, generator=g, dtype=torch.float64)
    distinct = torch.unique(train, dim=0)
    two = torch.cdist(samples, distinct).topk(2, dim=1, largest=False).values  # (m, 2)
    assume(((two[:, 0] - threshold * two[:, 1]).abs() > 1e-9).all())  # no knife-edge cases
    expected = two[:, 0] < threshold * two[:, 1]
    assert torch.equal(metrics.memorized(samples, train, threshold), expected)


@FAST
@given(seed=seeds, n=st.integers(1, 30), d=st.integers(1, 5), copies=st.lists(st.integers(0, 100), max_size=10),
       dtype=dtypes)
def test_deduplicate_counts_every_copy(seed, n, d, copies, dtype):
    train = _training_set(seed, n, d, copies, dtype)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(train.shape[0], generator=g)
    train = train[order]  # copies anywhere, not only at the end
    unique, counts = data.deduplicate(train)
    assert unique.shape == (n, d) and int(counts.sum()) == train.shape[0]
    for row, count in zip(unique, counts):
        assert int((train == row).all(1).sum()) == int(count)
    first = [int(torch.nonzero((train == row).all(1))[0]) for row in unique]
    assert first == sorted(first)  # first occurrences, in input order


@FAST
@given(seed=seeds, m=st.integers(1, 300), p=st.floats(0.0, 1.0), level=st.sampled_from([0.5, 0.9, 0.95]),
       binary=st.booleans())
def test_bootstrap_interval_is_an_interval_inside_the_range(seed, m, p, level, binary):
    g = torch.Generator().manual_seed(seed)
    values = (torch.rand(m, generator=g) < p).double() if binary else torch.rand(m, generator=g, dtype=torch.float64)
    lo, hi = metrics.bootstrap_interval(values, level=level, num_resamples=400, generator=g)
    assert values.min().item() - 1e-12 <= lo <= hi <= values.max().item() + 1e-12
    if values.min() == values.max():
        assert lo == hi == pytest.approx(values[0].item())


@FAST
@given(seed=seeds, k=st.integers(1, 5), d=st.integers(1, 4), m=st.integers(1, 6), t=st.floats(0.0, 5.0),
       isotropic=st.booleans())
def test_mixture_score_is_the_gradient_of_its_log_density(seed, k, d, m, t, isotropic):
    g = torch.Generator().manual_seed(seed)
    means = 2 * torch.randn(k, d, generator=g, dtype=torch.float64)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = 0.7 if isotropic else a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)
    weights = torch.rand(k, generator=g, dtype=torch.float64) + 0.1
    gmm = data.GaussianMixture(means.numpy(), cov=cov, weights=(weights / weights.sum()).tolist())
    x = torch.randn(m, d, generator=g, dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(gmm.log_prob(x, t).sum(), x)
    torch.testing.assert_close(gmm.score(x.detach(), t), grad, rtol=1e-8, atol=1e-10)
