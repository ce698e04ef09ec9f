"""Tests for labkit.dit: shapes, patchify round trip, the time mapping, gates, training and
checkpoints of the small diffusion transformer."""

import numpy as np
import pytest
import torch
from scipy import stats

from labkit.dit import (PRESETS, DDPMTime, DiT, DiTConfig, ddpm_time, load_dit, patchify, sample_images,
                        save_dit, train_dit, unpatchify)
from labkit.nets import ScoreMLP
from labkit.process import score_from_noise
from labkit.train import TrainConfig


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _perturbed(config=PRESETS["tiny"], seed=0, scale=0.3):
    """A DiT with random weights everywhere (adaLN-Zero starts as eps = 0, which hides bugs)."""
    model = DiT(config, generator=_gen(seed))
    g = _gen(seed + 100)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("shape,p", [((2, 1, 8, 8), 2), ((3, 3, 32, 32), 4), ((1, 3, 4, 4), 1)])
def test_patchify_round_trip_and_shapes(shape, p):
    x = torch.randn(shape, generator=_gen())
    B, C, H, W = shape
    tokens = patchify(x, p)
    assert tokens.shape == (B, (H // p) * (W // p), p * p * C)
    assert torch.equal(unpatchify(tokens, p, C), x)


def test_patchify_token_order_is_row_major_over_patches():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    tokens = patchify(x, 2)  # (1, 4, 4)
    assert tokens[0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]      # top-left patch
    assert tokens[0, 1].tolist() == [2.0, 3.0, 6.0, 7.0]      # top-right patch
    assert tokens[0, 2].tolist() == [8.0, 9.0, 12.0, 13.0]    # bottom-left patch


@pytest.mark.parametrize("name", ["tiny", "digits"])
def test_forward_shape_and_zero_init(name):
    config = PRESETS[name]
    model = DiT(config, generator=_gen())
    x = torch.randn(3, config.channels, config.image_size, config.image_size, generator=_gen(1))
    out = model(x, torch.tensor([0.01, 0.5, 5.0]))
    assert out.shape == x.shape
    assert torch.equal(out, torch.zeros_like(out))  # adaLN-Zero: the model starts at eps = 0


def test_cifar_preset_shape():
    config = PRESETS["cifar"]
    assert (config.channels, config.image_size, config.num_patches) == (3, 32, 256)
    model = _perturbed(config, scale=0.01)
    out = model(torch.randn(1, 3, 32, 32, generator=_gen()), torch.tensor([0.1]))
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


def test_init_is_deterministic_under_generator():
    a, b = DiT(PRESETS["tiny"], generator=_gen(3)), DiT(PRESETS["tiny"], generator=_gen(3))
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def test_gates_switch_a_head_off():
    """xi[h] = 0 gives the same output as zeroing head h's output-projection columns."""
    model = _perturbed()
    x = torch.randn(4, 1, 4, 4, generator=_gen(1))
    t = torch.full((4,), 0.2)
    attn = model.blocks[0].attn
    hd = attn.head_dim
    with torch.no_grad():
        attn.xi[1] = 0.0
        gated = model(x, t)
        attn.xi[1] = 1.0
        attn.proj.weight[:, hd:2 * hd] = 0.0
        zeroed = model(x, t)
    torch.testing.assert_close(gated, zeroed)


def test_bad_input_is_rejected():
    model = DiT(PRESETS["tiny"])
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.randn(2, 1, 8, 8), torch.ones(2))
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.randn(2, 16), torch.ones(2))
    with pytest.raises(ValueError, match="t has 3 times but there are 2 points"):
        model(torch.randn(2, 1, 4, 4), torch.ones(3))
    with pytest.raises(ValueError, match="t must satisfy t > 0"):
        model(torch.randn(2, 1, 4, 4), torch.tensor([0.1, 0.0]))
    with pytest.raises(ValueError, match="multiple of 4"):
        DiTConfig(hidden=18, num_heads=1)
    with pytest.raises(ValueError, match="patch_size"):
        DiTConfig(image_size=8, patch_size=3)
    with pytest.raises(ValueError, match="num_heads"):
        DiTConfig(hidden=30, num_heads=4)
    with pytest.raises(ValueError, match="heads_per_layer"):
        DiTConfig(depth=2, heads_per_layer=(1, 0))
    with pytest.raises(TypeError, match="config"):
        DiT({"hidden": 16})


def test_dit_and_score_mlp_behave_alike():
    """Issue 12 item 4: float times, NaN input, ``.score`` and ``num_parameters`` as in ScoreMLP."""
    dit = DiT(PRESETS["tiny"], generator=_gen(0))
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=_gen(1)))
    mlp = ScoreMLP(16, 8, 1, generator=_gen(0))
    x = torch.randn(3, 1, 4, 4, generator=_gen(2))
    for net, inputs in ((dit, x), (mlp, x.reshape(3, 16))):
        per_point = net(inputs, torch.full((3,), 0.3))
        torch.testing.assert_close(net(inputs, 0.3), per_point)
        torch.testing.assert_close(net(inputs, torch.tensor(0.3)), per_point)
        torch.testing.assert_close(net.score(inputs, 0.3), score_from_noise(per_point, 0.3))
        with pytest.raises(ValueError, match="contains NaN"):
            net(inputs * float("nan"), 0.3)
        with pytest.raises(ValueError, match="t must be finite"):
            net(inputs, float("nan"))
        assert net.num_parameters(nonzero=True) <= net.num_parameters()
    assert not torch.isnan(dit(x, 0.3)).any()


def test_ddpm_time_matches_the_discrete_schedule():
    betas = np.linspace(1e-4, 0.02, 1000)
    t_expected = -np.log(np.cumprod(1 - betas))
    u = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    t = ddpm_time(u)
    np.testing.assert_allclose(t.numpy(), t_expected[[0, 500, 999]], rtol=1e-10)  # round(0.5*999) = 500
    assert t[0] == pytest.approx(-np.log(1 - 1e-4)) and 10.0 < t[-1] < 10.2
    with pytest.raises(ValueError, match="u must"):
        ddpm_time(torch.tensor([1.5]))


def test_small_time_sampler_follows_beta_08_2():
    """Steps drawn by DDPMTime("small") follow Beta(0.8, 2) (KS test), and mostly small noise."""
    t = DDPMTime("small")(20_000, _gen(), dtype=torch.float64)
    grid = ddpm_time(torch.linspace(0, 1, 1000, dtype=torch.float64))
    steps = torch.searchsorted(grid, t).numpy() / 999  # back to u, on the 1000-step grid
    assert stats.kstest(steps, stats.beta(0.8, 2).cdf).statistic < 0.02
    uniform = DDPMTime("uniform")(20_000, _gen(), dtype=torch.float64)
    assert (t < 1.0).double().mean() > 0.6 > (uniform < 1.0).double().mean()
    torch.testing.assert_close(DDPMTime("small")(5, _gen(7)), DDPMTime("small")(5, _gen(7)))
    with pytest.raises(ValueError, match="kind"):
        DDPMTime("large")


def test_checkpoint_round_trip(tmp_path):
    model = _perturbed()
    x, t = torch.randn(3, 1, 4, 4, generator=_gen(1)), torch.tensor([0.01, 0.1, 1.0])
    save_dit(model, tmp_path / "m.pt", note=torch.tensor(3))
    loaded, extra = load_dit(tmp_path / "m.pt")
    assert loaded.config == model.config and int(extra["note"]) == 3
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, t), model(x, t), rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp"))


def test_train_dit_is_deterministic_and_resumes(tmp_path):
    images = torch.rand(8, 1, 4, 4, generator=_gen(5)) * 2 - 1

    def run(path=None, steps=6, callbacks=()):
        model = DiT(PRESETS["tiny"], generator=_gen(0))
        train_dit(model, images, TrainConfig(steps=steps, batch_size=4, lr=1e-3), generator=_gen(1),
                  checkpoint=path, callbacks=callbacks, eval_at=1, progress=False)
        return model

    def crash_after_step_3(step, model):
        if step == 4:
            raise KeyboardInterrupt

    a, b = run(), run()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ck.pt", callbacks=[crash_after_step_3])  # interrupted run (checkpoint at step 3) ...
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["step"] == 3
    resumed = run(tmp_path / "ck.pt", steps=6)  # ... picked up from its checkpoint
    for pa, pr in zip(a.parameters(), resumed.parameters()):
        torch.testing.assert_close(pa, pr)
    with pytest.raises(ValueError, match="images must have shape"):
        train_dit(a, torch.rand(4, 1, 8, 8), TrainConfig.preset("dit", steps=1))


def test_training_lowers_the_loss():
    images = torch.rand(16, 1, 4, 4, generator=_gen(5)) * 2 - 1
    model = DiT(PRESETS["tiny"], generator=_gen(0))
    history = train_dit(model, images, TrainConfig(steps=150, batch_size=16, lr=3e-3), generator=_gen(1),
                        progress=False)
    assert np.mean(history.loss[-20:]) < 0.8 * np.mean(history.loss[:20])


def test_sample_images_shape_range_and_determinism():
    model = _perturbed(scale=0.05)
    a = sample_images(model, 5, steps=4, generator=_gen(2), batch_size=2)
    b = sample_images(model, 5, steps=4, generator=_gen(2), batch_size=2)
    assert a.shape == (5, 1, 4, 4) and a.abs().max() <= 1
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="num_samples"):
        sample_images(model, 0, steps=4)
