"""The benchmark scripts at tiny sizes: their arguments, their timing rules, their page.

``make bench`` is not part of ``make test`` (minutes at full size); this checks that
bench/search.py refuses bad arguments, times each case in a process of its own, states a
ratio only where it exceeds the spread, and writes its Markdown table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _timing  # noqa: E402
import search  # noqa: E402


@pytest.mark.parametrize("argv", [["--repeats", "0"], ["--shape", "1,2"], ["--shape", "4,1,2"],
                                  ["--cases", "labkit,gemm,nope"], ["--cases", "faiss"]])
def test_search_refuses_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        search.main(argv)
    assert exit_.value.code == 2, capsys.readouterr().err


def test_a_ratio_is_stated_only_beyond_the_spread():
    fast, slow = _timing.Timing((1.0, 1.01, 1.02)), _timing.Timing((2.0, 2.02, 2.04))
    assert _timing.ratio_text(fast, slow) == "0.50"
    noisy = _timing.Timing((1.0, 1.6, 2.0))  # median 60% above the best
    assert noisy.best == 1.0 and noisy.median == 1.6 and noisy.spread == pytest.approx(0.6)
    assert _timing.ratio_text(noisy, _timing.Timing((1.2, 1.2))).startswith("no difference")
    with pytest.raises(ValueError, match="repeats"):
        _timing.best_of(lambda: None, 0)


def test_search_times_each_case_alone_and_writes_its_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    page = tmp_path / "performance.md"
    search.main(["--shape", "20,200,4", "--repeats", "2", "--cases", "labkit,gemm,sklearn",
                 "--markdown", str(page)])
    out = capsys.readouterr().out
    assert "each case in its own process" in out and "load average" in out
    assert "flags 1.0000, indices 1.0000" in out  # labkit agrees with scikit-learn
    text = page.read_text()
    assert text.startswith("# Performance") and "| labkit memorized() |" in text
    assert "torch:" in text and "- CPU: " in text and "speed-up over scikit-learn" in text
