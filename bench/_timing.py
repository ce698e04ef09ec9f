"""Timing that cannot flatter one library: each case in a process of its own, repeated.

A benchmark script names its cases (a library on one shape); :func:`time_alone` runs each in a
fresh Python process (``python SCRIPT --worker CASE ...``) that builds its inputs, warms up
once, times ``repeats`` runs and prints them as one JSON line, with the BLAS and OpenMP
runtimes it loaded (threadpoolctl). No runtime's threads are left spinning from another
library's timing, and no library's allocations or caches are warm from another's.

:class:`Timing` holds the times: ``best`` (the minimum: the run that other processes on the
machine disturbed least), ``median`` and ``spread`` (``(median - best) / best``: how far a
typical run lies above the best). :func:`ratio_text` states a ratio of two timings only where
it is wider than their spreads added up, and otherwise says that they do not differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds of each timed run of one case, and what the process had loaded."""

    times: tuple[float, ...]
    runtimes: str = ""

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        return (self.median - self.best) / self.best


def best_of(fn, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def runtimes() -> str:
    """The BLAS and OpenMP runtimes loaded in this process, with their versions and threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    seen = []
    for lib in threadpool_info():
        name = lib.get("internal_api", lib.get("prefix", "?"))
        text = f"{name} {lib.get('version') or ''}".strip() + f" ({lib.get('num_threads')} threads)"
        if text not in seen:
            seen.append(text)
    torch = sys.modules.get("torch")  # torch's own BLAS is linked in, unseen by threadpoolctl
    if torch is not None:
        info = dict(part.split("=", 1) for part in torch.__config__.show().replace(",", "\n")
                    .split() if "=" in part)
        seen.append(f"torch: {info.get('BLAS_INFO', '?')} ({torch.get_num_threads()} threads)")
    return ", ".join(seen)


def report(times: list[float]) -> None:
    """A worker's answer: one JSON line on stdout."""
    print(json.dumps({"times": times, "runtimes": runtimes()}), flush=True)


def time_alone(script: str | Path, case: str, args: list[str], timeout: float = 1800) -> Timing:
    """Run ``python script --worker case *args`` in a fresh process: its :class:`Timing`."""
    done = subprocess.run([sys.executable, str(script), "--worker", case, *args],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{case} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return Timing(tuple(answer["times"]), answer["runtimes"])


def ratio_text(numerator: Timing, denominator: Timing) -> str:
    """``numerator.best / denominator.best`` where that ratio is further from 1 than the two
    spreads added up; otherwise the ratio is not stated, and the text says why."""
    ratio = numerator.best / denominator.best
    noise = numerator.spread + denominator.spread
    if abs(ratio - 1) <= noise:
        return f"no difference resolved ({ratio:.2f}, spread {noise:.0%})"
    return f"{ratio:.2f}"


def load() -> str:
    """The machine's 1-minute load average, as text."""
    return f"{os.getloadavg()[0]:.2f}"


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one) and its logical cores."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} logical cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"


def shape_arg(text: str) -> tuple[int, int, int]:
    """An argparse type: ``"m,n,d"`` (queries, training points, dimension) as three integers."""
    try:
        m, n, d = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is m,n,d (three integers), got {text!r}")
    if min(m, n, d) < 1 or n < 2:
        raise argparse.ArgumentTypeError(f"a shape needs m, d >= 1 and n >= 2, got {text!r}")
    return m, n, d
