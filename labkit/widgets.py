"""Explorers: sliders over pure ``render(**params) -> Figure`` functions.

Every interactive figure in the lab is a thin wrapper over a pure function that draws one
matplotlib ``Figure`` for one setting of its parameters (tests call that function directly).
Two wrappers:

- ``explorer(render, t=[0.01, 0.1, 1.0], n=[50, 500])`` renders every combination of the
  listed values to a PNG ahead of time and returns a widget whose sliders switch between the
  frames *in the browser*: one ``SelectionSlider`` per parameter, nested ``Stack``s of
  ``Image``s, and front-end links (``jsdlink``) from each slider's ``index`` to the
  ``selected_index`` of every stack at its level. No Python runs when a slider moves, so the
  widget works in JupyterLab, and in the static HTML book where the executed notebook's
  widget state is replayed with no kernel at all.
- ``live(render, t=(0.01, 1.0), n=[50, 500])`` is the kernel-backed variant
  (``ipywidgets.interactive``): any value in a range, re-rendered on each move.

Keep explorer grids small (``MAX_FRAMES``): every frame is stored in the notebook.
Introduced in ``notebooks/00_primer.ipynb``; used by every notebook.
"""

from __future__ import annotations

import inspect
import io
import itertools
import math
from collections.abc import Callable, Sequence
from numbers import Integral, Real

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.figure import Figure

__all__ = ["MAX_FRAMES", "Explorer", "explorer", "live", "figure_png"]

# About 30 frames of a 6x4 in figure at 90 dpi, as palette PNGs, is ~0.5-1 MB of notebook.
MAX_FRAMES = 36


def _check_encoding(dpi, colors) -> None:
    if isinstance(dpi, bool) or not isinstance(dpi, Real) or not math.isfinite(dpi) or dpi <= 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    if colors is not None and (isinstance(colors, bool) or not isinstance(colors, Integral)
                               or not 2 <= colors <= 256):
        raise ValueError(f"colors must be None or an integer in [2, 256], got {colors!r}")


def figure_png(fig: Figure, dpi: float = 90, colors: int | None = None) -> bytes:
    """Encode ``fig`` as PNG bytes at ``dpi`` and close it.

    The canvas keeps the figure's size (no tight bounding box) so that every frame of an
    explorer has the same pixel size and the image does not jump when a slider moves; a figure
    without a layout engine gets matplotlib's tight layout so its labels are not clipped.
    ``colors`` (2..256) stores a palette image of that many colours over white, about three
    times smaller than full colour and indistinguishable for line, scatter and quiver plots;
    ``None`` keeps full colour.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"render must return a matplotlib.figure.Figure, got {type(fig).__name__}")
    _check_encoding(dpi, colors)
    try:
        if fig.get_layout_engine() is None:
            fig.set_layout_engine("tight")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches=None, pil_kwargs={"optimize": True})
    finally:
        plt.close(fig)
    if colors is None:
        return buffer.getvalue()
    rgba = PIL.Image.open(buffer).convert("RGBA")
    flat = PIL.Image.alpha_composite(PIL.Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    out = io.BytesIO()
    flat.quantize(int(colors), method=PIL.Image.Quantize.MEDIANCUT).save(out, format="png", optimize=True)
    return out.getvalue()


def _label(value) -> str:
    """How a grid value reads on a slider: ``0.1``, ``1e-05``, ``500``, ``'sde'``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return f"{float(value):g}"
    return str(value)


def _check_render(render, names: Sequence[str], what: str) -> None:
    """``render`` is callable, takes every name in ``names``, and needs no other argument."""
    if not callable(render):
        raise TypeError(f"render must be a function returning a Figure, got {type(render).__name__}")
    if not names:
        raise ValueError(f"{what} needs at least one parameter, e.g. {what}(render, t=[0.01, 0.1, 1.0])")
    params = inspect.signature(render).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    keyword = {name for name, p in params.items()
               if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    unknown = [name for name in names if name not in keyword]
    if unknown and not takes_any:
        raise ValueError(f"{what} got parameter(s) {unknown} that render does not take; "
                         f"render takes {sorted(keyword)}")
    missing = [name for name, p in params.items() if name in keyword and name not in names
               and p.default is inspect.Parameter.empty]
    if missing:
        raise ValueError(f"render needs parameter(s) {missing} without defaults: give them a grid in "
                         f"{what}(...) or fix them with functools.partial")


def _check_grid(name: str, values) -> list:
    """A grid is a short, ordered, non-empty sequence of distinct values."""
    if isinstance(values, (str, bytes, dict, set, frozenset)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"grid {name!r} must be a list of values, e.g. {name}=[0.1, 1.0]; "
                        f"got {type(values).__name__}")
    values = list(values.tolist() if isinstance(values, np.ndarray) else values)
    if not values:
        raise ValueError(f"grid {name!r} is empty: give at least one value")
    labels = [_label(v) for v in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"grid {name!r} has repeated values {labels}: each slider stop must differ")
    return values


class Explorer(widgets.VBox):
    """The widget ``explorer`` returns: sliders above nested stacks of pre-rendered frames.

    Python-side attributes (not synced to the browser) for tests and scripts:
    ``grids`` (name -> list of values), ``sliders`` (name -> ``SelectionSlider``),
    ``frames`` (tuple of value indices -> PNG bytes), ``stack`` (the outer ``Stack``) and
    ``links`` (the front-end ``jsdlink`` widgets).
    """

    def __repr__(self) -> str:
        # The text/plain fallback a reader sees where widgets are not rendered (e.g. on GitHub).
        grids = ", ".join(f"{name}=[{', '.join(map(_label, values))}]"
                          for name, values in getattr(self, "grids", {}).items())
        return f"explorer({grids}): open in JupyterLab or the HTML book to move the sliders"

    def frame_at(self, **indices: int) -> widgets.Image:
        """The ``Image`` shown when slider ``name`` sits at position ``indices[name]``."""
        node = self.stack
        for name in self.grids:
            node = node.children[indices.get(name, self.sliders[name].index)]
        return node

    def current(self) -> bytes:
        """PNG bytes of the frame the sliders select (as the kernel last saw them)."""
        return self.frame_at().value


def explorer(render: Callable[..., Figure], *, max_frames: int = MAX_FRAMES, dpi: float = 90,
             colors: int | None = 256, **grids: Sequence) -> Explorer:
    """Pre-render ``render`` on the grid of parameter values; sliders switch frames with no kernel.

    ``render(**params)`` must be pure and return a new matplotlib ``Figure`` (closed here once
    encoded). Each keyword of ``grids`` names a parameter of ``render`` and lists its slider
    stops in order, e.g. ``explorer(render, t=[0.01, 0.1, 1.0], n=[50, 500])`` renders 6
    frames. A slider starts at ``render``'s default for that parameter when the default is one
    of the stops, else at the first stop. At most ``max_frames`` frames (default ``MAX_FRAMES``),
    encoded by ``figure_png(fig, dpi, colors)`` (256-colour palette PNGs by default).
    """
    _check_render(render, list(grids), "explorer")
    if isinstance(max_frames, bool) or not isinstance(max_frames, Integral) or max_frames <= 0:
        raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}")
    _check_encoding(dpi, colors)
    grids = {name: _check_grid(name, values) for name, values in grids.items()}
    sizes = [len(values) for values in grids.values()]
    total = math.prod(sizes)
    if total > max_frames:
        shape = " x ".join(f"{len(v)} {k}" for k, v in grids.items())
        raise ValueError(f"explorer would render {total} frames ({shape}), more than max_frames="
                         f"{max_frames}; use fewer values (every frame is stored in the notebook)")

    defaults = inspect.signature(render).parameters
    start = {}
    for name, values in grids.items():
        default = defaults[name].default if name in defaults else inspect.Parameter.empty
        labels = [_label(v) for v in values]
        start[name] = labels.index(_label(default)) if default is not inspect.Parameter.empty \
            and _label(default) in labels else 0

    frames = {}
    for index in itertools.product(*(range(size) for size in sizes)):
        params = {name: grids[name][i] for name, i in zip(grids, index)}
        frames[index] = figure_png(render(**params), dpi=dpi, colors=colors)

    sliders = {
        name: widgets.SelectionSlider(
            options=[(_label(v), i) for i, v in enumerate(values)], index=start[name], description=name,
            continuous_update=True, layout=widgets.Layout(width="min(28rem, 100%)"),
            style={"description_width": "initial"})
        for name, values in grids.items()
    }

    # One level of stacks per parameter: level k holds prod(sizes[:k]) stacks of sizes[k] children.
    names = list(grids)
    links = []

    def build(level: int, prefix: tuple):
        if level == len(names):
            return widgets.Image(value=frames[prefix], format="png",
                                 layout=widgets.Layout(max_width="100%", height="auto"))
        name = names[level]
        children = [build(level + 1, prefix + (i,)) for i in range(sizes[level])]
        stack = widgets.Stack(children=children, selected_index=start[name])
        links.append(widgets.jsdlink((sliders[name], "index"), (stack, "selected_index")))
        return stack

    stack = build(0, ())
    box = Explorer(children=[*sliders.values(), stack])
    box.add_class("labkit-explorer")  # how the book's browser test finds explorers on a page
    box.grids, box.sliders, box.frames, box.stack, box.links = grids, sliders, frames, stack, links
    return box


def _control(name: str, spec):
    """A widget for one ``live`` parameter: a list -> selection slider, ``(lo, hi[, step])`` -> slider."""
    if isinstance(spec, widgets.ValueWidget):
        return spec
    if isinstance(spec, tuple) and 2 <= len(spec) <= 3 and all(
            isinstance(v, Real) and not isinstance(v, bool) for v in spec):
        if not spec[0] < spec[1]:
            raise ValueError(f"range {name!r} must be (low, high[, step]) with low < high, got {spec}")
        control = widgets.interactive.widget_from_abbrev(spec)
        control.continuous_update = False
        return control
    values = _check_grid(name, spec)
    return widgets.SelectionSlider(options=[(_label(v), v) for v in values], continuous_update=False)


def live(render: Callable[..., Figure], *, dpi: float = 90, colors: int | None = 256,
         **ranges) -> widgets.interactive:
    """Kernel-backed explorer: re-render ``render(**params)`` whenever a control moves.

    Each keyword is a list of values (selection slider), a ``(low, high)`` or
    ``(low, high, step)`` tuple (integer or float slider, as ``ipywidgets.interact``), or a
    ready-made ipywidgets control. Needs a running kernel; use ``explorer`` for the book.
    """
    _check_render(render, list(ranges), "live")
    _check_encoding(dpi, colors)
    controls = {name: _control(name, spec) for name, spec in ranges.items()}
    output = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))

    def show(**params):
        output.value = figure_png(render(**params), dpi=dpi, colors=colors)

    panel = widgets.interactive(show, **controls)
    panel.children = (*panel.children, output)
    panel.add_class("labkit-live")
    return panel
