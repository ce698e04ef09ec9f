"""Tests for labkit.widgets: explorers are thin wrappers over pure render functions.

The oracle for every frame is the render function itself: the image a slider position selects
must be exactly ``figure_png(render(**params))``. That the front-end links move the image in a
real browser with no kernel is checked by tests/test_book.py.
"""

import decimal
import functools
import io
import struct

import ipywidgets as widgets
import ipywidgets.embed
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import pytest

from labkit.widgets import (
    MAX_FRAMES,
    SLIDER_NAMES_JS,
    Explorer,
    explorer,
    figure_png,
    live,
    log_values,
)

DPI = 30  # tiny frames keep the file fast; the mechanism does not depend on size


def render(t=0.1, n=50, method="sde"):
    """A pure render function: one small figure per (t, n, method)."""
    fig, ax = plt.subplots(figsize=(2.0, 1.5))
    x = np.linspace(-3, 3, 50)
    ax.plot(x, n * np.exp(-x**2 / (2 * t)), ls="-" if method == "sde" else "--")
    ax.set_title(f"t={t} n={n}")
    return fig


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def stacks_at(stack, level):
    """All Stack widgets at nesting ``level`` (0 = the outer one)."""
    nodes = [stack]
    for _ in range(level):
        nodes = [child for node in nodes for child in node.children]
    return nodes


def test_every_frame_is_the_render_of_its_slider_position():
    grids = {"t": [0.01, 0.1, 1.0], "n": [50, 500]}
    box = explorer(render, dpi=DPI, **grids)
    assert isinstance(box, Explorer) and isinstance(box, widgets.VBox)
    assert "labkit-explorer" in box._dom_classes
    assert repr(box).startswith("explorer(t=[0.01, 0.1, 1], n=[50, 500])")
    assert len(box.frames) == 3 * 2
    sizes = set()
    for i, t in enumerate(grids["t"]):
        for j, n in enumerate(grids["n"]):
            shown = box.frame_at(t=i, n=j)
            assert isinstance(shown, widgets.Image) and shown.format == "png"
            assert shown.value == figure_png(render(t=t, n=n), dpi=DPI, colors=256)
            assert shown.value == box.frames[(i, j)]
            sizes.add(png_size(shown.value))
    assert len(sizes) == 1, "frames must share one pixel size so the image does not jump"
    assert len(set(box.frames.values())) == 6, "different parameters must give different frames"


def test_sliders_are_linked_in_the_front_end_to_every_stack_of_their_level():
    box = explorer(render, dpi=DPI, t=[0.01, 0.1, 1.0], n=[50, 500], method=["sde", "ode"])
    assert list(box.sliders) == ["t", "n", "method"]
    assert list(box.children[:3]) == list(box.sliders.values())
    assert box.children[3] is box.stack
    assert [s.options for s in box.sliders.values()][1] == (("50", 0), ("500", 1))
    assert len(box.links) == 1 + 3 + 3 * 2  # one link per stack
    for level, name in enumerate(["t", "n", "method"]):
        stacks = stacks_at(box.stack, level)
        assert all(isinstance(s, widgets.Stack) for s in stacks)
        targets = {id(link.target[0]) for link in box.links
                   if link.source == (box.sliders[name], "index") and link.target[1] == "selected_index"}
        assert targets == {id(s) for s in stacks}
    assert all(link._model_name == "DirectionalLinkModel" for link in box.links)


def test_sliders_start_at_the_render_default_when_it_is_a_stop():
    box = explorer(render, dpi=DPI, t=[0.01, 0.1, 1.0], n=[10, 20])
    assert box.sliders["t"].index == 1  # render's default t=0.1
    assert box.sliders["n"].index == 0  # default 50 is not a stop: first stop
    assert all(s.selected_index == 1 for s in stacks_at(box.stack, 0))
    assert all(s.selected_index == 0 for s in stacks_at(box.stack, 1))
    assert box.current() == figure_png(render(t=0.1, n=10), dpi=DPI, colors=256)


def test_palette_frames_match_full_colour_frames():
    full = PIL.Image.open(io.BytesIO(figure_png(render(t=0.3), dpi=60))).convert("RGB")
    small = PIL.Image.open(io.BytesIO(figure_png(render(t=0.3), dpi=60, colors=256)))
    assert small.mode == "P" and small.size == full.size
    error = np.abs(np.asarray(small.convert("RGB"), float) - np.asarray(full, float))
    assert error.mean() < 1.0 and np.percentile(error, 99) < 16  # on the 0..255 scale


def test_explorer_closes_every_figure_it_renders():
    before = plt.get_fignums()
    explorer(render, dpi=DPI, t=[0.01, 1.0])
    assert plt.get_fignums() == before


def test_explorer_accepts_partials_kwargs_arrays_and_one_stop():
    box = explorer(functools.partial(render, n=7), dpi=DPI, t=np.array([0.1, 1.0]))
    assert len(box.frames) == 2
    assert box.sliders["t"].options == (("0.1", 0), ("1", 1))

    def any_kwargs(**params):
        return render(**params)

    assert len(explorer(any_kwargs, dpi=DPI, t=[0.5], method=("sde", "ode")).frames) == 2


@pytest.mark.parametrize("grids, error, match", [
    ({}, ValueError, "at least one parameter"),
    ({"q": [1, 2]}, ValueError, r"\['q'\].*does not take"),
    ({"t": []}, ValueError, "grid 't' is empty"),
    ({"t": 0.1}, TypeError, "grid 't' must be a list"),
    ({"t": "abc"}, TypeError, "grid 't' must be a list"),
    ({"t": {0.1, 1.0}}, TypeError, "grid 't' must be a list"),
    ({"t": [1, 1.0]}, ValueError, "repeated values"),
    ({"t": list(np.linspace(0.1, 1, 7)), "n": list(range(1, 7))}, ValueError, "42 frames.*max_frames=36"),
])
def test_explorer_rejects_bad_grids(grids, error, match):
    with pytest.raises(error, match=match):
        explorer(render, dpi=DPI, **grids)


def test_explorer_rejects_bad_render_and_options():
    def needs_n(t, n):
        return render(t=t, n=n)

    with pytest.raises(ValueError, match=r"\['n'\] without defaults"):
        explorer(needs_n, t=[0.1])
    with pytest.raises(TypeError, match="render must be a function"):
        explorer("render", t=[0.1])
    with pytest.raises(TypeError, match="must return a matplotlib.figure.Figure"):
        explorer(lambda t: plt.gca(), t=[0.1])
    with pytest.raises(ValueError, match="max_frames must be a positive integer"):
        explorer(render, max_frames=0, t=[0.1])
    with pytest.raises(ValueError, match="dpi must be a positive number"):
        explorer(render, dpi=-1, t=[0.1])
    with pytest.raises(ValueError, match=r"colors must be None or an integer in \[2, 256\]"):
        explorer(render, colors=1000, t=[0.1])
    assert len(explorer(render, dpi=DPI, max_frames=2, t=[0.1, 1.0]).frames) == 2
    assert MAX_FRAMES >= 30
    plt.close("all")


def test_live_rerenders_when_a_control_moves():
    panel = live(render, dpi=DPI, t=(0.1, 1.0, 0.1), n=[50, 500])
    assert isinstance(panel, widgets.interactive)
    t_slider, n_slider = panel.children[:2]
    image = panel.children[-1]
    assert isinstance(t_slider, widgets.FloatSlider) and not t_slider.continuous_update
    assert isinstance(n_slider, widgets.SelectionSlider)
    assert image.value == figure_png(render(t=t_slider.value, n=50), dpi=DPI, colors=256)
    n_slider.value = 500
    t_slider.value = 0.3
    assert image.value == figure_png(render(t=0.3, n=500), dpi=DPI, colors=256)


def test_live_rejects_bad_ranges():
    with pytest.raises(ValueError, match="range 't' must be"):
        live(render, t=(1.0, 0.1))
    with pytest.raises(ValueError, match="at least one parameter"):
        live(render)
    with pytest.raises(ValueError, match="does not take"):
        live(render, q=[1, 2])


# What the student sees around the widgets (issue: fallback text, sizes, ranges, labels, alt text).

def test_fallback_text_says_what_to_do_in_each_place():
    box = explorer(render, dpi=DPI, t=[0.001, 0.01, 0.1, 1.0, 10.0], method=["sde", "ode"])
    text = box._repr_mimebundle_()["text/plain"]
    assert text == repr(box) and len(text) > 110, "ipywidgets cuts text/plain at 110 characters: keep it whole"
    assert text.startswith("explorer(t=[0.001, 0.01, 0.1, 1, 10], method=[sde, ode]): ")
    assert "open in JupyterLab" not in text  # the student reading it may already be in JupyterLab
    for words in ["Run this cell", "JupyterLab or VS Code", "book", "without a kernel"]:
        assert words in text
    panel = live(render, dpi=DPI, t=(0.1, 1.0))
    text = panel._repr_mimebundle_()["text/plain"]
    assert text.startswith("live(t): ") and "running Python kernel" in text and "Run this cell" in text
    assert "explorer" in text  # where to go in the book


def test_every_frame_carries_alt_text_naming_its_slider_values():
    box = explorer(render, dpi=DPI, t=[0.01, 0.1], n=[50, 500])
    for i, t in enumerate([0.01, 0.1]):
        for j, n in enumerate([50, 500]):
            frame = box.frame_at(t=i, n=j)
            assert isinstance(frame, widgets.Image)
            assert frame.tooltip == f"t = {t:g}, n = {n}: t={t} n={n}"  # the values, then the title
    # It is synced state, so the notebook's stored widget state (what the book replays) has it,
    # with the empty description the front end needs to render an Image that has a tooltip.
    state = ipywidgets.embed.dependency_state(box)
    images = [s["state"] for s in state.values() if s["model_name"] == "ImageModel"]
    assert len(images) == 4
    assert sorted(s["tooltip"] for s in images) == sorted(box.frame_at(t=i, n=j).tooltip
                                                          for i in range(2) for j in range(2))
    assert all(s["description"] == "" for s in images)


def test_alt_text_falls_back_to_suptitle_plain_text_and_render_name():
    def untitled(t=0.1):
        return plt.figure(figsize=(1, 1))

    def suptitled(t=0.1):
        fig = plt.figure(figsize=(1, 1))
        fig.suptitle(r"$\sigma_t^{2}$ grows with $t$")
        return fig

    assert explorer(untitled, dpi=DPI, t=[0.5]).frame_at(t=0).tooltip == "untitled at t = 0.5"
    assert explorer(functools.partial(untitled), dpi=DPI, t=[0.5]).frame_at(t=0).tooltip == "untitled at t = 0.5"
    assert explorer(suptitled, dpi=DPI, t=[0.5]).frame_at(t=0).tooltip == "t = 0.5: sigma_t^2 grows with t"
    box = explorer(render, dpi=DPI, alt="Heavier tails at small t", t=[0.5])
    assert box.frame_at(t=0).tooltip == "t = 0.5: Heavier tails at small t"
    assert box.frames[(0,)] == figure_png(render(t=0.5), dpi=DPI, colors=256), "alt must not change the frame"
    with pytest.raises(ValueError, match="alt must be None or a non-empty string"):
        explorer(render, dpi=DPI, alt="  ", t=[0.5])
    assert plt.get_fignums() == []


def test_live_image_carries_alt_text_and_keeps_its_own_size():
    panel = live(render, dpi=DPI, t=[0.1, 1.0])
    assert panel.image is panel.children[-1]
    assert panel.image.tooltip == "t = 0.1: t=0.1 n=50"
    panel.controls["t"].value = 1.0
    assert panel.image.tooltip == "t = 1: t=1.0 n=50"
    # A flex item of the panel would stretch to the full output width; this one keeps its size.
    assert panel.image.layout.align_self == "flex-start" and panel.image.layout.max_width == "100%"
    assert panel.image.layout.width is None and panel.image.width == ""


def test_log_values_are_round_log_spaced_stops_between_the_ends():
    stops = log_values(1e-3, 2.0)
    assert live.log is log_values
    assert stops[0] == 1e-3 and stops[-1] == 2.0 and stops == sorted(set(stops))
    assert {0.005, 0.05, 0.01, 0.1, 1.0} <= set(stops)  # the values a linear slider could not reach
    ratios = np.diff(np.log10(stops))
    assert ratios.min() > 0.05 and ratios.max() < 0.15  # about ten stops per decade
    digits = [len(decimal.Decimal(f"{v:g}").normalize().as_tuple().digits) for v in stops]
    assert max(digits) <= 3, "round numbers only: a readout such as 0.00501187 must not occur"
    assert log_values(1e-3, 1.0, per_decade=1) == [0.001, 0.01, 0.1, 1.0]
    assert log_values(0.01, 1.0, per_decade=3) == [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]
    assert log_values(0.013, 0.9, per_decade=3) == [0.013, 0.02, 0.05, 0.1, 0.2, 0.5, 0.9]  # odd ends kept
    ints = log_values(5, 200)
    assert ints == [5, 6, 8, 10, 12, 16, 20, 25, 32, 40, 50, 63, 80, 100, 125, 160, 200]
    assert all(type(v) is int for v in ints)
    assert log_values(1, 3, per_decade=10) == [1, 2, 3]  # integer rounding drops repeated stops


@pytest.mark.parametrize("args, match", [
    ((0.0, 1.0), "0 < low < high"),
    ((1.0, 0.5), "0 < low < high"),
    ((-1.0, 1.0), "0 < low < high"),
    ((0.1, float("inf")), "high must be a finite number"),
    (("0.1", 1.0), "low must be a finite number"),
    ((0.1, 1.0, 7), r"per_decade must be one of \[1, 2, 3, 5, 10\]"),
])
def test_log_values_rejects_bad_ranges(args, match):
    with pytest.raises(ValueError, match=match):
        log_values(*args)


def test_live_log_sliders_start_at_the_render_defaults():
    panel = live(render, dpi=DPI, t=live.log(1e-3, 2.0), n=live.log(5, 200))
    t, n = panel.controls["t"], panel.controls["n"]
    assert isinstance(t, widgets.SelectionSlider) and isinstance(n, widgets.SelectionSlider)
    assert t.value == 0.1 and n.value == 50  # render(t=0.1, n=50)
    assert t.options[t.index] == ("0.1", 0.1)  # the readout is the value, as the title prints it
    assert panel.image.value == figure_png(render(t=0.1, n=50), dpi=DPI, colors=256)
    t.value = 0.005
    assert panel.image.value == figure_png(render(t=0.005, n=50), dpi=DPI, colors=256)


def test_live_default_between_stops_becomes_a_stop():
    # The guard: a default outside the stops' range is not added, the slider starts at the first stop.
    outside = live(render, dpi=DPI, t=[0.5, 1.0, 2.0]).controls["t"]
    assert [v for _, v in outside.options] == [0.5, 1.0, 2.0] and outside.value == 0.5
    inside = live(render, dpi=DPI, t=[0.01, 0.5, 1.0]).controls["t"]
    assert [v for _, v in inside.options] == [0.01, 0.1, 0.5, 1.0] and inside.value == 0.1
    words = live(render, dpi=DPI, method=["ode", "sde"]).controls["method"]
    assert words.value == "sde"


def test_live_range_starts_at_the_default_with_a_readout_as_precise_as_its_values():
    panel = live(render, dpi=DPI, t=(0.001, 2.0), n=(5, 200))
    t, n = panel.controls["t"], panel.controls["n"]
    assert isinstance(t, widgets.FloatSlider) and isinstance(n, widgets.IntSlider)
    assert t.value == 0.1 and n.value == 50  # not the middle of the range
    # Values are 0.001 + k * 0.1: three decimals, so 1.501 reads "1.501", never "1.50".
    assert t.readout_format == ".3f" and f"{0.001 + 15 * t.step:{t.readout_format}}" == "1.501"
    assert live(render, dpi=DPI, t=(0.5, 3.0, 0.25)).controls["t"].readout_format == ".2f"
    # A default outside the range (or of the wrong kind) leaves ipywidgets' middle start.
    assert live(render, dpi=DPI, t=(1.0, 3.0)).controls["t"].value == 2.0
    assert live(render, dpi=DPI, n=(100, 200)).controls["n"].value == 150


def test_sliders_of_one_widget_share_one_label_width():
    box = explorer(render, dpi=DPI, t=[0.1, 1.0], method=["sde", "ode"], n=[50, 500])
    widths = {s.style.description_width for s in box.sliders.values()}
    assert widths == {"8ch"}  # "method" and 2ch: the longest label fits, all tracks start together
    assert {s.layout.width for s in box.sliders.values()} == {"min(30rem, 100%)"}
    panel = live(render, dpi=DPI, t=(0.1, 1.0), method=["sde", "ode"])
    assert {c.style.description_width for c in panel.controls.values()} == {"8ch"}
    assert explorer(render, dpi=DPI, t=[0.1]).sliders["t"].style.description_width == "6ch"  # a floor


def test_sliders_have_their_name_as_label_and_tooltip():
    box = explorer(render, dpi=DPI, t=[0.1, 1.0], n=[50, 500])
    assert [(s.description, s.tooltip) for s in box.sliders.values()] == [("t", "t"), ("n", "n")]
    panel = live(render, dpi=DPI, t=(0.1, 1.0), n=widgets.IntSlider(min=1, max=9, description="samples"))
    assert [(c.description, c.tooltip) for c in panel.controls.values()] == [("t", "t"), ("samples", "samples")]
    assert {c.style.description_width for c in panel.controls.values()} == {"9ch"}  # "samples" fits
    assert "aria-labelledby" in SLIDER_NAMES_JS and ".noUi-handle" in SLIDER_NAMES_JS  # used by the book


def test_a_frame_and_a_saved_figure_describe_the_same_title_alike():
    import matplotlib.figure

    from labkit.plotting import figure_alt
    from labkit.widgets import alt_text

    fig = matplotlib.figure.Figure()
    fig.suptitle(r"$\alpha\sigma_t^{2}$ falls as $\Delta$ grows")
    assert figure_alt(fig) == "alpha sigma_t^2 falls as Delta grows"
    assert alt_text(fig, {"t": 0.1}) == "t = 0.1: " + figure_alt(fig)
    assert alt_text(fig, {"t": 0.1}, title=fig.get_suptitle()) == "t = 0.1: " + figure_alt(fig)
