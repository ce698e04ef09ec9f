"""Tests for labkit.recovery: the flow map against labkit.sampling's ODE sampler, copied_index
against its definition, the noise search on a generator whose copies are known, and bad inputs
rejected."""

import pytest
import torch

from labkit.recovery import copied_index, dit_generator, flow_map, noise_search
from labkit.sampling import sample


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_flow_map_is_the_ode_sampler_from_the_noise_it_is_given():
    score = lambda x, t: -x / (1 + t)  # noqa: E731
    got = flow_map(score, torch.randn(5, 3, generator=_gen(1), dtype=torch.float64), steps=12,
                   t_min=0.01, t_max=5.0, denoise_final=True)
    want = sample(score, 5, 3, steps=12, t_min=0.01, t_max=5.0, method="ode", generator=_gen(1),
                  dtype=torch.float64, denoise_final=True)
    torch.testing.assert_close(got, want)


def test_flow_map_is_differentiable_in_the_noise():
    z = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    flow_map(lambda x, t: -x, z, steps=3, t_min=0.1, t_max=1.0).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_copied_index_follows_the_one_third_rule():
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    samples = torch.tensor([[0.1, 0.0], [5.0, 0.0], [9.0, 0.5], [0.0, 7.0]])
    assert copied_index(samples, train).tolist() == [0, -1, 1, -1]


def test_noise_search_counts_the_copies_a_known_generator_makes():
    angles = torch.tensor([0.0, 0.5, 1.0, 1.5], dtype=torch.float64) * torch.pi
    train = 3.0 * torch.stack([angles.cos(), angles.sin()], 1)  # four points on a circle
    # maps each noise to the circle: the search can move along it to any training point
    generate = lambda z: 3.0 * z / z.norm(dim=1, keepdim=True)  # noqa: E731
    out = noise_search(generate, train, draws=64, refine_steps=0, generator=_gen(2))
    direct = copied_index(generate(torch.randn(64, 2, generator=_gen(2), dtype=torch.float64)),
                          train)
    assert out["reproduced_draws"] == len(set(direct[direct >= 0].tolist()))
    assert out["draws_at"][-1] == 64 and out["draws_curve"][-1] == out["reproduced_draws"]
    assert out["draws_curve"] == sorted(out["draws_curve"])  # more draws never find fewer
    few = noise_search(generate, train, draws=2, refine_steps=0, generator=_gen(3))
    refined = noise_search(generate, train, draws=2, refine_steps=60, lr=0.1, generator=_gen(3))
    assert few["reproduced_search"] < 4 and refined["reproduced_search"] == 4
    assert max(refined["refined_ratio"]) < 1 / 3
    # a generator that reaches no training point reproduces none, however long the search
    far = lambda z: z * 0 + torch.tensor([100.0, 100.0], dtype=torch.float64)  # noqa: E731
    none = noise_search(far, train, draws=8, refine_steps=3, generator=_gen(4))
    assert none["reproduced_search"] == 0 and none["reproduced_draws"] == 0


def test_dit_generator_maps_noise_to_images_in_range():
    from labkit.dit import PRESETS, DiT

    model = DiT(PRESETS["tiny"], generator=_gen(5))
    generate = dit_generator(model, steps=2)
    out = generate(torch.randn(3, 16, generator=_gen(6)))
    assert out.shape == (3, 16) and out.abs().max() <= 1
    with pytest.raises(TypeError, match="model"):
        dit_generator(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="noise"):
        generate(torch.randn(3, 15))


def test_bad_inputs_are_rejected_naming_the_argument():
    train = torch.randn(4, 2, dtype=torch.float64)
    gen = lambda z: z  # noqa: E731
    assert noise_search(gen, train, draws=2, refine_steps=0)["targets"] == 4  # the guard passes
    for kwargs, name in (({"draws": 0}, "draws"), ({"refine_steps": -1}, "refine_steps"),
                         ({"lr": 0.0}, "lr"), ({"batch_size": 0}, "batch_size"),
                         ({"threshold": 1.5}, "threshold")):
        with pytest.raises(ValueError, match=name):
            noise_search(gen, train, **kwargs)
    with pytest.raises(ValueError, match="train"):
        noise_search(gen, train[:1])
    with pytest.raises(TypeError, match="generate"):
        noise_search("not callable", train)
    with pytest.raises(TypeError, match="score_fn"):
        flow_map(None, train, steps=2, t_min=0.1, t_max=1.0)
    with pytest.raises(ValueError, match="steps"):
        flow_map(gen, train, steps=0, t_min=0.1, t_max=1.0)
