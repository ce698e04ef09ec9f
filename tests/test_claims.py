"""labkit.claims (and its old home, labkit.experiments.claims) and the statistics it rests on
(labkit.experiments.stats): each statistic against a well-kept library (scipy's permutation test
and t interval, statsmodels' Holm, TOST and power, lifelines' interval-censored log-normal AFT
fit), the familywise sign-flip adjustment against its closed form, results/claims.json against the
rows it was computed from, the confirmatory status against the lock, the generated sentences and
the guard that keeps a notebook's conclusions within their verdicts."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from labkit import results
from labkit.experiments import claims as C
from labkit.experiments import stats as S


@pytest.fixture(scope="module")
def computed():
    return C.compute_claims()


@pytest.fixture(scope="module")
def stored():
    return C.load_claims()


def _raw_rows(name):
    data = json.loads((results.RESULTS_DIR / f"{name}.json").read_text())
    return [{**r["config"], **r["result"]} for r in data["rows"]]


# --- the statistics against their oracles ---------------------------------------------------------

@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_sign_flip_p_is_scipys_exact_paired_permutation_test(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        a, b = rng.normal(0.3, 1, k), rng.normal(0, 1, k)
        oracle = sps.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis),
                                      permutation_type="samples", n_resamples=np.inf,
                                      vectorized=True, alternative="two-sided").pvalue
        assert S.sign_flip_p(a - b) == pytest.approx(min(oracle, 1.0), abs=1e-12)


def test_sign_flip_p_cannot_go_below_two_over_two_to_the_k():
    for k in (3, 5, 8):
        assert S.sign_flip_p(np.arange(1, k + 1)) == pytest.approx(2 / 2**k)
    with pytest.raises(ValueError, match="finite"):
        S.sign_flip_p([1.0, float("nan")])


def test_paired_test_is_scipys_paired_t():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 8), rng.normal(0, 1, 8)
    out = S.paired_test(a, b)
    ref = sps.ttest_rel(a, b)
    assert out["p_t"] == pytest.approx(ref.pvalue)
    assert out["interval"] == pytest.approx(list(ref.confidence_interval(0.95)))
    assert out["estimate"] == pytest.approx(np.mean(a - b))
    with pytest.raises(ValueError, match="equally long"):
        S.paired_test([1, 2], [1])


def test_holm_is_statsmodels_and_passes_none_through():
    from statsmodels.stats.multitest import multipletests

    ps = [0.01, None, 0.04, 0.03, 0.2]
    got = S.holm(ps)
    want = multipletests([0.01, 0.04, 0.03, 0.2], method="holm")[1]
    assert got[1] is None
    assert [got[i] for i in (0, 2, 3, 4)] == pytest.approx(list(want))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1e-9, 0.001, 0.01, 0.02, 0.05, 0.3, 0.9, 1.0]) |
                st.floats(0, 1), min_size=1, max_size=30))
def test_holm_equals_statsmodels_on_any_family(ps):
    # ties, zeros and ones included: the adjustment is statsmodels' to rounding
    from statsmodels.stats.multitest import multipletests

    want = multipletests(ps, method="holm")[1]
    assert S.holm(ps) == pytest.approx(list(want), rel=1e-12, abs=1e-15)


def _lifelines_slope(obs):
    import pandas as pd
    from lifelines import LogNormalAFTFitter

    frame = pd.DataFrame({"log_n": np.log([o["x"] for o in obs]),
                          # lifelines takes log(lower): a time known only to be below the
                          # first evaluation is given a lower bound far below any time here
                          "lower": [max(o["lower"], 1e-3) for o in obs],
                          "upper": [np.inf if o["upper"] is None else o["upper"] for o in obs]})
    fit = LogNormalAFTFitter().fit_interval_censoring(frame, "lower", "upper")
    return float(fit.params_.loc[("mu_", "log_n")])


def test_censored_power_law_agrees_with_lifelines_on_simulated_censored_times():
    rng = np.random.default_rng(1)
    grid = [0] + [int(round(125 * 2 ** (k / 2))) for k in range(14)]  # the study's step grid
    obs = []
    for x in (16, 32, 64, 128):
        for seed in range(6):
            tau = math.exp(-0.2 + 2.0 * math.log(x) + 0.4 * rng.normal())
            above = [s for s in grid if s >= tau]
            obs.append({"x": x, "seed": seed, "lower": max(s for s in grid if s < tau),
                        "upper": above[0] if above else None})
    assert any(o["upper"] is None for o in obs)  # some runs beyond the budget
    fit = S.censored_power_law(obs, null=1.0)
    assert fit["slope"] == pytest.approx(_lifelines_slope(obs), abs=1e-3)
    lo, hi = fit["interval"]
    assert lo < fit["slope"] < hi
    # the profile interval's ends are where the likelihood-ratio test of the slope has p = 0.05
    for end in (lo, hi):
        assert S.censored_slope_p(obs, end) == pytest.approx(0.05, abs=2e-3)
    # a straight law: every local slope's interval holds its estimate, and the line's slope
    assert [(o["x0"], o["x1"]) for o in fit["local_slopes"]] == [(16, 32), (32, 64), (64, 128)]
    for local in fit["local_slopes"]:
        a, b = local["interval"]
        assert a < local["slope"] < b and a < fit["slope"] < b
    assert fit["lack_of_fit_p"] > 0.05


@pytest.mark.parametrize("where", [{"mixture": "gmm4", "width": 256},
                                   {"mixture": "paper", "width": 256}])
def test_law_slopes_in_claims_agree_with_an_independent_lifelines_fit(stored, where):
    laws = [c for c in stored if c["kind"] == "law" and c["a"] == where
            and c["metric"] == "tau_mem"]
    laws = [c for c in laws if c["estimate"] is not None]  # a law awaiting its rows: no fit
    assert laws
    for law in laws:
        assert law["estimate"] == pytest.approx(_lifelines_slope(law["observations"]), abs=1e-3)


def test_time_interval_brackets_the_crossing_without_interpolation():
    steps, values = [0, 125, 250, 500], [0.0, 0.05, 0.2, 0.4]
    assert S.time_interval(steps, values, 0.1) == {"lower": 125, "upper": 250}
    assert S.time_interval(steps, values, 0.5) == {"lower": 500, "upper": None}
    with pytest.raises(ValueError, match="first evaluation"):
        S.time_interval(steps, [0.3, 0.3, 0.3, 0.3], 0.1)


# --- the labels -----------------------------------------------------------------------------------

def _row(excess, gap):
    return {"memorization": [0.1 + excess], "null_memorization": 0.1,
            "log_likelihood": [-13.4 + gap], "reference_log_likelihood": -13.4, "steps": [0]}


def test_label_is_two_sided():
    # d = 8, n = 16: 97% memorized while the mean log-likelihood sits 0.5 nat *above* fresh draws:
    # the one-sided quality rule would call it generalizing
    assert S.label(_row(0.87, +0.5)) == "memorizing"
    assert S.label(_row(0.02, -0.1)) == "generalizing"
    assert S.label(_row(0.02, +0.6)) == "-"
    assert S.label(_row(0.02, -2.0)) == "failing"
    assert S.label(_row(-0.3, -0.1)) == "-"
    assert S.label(_row(0.15, 0.0)) == "memorizing"
    assert S.label(_row(0.15, 0.0), mem_margin=0.2) == "generalizing"
    with pytest.raises(ValueError, match="positive"):
        S.label(_row(0.0, 0.0), mem_margin=0)


def test_label_sensitivity_reads_every_pair_of_margins():
    table = S.label_sensitivity([_row(0.08, 0.3)],
                                lambda rows, m, g: S.label(rows[0], -1, m, g))
    assert len(table) == 9 and {(t["mem_margin"], t["ll_margin"]) for t in table} == {
        (m, g) for m in S.MEM_MARGINS for g in S.LL_MARGINS}
    assert {t["value"] for t in table} == {"memorizing", "generalizing", "-"}


# --- results/claims.json against its rows ---------------------------------------------------------

def test_claims_json_recomputes_from_the_rows(stored, computed):
    assert C.compare_claims(stored, computed) == []


def test_compare_claims_sees_a_changed_number_and_a_changed_verdict(stored):
    tampered = json.loads(json.dumps(stored))
    tampered[0]["estimate"] *= 1.01  # beyond the rounding tolerance of another platform
    tampered[1]["verdict"] = "supported" if tampered[1]["verdict"] != "supported" else "unresolved"
    assert C.compare_claims(tampered, stored) == sorted([stored[0]["id"], stored[1]["id"]])


def test_every_declared_claim_is_in_the_file_once(stored):
    assert [c["id"] for c in stored] == [c.id for c in C.CLAIMS]
    assert len({c.id for c in C.CLAIMS}) == len(C.CLAIMS)


def _arm_rows():
    out, bases = [], {}
    for r in _raw_rows("table1"):  # one row per (run, arm, ratio)
        out.append({**r, "method": r["arm"]})
        bases.setdefault(r["seed"], {"seed": r["seed"], "method": "base",
                                     "probe_memorization": r["probe_memorization"],
                                     "null_memorization": r["null_memorization"]})
    return out + list(bases.values())


def _values(rows, where, metric, seed):
    key, _, index = metric.partition("@")
    found = []
    for r in rows:
        if r["seed"] == seed and all(r.get(k) == v for k, v in where.items()):
            v = r[key]
            found.append(v[int(index) if index else -1] if isinstance(v, list) else v)
    return found


def test_every_pair_value_is_found_in_the_rows(stored):
    for c in stored:
        if c["kind"] != "paired":
            continue
        names = c["result_set"].split("+")
        rows = [r for n in names for r in (_arm_rows() if n == "table1" else _raw_rows(n))]
        for pair in c["pairs"]:
            for side, where, metric in (("a", c["a"], c["metric"]),
                                        ("b", c["b"], c.get("metric_b") or c["metric"])):
                assert pair[side] in _values(rows, where, metric, pair["seed"]), (c["id"], pair)


def test_paired_estimates_and_intervals_recompute_from_the_pairs(stored):
    for c in stored:
        if c["kind"] != "paired" or len(c["pairs"]) < 2:
            continue
        diff = [p["a"] - p["b"] for p in c["pairs"]]
        res = sps.ttest_1samp(diff, 0.0)
        assert c["estimate"] == pytest.approx(np.mean(diff), rel=1e-9, abs=1e-12), c["id"]
        assert c["interval"] == pytest.approx(list(res.confidence_interval(0.95)), rel=1e-6,
                                              abs=1e-9), c["id"]
        if len(diff) <= 16:
            assert c["p_sign_flip"] == pytest.approx(S.sign_flip_p(diff)), c["id"]
        else:  # too many pairs to enumerate: random sign assignments, never below the floor
            assert c["p_sign_flip"] >= 2 / 2 ** len(diff), c["id"]


def test_holm_adjustments_recompute_with_statsmodels(stored):
    from statsmodels.stats.multitest import multipletests

    for family in {c["family"] for c in stored}:
        members = [c for c in stored if c["family"] == family]
        ps = [(c, "p_adjusted", c["p"]) for c in members if c["p"] is not None]
        ps += [(c, "p_equivalence_adjusted", c["p_equivalence"]) for c in members
               if c.get("p_equivalence") is not None]
        if not ps:
            continue
        want = multipletests([p for _, _, p in ps], method="holm")[1]
        assert [c[key] for c, key, _ in ps] == pytest.approx(list(want)), family


def test_families_follow_the_declared_rule_and_the_derived_role(stored):
    by_id = {c.id: c for c in C.CLAIMS}
    for e in stored:
        role = "confirmatory" if e["confirmatory"] else e["tier"]
        assert e["family"] == f"{C.experiment_of(by_id[e['id']])}: {role}"
        assert e["p"] is not None or e["p_reason"], e["id"]  # a p, or why not
    with pytest.raises(ValueError, match="FAMILY_RULE"):
        C.experiment_of(C.Claim("x", "s", "02", "primary", "paired", "nowhere", "m"))


def test_law_observations_are_evaluation_steps_of_their_runs(stored):
    rows = _raw_rows("training_time")
    for c in stored:
        if c["kind"] != "law":
            continue
        for o in c["observations"]:
            run = [r for r in rows if r["n"] == o["x"] and r["seed"] == o["seed"]
                   and all(r[k] == v for k, v in c["a"].items())]
            assert len(run) == 1
            assert o["lower"] in run[0]["steps"]
            assert o["upper"] is None and o["lower"] == run[0]["steps"][-1] \
                or o["upper"] == run[0]["steps"][run[0]["steps"].index(o["lower"]) + 1]


def test_verdicts_follow_the_declared_rules(stored):
    declared = {c.id: c for c in C.CLAIMS}
    for c in stored:
        seeds = declared[c["id"]].seeds
        if c["tier"] == "primary" and (len(c["seeds"]) < C.PRIMARY_MIN_SEEDS or (
                seeds is not None and set(c["seeds"]) != set(seeds))):
            assert c["verdict"] == "unresolved" and "awaits" in c["note"], c["id"]
            assert c["awaits_seeds"]
        if c["kind"] == "paired" and c["verdict"] in ("supported", "contradicted"):
            assert c["p_adjusted"] < C.ALPHA and c["p_sign_flip_adjusted"] < C.ALPHA, c["id"]
            assert c["p_sign_flip_adjusted"] >= c["p_sign_flip"] - 1e-12
            assert (np.sign(c["estimate"]) == c["direction"]) == (c["verdict"] == "supported")
        if c["verdict"] == "equivalent":
            assert c["p_equivalence_adjusted"] < C.ALPHA, c["id"]
        if c["verdict"] == "unresolved":
            assert c["reason"] and c["note"], c["id"]  # every open verdict says why
        if c["kind"] == "paired" and len(c["pairs"]) <= 4:  # 2 / 2^k >= 0.125
            assert c["verdict"] == "unresolved", c["id"]
        if c["kind"] == "label" and c["seeds"]:
            holds = {cell["value"]["holds"] for cell in c["sensitivity"]}
            assert len(c["sensitivity"]) == 9
            if holds == {True, False}:
                assert c["verdict"] == "unresolved", c["id"]
            assert max(cell["mem_margin"] for cell in c["sensitivity"]) <= S.MEM_POINTS


def test_a_verdict_that_turns_on_a_choice_is_unresolved_and_names_it(stored):
    laws = [c for c in stored if c["kind"].startswith("law") and not c["awaits_seeds"]]
    assert laws and all(c.get("choices") for c in laws)
    for c in stored:
        for choice in c.get("choices", []):
            if choice["choice"] == "memorization mark":
                assert [r["value"] for r in choice["readings"]] == list(C.MEM_MARKS)
            verdicts = {r["verdict"] for r in choice["readings"]}
            if len(verdicts) > 1 and c.get("reading"):
                assert c["verdict"] == "unresolved" and "turns on the" in c["note"], c["id"]
        if c.get("reading"):
            assert c["reason"] == "a threshold it turns on"


def test_leave_one_seed_out_reads_every_seed(stored):
    for c in stored:
        if c["loso"] is None:
            assert len(c["seeds"]) < 2 or c["awaits_seeds"]
            continue
        assert c["loso"]["leave_outs"] == len(c["seeds"]), c["id"]
        assert 0 <= c["loso"]["stability"] <= 1
        assert {x["seed"] for x in c["loso"]["changes"]} <= set(c["seeds"])


def test_a_primary_claim_with_few_seeds_is_unresolved_however_strong():
    strong = C.Claim("t", "Bigger nets memorize more at n = 16.", "02", "primary", "paired",
                     "fig3", "memorization", {"dim": 8, "n": 16, "width": 256, "weight_decay": 0.0,
                                              "seed": 0}, {"dim": 8, "n": 16, "width": 16,
                                                           "weight_decay": 0.0, "seed": 0})
    (entry,) = C.compute_claims(claims=(strong,))
    assert entry["verdict"] == "unresolved" and "awaits" in entry["note"]
    secondary = C.Claim(**{**strong.__dict__, "family": "secondary"})
    (entry,) = C.compute_claims(claims=(secondary,))
    assert entry["verdict"] == "unresolved" and entry["seeds"] == [0]


def test_claim_checks_its_declaration():
    with pytest.raises(ValueError, match="family"):
        C.Claim("x", "s", "02", "main", "paired", "fig3", "memorization")
    with pytest.raises(ValueError, match="kind"):
        C.Claim("x", "s", "02", "primary", "trend", "fig3", "memorization")
    with pytest.raises(ValueError, match="check"):
        C.Claim("x", "s", "02", "primary", "label", "fig2", "label")


# --- the notebooks: conclusions within their verdicts ---------------------------------------------

def _notebook(tmp_path, text):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": [text]}],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_check_notebook_fails_on_a_sentence_that_outruns_its_verdict(tmp_path):
    claims = [{"id": "open", "verdict": "unresolved"}, {"id": "shown", "verdict": "supported"},
              {"id": "wrong", "verdict": "contradicted"}]
    wrong = _notebook(tmp_path, "Findings:\n\n- <!-- claim: open --> Decay raises the likelihood.\n"
                                "- <!-- claim: shown --> Wider nets memorize more.\n")
    with pytest.raises(ValueError, match="open is unresolved"):
        C.check_notebook(wrong, claims)
    right = _notebook(tmp_path, "Findings:\n\n- <!-- claim: open --> We could not tell whether "
                                "decay raises the likelihood.\n- <!-- claim: shown --> Wider nets "
                                "memorize more.\n- <!-- claim: wrong --> The data contradict the "
                                "paper's ordering.\n")
    assert C.check_notebook(right, claims) == 3
    hedged = _notebook(tmp_path, "<!-- claim: shown --> Whether wider nets memorize more is "
                                 "unresolved.")
    assert "shown is supported" in C.notebook_problems(hedged, claims)[0]
    shared = _notebook(tmp_path, "<!-- claim: shown --> <!-- claim: open --> Wider nets memorize "
                                 "more, and decay raises the likelihood.")
    assert [p.split()[0] for p in C.notebook_problems(shared, claims)] == ["open"]
    unknown = _notebook(tmp_path, "<!-- claim: nowhere --> Something holds.")
    assert "no such claim" in C.notebook_problems(unknown, claims)[0]


@pytest.mark.parametrize("name", ["02_approximation_separation", "03_pruning_mitigation"])
def test_the_notebooks_conclusions_are_within_their_verdicts(name, stored):
    path = Path(__file__).resolve().parents[1] / "notebooks" / f"{name}.ipynb"
    C.check_notebook(path, stored)


def test_the_readme_conclusions_are_within_their_verdicts(stored):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "<!-- claim:" in text  # the README states results from the sets: marked
    assert C.text_problems(text, stored) == []
    # the guard fails on the README's own sentences once a verdict turns against them
    flipped = [{**c, "verdict": "unresolved" if c["verdict"] == "supported" else "supported"}
               for c in stored]
    assert C.text_problems(text, flipped)


def test_claims_table_lists_a_notebooks_claims_with_what_they_mean(stored):
    table = C.claims_table("03", stored)
    lines = table.splitlines()
    rows = [line for line in lines[2:] if line.startswith("| `")]
    assert lines[0].startswith("| claim |") and lines[0].endswith("| what it means |")
    assert len(rows) == sum(c["notebook"] == "03" for c in stored)
    assert all(line.count("|") == 7 for line in rows)
    assert "| `t1_small_vs_control` |" in table
    assert "02_approximation_separation.ipynb#how-to-read-a-verdict" in lines[-1]
    assert "](#how-to-read-a-verdict)" in C.claims_table("02", stored).splitlines()[-1]
    for c in stored:  # every open verdict's plain words say why
        assert C.meaning(c).startswith("open: ") == (c["verdict"] == "unresolved"), c["id"]
        assert c["verdict"] != "unresolved" or len(C.meaning(c)) > len("open: ")


def test_labkit_claims_check_fails_on_a_stale_file(tmp_path, computed, monkeypatch):
    from labkit.cli import main

    import labkit.claims

    monkeypatch.setattr(labkit.claims, "compute_claims", lambda: computed)
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"claims": computed}))
    assert main(["claims", "--check", "--out", str(path)]) == 0
    stale = json.loads(json.dumps(computed))
    stale[0]["verdict"] = "contradicted"
    path.write_text(json.dumps({"claims": stale}))
    assert main(["claims", "--check", "--out", str(path)]) == 1


def test_sensitivity_table_marks_the_declared_margins(stored):
    entry = next(c for c in stored if c["id"] == "window_d8_none")
    table = C.sensitivity_table(entry, "runs_without_window")
    lines = table.splitlines()
    assert len(lines) == 2 + 3 and all(line.count("|") == 5 for line in lines)
    assert lines[4].count("**") == 2  # the declared cell: 10 points, 0.25 nat
    with pytest.raises(ValueError, match="label claim"):
        C.sensitivity_table(next(c for c in stored if c["kind"] == "paired"))


def test_window_rows_bracket_the_memorization_time_of_every_run():
    rows = results.results_table("training_time", missing="skip", log=lambda m: None).rows
    table = S.window_rows(rows, mixture="paper", width=256)
    assert len(table) == len([r for r in rows if r["mixture"] == "paper" and r["width"] == 256])
    for line in table:
        assert line["mem_upper"] is None or line["mem_lower"] < line["mem_upper"]
        assert (line["first_generalizing"] is None) == (line["generalizing_evals"] == 0)
        if line["memorizes_first"]:
            assert line["mem_upper"] <= line["gen_lower"]
        elif line["memorizes_first"] is False:
            assert line["gen_upper"] <= line["mem_lower"]


def test_claims_without_rows_are_unresolved_not_an_error(tmp_path):
    entries = C.compute_claims(tmp_path)  # a checkout without result sets
    assert [e["id"] for e in entries] == [c.id for c in C.CLAIMS]
    assert {e["verdict"] for e in entries} == {"unresolved"}
    assert all(e["note"] == "no rows" or e["note"].startswith("awaits its seeds: 0 of")
               for e in entries)


# --- familywise sign flips, equivalence, power -----------------------------------------------------

def test_sign_flip_minp_is_the_exact_p_alone_and_sidak_on_disjoint_seeds():
    d = {0: 1.0, 1: 2.0, 2: 0.5, 3: 1.5}
    raw, adjusted = C.sign_flip_minp([d])
    assert raw == pytest.approx([S.sign_flip_p(list(d.values()))]) and adjusted == raw
    # two claims on disjoint seeds, each with every difference positive: independent tests,
    # so the adjusted p is 1 - (1 - p)^2 (Sidak), not Bonferroni's 2p and not p itself
    other = {s + 4: v for s, v in d.items()}
    raw, adjusted = C.sign_flip_minp([d, other])
    p = 2 / 2**4
    assert raw == pytest.approx([p, p])
    assert adjusted == pytest.approx([1 - (1 - p) ** 2] * 2)
    # the same seeds in both claims (perfect dependence): no price for the second test
    assert C.sign_flip_minp([d, dict(d)])[1] == pytest.approx([p, p])


def _fake(pairs, margin=None, direction=1):
    claim = C.Claim("fake", "Arm a memorizes more than arm b.", "02", "secondary", "paired",
                    "fig3", "m", {"arm": "a"}, {"arm": "b"}, direction=direction,
                    margin=margin)
    rows = [{"seed": s, "arm": arm, "m": v} for s, (x, y) in enumerate(pairs)
            for arm, v in (("a", x), ("b", y))]
    (entry,) = C.evaluate((claim,), {"fig3": rows})
    return entry


def test_equivalence_is_statsmodels_tost_and_a_possible_verdict():
    from statsmodels.stats.weightstats import ttost_paired

    rng = np.random.default_rng(3)
    b = rng.normal(50, 5, 10)
    a = b + rng.normal(0, 0.3, 10)
    entry = _fake(list(zip(a, b)), margin=2.0)
    assert entry["p_equivalence"] == pytest.approx(ttost_paired(a, b, -2.0, 2.0)[0])
    assert entry["verdict"] == "equivalent" and "equivalent" in C.sentence("fake", [entry]).lower()
    assert _fake(list(zip(a, b)), margin=0.01)["verdict"] == "unresolved"  # the guard
    assert _fake(list(zip(b + 3, b)), margin=2.0)["verdict"] == "supported"


def test_minimal_detectable_effect_has_the_stated_power():
    from statsmodels.stats.power import TTestPower

    mde = C.minimal_detectable_effect(5.0, 24)
    assert TTestPower().power(effect_size=mde / 5.0, nobs=24, alpha=0.05) == pytest.approx(0.8)
    assert C.minimal_detectable_effect(5.0, 1) is None
    entry = _fake([(1.0, 0.0), (0.0, 1.0), (2.0, 1.5), (1.0, 1.2), (0.5, 0.6)])
    assert entry["verdict"] == "unresolved" and entry["mde"] > 0
    assert "80% power" in C.meaning(entry) or "too few seeds" in C.meaning(entry)


def test_confirmatory_only_under_a_lock_that_froze_the_current_declaration():
    lock = C.lock_digest()
    assert lock is not None
    frozen = C.claim("fig3_width_mem_n16")
    rows = [{**r, "_provenance": {"claims_lock": lock}} for r in
            [{"seed": s, "dim": 8, "n": 16, "width": w, "weight_decay": 0.0,
              "memorization": 0.5 + 0.01 * s + (0.3 if w == 256 else 0)}
             for s in range(8) for w in (256, 16)]]
    (entry,) = C.evaluate((frozen,), {"fig3": rows})
    assert entry["confirmatory"] and entry["family"] == "fig3: confirmatory"
    changed = C.Claim(**{**frozen.__dict__, "statement": "Another declaration."})
    (entry,) = C.evaluate((changed,), {"fig3": rows})
    assert not entry["confirmatory"] and entry["family"] == "fig3: primary"
    unstamped = [{k: v for k, v in r.items() if k != "_provenance"} for r in rows]
    assert not C.evaluate((frozen,), {"fig3": unstamped})[0]["confirmatory"]


def test_the_committed_lock_holds_every_declaration_unchanged():
    frozen = C.read_lock()["freezes"][-1]["claims"]
    assert [c.id for c in C.CLAIMS if c.id in frozen
            and frozen[c.id] != C.declaration_digest(c)] == []


# --- generated sentences and the sentence-level guard ----------------------------------------------

def test_generated_sentences_match_their_verdicts_and_fail_when_flipped(stored):
    for c in stored:
        text = f"<!-- claim: {c['id']} -->{C.sentence(c['id'], stored)}"
        assert C.text_problems(text, stored) == [], c["id"]
        flipped = [{**x, "verdict": "supported" if x["verdict"] != "supported" else "unresolved"}
                   for x in stored]
        assert C.text_problems(text, flipped), c["id"]
    with pytest.raises(ValueError, match="claim_id"):
        C.sentence("no_such_claim", stored)


def test_the_guard_reads_sentences_not_paragraphs():
    claims = [{"id": "shown", "verdict": "supported",
               "statement": "Random pruning lowers memorization against the control."}]
    ok = "<!-- claim: shown --> Random pruning lowers memorization. The next cell prints it."
    assert C.text_problems(ok, claims) == []
    addon = ("<!-- claim: shown --> Random pruning lowers memorization. So pruning slows the "
             "re-memorization that fine-tuning brings.")
    assert "unmarked conclusion" in C.text_problems(addon, claims)[0]
    restated = "As the runs show, random pruning lowers memorization against the control."
    assert "restates the claim" in C.text_problems(restated, claims)[0]
    hedged = "Small-t and random pruning could not tell apart here."
    assert C.text_problems(hedged, claims)
