"""Tests for labkit.train (the training loop, TrainConfig, Checkpoint) and the loss it is used with,
labkit.losses.dsm_noise_loss with its time samplers.

Oracles: for X_0 ~ N(0, I) the exact noise predictor is eps*(x, t) = sigma_t x with loss
d alpha_t^2; the noise loss is sigma_t^2 times labkit.losses.dsm_loss; same seed -> same
weights; an interrupted and resumed run -> exactly the weights of an uninterrupted one.
"""

import dataclasses
import functools
import warnings

import pytest
import torch
from torch import nn

from labkit.losses import LogUniformTime, UniformTime, dsm_loss, dsm_noise_loss
from labkit.nets import ScoreMLP
from labkit.process import alpha_sigma
from labkit.train import Checkpoint, History, TrainConfig, load_checkpoint, train

TRAIN_ARGS = ("callbacks", "eval_at", "generator", "checkpoint", "progress")


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


class FixedTime:
    def __init__(self, t):
        self.t = t

    def __call__(self, n, generator=None, dtype=torch.float32, device=None):
        return torch.full((n,), self.t, dtype=dtype, device=device)


class GaussianOracle(nn.Module):
    """eps*(x, t) = E[Z | X_t = x] = sigma_t x for X_0 ~ N(0, I)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x_t, t):
        _, sigma_t = alpha_sigma(t)
        return self.scale * sigma_t[:, None] * x_t


class WrongShape(nn.Module):
    def forward(self, x_t, t):
        return x_t[:, :1]


def noise_loss(t_sampler=LogUniformTime(1e-2, 5.0)):
    return functools.partial(dsm_noise_loss, t_sampler=t_sampler)


# ----------------------------------------------------------------------------- samplers, loss

def test_time_samplers_ranges_and_shapes():
    u = UniformTime(0.1, 2.0)(20000, seeded())
    assert u.shape == (20000,) and u.min() >= 0.1 and u.max() <= 2.0
    assert abs(u.mean().item() - 1.05) < 0.02
    v = LogUniformTime(1e-3, 10.0)(20000, seeded(), dtype=torch.float64)
    assert v.dtype == torch.float64 and v.min() >= 1e-3 and v.max() <= 10.0
    assert abs(v.log().mean().item() - 0.5 * (torch.tensor(1e-3).log() + torch.tensor(10.0).log()).item()) < 0.05
    assert torch.equal(LogUniformTime(1e-3, 1.0)(5, seeded(3)), LogUniformTime(1e-3, 1.0)(5, seeded(3)))


@pytest.mark.parametrize("cls", [UniformTime, LogUniformTime])
def test_time_sampler_bad_input(cls):
    with pytest.raises(ValueError, match="t_min"):
        cls(0.0, 1.0)
    with pytest.raises(ValueError, match="t_min"):
        cls(2.0, 1.0)


def test_noise_loss_matches_gaussian_oracle():
    d, t = 4, 0.3
    x0 = torch.randn(40000, d, generator=seeded(0), dtype=torch.float64)
    losses = dsm_noise_loss(GaussianOracle().double(), x0, FixedTime(t), seeded(1))
    assert losses.shape == (40000,)
    alpha_t, _ = alpha_sigma(t)
    expected = d * alpha_t.item() ** 2
    assert abs(losses.mean().item() - expected) < 4 * losses.std().item() / 200


def test_noise_loss_is_sigma_squared_weighted_dsm():
    t = 0.2
    net = ScoreMLP(3, 16, 2, generator=seeded()).double()
    net.out.weight.data.normal_(generator=seeded(5))
    x0 = torch.randn(3000, 3, generator=seeded(1), dtype=torch.float64)
    noise = dsm_noise_loss(net, x0, FixedTime(t), seeded(2)).mean()
    dsm = dsm_loss(net.score, x0, t, num_noise=1, generator=seeded(3)).mean()
    _, sigma_t = alpha_sigma(t)
    assert abs(noise.item() - sigma_t.item() ** 2 * dsm.item()) < 0.05 * noise.item()


def test_noise_loss_bad_input():
    net = ScoreMLP(2, 8, 1)
    with pytest.raises(TypeError, match="model"):
        dsm_noise_loss(lambda x, t: x, torch.zeros(3, 2), FixedTime(0.1))
    with pytest.raises(TypeError, match="x0"):
        dsm_noise_loss(net, [[0.0, 0.0]], FixedTime(0.1))
    with pytest.raises(TypeError, match="t_sampler"):
        dsm_noise_loss(net, torch.zeros(3, 2), 0.1)
    with pytest.raises(ValueError, match="noise prediction"):
        dsm_noise_loss(WrongShape(), torch.zeros(3, 2), FixedTime(0.1))


# ----------------------------------------------------------------------------- the loop

def fit(seed=0, steps=30, **kwargs):
    net = ScoreMLP(2, 16, 2, generator=seeded(100))
    data = torch.randn(50, 2, generator=seeded(7)) * 2
    kwargs = {"batch_size": 16, "lr": 1e-2, "progress": False, **kwargs}
    run = {k: kwargs.pop(k) for k in TRAIN_ARGS if k in kwargs}
    history = train(net, noise_loss(), data, TrainConfig(steps=steps, **kwargs), generator=seeded(seed),
                    **run)
    return net, history


def test_training_reduces_the_loss_toward_the_oracle():
    # All data at the origin: the optimal noise prediction is x_t / sigma_t, with loss 0
    # (an untrained, zero-output network has loss E|Z|^2 = d = 2).
    net = ScoreMLP(2, 32, 2, generator=seeded(0))
    data = torch.zeros(64, 2)
    history = train(net, noise_loss(LogUniformTime(0.05, 2.0)), data,
                    TrainConfig(steps=150, batch_size=64, lr=3e-3), generator=seeded(1), progress=False)
    assert len(history.loss) == 150
    assert abs(history.loss[0] - 2.0) < 0.5
    assert sum(history.loss[-30:]) / 30 < 0.05


def test_same_seed_same_weights_different_seed_different():
    a, _ = fit(seed=0)
    b, _ = fit(seed=0)
    c, _ = fit(seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


class Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    settings = dict(steps=23, weight_decay=0.1, ema_decay=0.9, warmup_steps=5, grad_clip=1.0)
    reference, ref_hist = fit(**settings)

    def crash_at_step_17(step, model):  # a callback: the loss function is part of the fingerprint
        if step == 17:
            raise Interrupt

    path = tmp_path / "ckpt.pt"
    net = ScoreMLP(2, 16, 2, generator=seeded(100))
    data = torch.randn(50, 2, generator=seeded(7)) * 2
    config = TrainConfig(steps=23, batch_size=16, lr=1e-2, weight_decay=0.1, ema_decay=0.9,
                         warmup_steps=5, grad_clip=1.0)
    common = dict(checkpoint=Checkpoint(path, every=5), progress=False)
    with pytest.raises(Interrupt):
        train(net, noise_loss(), data, config, generator=seeded(0), callbacks=[crash_at_step_17], eval_at=1,
              **common)
    assert load_checkpoint(path)["step"] == 15
    assert not (tmp_path / "ckpt.pt.tmp").exists()

    fresh = ScoreMLP(2, 16, 2, generator=seeded(55))  # different init: everything must come from disk
    history = train(fresh, noise_loss(), data, config, generator=seeded(999), **common)
    assert all(torch.equal(p, q) for p, q in zip(fresh.parameters(), reference.parameters()))
    assert all(torch.equal(p, q) for p, q in zip(history.ema.parameters(), ref_hist.ema.parameters()))
    assert history.loss == ref_hist.loss

    loaded = ScoreMLP(2, 16, 2)
    ckpt = load_checkpoint(path, model=loaded, use_ema=True)
    assert ckpt["step"] == 23
    assert all(torch.equal(p, q) for p, q in zip(loaded.parameters(), ref_hist.ema.parameters()))

    again = train(ScoreMLP(2, 16, 2), noise_loss(), data, config, generator=seeded(0), **common)  # already done
    assert again.loss == ref_hist.loss
    with pytest.raises(ValueError, match="checkpoint"):
        train(ScoreMLP(2, 16, 2), noise_loss(), data, dataclasses.replace(config, lr=1e-3),
              generator=seeded(0), **common)


def _checkpointed_run(tmp_path, **overrides):
    settings = dict(net=ScoreMLP(2, 16, 2, generator=seeded(100)), loss=noise_loss(),
                    data=torch.randn(50, 2, generator=seeded(7)), steps=6)
    settings.update(overrides)
    return train(settings["net"], settings["loss"], settings["data"],
                 TrainConfig(steps=settings["steps"], batch_size=16, lr=1e-2), generator=seeded(0),
                 checkpoint=tmp_path / "ckpt.pt", progress=False)


@pytest.mark.parametrize("change, match", [
    (dict(data=torch.randn(50, 2, generator=seeded(7)) * 10), r"data\.sha256"),
    (dict(data=torch.randn(60, 2, generator=seeded(7))), r"data\.shape"),
    (dict(steps=9), r"steps: 6 -> 9"),
    (dict(loss=noise_loss(LogUniformTime(1e-3, 5.0))), r"loss_fn.*t_sampler.*t_min"),
    (dict(loss=noise_loss(UniformTime(1e-2, 5.0))), r"loss_fn.*t_sampler.*UniformTime"),
    (dict(net=ScoreMLP(2, 32, 2)), r"model\.config.*width: 16 -> 32"),
    (dict(net=ScoreMLP(2, 16, 3)), r"model\.config.*depth"),
])
def test_checkpoint_of_another_run_is_refused_with_what_differs(tmp_path, change, match):
    """Issue 12 item 3: a checkpoint must not resume on other data, steps, loss or model."""
    _checkpointed_run(tmp_path)
    again = _checkpointed_run(tmp_path)  # the same run resumes (here: is already done)
    assert len(again.loss) == 6
    with pytest.raises(ValueError, match=match):
        _checkpointed_run(tmp_path, **change)


def test_checkpoint_fingerprint_sees_a_model_of_another_class(tmp_path):
    class OtherMLP(ScoreMLP):
        pass

    _checkpointed_run(tmp_path)
    with pytest.raises(ValueError, match=r"model\.class"):
        _checkpointed_run(tmp_path, net=OtherMLP(2, 16, 2))
    with pytest.raises(ValueError, match=r"model.*width"):
        load_checkpoint(tmp_path / "ckpt.pt", model=ScoreMLP(2, 32, 2))
    load_checkpoint(tmp_path / "ckpt.pt", model=ScoreMLP(2, 16, 2))


def test_callbacks_and_ema():
    seen = []

    def callback(step, model):
        seen.append((step, model))
        return {"norm": sum(p.norm() for p in model.parameters()), "one": 1}

    _, history = fit(steps=10, eval_at=4, callbacks=[callback], ema_decay=0.5)
    assert [e["step"] for e in history.evals] == [0, 4, 8, 10]
    assert all(model is history.ema for _, model in seen)
    steps, values = history.series("norm")
    assert steps == [0, 4, 8, 10] and all(isinstance(v, float) for v in values)
    with pytest.raises(KeyError, match="missing"):
        history.series("missing")
    _, history = fit(steps=5, callbacks=[callback])  # without eval_at: start and end
    assert [e["step"] for e in history.evals] == [0, 5]


def test_full_batch_and_optimizers():
    for name in ("adamw", "adam", "sgd"):
        net, history = fit(steps=5, batch_size=500, optimizer=name, lr=1e-3)
        assert len(history.loss) == 5 and isinstance(history, History)


def test_nan_loss_is_reported():
    def nan_loss(model, batch, generator=None):
        return model(batch, 0.5).sum(1) * float("nan")

    with pytest.raises(FloatingPointError, match="step 1"):
        train(ScoreMLP(2, 8, 1), nan_loss, torch.zeros(4, 2), TrainConfig(steps=3, batch_size=2, lr=1e-3),
              progress=False)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(steps=0), ValueError, "steps"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(optimizer="rmsprop"), ValueError, "optimizer"),
    (dict(ema_decay=1.5), ValueError, "ema_decay"),
    (dict(betas=(0.9, 1.2)), ValueError, "betas"),
    (dict(warmup_steps=-1), ValueError, "warmup_steps"),
    (dict(grad_clip=0.0), ValueError, "grad_clip"),
    (dict(eval_at=0), ValueError, "eval_at"),
    (dict(checkpoint=3), TypeError, "checkpoint path"),
    (dict(generator=3), TypeError, "generator"),
    (dict(callbacks=[3]), TypeError, "callbacks"),
])
def test_train_bad_arguments(kwargs, error, match):
    fields, run = dict(steps=2, batch_size=2, lr=1e-3), dict(progress=False)
    for key, value in kwargs.items():
        (run if key in TRAIN_ARGS else fields)[key] = value
    with pytest.raises(error, match=match):
        train(ScoreMLP(2, 8, 1), noise_loss(), torch.zeros(4, 2), TrainConfig(**fields), **run)


def test_train_bad_model_data_and_loss():
    base = dict(config=TrainConfig(steps=2, batch_size=2, lr=1e-3), progress=False)
    with pytest.raises(TypeError, match="model"):
        train("net", noise_loss(), torch.zeros(4, 2), **base)
    with pytest.raises(TypeError, match="data"):
        train(ScoreMLP(2, 8, 1), noise_loss(), torch.zeros(4, 2, dtype=torch.long), **base)
    with pytest.raises(ValueError, match="data"):
        train(ScoreMLP(2, 8, 1), noise_loss(), torch.full((4, 2), float("nan")), **base)
    with pytest.raises(TypeError, match="loss_fn"):
        train(ScoreMLP(2, 8, 1), "mse", torch.zeros(4, 2), **base)

    def scalar_loss(model, batch, generator=None):
        return model(batch, 0.5).pow(2).mean()

    with pytest.raises(ValueError, match="one loss per sample"):
        train(ScoreMLP(2, 8, 1), scalar_loss, torch.zeros(4, 2), **base)

    def bad_callback(step, model):
        return {"name": "text"}

    with pytest.raises(TypeError, match="numbers"):
        train(ScoreMLP(2, 8, 1), noise_loss(), torch.zeros(4, 2), callbacks=[bad_callback], **base)
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint("/nonexistent/ckpt.pt")


def test_batches_cover_the_data_once_per_epoch():
    seen = []

    def recording_loss(model, batch, generator=None):
        seen.append(batch[:, 0].tolist())
        return model(batch, 0.5).pow(2).sum(1)

    data = torch.arange(8.0).repeat(2, 1).T.contiguous()  # (8, 2): row i is (i, i)
    train(ScoreMLP(2, 8, 1), recording_loss, data, TrainConfig(steps=4, batch_size=4, lr=1e-3), generator=seeded(),
          progress=False)
    assert [len(b) for b in seen] == [4, 4, 4, 4]
    assert sorted(seen[0] + seen[1]) == list(range(8)) and sorted(seen[2] + seen[3]) == list(range(8))
    assert seen[0] + seen[1] != seen[2] + seen[3]  # reshuffled between epochs


def test_adamw_weight_decay_oracle():
    # With a zero gradient AdamW only decays: w_k = w_0 (1 - lr wd)^k.
    def zero_loss(model, batch, generator=None):
        return 0.0 * model(batch, 0.5).sum(1)

    net = ScoreMLP(2, 8, 1, generator=seeded())
    w0 = net.hidden[0].weight.detach().clone()
    train(net, zero_loss, torch.zeros(4, 2), TrainConfig(steps=5, batch_size=4, lr=0.1, weight_decay=0.5),
          progress=False)
    torch.testing.assert_close(net.hidden[0].weight, w0 * (1 - 0.1 * 0.5) ** 5)


def test_ema_oracle():
    net = ScoreMLP(2, 8, 1, generator=seeded())
    net.out.weight.data.normal_(generator=seeded(1))
    before = [p.detach().clone() for p in net.parameters()]
    history = train(net, noise_loss(), torch.randn(4, 2), TrainConfig(steps=1, batch_size=4, lr=1e-2, ema_decay=0.25),
                    generator=seeded(2), progress=False)
    for p0, p1, p_ema in zip(before, net.parameters(), history.ema.parameters()):
        torch.testing.assert_close(p_ema, 0.25 * p0 + 0.75 * p1)
        assert not p_ema.requires_grad


def test_progress_bar_can_be_turned_off(capsys):
    fit(steps=3, progress=True)
    assert "train" in capsys.readouterr().err
    fit(steps=3, progress=False)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- TrainConfig, eval_at

def test_the_keywords_of_labkit_0_2_warn_and_give_the_same_run(tmp_path):
    config = TrainConfig(steps=12, batch_size=16, lr=1e-2, weight_decay=0.1, warmup_steps=3)
    by_config, h1 = fit(steps=12, weight_decay=0.1, warmup_steps=3)
    net = ScoreMLP(2, 16, 2, generator=seeded(100))
    data = torch.randn(50, 2, generator=seeded(7)) * 2
    with pytest.warns(DeprecationWarning, match=r"steps=.*removed in labkit 0\.3") as record:
        h2 = train(net, noise_loss(), data, steps=12, batch_size=16, lr=1e-2, weight_decay=0.1,
                   warmup_steps=3, generator=seeded(0), progress=False)
    assert record[0].filename == __file__  # the warning points at the caller's line
    assert h1.loss == h2.loss
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), by_config.parameters()))
    with pytest.warns(DeprecationWarning):  # a keyword given with a config replaces that field
        h3 = train(ScoreMLP(2, 16, 2, generator=seeded(100)), noise_loss(), data, config, steps=5,
                   generator=seeded(0), progress=False)
    assert h3.loss == h1.loss[:5]
    with pytest.warns(DeprecationWarning):  # eval_every, checkpoint_path, checkpoint_every
        h4 = train(ScoreMLP(2, 16, 2, generator=seeded(100)), noise_loss(), data, config, eval_every=4,
                   callbacks=[lambda step, model: {"one": 1}], checkpoint_path=tmp_path / "a.pt",
                   checkpoint_every=4, generator=seeded(0), progress=False)
    assert [e["step"] for e in h4.evals] == [0, 4, 8, 12] and h4.loss == h1.loss
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(TypeError, match="training needs lr"):
            train(ScoreMLP(2, 8, 1), noise_loss(), data, steps=2, batch_size=2)
        with pytest.raises(TypeError, match=r"unexpected keyword arguments \['stpes'\]"):
            train(ScoreMLP(2, 8, 1), noise_loss(), data, config, stpes=2)
        with pytest.raises(ValueError, match="not both"):
            train(ScoreMLP(2, 8, 1), noise_loss(), data, config, eval_at=2, eval_every=2)
    with pytest.raises(TypeError, match="TrainConfig"):
        train(ScoreMLP(2, 8, 1), noise_loss(), data, {"steps": 2})
    with pytest.raises(TypeError, match="TrainConfig"):
        train(ScoreMLP(2, 8, 1), noise_loss(), data)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(steps=2, batch_size=2, lr=0.0)


def test_named_presets():
    assert TrainConfig.preset("dit", steps=5) == TrainConfig(steps=5, batch_size=64, lr=1e-3)
    assert TrainConfig.preset("fine_tune", steps=5, lr=1e-5).lr == 1e-5
    with pytest.raises(ValueError, match="name"):
        TrainConfig.preset("nope", steps=5)
    with pytest.raises(TypeError):
        TrainConfig.preset("dit")  # steps has no preset


def test_a_checkpoint_of_labkit_0_2_resumes(tmp_path):
    # 0.2 fingerprinted the loss by its old home, labkit.train.dsm_noise_loss
    config, path = TrainConfig(steps=6, batch_size=16, lr=1e-2), tmp_path / "ckpt.pt"
    data = torch.randn(50, 2, generator=seeded(7))
    whole = train(ScoreMLP(2, 16, 2, generator=seeded(1)), noise_loss(), data, config, generator=seeded(0),
                  checkpoint=Checkpoint(path, every=3), progress=False)
    ckpt = torch.load(path, weights_only=True)
    text = repr(ckpt["fingerprint"]["loss_fn"])
    assert "labkit.losses.dsm_noise_loss" in text
    old = eval(text.replace("labkit.losses.", "labkit.train."))
    ckpt.update(fingerprint={**ckpt["fingerprint"], "loss_fn": old}, step=3,
                history={"loss": whole.loss[:3], "evals": []})
    torch.save(ckpt, path)
    resumed = train(ScoreMLP(2, 16, 2, generator=seeded(1)), noise_loss(), data, config,
                    generator=seeded(0), checkpoint=path, progress=False)
    assert len(resumed.loss) == 6  # resumed from step 3, not refused


def test_dit_and_fine_tune_take_a_train_config():
    from labkit.dit import PRESETS, DiT, train_dit
    from labkit.pruning import fine_tune

    images = torch.rand(6, 1, 4, 4, generator=seeded(3)) * 2 - 1

    def run(*args, **kwargs):
        model = DiT(PRESETS["tiny"], generator=seeded(1))
        return train_dit(model, images, *args, generator=seeded(2), progress=False, **kwargs).loss

    with pytest.warns(DeprecationWarning, match="train_dit"):
        old = run(steps=4, batch_size=3)
    assert old == run(TrainConfig.preset("dit", steps=4, batch_size=3))
    assert old == run(TrainConfig(steps=4, batch_size=3, lr=1e-3))
    with pytest.raises(TypeError, match="TrainConfig"):
        run()
    model = DiT(PRESETS["tiny"], generator=seeded(1))
    a = fine_tune(model, images, TrainConfig.preset("fine_tune", steps=3), generator=seeded(5))
    with pytest.warns(DeprecationWarning, match="fine_tune"):
        b = fine_tune(DiT(PRESETS["tiny"], generator=seeded(1)), images, steps=3, generator=seeded(5))
    assert a.loss == b.loss


class CountingProbe:
    """A stateful evaluation: draws from its own generator (checkpointed with the run)."""

    def __init__(self, crash_at=None):
        self.generator = seeded(42)
        self.calls = 0
        self.crash_at = crash_at

    def __call__(self, step, model):
        if step == self.crash_at:
            raise Interrupt
        self.calls += 1
        noise = torch.randn(4, 2, generator=self.generator)
        return {"value": model(noise, 0.5).square().mean(), "calls": self.calls}

    def state_dict(self):
        return {"generator": self.generator.get_state(), "calls": self.calls}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])
        self.calls = state["calls"]


@pytest.mark.parametrize("eval_at", [5, [0, 3, 7, 11, 16, 20]])
def test_a_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_curve(tmp_path, eval_at):
    data = torch.randn(40, 2, generator=seeded(7))
    common = dict(config=TrainConfig(steps=20, batch_size=8, lr=1e-2), eval_at=eval_at, progress=False)
    whole = train(ScoreMLP(2, 16, 2, generator=seeded(1)), noise_loss(), data, generator=seeded(0),
                  callbacks=[CountingProbe()], **common)
    path = tmp_path / "ckpt.pt"
    with pytest.raises(Interrupt):  # killed at step 16, after the checkpoint of step 12
        train(ScoreMLP(2, 16, 2, generator=seeded(1)), noise_loss(), data, generator=seeded(0),
              callbacks=[CountingProbe(crash_at=15 if eval_at == 5 else 16)],
              checkpoint=Checkpoint(path, every=6), **common)
    assert load_checkpoint(path)["step"] == 12
    resumed = train(ScoreMLP(2, 16, 2, generator=seeded(9)), noise_loss(), data, generator=seeded(9),
                    callbacks=[CountingProbe()], checkpoint=Checkpoint(path, every=6), **common)
    assert resumed.evals == whole.evals and resumed.loss == whole.loss
    expected = [0, 5, 10, 15, 20] if eval_at == 5 else eval_at
    assert [e["step"] for e in whole.evals] == expected
    assert [e["calls"] for e in whole.evals] == list(range(1, len(expected) + 1))


@pytest.mark.parametrize("eval_at, match", [
    (0, "eval_at must be a positive"),
    (True, "eval_at must be a positive int period or a collection"),
    ("10", "eval_at must hold integer steps"),
    ([0, 5, 11], r"in \[0, steps=10\], got \[11\]"),
    ([-1, 5], r"got \[-1\]"),
    ([2.5], "integer steps"),
    (object(), "eval_at must be a positive int period or a collection"),
])
def test_eval_at_bad_values_are_named(eval_at, match):
    with pytest.raises(ValueError, match=match):
        train(ScoreMLP(2, 8, 1), noise_loss(), torch.zeros(4, 2), TrainConfig(steps=10, batch_size=2, lr=1e-3),
              eval_at=eval_at, callbacks=[lambda s, m: None], progress=False)


def test_data_of_another_dtype_than_the_model_is_named():
    net = ScoreMLP(2, 8, 1)
    x64 = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="data is torch.float64 but the model's parameters are torch.float32"):
        train(net, noise_loss(), x64, TrainConfig(steps=2, batch_size=2, lr=1e-3), progress=False)
    with pytest.raises(TypeError, match="x_t is torch.float64 but this ScoreMLP's weights are torch.float32"):
        net(x64, 0.5)
    assert net.double()(x64, 0.5).dtype == torch.float64
    train(net, noise_loss(), x64, TrainConfig(steps=2, batch_size=2, lr=1e-3), progress=False)
