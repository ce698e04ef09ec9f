"""Tests for labkit.sweeps: grid validation, caching, corruption recovery, resume after a kill,
parallel workers with one torch thread, the Table helpers and the command line."""

import functools
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


def cube(x, offset=0):
    CALLS.append(x)
    return {"y": x**3 + offset}


def scaled(x, factor=1, device="cpu"):
    CALLS.append(x)
    return {"y": x * factor, "device": device}


def boom(x):
    if x == 3:
        raise ValueError("boom")
    return {"y": x}


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
    path = tmp_path / "c" / f"{sweeps.point_key({'x': 2}, point_fn=square)}.json"
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


SLOW = textwrap.dedent("""
    import os, time

    def slow(x):
        with open(os.environ["SLOW_LOG"], "a") as f:
            f.write(f"{x}\\n")
        time.sleep(float(os.environ.get("SLOW_SLEEP", "0.25")))
        return {"y": x * x}
""")
CHILD = textwrap.dedent("""
    import sys
    from labkit import sweeps
    from slow_points import slow

    sweeps.run_sweep(slow, {"x": list(range(40))}, name="kill", cache=sys.argv[1], progress=False)
""")


def _slow_module(tmp_path, monkeypatch):
    """The point function of the killed run, imported here so the resumed run shares it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("slow_points", None)
    import slow_points

    return slow_points.slow


def test_sweep_killed_midway_resumes_without_recomputing(tmp_path, monkeypatch):
    log = tmp_path / "started.txt"
    (tmp_path / "slow_points.py").write_text(SLOW)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SLOW_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], env=env)
    folder = tmp_path / "kill"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(folder.glob("*.json"))) < 4:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {json.loads(p.read_text())["config"]["x"] for p in folder.glob("*.json")}
    assert 4 <= len(finished) < 40, "the child should be killed midway"
    assert not [p for p in folder.iterdir() if p.suffix not in (".json", ".tmp")]

    slow = _slow_module(tmp_path, monkeypatch)
    log.write_text("")
    monkeypatch.setenv("SLOW_LOG", str(log))
    monkeypatch.setenv("SLOW_SLEEP", "0")
    table = sweeps.run_sweep(slow, {"x": list(range(40))}, name="kill", cache=tmp_path, progress=False)
    recomputed = [int(v) for v in log.read_text().split()]
    assert sorted(recomputed) == sorted(set(range(40)) - finished)  # nothing finished is recomputed
    assert table.column("y").tolist() == [x * x for x in range(40)]


# ----------------------------------------------------------------------------- the point function in the key

def test_cache_is_keyed_on_the_point_function(tmp_path):
    """Issue 12 item 2: the same grid and name with another function must not serve its results."""
    grid = {"x": [2, 3]}
    assert sweeps.run_sweep(square, grid, name="x", cache=tmp_path, progress=False).column("y").tolist() == [4, 9]
    assert sweeps.run_sweep(cube, grid, name="x", cache=tmp_path, progress=False).column("y").tolist() == [8, 27]
    CALLS.clear()
    assert sweeps.run_sweep(square, grid, name="x", cache=tmp_path, progress=False).column("y").tolist() == [4, 9]
    assert CALLS == []  # both functions' entries live side by side


def test_partial_bound_arguments_are_part_of_the_key(tmp_path):
    grid = {"x": [1, 2]}
    run = lambda fn, **kw: sweeps.run_sweep(fn, grid, name="p", cache=tmp_path, progress=False, **kw)
    assert run(functools.partial(scaled, factor=10)).column("y").tolist() == [10, 20]
    assert run(functools.partial(scaled, factor=100)).column("y").tolist() == [100, 200]
    assert run(scaled).column("y").tolist() == [1, 2]
    # where a point runs does not change its result: device is left out by default
    CALLS.clear()
    table = run(functools.partial(scaled, device="gpu"))
    assert CALLS == [] and table.column("device").tolist() == ["cpu", "cpu"]  # found the plain run
    assert sweeps.point_key({"x": 1}, point_fn=functools.partial(scaled, device="gpu")) \
        == sweeps.point_key({"x": 1}, point_fn=scaled)
    # ... unless asked; and ignore never drops a grid axis
    assert run(functools.partial(scaled, device="gpu"), ignore=()).column("device").tolist() == ["gpu", "gpu"]
    assert run(functools.partial(scaled, factor=10), ignore=("x", "factor")).column("y").tolist() == [1, 2]
    with pytest.raises(TypeError, match="ignore"):
        run(scaled, ignore="device")


def test_edited_source_is_a_new_function(tmp_path, monkeypatch):
    module = tmp_path / "edited_points.py"
    module.write_text("def f(x):\n    return {'y': x + 1}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import edited_points

    first = sweeps.run_sweep(edited_points.f, {"x": [1]}, name="e", cache=tmp_path, progress=False)
    module.write_text("def f(x):\n    return {'y': x + 2}\n")
    importlib.reload(edited_points)
    second = sweeps.run_sweep(edited_points.f, {"x": [1]}, name="e", cache=tmp_path, progress=False)
    assert (first[0]["y"], second[0]["y"]) == (2, 3)
    sys.modules.pop("edited_points", None)


def test_point_key_is_the_same_in_another_process():
    code = ("import functools; from labkit import sweeps, process; "
            "print(sweeps.point_key({'t': 0.5}, point_fn=functools.partial(process.alpha_sigma)))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    from labkit import process

    assert out.stdout.strip() == sweeps.point_key({"t": 0.5}, point_fn=functools.partial(process.alpha_sigma))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_failing_point_names_its_configuration(tmp_path, n_jobs):
    with pytest.raises(RuntimeError, match=r"point \{'x': 3\} of boom failed: ValueError: boom") as info:
        sweeps.run_sweep(boom, {"x": [1, 2, 3]}, name="f", cache=tmp_path, n_jobs=n_jobs, progress=False)
    if n_jobs == 1:
        assert isinstance(info.value.__cause__, ValueError)
    # the points that did finish are cached
    assert len(list((tmp_path / "f").glob("*.json"))) >= (2 if n_jobs == 1 else 0)


# ----------------------------------------------------------------------------- a real Dask cluster

def pure_square(x, offset=0):
    return {"y": x * x + offset}


def dies_once(x, marker):
    """Kills the worker process that runs x = 5 the first time (a crash mid-sweep)."""
    if x == 5 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return {"y": x * x}


def test_dask_backend_without_a_cluster_says_how_to_get_one(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    from distributed import get_client

    try:
        get_client()
        pytest.skip("a Dask client is already active in this process")
    except ValueError:
        pass
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with pytest.raises(ValueError, match="scheduler='tcp://HOST:PORT'"):
        sweeps.run_sweep(pure_square, {"x": [1]}, name="d", cache=tmp_path, backend="dask", progress=False)
    with pytest.raises(ValueError, match="needs backend='dask'"):
        sweeps.run_sweep(pure_square, {"x": [1]}, name="d", cache=tmp_path, scheduler="tcp://127.0.0.1:1")


# dask_cluster: a two-process LocalCluster shared by the session (tests/conftest.py)


def test_dask_results_and_cache_equal_the_local_run(tmp_path, dask_cluster):
    grid = {"x": [1, 2, 3, 4, 5, 6], "offset": [0, 10]}
    local = sweeps.run_sweep(pure_square, grid, name="g", cache=tmp_path / "local", progress=False)
    remote = sweeps.run_sweep(pure_square, grid, name="g", cache=tmp_path / "dask", backend="dask",
                              scheduler=dask_cluster.scheduler_address, progress=False)
    assert remote.rows == local.rows
    read = lambda folder: {p.name: json.loads(p.read_text()) for p in (tmp_path / folder / "g").glob("*.json")}
    assert read("dask") == read("local") and len(read("dask")) == 12  # same keys, same entries
    # the active client is used when no scheduler is named; nothing is recomputed
    from distributed import Client

    with Client(dask_cluster.scheduler_address) as client:
        before = {p: p.stat().st_mtime_ns for p in (tmp_path / "dask" / "g").glob("*.json")}
        again = sweeps.run_sweep(pure_square, {**grid, "x": [1, 2, 3, 4, 5, 6, 7]}, name="g",
                                 cache=tmp_path / "dask", backend="dask", progress=False)
        assert {p: p.stat().st_mtime_ns for p in before} == before
        assert len(again) == 14 and again.where(x=7).column("y").tolist() == [49, 59]
        assert client.status == "running"


def test_dask_worker_killed_mid_sweep_loses_nothing(tmp_path, dask_cluster):
    marker = tmp_path / "killed"
    point_fn = functools.partial(dies_once, marker=str(marker))
    grid = {"x": list(range(12))}
    table = sweeps.run_sweep(point_fn, grid, name="k", cache=tmp_path, backend="dask",
                             scheduler=dask_cluster.scheduler_address, progress=False)
    assert marker.exists(), "a worker should have been killed"
    assert table.column("y").tolist() == [x * x for x in range(12)]
    assert len(list((tmp_path / "k").glob("*.json"))) == 12
    CALLS.clear()
    resumed = sweeps.run_sweep(point_fn, grid, name="k", cache=tmp_path, progress=False)  # all cached
    assert resumed.rows == table.rows


def test_dask_failing_point_names_its_configuration(tmp_path, dask_cluster):
    with pytest.raises(RuntimeError, match=r"point \{'x': 3\} of boom failed"):
        sweeps.run_sweep(boom, {"x": [1, 2, 3]}, name="f", cache=tmp_path, backend="dask",
                         scheduler=dask_cluster.scheduler_address, progress=False)


def test_table_helpers(tmp_path):
    table = sweeps.run_sweep(square, {"x": [1, 2], "offset": [0, 10]}, name="tb", cache=tmp_path, progress=False)
    assert len(table.where(offset=10)) == 2
    rows, cols, values = table.pivot("x", "offset", "y")
    assert rows == [1, 2] and cols == [0, 10]
    np.testing.assert_array_equal(values, [[1, 11], [4, 14]])
    with pytest.raises(KeyError, match="nope"):
        table.column("nope")


def _numpy_point(x: int) -> dict:
    import numpy as np

    return {"y": np.float64(x) / 2, "bad": float("nan") if x == 2 else 0.0}


def test_a_sweep_point_stores_numpy_numbers_and_names_nan(tmp_path):
    from labkit.sweeps import run_sweep

    table = run_sweep(_numpy_point, {"x": [1]}, name="np", cache=tmp_path, progress=False)
    assert table[0]["y"] == 0.5 and type(table[0]["y"]) is float
    with pytest.raises(ValueError, match=r"point \{'x': 2\} of .*_numpy_point: result\['bad'\] is nan"):
        run_sweep(_numpy_point, {"x": [2]}, name="np", cache=tmp_path, progress=False)


def test_table_pivot_aggregates_the_rows_of_a_cell_instead_of_keeping_the_last():
    table = sweeps.Table([{"a": 1, "b": 1, "v": 0.0}, {"a": 1, "b": 1, "v": 1.0}])
    rows, cols, values = table.pivot("a", "b", "v")
    assert rows == [1] and cols == [1]
    np.testing.assert_array_equal(values, [[0.5]])  # the mean of both seeds, not the last one
    seeds = sweeps.Table([{"w": w, "n": n, "seed": s, "m": 10 * w + n + s}
                          for w in (1, 2) for n in (3, 4) for s in (0, 1, 5) if (w, n) != (2, 4)])
    expect = {"mean": [[15, 16], [25, np.nan]], "median": [[14, 15], [24, np.nan]],
              "min": [[13, 14], [23, np.nan]], "max": [[18, 19], [28, np.nan]],
              "count": [[3, 3], [3, 0]]}
    for agg, want in expect.items():
        np.testing.assert_allclose(seeds.pivot("w", "n", "m", agg=agg)[2], want, err_msg=agg)
    np.testing.assert_allclose(seeds.pivot("w", "n", "m", agg=np.ptp)[2], [[5, 5], [5, np.nan]])
    with pytest.raises(ValueError, match=r"several rows in the cells a=1, b=1 \(2 rows\)"):
        table.pivot("a", "b", "v", agg=None)
    one = seeds.where(seed=0).pivot("w", "n", "m", agg=None)[2]  # one row a cell: allowed
    np.testing.assert_allclose(one, [[13, 14], [23, np.nan]])
    with pytest.raises(ValueError, match="agg must be one of"):
        table.pivot("a", "b", "v", agg="first")
    with pytest.raises(KeyError, match="column 'nope' missing"):
        table.pivot("a", "nope", "v")
    with pytest.raises(TypeError, match="numeric column"):
        sweeps.Table([{"a": 1, "b": 1, "v": "x"}]).pivot("a", "b", "v")
    censored = sweeps.Table([{"a": 1, "b": 1, "v": None}, {"a": 1, "b": 1, "v": 2.0}])
    assert np.isnan(censored.pivot("a", "b", "v")[2][0, 0])  # a None is not silently dropped


def test_table_where_and_unique_name_a_column_no_row_has():
    table = sweeps.Table([{"a": 1, "b": 2}, {"a": 2}])
    assert len(table.where(a=1)) == 1 and len(table.where(b=2)) == 1
    with pytest.raises(KeyError, match=r"no row has column\(s\) \['c'\]"):
        table.where(c=1)
    assert len(sweeps.Table([]).where(c=1)) == 0
    with pytest.raises(KeyError, match="column 'b' missing from rows \\[1\\]"):
        table.unique("b")
