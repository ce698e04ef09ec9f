"""labkit.results as a store that loses nothing and notices everything: stale rows kept under
``superseded``, files owned by one experiment, row and file checksums, every stored number
compared by ``verify``, ``verified_by`` stamps and provenance checks, merges, the digest of a
user's own code; and the Table 1 rows split per arm, and the claims freeze. Each guard is shown
failing on the wrong input, then passing on the right one."""

import dataclasses
import datetime as dt
import json
import sys

import pytest

from labkit import cli, experiments, provenance, results, verification
from labkit.experiments import Experiment

TINY_CURVE = {"mixture": "gmm4", "dim": 2, "n": 8, "width": [8, 16], "depth": 1, "steps": 300,
              "batch_size": 16, "num_samples": 64, "sample_steps": 8, "first_eval": 50, "seed": 0}
POINT = "labkit.experiments:mixture_curve"


def quiet(message):
    pass


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A two-row experiment registered as ``tiny_test``, computed once into ``tiny.json``."""
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    exp = Experiment(point_fn=POINT, grids=(TINY_CURVE,), purpose="test")
    monkeypatch.setitem(experiments.EXPERIMENTS, "tiny_test", exp)
    out = tmp_path / "tiny.json"
    results.run_results("tiny_test", out, log=quiet)
    return out


def _register(monkeypatch, name="tiny_test", **changes):
    kw = {"point_fn": POINT, "grids": (TINY_CURVE,), "purpose": "test", **changes}
    monkeypatch.setitem(experiments.EXPERIMENTS, name, Experiment(**kw))


def _resealed(doc):
    """``doc`` with its row and file checksums renewed: wrong numbers that agree with their
    checksums (as wrong code would write them), which only a recomputation catches."""
    out = {**doc, "rows": [{**r, "checksum": results.row_checksum(r)} for r in doc["rows"]]}
    out["checksum"] = results.file_checksum(out)
    return out


def _read(path):
    return json.loads(path.read_text())


def _write(path, doc):
    path.write_text(json.dumps(doc))


def _no_recomputing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a row was recomputed")

    monkeypatch.setattr(results, "_one_row", refuse)  # a run's rows
    monkeypatch.setattr(verification, "_one_row", refuse)  # verify's recomputations


# ----------------------------------------------------------- 1. no row is lost (issue 29, item 1)

def test_another_experiment_on_the_same_file_is_refused_naming_both(tiny, monkeypatch):
    _register(monkeypatch, "tiny_other", grids=({**TINY_CURVE, "width": 8},))
    before = tiny.read_bytes()
    with pytest.raises(ValueError, match="'tiny_test', not 'tiny_other'"):
        results.run_results("tiny_other", tiny, log=quiet)
    assert tiny.read_bytes() == before  # nothing written: 2 rows, not 1
    logs = []
    results.run_results("tiny_test", tiny, log=logs.append)  # its own experiment: accepted
    assert "computing 0" in logs[0] and len(_read(tiny)["rows"]) == 2


def _with_changed_default(fn):
    """``fn`` under the same name with the default of ``t_min`` doubled (a changed default)."""
    import functools
    import inspect

    sig = inspect.signature(fn)
    old = sig.parameters["t_min"].default

    @functools.wraps(fn)
    def wrapper(*args, t_min=2 * old, **kwargs):
        return fn(*args, t_min=t_min, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[
        p.replace(default=2 * old) if p.name == "t_min" else p for p in sig.parameters.values()])
    return wrapper


@pytest.mark.parametrize("change", ["default", "grid", "version"])
def test_stale_rows_move_to_superseded_with_their_reason_and_stay(tiny, monkeypatch, change):
    stored = _read(tiny)["rows"]
    if change == "default":
        monkeypatch.setattr(experiments, "mixture_curve",
                            _with_changed_default(experiments.mixture_curve))
        reason = "not in the current grid"
    elif change == "grid":
        _register(monkeypatch, grids=({**TINY_CURVE, "width": [8, 16], "steps": 200},))
        reason = "not in the current grid"
    else:
        _register(monkeypatch, version=2)
        reason = "computed at version 1; the experiment is at version 2"
    logs = []
    results.run_results("tiny_test", tiny, limit=0, log=logs.append)
    data = _read(tiny)
    assert data["rows"] == [] and "2 rows of tiny.json do not match" in logs[0]
    assert [(r["config"], r["result"]) for r in data["superseded"]] == \
        [(r["config"], r["result"]) for r in stored]
    assert all(reason in r["superseded"]["reason"] for r in data["superseded"])
    assert results.check_checksums(tiny) == []
    results.run_results("tiny_test", tiny, limit=1, log=quiet)  # the next write keeps them
    data = _read(tiny)
    assert len(data["rows"]) == 1 and len(data["superseded"]) == 2


def test_drop_stale_drops_the_stale_rows_and_says_how_many(tiny, tmp_path, monkeypatch,
                                                           capsys):
    kept = tmp_path / "kept.json"
    kept.write_bytes(tiny.read_bytes())
    _register(monkeypatch, version=2)
    run = ["results", "run", "tiny_test", "--limit", "0", "--quiet", "--out"]
    assert cli.main([*run, str(kept)]) == 0
    assert "dropping" not in capsys.readouterr().out and len(_read(kept)["superseded"]) == 2
    assert cli.main([*run, str(tiny), "--drop-stale"]) == 0
    assert "dropping 2 stale rows (--drop-stale)" in capsys.readouterr().out
    data = _read(tiny)
    assert data["rows"] == [] and "superseded" not in data
    assert results.check_checksums(tiny) == []


def test_a_config_edited_by_hand_is_caught_by_its_checksum(tiny, monkeypatch):
    edited = _read(tiny)
    edited["rows"][0]["config"]["seed"] = 5
    _write(tiny, edited)
    before = tiny.read_bytes()
    with pytest.raises(ValueError, match=r"row 0 .* does not match its checksum.*edited by hand"):
        results.run_results("tiny_test", tiny, log=quiet)
    assert tiny.read_bytes() == before  # refused before anything was written
    _no_recomputing(monkeypatch)
    logs = []
    assert results.verify(tiny, rows="all", log=logs.append) is False
    assert "does not match its checksum" in logs[0]
    assert results.check_checksums(tiny) != []
    edited["rows"][0]["config"]["seed"] = 0  # restored: the checksums agree again
    _write(tiny, edited)
    assert results.check_checksums(tiny) == []


# ----------------------------------------------- 2. every stored number compared, in full

@pytest.mark.parametrize("plant", ["curve past the prefix", "doubled scalar", "extra key"])
def test_verify_in_full_reports_a_planted_number_and_checksums_catch_it_unrecomputed(
        tiny, tmp_path, monkeypatch, plant):
    good = _read(tiny)
    wrong = json.loads(json.dumps(good))
    result = wrong["rows"][0]["result"]
    if plant == "curve past the prefix":
        result["memorization"][-1] += 0.01
        key = "memorization"
    elif plant == "doubled scalar":
        result["lipschitz_max"] *= 2
        key = "lipschitz_max"
    else:
        result["lipschitz_max_2"] = result["lipschitz_max"]
        key = "lipschitz_max_2"
    planted = tmp_path / "planted.json"
    _write(planted, _resealed(wrong))
    # the prefix covers none of these: only the full recomputation sees them
    assert results.verify(planted, rows="all", max_steps=100, log=quiet) is True
    logs = []
    assert results.verify(planted, rows="all", log=logs.append) is False
    assert any(m.startswith("row 0") and "MISMATCH in " + key in m for m in logs), logs
    assert results.verify(tiny, rows="all", log=quiet) is True
    # the same edit made by hand: found by the checksums without recomputing
    _write(planted, wrong)
    _no_recomputing(monkeypatch)
    assert results.check_checksums(planted) and results.check_checksums(tiny) == []
    assert results.verify(planted, rows="all", log=quiet) is False


# ---------------------------------------------------------------- 3. stamps and provenance

def test_stamp_writes_verified_by_into_the_agreeing_rows_only(tiny, tmp_path):
    wrong = _read(tiny)
    wrong["rows"][0]["result"]["lipschitz_max"] *= 2
    planted = tmp_path / "planted.json"
    _write(planted, _resealed(wrong))
    assert results.verify(planted, rows="all", stamp=True, log=quiet) is False
    rows = _read(planted)["rows"]
    assert "verified_by" not in rows[0] and "verified_by" in rows[1]
    stamp = rows[1]["verified_by"]
    assert stamp["labkit_digest"] == results.labkit_digest() and stamp["max_steps"] is None
    assert "lipschitz_max" in stamp["compared"] and "memorization" in stamp["compared"]
    assert results.check_checksums(planted) == []  # a stamp changes no checksum


def test_bare_rows_are_listed_until_stamped(tiny, capsys):
    bare = _read(tiny)
    for row in bare["rows"]:
        del row["provenance"]
    _write(tiny, bare)
    problems = results.provenance_problems(tiny)
    assert len(problems) == 2 and all("no provenance and no verified_by" in p for p in problems)
    assert cli.main(["verify", str(tiny), "--provenance"]) == 1
    assert "INCOMPLETE (2 problems)" in capsys.readouterr().out
    assert results.verify(tiny, rows="unverified", stamp=True, log=quiet) is True
    assert results.provenance_problems(tiny) == []
    assert cli.main(["verify", str(tiny), "--provenance"]) == 0
    assert "provenance complete" in capsys.readouterr().out


def test_a_commit_created_after_the_row_started_is_reported_and_set_aside(tiny, monkeypatch):
    started = dt.datetime.fromisoformat(_read(tiny)["rows"][0]["provenance"]["started"])
    monkeypatch.setattr(provenance, "_commit_time", lambda commit: started - dt.timedelta(hours=1))
    assert results.provenance_problems(tiny) == []  # a commit made before the run: fine
    assert results.set_aside_late_commits(tiny, log=quiet) == 0
    monkeypatch.setattr(provenance, "_commit_time", lambda commit: started + dt.timedelta(hours=1))
    problems = results.provenance_problems(tiny)
    assert len(problems) == 2 and all("after the row's computation started" in p
                                      for p in problems)
    assert results.set_aside_late_commits(tiny, log=quiet) == 2
    rows = _read(tiny)["rows"]
    assert all("provenance" not in r and "after the row's computation started"
               in r["provenance_unreliable"]["reason"] for r in rows)
    assert results.check_checksums(tiny) == []
    # their code is unknown until a recomputation stamps them
    assert all("no provenance" in p for p in results.provenance_problems(tiny))
    assert results.verify(tiny, rows="unverified", stamp=True, log=quiet) is True
    assert results.provenance_problems(tiny) == []


# ------------------------------------------------------------------------------- 4. merges

def test_merge_adds_missing_rows_and_refuses_other_numbers_or_experiments(tiny, tmp_path):
    full = _read(tiny)
    part = tmp_path / "part.json"
    _write(part, _resealed({**full, "rows": full["rows"][1:]}))
    assert results.merge_results(part, tiny, log=quiet) == 1
    merged = _read(part)
    assert [r["config"] for r in merged["rows"]] == [r["config"] for r in full["rows"][1:]] + \
        [full["rows"][0]["config"]]
    assert results.check_checksums(part) == []
    assert results.merge_results(part, tiny, log=quiet) == 0  # nothing left to add
    other = json.loads(json.dumps(full))
    other["rows"][0]["result"]["memorization"][-1] += 0.01
    differing = tmp_path / "differing.json"
    _write(differing, _resealed(other))
    before = part.read_bytes()
    with pytest.raises(ValueError, match="different numbers"):
        results.merge_results(part, differing, log=quiet)
    foreign = tmp_path / "foreign.json"
    _write(foreign, {**full, "name": "tiny_other"})
    with pytest.raises(ValueError, match="'tiny_other', not 'tiny_test'"):
        results.merge_results(part, foreign, log=quiet)
    assert part.read_bytes() == before


# ---------------------------------------------------------------- 5. a user's own code

USER_EXPERIMENT = '''
"""An experiment whose point function uses a helper module of the same folder."""
from labkit.experiments import Experiment

import my_helper


def point(seed: int = 0) -> dict:
    return {"value": my_helper.RADIUS * (seed + 1)}


spiral = Experiment(point_fn="my_spiral:point", grids=({"seed": [0, 1]},), purpose="a test",
                    compare=("value",), prefix_key=None)
'''


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    (tmp_path / "my_helper.py").write_text("RADIUS = 1.0\n")
    (tmp_path / "my_spiral.py").write_text(USER_EXPERIMENT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    for module in ("my_spiral", "my_helper"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_user_digest_covers_a_helper_module_and_the_run_says_rows_came_from_other_code(
        user_code):
    results.run_results("my_spiral:spiral", "spiral.json", log=quiet)
    first = results.user_digest("my_spiral")
    assert first["files"] == 2 and results.user_digest("my_spiral") == first
    rows = _read(user_code / "spiral.json")["rows"]
    assert all(r["provenance"]["user_code"] == first for r in rows)
    logs = []
    results.run_results("my_spiral:spiral", "spiral.json", log=logs.append)
    assert not any("other code" in m for m in logs)  # the same code: nothing to say
    (user_code / "my_helper.py").write_text("RADIUS = 2.0\n")  # the helper changed
    assert results.user_digest("my_spiral")["digest"] != first["digest"]
    logs.clear()
    results.run_results("my_spiral:spiral", "spiral.json", log=logs.append)
    assert any("of 2 stored rows, 0 ran the current code, 2 other code" in m for m in logs), logs


# -------------------------------------------------------- 6. Table 1 computed arm by arm

TINY_ARM = dict(n=12, train_steps=40, batch_size=12, finetune_steps=2, num_samples=8,
                sample_steps=3, importance_batches=1, classifier_steps=3, probe_samples=8,
                first_probe=10)
METRICS = ("memorization", "fd", "precision", "recall", "params", "heads")


def test_table1_arm_split_seed_row_and_table1_runs_agree_with_table1_seed(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "seed"))
    config = results.full_config(experiments.table1_seed,
                                 {**TINY_ARM, "seed": 1, "sweep_ratios": [0.1, 0.2]})
    result = experiments.table1_seed(**config)
    wall = result.pop("wall_s")
    seed_row = {"config": config, "result": results.storable(result), "wall_s": wall}
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "arms"))  # the base trained anew
    cells = [(m, 0.2) for m in experiments.METHODS] + \
        [(m, 0.1) for m in ("small-t importance", "random")]
    probe = {k: result[k] for k in ("probe_steps", "probe_memorization", "null_memorization")}
    for arm, ratio in cells:
        got = experiments.table1_arm(seed=1, arm=arm, ratio=ratio, **TINY_ARM)
        want = result["arms"][arm] if ratio == 0.2 else \
            next(c for c in result["sweep"][arm] if c["ratio"] == ratio)
        assert {k: got[k] for k in METRICS} == {k: want[k] for k in METRICS}, (arm, ratio)
        assert {k: got[k] for k in probe} == probe
    split = experiments.split_seed_row(seed_row)
    assert sorted((r["config"]["arm"], r["config"]["ratio"]) for r in split) == sorted(cells)
    for row in split:
        arm, ratio = row["config"]["arm"], row["config"]["ratio"]
        want = result["arms"][arm] if ratio == 0.2 else \
            next(c for c in result["sweep"][arm] if c["ratio"] == ratio)
        assert {k: row["result"][k] for k in METRICS} == {k: want[k] for k in METRICS}
        assert results.full_config(experiments.table1_arm, row["config"]) == row["config"]
    (run,) = experiments.table1_runs([{**r["config"], **r["result"]} for r in split])
    assert run["arms"] == result["arms"] and run["sweep"] == result["sweep"]
    assert run["sweep_ratios"] == [0.1, 0.2] and run["probe_memorization"] == \
        result["probe_memorization"]


# ------------------------------------------------------------------- 7. the claims freeze

def test_freeze_records_digests_and_refuses_a_changed_declaration(tmp_path):
    from labkit.claims import CLAIMS, declaration_digest, freeze, lock_digest, read_lock

    claims = CLAIMS[:3]
    lock = freeze(claims, results_dir=tmp_path, log=quiet)
    entry = lock["freezes"][-1]
    assert entry["claims"] == {c.id: declaration_digest(c) for c in claims}
    assert read_lock(tmp_path) == lock and lock_digest(tmp_path) == entry["digest"]
    changed = dataclasses.replace(claims[0], statement=claims[0].statement + " (reworded)")
    with pytest.raises(ValueError, match=claims[0].id):
        freeze((changed, *claims[1:]), results_dir=tmp_path, log=quiet)
    logs = []
    assert freeze(claims, results_dir=tmp_path, log=logs.append) == lock  # unchanged: accepted
    assert "nothing to freeze" in logs[0]
    more = freeze(CLAIMS[:4], results_dir=tmp_path, log=quiet)  # a new claim: a new freeze
    assert len(more["freezes"]) == 2 and more["freezes"][-1]["added"] == [CLAIMS[3].id]


def test_a_field_added_with_a_default_leaves_the_declaration_digest_unchanged():
    from labkit.claims import CLAIMS, Claim, declaration_digest

    c = next(c for c in CLAIMS if c.kind == "paired" and c.margin is None)
    assert declaration_digest(dataclasses.replace(c, margin=None)) == declaration_digest(c)
    assert declaration_digest(dataclasses.replace(c, margin=0.05)) != declaration_digest(c)

    @dataclasses.dataclass(frozen=True)
    class Later(Claim):  # the record as a later labkit might declare it
        new_field: float = 0.0

    fields = {f.name: getattr(c, f.name) for f in dataclasses.fields(Claim)}
    assert declaration_digest(Later(**fields)) == declaration_digest(c)
    assert declaration_digest(Later(**fields, new_field=1.0)) != declaration_digest(c)
