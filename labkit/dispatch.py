"""Where the rows of a computation run: in this process, in joblib worker processes, or on a
Dask cluster. One dispatcher for :mod:`labkit.sweeps` and :mod:`labkit.results`.

:func:`dispatch` calls ``task(*args)`` for every tuple of arguments and yields the outputs as
they finish (any order; each output should say which input it belongs to). ``n_jobs=1`` with
the default backend runs in this process (easy to debug, no pickling); otherwise joblib runs
``n_jobs`` processes (``backend`` ``"loky"``, ``"threading"``, ``"ray"``, or None for the active
``joblib.parallel_config``), and ``backend="dask"`` submits every task to a
``dask.distributed`` cluster: the client given as ``scheduler`` (or its address,
``"tcp://HOST:PORT"``), else the active client, else dask's ``scheduler-address`` setting
(``DASK_SCHEDULER_ADDRESS``). The scheduler reruns a task whose worker dies; on an error the
remaining tasks are cancelled. Introduced with the sweeps of notebook 02.

With ``errors="keep"`` a task that raises does not stop the others: its output is a
:class:`Failure` (the arguments, the exception's type and message, its traceback as text),
yielded in its place, so a caller can store every row that worked and report the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

__all__ = ["dispatch", "dask_client", "Failure"]


@dataclass(frozen=True)
class Failure:
    """What a task that raised left (``dispatch(..., errors="keep")``): its ``arguments``, the
    exception's ``error`` (``"TypeName: message"``) and the ``traceback`` as text. Falsy, so
    ``if not output`` finds one."""

    arguments: tuple
    error: str
    traceback: str

    def __bool__(self) -> bool:
        return False


def _guarded(task: Callable, *args):
    """``task(*args)``, or a :class:`Failure` when it raises an Exception (KeyboardInterrupt
    and SystemExit still stop the run)."""
    import traceback

    try:
        return task(*args)
    except Exception as exc:
        return Failure(tuple(args), f"{type(exc).__name__}: {exc}", traceback.format_exc())


def dispatch(task: Callable, arguments: Iterable[tuple], *, n_jobs: int = 1,
             backend: str | None = "loky", scheduler=None, errors: str = "raise") -> Iterator:
    """Yield ``task(*args)`` for each ``args`` of ``arguments``, as they finish (see the module
    docstring for ``n_jobs``, ``backend`` and ``scheduler``). ``task`` must be importable by
    the workers (a module-level function). ``errors="raise"`` (default): the first task that
    raises stops the run with its exception; ``"keep"``: it yields a :class:`Failure` instead
    and the other tasks go on. ValueError names a bad ``n_jobs``, ``backend`` or ``errors``,
    or a ``scheduler`` given without ``backend="dask"``."""
    if errors not in ("raise", "keep"):
        raise ValueError(f"errors must be 'raise' or 'keep', got {errors!r}")
    if errors == "keep":
        task = partial(_guarded, task)
    if n_jobs == 0 or isinstance(n_jobs, bool) or not isinstance(n_jobs, int):
        raise ValueError(f"n_jobs must be a non-zero integer (-1: all cores), got {n_jobs!r}")
    if backend is not None and not isinstance(backend, str):
        raise ValueError(f"backend must be a joblib backend name, 'dask' or None, got {backend!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler={scheduler!r} needs backend='dask', got backend={backend!r}")
    arguments = [tuple(a) for a in arguments]
    if backend == "dask":
        return _dask_outputs(task, arguments, scheduler)
    if n_jobs == 1 and backend in ("loky", None):
        return (task(*a) for a in arguments)
    import joblib

    jobs = (joblib.delayed(task)(*a) for a in arguments)
    parallel = joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")
    return iter(parallel(jobs))


def dask_client(scheduler=None):
    """``(client, close_after)``: the client given, one connected to the address given, the
    active one, or one connected to ``DASK_SCHEDULER_ADDRESS`` (dask's ``scheduler-address``)."""
    try:
        import dask
        from dask.distributed import Client, get_client
    except ImportError as exc:
        raise ImportError("backend='dask' needs dask.distributed: "
                          "pip install 'labkit-memgen[cluster]'") from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    if scheduler is not None:
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise ValueError(f"scheduler must be a dask Client or an address 'tcp://HOST:PORT', "
                             f"got {scheduler!r}")
        return Client(scheduler), True
    try:
        return get_client(), False
    except ValueError:
        address = dask.config.get("scheduler-address", None)
        if address:
            return Client(address), True
    raise ValueError("backend='dask' needs a Dask cluster: pass scheduler='tcp://HOST:PORT', set "
                     "DASK_SCHEDULER_ADDRESS, or create a dask.distributed.Client first")


def _dask_outputs(task, arguments: list[tuple], scheduler):
    from dask.distributed import as_completed

    client, close_after = dask_client(scheduler)
    futures = [client.submit(task, *a, pure=False) for a in arguments]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.cancel(futures)
        if close_after:
            client.close()
