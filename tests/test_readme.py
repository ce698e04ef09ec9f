"""README.md: the "Your own data" examples run as written, at a tiny size."""

import re
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _blocks(section: str, lang: str) -> list[str]:
    body = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", body, flags=re.S)


def _tiny(code: str, **sizes) -> str:
    for old, new in sizes.items():
        assert old in code, f"the README example no longer says {old}"
        code = code.replace(old, new)
    return code


def test_the_training_time_study_on_your_own_points_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    (study,) = [b for b in _blocks("Your own data", "python") if "PointCloud.from_law(" in b]
    code = _tiny(study, **{"width=128, steps=8000, seeds=[0, 1, 2]":
                           "width=8, steps=40, seeds=[0, 1], num_samples=32, sample_steps=5, first_eval=20"})
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["study"]) == 2 and namespace["cloud"].n == 32
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("seed 0: memorizes from step")


def test_the_study_and_law_on_points_from_a_csv_run_as_written(tmp_path, monkeypatch, capsys):
    import numpy as np

    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    np.savetxt("points.csv", np.random.default_rng(0).normal(size=(40, 5)), delimiter=",")
    (block,) = [b for b in _blocks("Your own data", "python") if "time_law(" in b]
    code = _tiny(block, **{"ns=[64, 128, 256], width=128, steps=8000":
                           "ns=[2, 4, 8], width=64, depth=2, batch_size=32, num_samples=32, "
                           "sample_steps=10, first_eval=20, steps=320, lr=1e-2",
                           "seeds=[0, 1, 2]": "seeds=[0, 1]"})
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    study, law = namespace["study"], namespace["law"]
    assert study.unique("n") == [2, 4, 8] and {r["null_source"] for r in study} == {"held-out split"}
    assert {r["dim"] for r in study} == {5} and law["runs"] == len(study) == 6
    line, interval = capsys.readouterr().out.splitlines()
    assert line.startswith("tau_mem ~ n^") and line.endswith(" of 6 runs censored")
    assert interval.startswith("95% interval of the exponent: [")


def test_your_own_result_set_in_the_readme_is_a_valid_experiment(tmp_path, monkeypatch):
    from labkit import results

    (module,) = [b for b in _blocks("Your own data", "python") if "Experiment(" in b]
    (tmp_path / "my_experiments.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_experiments", raising=False)
    label, exp = results.experiment_for("my_experiments:ring_time")
    spec, configs = results._configs(exp)
    assert spec == "labkit.experiments:mixture_curve" and len(configs) == 6
    assert {c["mixture"] for c in configs} == {"ring"}
    (commands,) = _blocks("Your own data", "bash")
    assert "labkit results run my_experiments:ring_time --out results/ring_time.json" in commands
    with pytest.raises(ValueError, match="cannot be found"):
        results.experiment_for("my_experiments:no_such_set")
