"""The tests of the label claims: ``check(rows, mem_margin, ll_margin) -> {"holds": bool, ...}``,
one per claim, read at every pair of margins. Each test's source is part of its claim's frozen
declaration (:func:`labkit.claims.lock.declaration`), so a test is changed only by declaring a
new claim. The tests were first declared in ``labkit.experiments.claims`` and are still named by
that module in the declarations (``declared_as``); that module re-exports them.

:func:`two_evaluations` re-reads a window test with a window of at least two consecutive
evaluations (a single generalizing evaluation can be the evaluation-to-evaluation noise of the
mean log-likelihood).
"""

from __future__ import annotations

import contextlib

from ..experiments import stats

__all__ = ["LABEL_TESTS", "WINDOW_TESTS", "two_evaluations"]


def _fig2_generalizing_at_end(rows, mem_margin, ll_margin):
    labels = [stats.label(r, -1, mem_margin, ll_margin) for r in rows]
    count = labels.count("generalizing")
    return {"holds": count == 0, "generalizing_runs": count, "runs": len(rows)}


def _seeds_with_ladder(rows, mem_margin, ll_margin, at_end):
    found = 0
    for seed in sorted({r["seed"] for r in rows}):
        runs = [r for r in rows if r["seed"] == seed]
        steps = range(len(runs[0]["steps"]) - 1, len(runs[0]["steps"])) if at_end \
            else range(1, len(runs[0]["steps"]))
        if any({"failing", "generalizing", "memorizing"}
               <= {stats.label(r, i, mem_margin, ll_margin) for r in runs} for i in steps):
            found += 1
    return found


def _fig2_no_ladder_at_end(rows, mem_margin, ll_margin):
    found = _seeds_with_ladder(rows, mem_margin, ll_margin, at_end=True)
    return {"holds": found == 0, "seeds_with_three_labels": found}


def _fig2_ladder_over_time(rows, mem_margin, ll_margin):
    found = _seeds_with_ladder(rows, mem_margin, ll_margin, at_end=False)
    return {"holds": found > 0, "seeds_with_three_labels": found}


def _no_window(rows, mem_margin, ll_margin):
    windows = [stats.generalizing_window(r, mem_margin=mem_margin, ll_margin=ll_margin)
               for r in rows]
    early = sum(w["memorization_step"] is not None
                and (w["quality_step"] is None or w["memorization_step"] < w["quality_step"])
                for w in windows)
    empty = sum(not w["steps"] for w in windows)
    return {"holds": empty == len(rows), "runs": len(rows), "runs_without_window": empty,
            "memorization_before_quality": early}


def _every_window(rows, mem_margin, ll_margin):
    out = _no_window(rows, mem_margin, ll_margin)
    return {**out, "holds": out["runs_without_window"] == 0}


def _d8_small_n(rows):
    return [r for r in rows if r["mixture"] == "paper" and r["width"] == 256 and r["n"] <= 64]


def _window_d8_small_n(rows, mem_margin, ll_margin):
    return _no_window(_d8_small_n(rows), mem_margin, ll_margin)


def _window_d8_n128(rows, mem_margin, ll_margin):
    return _every_window([r for r in rows if r["mixture"] == "paper" and r["width"] == 256
                          and r["n"] == 128], mem_margin, ll_margin)


def _window_2d(rows, mem_margin, ll_margin):
    return _every_window([r for r in rows if r["mixture"] == "gmm4" and r["width"] == 256],
                         mem_margin, ll_margin)


LABEL_TESTS = (_fig2_generalizing_at_end, _fig2_no_ladder_at_end, _fig2_ladder_over_time,
               _window_d8_small_n, _window_d8_n128, _window_2d)
WINDOW_TESTS = (_window_d8_small_n, _window_d8_n128, _window_2d)
for _test in LABEL_TESTS:
    _test.declared_as = f"labkit.experiments.claims:{_test.__name__}"


@contextlib.contextmanager
def two_evaluations():
    """Within the block, :func:`labkit.experiments.generalizing_window` counts only windows of
    at least two consecutive generalizing evaluations (the window tests above read it)."""
    with stats.window_rule(consecutive=2):
        yield
