import math

import pytest
import torch

from labkit import losses, process, scores


@pytest.fixture
def setup64(paper_gmm, gen):
    train = paper_gmm.sample(64, generator=gen)
    emp = lambda x, t: scores.empirical_score(x, t, train)
    return paper_gmm, train, emp


def test_dsm_loss_shape_and_closed_form_for_point_mass(gen):
    """One training point: the empirical score is exactly -z/sigma, so its DSM loss is 0."""
    train = torch.randn(1, 3, generator=gen, dtype=torch.float64)
    emp = lambda x, t: scores.empirical_score(x, t, train)
    loss = losses.dsm_loss(emp, train, 0.3, num_noise=5, generator=gen)
    assert loss.shape == (1,) and loss.item() < 1e-18
    # the zero score has loss E||z||^2 / sigma^2 = d / sigma^2
    zero = lambda x, t: torch.zeros_like(x)
    many = torch.randn(4000, 3, generator=gen, dtype=torch.float64)
    _, sigma = process.alpha_sigma(0.3)
    assert losses.dsm_loss(zero, many, 0.3, generator=gen).mean().item() == pytest.approx(3 / sigma.item() ** 2, rel=0.05)


@pytest.mark.parametrize("t", [0.01, 0.1, 1.0])
def test_proposition_4_1(setup64, t):
    """Mean DSM loss of the true score minus that of the empirical score equals the Fisher
    divergence under the empirical law, within Monte Carlo error (independent noise draws)."""
    gmm, train, emp = setup64
    n_noise = 400
    g1, g2, g3 = (torch.Generator().manual_seed(s) for s in (1, 2, 3))
    l_true = losses.dsm_loss(gmm.score, train, t, n_noise, g1)
    l_emp = losses.dsm_loss(emp, train, t, n_noise, g2)
    fisher = losses.loss_gap(gmm.score, train, t, num_noise=n_noise, generator=g3)
    diff = l_true.mean().item() - l_emp.mean().item()
    # standard error of the difference of the two independent DSM means
    se = math.sqrt(l_true.var().item() / len(l_true) / 1 + l_emp.var().item() / len(l_emp))
    se = math.sqrt(se**2 + fisher.stderr**2)
    assert abs(diff - fisher.value) < 4 * se + 1e-9, (diff, fisher, se)
    assert fisher.value > 0


def test_dsm_and_fisher_forms_agree(setup64):
    gmm, train, _ = setup64
    a = losses.loss_gap(gmm.score, train, 0.05, num_noise=200, method="fisher", generator=torch.Generator().manual_seed(0))
    b = losses.loss_gap(gmm.score, train, 0.05, num_noise=200, method="dsm", generator=torch.Generator().manual_seed(1))
    assert abs(a.value - b.value) < 4 * math.hypot(a.stderr, b.stderr)


def test_empirical_score_has_lowest_dsm_loss(setup64):
    """Common noise: the empirical score beats the true score, a shrunk copy of itself and zero."""
    gmm, train, emp = setup64
    candidates = {
        "empirical": emp,
        "true": gmm.score,
        "shrunk": lambda x, t: 0.9 * emp(x, t),
        "mixed": lambda x, t: 0.5 * emp(x, t) + 0.5 * gmm.score(x, t),
        "zero": lambda x, t: torch.zeros_like(x),
    }
    values = {k: losses.dsm_loss(f, train, 0.05, 50, torch.Generator().manual_seed(7)).mean().item()
              for k, f in candidates.items()}
    assert min(values, key=values.get) == "empirical", values


def test_gap_grows_like_d_over_sigma2_at_small_t(setup64):
    gmm, train, _ = setup64
    d = gmm.dim
    for t in (1e-3, 1e-2):
        gap = losses.loss_gap(gmm.score, train, t, num_noise=8, generator=torch.Generator().manual_seed(0))
        _, sigma = process.alpha_sigma(t)
        assert 0.7 < gap.value / (d / sigma.item() ** 2) < 1.3


def test_integrated_losses(setup64):
    gmm, train, emp = setup64
    gap = losses.integrated_loss_gap(gmm.score, train, 1e-3, 1.0, num_times=12, generator=torch.Generator().manual_seed(0))
    # ~ d log(1/t0) at small t0 (the theorem's leading term), within a factor
    assert 0.5 * gmm.dim * math.log(1e3) < gap.value < 2 * gmm.dim * math.log(1e3)
    # trapezoid in log t integrates a known function: l_t of the zero score is d/sigma_t^2
    zero = lambda x, t: torch.zeros_like(x)
    integral = losses.integrated_dsm_loss(zero, train, 0.1, 2.0, num_times=200, num_noise=50,
                                          generator=torch.Generator().manual_seed(0))
    exact = gmm.dim * (math.log(math.expm1(2.0)) - math.log(math.expm1(0.1)))  # int dt / (1 - e^-t)
    assert integral.shape == (64,)
    assert integral.mean().item() == pytest.approx(exact, rel=0.03)


def test_fisher_divergence_shape(setup64):
    gmm, train, emp = setup64
    out = losses.fisher_divergence(emp, gmm.score, train, 0.1)
    assert out.shape == (64,) and (out >= 0).all()
    assert losses.fisher_divergence(emp, emp, train, 0.1).abs().max() == 0


def test_determinism(setup64):
    gmm, train, _ = setup64
    a = losses.dsm_loss(gmm.score, train, 0.1, 3, torch.Generator().manual_seed(3))
    b = losses.dsm_loss(gmm.score, train, 0.1, 3, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("call, match", [
    (lambda f, tr: losses.dsm_loss(f, tr, 0.0), "t must satisfy"),
    (lambda f, tr: losses.dsm_loss(f, tr, torch.ones(3)), "t must be a single time"),
    (lambda f, tr: losses.dsm_loss(f, tr, 0.1, num_noise=0), "num_noise"),
    (lambda f, tr: losses.dsm_loss("score", tr, 0.1), "score_fn must be a callable"),
    (lambda f, tr: losses.dsm_loss(lambda x, t: x[:, :1], tr, 0.1), "score_fn must return a tensor of shape"),
    (lambda f, tr: losses.dsm_loss(f, tr[0], 0.1), "train must have shape"),
    (lambda f, tr: losses.loss_gap(f, tr, 0.1, method="exact"), "method must be one of"),
    (lambda f, tr: losses.integrated_dsm_loss(f, tr, 0.1, 1.0, num_times=1), "num_times must be at least 2"),
    (lambda f, tr: losses.integrated_loss_gap(f, tr, 1.0, 0.1), "t_min must be smaller"),
    (lambda f, tr: losses.fisher_divergence(f, lambda x, t: x[:1], tr, 0.1), "score_b must return"),
])
def test_bad_input(call, match):
    f = lambda x, t: torch.zeros_like(x)
    tr = torch.randn(5, 2)
    with pytest.raises((ValueError, TypeError), match=match):
        call(f, tr)
