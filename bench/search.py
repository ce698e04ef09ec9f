"""labkit's exact nearest-neighbour search beside its own GEMM and beside faiss, each timed alone.

    python bench/search.py                  # the three shapes below, best of 7 per library
    python bench/search.py --small          # the same shapes, m and n scaled down 10x
    python bench/search.py --markdown PATH  # also write the table as a Markdown page
    pip install -e ".[bench]"               # faiss-cpu (otherwise its column is skipped)

For each shape (m samples, n training points, d dimensions) every case runs in a Python
process of its own (``bench/_timing.py``: one warm-up, then ``--repeats`` timed runs), so
that no library's threads still spin, and no cache is warm, from another's timing:

- ``labkit``: ``labkit.metrics.memorized(samples, train)`` (the two nearest neighbours, exact);
- ``gemm``: its one GEMM, the (m, d) x (d, n) product of the samples with the training set,
  through labkit's pick of BLAS (``labkit._gemm``), and the same in torch and in numpy;
- ``faiss``: faiss-cpu's exact ``IndexFlatL2`` (index built and searched for k = 2);
- ``sklearn``: scikit-learn's brute-force ``NearestNeighbors`` (k = 2).

Each case prints its best, median and spread ((median - best) / best), and the BLAS and
OpenMP runtimes its process loaded. The ratios (labkit's speed-up over faiss and
scikit-learn, and memorized() as a fraction of its GEMM: 1.0 is the limit) are printed only
where they differ from 1 by more than the two spreads added up. The load average is printed
before and after each shape. labkit's flags and neighbours are checked against faiss's and
scikit-learn's answers (in one more process, untimed).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _timing  # noqa: E402

SHAPES = [(2_000, 20_000, 64), (2_000, 20_000, 3_072), (5_000, 50_000, 2)]  # (m, n, d)
CASES = ("labkit", "gemm", "gemm-torch", "gemm-numpy", "faiss", "sklearn")
LABELS = {"labkit": "labkit memorized()", "gemm": "its GEMM (labkit's pick)",
          "gemm-torch": "GEMM in torch", "gemm-numpy": "GEMM in numpy",
          "faiss": "faiss IndexFlatL2", "sklearn": "scikit-learn brute"}


shape_arg = _timing.shape_arg


def problem(m: int, n: int, d: int):
    """Seeded (samples, train), float32: half the samples next to training points."""
    import torch

    g = torch.Generator().manual_seed(0)
    train = torch.randn(n, d, generator=g)
    near = train[torch.randint(0, n, (m // 2,), generator=g)]
    near = near + 0.05 * torch.randn(m // 2, d, generator=g)
    return torch.cat([near, torch.randn(m - m // 2, d, generator=g)]), train


def faiss_search(faiss, train, samples):
    import numpy as np

    index = faiss.IndexFlatL2(train.shape[1])
    index.add(train)
    squared, idx = index.search(samples, 2)
    return np.sqrt(np.maximum(squared, 0)), idx


def case_function(case: str, m: int, n: int, d: int):
    """The call that ``case`` times, with its inputs built (untimed)."""
    import torch

    samples, train = problem(m, n, d)
    threads = torch.get_num_threads()
    if case == "labkit":
        from labkit import metrics
        return lambda: metrics.memorized(samples, train)
    if case == "gemm":
        from labkit import _gemm
        _gemm.backend()  # its one-off measurement of both BLAS, outside the timing
        return lambda: _gemm.mm(samples, train.T)
    if case == "gemm-torch":
        return lambda: torch.mm(samples, train.T)
    if case == "gemm-numpy":
        from labkit import _gemm
        a, b = samples.numpy(), train.numpy()

        def numpy_gemm():
            with _gemm.blas_threads(threads):
                return a @ b.T
        return numpy_gemm
    if case == "faiss":
        import faiss
        faiss.omp_set_num_threads(threads)
        a, b = samples.numpy(), train.numpy()
        return lambda: faiss_search(faiss, b, a)
    if case == "sklearn":
        from sklearn.neighbors import NearestNeighbors
        a, b = samples.numpy(), train.numpy()
        return lambda: NearestNeighbors(n_neighbors=2, algorithm="brute").fit(b).kneighbors(a)
    raise ValueError(f"case must be one of {CASES}, got {case!r}")


def agreement(m: int, n: int, d: int) -> str:
    """labkit's flags and neighbours beside faiss's and scikit-learn's (fractions that agree)."""
    from labkit import metrics

    samples, train = problem(m, n, d)
    flags = metrics.memorized(samples, train).numpy()
    idx = metrics.nearest_neighbors(samples, train)[1].numpy()
    answers = {"scikit-learn": case_function("sklearn", m, n, d)()}
    if has_faiss():
        import faiss
        answers["faiss"] = faiss_search(faiss, train.numpy(), samples.numpy())
    parts = []
    for name, (their_dist, their_idx) in answers.items():
        same_flags = (flags == (their_dist[:, 0] < their_dist[:, 1] / 3)).mean()
        parts.append(f"{name}: flags {same_flags:.4f}, indices {(idx == their_idx).mean():.4f}")
    return "; ".join(parts)


def has_faiss() -> bool:
    import importlib.util
    return importlib.util.find_spec("faiss") is not None


def run_shape(shape, repeats: int, cases) -> dict:
    m, n, d = shape
    before = _timing.load()
    timings = {case: _timing.time_alone(__file__, case, ["--shape", f"{m},{n},{d}",
                                                         "--repeats", str(repeats)])
               for case in cases}
    return {"shape": shape, "timings": timings, "load": (before, _timing.load()),
            "agreement": _timing.time_alone(__file__, "agreement",
                                            ["--shape", f"{m},{n},{d}"]).runtimes}


def ratios(result: dict) -> dict[str, str]:
    t = result["timings"]
    out = {"memorized() / its GEMM": _timing.ratio_text(t["gemm"], t["labkit"])}
    if "faiss" in t:
        out["speed-up over faiss"] = _timing.ratio_text(t["faiss"], t["labkit"])
    if "sklearn" in t:
        out["speed-up over scikit-learn"] = _timing.ratio_text(t["sklearn"], t["labkit"])
    return out


def print_shape(result: dict, repeats: int) -> None:
    m, n, d = result["shape"]
    print(f"\nm={m:,} samples, n={n:,} training points, d={d:,}: best of {repeats}, each case "
          f"in its own process (load average {result['load'][0]} before, {result['load'][1]} after)")
    for case, timing in result["timings"].items():
        print(f"  {LABELS[case]:26s} best {timing.best * 1e3:9.1f} ms  median "
              f"{timing.median * 1e3:9.1f} ms  spread {timing.spread:5.1%}   [{timing.runtimes}]")
    for name, text in ratios(result).items():
        print(f"  {name}: {text}")
    print(f"  agreement with {result['agreement']}")


def markdown(results: list[dict], repeats: int) -> str:
    """The book's performance page: the table of one run of this script."""
    lines = ["# Performance", "",
             "The exact nearest-neighbour search of `labkit.metrics.memorized` beside its own GEMM "
             "and beside faiss-cpu and scikit-learn, as `make bench` (`bench/search.py`) measured "
             "it on the machine below. Each library ran in a Python process of its own, "
             f"with one warm-up and then {repeats} timed runs: *best* is the fastest run, "
             "*spread* how far the median lies above it. A ratio (the other's best over "
             "labkit's) is stated only where it differs from 1 by more than the two spreads "
             "added up.", "",
             f"- date: {datetime.date.today().isoformat()}",
             f"- CPU: {_timing.cpu_name()}",
             f"- threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}", ""]
    for result in results:
        m, n, d = result["shape"]
        lines += [f"## m = {m:,}, n = {n:,}, d = {d:,}", "",
                  f"Load average {result['load'][0]} before, {result['load'][1]} after.", "",
                  "| case | best (ms) | median (ms) | spread | BLAS / OpenMP loaded |",
                  "|---|---|---|---|---|"]
        for case, timing in result["timings"].items():
            lines.append(f"| {LABELS[case]} | {timing.best * 1e3:.1f} | "
                         f"{timing.median * 1e3:.1f} | {timing.spread:.1%} | {timing.runtimes} |")
        lines += [""] + [f"- {name}: {text}" for name, text in ratios(result).items()]
        lines += [f"- agreement with {result['agreement']}", ""]
    return "\n".join(lines)


def worker(case: str, shape, repeats: int) -> None:
    if case == "agreement":
        return print(json.dumps({"times": [1.0], "runtimes": agreement(*shape)}))
    _timing.report(_timing.best_of(case_function(case, *shape), repeats))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="m and n of each shape / 10")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (best kept)")
    parser.add_argument("--shape", type=shape_arg, action="append",
                        help="m,n,d (repeatable): these shapes instead of the default three")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--markdown", type=Path, help="write the table to this Markdown file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown or not {"labkit", "gemm"} <= set(cases):
        parser.error(f"--cases: known cases are {','.join(CASES)} (labkit and gemm required), "
                     f"got {args.cases!r}")
    if args.worker:
        return worker(args.worker, args.shape[0], args.repeats)
    if "faiss" in cases and not has_faiss():
        print("faiss-cpu is not installed: its column is skipped (pip install -e '.[bench]')")
        cases.remove("faiss")
    shapes = args.shape or [(max(10, m // 10), max(100, n // 10), d) if args.small else (m, n, d)
                            for m, n, d in SHAPES]
    print(f"CPU: {_timing.cpu_name()}; load average {_timing.load()}")
    results = []
    for shape in shapes:
        results.append(run_shape(shape, args.repeats, cases))
        print_shape(results[-1], args.repeats)
    if args.markdown:
        tmp = args.markdown.with_name(f".{args.markdown.name}.tmp-{os.getpid()}")
        tmp.write_text(markdown(results, args.repeats) + "\n", encoding="utf-8")
        os.replace(tmp, args.markdown)  # atomic: the old page or the new one
        print(f"\nwritten to {args.markdown}")


if __name__ == "__main__":
    main()
