"""Tests for labkit.sweeps: grid validation, caching, corruption recovery, resume after a kill,
parallel workers with one torch thread, the Table helpers and the command line."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import joblib
import numpy as np
import pytest
import torch

from labkit import sweeps

CALLS = []


def square(x, offset=0):
    CALLS.append(x)
    return {"y": x * x + offset, "threads": torch.get_num_threads(), "pid": os.getpid()}


def bad_result(x):
    return {"y": object()}


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()


def test_expand_grid_product_order_and_scalars():
    configs = sweeps.expand_grid({"a": [1, 2], "b": ["u", "v", "w"], "c": 0.5})
    assert len(configs) == 6
    assert configs[0] == {"a": 1, "b": "u", "c": 0.5} and configs[1]["b"] == "v"  # last axis fastest


def test_expand_grid_accepts_dataclass():
    @dataclass
    class Grid:
        x: list
        offset: list

    assert sweeps.expand_grid(Grid(x=[1, 2], offset=[0]), square) == [{"x": 1, "offset": 0}, {"x": 2, "offset": 0}]


@pytest.mark.parametrize("grid, error, match", [
    ({}, ValueError, "at least one axis"),
    ([1, 2], TypeError, "mapping"),
    ({"x": []}, ValueError, "'x' is empty"),
    ({"x": [[1, 2]]}, TypeError, "hashable JSON scalars"),
    ({"x": [{"a": 1}]}, TypeError, "hashable JSON scalars"),
    ({"x": {1, 2}}, TypeError, "must be a list"),
    ({"x": [float("nan")]}, ValueError, "non-finite"),
    ({"x": [1, 1]}, ValueError, "repeats"),
    ({"x": [1], "widht": [3]}, ValueError, r"\['widht'\] are not parameters of square"),
    ({"offset": [1]}, ValueError, r"lacks axes \['x'\]"),
    ({"not an id": [1]}, ValueError, "identifiers"),
])
def test_bad_grids_raise_clear_errors(grid, error, match):
    with pytest.raises(error, match=match):
        sweeps.expand_grid(grid, square)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name"):
        sweeps.run_sweep(square, {"x": [1]}, name="../up", cache=tmp_path)
    with pytest.raises(ValueError, match="n_jobs"):
        sweeps.run_sweep(square, {"x": [1]}, name="s", cache=tmp_path, n_jobs=0)
    with pytest.raises(TypeError, match="JSON|serializable"):
        sweeps.run_sweep(bad_result, {"x": [1]}, name="s", cache=tmp_path, progress=False)


def test_point_key_is_stable_and_order_free():
    assert sweeps.point_key({"a": 1, "b": 2.0}) == sweeps.point_key({"b": 2.0, "a": 1})
    assert sweeps.point_key({"a": 1}) != sweeps.point_key({"a": 2})
    assert sweeps.point_key({"a": 1}, version=1) != sweeps.point_key({"a": 1}, version=2)


def test_cache_hit_recomputes_nothing(tmp_path):
    grid = {"x": [1, 2, 3], "offset": [10]}
    first = sweeps.run_sweep(square, grid, name="sq", cache=tmp_path, progress=False)
    assert sorted(CALLS) == [1, 2, 3]
    assert first.column("y").tolist() == [11, 14, 19]
    CALLS.clear()
    again = sweeps.run_sweep(square, grid, name="sq", cache=tmp_path, progress=False)
    assert CALLS == [] and again.rows == first.rows
    # a grown grid computes only the new point
    sweeps.run_sweep(square, {"x": [1, 2, 3, 4], "offset": [10]}, name="sq", cache=tmp_path, progress=False)
    assert CALLS == [4]
    # a new version invalidates everything
    CALLS.clear()
    sweeps.run_sweep(square, grid, name="sq", cache=tmp_path, version=2, progress=False)
    assert sorted(CALLS) == [1, 2, 3]


def test_in_process_run_restores_thread_count(tmp_path):
    before = torch.get_num_threads()
    table = sweeps.run_sweep(square, {"x": [1]}, name="t", cache=tmp_path, threads_per_point=1, progress=False)
    assert table[0]["threads"] == 1 and torch.get_num_threads() == before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "edit_result", "wrong_schema", "empty"])
def test_corrupt_or_partial_entries_are_detected_and_recomputed(tmp_path, damage):
    grid = {"x": [1, 2, 3]}
    sweeps.run_sweep(square, grid, name="c", cache=tmp_path, progress=False)
    path = tmp_path / "c" / f"{sweeps.point_key({'x': 2})}.json"
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff not json")
    elif damage == "edit_result":
        path.write_text(text.replace('"y":4', '"y":5'))
        assert '"y":5' in path.read_text()
    elif damage == "wrong_schema":
        path.write_text(text.replace(sweeps.SCHEMA, "labkit.sweep/0"))
    else:
        path.write_text("")
    CALLS.clear()
    with pytest.warns(UserWarning, match="corrupt or partial"):
        table = sweeps.run_sweep(square, grid, name="c", cache=tmp_path, progress=False)
    assert CALLS == [2]
    assert table.column("y").tolist() == [1, 4, 9]
    assert json.loads(path.read_text())["result"]["y"] == 4  # repaired on disk


def test_skip_mode_reads_only_cached_points(tmp_path):
    sweeps.run_sweep(square, {"x": [1, 3]}, name="s", cache=tmp_path, progress=False)
    CALLS.clear()
    table = sweeps.run_sweep(square, {"x": [1, 2, 3]}, name="s", cache=tmp_path, progress=False, missing="skip")
    assert CALLS == [] and table.column("x").tolist() == [1, 3]
    with pytest.raises(ValueError, match="missing"):
        sweeps.run_sweep(square, {"x": [1]}, name="s", cache=tmp_path, missing="ignore")


def test_paper_grid_matches_the_command_line_defaults():
    grid = sweeps.paper_grid("fig3a_size_n")
    assert grid["steps"] == 20000 and grid["dim"] == 32 and "device" not in grid
    with pytest.raises(ValueError, match="must be one of"):
        sweeps.paper_grid("fig9")


def test_no_cache_mode_always_computes(tmp_path):
    sweeps.run_sweep(square, {"x": [1, 2]}, name="n", cache=False, progress=False)
    sweeps.run_sweep(square, {"x": [1, 2]}, name="n", cache=False, progress=False)
    assert sorted(CALLS) == [1, 1, 2, 2]


def test_parallel_processes_use_one_torch_thread(tmp_path):
    table = sweeps.run_sweep(square, {"x": [1, 2, 3, 4], "offset": [0]}, name="p", cache=tmp_path,
                             n_jobs=2, backend="loky", progress=False)
    assert table.column("y").tolist() == [1, 4, 9, 16]  # grid order, whatever the finish order
    assert set(table.column("threads").tolist()) == {1}
    assert os.getpid() not in set(table.column("pid").tolist())  # ran in worker processes
    assert len(list((tmp_path / "p").glob("*.json"))) == 4


def test_backend_from_joblib_config(tmp_path):
    # the mechanism a Dask or Ray cluster plugs into; here with a local backend
    with joblib.parallel_config(backend="threading"):
        table = sweeps.run_sweep(square, {"x": [1, 2, 3]}, name="b", cache=tmp_path, n_jobs=2,
                                 backend=None, progress=False)
    assert table.column("y").tolist() == [1, 4, 9]
    assert set(table.column("pid").tolist()) == {os.getpid()}  # threads of this process


CHILD = textwrap.dedent("""
    import sys, time
    from labkit import sweeps

    def slow(x):
        with open(sys.argv[2], "a") as f:
            f.write(f"{x}\\n")
        time.sleep(0.25)
        return {"y": x * x}

    sweeps.run_sweep(slow, {"x": list(range(40))}, name="kill", cache=sys.argv[1], progress=False)
""")


def test_sweep_killed_midway_resumes_without_recomputing(tmp_path):
    log = tmp_path / "started.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(log)], env=env)
    folder = tmp_path / "kill"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(folder.glob("*.json"))) < 4:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {json.loads(p.read_text())["config"]["x"] for p in folder.glob("*.json")}
    assert 4 <= len(finished) < 40, "the child should be killed midway"
    assert not [p for p in folder.iterdir() if p.suffix not in (".json", ".tmp")]

    table = sweeps.run_sweep(square, {"x": list(range(40))}, name="kill", cache=tmp_path, progress=False)
    assert sorted(CALLS) == sorted(set(range(40)) - finished)  # nothing finished is recomputed
    assert table.column("y").tolist() == [x * x for x in range(40)]


def test_table_helpers(tmp_path):
    table = sweeps.run_sweep(square, {"x": [1, 2], "offset": [0, 10]}, name="tb", cache=tmp_path, progress=False)
    assert len(table.where(offset=10)) == 2
    rows, cols, values = table.pivot("x", "offset", "y")
    assert rows == [1, 2] and cols == [0, 10]
    np.testing.assert_array_equal(values, [[1, 11], [4, 14]])
    with pytest.raises(KeyError, match="nope"):
        table.column("nope")


def test_paper_grids_are_valid_and_cli_lists_them(capsys):
    for grid in sweeps.PAPER_GRIDS.values():
        configs = sweeps.expand_grid(grid)
        assert configs and all(c["dim"] in (8, 16, 32, 64) for c in configs)
    assert max(c["n"] for c in sweeps.expand_grid(sweeps.PAPER_GRIDS["fig3a_size_n"])) == 100_000
    assert sweeps.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in sweeps.PAPER_GRIDS)


def test_cli_runs_a_tiny_override_into_the_cache_and_resumes(tmp_path, capsys):
    args = ["fig3b_decay", "--cache", str(tmp_path), "--steps", "3", "--batch-size", "8", "--num-samples", "16",
            "--set", "dim=2", "--set", "n=[8]", "--set", "width=4", "--set", "depth=1",
            "--set", "weight_decay=[0.0, 0.1]", "--set", "sample_steps=3", "--quiet"]
    assert sweeps.main(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["weight_decay"] for r in rows] == [0.0, 0.1] and all(0 <= r["memorization"] <= 1 for r in rows)
    entries = sorted((tmp_path / "sweeps" / "fig3b_decay").glob("*.json"))
    assert len(entries) == 2
    stamps = [p.stat().st_mtime_ns for p in entries]
    assert sweeps.main(args) == 0  # second run reads the cache
    assert [p.stat().st_mtime_ns for p in entries] == stamps
    # a session without the command line (e.g. notebook 02) finds the same points
    from labkit.capacity import memorization_point

    grid = {**sweeps.paper_grid("fig3b_decay", steps=3, batch_size=8, num_samples=16), "dim": 2, "n": [8],
            "width": 4, "depth": 1, "weight_decay": [0.0, 0.1], "sample_steps": 3}
    found = sweeps.run_sweep(memorization_point, grid, name="fig3b_decay", cache=tmp_path / "sweeps",
                             missing="skip", progress=False)
    assert found.rows == rows
    with pytest.raises(SystemExit):
        sweeps.main(["fig3b_decay", "--set", "n"])
    with pytest.raises(ValueError, match="not parameters"):
        sweeps.main(["fig3b_decay", "--cache", str(tmp_path), "--set", "widht=3"])
