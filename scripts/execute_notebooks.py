"""Execute notebooks at full size, in place: the first step of ``make book``.

Each notebook runs top to bottom in a fresh kernel and is written back atomically with its
outputs and widget state (so the kernel-free explorers replay in the book), and with the
measured runtime in ``metadata.labkit.runtime_s``. The book (``docs/``, Sphinx + MyST-NB)
then renders the executed notebooks with execution off. A notebook that fails is left as it
was and the script exits with status 1 after running the others.

``LABKIT_FAST`` is removed from the environment: the book shows the full-size runs.

Usage: python scripts/execute_notebooks.py [--jobs 1] [--timeout 1800] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's course/ package (the runtime line)


def format_runtime(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.0f} s"


def execute(path: Path, timeout: int) -> float:
    """Run ``path`` top to bottom in a fresh kernel; write it back atomically; return seconds."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)  # a run that shows no widget must not keep a stale state
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
                            store_widget_state=True, resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata.setdefault("labkit", {})["runtime_s"] = round(elapsed, 1)
    tmp = path.with_name(path.name + ".tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    from course.runtime import stamp_runtime

    stamp_runtime(path, missing_ok=True)  # the generated "Time to run" line of the first cell
    return elapsed


def try_execute(path: Path, timeout: int) -> tuple[float | None, str | None]:
    """``execute`` in a worker process: (seconds, None) or (None, the error's last line)."""
    try:
        return execute(path, timeout), None
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        lines = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
        return None, lines[-1] if lines else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb in order")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default 1800)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks executed at once (default 1: runtimes measured without contention)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.timeout < 1:
        parser.error(f"--jobs and --timeout must be positive, got --jobs {args.jobs} --timeout {args.timeout}")
    notebooks = sorted(args.notebooks or (ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        parser.error("no notebooks to execute: notebooks/*.ipynb is empty")
    missing = [str(path) for path in notebooks if not path.is_file()]
    if missing:
        parser.error(f"not found: {', '.join(missing)}")

    os.environ.pop("LABKIT_FAST", None)
    failed = []
    start = time.perf_counter()
    print(f"executing {len(notebooks)} notebook(s) at full size, {args.jobs} at a time ...", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = {path: pool.submit(try_execute, path, args.timeout) for path in notebooks}
        for path, run in runs.items():
            seconds, error = run.result()
            if error is None:
                print(f"  {path.name}: {format_runtime(seconds)}", flush=True)
            else:
                failed.append(path.name)
                print(f"  {path.name}: FAILED ({error}); left as it was", flush=True)
    print(f"executed {len(notebooks) - len(failed)} notebook(s) in {format_runtime(time.perf_counter() - start)}")
    if failed:
        print(f"notebooks that failed (left as committed): {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
