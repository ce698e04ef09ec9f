"""labkit.experiments: the evaluation grid and the exact prefix property of training curves,
the declared training-time rules, the power-law fit, the Fig. 2 labels and the Table 1 helpers."""

import math

import numpy as np
import pytest
import torch

from labkit import experiments
from labkit.experiments import format_table


def test_eval_steps_are_a_geometric_grid_whose_prefixes_agree():
    long, short = experiments.eval_steps(16000), experiments.eval_steps(2000)
    assert long[0] == 0 and long[-1] == 16000 and short[-1] == 2000
    assert long[: len(short)] == short  # the 2000-step grid is a prefix of the 16000-step one
    ratios = np.array(long[2:-1]) / np.array(long[1:-2])
    assert np.allclose(ratios, 2 ** 0.5, atol=0.01)
    with pytest.raises(ValueError, match="steps"):
        experiments.eval_steps(0)


def test_mixture_curve_of_a_shorter_run_is_the_prefix_of_a_longer_one():
    kw = dict(dim=2, n=8, width=8, depth=1, batch_size=16, num_samples=48, sample_steps=6, mixture="gmm4",
              first_eval=40, seed=1)
    long, short = experiments.mixture_curve(steps=160, **kw), experiments.mixture_curve(steps=80, **kw)
    k = len(short["steps"])
    assert long["steps"][:k] == short["steps"]
    for key in ("memorization", "log_likelihood", "train_loss"):
        assert long[key][:k] == short[key]
    assert long["null_memorization"] == short["null_memorization"]
    other = experiments.mixture_curve(steps=80, **{**kw, "seed": 2})
    assert other["log_likelihood"] != short["log_likelihood"]
    with pytest.raises(ValueError, match="dim must be 2"):
        experiments.mixture_curve(steps=10, **{**kw, "dim": 3})


def test_crossing_step_interpolates_in_log_step():
    steps = [0, 100, 400]
    assert experiments.crossing_step(steps, [0.0, 0.0, 1.0], 0.5) == pytest.approx(200.0)
    assert experiments.crossing_step(steps, [0.0, 0.2, 0.3], 0.5) is None
    assert experiments.crossing_step(steps, [0.9, 0.2, 0.3], 0.5) == 0.0
    assert experiments.crossing_step(steps, [0.0, 0.6, 0.3], 0.5) == 100.0  # from step 0: no log


def test_training_times_apply_the_declared_rules():
    row = {"steps": [0, 100, 200, 400], "reference_log_likelihood": -3.0, "null_memorization": 0.1,
           "log_likelihood": [-50.0, -3.5, -3.1, -3.0], "memorization": [0.0, 0.1, 0.15, 0.3]}
    times = experiments.training_times(row)
    gap_cross = math.exp(math.log(100) + (0.25 / 0.4) * math.log(2))  # gap -0.5 -> -0.1 crosses -0.25
    assert times["tau_gen"] == pytest.approx(gap_cross)
    assert times["tau_mem"] == pytest.approx(math.exp(math.log(200) + (0.05 / 0.15) * math.log(2)))
    assert experiments.training_times({**row, "memorization": [0.0] * 4})["tau_mem"] is None


@pytest.mark.filterwarnings("ignore:labkit.experiments.stats.power_law is deprecated")
def test_power_law_recovers_a_known_slope_and_needs_enough_points():
    with pytest.warns(DeprecationWarning, match=r"use labkit\.experiments\.censored_power_law.*0\.3"):
        experiments.power_law([16, 32, 64], [1.0, 2.0, 4.0])
    ns = [16, 16, 32, 32, 64, 64, 128, 128]
    rng = np.random.default_rng(0)
    taus = [5.0 * n**1.0 * math.exp(rng.normal(0, 0.05)) for n in ns]
    fit = experiments.power_law(ns, taus)
    assert fit["lo"] < 1.0 < fit["hi"] and abs(fit["slope"] - 1) < 0.1
    assert experiments.power_law(ns, [None, *taus[1:]])["points"] == 7  # censored points are left out
    with pytest.raises(ValueError, match="at least 3"):
        experiments.power_law([16, 32], [1.0, 2.0])


@pytest.mark.filterwarnings("ignore:labkit.experiments.stats.regime is deprecated")
def test_regime_labels():
    base = {"reference_log_likelihood": -3.0, "null_memorization": 0.1}
    with pytest.warns(DeprecationWarning, match=r"use labkit\.experiments\.label.*0\.3"):
        experiments.regime({**base, "log_likelihood": [-5.0], "memorization": [0.0]})
    assert experiments.regime({**base, "log_likelihood": [-5.0], "memorization": [0.0]}) == "failing"
    assert experiments.regime({**base, "log_likelihood": [-3.2], "memorization": [0.15]}) == "generalizing"
    assert experiments.regime({**base, "log_likelihood": [-3.2], "memorization": [0.5]}) == "memorizing"
    assert experiments.regime({**base, "log_likelihood": [-3.2], "memorization": [0.3]}) == "-"
    assert experiments.regime({**base, "log_likelihood": -3.2, "memorization": 0.5}) == "memorizing"


def test_registered_experiments_expand_to_valid_configs():
    from labkit.results import _configs

    for name in experiments.EXPERIMENTS:
        spec, configs = _configs(name)
        assert configs and spec.count(":") == 1
    with pytest.raises(ValueError, match="must be one of"):
        experiments.experiment("fig9")


def test_format_table_reports_mean_and_std():
    results = {"original": [{"precision": 0.5, "recall": 0.1, "memorization": 80.0, "fd": 2.0, "params": 10},
                            {"precision": 0.7, "recall": 0.3, "memorization": 60.0, "fd": 4.0, "params": 10}]}
    table = format_table(results)
    assert "| original | 0.60 +- 0.14 | 0.20 +- 0.14 | 70.00 +- 14.14 | 3.00 +- 1.41 | 10 |" in table
    assert "0.39 / 0.08 / 73.82 / 15.47" in table




def test_paper_grid_matches_the_command_line_defaults():
    grid = experiments.paper_grid("fig3a_size_n")
    assert grid["steps"] == 20000 and grid["dim"] == 32 and "device" not in grid
    with pytest.raises(ValueError, match="must be one of"):
        experiments.paper_grid("fig9")






def test_memorization_point_tiny_run_is_deterministic():
    kwargs = dict(dim=2, n=8, width=16, depth=2, steps=30, batch_size=32, num_samples=64,
                  sample_steps=10, mixture="gmm4", seed=3)
    a = experiments.memorization_point(**kwargs)
    b = experiments.memorization_point(**kwargs)
    assert a == b
    assert 0.0 <= a["memorization"] <= 1.0 and a["n_total"] == 8
    assert set(a) >= {"memorization", "null_memorization", "log_likelihood", "params", "train_loss"}
    with pytest.raises(ValueError, match="dim must be 2"):
        experiments.memorization_point(**{**kwargs, "dim": 3})
    dup = experiments.memorization_point(**{**kwargs, "duplicate_fraction": 0.5, "duplicate_copies": 3,
                                         "keep_samples": True})
    assert dup["n_total"] == 16 and len(dup["samples"]) == 64 and len(dup["train"]) == 16


TINY_TABLE1 = dict(n=12, train_steps=40, batch_size=12, finetune_steps=2,
                   num_samples=8, sample_steps=3, importance_batches=1, classifier_steps=3, probe_samples=8,
                   first_probe=10, sweep_ratios=[0.2])


def test_table1_seed_runs_every_arm_and_its_probe_prefix_is_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    row = experiments.table1_seed(seed=1, **TINY_TABLE1)
    assert set(row["arms"]) == set(experiments.METHODS)
    assert list(row["sweep"]) == ["small-t importance", "random"] and len(row["sweep"]["random"]) == 1
    assert row["probe_steps"] == experiments.eval_steps(40, 10, 1)
    assert all(0 <= m <= 100 for m in row["probe_memorization"])
    again = experiments.table1_seed(seed=1, **TINY_TABLE1)  # from the cache: same numbers
    assert {k: v for k, v in again.items() if k != "wall_s"} == {k: v for k, v in row.items() if k != "wall_s"}
    short = experiments.table1_seed(seed=1, **{**TINY_TABLE1, "train_steps": 20}, curve_only=True)
    k = len(short["probe_steps"])
    assert set(short) == {"probe_steps", "probe_memorization", "null_memorization"}
    assert short["probe_memorization"] == row["probe_memorization"][:k]


def test_seed_interval_is_a_t_interval():
    mean, lo, hi = experiments.seed_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hi - mean == pytest.approx(4.302653 * 1.0 / 3**0.5, rel=1e-5)
    assert experiments.seed_interval([5.0]) == (5.0, 5.0, 5.0)
    with pytest.raises(ValueError, match="finite"):
        experiments.seed_interval([1.0, float("nan")])


def test_paired_difference_pairs_on_the_seed_and_gives_a_verdict():
    rows = [{"seed": s, "width": w, "m": m} for s, (a, b) in enumerate([(0.5, 0.1), (0.6, 0.2), (0.7, 0.2)])
            for w, m in ((256, a), (16, b))]
    diff = experiments.paired_difference(rows, "m", {"width": 256}, {"width": 16})
    assert diff["seeds"] == [0, 1, 2] and diff["mean"] == pytest.approx(0.433333, rel=1e-5)
    assert diff["verdict"] == "positive"
    assert experiments.paired_difference(rows, "m", {"width": 16}, {"width": 256})["verdict"] == "negative"
    noisy = rows + [{"seed": 3, "width": 256, "m": 0.0}, {"seed": 3, "width": 16, "m": 0.9}]
    assert experiments.paired_difference(noisy, "m", {"width": 256}, {"width": 16})["verdict"] == "unresolved"
    with pytest.raises(ValueError, match="no seed"):
        experiments.paired_difference(rows, "m", {"width": 64}, {"width": 16})
    end = experiments.at_end([{"memorization": [0.1, 0.4], "log_likelihood": [-9.0, -3.0], "n": 4}])
    assert end[0]["memorization"] == 0.4 and end[0]["n"] == 4


class Killed(Exception):
    pass


CURVE = dict(dim=2, n=8, width=8, depth=1, batch_size=16, num_samples=48, sample_steps=6, mixture="gmm4",
             first_eval=40, steps=160, seed=1)


def test_mixture_curve_killed_during_training_resumes_to_the_uninterrupted_curve(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "whole"))
    whole = experiments.mixture_curve(**CURVE)
    assert whole["steps"] == [0, 40, 57, 80, 113, 160]
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "killed"))
    probe = experiments.mixtures._CurveProbe.__call__

    def killed_at_113(self, step, net):  # after the checkpoint of step 112 (every 16 steps)
        if step == 113:
            raise Killed
        return probe(self, step, net)

    monkeypatch.setattr(experiments.mixtures._CurveProbe, "__call__", killed_at_113)
    with pytest.raises(Killed):
        experiments.mixture_curve(**CURVE)
    (checkpoint,) = (tmp_path / "killed").rglob("train.pt")
    assert torch.load(checkpoint, weights_only=True)["step"] == 112
    monkeypatch.setattr(experiments.mixtures._CurveProbe, "__call__", probe)
    resumed = experiments.mixture_curve(**CURVE)
    assert {k: v for k, v in resumed.items() if k != "wall_s"} == \
        {k: v for k, v in whole.items() if k != "wall_s"}
    assert not checkpoint.exists()  # a finished curve leaves no checkpoint behind


def test_table1_seed_killed_during_base_training_resumes_to_the_uninterrupted_probe(tmp_path, monkeypatch):
    from labkit.experiments import table1

    kw = dict(TINY_TABLE1, seed=0, curve_only=True)
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "whole"))
    whole = experiments.table1_seed(**kw)
    assert whole["probe_steps"] == [0, 10, 20, 40]
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "killed"))
    calls, sample_images = [], table1.sample_images

    def killed_at_third_probe(*args, **kwargs):  # the probe of step 20, after the step-16 checkpoint
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return sample_images(*args, **kwargs)

    monkeypatch.setattr(table1, "sample_images", killed_at_third_probe)
    with pytest.raises(Killed):
        experiments.table1_seed(**kw)
    (checkpoint,) = (tmp_path / "killed").rglob("base_train.pt")
    assert torch.load(checkpoint, weights_only=True)["step"] == 16
    monkeypatch.setattr(table1, "sample_images", sample_images)
    resumed = experiments.table1_seed(**kw)
    assert resumed == whole
    assert experiments.table1_seed(**kw) == whole  # and the cached base holds the whole curve


# ----------------------------------------------------------------------------- your own data

TINY = dict(width=8, depth=1, batch_size=16, num_samples=32, sample_steps=5, first_eval=20, steps=40)


def test_every_protocol_takes_every_registered_toy():
    from labkit.data import TOYS

    assert experiments.MIXTURES == ("paper", *TOYS) and {"gmm4", "ring", "moons"} <= set(TOYS)
    for name in TOYS:
        row = experiments.mixture_curve(dim=2, n=8, mixture=name, **TINY)
        assert row["steps"] == [0, 20, 28, 40] and len(row["memorization"]) == 4
        assert "null_memorization" in row  # every toy has a sampler of fresh draws
        assert ("log_likelihood" in row) == (TOYS[name].law is not None)  # moons has no density
        point = experiments.memorization_point(dim=2, n=8, mixture=name,
                                               **{k: v for k, v in TINY.items() if k != "first_eval"})
        assert ("log_likelihood" in point) == (TOYS[name].law is not None)
    with pytest.raises(ValueError, match=r"mixture must be one of \('paper', 'gmm4', 'ring', 'moons'"):
        experiments.mixture_curve(dim=2, n=8, mixture="spiral", **TINY)


def test_mixture_curve_on_your_own_points_reports_what_the_data_can_tell():
    from labkit.data import PointCloud, toy_data

    g = torch.Generator().manual_seed(0)
    points = toy_data("ring", 8, g).points.double().numpy()  # plain float64 numbers
    bare = experiments.mixture_curve(data=points, **TINY)
    assert bare["n_total"] == 8 and len(bare["memorization"]) == len(bare["steps"]) == 4
    assert not {"null_memorization", "log_likelihood", "reference_log_likelihood"} & set(bare)
    assert bare == {**experiments.mixture_curve(data=torch.as_tensor(points), **TINY), "wall_s": bare["wall_s"]}
    ring = toy_data("ring", 1, g)
    cloud = PointCloud(points, sample=ring.sample)
    with_null = experiments.mixture_curve(data=cloud, **TINY)
    assert 0 <= with_null["null_memorization"] <= 1 and "log_likelihood" not in with_null
    full = experiments.mixture_curve(data=PointCloud(points, ring.sample, ring.log_prob), **TINY)
    assert len(full["log_likelihood"]) == 4 and "reference_log_likelihood" in full
    point = experiments.memorization_point(data=cloud, **{k: v for k, v in TINY.items() if k != "first_eval"})
    assert "null_memorization" in point and "log_likelihood" not in point
    with pytest.raises(ValueError, match="not both"):
        experiments.mixture_curve(data=points, mixture="ring", **TINY)
    with pytest.raises(ValueError, match="dim=3 but the data's points have 2 columns"):
        experiments.mixture_curve(data=points, dim=3, **TINY)
    with pytest.raises(ValueError, match="n=9 but the data holds 8 points"):
        experiments.mixture_curve(data=points, n=9, **TINY)
    with pytest.raises(ValueError, match="needs dim and n"):
        experiments.mixture_curve(**TINY)
    with pytest.raises(ValueError, match="points must have shape"):
        PointCloud(torch.zeros(3))
    with pytest.raises(TypeError, match="sample must be callable"):
        PointCloud(points, sample=3)


def test_training_time_study_in_one_call():
    from labkit.data import toy_data

    cloud = toy_data("gmm4", 8, torch.Generator().manual_seed(1))
    logs = []
    table = experiments.training_time_study(cloud, seeds=[0, 1], log=logs.append, **TINY)
    assert len(table) == 2 and table.unique("seed") == [0, 1] and len(logs) == 2
    for row in table:
        assert set(row) >= {"steps", "memorization", "log_likelihood", "tau_mem", "tau_gen"}
        times = experiments.training_times(row)  # the declared rules, read the same way
        assert (row["tau_mem"], row["tau_gen"]) == (times["tau_mem"], times["tau_gen"])
    with pytest.warns(UserWarning, match="no sampler of fresh draws.*null_memorization=RATE"):
        bare = experiments.training_time_study(cloud.points, seeds=[0], **TINY)
    assert bare[0]["null_source"] is None and bare[0]["tau_mem"] is None and bare[0]["tau_gen"] is None  # no fresh draws, no density
    named = experiments.training_time_study("moons", n=8, seeds=[0], **TINY)
    assert "null_memorization" in named[0] and named[0]["tau_gen"] is None
    with pytest.raises(ValueError, match="pass n"):
        experiments.training_time_study("moons", seeds=[0], **TINY)
    with pytest.raises(ValueError, match="seeds"):
        experiments.training_time_study(cloud, seeds=3, **TINY)


# a run that memorizes a few 5-D points within 320 steps, so the law has uncensored times
LAW = dict(width=64, depth=2, batch_size=32, num_samples=32, sample_steps=10, first_eval=20,
           steps=320, lr=1e-2)


def test_a_csv_point_cloud_without_a_sampler_runs_the_study_and_the_censored_fit(tmp_path):
    from labkit.data import PointCloud

    path = tmp_path / "points.csv"
    np.savetxt(path, np.random.default_rng(0).normal(size=(40, 5)), delimiter=",")
    cloud = PointCloud(np.loadtxt(path, delimiter=","), name="points.csv")
    study = experiments.training_time_study(cloud, holdout=8, ns=[2, 4, 8], seeds=[0, 1], **LAW)
    assert len(study) == 6 and study.unique("n") == [2, 4, 8]
    for row in study:  # the whole config, and where the null rate came from
        assert (row["data"], row["dim"], row["n_held_out"]) == ("points.csv", 5, 8)
        assert row["null_source"] == "held-out split" and row["steps"][-1] == 320
        assert row["depth"] == 2 and row["lr"] == 1e-2 and "mixture" not in row
        assert row["tau_mem"] == experiments.training_times(row, times="tau_mem")["tau_mem"]
    law = experiments.time_law(study)  # the censored fit, straight from the rows
    assert law["runs"] == 6 and law["time"] == "tau_mem" and len(law["observations"]) == 6
    assert law["interval"][0] < law["slope"] < law["interval"][1]
    given = experiments.training_time_study(cloud, null_memorization=0.05, ns=[2], seeds=[0], **LAW)
    assert given[0]["null_memorization"] == 0.05 and given[0]["null_source"] == "given"
    # the memorization time alone needs no log-density
    assert set(experiments.training_times(given[0], times=["tau_mem"])) == {"tau_mem"}
    with pytest.raises(ValueError, match="needs column 'log_likelihood'.*log_prob="):
        experiments.training_times(given[0])
    with pytest.raises(ValueError, match="time_observations .tau_gen. needs column 'log_likelihood'"):
        experiments.time_observations(study, "tau_gen")
    with pytest.raises(ValueError, match="not both"):
        experiments.training_time_study(cloud, null_memorization=0.1, holdout=4, seeds=[0], **LAW)
    for bad in (0.0, 1.0, 40, "a"):
        with pytest.raises(ValueError, match="holdout"):
            experiments.training_time_study(cloud, holdout=bad, seeds=[0], **LAW)
    with pytest.raises(ValueError, match="null_memorization must be a rate"):
        experiments.training_time_study(cloud, null_memorization=1.5, seeds=[0], **LAW)
    with pytest.raises(ValueError, match="more than the 32 training points .*held-out split"):
        experiments.training_time_study(cloud, holdout=8, ns=[64], seeds=[0], **LAW)


def test_the_readers_name_the_column_a_row_lacks_and_how_to_get_it():
    row = {"steps": [0, 100, 200], "memorization": [0.0, 0.05, 0.5], "seed": 0}
    with pytest.raises(ValueError, match="time_observations .tau_mem. needs column 'n'"):
        experiments.time_observations([row])
    with pytest.raises(ValueError, match="'null_memorization'.*sampler of fresh draws.*holdout="):
        experiments.time_observations([{**row, "n": 8}])
    assert experiments.time_observations([{**row, "n": 8, "null_memorization": 0.0}]) == [
        {"x": 8, "seed": 0, "lower": 100, "upper": 200}]
    with pytest.raises(ValueError, match="window_rows needs column 'n'"):
        experiments.window_rows([row])
    with pytest.raises(ValueError, match="label needs column 'null_memorization'"):
        experiments.label(row)
    table = experiments.time_table([{**row, "n": 8, "null_memorization": 0.0}], times="tau_mem")
    assert set(table[8]) == {"tau_mem", "seeds"}
    with pytest.raises(ValueError, match="times must name some of"):
        experiments.training_times(row, times=["tau_x"])
    censored = [{**row, "n": n, "seed": s, "null_memorization": 0.9} for n in (4, 8) for s in (0, 1)]
    with pytest.raises(ValueError, match="none of the 4 runs reached the mark"):
        experiments.time_law(censored)
    twice = [{"seed": 0, "w": 1, "v": 1.0}, {"seed": 0, "w": 1, "v": 2.0}, {"seed": 0, "w": 2, "v": 0.0}]
    with pytest.raises(ValueError, match="several rows match .'w': 1. at seed 0"):
        experiments.paired_difference(twice, "v", {"w": 1}, {"w": 2})


def _spiral(k: int = 12):
    from labkit.data import GaussianMixture

    theta = torch.linspace(0.5, 3 * math.pi, k)
    return GaussianMixture(torch.stack([theta.cos(), theta.sin()], 1) * theta[:, None] / 3, cov=0.01)


def test_a_spiral_toys_study_and_law_are_one_call_each():
    from labkit.data import PointCloud

    cloud = PointCloud.from_law(_spiral(), 8, generator=torch.Generator().manual_seed(0),
                                name="spiral")
    study = experiments.training_time_study(cloud, ns=[2, 4, 8], seeds=[0, 1],
                                            **{**LAW, "num_samples": 64})
    assert {r["null_source"] for r in study} == {"sampler"}
    assert all("reference_log_likelihood" in r and len(r["log_likelihood"]) == len(r["steps"])
               for r in study)
    law = experiments.time_law(study, "tau_mem")
    assert law["runs"] == 6 and law["censored"] < 6 and math.isfinite(law["slope"])


def test_samplers_and_densities_are_checked_before_any_training(tmp_path, monkeypatch):
    from labkit.data import PointCloud

    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    law = _spiral()
    points = law.sample(8, generator=torch.Generator().manual_seed(0))
    bad = {
        "sample must return .m, 2. points .* returned shape .4, 3.":
            PointCloud(points, sample=lambda m, generator=None: torch.zeros(m, 3)),
        "sample must take .m, generator=None.":
            PointCloud(points, sample=lambda m: torch.zeros(m, 2)),
        "sample returned NaN": PointCloud(points, sample=lambda m, generator=None:
                                          torch.full((m, 2), float("nan"))),
        "log_prob must return one value per point, shape .4,.* .4, 1.*reshape":
            PointCloud(points, law.sample, lambda x: law.log_prob(x)[:, None]),
        "log_prob returned NaN or infinite values on the first training points":
            PointCloud(points, law.sample, lambda x: law.log_prob(x) * float("nan")),
    }
    for message, cloud in bad.items():
        with pytest.raises((ValueError, TypeError), match=message):
            experiments.training_time_study(cloud, seeds=[0], **TINY)
    assert not list(tmp_path.rglob("*.pt"))  # nothing trained, no checkpoint left behind
    good = PointCloud(points, law.sample, law.log_prob)
    state = torch.random.get_rng_state()
    assert good.check() is good and torch.equal(torch.random.get_rng_state(), state)


def test_table1_arms_are_one_registry():
    from labkit.pruning import IMPORTANCE

    assert experiments.METHODS == tuple(experiments.ARMS)
    assert all(arm.importance is None or arm.importance in IMPORTANCE for arm in experiments.ARMS.values())
    assert [m for m, a in experiments.ARMS.items() if not a.fine_tune] == ["original"]
    assert [m for m, a in experiments.ARMS.items() if a.per_seed] == ["random"]


def test_a_fig3_style_grid_runs_on_your_own_data(tmp_path):
    import functools

    from labkit.data import toy_data
    from labkit.sweeps import run_sweep

    cloud = toy_data("ring", 8, torch.Generator().manual_seed(0))
    fn = functools.partial(experiments.memorization_point, data=cloud, depth=1, steps=20, batch_size=16,
                           num_samples=16, sample_steps=4)
    table = run_sweep(fn, {"width": [8, 16]}, name="ring", cache=tmp_path, progress=False)
    assert table.unique("width") == [8, 16] and {"memorization", "log_likelihood"} <= set(table[0])
    other = functools.partial(fn, data=toy_data("ring", 8, torch.Generator().manual_seed(1)))
    again = run_sweep(other, {"width": [8]}, name="ring", cache=tmp_path, progress=False)
    assert again[0]["memorization"] is not None and len(list(tmp_path.rglob("*.json"))) == 3  # other data: its own entry


def test_a_toy_registered_later_is_a_mixture_too(monkeypatch):
    from labkit.data import TOYS, Toy

    def spiral(n, generator, dtype):
        t = torch.rand(n, generator=generator, dtype=dtype) * 3 * math.pi
        return torch.stack([t.cos(), t.sin()], 1) * t[:, None] / 3

    with pytest.raises(ValueError, match="mixture must be one of"):
        experiments.mixture_curve(dim=2, n=8, mixture="spiral", **TINY)
    monkeypatch.setitem(TOYS, "spiral", Toy("an Archimedean spiral", draw=spiral))
    assert "spiral" in experiments.MIXTURES and experiments.MIXTURES[-1] == "spiral"
    row = experiments.mixture_curve(dim=2, n=8, mixture="spiral", **TINY)
    assert len(row["memorization"]) == len(row["steps"]) and "null_memorization" in row
