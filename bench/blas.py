"""The fp32 GEMM rate of each BLAS in this process, beside the cores' peak and labkit's pick.

    python bench/blas.py                          # 1,000 x 3,072 x 20,000, best of 5 rounds
    python bench/blas.py --shape 256 1024 1024    # another (m, k, n)

Prints:
1. the BLAS libraries loaded, as threadpoolctl names them (library, version, the kernel
   OpenBLAS picked for these cores, threads); torch's MKL is linked into torch, where
   threadpoolctl cannot see it, so ``torch.__config__`` names it;
2. the fp32 GEMM rate of each at the shape, timed side by side in interleaved rounds (best
   kept): torch, numpy, scipy's ``sgemm`` (where scipy ships its own BLAS), each at torch's
   thread count;
3. the cores' peak estimate, ``cores x FMA pipes x SIMD lanes x 2 x clock``: 2 FMA pipes with
   8 fp32 lanes (256-bit datapaths: AMD Zen 2-4, Intel cores without AVX-512), 16 lanes for
   AVX-512 datapaths (Intel with AVX-512, AMD Zen 5), at the clock ``/proc/cpuinfo`` reports
   (a virtual machine often reports the base clock, below what the cores boost to: then a
   measured rate can pass the estimate, and the clock it implies is printed);
4. each rate as a fraction of the fastest and of the peak, and labkit's pick
   (``labkit._gemm``: measured once per process; ``LABKIT_GEMM`` forces one).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from pathlib import Path

import numpy as np
import torch

from labkit import _gemm


def cpu_facts() -> dict:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    field = lambda name: (re.search(rf"^{name}\s*:\s*(.*)$", text, re.M) or [None, ""])[1]  # noqa: E731
    flags = set(field("flags").split())
    vendor, family = field("vendor_id"), int(field("cpu family") or 0)
    wide = "avx512f" in flags and (vendor == "GenuineIntel" or (vendor == "AuthenticAMD" and family >= 26))
    lanes = 16 if wide else 8 if "fma" in flags else 4
    return {"model": field("model name") or "unknown", "vendor": vendor, "family": family,
            "mhz": float(field("cpu MHz") or "nan"), "lanes": lanes, "avx512": "avx512f" in flags}


def timed_rounds(runs: dict, repeats: int, clock=time.perf_counter) -> dict[str, float]:
    best = dict.fromkeys(runs, math.inf)
    for round_ in range(repeats + 1):  # round 0 warms up
        for name, fn in runs.items():
            start = clock()
            fn()
            if round_:
                best[name] = min(best[name], clock() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[1_000, 3_072, 20_000], metavar=("M", "K", "N"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu-time", action="store_true",
                        help="time CPU time, not the wall clock (one thread only: OMP_NUM_THREADS=1)")
    args = parser.parse_args()
    if args.cpu_time and torch.get_num_threads() != 1:
        raise SystemExit("--cpu-time needs one thread (OMP_NUM_THREADS=1)")
    m, k, n = args.shape
    threads = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0))
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    out = torch.empty(m, n)
    a_np, b_np, out_np = a.numpy(), b.numpy(), out.numpy()
    runs = {"torch": lambda: torch.mm(a, b, out=out)}

    def numpy_run():
        with _gemm.blas_threads(threads):
            np.matmul(a_np, b_np, out=out_np)

    runs["numpy"] = numpy_run
    try:
        from scipy.linalg import blas as scipy_blas

        a_f, b_f = np.asfortranarray(a_np), np.asfortranarray(b_np)

        def scipy_run():
            with _gemm.blas_threads(threads):
                scipy_blas.sgemm(1.0, a_f, b_f)

        runs["scipy"] = scipy_run
    except ImportError:
        pass

    import threadpoolctl

    try:
        import faiss  # noqa: F401  (its own OpenBLAS, listed below; the bench extra installs it)
    except ImportError:
        print("faiss-cpu is not installed: its BLAS is not listed (pip install -e '.[bench]')")

    print(f"{m} x {k} x {n} fp32 GEMM ({2 * m * k * n / 1e9:.0f} GFLOP), {threads} threads, "
          f"{cores} cores available, load average {os.getloadavg()[0]:.1f}")
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", torch.__config__.show())
    print(f"\n[1] BLAS libraries\n    torch {torch.__version__}: "
          f"{'MKL ' + mkl.group(1) if mkl else 'BLAS ' + torch.backends.cpu.get_cpu_capability()} "
          f"(CPU capability {torch.backends.cpu.get_cpu_capability()})")
    for lib in threadpoolctl.threadpool_info():
        if lib["user_api"] == "blas":
            print(f"    {Path(lib['filepath']).parent.name}/{Path(lib['filepath']).name}: {lib['internal_api']} "
                  f"{lib.get('version')}, kernel {lib.get('architecture')}, {lib['num_threads']} threads")

    best = timed_rounds(runs, args.repeats, time.thread_time if args.cpu_time else time.perf_counter)
    rates = {name: 2 * m * k * n / seconds / 1e9 for name, seconds in best.items()}
    fastest = max(rates.values())
    cpu = cpu_facts()
    peak = min(threads, cores) * 2 * cpu["lanes"] * 2 * cpu["mhz"] / 1e3
    print(f"\n[2] fp32 GEMM rate, best of {args.repeats} interleaved rounds"
          f" ({'CPU time' if args.cpu_time else 'wall clock'})")
    for name, rate in rates.items():
        print(f"    {name:6s} {best[name] * 1e3:8.1f} ms  {rate:6.1f} GFLOP/s  {rate / fastest:5.2f} of the fastest"
              f"  {rate / peak:5.2f} of the peak estimate")
    print(f"\n[3] peak estimate: {min(threads, cores)} cores x 2 FMA x {cpu['lanes']} lanes x 2 flops x "
          f"{cpu['mhz'] / 1e3:.2f} GHz = {peak:.0f} GFLOP/s ({cpu['model']}, {cpu['vendor']} family {cpu['family']})")
    if fastest > peak:
        implied = fastest / (min(threads, cores) * 2 * cpu["lanes"] * 2)
        print(f"    the fastest GEMM passes it: the cores run at {implied:.2f} GHz or more (boost above the "
              f"reported clock)")
    pick = _gemm.backend()
    print(f"\n[4] labkit's pick: {pick} (LABKIT_GEMM={_gemm.requested()}), "
          f"{rates[pick] / fastest:.2f} of the fastest GEMM here")


if __name__ == "__main__":
    main()
