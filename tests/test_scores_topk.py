"""The truncated top-k empirical score and denoiser (labkit.scores.*_topk) against the full sums.

Property tests (hypothesis) on random training sets: with k = n they are the full sums; the
measured truncation error never exceeds the returned bound (exact and screened search, fixed
k and tol, one time or one per row); at small t on well-separated points a few neighbours give
the full score to float32 resolution; each bad argument is refused by name.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit import scores
from labkit.process import alpha_sigma

SETTINGS = settings(max_examples=30, deadline=None)


def problem(seed: int, n: int, d: int, m: int, spread: float, dtype=torch.float64):
    """(x, train): m queries near training points (noise ``spread``) or anywhere."""
    g = torch.Generator().manual_seed(seed)
    train = torch.randn(n, d, generator=g, dtype=dtype)
    near = train[torch.randint(0, n, (m,), generator=g)]
    x = near + spread * torch.randn(m, d, generator=g, dtype=dtype)
    return x, train


def radius(train):
    return float(torch.linalg.vector_norm(train - train.mean(0), dim=1).max())


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 40), d=st.integers(1, 12),
       m=st.integers(1, 6), t=st.floats(1e-3, 3.0))
def test_k_equal_n_is_the_full_sum(seed, n, d, m, t):
    x, train = problem(seed, n, d, m, 0.5)
    full = scores.empirical_denoiser(x, t, train)
    out = scores.empirical_denoiser_topk(x, t, train, k=n, return_bound=True)
    torch.testing.assert_close(out.value, full, rtol=0, atol=1e-12)
    assert out.k.tolist() == [n] * m and not out.weight_bound.any() and not out.error_bound.any()
    alpha, sigma = (float(v) for v in alpha_sigma(torch.tensor(t, dtype=x.dtype)))
    score = scores.empirical_score_topk(x, t, train, k=n)
    torch.testing.assert_close(score, scores.empirical_score(x, t, train), rtol=0,
                               atol=1e-12 * max(1.0, alpha / sigma**2))


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 60), d=st.integers(2, 16),
       m=st.integers(1, 8), t=st.floats(1e-3, 3.0), k=st.integers(1, 60),
       screen=st.none() | st.integers(1, 15), spread=st.sampled_from([0.01, 0.3, 2.0]),
       per_row=st.booleans(), max_k=st.sampled_from([4, 8, 20]))
def test_the_error_never_exceeds_the_bound(seed, n, d, m, t, k, screen, spread, per_row,
                                           max_k):
    x, train = problem(seed, n, d, m, spread)
    k, screen = min(k, n), (None if screen is None or screen >= d else screen)
    times = torch.linspace(t, 2 * t, m, dtype=x.dtype) if per_row else t
    slack = 1e-9 * (1 + radius(train))  # float rounding of the two sums
    full = scores.empirical_denoiser(x, times, train)
    out = scores.empirical_denoiser_topk(x, times, train, k=k, screen=screen, return_bound=True)
    error = torch.linalg.vector_norm(out.value - full, dim=1)
    assert (error <= out.error_bound + slack).all(), (error, out.error_bound)
    assert (out.weight_bound >= 0).all() and out.k.tolist() == [k] * m
    alpha, sigma = alpha_sigma(torch.as_tensor(times, dtype=x.dtype))
    gain = (alpha / sigma**2).expand(m)
    s = scores.empirical_score_topk(x, times, train, k=k, screen=screen, return_bound=True)
    s_error = torch.linalg.vector_norm(s.value - scores.empirical_score(x, times, train), dim=1)
    assert (s_error <= s.error_bound + slack * gain).all()
    # tol: every row meets it, with the smallest k that does (or the full sum, k = n)
    tol = 1e-6
    auto = scores.empirical_denoiser_topk(x, times, train, tol=tol, max_k=max_k,
                                          screen=screen, return_bound=True)
    assert (auto.weight_bound <= tol).all()
    assert ((auto.k <= min(max_k, n)) | (auto.k == n)).all()
    share = auto.weight_bound / (1 + auto.weight_bound)
    auto_error = torch.linalg.vector_norm(auto.value - full, dim=1)
    assert (auto_error <= share * 2 * radius(train) + slack).all()


def test_the_bound_is_not_vacuous():
    """Where truncation does drop weight (moderate t, k = 1) the error is positive, within the
    bound, and a zero bound would have failed the comparison above."""
    x, train = problem(0, 50, 4, 20, 0.5)
    out = scores.empirical_denoiser_topk(x, 0.5, train, k=1, return_bound=True)
    error = torch.linalg.vector_norm(out.value - scores.empirical_denoiser(x, 0.5, train), dim=1)
    assert (error > 1e-3).any()
    assert (error <= out.error_bound + 1e-12).all()


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 200), d=st.integers(4, 64),
       t=st.floats(1e-4, 1e-2), screen=st.none() | st.just(3))
def test_small_t_well_separated_gives_the_full_score_in_float32(seed, n, d, t, screen):
    g = torch.Generator().manual_seed(seed)
    train = 4 * torch.randn(n, d, generator=g)  # float32; spacing >> sigma_t at t <= 0.01
    x = train[:8] * alpha_sigma(torch.tensor(t))[0] + 0.01 * torch.randn(
        min(8, n), d, generator=g)
    eps = torch.finfo(torch.float32).eps
    out = scores.empirical_denoiser_topk(x, t, train, tol=eps, max_k=4, screen=screen,
                                         return_bound=True)
    assert (out.weight_bound <= eps).all()
    full = scores.empirical_denoiser(x, t, train)
    scale = float(train.abs().max())
    torch.testing.assert_close(out.value, full, rtol=0, atol=8 * eps * scale)
    if screen is None:
        assert (out.k <= 4).all()  # the exact search never needs the fallback here


def test_tol_falls_back_to_the_full_sum_at_large_t():
    x, train = problem(1, 30, 3, 5, 0.5)
    out = scores.empirical_denoiser_topk(x, 3.0, train, tol=1e-6, max_k=4, return_bound=True)
    assert out.k.tolist() == [30] * 5 and not out.weight_bound.any()
    torch.testing.assert_close(out.value, scores.empirical_denoiser(x, 3.0, train))


X, TRAIN = problem(0, 10, 3, 4, 0.1)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(k=0), ValueError, "k"),
    (dict(k=11), ValueError, "k"),
    (dict(k=1.5), ValueError, "k"),
    (dict(k=True), ValueError, "k"),
    (dict(), ValueError, "k"),
    (dict(k=2, tol=1e-3), ValueError, "tol"),
    (dict(tol=0.0), ValueError, "tol"),
    (dict(tol=-1e-3), ValueError, "tol"),
    (dict(tol=math.nan), ValueError, "tol"),
    (dict(tol=1e-3, max_k=0), ValueError, "max_k"),
    (dict(k=2, screen=0), ValueError, "screen"),
    (dict(k=2, screen=3), ValueError, "screen"),
    (dict(k=2, return_bound="yes"), TypeError, "return_bound"),
    (dict(k=2, t=0.0), ValueError, "t"),
    (dict(k=2, t=-1.0), ValueError, "t"),
    (dict(k=2, t=torch.ones(3, dtype=torch.float64)), ValueError, "t"),
    (dict(k=2, x=X[0]), ValueError, "x"),
    (dict(k=2, x=X[:, :2]), ValueError, "x"),
    (dict(k=2, train=TRAIN[0]), ValueError, "train"),
    (dict(k=2, x=X.long()), TypeError, "x"),
    (dict(k=2, train=TRAIN.float()), ValueError, "train"),
])
@pytest.mark.parametrize("fn", [scores.empirical_denoiser_topk, scores.empirical_score_topk])
def test_bad_input_is_refused_by_name(fn, kwargs, error, name):
    args = {"x": X, "t": 0.1, "train": TRAIN, **kwargs}
    x, t, train = args.pop("x"), args.pop("t"), args.pop("train")
    with pytest.raises(error, match=rf"\b{name}\b"):
        fn(x, t, train, **args)
    fn(X, 0.1, TRAIN, k=2)  # the same call with good arguments passes


def test_public_names():
    assert {"empirical_score_topk", "empirical_denoiser_topk", "TopK"} <= set(scores.__all__)


def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "topk.py"
    spec = importlib.util.spec_from_file_location("bench_topk", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv", [["--repeats", "0"], ["--shape", "1,2"], ["--t", "0"],
                                  ["--t", "nan"], ["--cases", "topk"], ["--cases", "full,x"]])
def test_bench_refuses_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        _bench().main(argv)
    assert exit_.value.code == 2, capsys.readouterr().err


def test_bench_section_replaces_itself_and_keeps_the_page(tmp_path):
    bench = _bench()
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\nThe search table.\n")
    bench.write_section(page, f"{bench.BEGIN}\nfirst\n{bench.END}")
    bench.write_section(page, f"{bench.BEGIN}\nsecond\n{bench.END}")
    text = page.read_text()
    assert text.startswith("# Performance\n\nThe search table.\n")
    assert "second" in text and "first" not in text and text.count(bench.BEGIN) == 1
