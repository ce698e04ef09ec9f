"""labkit's exact nearest-neighbour search beside its own GEMM and beside faiss, side by side.

    python bench/search.py              # the three shapes below, best of 5 interleaved rounds
    python bench/search.py --small      # the same shapes, scaled down, for a quick look
    pip install -e ".[bench]"           # faiss-cpu (otherwise its column is skipped)

For each shape (m samples, n training points, d dimensions) one round times, one after the
other so that load from other processes hits them alike:

- ``labkit.metrics.memorized(samples, train)`` (the two nearest neighbours, exact);
- its one GEMM, the (m, d) x (d, n) product of the samples with the training set, in torch
  and in numpy (whichever BLAS each ships), and labkit's pick between them (``labkit._gemm``);
- faiss-cpu's exact ``IndexFlatL2`` (index built and searched for k = 2), if installed;
- scikit-learn's brute-force ``NearestNeighbors`` (k = 2).

The best round of each is kept, and everything is printed as ratios: memorized() as a
fraction of its GEMM (the search does that GEMM and a selection, so 1.0 is the limit), and
the speed-up of labkit over faiss and scikit-learn. The flags and the neighbours are checked
against faiss's and scikit-learn's answers.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from labkit import _gemm, metrics

SHAPES = [(1_000, 20_000, 3_072), (2_000, 20_000, 64), (5_000, 50_000, 2)]  # (m, n, d)


CLOCK = time.perf_counter  # or time.process_time (--cpu-time)


def best_of_interleaved(runs: dict, repeats: int) -> dict[str, float]:
    """Seconds of the best of ``repeats`` rounds of each run, after one warm-up round."""
    best = dict.fromkeys(runs, math.inf)
    for round_ in range(repeats + 1):
        for name, fn in runs.items():
            start = CLOCK()
            fn()
            if round_:
                best[name] = min(best[name], CLOCK() - start)
    return best


def numpy_gemm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with _gemm.blas_threads(torch.get_num_threads()):
        return a @ b.T


def faiss_search(faiss, train: np.ndarray, samples: np.ndarray):
    index = faiss.IndexFlatL2(train.shape[1])
    index.add(train)
    squared, idx = index.search(samples, 2)
    return np.sqrt(np.maximum(squared, 0)), idx


def bench_shape(m: int, n: int, d: int, repeats: int, faiss) -> None:
    from sklearn.neighbors import NearestNeighbors

    g = torch.Generator().manual_seed(0)
    train = torch.randn(n, d, generator=g)
    # half the samples next to training points (memorized), half fresh draws
    near = train[torch.randint(0, n, (m // 2,), generator=g)] + 0.05 * torch.randn(m // 2, d, generator=g)
    samples = torch.cat([near, torch.randn(m - m // 2, d, generator=g)])
    train_np, samples_np = train.numpy(), samples.numpy()

    runs = {"labkit": lambda: metrics.memorized(samples, train),
            "gemm torch": lambda: torch.mm(samples, train.T),
            "gemm numpy": lambda: numpy_gemm(samples_np, train_np)}
    if faiss is not None:
        runs["faiss"] = lambda: faiss_search(faiss, train_np, samples_np)
    runs["sklearn"] = lambda: NearestNeighbors(n_neighbors=2, algorithm="brute").fit(train_np).kneighbors(samples_np)
    best = best_of_interleaved(runs, repeats)

    pick = _gemm.backend()
    gemm_pick, gemm_best = best[f"gemm {pick}"], min(best["gemm torch"], best["gemm numpy"])
    rate = lambda seconds: 2 * m * n * d / seconds / 1e9  # noqa: E731
    print(f"\nm={m:,} samples, n={n:,} training points, d={d:,} (best of {repeats} interleaved rounds)")
    print(f"  labkit memorized()     {best['labkit'] * 1e3:8.1f} ms")
    print(f"  GEMM torch             {best['gemm torch'] * 1e3:8.1f} ms  {rate(best['gemm torch']):6.1f} GFLOP/s")
    print(f"  GEMM numpy             {best['gemm numpy'] * 1e3:8.1f} ms  {rate(best['gemm numpy']):6.1f} GFLOP/s")
    if faiss is not None:
        print(f"  faiss IndexFlatL2      {best['faiss'] * 1e3:8.1f} ms")
    print(f"  scikit-learn brute     {best['sklearn'] * 1e3:8.1f} ms")
    print(f"  memorized() / its GEMM ({pick}, labkit's pick): {gemm_pick / best['labkit']:.2f}"
          f"   / the faster GEMM: {gemm_best / best['labkit']:.2f}   (goal >= 0.9)")
    line = f"  labkit speed-up: over faiss-cpu {best['faiss'] / best['labkit']:.2f}x, " if faiss else "  labkit speed-up: "
    print(line + f"over scikit-learn {best['sklearn'] / best['labkit']:.2f}x   (goal >= 1.0)")

    flags = metrics.memorized(samples, train).numpy()
    dist, idx = metrics.nearest_neighbors(samples, train)
    answers = {"scikit-learn": runs["sklearn"]()}
    if faiss is not None:
        answers["faiss"] = faiss_search(faiss, train_np, samples_np)
    for name, (their_dist, their_idx) in answers.items():
        same_flags = (flags == (their_dist[:, 0] < their_dist[:, 1] / 3)).mean()
        same_idx = (idx.numpy() == their_idx).mean()
        print(f"  agreement with {name}: flags {same_flags:.4f}, neighbour indices {same_idx:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="the shapes scaled down 10x in m and n")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (best kept)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time this process's CPU time, not the wall clock: with OMP_NUM_THREADS=1 "
                             "on a machine that other jobs load, time spent waiting for a core is left out")
    args = parser.parse_args()
    global CLOCK
    if args.cpu_time:
        if torch.get_num_threads() != 1:
            raise SystemExit("--cpu-time needs one thread (OMP_NUM_THREADS=1): threads waiting for each "
                             "other would count as work")
        CLOCK = time.process_time
    try:
        import faiss
    except ImportError:
        faiss = None
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}, {'CPU time' if args.cpu_time else 'wall clock'}")
    print(f"labkit's GEMM pick: {_gemm.backend()} (LABKIT_GEMM={_gemm.requested()})")
    if faiss is None:
        print("faiss-cpu is not installed: its column is skipped (pip install -e '.[bench]')")
    else:
        faiss.omp_set_num_threads(torch.get_num_threads())
        print(f"faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads)")
    for m, n, d in SHAPES:
        if args.small:
            m, n = max(10, m // 10), max(100, n // 10)
        bench_shape(m, n, d, args.repeats, faiss)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
