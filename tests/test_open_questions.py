"""Tests for notebook 04's library pieces: windowed head importance (labkit.pruning's registry),
the Jaccard overlap of head sets, and labkit.experiments.open_questions (windows, tiny points,
the declared result sets and claims)."""

import math

import pytest
import torch

from labkit.dit import DDPMTime, DiT, DiTConfig
from labkit.experiments import Experiment
from labkit.experiments.claims import Claim
from labkit.pruning import IMPORTANCE, WINDOWS, WindowTime, head_importance, importance, jaccard

SMALL = DiTConfig(image_size=4, channels=1, patch_size=2, hidden=24, depth=3, num_heads=4)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _model():
    model = DiT(SMALL, generator=_gen(0))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=_gen(1)))
    return model.double()


def test_window_time_draws_inside_its_window_and_uniform_matches_ddpm():
    from labkit.dit import ddpm_time

    for name, (low, high) in WINDOWS.items():
        t = WindowTime(low, high)(500, _gen(2), dtype=torch.float64)
        edges = ddpm_time(torch.tensor([low, high], dtype=torch.float64))
        assert (t >= edges[0]).all() and (t <= edges[1]).all(), name
    torch.testing.assert_close(WindowTime(0, 1)(50, _gen(3)), DDPMTime("uniform")(50, _gen(3)))
    for low, high, name in ((-0.1, 0.5, "low"), (0.2, 1.5, "high"), (0.5, 0.5, "low")):
        with pytest.raises(ValueError, match=name):
            WindowTime(low, high)


def test_windowed_importance_is_registered_and_equals_head_importance():
    model, images = _model(), torch.randn(8, 1, 4, 4, generator=_gen(4), dtype=torch.float64)
    for name, window in WINDOWS.items():
        assert f"window-{name}" in IMPORTANCE
        got = importance(f"window-{name}", model, images, batches=2, batch_size=4,
                         generator=_gen(5))
        want = head_importance(model, images, window=window, batches=2, batch_size=4,
                               generator=_gen(5))
        torch.testing.assert_close(got, want)
    # the uniform window is Algorithm 2 at uniform times, draw for draw
    torch.testing.assert_close(
        importance("window-uniform", model, images, batches=2, batch_size=4, generator=_gen(6)),
        importance("uniform-t", model, images, batches=2, batch_size=4, generator=_gen(6)))
    # different windows weigh the heads differently
    small = importance("window-small", model, images, batches=2, batch_size=4, generator=_gen(7))
    large = importance("window-large", model, images, batches=2, batch_size=4, generator=_gen(7))
    assert not torch.allclose(small, large)
    with pytest.raises(ValueError, match="images"):
        importance("window-medium", model)
    with pytest.raises(ValueError, match="window"):
        head_importance(model, images, window=(0.1,))


def test_jaccard_against_sets():
    assert jaccard({0: [1, 2]}, {"0": [2], 1: [0]}) == pytest.approx(1 / 3)
    assert jaccard({0: [1]}, {0: [1]}) == 1.0
    assert jaccard({0: [1]}, {1: [1]}) == 0.0
    assert jaccard({}, {}) == 1.0
    with pytest.raises(TypeError, match="heads_a"):
        jaccard([0, 1], {})
    with pytest.raises(ValueError, match="heads_b"):
        jaccard({}, {0: [-1]})
    with pytest.raises(ValueError, match="heads_b"):
        jaccard({}, {"x": [1]})


def test_window_bounds_tile_the_schedule():
    from labkit.experiments.open_questions import window_bounds

    small, medium, large = (window_bounds(w) for w in ("small", "medium", "large"))
    assert small[0] == 0 and small[1] == medium[0] and medium[1] == large[0]
    assert math.isinf(large[1]) and math.isinf(window_bounds("all")[1])
    with pytest.raises(ValueError, match="window"):
        window_bounds("tiny")


def test_window_hybrid_brackets_memorization_between_true_and_empirical():
    from labkit.experiments.open_questions import window_hybrid

    rows = {w: window_hybrid(w, 0, n=8, num_samples=300, sample_steps=40)
            for w in ("none", "all", "small")}
    assert rows["all"]["memorization"] > 0.8  # the empirical score copies
    assert rows["none"]["memorization"] == pytest.approx(rows["none"]["null_memorization"],
                                                         abs=0.1)
    assert rows["none"]["t_low"] is None and rows["none"]["t_high"] is None


def test_halves_point_runs_at_a_tiny_size():
    from labkit.experiments.open_questions import halves_point

    row = halves_point(4, 0, width=16, steps=20, num_samples=50, sample_steps=5)
    assert 0 <= row["memorization"] <= 1 and len(row["denoiser_mse"]) == 3
    assert row["sample_distance"] >= 0


def test_dit_points_run_at_a_tiny_size(tmp_path, monkeypatch):
    from labkit.experiments import open_questions as oq

    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    tiny = dict(train_steps=4, finetune_steps=2, importance_batches=1, probe_samples=8,
                first_probe=2)
    row = oq.window_arm(32, 0, "medium", num_samples=16, sample_steps=2, classifier_steps=2,
                        **tiny)
    assert row["method"] == "window-medium importance" and 0 <= row["jaccard_small_t"] <= 1
    assert sum(map(len, row["heads"].values())) == round(0.2 * 16)
    found = oq.search_arm(32, 0, "small-t importance", draws=8, refine_steps=1,
                          search_steps=2, **tiny)
    assert 0 <= found["reproduced_draws"] <= found["reproduced_search"] <= 32
    match = oq.denoiser_match(32, 0, num_inputs=4, times=(0.1, 2.0), patch_sizes=(3,),
                              train_steps=4, probe_samples=8, first_probe=2)
    assert len(match["mse_empirical"]) == 2 and set(match["nearest"]) <= {
        "empirical", "gaussian", "local"}
    with pytest.raises(ValueError, match="window"):
        oq.window_arm(32, 0, "tiny")
    with pytest.raises(ValueError, match="arm"):
        oq.search_arm(32, 0, "magnitude")


def test_open_experiments_and_claims_are_declared():
    from labkit.claims.open_questions import OPEN_CLAIMS
    from labkit.experiments.open_questions import OPEN_EXPERIMENTS
    from labkit.results import resolve

    assert all(isinstance(e, Experiment) for e in OPEN_EXPERIMENTS.values())
    assert all(callable(resolve(e.point_fn)) for e in OPEN_EXPERIMENTS.values())
    assert all(isinstance(c, Claim) and c.notebook == "04" for c in OPEN_CLAIMS)
    ids = [c.id for c in OPEN_CLAIMS]
    assert len(ids) == len(set(ids))
    sets = {c.result_set.split("+")[0] for c in OPEN_CLAIMS}
    assert sets <= set(OPEN_EXPERIMENTS)
    for c in OPEN_CLAIMS:
        if c.family == "primary":
            grid_seeds = {s for g in OPEN_EXPERIMENTS[c.result_set.split("+")[0]].grids
                          for s in (g["seed"] if isinstance(g["seed"], list) else [g["seed"]])}
            assert len(set(c.seeds or grid_seeds) & grid_seeds) >= 8, c.id
