"""Tests for labkit.images: the digits and CIFAR-10 loaders (the latter on tiny files written in
the real pickle format), the feature classifier and the image metrics."""

import pickle

import matplotlib
import numpy as np
import pytest
import torch

from labkit.images import (evaluate_images, frechet_distance, image_memorized, load_cifar10, load_digits,
                           nearest_grid, precision_recall, train_classifier)

matplotlib.use("Agg")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_digits_shapes_range_and_seeded_split():
    data = load_digits(50, generator=_gen(1))
    assert data.train.shape == (50, 1, 8, 8) and data.held_out.shape == (1747, 1, 8, 8)
    assert data.train.min() == -1 and data.train.max() == 1 and data.shape == (1, 8, 8)
    assert data.train_labels.shape == (50,) and set(data.train_labels.tolist()) <= set(range(10))
    again = load_digits(50, generator=_gen(1))
    assert torch.equal(again.train, data.train)
    assert not torch.equal(load_digits(50, generator=_gen(2)).train, data.train)
    # the split is disjoint: no training image reappears among the held-out ones (exact copies aside)
    from sklearn.datasets import load_digits as sk
    assert sk().images.shape[0] == 1797
    with pytest.raises(ValueError, match="n must"):
        load_digits(1797)
    with pytest.raises(ValueError, match="n must"):
        load_digits(0)


def _write_cifar(root, per_batch=4):
    """Six batches in the format of cifar-10-batches-py: dict with b"data" (m, 3072) uint8 laid
    out as 1024 red, 1024 green, 1024 blue values per row, and b"labels"."""
    root.mkdir(parents=True)
    images = {}
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data = np.zeros((per_batch, 3072), dtype=np.uint8)
        data[:, :1024] = 255                      # red plane full
        data[:, 1024:2048] = 10 * k               # green plane encodes the batch
        data[:, 2048] = np.arange(per_batch)      # blue pixel (0, 0) encodes the row
        images[name] = data
        with open(root / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": list(range(per_batch)), b"batch_label": name.encode()}, f)
    return images


def test_cifar_loader_on_a_tiny_copy(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_cifar10(tmp_path, n=7, generator=_gen(3))  # finds the cifar-10-batches-py sub-folder
    assert data.train.shape == (7, 3, 32, 32) and data.held_out.shape == (4, 3, 32, 32)
    assert torch.equal(data.train[:, 0], torch.ones(7, 32, 32))                 # red 255 -> 1
    green = torch.round((data.train[:, 1, 0, 0] + 1) * 127.5) / 10              # batch index 0..4
    assert set(green.tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert torch.allclose(data.held_out[:, 1], torch.full((4, 32, 32), 50 / 127.5 - 1))  # test batch = 5
    rows = torch.round((data.train[:, 2, 0, 0] + 1) * 127.5).long()
    assert torch.equal(rows, data.train_labels)                                 # labels travel with images
    assert data.train[:, 2, 0, 1].eq(-1).all()                                  # channel-major layout
    again = load_cifar10(tmp_path / "cifar-10-batches-py", n=7, generator=_gen(3))
    assert torch.equal(again.train, data.train)
    with pytest.raises(ValueError, match="n must"):
        load_cifar10(tmp_path, n=21)


def test_cifar_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar10(tmp_path)
    _write_cifar(tmp_path / "bad")
    with open(tmp_path / "bad" / "data_batch_2", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
        load_cifar10(tmp_path / "bad", n=3)


def test_frechet_distance_oracles():
    g = _gen(0)
    a = torch.randn(400, 5, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5, 0.0], dtype=torch.float64)
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift.pow(2).sum()), rel=1e-6)
    # scaling by s: covariances S and s^2 S, so tr(S + s^2 S - 2 s S) = (1 - s)^2 tr S
    cov_trace = torch.cov(a.T).trace().item()
    assert frechet_distance(a, 3 * a) == pytest.approx(4 * cov_trace + 4 * a.mean(0).pow(2).sum().item(), rel=1e-6)
    assert np.isfinite(frechet_distance(a[:, :1].repeat(1, 5), a))  # singular covariance is fine
    with pytest.raises(ValueError, match="features_b"):
        frechet_distance(a, a[:, :3])


def test_precision_recall_oracles():
    g = _gen(0)
    real = torch.randn(200, 3, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    precision, recall = precision_recall(real, real + 100.0)
    assert precision == 0.0 and recall == 0.0
    collapsed = real[:1].repeat(50, 1) + 1e-3 * torch.randn(50, 3, generator=g)  # mode collapse
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.2
    with pytest.raises(ValueError, match="k=3"):
        precision_recall(real[:3], real)


def test_image_memorized_and_bad_shapes():
    data = load_digits(40, generator=_gen(0))
    copies = data.train[:5] + 0.01 * torch.randn(5, 1, 8, 8, generator=_gen(1))
    assert image_memorized(copies, data.train).all()
    assert image_memorized(data.held_out[:200], data.train).double().mean() < 0.05
    with pytest.raises(ValueError, match="samples must have images of shape"):
        image_memorized(torch.zeros(3, 1, 4, 4), data.train)
    with pytest.raises(ValueError, match="shape"):
        image_memorized(torch.zeros(3, 64), data.train)


def test_classifier_is_deterministic_and_accurate():
    data = load_digits(300, generator=_gen(0))
    a = train_classifier(data.train, data.train_labels, steps=150, generator=_gen(1))
    b = train_classifier(data.train, data.train_labels, steps=150, generator=_gen(1))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    with torch.no_grad():
        accuracy = (a(data.held_out).argmax(1) == data.held_out_labels).double().mean().item()
        assert a.features(data.held_out[:7]).shape == (7, 64)
    assert accuracy > 0.85
    with pytest.raises(ValueError, match="labels"):
        train_classifier(data.train, data.train_labels[:5])


def test_evaluate_images_ranks_copies_and_noise():
    data = load_digits(60, generator=_gen(0))
    classifier = train_classifier(data.held_out, data.held_out_labels, steps=100, generator=_gen(1))
    copies = evaluate_images(data.train[torch.arange(200) % 60], data, classifier)
    fresh = evaluate_images(data.held_out[:200], data, classifier)
    noise = evaluate_images(torch.rand(200, 1, 8, 8, generator=_gen(2)) * 2 - 1, data, classifier)
    assert copies["memorization"] == 100.0 and fresh["memorization"] < 5.0
    assert fresh["fd"] < noise["fd"] and fresh["precision"] > noise["precision"]
    assert set(copies) == {"memorization", "fd", "precision", "recall"}


def test_nearest_grid_figure():
    data = load_digits(30, generator=_gen(0))
    fig = nearest_grid(data.train[:4], data.train, num=6, title="copies")
    assert len(fig.axes) == 8  # num is capped at the 4 samples given: 2 rows x 4
    import matplotlib.pyplot as plt
    plt.close(fig)
    with pytest.raises(ValueError, match="num"):
        nearest_grid(data.train[:4], data.train, num=0)
