"""labkit.results: result sets computed, resumed, read, and verified (and verify's guards
failing on wrong input before passing on the right one)."""

import json

import pytest
import torch

from labkit import cli, experiments, results, verification
from labkit.experiments import Experiment


TINY_CURVE = {"mixture": "gmm4", "dim": 2, "n": 8, "width": [8, 16], "depth": 1, "steps": 300,
              "batch_size": 16, "num_samples": 64, "sample_steps": 8, "first_eval": 50, "seed": 0}


@pytest.fixture
def tiny_experiment(monkeypatch):
    exp = Experiment(point_fn="labkit.experiments:mixture_curve", grids=(TINY_CURVE,), purpose="test")
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny_test", exp)
    return exp


def test_results_run_writes_provenance_and_resumes(tmp_path, tiny_experiment):
    out = tmp_path / "tiny.json"
    logs = []
    data = results.run_results("tiny_test", out, log=logs.append)
    prov = data["provenance"]
    assert set(prov) >= {"command", "commit", "labkit", "torch", "device", "date", "wall_s"}
    assert data["point_fn"] == "labkit.experiments:mixture_curve" and len(data["rows"]) == 2
    for row in data["rows"]:
        assert set(row) == {"config", "result", "wall_s", "version", "provenance", "checksum"}
        assert row["wall_s"] > 0 and row["checksum"] == results.row_checksum(row)
        assert set(row["provenance"]) >= {"commit", "labkit", "torch", "device", "date", "source",
                                          "labkit_digest", "threads", "started", "claims_lock"}
        assert row["config"]["t_min"] == 1e-3  # the full config: defaults included
        assert row["result"]["steps"] == experiments.eval_steps(300, 50)
    # a second run computes nothing
    logs.clear()
    results.run_results("tiny_test", out, log=logs.append)
    assert "computing 0" in logs[0]
    assert data["checksum"] == results.file_checksum(data)
    # an interrupted run (a row missing, the file written whole before the second row) resumes
    # with only that row
    first = json.loads(out.read_text())
    kept = first["rows"][0]
    _write_rows(out, first, [kept])
    logs.clear()
    again = results.run_results("tiny_test", out, log=logs.append)
    assert "computing 1" in logs[0]
    assert again["rows"][0] == kept and again["rows"][1]["result"] == first["rows"][1]["result"]


def test_verify_fails_on_a_planted_wrong_row_and_passes_on_the_true_one(tmp_path, tiny_experiment):
    out = tmp_path / "tiny.json"
    data = results.run_results("tiny_test", out, log=lambda m: None)
    planted = json.loads(json.dumps(data))
    planted["rows"][0]["result"]["memorization"][-1] += 0.05
    bad = tmp_path / "planted.json"
    bad.write_text(json.dumps(_resealed(planted)))  # a wrong number, not a hand edit
    assert results.verify(bad, rows=1, cheapest=False, seed=0, log=lambda m: None) is False or \
        results.verify(bad, rows=2, log=lambda m: None) is False
    assert results.verify(out, rows=2, log=lambda m: None) is True
    # a prefix of the curve is recomputed exactly
    assert results.verify(out, rows=2, max_steps=100, log=lambda m: None) is True
    planted_early = json.loads(json.dumps(data))
    for row in planted_early["rows"]:
        row["result"]["log_likelihood"][1] -= 1.0
    bad.write_text(json.dumps(_resealed(planted_early)))
    assert results.verify(bad, rows=2, max_steps=100, log=lambda m: None) is False


def test_verify_names_what_is_wrong(tmp_path, tiny_experiment, monkeypatch):
    with pytest.raises(ValueError, match="does not exist"):
        results.verify(tmp_path / "nope.json")
    out = tmp_path / "tiny.json"
    data = results.run_results("tiny_test", out, log=lambda m: None)
    gone = {**data, "point_fn": "labkit.experiments:no_such_function", "name": "other"}
    (tmp_path / "gone.json").write_text(json.dumps(gone))
    with pytest.raises(ValueError, match="no_such_function"):
        results.verify(tmp_path / "gone.json")
    # the registered grid changed since the file was written
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny_test",
                        Experiment(point_fn="labkit.experiments:mixture_curve",
                                   grids=({**TINY_CURVE, "steps": 400},), purpose="test"))
    with pytest.raises(ValueError, match="current grid"):
        results.verify(out)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        results.verify(tmp_path / "broken.json")
    assert cli.main(["verify", str(tmp_path / "nope.json")]) == 2


def test_results_run_rejects_bad_input(tmp_path, tiny_experiment):
    with pytest.raises(ValueError, match="experiment must be one of"):
        results.run_results("no_such_set", tmp_path / "x.json")
    with pytest.raises(ValueError, match="n_jobs"):
        results.run_results("tiny_test", tmp_path / "x.json", n_jobs=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            results.run_results("tiny_test", tmp_path / "x.json", device="cuda")


def test_every_committed_result_set_names_a_registered_experiment():
    files = sorted(p for p in results.RESULTS_DIR.glob("*.json") if p.name != "claims.json")
    for path in files:
        data = results.load_results(path)
        assert data["name"] in experiments.EXPERIMENTS, path
        assert data["point_fn"] == experiments.EXPERIMENTS[data["name"]].point_fn


def test_results_table_reads_the_file_and_computes_only_what_it_lacks(tmp_path, tiny_experiment, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "tiny.json"
    data = results.run_results("tiny_test", out, log=lambda m: None)
    logs = []
    table = results.results_table("tiny_test", path=out, log=logs.append)
    assert len(table) == 2 and "2 of 2 rows read from tiny.json" in logs[0] and "0 computed here" in logs[0]
    assert table[0]["memorization"] == data["rows"][0]["result"]["memorization"]
    out.write_text(json.dumps({**data, "rows": data["rows"][:1]}))
    logs.clear()
    assert len(results.results_table("tiny_test", path=out, missing="skip", log=logs.append)) == 1
    assert "1 missing, skipped" in logs[0]
    logs.clear()
    table = results.results_table("tiny_test", path=out, log=logs.append)
    assert "1 computed here" in logs[0] and table[1]["memorization"] == data["rows"][1]["result"]["memorization"]
    assert json.loads(out.read_text())["rows"] == data["rows"][:1]  # the committed file is never written
    with pytest.raises(ValueError, match="missing must be"):
        results.results_table("tiny_test", path=out, missing="ignore")


def test_a_result_set_is_computed_by_one_process_at_a_time(tmp_path, tiny_experiment):
    out = tmp_path / "tiny.json"
    held = results._lock(out)  # another process computing the same file
    try:
        with pytest.raises(ValueError, match="another process"):
            results.run_results("tiny_test", out, log=lambda m: None)
    finally:
        held.close()
    assert len(results.run_results("tiny_test", out, log=lambda m: None)["rows"]) == 2


def _resealed(doc):
    """``doc`` with its row and file checksums renewed: a file whose numbers are wrong but
    consistent with its checksums (as a run of wrong code writes them), which only a
    recomputation can catch."""
    rows = [{**r, "checksum": results.row_checksum(r)} for r in doc["rows"]]
    out = {**doc, "rows": rows}
    out["checksum"] = results.file_checksum(out)
    return out


def _write_rows(path, data, rows):
    """Write ``data`` with only ``rows``, its file checksum renewed: what a run interrupted
    before the other rows leaves (every write of a run renews the checksum)."""
    doc = {**data, "rows": rows}
    doc["checksum"] = results.file_checksum(doc)
    path.write_text(json.dumps(doc))


COMMITTED = sorted(p for p in results.RESULTS_DIR.glob("*.json") if p.name != "claims.json")


# The sets whose rows start from a Table 1 base DiT (trained 5,000 steps, most of a row's
# cost): each is checked on the same run, and the recomputations share one cache folder,
# empty when the first starts, so the base is trained from scratch once and read by the others.
ON_TABLE1_BASES = {"open_windows", "open_search", "open_denoisers"}
SHARED_BASE_RUN = 8


@pytest.fixture(scope="module")
def shared_base_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("verify-bases")


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_every_committed_result_set_verifies_on_its_cheapest_row(path, shared_base_cache):
    # The cheapest row, recomputed to its first 125 training steps: a curve's prefix is exact (see
    # test_experiments), so this checks the file's numbers at a fraction of a row's cost. The
    # tolerance allows one or two samples of a thousand to flip class on another CPU's float
    # rounding; the planted-row test above shows a wrong value fails. A set whose rows cannot be
    # shortened (its experiment declares prefix_key=None) has its cheapest row recomputed whole.
    logs = []
    name = json.loads(path.read_text())["name"]
    steps = 125 if experiments.EXPERIMENTS[name].prefix_key is not None else None
    shared = ({"where": {"seed": SHARED_BASE_RUN}, "share_cache": shared_base_cache}
              if name in ON_TABLE1_BASES else {})
    assert results.verify(path, rows=1, cheapest=True, max_steps=steps, rtol=1e-3, atol=2.5e-3,
                          log=logs.append, **shared), logs


def test_verify_picks_rows_by_config_and_refuses_a_filter_nothing_matches(tmp_path, tiny_experiment):
    out = tmp_path / "tiny.json"
    results.run_results("tiny_test", out, log=lambda m: None)
    logs = []
    first = json.loads(out.read_text())["rows"][0]["config"]
    assert results.verify(out, rows="all", where=dict(first), log=logs.append)
    assert len([line for line in logs if line.startswith("row ") and ": ok" in line]) == 1
    with pytest.raises(ValueError, match="where="):
        results.verify(out, where={"seed": -99}, log=lambda m: None)
    with pytest.raises(TypeError, match="where"):
        results.verify(out, where=[("seed", 0)], log=lambda m: None)


def test_results_run_on_a_dask_cluster_equals_the_local_run(tmp_path, tiny_experiment, dask_cluster):
    local = results.run_results("tiny_test", tmp_path / "local.json", log=lambda m: None)
    remote = results.run_results("tiny_test", tmp_path / "dask.json", scheduler=dask_cluster.scheduler_address,
                                 log=lambda m: None)
    assert [r["result"] for r in remote["rows"]] == [r["result"] for r in local["rows"]]
    assert [r["config"] for r in remote["rows"]] == [r["config"] for r in local["rows"]]


def _with_extra_knob(fn):
    """``fn`` with one more defaulted parameter, found under the same module:function name."""
    import functools
    import inspect

    @functools.wraps(fn)
    def wrapper(*args, extra_knob: int = 0, **kwargs):
        return fn(*args, **kwargs)

    sig = inspect.signature(fn)
    extra = inspect.Parameter("extra_knob", inspect.Parameter.KEYWORD_ONLY, default=0)
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), extra])
    return wrapper


def test_a_new_defaulted_parameter_hides_no_row_and_a_version_bump_hides_them_all(
        tmp_path, tiny_experiment, monkeypatch):
    out = tmp_path / "tiny.json"
    results.run_results("tiny_test", out, log=lambda m: None)
    monkeypatch.setattr(experiments, "mixture_curve", _with_extra_knob(experiments.mixture_curve))
    assert "extra_knob" in results.full_config(results.resolve(tiny_experiment.point_fn), {"dim": 2, "n": 8,
                                                                                           "width": 8})
    assert len(results.results_table("tiny_test", path=out, missing="skip", log=lambda m: None)) == 2
    logs = []
    results.run_results("tiny_test", out, log=logs.append)
    assert "computing 0" in logs[0]
    bumped = Experiment(point_fn=tiny_experiment.point_fn, grids=tiny_experiment.grids, purpose="test",
                        version=2)
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny_test", bumped)
    logs.clear()
    assert len(results.results_table("tiny_test", path=out, missing="skip", log=logs.append)) == 0
    assert "2 missing, skipped" in logs[0]


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_a_new_defaulted_parameter_hides_no_committed_row(path, tmp_path, monkeypatch):
    copy = tmp_path / path.name  # a snapshot: the file may be growing while this test runs
    copy.write_text(path.read_text())
    name = json.loads(copy.read_text())["name"]
    before = len(results.results_table(name, path=copy, missing="skip", log=lambda m: None))
    assert before > 0
    for fn in ("mixture_curve", "table1_seed"):
        monkeypatch.setattr(experiments, fn, _with_extra_knob(getattr(experiments, fn)))
    assert len(results.results_table(name, path=copy, missing="skip", log=lambda m: None)) == before


# ----------------------------------------------------------------------------- your own result sets

USER_MODULE = '''
"""A researcher's own result sets, outside labkit."""
import numpy as np

from labkit.experiments import Experiment


def curve(n_steps: int, seed: int = 0, rate: float = 0.5) -> dict:
    """A deterministic curve whose shorter runs are prefixes of longer ones."""
    steps = list(range(0, n_steps + 1, 10))
    return {"steps": steps, "value": [seed + rate * s for s in steps],
            "final": np.float64(seed + rate * n_steps)}  # a numpy value: stored as a float


ring_time = Experiment(point_fn="my_experiments:curve", grids=({"n_steps": [20, 40], "seed": [0, 1]},),
                       purpose="a user's curves", compare=("value", "final"), prefix_key="n_steps")
# the same rows, declared without their step parameter
unshortened = Experiment(point_fn="my_experiments:curve", grids=ring_time.grids, purpose="as above",
                         compare=("value", "final"))


def bad(kind: str) -> dict:
    import torch

    return {"nan": {"x": float("nan")}, "tensor": {"x": torch.tensor([1.0, 2.0])},
            "numpy": {"x": np.float32(0.5), "y": np.arange(2)}, "object": {"x": object()}}[kind]


bad_rows = Experiment(point_fn="my_experiments:bad", grids=({"kind": ["nan", "tensor", "numpy", "object"]},),
                      purpose="results JSON cannot hold", prefix_key=None)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    import sys

    (tmp_path / "my_experiments.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delitem(sys.modules, "my_experiments", raising=False)
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _labkit(*args, cwd):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "import sys; from labkit.cli import main; sys.exit(main())",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_users_experiment_runs_resumes_and_verifies_from_the_command_line(user_module):
    import hashlib

    done = _labkit("results", "run", "my_experiments:ring_time", "--out", "results/ring_time.json",
                   cwd=user_module)
    assert done.returncode == 0, done.stderr
    path = user_module / "results" / "ring_time.json"
    data = json.loads(path.read_text())
    assert data["name"] == "my_experiments:ring_time" and data["point_fn"] == "my_experiments:curve"
    assert data["experiment"]["prefix_key"] == "n_steps" and data["experiment"]["compare"] == ["value", "final"]
    source = (user_module / "my_experiments.py").read_text()
    assert data["provenance"]["module"] == "my_experiments"
    assert data["provenance"]["module_sha256"] == hashlib.sha256(source.encode()).hexdigest()
    assert len(data["rows"]) == 4 and all(type(r["result"]["final"]) is float for r in data["rows"])
    # resumes: a lost row is the only one computed again
    _write_rows(path, data, data["rows"][1:])
    again = _labkit("results", "run", "my_experiments:ring_time", "--out", "results/ring_time.json",
                    cwd=user_module)
    assert "computing 1" in again.stdout
    assert [(r["config"], r["result"]) for r in json.loads(path.read_text())["rows"]] == \
        [(r["config"], r["result"]) for r in data["rows"]]
    # verifies, whole rows and shortened ones (the prefix rule travels in the file)
    for extra in ([], ["--max-steps", "20"]):
        check = _labkit("verify", "results/ring_time.json", "--rows", "4", *extra, cwd=user_module)
        assert check.returncode == 0 and "verified" in check.stdout, check.stderr
    assert "up to step 20" in check.stdout
    planted = json.loads(path.read_text())
    for row in planted["rows"]:
        row["result"]["value"][1] += 1.0
    (user_module / "planted.json").write_text(json.dumps(_resealed(planted)))
    check = _labkit("verify", "planted.json", "--rows", "4", "--max-steps", "20", cwd=user_module)
    assert check.returncode == 1 and "MISMATCH in value" in check.stdout


def test_verify_max_steps_names_why_a_set_cannot_be_shortened(user_module):
    results.run_results("my_experiments:unshortened", "unshortened.json", log=lambda m: None)
    with pytest.raises(ValueError, match="prefix_key 'steps' is not a parameter of my_experiments:curve"):
        results.verify("unshortened.json", max_steps=20, log=lambda m: None)
    assert results.verify("unshortened.json", rows=4, log=lambda m: None)
    for bad in (0, -5, 2.5):
        with pytest.raises(ValueError, match="max_steps must be a positive integer"):
            results.verify("unshortened.json", max_steps=bad, log=lambda m: None)
    data = results.run_results("my_experiments:ring_time", "ring.json", log=lambda m: None)
    # a file whose experiment is not importable is verified by the rules it holds
    atomic = {**data, "name": None, "experiment": {**data["experiment"], "prefix_key": None}}
    (user_module / "atomic.json").write_text(json.dumps(atomic))
    with pytest.raises(ValueError, match="cannot be shortened"):
        results.verify("atomic.json", max_steps=20, log=lambda m: None)


def test_a_result_json_cannot_hold_is_named_with_its_key_and_config_and_kept(user_module):
    with pytest.raises(ValueError, match="2 row") as caught:
        results.run_results("my_experiments:bad_rows", "bad.json", log=lambda m: None)
    message = str(caught.value)
    assert "result['x'] is nan" in message and "{'kind': 'nan'}" in message and "at key " in message
    assert "result['x'] is a object" in message and "{'kind': 'object'}" in message
    stored = {r["config"]["kind"]: r["result"] for r in json.loads((user_module / "bad.json").read_text())["rows"]}
    assert stored == {"tensor": {"x": [1.0, 2.0]}, "numpy": {"x": 0.5, "y": [0, 1]}}  # the rest is kept
    kept = sorted((user_module / "cache").rglob("rejected/**/*.pt"))
    assert len(kept) == 2
    raw = [torch.load(k, weights_only=False) for k in kept]
    assert any(r["config"] == {"kind": "nan"} and r["result"]["x"] != r["result"]["x"] for r in raw)


def test_results_cli_bad_input_is_named(user_module, capsys):
    with pytest.raises(SystemExit):
        cli.main(["results", "run", "my_experiments:ring_time", "--out", "x.json", "--limit", "-1"])
    assert "limit must be an integer >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["results", "run", "my_experiments:nothing_here", "--out", "x.json"])
    assert "cannot be found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["results", "run", "my_experiments:curve", "--out", "x.json"])
    assert "not a labkit.experiments.Experiment" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["results", "run", "no_such_set"])
    assert "experiment must be one of" in capsys.readouterr().err
    assert not (user_module / "x.json").exists()
    results.run_results("my_experiments:ring_time", "ring.json", log=lambda m: None)
    assert cli.main(["verify", "ring.json", "--max-steps", "0"]) == 2
    err = capsys.readouterr().err
    assert "max_steps must be a positive integer" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.main(["results", "run", "my_experiments:ring_time"])
    assert "out is needed" in capsys.readouterr().err


def test_results_run_reports_rows_done_and_the_time_left(user_module, capsys):
    results.run_results("my_experiments:ring_time", "ring.json", log=lambda m: None)
    data = json.loads((user_module / "ring.json").read_text())
    for row in data["rows"]:
        row["wall_s"] = 60.0 * row["config"]["n_steps"] / 20  # one minute per 20 steps, say
    _write_rows(user_module / "ring.json", data, data["rows"][:2])
    logs = []
    results.run_results("my_experiments:ring_time", "ring.json", log=logs.append, progress=True)
    # the two rows of 40 steps left: 4 minutes at the recorded 3 s per step
    assert "computing 2 (about 4 min, from the recorded times of 2 rows)" in logs[0]
    assert "[1/2]" in logs[1] and "left)" in logs[1] and "[2/2]" in logs[2]
    assert "2/2" in capsys.readouterr().err  # the progress bar


def test_an_experiment_with_a_malformed_field_is_named():
    grid = {"n": [16, 32]}
    with pytest.raises(TypeError, match="grids must be a tuple of grids"):
        Experiment(point_fn="my_experiments:curve", grids=grid, purpose="x")
    with pytest.raises(ValueError, match="point_fn must be 'module:function'"):
        Experiment(point_fn="my_experiments.curve", grids=(grid,), purpose="x")
    with pytest.raises(TypeError, match="compare must be a tuple"):
        Experiment(point_fn="m:f", grids=(grid,), purpose="x", compare="loss")
    with pytest.raises(TypeError, match="prefix_key"):
        Experiment(point_fn="m:f", grids=(grid,), purpose="x", prefix_key=3)
    assert Experiment(point_fn="m:f", grids=[grid], purpose="x").prefix_key == "steps"


def test_verify_recomputes_in_an_empty_cache(user_module, monkeypatch):
    import os

    from labkit.experiments import registry  # noqa: F401  (the Experiment class is enough)

    seen = []
    point = results._one_row

    def recording(spec, config, device, threads):
        seen.append(os.environ.get("LABKIT_CACHE"))
        return point(spec, config, device, threads)

    results.run_results("my_experiments:ring_time", "ring.json", log=lambda m: None)
    monkeypatch.setattr(verification, "_one_row", recording)  # the row verify recomputes
    assert results.verify("ring.json", rows=2, log=lambda m: None)
    assert len(seen) == 2 and all(c and "labkit-verify-" in c for c in seen)
    assert os.environ["LABKIT_CACHE"] == str(user_module / "cache")  # restored afterwards


def test_results_table_reads_a_users_set(user_module):
    results.run_results("my_experiments:ring_time", "ring.json", log=lambda m: None)
    logs = []
    table = results.results_table("my_experiments:ring_time", path="ring.json", missing="skip", log=logs.append)
    assert len(table) == 4 and table.unique("n_steps") == [20, 40]
    assert logs[0].startswith("my_experiments:ring_time: 4 of 4 rows read from ring.json")
    with pytest.raises(ValueError, match="path is needed"):
        results.results_table("my_experiments:ring_time")
