"""Score networks: a time-conditioned ReLU MLP and the softmax-attention constructions.

``ScoreMLP`` is the network of the paper's mixture experiments (Section 6, Figs. 2-3): a ReLU
MLP that takes ``(x_t, t)`` and predicts the NOISE ``eps(x_t, t) ~ E[Z | X_t = x_t]``. Its
score is ``-eps / sigma_t`` (``labkit.process.score_from_noise``), and training it with the
noise-prediction MSE is exactly DSM weighted by ``sigma_t^2`` (``labkit.losses.dsm_noise_loss``).

``SoftmaxAttentionDenoiser`` is the constructive view behind Theorem 5.1's discussion: one
softmax-attention layer whose keys are ``alpha_t k_j`` and values ``k_j`` computes a posterior-
mean denoiser exactly. With the n training points as keys it IS the empirical denoiser (memory,
n x d parameters); with the K mixture means as keys it is the mixture's denoiser (K x d
parameters, independent of n).

Introduced in ``notebooks/01_estimation_separation.ipynb``; sized in notebook 02's sweeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from .process import alpha_sigma, score_from_denoiser, score_from_noise

__all__ = [
    "MLPConfig",
    "ScoreMLP",
    "MLP_PRESETS",
    "SoftmaxAttentionDenoiser",
    "num_parameters",
]


def num_parameters(model: nn.Module, nonzero: bool = False) -> int:
    """Number of trainable parameters of ``model`` (only the nonzero ones when ``nonzero``:
    the count Theorem 5.1 bounds)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if nonzero:
        return int(sum(int((p != 0).sum()) for p in params))
    return int(sum(p.numel() for p in params))


def _batch_time(t, x: torch.Tensor) -> torch.Tensor:
    """Check ``t`` (float, 0-d or (m,)) and return it as an (m,) tensor like ``x``."""
    t = _checks.time(t, "t", x, m=x.shape[0])
    return t.expand(x.shape[0]) if t.ndim == 0 else t


# --------------------------------------------------------------------------------------------
# The time-conditioned MLP
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MLPConfig:
    """Shape of a :class:`ScoreMLP`.

    ``dim``: data dimension d. ``width``: hidden units per layer. ``depth``: number of hidden
    layers (>= 1). ``time_embedding``: ``"sinusoidal"`` (sines and cosines of ``log t`` at
    ``embed_dim // 2`` geometric frequencies) or ``"log"`` (the single feature ``log t``).
    """

    dim: int
    width: int = 256
    depth: int = 3
    time_embedding: str = "sinusoidal"
    embed_dim: int = 32

    def __post_init__(self):
        _checks.positive_int(self.dim, "dim")
        _checks.positive_int(self.width, "width")
        _checks.positive_int(self.depth, "depth")
        _checks.choice(self.time_embedding, "time_embedding", ("sinusoidal", "log"))
        _checks.positive_int(self.embed_dim, "embed_dim")
        if self.time_embedding == "sinusoidal" and self.embed_dim % 2:
            raise ValueError(f"embed_dim must be even for a sinusoidal embedding, got {self.embed_dim}")


class TimeEmbedding(nn.Module):
    """Features of the OU time, computed from ``log t`` (times span several decades).

    Input ``t`` of shape (m,); output (m, embed_dim) for ``"sinusoidal"``, (m, 1) for ``"log"``.
    Sinusoidal frequencies run geometrically from 1/8 to 8 radians per unit of ``log t``, so
    the slow ones separate decades and the fast ones resolve within a decade.
    """

    def __init__(self, kind: str, embed_dim: int):
        super().__init__()
        self.kind = kind
        self.out_dim = embed_dim if kind == "sinusoidal" else 1
        freqs = torch.logspace(math.log10(1 / 8), math.log10(8.0), max(embed_dim // 2, 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        log_t = torch.log(t)[:, None]                                  # (m, 1)
        if self.kind == "log":
            return log_t
        angles = log_t * self.freqs.to(t.dtype)                        # (m, embed_dim/2)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (m, embed_dim)


class ScoreMLP(nn.Module):
    """A ReLU MLP that predicts the noise ``eps(x_t, t)``; ``.score`` turns it into a score.

    Layer l computes ``h_l = relu(W_l h_{l-1} + U_l e(t) + b_l)`` with ``h_0 = x_t`` and
    ``e(t)`` the time embedding (the time enters every layer, not just the first), and the
    output is a linear read-out ``eps = W_out h_depth + b_out``.

    ``ScoreMLP(dim, width=256, depth=3, time_embedding="sinusoidal", embed_dim=32,
    generator=None)``; ``generator`` makes the initial weights reproducible.
    ``forward(x_t, t)``: ``x_t`` (m, d), ``t`` a float, 0-d or (m,) tensor of times > 0;
    returns (m, d).
    """

    def __init__(self, dim: int, width: int = 256, depth: int = 3,
                 time_embedding: str = "sinusoidal", embed_dim: int = 32,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.config = MLPConfig(dim, width, depth, time_embedding, embed_dim)
        self.embed = TimeEmbedding(time_embedding, embed_dim)
        sizes = [dim] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.time_proj = nn.ModuleList(nn.Linear(self.embed.out_dim, width, bias=False)
                                       for _ in range(depth))
        self.out = nn.Linear(width, dim)
        self.init_weights(generator)

    @classmethod
    def from_preset(cls, name: str, dim: int, generator: torch.Generator | None = None) -> "ScoreMLP":
        """A network of one of the sizes in :data:`MLP_PRESETS`."""
        _checks.choice(name, "name", tuple(MLP_PRESETS))
        return cls(dim, **MLP_PRESETS[name], generator=generator)

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """He-normal hidden weights (ReLU), zero biases, and a zero read-out so the untrained
        network predicts ``eps = 0`` (the score of a standard normal scaled by 0: a neutral start)."""
        _checks.generator(generator)
        for layer in self.hidden:
            std = math.sqrt(2.0 / layer.in_features)
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
            layer.bias.zero_()
        for layer in self.time_proj:
            std = math.sqrt(1.0 / layer.in_features)
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * std)
        self.out.weight.zero_()
        self.out.bias.zero_()

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        _checks.points(x_t, "x_t", dim=self.config.dim)
        if x_t.dtype != self.out.weight.dtype:
            raise TypeError(f"x_t is {x_t.dtype} but this ScoreMLP's weights are "
                            f"{self.out.weight.dtype}; pass x_t.to({self.out.weight.dtype}) or "
                            f"convert the network (net.to({x_t.dtype}))")
        emb = self.embed(_batch_time(t, x_t))                          # (m, e)
        h = x_t
        for layer, proj in zip(self.hidden, self.time_proj):
            h = F.relu(layer(h) + proj(emb))                           # (m, width)
        return self.out(h)                                             # (m, d)

    def score(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """``grad log p_t(x_t) ~ -eps(x_t, t) / sigma_t``; shapes as in ``forward``."""
        return score_from_noise(self(x_t, t), t)

    def num_parameters(self, nonzero: bool = False) -> int:
        return num_parameters(self, nonzero)


# Sizes used across the notebooks. "tiny" is for tests; "cpu" is notebook 01's default; the
# others span the paper's Fig. 3a range at d = 32 (counts printed in notebook 02).
MLP_PRESETS = {
    "tiny": dict(width=32, depth=2),
    "cpu": dict(width=256, depth=3),
    "small": dict(width=128, depth=2),
    "medium": dict(width=512, depth=3),
    "large": dict(width=1024, depth=4),
}


# --------------------------------------------------------------------------------------------
# Softmax attention as a posterior-mean denoiser
# --------------------------------------------------------------------------------------------

class SoftmaxAttentionDenoiser(nn.Module):
    """One softmax-attention layer that computes ``E[X_0 | X_t = x]`` for a discrete prior.

    The prior is ``X_0 = k_J + sqrt(c) G`` with ``J ~ weights`` over N keys ``k_j`` (rows of
    ``keys``, shape (N, d)), ``G ~ N(0, I)`` and component variance ``c >= 0``. Then
    ``X_t | J = j ~ N(alpha_t k_j, s^2 I)`` with ``s^2 = alpha_t^2 c + sigma_t^2``, and

        D(x) = sum_j a_j(x) (1 - alpha_t^2 c / s^2) k_j  +  (alpha_t c / s^2) x,
        a(x) = softmax_j( <x, alpha_t k_j> / s^2 - alpha_t^2 ||k_j||^2 / (2 s^2) + log w_j ).

    That is attention with query ``x / s^2``, keys ``alpha_t k_j``, values ``k_j`` (scaled),
    a per-key bias and a residual connection. ``c = 0`` with the training set as keys gives
    the empirical denoiser; ``c = 1`` with the mixture means gives the denoiser of a mixture
    with identity covariance (for which ``s^2 = 1`` at every t).

    Build with :meth:`from_training_set` or :meth:`from_mixture`. ``forward(x, t)``: x (m, d),
    t a float, 0-d or (m,) tensor > 0; returns the denoised (m, d). Its parameters are the
    N x d keys (shared by keys and values), so ``num_parameters()`` is ``N d``: ``n d`` to
    memorize, ``K d`` to generalize.
    """

    def __init__(self, keys: torch.Tensor, component_var: float = 0.0,
                 weights: torch.Tensor | None = None):
        super().__init__()
        _checks.points(keys, "keys")
        if isinstance(component_var, bool) or not isinstance(component_var, (int, float)) \
                or not math.isfinite(component_var) or component_var < 0:
            raise ValueError(f"component_var must be a finite number >= 0, got {component_var!r}")
        n = keys.shape[0]
        if weights is None:
            log_w = torch.zeros(n, dtype=keys.dtype, device=keys.device)
        else:
            if not isinstance(weights, torch.Tensor) or weights.shape != (n,):
                raise ValueError(f"weights must be a tensor of shape ({n},), got "
                                 f"{getattr(weights, 'shape', type(weights).__name__)}")
            if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError("weights must be finite, non-negative and not all zero")
            log_w = torch.log(weights / weights.sum()).to(keys.dtype)
        self.keys = nn.Parameter(keys.detach().clone())
        self.register_buffer("log_weights", log_w)
        self.component_var = float(component_var)

    @classmethod
    def from_training_set(cls, train: torch.Tensor) -> "SoftmaxAttentionDenoiser":
        """The empirical denoiser: n keys ``x_i``, equal weights, ``c = 0``."""
        _checks.points(train, "train")
        return cls(train, component_var=0.0)

    @classmethod
    def from_mixture(cls, gmm) -> "SoftmaxAttentionDenoiser":
        """The denoiser of a Gaussian mixture with isotropic covariance ``c I`` (c = 1 in the
        paper): K keys ``mu_k``, the mixture's weights."""
        means = getattr(gmm, "means", None)
        if not isinstance(means, torch.Tensor):
            raise TypeError(f"gmm must be a labkit.data.GaussianMixture, got {type(gmm).__name__}")
        d = means.shape[1]
        cov = torch.as_tensor(gmm.cov, dtype=means.dtype, device=means.device)
        if cov.ndim == 2:
            c = cov[0, 0]
            if not torch.allclose(cov, c * torch.eye(d, dtype=cov.dtype, device=cov.device)):
                raise ValueError("from_mixture needs an isotropic covariance c * I; this mixture's is not")
            cov = c
        weights = getattr(gmm, "weights", None)
        return cls(means, component_var=float(cov), weights=weights)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        _checks.points(x, "x", dim=self.keys.shape[1])
        keys = self.keys.to(x.dtype)
        alpha_t, sigma_t = alpha_sigma(_batch_time(t, x))              # (m,), (m,)
        s2 = alpha_t**2 * self.component_var + sigma_t**2              # (m,)
        query = (x / s2[:, None])[:, None, :]                          # (m, 1, d)
        key = keys[None, :, :]                                         # (1, N, d) ; alpha_t on the query side
        value = keys[None, :, :]                                       # (1, N, d)
        bias = (-(alpha_t**2 / (2 * s2))[:, None] * (keys**2).sum(1)[None, :]
                + self.log_weights.to(x.dtype)[None, :])               # (m, N)
        query = query * alpha_t[:, None, None]                         # <x, alpha_t k_j> / s^2
        attended = F.scaled_dot_product_attention(
            query, key.expand(x.shape[0], -1, -1), value.expand(x.shape[0], -1, -1),
            attn_mask=bias[:, None, :], scale=1.0)[:, 0, :]            # (m, d)
        shrink = 1 - alpha_t**2 * self.component_var / s2              # (m,)
        residual = alpha_t * self.component_var / s2                   # (m,)
        return shrink[:, None] * attended + residual[:, None] * x

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """Tweedie: ``(alpha_t D(x) - x) / sigma_t^2``."""
        return score_from_denoiser(self(x, t), x, t)

    def num_parameters(self, nonzero: bool = False) -> int:
        return num_parameters(self, nonzero)

    def extra_repr(self) -> str:
        n, d = self.keys.shape
        return f"keys={n}x{d}, component_var={self.component_var}"
