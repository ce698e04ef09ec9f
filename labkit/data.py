"""Ground-truth laws with exact diffused scores, 2-D toy sets, and duplicate handling.

The lab's ground truth is a Gaussian mixture ``P = sum_k w_k N(mu_k, Sigma)`` with a shared
covariance (notation: the book's Background page, ``docs/background.md``). Diffused by the OU process it stays a mixture,

    P_t = sum_k w_k N(alpha_t mu_k, C_t),   C_t = alpha_t^2 Sigma + sigma_t^2 I,

so its log-density and score ``sum_k pi_k(x) C_t^{-1} (alpha_t mu_k - x)`` are exact at every t
(including t = 0). With ``Sigma = I``, ``C_t = I`` exactly. The paper's setting (K = 8,
``mu_k ~ N(0, 4 I_d)``, ``Sigma = I``) is :func:`make_gmm`. Introduced in notebook 00.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import _checks
from .process import alpha_sigma

__all__ = [
    "GaussianMixture",
    "make_gmm",
    "Toy",
    "TOYS",
    "toy_mixture",
    "toy_2d",
    "PointCloud",
    "toy_data",
    "deduplicate",
    "with_duplicates",
]


class GaussianMixture:
    """``sum_k w_k N(mu_k, Sigma)`` with a shared covariance and exact diffused quantities.

    Args:
        means: (K, d) component means: a floating tensor (its dtype is the mixture's dtype) or an
            array-like (numpy array, nested lists), converted as ``torch.as_tensor`` does (integers
            become torch's default float dtype).
        cov: a positive number (``Sigma = cov * I``) or a (d, d) symmetric positive-definite
            matrix (tensor or array-like).
        weights: (K,) non-negative weights summing to 1 (tensor or array-like), or None for
            equal weights.
    """

    def __init__(self, means, cov=1.0, weights=None):
        self.means = means = _checks.points(_as_float_tensor(means, "means"), "means")
        k, d = means.shape
        cov = _as_float_tensor(cov, "cov") if not isinstance(cov, (int, float)) else cov
        if isinstance(cov, torch.Tensor) and cov.ndim == 0:
            cov = cov.item()
        if isinstance(cov, torch.Tensor):
            if cov.shape != (d, d):
                raise ValueError(f"cov must be a float or a ({d}, {d}) matrix, got shape {tuple(cov.shape)}")
            c64 = cov.detach().to(torch.float64)
            if not torch.isfinite(c64).all() or not torch.allclose(c64, c64.T, atol=1e-10):
                raise ValueError("cov must be a finite symmetric matrix")
            eigvals, eigvecs = torch.linalg.eigh(c64)
            if eigvals.min() <= 0:
                raise ValueError(f"cov must be positive definite, got smallest eigenvalue {eigvals.min().item():.3g}")
            self.isotropic = False
        else:
            c = _checks.positive_float(float(cov), "cov")
            eigvals, eigvecs = torch.full((d,), c, dtype=torch.float64), torch.eye(d, dtype=torch.float64)
            self.isotropic = True
        self.eigvals, self.eigvecs = eigvals, eigvecs  # Sigma = U diag(lam) U^T, float64
        if weights is None:
            weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
        else:
            weights = _as_float_tensor(weights, "weights")
            if weights.shape != (k,):
                raise ValueError(f"weights must be a tensor of shape ({k},), got shape {tuple(weights.shape)}")
            weights = weights.detach().to(torch.float64)
            if not torch.isfinite(weights).all() or (weights < 0).any():
                raise ValueError("weights must be finite and non-negative")
            if abs(weights.sum().item() - 1.0) > 1e-6:
                raise ValueError(f"weights must sum to 1, got {weights.sum().item():.6g}")
        self.weights = weights

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    @property
    def cov(self) -> torch.Tensor:
        """The shared covariance Sigma as a (d, d) float64 matrix."""
        return (self.eigvecs * self.eigvals) @ self.eigvecs.T

    @property
    def trace_cov(self) -> float:
        return float(self.eigvals.sum())

    def __repr__(self) -> str:
        kind = f"cov={self.eigvals[0].item():g}*I" if self.isotropic else "full cov"
        return f"GaussianMixture(K={self.num_components}, d={self.dim}, {kind})"

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` points; returns (n, d) in the means' dtype and device."""
        n = _checks.positive_int(n, "n")
        _checks.generator(generator)
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        noise = (z * self.eigvals.sqrt()) @ self.eigvecs.T  # (n, d): Sigma^{1/2} z
        x = self.means.detach().to(torch.float64, copy=False)[comp] + noise
        return x.to(self.means.dtype).to(self.means.device)

    def _diffused(self, x: torch.Tensor, t):
        """Rotated residuals and per-axis variances of P_t at x.

        Returns ``y`` (m, K, d): ``U^T (x - alpha_t mu_k)``, ``var`` (m or 1, d): the eigenvalues
        of C_t, and ``log_w`` (K,).
        """
        m, _ = x.shape
        t = _checks.time(t, "t", x, m=m, allow_zero=True)
        alpha_t, sigma_t = alpha_sigma(t)
        alpha_t, sigma_t = alpha_t.reshape(-1, 1), sigma_t.reshape(-1, 1)  # (m or 1, 1)
        lam = self.eigvals.to(x)
        u = self.eigvecs.to(x)
        mu = self.means.to(x)
        var = alpha_t**2 * lam + sigma_t**2  # (m or 1, d)
        xr, mur = x @ u, mu @ u  # rotate once: (m, d), (K, d)
        y = xr[:, None, :] - alpha_t[:, :, None] * mur[None, :, :]  # (m, K, d)
        return y, var, self.weights.to(x).log()

    def _log_joint(self, x, t):
        y, var, log_w = self._diffused(x, t)
        quad = (y**2 / var[:, None, :]).sum(-1)  # (m, K)
        log_det = torch.log(var).sum(-1, keepdim=True)  # (m or 1, 1)
        log_joint = log_w - 0.5 * (quad + log_det + self.dim * math.log(2 * math.pi))  # (m, K)
        return log_joint, y, var

    def log_prob(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """Log-density of the diffused law P_t at x (m, d); t >= 0 scalar or (m,). Returns (m,)."""
        x = _checks.points(x, "x", dim=self.dim)
        log_joint, _, _ = self._log_joint(x, t)
        return torch.logsumexp(log_joint, dim=1)

    def responsibilities(self, x: torch.Tensor, t=0.0) -> torch.Tensor:
        """Posterior component probabilities ``pi_k(x)`` under P_t; returns (m, K)."""
        x = _checks.points(x, "x", dim=self.dim)
        log_joint, _, _ = self._log_joint(x, t)
        return torch.softmax(log_joint, dim=1)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """``grad_x log p_t(x) = sum_k pi_k(x) C_t^{-1} (alpha_t mu_k - x)``; x (m, d) -> (m, d)."""
        x = _checks.points(x, "x", dim=self.dim)
        log_joint, y, var = self._log_joint(x, t)
        pi = torch.softmax(log_joint, dim=1)  # (m, K)
        rotated = -torch.einsum("mk,mkd->md", pi, y) / var  # (m, d): C_t^{-1} in the eigenbasis
        return rotated @ self.eigvecs.to(x).T

    def denoiser(self, x: torch.Tensor, t) -> torch.Tensor:
        """Posterior mean ``E[X_0 | X_t = x]`` via Tweedie; x (m, d) -> (m, d), t > 0."""
        from .process import denoiser_from_score

        return denoiser_from_score(self.score(x, t), x, t)


def _as_float_tensor(value, name: str) -> torch.Tensor:
    """A tensor from a tensor, numpy array, scalar or nested list; integers become floats."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be numbers (a tensor, numpy array or list), got {value!r}")
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be numbers (a tensor, numpy array or list), got {type(value).__name__} "
                        f"{value!r:.60}") from exc
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{name} must be real numbers, got dtype {tensor.dtype}")
    return tensor if tensor.is_floating_point() else tensor.to(torch.get_default_dtype())


def make_gmm(num_components: int = 8, dim: int = 32, mean_std: float = 2.0, cov=1.0,
             generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> GaussianMixture:
    """The paper's mixture: K equal-weight components, ``mu_k ~ N(0, mean_std^2 I_d)``, shared cov."""
    k = _checks.positive_int(num_components, "num_components")
    d = _checks.positive_int(dim, "dim")
    s = _checks.positive_float(mean_std, "mean_std")
    _checks.generator(generator)
    means = s * torch.randn(k, d, generator=generator, dtype=torch.float64)
    return GaussianMixture(means.to(dtype), cov=cov)


def _gmm4(dtype: torch.dtype) -> GaussianMixture:
    means = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])
    return GaussianMixture(means.to(dtype), cov=0.25)


def _ring(dtype: torch.dtype) -> GaussianMixture:
    angles = torch.arange(8) * (2 * math.pi / 8)
    means = 3.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture(means.to(dtype), cov=0.09)


def _moons(n: int, generator: torch.Generator | None, dtype: torch.dtype) -> torch.Tensor:
    upper = torch.rand(n, generator=generator) < 0.5
    angle = torch.rand(n, generator=generator) * math.pi
    x = torch.where(upper, angle.cos(), 1 - angle.cos())
    y = torch.where(upper, angle.sin(), 0.5 - angle.sin())
    pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 2.0
    pts = pts + 0.1 * torch.randn(n, 2, generator=generator)
    return pts.to(dtype)


@dataclass(frozen=True)
class Toy:
    """A registered 2-D toy set: a description, and either its closed-form law
    (``law(dtype) -> GaussianMixture``: exact scores and log-densities) or only a sampler
    (``draw(n, generator, dtype) -> (n, 2)``)."""

    description: str
    law: Callable[[torch.dtype], GaussianMixture] | None = None
    draw: Callable[[int, torch.Generator | None, torch.dtype], torch.Tensor] | None = None

    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if self.law is not None:
            return self.law(dtype).sample(n, generator=generator)
        return self.draw(n, generator, dtype)


# The one registry of 2-D toys: toy_mixture, toy_2d, toy_data and every protocol of
# labkit.experiments read it (mixture="ring", ...). Add a Toy here to make it available everywhere.
TOYS: dict[str, Toy] = {
    "gmm4": Toy("K = 4 at (+-2, +-2), std 0.5: the paper's Fig. 2 setting", law=_gmm4),
    "ring": Toy("8 components on a circle of radius 3, std 0.3", law=_ring),
    "moons": Toy("two interleaved half circles, noise 0.1, scaled to unit spread (no closed form)",
                 draw=_moons),
}


def toy_mixture(name: str = "gmm4", dtype: torch.dtype = torch.float32) -> GaussianMixture:
    """The closed-form law of a toy of :data:`TOYS` that has one: ``"gmm4"`` (K = 4 at
    (+-2, +-2), std 0.5, the paper's Fig. 2 setting) or ``"ring"`` (8 components on a circle of
    radius 3, std 0.3)."""
    with_law = tuple(k for k, toy in TOYS.items() if toy.law is not None)
    if name in TOYS and TOYS[name].law is None:
        raise ValueError(f"name {name!r} is a toy without a closed-form law (toy_2d and toy_data "
                         f"draw it); toys with one: {with_law}")
    _checks.choice(name, "name", with_law)
    return TOYS[name].law(dtype)


def toy_2d(name: str, n: int, generator: torch.Generator | None = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` points of a 2-D toy set of :data:`TOYS`: ``"gmm4"``, ``"ring"`` (exact mixtures, see
    :func:`toy_mixture`) or ``"moons"`` (two interleaved half circles, noise 0.1, scaled to unit
    spread; no closed-form score). Returns (n, 2)."""
    _checks.choice(name, "name", tuple(TOYS))
    n = _checks.positive_int(n, "n")
    _checks.generator(generator)
    return TOYS[name].sample(n, generator, dtype)


@dataclass(frozen=True, eq=False)
class PointCloud:
    """A data set a protocol can study: the training ``points`` (n, d), and optionally
    ``sample(m, generator=None) -> (m, d)``, fresh draws from the law the points came from
    (the null rate of memorization is measured on them), and ``log_prob(x) -> (m,)``, that
    law's log-density (for the log-likelihood of generated samples). Without ``sample`` a
    protocol reports memorization without its null rate; without ``log_prob``, no
    log-likelihood. ``points`` may be a tensor, a numpy array or nested lists (e.g. scikit-learn's
    ``make_moons(...)[0]``); protocols train on them in float32, the networks' dtype.

    ``PointCloud.from_law(law, n, generator)`` draws the points from a law with ``sample`` and
    ``log_prob`` (a :class:`GaussianMixture`) and keeps both; :func:`toy_data` does it for a
    registered toy."""

    points: torch.Tensor
    sample: Callable | None = None
    log_prob: Callable | None = None
    name: str = "points"

    def __post_init__(self):
        points = _as_float_tensor(self.points, "points")
        if points.ndim != 2 or points.shape[0] < 1 or points.shape[1] < 1:
            raise ValueError(f"points must have shape (n, d) with n, d >= 1, "
                             f"got {tuple(points.shape)}")
        if not torch.isfinite(points).all():
            raise ValueError("points contain NaN or infinite values")
        object.__setattr__(self, "points", points)
        for field_name in ("sample", "log_prob"):
            value = getattr(self, field_name)
            if value is not None and not callable(value):
                raise TypeError(f"{field_name} must be callable or None, "
                                f"got {type(value).__name__}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {type(self.name).__name__}")

    @property
    def n(self) -> int:
        return int(self.points.shape[0])

    @property
    def dim(self) -> int:
        return int(self.points.shape[1])

    def __repr__(self) -> str:
        has = [k for k in ("sample", "log_prob") if getattr(self, k) is not None]
        return f"PointCloud({self.name!r}, n={self.n}, dim={self.dim}, with={has})"

    def check(self, m: int = 4) -> PointCloud:
        """Try ``sample`` and ``log_prob`` on a small draw (``m`` points) and raise a
        ValueError or TypeError naming the argument when one cannot serve a protocol: a
        sampler that does not take ``(m, generator=...)``, returns other than ``m`` finite
        floating points of the points' ``d`` columns, or a log-density that does not return
        ``m`` finite floating values (shape ``(m,)``, not ``(m, 1)``) on the training points
        and on the sampler's draws. Protocols call it before any training; the random state
        of torch and numpy is left as it was. Returns the cloud."""
        import numpy as np

        m = _checks.positive_int(m, "m")
        state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                draws = None
                if self.sample is not None:
                    draws = self._checked_draw(m)
                if self.log_prob is not None:
                    self._check_log_prob(self.points[:m], "the first training points")
                    if draws is not None:
                        self._check_log_prob(draws, "the sampler's draws")
        finally:
            np.random.set_state(state)
        return self

    def _checked_draw(self, m: int) -> torch.Tensor:
        try:
            x = self.sample(m, generator=torch.Generator().manual_seed(0))
        except TypeError as exc:
            raise TypeError(f"sample must take (m, generator=None) and return (m, d) points; "
                            f"sample({m}, generator=...) raised {exc}") from exc
        x = _as_float_tensor(x, f"sample({m})'s output")
        if tuple(x.shape) != (m, self.dim):
            raise ValueError(f"sample must return (m, {self.dim}) points (the training points' "
                             f"columns); sample({m}) returned shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"sample returned NaN or infinite values in sample({m})")
        return x

    def _check_log_prob(self, x: torch.Tensor, what: str) -> None:
        m = x.shape[0]
        value = self.log_prob(x.to(self.points.dtype))
        value = _as_float_tensor(value, "log_prob's output")
        if tuple(value.shape) != (m,):
            raise ValueError(f"log_prob must return one value per point, shape ({m},); on "
                             f"{what} it returned shape {tuple(value.shape)}"
                             + (" (flatten it: log_prob(x).reshape(-1))" if value.numel() == m
                                else ""))
        if not torch.isfinite(value).all():
            raise ValueError(f"log_prob returned NaN or infinite values on {what}: "
                             f"{value.tolist()}")

    @classmethod
    def from_law(cls, law, n: int, generator: torch.Generator | None = None,
                 name: str = "points") -> PointCloud:
        """``n`` points drawn from ``law`` (with ``law.sample(n, generator=...)``), keeping its
        ``sample`` and, when it has one, its ``log_prob``."""
        n = _checks.positive_int(n, "n")
        points = law.sample(n, generator=generator)
        return cls(points, law.sample, getattr(law, "log_prob", None), name)


def _toy_sampler(name: str):
    return functools.partial(toy_2d, name)


def toy_data(name: str, n: int, generator: torch.Generator | None = None) -> PointCloud:
    """``n`` points of the registered toy ``name`` (:data:`TOYS`) as a :class:`PointCloud`, with
    its sampler and, for a toy with a closed-form law, its log-density."""
    _checks.choice(name, "name", tuple(TOYS))
    toy = TOYS[name]
    if toy.law is not None:
        return PointCloud.from_law(toy.law(torch.float32), n, generator, name=name)
    return PointCloud(toy_2d(name, n, generator), _toy_sampler(name), None, name)


def deduplicate(x: torch.Tensor, atol: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove repeated points, keeping first occurrences in order.

    ``atol = 0`` drops exact copies; ``atol > 0`` also drops a point within Euclidean distance
    ``atol`` of an earlier kept point. Returns ``(unique (u, d), counts (u,))`` where ``counts``
    says how many input points each kept point stands for.
    """
    x = _checks.points(x, "x")
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not math.isfinite(atol) or atol < 0:
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")
    n = x.shape[0]
    owner = torch.arange(n)
    if atol == 0 and _rows_certainly_distinct(x):
        return x, torch.ones(n, dtype=torch.long, device=x.device)
    if atol == 0:
        _, inverse = torch.unique(x, dim=0, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1,), n, dtype=torch.long)
        first.scatter_reduce_(0, inverse, torch.arange(n), reduce="amin")
        owner = first[inverse]
    else:
        for i in range(n):  # greedy in input order; O(n^2 d) is fine at the sizes this is for
            if owner[i] != i:
                continue
            close = (x[i + 1:] - x[i]).norm(dim=1) <= atol
            later = torch.arange(i + 1, n)[close]
            owner[later] = torch.where(owner[later] == later, torch.full_like(later, i), owner[later])
    keep = torch.nonzero(owner == torch.arange(n)).flatten()
    counts = torch.bincount(owner, minlength=n)[keep]
    return x[keep], counts


def _rows_certainly_distinct(x: torch.Tensor) -> bool:
    """Fast path of :func:`deduplicate`: hash each row's bit pattern (O(n d)) and sort n hashes.

    Equal rows have equal hashes, so distinct hashes prove the rows distinct; a repeated hash
    (a duplicate, or a rare collision) sends the caller to the exact row-wise ``unique``.
    """
    int_type = torch.int64 if x.element_size() == 8 else torch.int32 if x.element_size() == 4 else torch.int16
    bits = (x + 0.0).contiguous().view(int_type).to(torch.int64)  # + 0.0 maps -0.0 to +0.0
    mult = torch.arange(1, 2 * x.shape[1], 2, dtype=torch.int64, device=x.device) * 0x9E3779B97F4A7C1 % (1 << 61)
    hashes = (bits * mult).sum(1)  # int64 arithmetic wraps: fine for a hash
    return torch.unique(hashes).numel() == x.shape[0]


def with_duplicates(train: torch.Tensor, fraction: float, copies: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Repeat a random ``fraction`` of the training points so each appears ``copies`` times.

    Returns (n + round(fraction n) (copies - 1), d): the original set followed by the extra copies.
    Used to show that duplication lowers the effective sample size.
    """
    train = _checks.points(train, "train")
    fraction = _checks.unit_interval(fraction, "fraction", closed_left=True)
    copies = _checks.positive_int(copies, "copies")
    _checks.generator(generator)
    n = train.shape[0]
    chosen = torch.randperm(n, generator=generator)[: round(fraction * n)]
    extra = train[chosen].repeat(copies - 1, 1)
    return torch.cat([train, extra], dim=0)
