"""Benchmark of the empirical score and the memorization metric, measured side by side.

    python bench/scores.py            # the CIFAR-scale shape of the issue (n=50,000, d=3,072)
    python bench/scores.py --small    # a quick run

Prints, from one run on this machine:
1. the empirical score's effective FLOP rate (4 m n d flops: two GEMMs) as a fraction of a plain
   fp32 GEMM of the same (m, d) x (d, n) shape in torch and in numpy, each library's BLAS, and
   of the faster of the two (the goal is >= 0.85 of the faster: the computation is GEMM-bound,
   everything else is O(m n) or O(n d)); labkit's products run through the faster one
   (``labkit._gemm``), so the best GEMM on the machine is the limit;
2. its speed-up over the straightforward broadcast implementation at a size where that fits;
3. its peak extra memory at the big shape (chunking keeps it near one logit block);
4. ``labkit.metrics.memorized`` against scikit-learn's brute-force nearest neighbours (goal:
   faster), on a new training tensor (cold) and a repeated one (warm), and its cost when the
   training set holds copies (the deduplication path). ``bench/search.py`` sets it beside its
   own GEMM and faiss-cpu at three shapes; ``bench/blas.py`` sets each BLAS beside the peak.
"""

from __future__ import annotations

import argparse
import math
import os
import threading
import time

import torch

from labkit import _gemm, metrics, process, scores


def best_time(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_rounds(runs: dict, repeats: int = 3) -> dict[str, float]:
    """Best of ``repeats`` interleaved rounds of each run (after a warm-up round), so that load
    from other processes hits them alike."""
    best = dict.fromkeys(runs, math.inf)
    for round_ in range(repeats + 1):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            if round_:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_extra_memory(fn) -> int:
    """Peak resident memory above the level before ``fn`` runs, sampled every millisecond."""
    base, peak, done = rss_bytes(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=watch)
    thread.start()
    fn()
    done.set()
    thread.join()
    return max(peak[0], rss_bytes()) - base


def broadcast_score(x, t, train):
    """The textbook implementation: materialise every difference x - alpha_t x_i, (m, n, d)."""
    alpha, sigma = process.alpha_sigma(torch.as_tensor(t, dtype=x.dtype))
    diff = x[:, None, :] - alpha * train[None, :, :]  # (m, n, d)
    w = torch.softmax(-(diff**2).sum(-1) / (2 * sigma**2), dim=1)  # (m, n)
    return -(w[:, :, None] * diff).sum(1) / sigma**2


def memorization_benchmark(small: bool, g: torch.Generator, repeats: int = 7) -> None:
    """[4] ``labkit.metrics.memorized`` against scikit-learn's brute-force nearest neighbours.

    The timings are interleaved (one call of each per round, the best round kept) so that load
    from other processes hits them alike. A *cold* call gets a training tensor it has never seen
    (a fresh copy), so it would miss any per-tensor cache; a *warm* call repeats one tensor.
    """
    from sklearn.neighbors import NearestNeighbors

    mq, nq, dq = (1_000, 5_000, 64) if small else (2_000, 20_000, 64)
    ref, samples = torch.randn(nq, dq, generator=g), torch.randn(mq, dq, generator=g)
    fresh = [ref.clone() for _ in range(repeats + 1)]

    def sklearn_neighbors(train, x):
        return NearestNeighbors(n_neighbors=2, algorithm="brute").fit(train.numpy()).kneighbors(x.numpy())

    def sklearn_memorized():
        dist, _ = sklearn_neighbors(ref, samples)
        return dist[:, 0] < dist[:, 1] / 3

    runs = {"cold": lambda: metrics.memorized(samples, fresh.pop()),
            "warm": lambda: metrics.memorized(samples, ref),
            "sklearn": sklearn_memorized}
    best = dict.fromkeys(runs, math.inf)
    for round_ in range(repeats + 1):  # round 0 is a warm-up
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            if round_ > 0:
                best[name] = min(best[name], time.perf_counter() - start)
    flags_agree = (metrics.memorized(samples, ref).numpy() == sklearn_memorized()).mean()
    idx_agree = (metrics.nearest_neighbors(samples, ref)[1].numpy() == sklearn_neighbors(ref, samples)[1]).mean()
    cold, warm, sk = (best[name] * 1e3 for name in ("cold", "warm", "sklearn"))
    print(f"\n[4] memorized(), m={mq:,} samples, n={nq:,} training points, d={dq}, "
          f"best of {repeats} interleaved rounds:")
    print(f"    labkit cold (new training tensor) {cold:.0f} ms, warm (same tensor) {warm:.0f} ms, "
          f"scikit-learn brute force {sk:.0f} ms")
    print(f"    speed-up over scikit-learn: cold {sk / cold:.2f}x, warm {sk / warm:.2f}x "
          f"(flags agree {flags_agree:.3f}, neighbour indices agree {idx_agree:.4f})")

    # The deduplication path: 10% of the training points copied, half the samples next to copies.
    dup_train = torch.cat([ref, ref[: nq // 10]])
    dup_samples = torch.cat([ref[: mq // 2] + 0.01 * torch.randn(mq // 2, dq, generator=g), samples[mq // 2:]])
    t_dup = best_time(lambda: metrics.memorized(dup_samples, dup_train))
    dup_flags = metrics.memorized(dup_samples, dup_train).double().mean().item()
    print(f"    with copies in the training set (dedupe path): labkit {t_dup * 1e3:.0f} ms, "
          f"{100 * dup_flags:.0f}% memorized (expected {100 * (mq // 2) / mq:.0f}%: the samples next to copies)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick run at a smaller shape")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    n, d, m = (5_000, 512, 256) if args.small else (50_000, 3_072, 256)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    train = torch.randn(n, d, generator=g)
    x = process.alpha_sigma(0.01)[0] * train[:m] + 0.1 * torch.randn(m, d, generator=g)
    x_np, train_np = x.numpy(), train.numpy()

    def numpy_gemm():
        with _gemm.blas_threads(torch.get_num_threads()):
            return x_np @ train_np.T

    best = best_of_rounds({"score": lambda: scores.empirical_score(x, 0.01, train),
                           "torch": lambda: x @ train.T, "numpy": numpy_gemm})
    score_rate = 4 * m * n * d / best["score"]
    gemm_rate = {name: 2 * m * n * d / best[name] for name in ("torch", "numpy")}
    print(f"\n[1] empirical score, m={m}, n={n:,}, d={d:,} (labkit's GEMM pick: {_gemm.backend()}, "
          f"LABKIT_GEMM={_gemm.requested()}): {best['score'] * 1e3:.0f} ms, {score_rate / 1e9:.1f} GFLOP/s")
    for name, rate in gemm_rate.items():
        print(f"    plain fp32 GEMM ({m}x{d})x({d}x{n:,}) in {name}: {best[name] * 1e3:.0f} ms, "
              f"{rate / 1e9:.1f} GFLOP/s; effective rate / this GEMM = {score_rate / rate:.2f}")
    print(f"    effective rate / the faster GEMM = {score_rate / max(gemm_rate.values()):.2f} (goal >= 0.85)")

    nb, db = 2_000, 256
    small_train, small_x = train[:nb, :db].contiguous(), x[:, :db].contiguous()
    t_labkit = best_time(lambda: scores.empirical_score(small_x, 0.01, small_train))
    t_naive = best_time(lambda: broadcast_score(small_x, 0.01, small_train), repeats=2)
    err = (scores.empirical_score(small_x, 0.01, small_train) - broadcast_score(small_x, 0.01, small_train)).abs().max()
    print(f"\n[2] vs broadcast implementation at m={m}, n={nb:,}, d={db}: labkit {t_labkit * 1e3:.1f} ms, "
          f"broadcast {t_naive * 1e3:.0f} ms, speed-up {t_naive / t_labkit:.0f}x (max abs difference {err:.1e})")

    extra = peak_extra_memory(lambda: scores.empirical_score(x, 0.01, train))
    print(f"\n[3] peak extra memory of one call at n={n:,}, d={d:,}: {extra / 2**20:.0f} MiB "
          f"(training set itself: {train.numel() * 4 / 2**20:.0f} MiB; one (m, n) logit block: {m * n * 4 / 2**20:.0f} MiB)")

    memorization_benchmark(args.small, g)
    if not math.isfinite(score_rate):
        raise SystemExit("timing failed")


if __name__ == "__main__":
    main()
