"""Image data and image metrics for the pruning experiment (Table 1 of the paper).

Data: scikit-learn's bundled 8x8 handwritten digits (real images, nothing downloaded) and
CIFAR-10 read from a local copy of its standard python pickle batches. Both come back as
:class:`ImageData`: a seeded training subset of size n in [-1, 1], shape (n, C, H, W), and the
held-out images that serve as the reference set for quality metrics.

Metrics: memorization in pixel space with the paper's 1/3 rule (``labkit.metrics.memorized``
on flattened images), and quality in the feature space of a small classifier that labkit
trains itself on the data's labels in seconds (:func:`train_classifier`): a Frechet distance
("FD (digits classifier)": the same formula as FID, but not Inception features, so never call
it FID) and k-NN precision / recall (Kynkaanniemi et al. 2019, k = 3). ``nearest_grid`` draws
samples beside their nearest training images. Introduced in ``notebooks/03_pruning_mitigation.ipynb``.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _checks

__all__ = [
    "ImageData", "load_digits", "load_cifar10", "Classifier", "train_classifier",
    "frechet_distance", "precision_recall", "image_memorized", "evaluate_images", "nearest_grid",
]


@dataclass
class ImageData:
    """A training subset and its held-out reference images, all (m, C, H, W) in [-1, 1]."""

    train: torch.Tensor
    train_labels: torch.Tensor
    held_out: torch.Tensor
    held_out_labels: torch.Tensor
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])


def _split(images: torch.Tensor, labels: torch.Tensor, n: int | None, generator, name: str,
           held_out=None, held_out_labels=None) -> ImageData:
    if n is not None:
        n = _checks.positive_int(n, "n")
        limit = images.shape[0] - (1 if held_out is None else 0)
        if n > limit:
            raise ValueError(f"n must be at most {limit} for {name}, got {n}")
    perm = torch.randperm(images.shape[0], generator=_checks.generator(generator))
    take = perm if n is None else perm[:n]
    if held_out is None:  # the images not drawn for training are the reference set
        rest = perm[take.shape[0]:]
        held_out, held_out_labels = images[rest], labels[rest]
    return ImageData(images[take], labels[take], held_out, held_out_labels, name)


def load_digits(n: int | None = None, generator: torch.Generator | None = None) -> ImageData:
    """scikit-learn's 1,797 8x8 digits as (n, 1, 8, 8) in [-1, 1] (pixel values 0..16 -> x/8 - 1).

    ``n`` images drawn without replacement under ``generator`` train; the other 1797 - n are the
    held-out reference set."""
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0  # (1797, 1, 8, 8)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    return _split(images, labels, n, generator, "digits")


def _read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path} is not a CIFAR-10 batch: data has shape {data.shape}, expected (m, 3072)")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32)) / 127.5 - 1.0  # (m, 3, 32, 32)
    return images, torch.tensor(batch[b"labels"], dtype=torch.long)


def load_cifar10(root, n: int | None = 5000, generator: torch.Generator | None = None) -> ImageData:
    """CIFAR-10 from a local copy of its python batches (``root/data_batch_1..5``, ``root/test_batch``,
    as in ``cifar-10-batches-py``): a seeded training subset of ``n`` images (the paper's 5,000)
    as (n, 3, 32, 32) in [-1, 1], with ``test_batch`` as the held-out reference. Nothing downloads."""
    root = Path(root)
    if root.is_dir() and (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"root={str(root)!r} lacks the CIFAR-10 python batches {missing}; "
                                "point --data-root at a local copy of cifar-10-batches-py")
    parts = [_read_cifar_batch(root / name) for name in names[:5]]
    images, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    test_images, test_labels = _read_cifar_batch(root / "test_batch")
    return _split(images, labels, n, generator, "cifar10", test_images, test_labels)


class Classifier(nn.Module):
    """A small CNN for (B, C, H, W) images: two stride-2 conv stages, global average pooling, a
    ``feature_dim`` penultimate layer (the metric features) and a linear class head."""

    def __init__(self, channels: int, num_classes: int = 10, width: int = 32, feature_dim: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(2 * width, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, feature_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (B, num_classes) logits


def train_classifier(images: torch.Tensor, labels: torch.Tensor, *, steps: int = 600, batch_size: int = 128,
                     lr: float = 3e-3, generator: torch.Generator | None = None) -> Classifier:
    """Train a :class:`Classifier` on (m, C, H, W) images and (m,) integer labels with Adam.

    Deterministic under ``generator`` (a CPU generator: weights and batches both come from it);
    the model trains on ``images``' device, a few seconds on the digits. Returns the model in
    eval mode with gradients off."""
    _check_images(images, "images")
    if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],) or labels.dtype != torch.long:
        raise ValueError(f"labels must be a long tensor of shape ({images.shape[0]},)")
    steps, batch_size = _checks.positive_int(steps, "steps"), _checks.positive_int(batch_size, "batch_size")
    _checks.generator(generator)
    if generator is not None and generator.device.type != "cpu":
        raise ValueError("generator must be a CPU generator (weights are initialised on the CPU, then moved)")
    model = Classifier(images.shape[1], num_classes=int(labels.max()) + 1)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            nn.init.zeros_(module.bias)
    model = model.to(images.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(images.shape[0], (batch_size,), generator=generator).to(images.device)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval().requires_grad_(False)


def _check_images(x, name: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating torch.Tensor of shape (m, C, H, W)")
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (m, C, H, W) with m >= 1, got {tuple(x.shape)}")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have images of shape {tuple(shape)}, got {tuple(x.shape[1:])}")
    return x


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` between two (m, f) feature sets."""
    a = _checks.points(features_a, "features_a").double().cpu().numpy()
    b = _checks.points(features_b, "features_b", dim=features_a.shape[1]).double().cpu().numpy()
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("frechet_distance needs at least two feature vectors on each side")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # tr (S_a S_b)^(1/2) = sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2))): symmetric, so stable when S is singular
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(w.clip(min=0))) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """k-NN precision and recall (Kynkaanniemi et al. 2019) between (m, f) feature sets.

    Each set's manifold is the union of balls around its points with radius the distance to the
    k-th nearest neighbour in the same set. Precision: fraction of ``fake`` inside the real
    manifold (quality); recall: fraction of ``real`` inside the fake manifold (coverage)."""
    real = _checks.points(real, "real").double()
    fake = _checks.points(fake, "fake", dim=real.shape[1]).double()
    k = _checks.positive_int(k, "k")
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"both feature sets need more than k={k} points")

    def radii(x):  # distance to the k-th neighbour, skipping the point itself
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values  # (m,)

    r_real, r_fake = radii(real), radii(fake)
    d = torch.cdist(fake, real)  # (m_fake, m_real)
    precision = (d <= r_real[None]).any(1).double().mean().item()
    recall = (d.T <= r_fake[None]).any(1).double().mean().item()
    return precision, recall


def image_memorized(samples: torch.Tensor, train: torch.Tensor, threshold: float = 1 / 3) -> torch.Tensor:
    """The paper's rule in pixel space: (m,) bool, sample memorized when ``||x - NN1|| <
    threshold ||x - NN2||`` over the flattened training images."""
    from .metrics import memorized

    _check_images(train, "train")
    _check_images(samples, "samples", shape=train.shape[1:])
    return memorized(samples.flatten(1), train.flatten(1), threshold=threshold)


def evaluate_images(samples: torch.Tensor, data: ImageData, classifier: Classifier) -> dict[str, float]:
    """Memorization %, FD (classifier features) and k=3 precision / recall of ``samples`` against
    the held-out reference images of ``data``. Returns a dict of floats."""
    _check_images(samples, "samples", shape=data.shape)
    with torch.no_grad():
        fake = classifier.features(samples.clamp(-1, 1).to(next(classifier.parameters()).device))
        real = classifier.features(data.held_out.to(fake.device))
    precision, recall = precision_recall(real, fake, k=3)
    return {
        "memorization": 100.0 * image_memorized(samples, data.train).double().mean().item(),
        "fd": frechet_distance(real, fake),
        "precision": precision,
        "recall": recall,
    }


def nearest_grid(samples: torch.Tensor, train: torch.Tensor, num: int = 8, title: str = "", fig=None):
    """``num`` samples (top row) over their nearest training images (bottom row); memorized
    samples (1/3 rule) get an orange frame. Draws into ``fig`` (a Figure or SubFigure) or a new
    Figure, and returns it."""
    import matplotlib.pyplot as plt

    _check_images(train, "train")
    _check_images(samples, "samples", shape=train.shape[1:])
    num = min(_checks.positive_int(num, "num"), samples.shape[0])
    samples = samples[:num]
    from .metrics import nearest_neighbors

    _, index = nearest_neighbors(samples.flatten(1), train.flatten(1).to(samples.dtype), k=1)  # (num, 1)
    nearest = train[index[:, 0]]  # (num, C, H, W)
    memorized_mask = image_memorized(samples, train)
    if fig is None:
        fig = plt.figure(figsize=(0.8 * num + 0.6, 2.0))
    axes = fig.subplots(2, num, squeeze=False)
    for j in range(num):
        for i, img in enumerate((samples[j], nearest[j])):
            ax = axes[i, j]
            pixels = ((img.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()  # (H, W, C)
            gray = pixels.shape[-1] == 1
            ax.imshow(pixels[..., 0] if gray else pixels, cmap="gray_r" if gray else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 and bool(memorized_mask[j]):
                for spine in ax.spines.values():
                    spine.set_edgecolor("#E69F00")
                    spine.set_linewidth(3)
    axes[0, 0].set_ylabel("sample", fontsize=8)
    axes[1, 0].set_ylabel("nearest\ntrain", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
