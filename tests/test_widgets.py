"""Tests for labkit.widgets: explorers are thin wrappers over pure render functions.

The oracle for every frame is the render function itself: the image a slider position selects
must be exactly ``figure_png(render(**params))``. That the front-end links move the image in a
real browser with no kernel is checked by tests/test_book.py.
"""

import functools
import io
import struct

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import pytest  # noqa: E402

from labkit.widgets import MAX_FRAMES, Explorer, explorer, figure_png, live  # noqa: E402

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
