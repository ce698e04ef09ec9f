import math

import pytest
import torch

from labkit import process, scores


def _naive_log_prob(x, t, train):
    """Straight from the definition, by broadcasting (the oracle)."""
    alpha, sigma = process.alpha_sigma(torch.as_tensor(t, dtype=x.dtype))
    sq = ((x[:, None, :] - alpha * train[None, :, :]) ** 2).sum(-1)  # (m, n)
    n, d = train.shape
    return torch.logsumexp(-sq / (2 * sigma**2), 1) - math.log(n) - 0.5 * d * torch.log(2 * math.pi * sigma**2)


@pytest.fixture
def problem(gen):
    train = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    x = train[:7] * 0.9 + 0.2 * torch.randn(7, 5, generator=gen, dtype=torch.float64)
    return x, train


@pytest.mark.parametrize("t", [1e-4, 1e-2, 0.3, 3.0])
def test_score_is_gradient_of_log_prob(problem, t):
    x, train = problem
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(scores.empirical_log_prob(xg, t, train).sum(), xg)
    torch.testing.assert_close(scores.empirical_score(x, t, train), grad, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(scores.empirical_log_prob(x, t, train), _naive_log_prob(x, t, train))


def test_chunked_equals_unchunked(problem):
    x, train = problem
    t = torch.linspace(0.01, 1.0, 7, dtype=torch.float64)  # per-point times too
    full = scores.empirical_score(x, t, train)
    for chunk in (1, 3, 16, 40, 1000):
        torch.testing.assert_close(scores.empirical_score(x, t, train, chunk_size=chunk), full)
        torch.testing.assert_close(scores.empirical_log_prob(x, t, train, chunk_size=chunk),
                                   scores.empirical_log_prob(x, t, train))


def test_denoiser_is_softmax_average_and_tweedie(problem):
    x, train = problem
    t = 0.2
    alpha, sigma = process.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    w = torch.softmax(-((x[:, None] - alpha * train[None]) ** 2).sum(-1) / (2 * sigma**2), dim=1)  # (m, n)
    denoised = scores.empirical_denoiser(x, t, train)
    torch.testing.assert_close(denoised, w @ train)
    torch.testing.assert_close(scores.empirical_score(x, t, train), (alpha * denoised - x) / sigma**2)


def test_float32_stable_at_tiny_sigma(gen):
    """sigma_t ~ 1e-3: a raw exp would underflow; float32 must stay finite and match float64."""
    train = torch.randn(300, 16, generator=gen, dtype=torch.float64)
    t = torch.tensor(1e-6, dtype=torch.float64)  # sigma_t ~ 1e-3
    alpha, sigma = process.alpha_sigma(t)
    x = alpha * train[:50] + sigma * torch.randn(50, 16, generator=gen, dtype=torch.float64)
    ref = scores.empirical_score(x, t, train)
    got = scores.empirical_score(x.float(), t, train.float())
    assert torch.isfinite(got).all()
    rel = (got.double() - ref).norm(dim=1) / ref.norm(dim=1)
    assert rel.max().item() < 1e-3
    lp32 = scores.empirical_log_prob(x.float(), t, train.float())
    assert torch.isfinite(lp32).all()
    torch.testing.assert_close(lp32.double(), scores.empirical_log_prob(x, t, train), rtol=1e-4, atol=0.05)


def test_small_t_score_points_back_to_training_point(gen):
    """Near x_i at small t the empirical score is -(x - alpha x_i)/sigma^2 = -z/sigma."""
    train = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    t = torch.tensor(1e-4, dtype=torch.float64)
    alpha, sigma = process.alpha_sigma(t)
    z = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    x = alpha * train + sigma * z
    torch.testing.assert_close(scores.empirical_score(x, t, train), -z / sigma, rtol=1e-6, atol=1e-6)


def test_one_training_point_is_a_gaussian_score():
    train = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    x = torch.tensor([[0.0, 0.0], [2.0, 3.0]], dtype=torch.float64)
    alpha, sigma = process.alpha_sigma(0.5)
    torch.testing.assert_close(scores.empirical_score(x, 0.5, train), (alpha * train - x) / sigma**2)


def test_norm_cache_follows_in_place_changes(gen):
    train = torch.randn(10, 2, generator=gen, dtype=torch.float64)
    x = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    scores.empirical_score(x, 0.1, train)
    train.mul_(2.0)  # must not reuse stale ||x_i||^2
    alpha, sigma = process.alpha_sigma(torch.tensor(0.1, dtype=torch.float64))
    w = torch.softmax(-((x[:, None] - alpha * train[None]) ** 2).sum(-1) / (2 * sigma**2), dim=1)
    torch.testing.assert_close(scores.empirical_denoiser(x, 0.1, train), w @ train)


def _float64_score(x, t, train):
    """The broadcast formula in float64: the oracle for edits torch does not see."""
    x, train = x.double(), train.double()
    alpha, sigma = process.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    w = torch.softmax(-((x[:, None] - alpha * train[None]) ** 2).sum(-1) / (2 * sigma**2), dim=1)  # (m, n)
    return (alpha * (w @ train) - x) / sigma**2


@pytest.mark.parametrize("edit", ["numpy_view", "data_attribute", "shared_storage_view"])
def test_score_sees_edits_torch_does_not_count(gen, edit):
    """Issue 12 item 1: an edit through numpy, ``.data`` or another view leaves ``_version``
    (or ``id``) unchanged; the score must still use the current values."""
    numpy_train = torch.randn(30, 4, generator=gen, dtype=torch.float64).numpy() * 3 + 2
    train = torch.from_numpy(numpy_train)
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64) + 2
    scores.empirical_score(x, 0.5, train)
    version = train._version
    if edit == "numpy_view":
        numpy_train -= numpy_train.mean(0)
    elif edit == "data_attribute":
        train.data.sub_(3)
    else:
        torch.from_numpy(numpy_train).add_(1.5)  # another tensor on the same memory
    assert train._version == version  # torch did not count the edit
    torch.testing.assert_close(scores.empirical_score(x, 0.5, train), _float64_score(x, 0.5, train))
    torch.testing.assert_close(scores.empirical_log_prob(x, 0.5, train),
                               _naive_log_prob(x, 0.5, train))


def test_non_finite_train_is_found_after_an_uncounted_edit(gen):
    train = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    scores.empirical_score(x, 0.5, train)
    train.numpy()[3, 1] = float("nan")
    with pytest.raises(ValueError, match="train contains NaN"):
        scores.empirical_score(x, 0.5, train, chunk_size=7)


def test_switched_score():
    high = lambda x, t: torch.zeros_like(x)
    low = lambda x, t: torch.ones_like(x)
    fn = scores.switched_score(high, low, 0.5)
    x = torch.zeros(2, 2)
    assert fn(x, torch.tensor(0.6)).sum() == 0 and fn(x, torch.tensor(0.4)).sum() == 4


@pytest.mark.parametrize("call, match", [
    (lambda x, tr: scores.empirical_score(x, 0.0, tr), "t must satisfy t > 0"),
    (lambda x, tr: scores.empirical_score(x, float("inf"), tr), "t must be finite"),
    (lambda x, tr: scores.empirical_score(x[:, :2], 0.1, tr), "x must have 3 columns"),
    (lambda x, tr: scores.empirical_score(x, 0.1, tr[:0]), "train must hold at least one point"),
    (lambda x, tr: scores.empirical_score(x, 0.1, tr.float()), "train must have x's dtype"),
    (lambda x, tr: scores.empirical_score(x, 0.1, tr, chunk_size=0), "chunk_size"),
    (lambda x, tr: scores.empirical_score(x * float("nan"), 0.1, tr), "x contains NaN"),
    (lambda x, tr: scores.empirical_denoiser(x, torch.ones(5, dtype=torch.float64), tr), "t has 5 times"),
    (lambda x, tr: scores.empirical_log_prob(x[0], 0.1, tr), r"x must have shape \(m, d\)"),
    (lambda x, tr: scores.switched_score(None, None, 0.1), "high and low"),
    (lambda x, tr: scores.switched_score(lambda x, t: x, lambda x, t: x, 0.0), "tau"),
])
def test_bad_input(call, match):
    x, tr = torch.zeros(4, 3, dtype=torch.float64), torch.ones(6, 3, dtype=torch.float64)
    with pytest.raises((ValueError, TypeError), match=match):
        call(x, tr)
