"""The BLAS behind labkit's large float32 matrix products on the CPU: torch's or numpy's.

torch's CPU wheels multiply with Intel MKL; numpy's with OpenBLAS. Which of the two is faster
depends on the cores, not on a vendor name: on some AMD cores OpenBLAS's kernels run fp32 GEMMs
at 1.2-1.7x MKL's rate on two threads, on Intel cores MKL is usually at least as fast. So the
pick is measured: the first large product of a process times one fp32 GEMM (512 x 1024 x 2048,
about 2 GFLOP: at smaller sizes the libraries differ less than at the sizes they serve) in
each library, interleaved, best of three (some 0.2 s in all on one core), at torch's current
thread count, and caches the answer for that count (the libraries scale differently over
threads).
On one thread it times the CPU time of the calling thread, which other jobs on a busy machine
do not inflate; on more, the wall clock. numpy runs the products with as many BLAS threads as
torch (``torch.get_num_threads()``), restored afterwards, so a process that limits torch's
threads limits these products too.

The pick applies only where the products are the same computation in either library: 2-D
float32 CPU tensors, no autograd (inputs that do not require grad, or grad mode off), at least
``MIN_FLOPS`` floating-point operations. Results agree with torch's to rounding (the two
libraries sum in different orders). Everything else runs through torch as before.

``LABKIT_GEMM`` (read at each call) overrides the measurement: ``torch`` or ``numpy`` forces
that library for every product that qualifies, whatever its size; ``auto`` (or unset) measures.
Used by :mod:`labkit.scores` (the empirical score, denoiser and log-density) and
:mod:`labkit.metrics` (nearest neighbours, memorization).
"""

from __future__ import annotations

import functools
import os
import time
from contextlib import contextmanager

import numpy as np
import torch

ENV = "LABKIT_GEMM"
CHOICES = ("auto", "torch", "numpy")
MIN_FLOPS = 1 << 26  # below ~0.07 GFLOP a product takes under a millisecond: torch, no pick
_SHAPE = (512, 1024, 2048)  # (m, k, n) of the measured GEMM
_MARGIN = 0.95  # numpy is picked only when it takes at most this fraction of torch's time


def requested() -> str:
    """``$LABKIT_GEMM`` checked: ``"auto"``, ``"torch"`` or ``"numpy"``."""
    value = os.environ.get(ENV, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV} must be one of {', '.join(CHOICES)} (or unset), got {value!r}")
    return value


def backend(flops: float = float("inf")) -> str:
    """``"torch"`` or ``"numpy"``: the library for a qualifying product of ``flops`` operations."""
    value = requested()
    if value != "auto":
        return value
    if flops < MIN_FLOPS:
        return "torch"
    return measured(torch.get_num_threads())


@functools.lru_cache(maxsize=None)
def measured(threads: int) -> str:
    """The library with the faster fp32 GEMM at ``threads`` threads: ``"torch"`` or
    ``"numpy"`` (measured once per process and thread count; numpy only when clearly faster)."""
    rates = gemm_rates(threads)
    return "numpy" if rates["numpy"] * _MARGIN > rates["torch"] else "torch"


def gemm_rates(threads: int, shape: tuple[int, int, int] = _SHAPE, repeats: int = 3,
               clock=None) -> dict[str, float]:
    """FLOP/s of one fp32 GEMM of ``shape`` (m, k, n) in torch and in numpy at ``threads``
    threads: interleaved, best of ``repeats`` after a warm-up of each. ``clock`` defaults to
    the calling thread's CPU time on one thread, the wall clock on more."""
    clock = clock or (time.thread_time if threads == 1 else time.perf_counter)
    m, k, n = shape
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    out = torch.empty(m, n)
    a_np, b_np, out_np = a.numpy(), b.numpy(), out.numpy()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    runs = {"torch": lambda: torch.mm(a, b, out=out),
            "numpy": lambda: np.matmul(a_np, b_np, out=out_np)}
    best = dict.fromkeys(runs, float("inf"))
    try:
        with blas_threads(threads):
            for round_ in range(repeats + 1):
                for name, run in runs.items():
                    start = clock()
                    run()
                    if round_:
                        best[name] = min(best[name], clock() - start)
    finally:
        torch.set_num_threads(before)
    return {name: 2 * m * k * n / max(seconds, 1e-9) for name, seconds in best.items()}


@functools.lru_cache(maxsize=1)
def _blas_libraries() -> tuple:
    """threadpoolctl's handles on the BLAS libraries loaded at the first call: numpy's (imported
    with this module) and any loaded before it."""
    import threadpoolctl

    return tuple(threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers)


@contextmanager
def blas_threads(threads: int):
    """Run the enclosed numpy products on ``threads`` BLAS threads (the setting is restored)."""
    changed = []
    for lib in _blas_libraries():
        before = lib.get_num_threads()
        if before != threads:
            lib.set_num_threads(threads)
            changed.append((lib, before))
    try:
        yield
    finally:
        for lib, before in changed:
            lib.set_num_threads(before)


def _blasable(t: torch.Tensor) -> bool:
    """Whether numpy hands this 2-D array to BLAS as it is (one unit stride, the other a
    leading dimension), rather than copying it or looping over it."""
    (rows, cols), (s0, s1) = t.shape, t.stride()
    return (s1 == 1 and s0 >= max(cols, 1)) or (s0 == 1 and s1 >= max(rows, 1))


def qualifies(*tensors: torch.Tensor) -> bool:
    """Whether a product of these tensors may run through numpy (see the module docstring)."""
    grad = torch.is_grad_enabled()
    return all(t.dtype == torch.float32 and t.device.type == "cpu" and t.ndim == 2
               and t.layout == torch.strided and not (grad and t.requires_grad)
               and not t.is_conj() and not t.is_neg() and _blasable(t) for t in tensors)


def mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b`` for ``a`` (m, k) and ``b`` (k, n), through the picked library where it applies.

    ``out`` (m, n) receives the product when given (unit stride along one axis).
    """
    m, k = a.shape
    n = b.shape[1]
    targets = (a, b) if out is None else (a, b, out)
    if m and n and k and qualifies(*targets) and backend(2.0 * m * k * n) == "numpy":
        with blas_threads(torch.get_num_threads()):
            if out is None:
                return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))  # (m, n)
            np.matmul(a.numpy(), b.numpy(), out=out.numpy())
            return out
    return torch.mm(a, b) if out is None else torch.mm(a, b, out=out)


def addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``bias + a @ b`` (m, n), ``bias`` broadcast from (m or 1, n): ``torch.addmm`` through
    the picked library where it applies."""
    m, k = a.shape
    n = b.shape[1]
    if m and n and k and qualifies(a, b) and bias.dtype == torch.float32 \
            and bias.device.type == "cpu" and not (torch.is_grad_enabled() and bias.requires_grad) \
            and backend(2.0 * m * k * n) == "numpy":
        return mm(a, b).add_(bias)
    return torch.addmm(bias, a, b)
