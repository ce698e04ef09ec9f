"""Argument checks shared by labkit's public entry points.

Every public function validates its inputs here so that a bad value raises a ``ValueError``
or ``TypeError`` that names the argument and says what was expected, instead of failing deep
inside a matrix product (or, worse, returning a silently wrong number).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def points(x, name: str, dim: int | None = None, allow_empty: bool = False,
           finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a floating tensor of shape (m, d) (finite unless ``finite=False``,
    for callers that check finiteness more cheaply themselves) and return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (m, d), got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (m, d), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must hold at least one point, got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one dimension, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (the data dimension), got shape {tuple(x.shape)}")
    if finite and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def time(t, name: str, like: torch.Tensor, m: int | None = None, allow_zero: bool = False) -> torch.Tensor:
    """Turn ``t`` (float, 0-d or (m,) tensor) into a tensor on ``like``'s device and dtype.

    Returns a 0-d tensor for a scalar time and an (m,) tensor for per-point times. Times must be
    finite and positive (or non-negative when ``allow_zero``).
    """
    if isinstance(t, bool) or not isinstance(t, (Real, torch.Tensor)):
        raise TypeError(f"{name} must be a float or a tensor of times, got {type(t).__name__}")
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim > 1:
        raise ValueError(f"{name} must be a scalar or have shape (m,), got shape {tuple(t.shape)}")
    if t.ndim == 1 and m is not None and t.shape[0] != m:
        raise ValueError(f"{name} has {t.shape[0]} times but there are {m} points")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t}")
    bad = (t < 0) if allow_zero else (t <= 0)
    if bad.any():
        need = "t >= 0" if allow_zero else "t > 0 (the density at t = 0 is not defined for this estimator)"
        raise ValueError(f"{name} must satisfy {need}, got min {t.min().item():.3g}")
    return t


def positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral) or v <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def optional_positive_int(v, name: str) -> int | None:
    return None if v is None else positive_int(v, name)


def positive_float(v, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return float(v)


def unit_interval(v, name: str, closed_left: bool = False, closed_right: bool = True) -> float:
    """Check ``v`` lies in the interval (0, 1] (ends set by the flags) and return it as a float."""
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v):
        raise ValueError(f"{name} must be a number, got {v!r}")
    lo_ok = v >= 0 if closed_left else v > 0
    hi_ok = v <= 1 if closed_right else v < 1
    if not (lo_ok and hi_ok):
        interval = ("[" if closed_left else "(") + "0, 1" + ("]" if closed_right else ")")
        raise ValueError(f"{name} must lie in {interval}, got {v!r}")
    return float(v)


def generator(g, name: str = "generator") -> torch.Generator | None:
    if g is not None and not isinstance(g, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(g).__name__}")
    return g


def choice(v, name: str, allowed: tuple[str, ...]) -> str:
    if v not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {v!r}")
    return v


def device(value, name: str = "device") -> torch.device:
    """Check a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``) and
    return it as a ``torch.device``. A device this torch build or machine cannot use raises a
    ValueError that says why (instead of torch's AssertionError at the first allocation)."""
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a torch device such as 'cpu', 'cuda' or 'cuda:0', got {value!r}") from exc
    if dev.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise ValueError(f"{name} {value} requested but this torch build has no CUDA (torch {torch.__version__}); "
                             "use cpu, or install a CUDA build of torch")
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {value} requested but no CUDA device is visible (torch.cuda.is_available() "
                             "is False: check the driver and CUDA_VISIBLE_DEVICES); use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {value} requested but this machine has {torch.cuda.device_count()} "
                             f"CUDA device(s), numbered from 0")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} {value} requested but MPS is not available on this machine; use cpu")
    return dev


def broadcast_time(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Shape a 0-d or (m,) time so it broadcasts against x of shape (m, ...)."""
    return t if t.ndim == 0 else t.reshape(-1, *([1] * (x.ndim - 1)))  # (m, 1, ..., 1)
