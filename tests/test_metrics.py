import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from labkit import data, metrics


def _naive_memorized(samples, train, threshold=1 / 3):
    d = torch.cdist(samples.double(), train.double())  # (m, n), independent brute force
    two = d.topk(2, dim=1, largest=False).values
    return two[:, 0] < threshold * two[:, 1]


def test_memorized_agrees_with_brute_force(gen):
    train = torch.randn(300, 6, generator=gen)
    near = train[:100] + 0.01 * torch.randn(100, 6, generator=gen)
    far = torch.randn(200, 6, generator=gen)
    samples = torch.cat([near, far])
    flags = metrics.memorized(samples, train)
    assert torch.equal(flags, _naive_memorized(samples, train))
    assert flags[:100].all() and flags.shape == (300,)
    assert metrics.memorization_ratio(samples, train) == pytest.approx(flags.float().mean().item())


def test_nearest_neighbors_exact(gen):
    x, ref = torch.randn(50, 4, generator=gen), torch.randn(80, 4, generator=gen)
    dist, idx = metrics.nearest_neighbors(x, ref, k=3, chunk_size=7)
    expected = torch.cdist(x, ref).topk(3, dim=1, largest=False)
    torch.testing.assert_close(dist, expected.values)
    assert torch.equal(idx, expected.indices)


def _direct_knn(x, ref, k):
    """k nearest by direct distances ||x - y|| in float64 (no expanded form): the oracle."""
    dist = torch.cdist(x.double(), ref.double(), compute_mode="donot_use_mm_for_euclid_dist")  # (m, n)
    return dist.topk(k, dim=1, largest=False)


def _hard_case(name, gen):
    """(x, ref, k) for the cases where a GEMM-based search can go wrong."""
    if name == "far_from_origin":  # the expanded form cancels to noise in float32 here
        return 1000 + 0.1 * torch.randn(40, 8, generator=gen), 1000 + 0.1 * torch.randn(301, 8, generator=gen), 3
    if name == "near_ties":  # 40 points 1e-14 apart in radius, far inside the GEMM's error bound
        x = torch.randn(6, 8, generator=gen, dtype=torch.float64)
        u = torch.randn(6, 40, 8, generator=gen, dtype=torch.float64)
        radii = 1 + 1e-14 * torch.randperm(40, generator=gen).double()
        shell = x[:, None, :] + radii[:, None] * u / u.norm(dim=2, keepdim=True)  # (6, 40, 8)
        return x, torch.cat([shell.flatten(0, 1), 3 + torch.randn(60, 8, generator=gen, dtype=torch.float64)]), 3
    if name == "tiny":  # fewer points than one group; k = n
        return torch.randn(5, 2, generator=gen), torch.randn(3, 2, generator=gen), 3
    raise ValueError(name)


@pytest.mark.parametrize("chunk_size", [1, 7, None])
@pytest.mark.parametrize("case", ["far_from_origin", "near_ties", "tiny"])
def test_nearest_neighbors_hard_cases(gen, case, chunk_size):
    x, ref, k = _hard_case(case, gen)
    dist, idx = metrics.nearest_neighbors(x, ref, k=k, chunk_size=chunk_size)
    expected = _direct_knn(x, ref, k)
    assert dist.shape == idx.shape == (x.shape[0], k) and dist.dtype == x.dtype
    assert torch.equal(idx, expected.indices)
    torch.testing.assert_close(dist, expected.values.to(x.dtype))


@pytest.mark.parametrize("supers", [16, 2])  # without and with super-groups (from 32 groups)
def test_near_ties_widen_the_candidates(gen, monkeypatch, supers):
    monkeypatch.setattr(metrics, "_SUPER", supers)
    widths = []

    def spy(group_min, k, tol):
        chosen = candidate_groups(group_min, k, tol)
        widths.append(chosen.shape[1])
        return chosen

    candidate_groups = metrics._candidate_groups
    monkeypatch.setattr(metrics, "_candidate_groups", spy)
    x, ref, k = _hard_case("near_ties", gen)
    assert torch.equal(metrics.nearest_neighbors(x, ref, k=k)[1], _direct_knn(x, ref, k).indices)
    assert max(widths) > k  # the tie path was taken


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_nearest_neighbors_duplicated_points(gen, chunk_size):
    base = torch.randn(50, 4, generator=gen)
    ref = torch.cat([base, base[7].expand(30, 4), base[:10]])  # 31 copies of one point, 2 of ten others
    x = torch.cat([base[7] + 1e-3 * torch.randn(5, 4, generator=gen), torch.randn(20, 4, generator=gen)])
    dist, idx = metrics.nearest_neighbors(x, ref, k=4, chunk_size=chunk_size)
    torch.testing.assert_close(dist, _direct_knn(x, ref, 4).values.float())  # ties: any copy will do,
    torch.testing.assert_close((x[:, None, :] - ref[idx]).norm(dim=2), dist)  # but at the stated distance
    assert (ref[idx[:5]] == base[7]).all()


def test_nearest_neighbors_exact_under_reduced_precision_gemm(gen):
    # With bfloat16 GEMMs allowed the error bound widens (without that, several rows here go wrong).
    x, ref = torch.randn(200, 16, generator=gen), torch.randn(2000, 16, generator=gen)
    matmul, before = torch.backends.mkldnn.matmul, torch.backends.mkldnn.matmul.fp32_precision
    matmul.fp32_precision = "bf16"
    try:
        idx = metrics.nearest_neighbors(x, ref)[1]
    finally:
        matmul.fp32_precision = before
    assert torch.equal(idx, _direct_knn(x, ref, 2).indices)


def test_nearest_neighbors_half_precision(gen):
    x, ref = torch.randn(30, 5, generator=gen).half(), torch.randn(100, 5, generator=gen).half()
    dist, idx = metrics.nearest_neighbors(x, ref, k=2, chunk_size=4)
    assert dist.dtype == torch.float16 and torch.equal(idx, _direct_knn(x, ref, 2).indices)


@pytest.mark.parametrize("dedupe", [True, False])
def test_memorized_with_duplicates_and_ties_agrees_with_brute_force(gen, dedupe):
    base = torch.randn(200, 5, generator=gen)
    train = torch.cat([base, base[:20], base[:20], base[10:30]])  # copies, in several numbers
    samples = torch.cat([base[:40] + 1e-3 * torch.randn(40, 5, generator=gen),  # near copied and lone points
                         base[:5],  # exactly on copied points: distance 0 to several rows
                         torch.randn(100, 5, generator=gen)])
    ref = torch.unique(train, dim=0) if dedupe else train
    two = _direct_knn(samples, ref, 2).values
    assert torch.equal(metrics.memorized(samples, train, dedupe=dedupe), two[:, 0] < two[:, 1] / 3)


# Against brute force over random shapes, duplicate patterns, tile sizes (so that one call spans
# several tiles, row chunks and a padded last block), group sizes and either BLAS.
TILED = settings(max_examples=40, deadline=None, derandomize=True)


@TILED
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 400), d=st.sampled_from([1, 2, 5, 17, 260]),
       m=st.integers(1, 40), k=st.integers(1, 4), copies=st.lists(st.integers(0, 400), max_size=30),
       tile=st.sampled_from([1 << 6, 1 << 9, 1 << 12]), chunk=st.sampled_from([None, 1, 9]),
       group=st.sampled_from([None, 2, 64]), supers=st.sampled_from([1, 2, 16]),
       backend=st.sampled_from(["torch", "numpy"]), spread=st.sampled_from([1.0, 1e-3]))
def test_nearest_neighbors_match_brute_force_at_any_tiling(seed, n, d, m, k, copies, tile, chunk,
                                                          group, supers, backend, spread):
    g = torch.Generator().manual_seed(seed)
    base = 1 + spread * torch.randn(n, d, generator=g)  # spread 1e-3: the expanded form cancels
    ref = torch.cat([base, base[[c % n for c in copies]]])
    k = min(k, ref.shape[0])
    x = torch.cat([ref[torch.randint(0, ref.shape[0], (m // 2,), generator=g)] + spread * 1e-2
                   * torch.randn(m // 2, d, generator=g), 1 + spread * torch.randn(m - m // 2, d, generator=g)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_GEMM", backend)
        patch.setattr(metrics, "_TILE", tile)
        patch.setattr(metrics, "_TILE_WIDE", tile)
        patch.setattr(metrics, "_SUPER", supers)  # 1 and 2: super-groups from 16 and 32 groups
        if group is not None:
            patch.setattr(metrics, "_group_size", lambda n, d, k: group)
        dist, idx = metrics.nearest_neighbors(x, ref, k=k, chunk_size=chunk)
    assert dist.shape == idx.shape == (m, k) and dist.dtype == x.dtype
    direct = torch.cdist(x.double(), ref.double(), compute_mode="donot_use_mm_for_euclid_dist")  # (m, n)
    expected = direct.topk(k, dim=1, largest=False).values
    torch.testing.assert_close(dist.double(), expected, rtol=1e-5, atol=1e-6 * spread)
    # the indices point at points at those distances (copies tie: either copy will do)
    torch.testing.assert_close(direct.gather(1, idx), expected, rtol=1e-5, atol=1e-6 * spread)
    assert (idx.sort(dim=1).values.diff(dim=1) != 0).all()  # k different points


@TILED
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 300), d=st.sampled_from([1, 3, 260]),
       m=st.integers(1, 30), copies=st.lists(st.integers(0, 300), max_size=20),
       backend=st.sampled_from(["torch", "numpy"]), tile=st.sampled_from([1 << 6, 1 << 10]))
def test_memorized_matches_brute_force_at_any_tiling(seed, n, d, m, copies, backend, tile):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, d, generator=g)
    train = torch.cat([base, base[[c % n for c in copies]]])
    scale = torch.rand(m, 1, generator=g) * 0.6  # from on a training point to far from one
    samples = train[torch.randint(0, train.shape[0], (m,), generator=g)] + scale * torch.randn(m, d, generator=g)
    two = _direct_knn(samples, torch.unique(train, dim=0), 2).values  # (m, 2), distinct points
    assume(((two[:, 0] - two[:, 1] / 3).abs() > 1e-5 * two[:, 1]).all())  # no knife-edge cases
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_GEMM", backend)
        patch.setattr(metrics, "_TILE", tile)
        patch.setattr(metrics, "_TILE_WIDE", tile)
        flags = metrics.memorized(samples, train)
    assert torch.equal(flags, two[:, 0] < two[:, 1] / 3)


def test_group_size_balances_selection_and_remeasuring():
    assert [metrics._group_size(n, d, k) for n, d, k in
            [(20_000, 3_072, 2), (20_000, 64, 2), (50_000, 2, 2), (3, 2, 3), (10**7, 1, 1)]] == [2, 16, 64, 2, 64]


def test_threshold_edges(gen):
    train = torch.tensor([[0.0], [3.0]])
    x = torch.tensor([[0.74], [0.76]])  # d1/d2 = 0.74/2.26 < 1/3, 0.76/2.24 > 1/3
    assert metrics.memorized(x, train).tolist() == [True, False]
    assert metrics.memorized(x, train, threshold=1.0).tolist() == [True, True]


def test_duplicates_are_handled(gen):
    train = torch.randn(20, 3, generator=gen)
    dup = torch.cat([train, train[:10]])
    copies = train[:10] + 1e-4
    assert metrics.memorized(copies, dup).all()  # distinct-point rule: still memorized
    assert not metrics.memorized(copies, dup, dedupe=False).any()  # the raw rule never fires


def test_bootstrap_interval_contains_mean(gen):
    flags = (torch.rand(400, generator=gen) < 0.3).double()
    lo, hi = metrics.bootstrap_interval(flags, generator=gen)
    p = flags.mean().item()
    se = math.sqrt(p * (1 - p) / 400)
    assert lo < p < hi and hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)


BOOTSTRAP_MEMORY = textwrap.dedent("""
    import resource, sys, torch
    from labkit import metrics

    g = torch.Generator().manual_seed(0)
    values = torch.rand(50_000, generator=g, dtype=torch.float64)
    values = (values < 0.3).double() if sys.argv[1] == "flags" else values
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    metrics.bootstrap_interval(values, generator=g)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
""")


@pytest.mark.parametrize("kind", ["flags", "values"])
def test_bootstrap_interval_memory_on_50k_points(kind):
    """Issue 12 item 6: a 2000 x m index took 1.5 GB at m = 50,000; the limit is 100 MB."""
    out = subprocess.run([sys.executable, "-c", BOOTSTRAP_MEMORY, kind], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert int(out.stdout) < 100 * 2**20


@pytest.mark.parametrize("p", [0.0, 0.03, 0.5, 1.0])
def test_bootstrap_interval_of_flags_matches_the_binomial(gen, p):
    """0/1 flags: the bootstrap mean is Binomial(m, p_hat) / m, whose quantiles scipy knows."""
    from scipy.stats import binom

    m = 2000
    flags = torch.zeros(m, dtype=torch.bool)
    flags[: round(p * m)] = True
    lo, hi = metrics.bootstrap_interval(flags, num_resamples=4000, generator=gen)
    exact_lo, exact_hi = binom.ppf([0.025, 0.975], m, flags.double().mean().item()) / m
    assert lo == pytest.approx(exact_lo, abs=2e-3) and hi == pytest.approx(exact_hi, abs=2e-3)


def test_bootstrap_interval_of_values_matches_brute_force(gen):
    values = torch.randn(300, generator=gen, dtype=torch.float64).exp()
    lo, hi = metrics.bootstrap_interval(values, num_resamples=4000, generator=torch.Generator().manual_seed(1))
    idx = torch.randint(0, 300, (20000, 300), generator=torch.Generator().manual_seed(2))
    brute = torch.quantile(values[idx].mean(1), torch.tensor([0.025, 0.975], dtype=torch.float64))
    assert lo == pytest.approx(brute[0].item(), rel=0.03) and hi == pytest.approx(brute[1].item(), rel=0.03)


def test_report_with_null_rate(gen):
    gmm = data.make_gmm(8, 8, generator=gen)
    train = gmm.sample(100, generator=gen)
    rep = metrics.memorization_report(train + 1e-3, train, reference=gmm.sample(200, generator=gen), generator=gen)
    assert rep.ratio == 1.0 and rep.null_ratio < 0.05 and "null rate" in str(rep)


def test_quality_measures(gen):
    gmm = data.toy_mixture("gmm4")
    good, other = gmm.sample(500, generator=gen), gmm.sample(500, generator=gen)
    one_mode = gmm.means[0] + 0.5 * torch.randn(500, 2, generator=gen)
    assert metrics.mean_log_likelihood(good, gmm) > metrics.mean_log_likelihood(good * 1.5, gmm)
    cov_good, counts = metrics.mode_coverage(good, gmm)
    assert cov_good == 1.0 and counts.sum() == 500
    assert metrics.mode_coverage(one_mode, gmm)[0] == 0.25
    assert abs(metrics.mmd(good, other)) < 0.01 < metrics.mmd(good, one_mode)
    # W2 is sensitive to the multinomial imbalance of mode masses: same-law values of 0.1-0.4 here
    assert metrics.sliced_wasserstein(good, other, generator=gen) < 0.6 < 1.5 < metrics.sliced_wasserstein(good, one_mode, generator=gen)
    # sliced W2 of a shift by c along every axis is |c| (a translation moves every projection)
    shift = metrics.sliced_wasserstein(good, good + torch.tensor([1.0, 0.0]), num_projections=2000, generator=gen)
    assert shift == pytest.approx(math.sqrt(0.5), rel=0.05)  # E cos^2 = 1/2 in 2-D


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.zeros(1, 2)), "at least two distinct"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.zeros(0, 2)), "train must hold at least one"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.ones(4, 3)), "train must have 2 columns"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.randn(4, 2), threshold=0.0), "threshold must lie in"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.randn(4, 2), threshold=1.5), "threshold must lie in"),
    (lambda: metrics.memorized(torch.full((3, 2), float("nan")), torch.randn(4, 2)), "samples contains NaN"),
    (lambda: metrics.nearest_neighbors(torch.zeros(3, 2), torch.randn(2, 2), k=3), "k must be at most"),
    (lambda: metrics.nearest_neighbors(torch.zeros(3, 2), torch.randn(4, 2).double()), "ref must have x's dtype"),
    (lambda: metrics.nearest_neighbors(torch.zeros(3, 2), torch.full((4, 2), float("inf"))), "ref contains NaN"),
    (lambda: metrics.nearest_neighbors(torch.zeros(3, 2), torch.randn(4, 2), chunk_size=0), "chunk_size"),
    (lambda: metrics.memorized(torch.zeros(3, 2), torch.zeros(5, 2)), "at least two distinct"),
    (lambda: metrics.bootstrap_interval(torch.zeros(0)), "values must be"),
    (lambda: metrics.bootstrap_interval(torch.zeros(3), level=1.0), "level"),
    (lambda: metrics.mean_log_likelihood(torch.zeros(3, 2), "gmm"), "gmm must be"),
    (lambda: metrics.mmd(torch.zeros(1, 2), torch.zeros(3, 2)), "at least two points"),
    (lambda: metrics.mmd(torch.randn(3, 2), torch.randn(3, 2), bandwidth=0.0), "bandwidth"),
    (lambda: metrics.sliced_wasserstein(torch.zeros(3, 2), torch.zeros(3, 2), num_projections=0), "num_projections"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
