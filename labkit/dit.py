"""A small diffusion transformer (DiT) whose attention heads can be gated, scored and removed.

The paper's mitigation experiment (Section 6, Algorithms 1-2, Table 1) prunes attention heads
of a DiT. This file holds that network, written out so every head is visible: patchify, a
sinusoidal embedding of the OU time ``t``, blocks with adaLN-Zero conditioning, attention
through ``F.scaled_dot_product_attention`` with one gate ``xi_h`` per head, a final layer and
unpatchify. ``model(x, t)`` takes images ``x`` of shape (B, C, H, W) and OU times ``t`` of
shape (B,) and predicts the NOISE ``eps`` (the score is ``labkit.process.score_from_noise``);
training it with noise-prediction MSE is DSM weighted by ``sigma_t^2``.

Time convention. DiTs are usually trained on a 1000-step linear-beta DDPM schedule. labkit
keeps that schedule for *where* it draws noise levels (:func:`ddpm_time`: step ``u * 1000`` ->
``alpha_bar`` -> OU time ``t = -log(alpha_bar)``), so Algorithm 2's ``u ~ Beta(0.8, 2)``
means what it means in the paper, but the network itself is conditioned on the OU time.
Introduced in ``notebooks/03_pruning_mitigation.ipynb``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import partial

import torch
import torch.nn.functional as F
from scipy.special import betaincinv
from torch import nn

from . import _checks
from .process import ou_time_from_alpha_bar, score_from_noise
from .sampling import sample
from .losses import dsm_noise_loss
from .train import Checkpoint, TrainConfig, _check_config, _legacy_arguments, save_atomically, train

__all__ = [
    "DiTConfig", "PRESETS", "DiT", "patchify", "unpatchify", "ddpm_time", "DDPMTime",
    "train_dit", "sample_images", "save_dit", "load_dit", "with_heads",
]

DDPM_STEPS = 1000
DDPM_BETA = (1e-4, 0.02)
SMALL_T_BETA = (0.8, 2.0)  # Algorithm 2: u ~ Beta(0.8, 2)


@dataclass(frozen=True)
class DiTConfig:
    """Shape of a DiT. ``heads_per_layer`` is set only for a pruned model (one count per block);
    ``None`` means every block has ``num_heads`` heads of width ``hidden // num_heads``."""

    image_size: int = 8
    channels: int = 1
    patch_size: int = 4
    hidden: int = 64
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 2.0
    heads_per_layer: tuple[int, ...] | None = None

    def __post_init__(self):
        for name in ("image_size", "channels", "patch_size", "hidden", "depth", "num_heads"):
            _checks.positive_int(getattr(self, name), name)
        _checks.positive_float(self.mlp_ratio, "mlp_ratio")
        if self.image_size % self.patch_size:
            raise ValueError(f"patch_size={self.patch_size} must divide image_size={self.image_size}")
        if self.hidden % self.num_heads or (self.hidden // self.num_heads) % 2:
            raise ValueError(f"hidden={self.hidden} must split into num_heads={self.num_heads} heads of even width")
        if self.hidden % 4:
            raise ValueError(f"hidden={self.hidden} must be a multiple of 4 (2-D sin-cos position embedding)")
        if self.heads_per_layer is not None:
            heads = tuple(self.heads_per_layer)
            if len(heads) != self.depth or any(not 1 <= h <= self.num_heads for h in heads):
                raise ValueError(f"heads_per_layer must hold {self.depth} counts in [1, {self.num_heads}], got {heads}")
            object.__setattr__(self, "heads_per_layer", heads)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.num_heads

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def layer_heads(self) -> tuple[int, ...]:
        return self.heads_per_layer or (self.num_heads,) * self.depth


PRESETS: dict[str, DiTConfig] = {
    # 8x8 digits on a CPU: 4 tokens of 4x4 patches, 4 blocks x 4 heads. With 2x2 patches (16
    # tokens) the same model generalizes longer: on n = 32 digits, 2% of its samples were memorized
    # after 2,500 full-batch steps against 18% with 4x4 patches, too slow for notebook 03's budget.
    "digits": DiTConfig(image_size=8, channels=1, patch_size=4, hidden=64, depth=4, num_heads=4),
    # Tests: a model that runs in milliseconds.
    "tiny": DiTConfig(image_size=4, channels=1, patch_size=2, hidden=16, depth=2, num_heads=2),
    # CIFAR-10 at paper scale (DiT-S/2-like width on 32x32x3, 256 tokens): a GPU size.
    "cifar": DiTConfig(image_size=32, channels=3, patch_size=2, hidden=384, depth=12, num_heads=6, mlp_ratio=4.0),
}


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, p*p*C) tokens, N = (H/p)(W/p), row-major over patches."""
    B, C, H, W = x.shape
    p = patch_size
    x = x.reshape(B, C, H // p, p, W // p, p)                 # (B, C, h, p, w, p)
    x = x.permute(0, 2, 4, 3, 5, 1)                             # (B, h, w, p, p, C)
    return x.reshape(B, (H // p) * (W // p), p * p * C)        # (B, N, p*p*C)


def unpatchify(tokens: torch.Tensor, patch_size: int, channels: int) -> torch.Tensor:
    """(B, N, p*p*C) -> (B, C, H, W) with H = W = p sqrt(N): the inverse of :func:`patchify`."""
    B, N, _ = tokens.shape
    p, h = patch_size, math.isqrt(N)
    x = tokens.reshape(B, h, h, p, p, channels)                 # (B, h, w, p, p, C)
    x = x.permute(0, 5, 1, 3, 2, 4)                             # (B, C, h, p, w, p)
    return x.reshape(B, channels, h * p, h * p)                 # (B, C, H, W)


def sinusoidal(values: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """(B,) scalars -> (B, dim) features [cos(v f_k), sin(v f_k)], f_k geometric in [1/max_period, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=values.dtype, device=values.device) / half)
    angles = values[:, None] * freqs[None]                      # (B, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def _pos_embed_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding: (grid*grid, dim), half the channels per axis."""
    coords = torch.arange(grid, dtype=torch.float32)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")
    return torch.cat([sinusoidal(rows.reshape(-1), dim // 2, 100.0),
                      sinusoidal(cols.reshape(-1), dim // 2, 100.0)], dim=1)  # (N, dim)


class TimeEmbedding(nn.Module):
    """OU time t (B,) -> conditioning vector (B, hidden). The sinusoid reads ``250 log t``: the
    noise scale is what matters to a denoiser, and log t spreads t in [1e-4, 10] over ~2900
    units, the span DiT's step embedding sees."""

    def __init__(self, hidden: int, freq_dim: int = 128):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal(250.0 * torch.log(t), self.freq_dim))


class Attention(nn.Module):
    """Multi-head self-attention with a gate ``xi`` (a buffer of ones) on each head's output.

    Head h's output is multiplied by ``xi[h]`` before the output projection, so ``xi[h] = 0``
    removes the head and ``d loss / d xi[h]`` is the head's importance signal (Algorithm 2).
    """

    def __init__(self, hidden: int, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        self.qkv = nn.Linear(hidden, 3 * num_heads * head_dim)
        self.proj = nn.Linear(num_heads * head_dim, hidden)
        self.register_buffer("xi", torch.ones(num_heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        H, hd = self.num_heads, self.head_dim
        qkv = self.qkv(x).reshape(B, N, 3, H, hd).permute(2, 0, 3, 1, 4)  # (3, B, H, N, hd)
        heads = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])     # (B, H, N, hd)
        heads = heads * self.xi.reshape(1, H, 1, 1)
        return self.proj(heads.transpose(1, 2).reshape(B, N, H * hd))     # (B, N, hidden)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    """Pre-norm transformer block; the conditioning sets shift, scale and a zero-initialised
    residual gate for both the attention and the MLP branch (adaLN-Zero)."""

    def __init__(self, hidden: int, num_heads: int, head_dim: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, num_heads, head_dim)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        width = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(hidden, width), nn.GELU(approximate="tanh"), nn.Linear(width, hidden))
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN(c).chunk(6, dim=1)  # 6 x (B, hidden)
        x = x + gate1[:, None] * self.attn(_modulate(self.norm1(x), shift1, scale1))
        return x + gate2[:, None] * self.mlp(_modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    """adaLN-modulated norm and a linear map from each token to its patch's pixels."""

    def __init__(self, hidden: int, patch_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch_dim)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN(c).chunk(2, dim=1)
        return self.linear(_modulate(self.norm(x), shift, scale))  # (B, N, p*p*C)


class DiT(nn.Module):
    """Noise-predicting diffusion transformer: ``model(x, t) -> eps_hat`` with x (B, C, H, W)
    finite, t a float, 0-d or (B,) tensor of OU times > 0, output (B, C, H, W). Like
    :class:`labkit.nets.ScoreMLP` it has ``.score(x, t)`` and ``.num_parameters(nonzero)``."""

    def __init__(self, config: DiTConfig, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(config, DiTConfig):
            raise TypeError(f"config must be a DiTConfig, got {type(config).__name__}")
        self.config = c = config
        patch_dim = c.patch_size**2 * c.channels
        self.embed = nn.Linear(patch_dim, c.hidden)
        self.register_buffer("pos", _pos_embed_2d(c.image_size // c.patch_size, c.hidden), persistent=False)
        self.time = TimeEmbedding(c.hidden)
        self.blocks = nn.ModuleList(Block(c.hidden, h, c.head_dim, c.mlp_ratio) for h in c.layer_heads())
        self.final = FinalLayer(c.hidden, patch_dim)
        self.init_weights(generator)

    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Xavier linears, small time-MLP weights, and zeros on every adaLN map and the output
        layer, so each block starts as the identity and the model as ``eps_hat = 0``."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=_checks.generator(generator))
                nn.init.zeros_(module.bias)
        for layer in (self.time.mlp[0], self.time.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02, generator=generator)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN[-1].weight)
            nn.init.zeros_(block.adaLN[-1].bias)
        for layer in (self.final.adaLN[-1], self.final.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        c = self.config
        expected = (c.channels, c.image_size, c.image_size)
        if not isinstance(x, torch.Tensor) or x.dtype not in _checks.FLOAT_DTYPES:
            raise TypeError(f"x must be a floating torch.Tensor of shape (B, {', '.join(map(str, expected))}), "
                            f"got {type(x).__name__}")
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values")
        t = _checks.time(t, "t", x, m=x.shape[0])                       # 0-d or (B,), > 0: the embedding reads log t
        t = t.expand(x.shape[0]) if t.ndim == 0 else t                  # (B,)
        tokens = self.embed(patchify(x, c.patch_size)) + self.pos      # (B, N, hidden)
        cond = self.time(t)                                             # (B, hidden)
        for block in self.blocks:
            tokens = block(tokens, cond)
        return unpatchify(self.final(tokens, cond), c.patch_size, c.channels)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """``grad log p_t(x) ~ -eps(x, t) / sigma_t``; shapes as in ``forward``."""
        return score_from_noise(self(x, t), t)

    def num_parameters(self, nonzero: bool = False) -> int:
        """Parameters of the model (only the nonzero ones when ``nonzero``), frozen ones included."""
        params = list(self.parameters())
        if nonzero:
            return int(sum(int((p != 0).sum()) for p in params))
        return sum(p.numel() for p in params)


def ddpm_time(u: torch.Tensor) -> torch.Tensor:
    """Map ``u`` in [0, 1] to OU time through the 1000-step linear-beta DDPM schedule.

    Step ``k = 1 + round(u * 999)`` has ``alpha_bar_k = prod_{j<=k} (1 - beta_j)``, beta linear
    from 1e-4 to 0.02, and OU time ``t = -log(alpha_bar_k)`` (so t runs from 1e-4 at u=0 to about
    10.1 at u=1). Returns a tensor shaped like ``u`` in its dtype.
    """
    if not isinstance(u, torch.Tensor) or not torch.isfinite(u).all() or (u < 0).any() or (u > 1).any():
        raise ValueError("u must be a tensor with values in [0, 1]")
    betas = torch.linspace(*DDPM_BETA, DDPM_STEPS, dtype=torch.float64)
    t_steps = ou_time_from_alpha_bar(torch.cumprod(1 - betas, 0))  # (1000,) increasing
    k = torch.round(u.double() * (DDPM_STEPS - 1)).long()
    return t_steps.to(u.device)[k].to(u.dtype)


@dataclass(frozen=True)
class DDPMTime:
    """Time sampler (the ``t_sampler`` of :func:`labkit.losses.dsm_noise_loss`) on the DDPM grid.

    ``kind="uniform"``: the step is uniform on 1..1000 (how DiTs are trained); ``"small"``:
    ``u ~ Beta(0.8, 2)`` (Algorithm 2), which puts most mass at small noise.
    ``sampler(n, generator, dtype, device) -> (n,)`` OU times.
    """

    kind: str = "uniform"

    def __post_init__(self):
        _checks.choice(self.kind, "kind", ("uniform", "small"))

    def __call__(self, n: int, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        n = _checks.positive_int(n, "n")
        u = torch.rand(n, generator=_checks.generator(generator), dtype=torch.float64,
                       device=None if generator is None else generator.device)
        if self.kind == "small":  # inverse-CDF draw: torch's Beta sampler takes no generator
            u = torch.from_numpy(betaincinv(*SMALL_T_BETA, u.cpu().numpy()))
        return ddpm_time(u).to(dtype=dtype, device=device)


def train_dit(model: DiT, images: torch.Tensor, config: TrainConfig | None = None, *,
              generator: torch.Generator | None = None, callbacks=(), eval_at=None,
              checkpoint: Checkpoint | str | None = None, progress: bool = True, **legacy):
    """Train a DiT on (n, C, H, W) images with :func:`labkit.train.train`: noise-prediction loss
    at uniform DDPM steps, AdamW, EMA off by default (an average of weights lags behind the
    sharp empirical score, so it slows memorization). ``config``: a
    :class:`labkit.train.TrainConfig`, e.g. ``TrainConfig.preset("dit", steps=500)`` (batches of
    64 at lr 1e-3). Resumes from ``checkpoint``, with the callbacks' evaluations on the schedule
    ``eval_at`` (see :func:`labkit.train.train`). Returns the :class:`labkit.train.History`.
    The keywords of labkit 0.2 (``steps=``, ``checkpoint_path=`` ...; without ``config``, on top
    of the ``"dit"`` preset) still work, with a ``DeprecationWarning``, until labkit 0.3."""
    config, eval_at, checkpoint = _legacy_arguments("labkit.dit.train_dit", config, eval_at,
                                                    checkpoint, legacy, preset="dit")
    if not isinstance(model, DiT):
        raise TypeError(f"model must be a DiT, got {type(model).__name__}")
    c = model.config
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or \
            tuple(images.shape[1:]) != (c.channels, c.image_size, c.image_size):
        raise ValueError(f"images must have shape (n, {c.channels}, {c.image_size}, {c.image_size}), "
                         f"got {tuple(getattr(images, 'shape', ()))}")
    return train(model, partial(dsm_noise_loss, t_sampler=DDPMTime("uniform")), images,
                 _check_config(config), generator=generator, callbacks=callbacks,
                 eval_at=eval_at, checkpoint=checkpoint, progress=progress)


def sample_images(model: DiT, num_samples: int, *, steps: int = 50, t_min: float = 1e-3, t_max: float = 10.0,
                  method: str = "sde", generator: torch.Generator | None = None,
                  batch_size: int = 1000) -> torch.Tensor:
    """Draw (num_samples, C, H, W) images with :func:`labkit.sampling.sample` driven by the
    score ``-eps_theta / sigma_t``; the last step returns the Tweedie denoised mean, clamped to
    [-1, 1]. ``t_max = 10`` matches the end of the DDPM schedule (t = 10.1)."""
    if not isinstance(model, DiT):
        raise TypeError(f"model must be a DiT, got {type(model).__name__}")
    num_samples = _checks.positive_int(num_samples, "num_samples")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    c = model.config
    shape = (c.channels, c.image_size, c.image_size)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def score_fn(x, t):  # x (m, C*H*W) flat, t 0-d
        eps = model(x.reshape(-1, *shape), t.expand(x.shape[0]))      # (m, C, H, W)
        return score_from_noise(eps.reshape(x.shape[0], -1), t)      # (m, C*H*W)

    out = []
    for start in range(0, num_samples, batch_size):
        m = min(batch_size, num_samples - start)
        out.append(sample(score_fn, m, math.prod(shape), steps=steps, t_min=t_min, t_max=t_max, method=method,
                          generator=generator, device=device, denoise_final=True))
    model.train(was_training)
    return torch.cat(out).reshape(num_samples, *shape).clamp(-1, 1)  # (num_samples, C, H, W)


def save_dit(model: DiT, path, **extra) -> None:
    """Write ``{"config", "state_dict", **extra}`` atomically (:func:`labkit.train.save_atomically`)."""
    save_atomically({"config": asdict(model.config), "state_dict": model.state_dict(), **extra}, path)


def load_dit(path, map_location="cpu") -> tuple[DiT, dict]:
    """Read a checkpoint written by :func:`save_dit` (``weights_only=True``): ``(model, extra)``."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    config = dict(payload.pop("config"))
    if config.get("heads_per_layer") is not None:
        config["heads_per_layer"] = tuple(config["heads_per_layer"])
    model = DiT(DiTConfig(**config))
    model.load_state_dict(payload.pop("state_dict"))
    return model, payload


def with_heads(config: DiTConfig, heads_per_layer) -> DiTConfig:
    """A copy of ``config`` whose blocks keep ``heads_per_layer`` heads each."""
    return replace(config, heads_per_layer=tuple(int(h) for h in heads_per_layer))
