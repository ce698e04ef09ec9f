"""labkit.store: canonical keys, row keys that survive a new defaulted parameter, atomic writes
(NaN refused, no partial file), run folders named by what they depend on."""

import json
import os

import pytest
import torch

from labkit import store


def point(n: int, width: int = 8, seed: int = 0, device: str = "cpu") -> dict:
    return {}


def point_with_a_new_knob(n: int, width: int = 8, seed: int = 0, extra_knob: int = 0,
                          device: str = "cpu") -> dict:
    return {}


def test_canonical_json_is_order_free_and_refuses_nan():
    assert store.canonical({"b": 1, "a": [1.0, "x"]}) == store.canonical({"a": [1.0, "x"], "b": 1})
    assert store.digest({"a": 1}) != store.digest({"a": 2}) and len(store.digest({"a": 1})) == 20
    with pytest.raises(ValueError):
        store.canonical({"a": float("nan")})


def test_row_keys_fill_current_defaults_and_carry_the_version():
    stored = {"n": 16, "width": 8, "seed": 0}  # a row written before extra_knob existed
    assert store.fill_defaults(point, {"n": 16}) == stored
    # the wrong rule (the stored config as is) loses the row; filling the current defaults keeps it
    assert store.canonical({"config": stored, "version": 1}) != \
        store.row_key(point_with_a_new_knob, {"n": 16}, 1)
    assert store.row_key(point_with_a_new_knob, stored, 1) == store.row_key(point_with_a_new_knob, {"n": 16}, 1)
    assert store.row_key(point, stored, 1) != store.row_key(point, stored, 2)
    assert "device" not in store.fill_defaults(point, {"n": 16})  # bound by the command line
    with pytest.raises(ValueError, match=r"config keys \['depth'\] are not parameters"):
        store.fill_defaults(point, {"n": 16, "depth": 2})
    with pytest.raises(ValueError, match="config lacks 'n'"):
        store.fill_defaults(point, {})


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path):
    path = tmp_path / "sub" / "rows.json"
    store.write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(ValueError):
        store.write_json(path, {"a": float("inf")})
    assert json.loads(path.read_text()) == {"a": 1}  # a refused write leaves the old file
    store.write_text(tmp_path / "t.txt", "text")
    assert (tmp_path / "t.txt").read_text() == "text"
    store.save_torch({"w": torch.ones(2)}, tmp_path / "w.pt")
    assert torch.equal(torch.load(tmp_path / "w.pt", weights_only=True)["w"], torch.ones(2))
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_paths_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("LABKIT_RESULTS", str(tmp_path / "r"))
    monkeypatch.setenv("LABKIT_FAST", "1")
    assert store.cache_dir("x") == tmp_path / "c" / "fast" / "x" and store.cache_dir("x").is_dir()
    assert store.results_dir() == tmp_path / "r"
    a = store.run_dir("curve", {"config": {"n": 1}, "version": 1})
    assert a == store.run_dir("curve", {"version": 1, "config": {"n": 1}})
    assert a != store.run_dir("curve", {"config": {"n": 2}, "version": 1})
    assert a.parent == tmp_path / "c" / "fast" / "runs" / "curve"


def test_storable_converts_numbers_and_names_what_it_cannot_store():
    import numpy as np

    assert store.storable({"a": np.float32(0.5), "b": torch.tensor([1, 2]), "c": (np.int64(3), None)}) == \
        {"a": 0.5, "b": [1, 2], "c": [3, None]}
    with pytest.raises(ValueError, match=r"result\['curve'\]\[1\] is nan"):
        store.storable({"curve": [0.1, float("nan")]})
    with pytest.raises(TypeError, match=r"result\['model'\] is a Linear"):
        store.storable({"model": torch.nn.Linear(1, 1)})
    with pytest.raises(TypeError, match="JSON keys are strings"):
        store.storable({1: 0.0})
