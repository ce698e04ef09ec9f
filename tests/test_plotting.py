import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

from labkit import plotting


def test_setup_seeds_and_reads_the_switch(monkeypatch):
    monkeypatch.setenv("LABKIT_FAST", "1")
    cfg = plotting.setup(seed=3)
    assert cfg.fast and cfg.pick(100, 10) == 10 and cfg.device == torch.device("cpu")
    a = torch.randn(3, generator=cfg.generator)
    b = torch.randn(3, generator=plotting.setup(seed=3).generator)
    assert torch.equal(a, b)
    monkeypatch.setenv("LABKIT_FAST", "0")
    assert not plotting.setup().fast
    monkeypatch.setenv("LABKIT_FAST", "maybe")
    with pytest.raises(ValueError, match="LABKIT_FAST"):
        plotting.is_fast()


def test_savefig_writes_png_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_FIGURES", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = plotting.savefig(fig, "00_line")
    plt.close(fig)
    assert path == tmp_path / "00_line.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert list(tmp_path.iterdir()) == [path]
    with pytest.raises(ValueError, match="name must look like"):
        plotting.savefig(fig, "line")


def test_cache_dir_separates_sizes(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    monkeypatch.setenv("LABKIT_FAST", "1")
    fast = plotting.cache_dir("02")
    monkeypatch.setenv("LABKIT_FAST", "0")
    full = plotting.cache_dir("02")
    assert fast != full and fast.is_dir() and full.is_dir()


def test_score_fields_figure_renders():
    from labkit import data

    gmm = data.toy_mixture("gmm4", dtype=torch.float64)
    train = gmm.sample(10, generator=torch.Generator().manual_seed(0))
    fig = plotting.score_fields_figure(gmm, train, t=0.1, grid=7)
    assert len(fig.axes) == 3  # two fields and the colour bar
    assert "Loss-Gap" in fig._suptitle.get_text()
    plt.close(fig)


def test_score_fields_share_one_colour_range():
    from labkit import data

    gmm = data.toy_mixture("gmm4", dtype=torch.float64)
    train = gmm.sample(10, generator=torch.Generator().manual_seed(0))
    fig = plotting.score_fields_figure(gmm, train, t=0.05, grid=7)
    true_field, empirical_field = (ax.collections[0] for ax in fig.axes[:2])
    assert true_field.get_clim() == empirical_field.get_clim()
    assert "both panels" in fig.axes[2].get_ylabel()
    plt.close(fig)


def test_sampling_figure_draws_paths_samples_and_title():
    train = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    paths = torch.randn(11, 20, 2, generator=torch.Generator().manual_seed(1))  # (steps + 1, m, 2)
    new, copies = torch.randn(20, 2), train.repeat(4, 1)
    fig = plotting.sampling_figure(train, paths, new, copies, title="80% are copies", num_paths=3)
    assert len(fig.axes) == 3 and fig._suptitle.get_text() == "80% are copies"
    assert len(fig.axes[0].lines) == 3
    plt.close(fig)
