"""labkit._gemm: the measured pick between torch's and numpy's BLAS, and the products that use it.

Both libraries are forced in turn (``LABKIT_GEMM``, labkit's own setting: no BLAS environment
variable is touched) and every result is compared with torch's: the empirical score, denoiser
and log-density, and the nearest neighbours, which stay exact under either library.
"""

import numpy as np
import pytest
import threadpoolctl
import torch

from labkit import _gemm, metrics, scores

BACKENDS = ["torch", "numpy"]


@pytest.fixture
def numpy_calls(monkeypatch):
    """The number of np.matmul calls made since the test started, as a one-item list."""
    calls, matmul = [0], np.matmul

    def spy(*args, **kwargs):
        calls[0] += 1
        return matmul(*args, **kwargs)

    monkeypatch.setattr(np, "matmul", spy)
    return calls


def test_the_setting_is_checked(monkeypatch):
    monkeypatch.setenv(_gemm.ENV, "mkl")
    with pytest.raises(ValueError, match="LABKIT_GEMM must be one of auto, torch, numpy"):
        _gemm.backend()
    for value, expected in [("numpy", "numpy"), (" Torch ", "torch"), ("", "auto"), ("auto", "auto")]:
        monkeypatch.setenv(_gemm.ENV, value)
        assert _gemm.requested() == expected
    monkeypatch.delenv(_gemm.ENV)
    assert _gemm.requested() == "auto"


@pytest.mark.parametrize("faster", BACKENDS)
def test_the_measured_pick_is_the_faster_library(monkeypatch, faster):
    rates = {"torch": 1e11, "numpy": 1e11}
    rates[faster] = 1.5e11
    measured = []
    monkeypatch.setattr(_gemm, "gemm_rates", lambda threads: measured.append(threads) or rates)
    monkeypatch.delenv(_gemm.ENV, raising=False)
    _gemm.measured.cache_clear()
    try:
        assert _gemm.backend(flops=1e12) == faster
        assert _gemm.backend(flops=1e12) == faster
        assert measured == [torch.get_num_threads()]  # measured once, then cached
        assert _gemm.backend(flops=1e3) == "torch"  # small products are not worth a pick
    finally:
        _gemm.measured.cache_clear()


def test_a_tie_keeps_torch(monkeypatch):
    monkeypatch.setattr(_gemm, "gemm_rates", lambda threads: {"torch": 1e11, "numpy": 1.02e11})
    _gemm.measured.cache_clear()
    try:
        assert _gemm.measured(1) == "torch"
    finally:
        _gemm.measured.cache_clear()


@pytest.mark.parametrize("threads", [1, 2])
def test_gemm_rates_are_measured_for_both_libraries(threads):
    before = torch.get_num_threads()
    rates = _gemm.gemm_rates(threads, shape=(32, 64, 48), repeats=1)
    assert set(rates) == set(BACKENDS) and all(rate > 0 for rate in rates.values())
    assert torch.get_num_threads() == before


def test_blas_threads_follow_torch_and_are_restored():
    libraries = _gemm._blas_libraries()
    loaded = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    assert libraries and libraries[0].filepath in {lib.filepath for lib in loaded}
    before = [lib.get_num_threads() for lib in libraries]
    wanted = 1 if before[0] != 1 else 2
    with _gemm.blas_threads(wanted):
        assert [lib.get_num_threads() for lib in libraries] == [wanted] * len(libraries)
    assert [lib.get_num_threads() for lib in libraries] == before


def test_numpy_is_used_only_where_it_computes_the_same_product(monkeypatch, numpy_calls, gen):
    monkeypatch.setenv(_gemm.ENV, "numpy")
    a, b = torch.randn(30, 20, generator=gen), torch.randn(20, 40, generator=gen)
    torch.testing.assert_close(_gemm.mm(a, b), torch.mm(a, b))
    torch.testing.assert_close(_gemm.mm(a, b.T.contiguous().T), torch.mm(a, b))  # a transposed view
    assert numpy_calls[0] == 2
    for left, right in [(a.double(), b.double()),  # float64
                        (a.requires_grad_(), b),  # autograd
                        (torch.randn(30, 1, generator=gen).expand(30, 20), b)]:  # a stride-0 view
        _gemm.mm(left, right)
    assert numpy_calls[0] == 2
    out = _gemm.mm(a, b)
    assert out.grad_fn is not None  # still differentiable
    with torch.no_grad():
        _gemm.mm(a, b)
    assert numpy_calls[0] == 3


def test_forced_torch_never_calls_numpy(monkeypatch, numpy_calls, gen):
    monkeypatch.setenv(_gemm.ENV, "torch")
    a, b = torch.randn(300, 200, generator=gen), torch.randn(200, 400, generator=gen)
    _gemm.mm(a, b)
    _gemm.addmm(torch.zeros(1, 400), a, b)
    scores.empirical_score(a[:, :20].contiguous(), 0.1, b.T[:, :20].contiguous())
    assert numpy_calls[0] == 0


def test_mm_into_out_and_addmm(monkeypatch, numpy_calls, gen):
    monkeypatch.setenv(_gemm.ENV, "numpy")
    a, b = torch.randn(17, 9, generator=gen), torch.randn(9, 23, generator=gen)
    buffer = torch.full((17, 30), float("nan"))
    out = _gemm.mm(a, b, out=buffer[:, :23])  # a leading dimension wider than the row
    torch.testing.assert_close(out, a @ b)
    assert out.data_ptr() == buffer.data_ptr() and buffer[:, 23:].isnan().all()
    for bias in (torch.randn(1, 23, generator=gen), torch.randn(17, 23, generator=gen)):
        torch.testing.assert_close(_gemm.addmm(bias, a, b), torch.addmm(bias, a, b))
    assert numpy_calls[0] == 3


@pytest.fixture
def problem(gen):
    n, d, m = 700, 48, 90
    train = torch.randn(n, d, generator=gen)
    x = 0.9 * train[:m] + 0.3 * torch.randn(m, d, generator=gen)
    return x, train


@pytest.mark.parametrize("t", [0.01, 0.5, "per point"])
@pytest.mark.parametrize("chunk_size", [None, 128])
def test_scores_agree_across_libraries(monkeypatch, numpy_calls, problem, t, chunk_size):
    """The products through numpy give torch's results to float32 rounding."""
    x, train = problem
    if t == "per point":
        t = torch.linspace(0.01, 1.0, x.shape[0])
    results = {}
    for name in BACKENDS:
        monkeypatch.setenv(_gemm.ENV, name)
        results[name] = (scores.empirical_score(x, t, train, chunk_size),
                         scores.empirical_denoiser(x, t, train, chunk_size),
                         scores.empirical_log_prob(x, t, train, chunk_size))
    assert numpy_calls[0] > 0
    for ours, theirs in zip(results["numpy"], results["torch"]):
        scale = theirs.abs().max().item()
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * scale)


def test_score_with_autograd_stays_on_torch(monkeypatch, numpy_calls, problem):
    monkeypatch.setenv(_gemm.ENV, "numpy")
    x, train = problem
    x = x.clone().requires_grad_()
    scores.empirical_log_prob(x, 0.1, train).sum().backward()
    assert numpy_calls[0] == 0 and x.grad is not None and torch.isfinite(x.grad).all()


def _direct_knn(x, ref, k):
    dist = torch.cdist(x.double(), ref.double(), compute_mode="donot_use_mm_for_euclid_dist")
    return dist.topk(k, dim=1, largest=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("d", [3, 300])  # augmented keys, and the bias added to each tile
def test_nearest_neighbors_exact_under_either_library(monkeypatch, numpy_calls, gen, backend, d):
    """Several tiles, row chunks and a padded last block, with either library doing the GEMMs."""
    monkeypatch.setenv(_gemm.ENV, backend)
    monkeypatch.setattr(metrics, "_TILE", 1 << 10)
    monkeypatch.setattr(metrics, "_TILE_WIDE", 1 << 11)
    x, ref = torch.randn(70, d, generator=gen), torch.randn(1001, d, generator=gen)
    dist, idx = metrics.nearest_neighbors(x, ref, k=3, chunk_size=16)
    expected = _direct_knn(x, ref, 3)
    assert torch.equal(idx, expected.indices)
    torch.testing.assert_close(dist, expected.values.float())
    assert (numpy_calls[0] > 0) == (backend == "numpy")
