"""Tests for labkit.pruning: gates, Algorithm 2's importance (against finite differences),
selection, structural pruning (against the gated model), baselines and the command line."""

import json

import pytest
import torch

from labkit.dit import DDPMTime, DiT, DiTConfig, load_dit, save_dit
from labkit.pruning import (head_importance, magnitude_importance, masked_heads, prune_heads, random_importance,
                            select_heads)
from labkit.losses import dsm_noise_loss

SMALL = DiTConfig(image_size=4, channels=1, patch_size=2, hidden=24, depth=3, num_heads=4)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _perturbed(config=SMALL, seed=0, scale=0.3):
    """Random weights everywhere: adaLN-Zero's zero init would make every head's gradient 0."""
    model = DiT(config, generator=_gen(seed))
    g = _gen(seed + 100)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model.double()


def _inputs(m=6, seed=1):
    x = torch.randn(m, 1, 4, 4, generator=_gen(seed), dtype=torch.float64)
    t = torch.linspace(0.01, 2.0, m, dtype=torch.float64)
    return x, t


def test_masked_heads_zeroes_gates_and_restores_them():
    model = _perturbed()
    x, t = _inputs()
    before = model(x, t)
    with masked_heads(model, {0: [1, 3], 2: [0]}):
        assert model.blocks[0].attn.xi.tolist() == [1.0, 0.0, 1.0, 0.0]
        assert model.blocks[2].attn.xi.tolist() == [0.0, 1.0, 1.0, 1.0]
        assert not torch.allclose(model(x, t), before)
    assert all(torch.equal(b.attn.xi, torch.ones(4, dtype=torch.float64)) for b in model.blocks)
    torch.testing.assert_close(model(x, t), before)


def test_pruned_model_equals_gated_model_and_is_smaller(tmp_path):
    model = _perturbed()
    heads = {0: [0, 2], 1: [3], 2: [1, 2, 3]}
    x, t = _inputs()
    with masked_heads(model, heads), torch.no_grad():
        gated = model(x, t)
    pruned = prune_heads(model, heads)
    with torch.no_grad():
        torch.testing.assert_close(pruned(x, t), gated, rtol=0, atol=1e-5)
    assert pruned.config.heads_per_layer == (2, 3, 1)
    hd = SMALL.head_dim
    assert model.num_parameters() - pruned.num_parameters() == 6 * 4 * hd * SMALL.hidden + 6 * 3 * hd  # 4 qkv+out rows per head-dim, qkv biases
    assert torch.equal(model.blocks[0].attn.xi, torch.ones(4, dtype=torch.float64))  # model untouched
    save_dit(pruned, tmp_path / "pruned.pt")                                          # valid and saveable
    loaded, _ = load_dit(tmp_path / "pruned.pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded.double()(x, t), gated, rtol=0, atol=1e-5)
    again = prune_heads(pruned, {1: [0]})  # a pruned model prunes again
    assert again.config.heads_per_layer == (2, 2, 1)


def test_importance_matches_finite_differences():
    """With one batch and normalize=False, S(h) = |dL/dxi_h| for that batch's times and noise."""
    model = _perturbed()
    images = torch.randn(5, 1, 4, 4, generator=_gen(3), dtype=torch.float64)
    scores = head_importance(model, images, time_dist="small", batches=1, batch_size=4, normalize=False,
                             generator=_gen(9))
    assert scores.shape == (3, 4) and (scores >= 0).all()

    def loss(layer, head, delta):  # replay the same batch, times and noise
        g = _gen(9)
        idx = torch.randint(5, (4,), generator=g)
        with torch.no_grad():
            model.blocks[layer].attn.xi[head] += delta
            value = dsm_noise_loss(model, images[idx], DDPMTime("small"), generator=g).mean()
            model.blocks[layer].attn.xi[head] -= delta
        return value.item()

    h = 1e-5
    fd = torch.tensor([[abs(loss(l, k, h) - loss(l, k, -h)) / (2 * h) for k in range(4)] for l in range(3)],
                      dtype=torch.float64)
    torch.testing.assert_close(scores, fd, rtol=1e-6, atol=1e-9)  # float64 scores: tighter than float32 allowed


def test_importance_is_layer_normalised_and_deterministic():
    model = _perturbed()
    images = torch.randn(8, 1, 4, 4, generator=_gen(3), dtype=torch.float64)
    a = head_importance(model, images, batches=3, batch_size=4, generator=_gen(1))
    b = head_importance(model, images, batches=3, batch_size=4, generator=_gen(1))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a.pow(2).sum(1), torch.ones(3, dtype=torch.float64))
    u = head_importance(model, images, time_dist="uniform", batches=3, batch_size=4, generator=_gen(1))
    assert not torch.allclose(a, u)
    assert not model.blocks[0].attn.xi.requires_grad
    with pytest.raises(ValueError, match="time_dist"):
        head_importance(model, images, time_dist="late")
    with pytest.raises(ValueError, match="images must have shape"):
        head_importance(model, torch.randn(4, 1, 8, 8, dtype=torch.float64))


def test_importance_of_a_pruned_model_is_nan_padded():
    model = prune_heads(_perturbed(), {1: [0, 1]})
    scores = head_importance(model, torch.randn(4, 1, 4, 4, dtype=torch.float64), batches=1, batch_size=4,
                             generator=_gen())
    assert scores.shape == (3, 4) and torch.isnan(scores[1, 2:]).all() and not torch.isnan(scores[0]).any()


def test_head_scores_keep_the_model_dtype():
    """Issue 12 item 4: a float64 model gets float64 scores (not float32)."""
    images = torch.rand(8, 1, 4, 4, generator=_gen(3), dtype=torch.float64)
    for model in (_perturbed(), _perturbed().float()):
        dtype = next(model.parameters()).dtype
        scores = [head_importance(model, images.to(dtype), batches=1, batch_size=4, generator=_gen()),
                  head_importance(model, images.to(dtype), batches=1, batch_size=4, normalize=False, generator=_gen()),
                  magnitude_importance(model), random_importance(model, _gen())]
        assert all(s.dtype == dtype for s in scores)
    pruned = prune_heads(_perturbed(), {1: [0]})
    assert torch.isnan(magnitude_importance(pruned)[1, 3]) and magnitude_importance(pruned).dtype == torch.float64


def test_prune_heads_accepts_the_string_keys_of_results_json():
    """results.json stores heads as {"0": [...]}: JSON object keys are strings."""
    model = _perturbed()
    heads = {0: [0, 2], 2: [1]}
    from_json = json.loads(json.dumps(heads))
    assert list(from_json) == ["0", "2"]
    a, b = prune_heads(model, heads), prune_heads(model, from_json)
    assert a.config == b.config
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    with masked_heads(model, from_json):
        assert model.blocks[0].attn.xi.tolist() == [0.0, 1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="layer 'first'"):
        prune_heads(model, {"first": [0]})
    with pytest.raises(ValueError, match="layer '1.0'"):
        prune_heads(model, {"1.0": [0]})
    with pytest.raises(ValueError, match="names layer 0 twice"):
        prune_heads(model, {"0": [0], 0: [1]})


def test_select_heads_picks_lowest_and_keeps_one_head_per_layer():
    importance = torch.tensor([[0.1, 0.2, 0.9, 0.8],
                               [0.5, 0.6, 0.7, 0.4],
                               [0.05, 0.06, 0.07, 0.08]])
    assert select_heads(importance, 0.0) == {}
    assert select_heads(importance, 0.25) == {2: [0, 1, 2]}        # the 3 lowest of 12
    heads = select_heads(importance, 0.5)  # 6: layer 2 keeps its last head (0.08) and 0.4 goes instead
    assert heads == {0: [0, 1], 1: [3], 2: [0, 1, 2]}
    with pytest.raises(ValueError, match="ratio"):
        select_heads(importance, 1.0)
    with pytest.raises(ValueError, match="ratio"):
        select_heads(importance, -0.1)
    with pytest.raises(ValueError, match="every layer keeps one head"):
        select_heads(importance, 0.9)
    with pytest.raises(ValueError, match="importance"):
        select_heads(importance[0], 0.2)


def test_prune_heads_rejects_bad_heads():
    model = _perturbed()
    with pytest.raises(ValueError, match="keep at least one"):
        prune_heads(model, {0: [0, 1, 2, 3]})
    with pytest.raises(ValueError, match="unknown heads"):
        prune_heads(model, {0: [4]})
    with pytest.raises(ValueError, match="layer"):
        prune_heads(model, {3: [0]})
    with pytest.raises(ValueError, match="repeats"):
        prune_heads(model, {0: [1, 1]})
    with pytest.raises(TypeError, match="dict"):
        prune_heads(model, [(0, 1)])
    with pytest.raises(TypeError, match="DiT"):
        masked_heads(torch.nn.Linear(2, 2), {}).__enter__()


def test_baselines():
    model = _perturbed()
    with torch.no_grad():  # head 2 of layer 1 gets tiny weights: magnitude pruning must pick it
        attn, hd = model.blocks[1].attn, SMALL.head_dim
        attn.qkv.weight.view(3, 4, hd, -1)[:, 2] *= 1e-3
        attn.proj.weight[:, 2 * hd:3 * hd] *= 1e-3
    magnitude = magnitude_importance(model)
    assert magnitude.shape == (3, 4) and magnitude[1].argmin() == 2
    assert select_heads(magnitude, 1 / 12) == {1: [2]}
    r1, r2 = random_importance(model, _gen(4)), random_importance(model, _gen(4))
    assert torch.equal(r1, r2) and not torch.equal(r1, random_importance(model, _gen(5)))


def test_the_importance_registry_calls_each_method():
    from labkit.dit import PRESETS, DiT
    from labkit.pruning import IMPORTANCE, importance

    model = DiT(PRESETS["tiny"], generator=torch.Generator().manual_seed(0))
    images = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    windows = {"window-small", "window-medium", "window-large", "window-uniform"}
    assert set(IMPORTANCE) == {"small-t", "uniform-t", "magnitude", "random", *windows}
    g = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    for method, time_dist in (("small-t", "small"), ("uniform-t", "uniform")):
        torch.testing.assert_close(importance(method, model, images, batches=2, batch_size=4, generator=g()),
                                   head_importance(model, images, time_dist=time_dist, batches=2, batch_size=4,
                                                   generator=g()))
    torch.testing.assert_close(importance("magnitude", model), magnitude_importance(model))
    torch.testing.assert_close(importance("random", model, generator=g()), random_importance(model, g()))
    with pytest.raises(ValueError, match="method must be one of"):
        importance("gradient", model, images)
    with pytest.raises(ValueError, match="pass images"):
        importance("small-t", model)
