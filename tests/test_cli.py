"""labkit.cli: the verify command's exit codes, the sweep and prune commands (arguments checked
before any work), and the old command names kept working."""

import json
import pickle
import warnings

import numpy as np
import pytest
import torch

from labkit import experiments, sweeps
from labkit.cli import prune_main, sweep_main
from labkit.dit import PRESETS, DiTConfig
from labkit.experiments import METHODS

TINY_CURVE = {"mixture": "gmm4", "dim": 2, "n": 8, "width": [8, 16], "depth": 1, "steps": 300,
              "batch_size": 16, "num_samples": 64, "sample_steps": 8, "first_eval": 50, "seed": 0}

def test_old_command_and_protocol_names_still_work_with_a_warning():
    import labkit.pruning
    import labkit.sweeps

    for module, old, new in ((labkit.sweeps, "PAPER_GRIDS", "labkit.experiments.PAPER_GRIDS"),
                             (labkit.sweeps, "main", "labkit.cli.sweep_main"),
                             (labkit.pruning, "Protocol", "labkit.experiments.Protocol"),
                             (labkit.pruning, "main", "labkit.cli.prune_main")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert getattr(module, old) is not None
        assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)
    with pytest.warns(DeprecationWarning, match="labkit.experiments.memorization_point"):
        from labkit.capacity import memorization_point  # noqa: F401


def test_help_texts_are_plain_text(capsys):
    for command in (sweep_main, prune_main):
        with pytest.raises(SystemExit):
            command(["--help"])
        assert "``" not in capsys.readouterr().out


def test_prune_validates_every_argument_before_training(tmp_path, capsys):
    out = tmp_path / "out"
    for bad in (["--ratio", "1.5"], ["--n", "5000"], ["--n", "1"]):
        with pytest.raises(SystemExit):
            prune_main(["--dataset", "digits", "--out", str(out), *bad])
        assert "--" + bad[0].lstrip("-") in capsys.readouterr().err
        assert not (out / "protocol.json").exists()
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            prune_main(["--dataset", "digits", "--out", str(out), "--device", "cuda"])
        assert "no CUDA" in capsys.readouterr().err


def _write_cifar(root, per_batch=12):
    root.mkdir()
    g = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": g.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in g.integers(0, 10, per_batch)]}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f)


TINY_RUN = ["--train-steps", "6", "--finetune-steps", "3", "--seeds", "2", "--num-samples", "8",
            "--sample-steps", "3", "--importance-batches", "2", "--classifier-steps", "3", "--batch-size", "8"]


def test_prune_cli_end_to_end_on_a_tiny_cifar_copy(tmp_path, capsys):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    tiny_cifar = ["--preset", "tiny"]  # 4x4x1 does not fit CIFAR: must be refused
    with pytest.raises(SystemExit):
        prune_main(["--dataset", "cifar10", "--data-root", str(tmp_path), "--n", "20", *tiny_cifar, *TINY_RUN])
    out = tmp_path / "out"
    argv = ["--dataset", "cifar10", "--data-root", str(tmp_path), "--device", "cpu", "--n", "20",
            "--out", str(out), *TINY_RUN]
    small_cifar = DiTConfig(image_size=32, channels=3, patch_size=8, hidden=16, depth=2, num_heads=4)
    PRESETS["test-cifar"] = small_cifar
    try:
        assert prune_main(argv + ["--preset", "test-cifar"]) == 0
    finally:
        del PRESETS["test-cifar"]
    printed = capsys.readouterr().out
    assert "not FID" in printed and "small-t importance" in printed and "73.82" in printed
    results = json.loads((out / "results.json").read_text())
    assert set(results["results"]) == set(METHODS) and results["n"] == 20
    for method, runs in results["results"].items():
        assert len(runs) == 2
        for run in runs:
            assert 0 <= run["memorization"] <= 100 and 0 <= run["precision"] <= 1 and np.isfinite(run["fd"])
            pruned = method not in ("original", "fine-tuned control")
            assert (sum(len(v) for v in run["heads"].values()) == 2) == pruned  # 20% of 8 heads
    params = {m: results["results"][m][0]["params"] for m in METHODS}
    assert params["small-t importance"] < params["original"] == params["fine-tuned control"]


def test_prune_cli_digits_resumes_from_its_cache(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--dataset", "digits", "--n", "16", "--out", str(out), "--preset", "digits", *TINY_RUN]
    assert prune_main(argv) == 0
    first = json.loads((out / "results.json").read_text())
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json") if p.name != "results.json"}
    assert prune_main(argv) == 0  # every cell cached: nothing recomputed, same numbers
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json") if p.name != "results.json"} == stamps
    assert json.loads((out / "results.json").read_text())["results"] == first["results"]
    with pytest.raises(SystemExit):
        prune_main(["--dataset", "cifar10"])  # no --data-root
    with pytest.raises(SystemExit):
        prune_main(argv + ["--ratio", "1.5"])


def test_prune_cache_folder_refuses_a_different_protocol(tmp_path):
    out = tmp_path / "out"
    assert prune_main(["--dataset", "digits", "--n", "16", "--out", str(out), *TINY_RUN]) == 0
    with pytest.raises(ValueError, match="caches a run of"):
        prune_main(["--dataset", "digits", "--n", "16", "--out", str(out), *TINY_RUN, "--finetune-lr", "0.01"])


def test_paper_grids_are_valid_and_cli_lists_them(capsys):
    for grid in experiments.PAPER_GRIDS.values():
        configs = sweeps.expand_grid(grid)
        assert configs and all(c["dim"] in (8, 16, 32, 64) for c in configs)
    assert max(c["n"] for c in sweeps.expand_grid(experiments.PAPER_GRIDS["fig3a_size_n"])) == 100_000
    assert sweep_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in experiments.PAPER_GRIDS)




def test_cli_runs_a_tiny_override_into_the_cache_and_resumes(tmp_path, capsys):
    args = ["fig3b_decay", "--cache", str(tmp_path), "--steps", "3", "--batch-size", "8", "--num-samples", "16",
            "--set", "dim=2", "--set", "n=[8]", "--set", "width=4", "--set", "depth=1",
            "--set", "weight_decay=[0.0, 0.1]", "--set", "sample_steps=3", "--quiet"]
    assert sweep_main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["weight_decay"] for r in rows] == [0.0, 0.1] and all(0 <= r["memorization"] <= 1 for r in rows)
    entries = sorted((tmp_path / "sweeps" / "fig3b_decay").glob("*.json"))
    assert len(entries) == 2
    stamps = [p.stat().st_mtime_ns for p in entries]
    assert sweep_main(args) == 0  # second run reads the cache
    assert [p.stat().st_mtime_ns for p in entries] == stamps
    # a session without the command line (e.g. notebook 02) finds the same points
    from labkit.experiments import memorization_point

    grid = {**experiments.paper_grid("fig3b_decay", steps=3, batch_size=8, num_samples=16), "dim": 2, "n": [8],
            "width": 4, "depth": 1, "weight_decay": [0.0, 0.1], "sample_steps": 3}
    found = sweeps.run_sweep(memorization_point, grid, name="fig3b_decay", cache=tmp_path / "sweeps",
                             missing="skip", progress=False)
    assert found.rows == rows
    with pytest.raises(SystemExit):
        sweep_main(["fig3b_decay", "--set", "n"])
    with pytest.raises(SystemExit):
        sweep_main(["fig3b_decay", "--cache", str(tmp_path), "--set", "widht=3"])
    assert "not parameters" in capsys.readouterr().err


def test_labkit_help_version_and_an_unknown_command(capsys):
    from labkit import __version__
    from labkit.cli import _commands, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, purpose) in _commands().items():
        assert f"  {name}" in out and purpose in out
    assert set(_commands()) >= {"results", "verify", "claims", "sweep", "prune"}
    assert main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"labkit {__version__}"
    assert main(["bogus"]) == 2
    assert "unknown command 'bogus'" in capsys.readouterr().err
    assert main(["results", "list", "--names"]) == 0
    assert capsys.readouterr().out.split() == list(experiments.EXPERIMENTS)


# ------------------------------------------------------------ a researcher's module, bad inputs

SLOW_MODULE = '''
"""Rows that take a moment each, to interrupt."""
import time

from labkit.experiments import Experiment


def slow(k: int) -> dict:
    time.sleep(0.4)
    return {"k2": k * k}


slow_set = Experiment(point_fn="slow_rows:slow", grids=({"k": list(range(12))},), purpose="slow",
                      prefix_key=None)
'''


def _labkit(*args, cwd, **kwargs):
    import os
    import subprocess
    import sys

    env = {**os.environ, "LABKIT_CACHE": str(cwd / ".cache"), "PYTHONPATH": ""}
    return subprocess.Popen([sys.executable, "-c", "import sys; from labkit.cli import main; "
                             "sys.exit(main())", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _done(*args, cwd):
    proc = _labkit(*args, cwd=cwd)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def test_a_module_that_raises_on_import_gets_one_paragraph_not_a_traceback(tmp_path):
    (tmp_path / "broken.py").write_text("import math\nRADIUS = 1 / 0\n")
    rc, _, err = _done("results", "run", "broken:grid", "--out", "r.json", cwd=tmp_path)
    assert rc == 2 and "Traceback" not in err
    assert "importing broken (for broken:grid) raised ZeroDivisionError: division by zero" in err
    assert "broken.py, line 2" in err and len(err.strip().splitlines()) <= 3  # usage + error
    (tmp_path / "r.json").write_text(json.dumps(
        {"name": "broken:grid", "point_fn": "broken:curve", "provenance": {}, "rows": []}))
    rc, _, err = _done("verify", "r.json", cwd=tmp_path)
    assert rc == 2 and "Traceback" not in err and err.startswith("labkit verify: error: importing")
    assert not (tmp_path / "missing.py").exists()
    rc, _, err = _done("results", "run", "missing:grid", "--out", "r.json", cwd=tmp_path)
    assert rc == 2 and "cannot be found" in err and "Traceback" not in err  # absent, not broken


def test_ctrl_c_prints_one_line_and_the_rerun_resumes(tmp_path):
    import signal
    import time

    (tmp_path / "slow_rows.py").write_text(SLOW_MODULE)
    out = tmp_path / "results" / "slow.json"
    proc = _labkit("results", "run", "slow_rows:slow_set", "--out", "results/slow.json", "--quiet",
                   cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not (out.exists() and json.loads(out.read_text())["rows"]):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [
        "labkit results: interrupted; the rows finished so far are saved in the result file; "
        "rerun `labkit results run slow_rows:slow_set --out results/slow.json --quiet` to resume "
        "from them"]
    kept = len(json.loads(out.read_text())["rows"])
    assert 1 <= kept < 12
    rc, stdout, err = _done("results", "run", "slow_rows:slow_set", "--out", "results/slow.json",
                            "--quiet", cwd=tmp_path)
    assert rc == 0 and f"{kept} in results/slow.json, computing {12 - kept}" in stdout, err
    # verify finds the module from another folder (the file's project folder goes on the path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rc, stdout, err = _done("verify", str(out), "--rows", "2", cwd=elsewhere)
    assert rc == 0 and "verified" in stdout, err
