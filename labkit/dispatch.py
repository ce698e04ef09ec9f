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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

__all__ = ["dispatch", "dask_client"]

def dispatch(task: Callable, arguments: Iterable[tuple], *, n_jobs: int = 1,
             backend: str | None = "loky", scheduler=None) -> Iterator:
    """Yield ``task(*args)`` for each ``args`` of ``arguments``, as they finish (see the module
    docstring for ``n_jobs``, ``backend`` and ``scheduler``). ``task`` must be importable by
    the workers (a module-level function). ValueError names a bad ``n_jobs`` or ``backend``,
    or a ``scheduler`` given without ``backend="dask"``."""
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
