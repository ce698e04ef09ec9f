"""Tests for labkit.nets: the time-conditioned MLP and the softmax-attention denoisers.

Oracles: the score is -eps/sigma_t by construction; the attention layer built from a training
set equals labkit.scores.empirical_denoiser (and a brute-force posterior mean), and built from
a mixture equals the mixture's Tweedie denoiser from its exact score.
"""

import math

import pytest
import torch

from labkit.data import GaussianMixture, make_gmm
from labkit.nets import MLP_PRESETS, ScoreMLP, SoftmaxAttentionDenoiser, num_parameters
from labkit.process import alpha_sigma, denoiser_from_score
from labkit.scores import empirical_denoiser


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- ScoreMLP

@pytest.mark.parametrize("t", [0.3, torch.tensor(0.3), torch.full((5,), 0.3)])
def test_mlp_shapes_and_time_forms(t):
    net = ScoreMLP(3, width=16, depth=2, generator=seeded())
    net.out.weight.data.normal_(generator=seeded(1))  # make the read-out nonzero
    x = torch.randn(5, 3, generator=seeded(2))
    eps = net(x, t)
    assert eps.shape == (5, 3)
    assert torch.equal(eps, net(x, torch.full((5,), 0.3)))  # scalar t broadcasts


def test_mlp_score_is_minus_noise_over_sigma():
    net = ScoreMLP(4, width=16, depth=2, generator=seeded())
    net.out.weight.data.normal_(generator=seeded(1))
    x, t = torch.randn(6, 4, generator=seeded(2)), torch.logspace(-3, 1, 6)
    _, sigma_t = alpha_sigma(t)
    torch.testing.assert_close(net.score(x, t), -net(x, t) / sigma_t[:, None])


def test_mlp_init_is_deterministic_and_starts_at_zero_noise():
    a, b = ScoreMLP(2, 8, 2, generator=seeded(0)), ScoreMLP(2, 8, 2, generator=seeded(0))
    c = ScoreMLP(2, 8, 2, generator=seeded(1))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.hidden[0].weight, c.hidden[0].weight)
    assert torch.equal(a(torch.randn(3, 2), 0.5), torch.zeros(3, 2))


@pytest.mark.parametrize("embedding, e_out", [("sinusoidal", 32), ("log", 1)])
def test_mlp_parameter_count_formula(embedding, e_out):
    d, w, depth = 5, 24, 3
    net = ScoreMLP(d, w, depth, time_embedding=embedding, embed_dim=32)
    expected = (d * w + w) + (depth - 1) * (w * w + w) + depth * e_out * w + (w * d + d)
    assert net.num_parameters() == num_parameters(net) == expected
    assert net.num_parameters(nonzero=True) == expected - (w * d + d) - depth * w  # zero read-out and biases


def test_mlp_float64_and_gradients():
    net = ScoreMLP(2, 8, 2, generator=seeded()).double()
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    out = net(x, torch.tensor(0.1, dtype=torch.float64))
    assert out.dtype == torch.float64
    net.score(x, 0.1).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_mlp_presets():
    for name in MLP_PRESETS:
        net = ScoreMLP.from_preset(name, dim=3)
        assert net(torch.zeros(2, 3), 1.0).shape == (2, 3)
    with pytest.raises(ValueError, match="name"):
        ScoreMLP.from_preset("huge", dim=3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=0), "dim"), (dict(dim=2, width=-1), "width"), (dict(dim=2, depth=0), "depth"),
    (dict(dim=2, time_embedding="fourier"), "time_embedding"), (dict(dim=2, embed_dim=7), "embed_dim"),
])
def test_mlp_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScoreMLP(**kwargs)


def test_mlp_bad_call():
    net = ScoreMLP(2, 8, 1)
    with pytest.raises(ValueError, match="x_t"):
        net(torch.zeros(3, 4), 0.1)
    with pytest.raises(TypeError, match="x_t"):
        net(torch.zeros(3, 2, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match="t"):
        net(torch.zeros(3, 2), -0.1)
    with pytest.raises(ValueError, match="t"):
        net(torch.zeros(3, 2), torch.ones(4))
    with pytest.raises(TypeError, match="generator"):
        ScoreMLP(2, 8, 1, generator=0)


# ----------------------------------------------------------------------------- attention

def brute_force_posterior_mean(x, t, keys):
    alpha_t, sigma_t = alpha_sigma(torch.as_tensor(t, dtype=x.dtype))
    alpha_t, sigma_t = alpha_t.reshape(-1, 1, 1), sigma_t.reshape(-1, 1, 1)
    sq = ((x[:, None, :] - alpha_t * keys[None]) ** 2).sum(-1, keepdim=True)   # (m, n, 1)
    w = torch.softmax(-sq / (2 * sigma_t**2), dim=1)                            # (m, n, 1)
    return (w * keys[None]).sum(1)                                               # (m, d)


@pytest.mark.parametrize("t", [1e-3, 0.05, 0.5, 3.0])
def test_attention_from_training_set_is_the_empirical_denoiser(t):
    train = 2 * torch.randn(50, 4, generator=seeded(0), dtype=torch.float64)
    x = torch.randn(30, 4, generator=seeded(1), dtype=torch.float64) * 2
    net = SoftmaxAttentionDenoiser.from_training_set(train)
    out = net(x, t)
    assert out.shape == (30, 4)
    torch.testing.assert_close(out, empirical_denoiser(x, t, train), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, brute_force_posterior_mean(x, t, train), atol=1e-5, rtol=1e-5)
    assert net.num_parameters() == 50 * 4


def test_attention_per_point_times_and_float32():
    train = torch.randn(40, 3, generator=seeded(0))
    x = torch.randn(8, 3, generator=seeded(1))
    t = torch.logspace(-1, 0.5, 8)
    net = SoftmaxAttentionDenoiser.from_training_set(train)
    torch.testing.assert_close(net(x, t), empirical_denoiser(x, t, train), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("t", [1e-3, 0.1, 1.0, 4.0])
def test_attention_from_mixture_is_the_mixture_denoiser(t):
    gmm = make_gmm(num_components=8, dim=6, generator=seeded(0), dtype=torch.float64)
    x = gmm.sample(64, generator=seeded(1)) * 0.9
    net = SoftmaxAttentionDenoiser.from_mixture(gmm)
    expected = denoiser_from_score(gmm.score(x, t), x, t)
    torch.testing.assert_close(net(x, t), expected, atol=1e-5, rtol=1e-5)
    assert net.num_parameters() == 8 * 6


def test_attention_from_mixture_other_variance_and_weights():
    means = torch.randn(3, 2, generator=seeded(0), dtype=torch.float64) * 3
    gmm = GaussianMixture(means, cov=0.3, weights=torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    x = torch.randn(20, 2, generator=seeded(1), dtype=torch.float64) * 3
    net = SoftmaxAttentionDenoiser.from_mixture(gmm)
    for t in (0.01, 0.7):
        torch.testing.assert_close(net(x, t), denoiser_from_score(gmm.score(x, t), x, t), atol=1e-5, rtol=1e-5)


def test_attention_score_and_gradient():
    train = torch.randn(10, 2, generator=seeded(0), dtype=torch.float64)
    x = torch.randn(5, 2, generator=seeded(1), dtype=torch.float64)
    net = SoftmaxAttentionDenoiser.from_training_set(train)
    alpha_t, sigma_t = alpha_sigma(0.2)
    expected = (alpha_t * empirical_denoiser(x, 0.2, train) - x) / sigma_t**2
    torch.testing.assert_close(net.score(x, 0.2), expected)
    net(x, 0.2).sum().backward()
    assert net.keys.grad is not None and net.keys.grad.shape == (10, 2)


def test_attention_bad_input():
    with pytest.raises(TypeError, match="keys"):
        SoftmaxAttentionDenoiser([[0.0, 1.0]])
    with pytest.raises(ValueError, match="component_var"):
        SoftmaxAttentionDenoiser(torch.zeros(2, 2), component_var=-1.0)
    with pytest.raises(ValueError, match="weights"):
        SoftmaxAttentionDenoiser(torch.zeros(2, 2), weights=torch.ones(3))
    with pytest.raises(TypeError, match="gmm"):
        SoftmaxAttentionDenoiser.from_mixture(torch.zeros(2, 2))
    anisotropic = GaussianMixture(torch.zeros(2, 2), cov=torch.diag(torch.tensor([1.0, 2.0])))
    with pytest.raises(ValueError, match="isotropic"):
        SoftmaxAttentionDenoiser.from_mixture(anisotropic)
    net = SoftmaxAttentionDenoiser.from_training_set(torch.randn(4, 3))
    with pytest.raises(ValueError, match="x"):
        net(torch.zeros(2, 2), 0.1)
    with pytest.raises(ValueError, match="t"):
        net(torch.zeros(2, 3), 0.0)


def test_attention_parameter_count_grows_with_n_not_k():
    gmm = make_gmm(num_components=4, dim=5, generator=seeded(0))
    counts = [SoftmaxAttentionDenoiser.from_training_set(gmm.sample(n, generator=seeded(n))).num_parameters()
              for n in (10, 100, 1000)]
    assert counts == [50, 500, 5000]
    assert SoftmaxAttentionDenoiser.from_mixture(gmm).num_parameters() == 20
    assert math.isclose(counts[-1] / counts[0], 100)
