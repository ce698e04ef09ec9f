import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from labkit import plotting, store


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
        plotting.setup()


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
    fast = store.cache_dir("02")
    monkeypatch.setenv("LABKIT_FAST", "0")
    full = store.cache_dir("02")
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


# Okabe & Ito (2008), "Color Universal Design": the eight colours distinguishable under the
# common forms of colour blindness (blue, orange, bluish green, vermillion, reddish purple, sky
# blue, yellow, black).
OKABE_ITO = {"#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"}


def test_palette_is_okabe_ito_and_is_the_theme():
    assert len(plotting.PALETTE) == len(set(plotting.PALETTE)) == 8
    assert {c.upper() for c in plotting.PALETTE} == OKABE_ITO
    plotting.apply_theme()
    cycle = [matplotlib.colors.to_hex(c).upper() for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
    assert set(cycle) <= OKABE_ITO, cycle


def test_training_curves_tell_series_apart_without_colour():
    """Each n differs by marker and line style too, not by colour alone."""
    steps = [0, 10, 100, 1000, 10000]
    rows = [{"n": n, "steps": steps, "memorization": [0.0, 0.1, 0.3, 0.6, 0.9], "null_memorization": 0.0,
             "log_likelihood": [-2.0, -1.5, -1.0, -0.5, 0.0], "reference_log_likelihood": 0.0}
            for n in (8, 16, 32)]
    fig, axes = plt.subplots(1, 2)
    plotting.training_curves(axes, rows, ns=[8, 16, 32])
    for ax in axes:
        lines = [line for line in ax.lines if line.get_label().startswith("n = ")]
        assert len(lines) == 3
        assert len({line.get_marker() for line in lines}) == 3
        assert len({line.get_linestyle() for line in lines}) == 3
    plt.close(fig)


def test_training_curves_average_seeds_only_at_common_steps():
    row = {"n": 8, "memorization": [0.0, 0.1, 0.3, 0.6, 0.9], "null_memorization": 0.0,
           "log_likelihood": [-2.0, -1.5, -1.0, -0.5, 0.0], "reference_log_likelihood": 0.0}
    longer = {**row, "steps": [0, 10, 100, 1000, 10000]}
    shorter = {**row, "steps": [0, 10, 100], "memorization": [0.0, 0.3, 0.5],
               "log_likelihood": [-2.0, -1.5, -1.0]}
    fig, axes = plt.subplots(1, 2)
    plotting.training_curves(axes, [longer, shorter], ns=[8])  # the shorter grid is a prefix
    (line,) = [ln for ln in axes[0].lines if ln.get_label() == "n = 8"]
    np.testing.assert_allclose(line.get_xdata(), [10, 100])
    np.testing.assert_allclose(line.get_ydata(), [0.2, 0.4])
    other = {**shorter, "steps": [0, 20, 100]}
    with pytest.raises(ValueError, match="evaluated at different steps"):
        plotting.training_curves(axes, [longer, other], ns=[8])
    plt.close(fig)


def test_memorization_time_figure_marks_each_time_differently():
    times = {"K = 4": {8: {"tau_mem": [100, 120], "tau_gen": [10, 12]},
                       16: {"tau_mem": [210, 230], "tau_gen": [11, 13]}}}
    fig = plotting.memorization_time_figure(times, fits={}, title="memorization time grows like n")
    markers = {tuple(map(tuple, c.get_paths()[0].vertices.round(3))) for c in fig.axes[0].collections}
    assert len(fig.axes[0].collections) == 2 and len(markers) == 2  # circles and squares
    plt.close(fig)


def test_figure_alt_is_the_title_as_plain_text():
    fig, axes = plt.subplots(1, 2)
    assert plotting.figure_alt(fig) == "" and plotting.png_metadata(fig) == {}
    axes[0].set_title("true score")
    axes[1].set_title(r"empirical score $\nabla\log \hat p_t$")
    assert plotting.figure_alt(fig) == "true score; empirical score nabla log hat p_t"
    fig.suptitle("the empirical score points at the training points")
    assert plotting.figure_alt(fig) == "the empirical score points at the training points"
    plt.close(fig)


def test_savefig_stores_the_title_as_png_description(tmp_path, monkeypatch):
    import PIL.Image

    monkeypatch.setenv("LABKIT_FIGURES", str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    fig.suptitle("the gap grows linearly")
    with PIL.Image.open(plotting.savefig(fig, "00_line")) as image:
        assert image.text["Description"] == image.text["Title"] == "the gap grows linearly"
    plt.close(fig)


def test_shown_figures_carry_their_title_in_the_png():
    """The notebook kernel's PNG formatter (as the inline backend registers it) is wrapped."""
    import base64
    import functools
    import io
    import types

    import PIL.Image
    from IPython.core.formatters import DisplayFormatter
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    shell = types.SimpleNamespace(display_formatter=DisplayFormatter())
    assert not plotting.show_alt_text(shell)  # no figure formatter yet: nothing to wrap
    png = shell.display_formatter.formatters["image/png"]
    png.for_type(Figure, functools.partial(print_figure, fmt="png", base64=True, bbox_inches="tight"))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_title("one line")

    def description():
        with PIL.Image.open(io.BytesIO(base64.b64decode(png(fig)))) as image:
            return image.text.get("Description")

    assert description() is None  # the guard: a plain inline figure has no description
    assert plotting.show_alt_text(shell) and plotting.show_alt_text(shell)  # idempotent
    assert description() == "one line"
    plt.close(fig)


def test_value_grid_marks_settings_that_were_not_run():
    """A NaN cell is hatched and labelled "not run", never drawn as a colour of the scale."""
    import numpy as np

    mean = np.array([[0.98, np.nan, 0.12], [0.13, 0.5, 0.0]])
    fig, ax = plt.subplots()
    image = plotting.value_grid(ax, mean, np.full_like(mean, 0.02), rows=[256, 16], cols=[16, 64, 256])
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("not run") == 1 and "98%\n±2%" in texts and len(texts) == 6
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_xy() == (0.5, -0.5)  # column 1, row 0
    assert image.get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "64", "256"]
    with pytest.raises(ValueError, match="shape"):
        plotting.value_grid(ax, mean, rows=[256], cols=[16, 64, 256])
    with pytest.raises(ValueError, match="half"):
        plotting.value_grid(ax, mean, mean[:, :2], rows=[256, 16], cols=[16, 64, 256])
    plt.close(fig)


def test_interval_series_draws_each_series_apart_with_its_interval():
    fig, ax = plt.subplots()
    series = {"n = 16": [(0.9, 0.8, 1.0), (0.5, 0.4, 0.6)], "n = 256": [(0.1, 0.0, 0.2), (0.0, 0.0, 0.1)]}
    plotting.interval_series(ax, [16, 256], series, reference=-3.0, reference_label="fresh data")
    assert [bars.get_label() for bars in ax.containers] == list(series)
    lines = [bars.lines[0] for bars in ax.containers]  # the data line of each errorbar
    assert len({line.get_marker() for line in lines}) == 2
    assert len({line.get_linestyle() for line in lines}) == 2
    assert lines[0].get_xdata()[0] < lines[1].get_xdata()[0]  # shifted apart
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "256"]
    assert "fresh data" in ax.get_legend_handles_labels()[1]
    with pytest.raises(ValueError, match="one \\(mean, lo, hi\\) per label"):
        plotting.interval_series(ax, [16, 64, 256], series)
    plt.close(fig)
