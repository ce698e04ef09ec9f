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
- ``live(render, t=live.log(1e-3, 2.0), n=(5, 200))`` is the kernel-backed variant
  (``ipywidgets.interactive``): any value in a range, re-rendered on each move, starting from
  ``render``'s defaults. ``live.log(low, high)`` (``log_values``) gives log-spaced round stops.

Accessibility (WCAG 2.1 AA, checked by axe-core on the book). Every frame carries alt text
naming its slider values (``alt_text``). ipywidgets' ``Image`` has no ``alt`` trait, so it goes
in the image's ``tooltip``, which the renderer writes to the ``<img title>`` attribute; axe's
``image-alt`` rule accepts a non-empty ``title``, and as a synced trait it is stored in the
widget state that the kernel-free book replays. (``Frame``: ipywidgets 8 fails to render an
``Image`` with a tooltip unless its model also has a ``description``.) Slider handles are
another matter: the ipywidgets 8 slider views create the noUiSlider handle (a ``div`` with
``role="slider"``) without noUiSlider's ``handleAttributes`` option, and no model trait reaches
it: ``description`` fills a ``<label>`` that has no ``for`` (and a ``div`` is not labelable),
``tooltip`` sets that label's ``title``, ``description_allow_html`` only changes its content.
So axe's ``aria-input-field-name`` fails whatever the Python side sets. Each slider's label is
its parameter name; ``SLIDER_NAMES_JS`` is the small script a page (the book) loads to point
every handle's ``aria-labelledby`` at its label. Arrow keys move the handles.

Keep explorer grids small (``MAX_FRAMES``): every frame is stored in the notebook.
Introduced in ``notebooks/00_primer.ipynb``; used by every notebook.
"""

from __future__ import annotations

import decimal
import functools
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
import traitlets
from ipywidgets.widgets.widget_description import DescriptionWidget
from matplotlib.figure import Figure

__all__ = ["MAX_FRAMES", "SLIDER_NAMES_JS", "Explorer", "Frame", "Live", "alt_text",
           "explorer", "figure_png", "live", "log_values", "closed_form_denoisers_figure"]

# About 30 frames of a 6x4 in figure at 90 dpi, as palette PNGs, is ~0.5-1 MB of notebook.
MAX_FRAMES = 36

SLIDER_WIDTH = "min(30rem, 100%)"

# Round numbers per decade (the E3 and Renard preferred-number series): what ``log_values`` steps by.
MANTISSAS = {1: (1,), 2: (1, 3), 3: (1, 2, 5), 5: (1, 1.6, 2.5, 4, 6.3),
             10: (1, 1.25, 1.6, 2, 2.5, 3.2, 4, 5, 6.3, 8)}

# Name each slider handle (role="slider") after its label: ipywidgets 8 leaves it unnamed and
# offers no trait for it (see the module docstring). Idempotent; handles added later are named too.
SLIDER_NAMES_JS = """\
(() => {
  let next = 0;
  const label = () => document.querySelectorAll('.widget-slider').forEach(slider => {
    const text = slider.querySelector(':scope > .widget-label');
    if (!text || !text.textContent.trim()) return;
    if (!text.id) text.id = `labkit-slider-label-${next++}`;
    slider.querySelectorAll('.noUi-handle').forEach(handle => {
      if (handle.getAttribute('aria-labelledby') !== text.id) handle.setAttribute('aria-labelledby', text.id);
    });
  });
  new MutationObserver(label).observe(document.documentElement, {childList: true, subtree: true});
  label();
})();
"""


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


def _render_name(render) -> str:
    while isinstance(render, functools.partial):
        render = render.func
    return getattr(render, "__name__", type(render).__name__)


def alt_text(fig: Figure, params: dict, name: str = "figure", title: str | None = None) -> str:
    """Alternative text for one frame: its parameter values, then what the figure shows.

    What it shows is ``title`` if given, else the figure's suptitle, else its axes titles
    joined by "; " (a title that states the finding is the best description a figure has);
    with none of these, ``name`` (e.g. the render function's). For example
    ``"t = 0.05, n = 20: Loss-Gap_t = 0.031"`` or ``"render_fields at t = 0.05, n = 20"``.
    """
    from .plotting import _plain_text, figure_alt  # one rule for every alt text

    values = ", ".join(f"{key} = {_label(value)}" for key, value in params.items())
    title = _plain_text(title) if title else figure_alt(fig)
    return f"{values}: {title}" if title else f"{name} at {values}"


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


def _defaults(render) -> dict:
    """``render``'s keyword defaults (a partial's fixed keywords included)."""
    return {name: p.default for name, p in inspect.signature(render).parameters.items()
            if p.default is not inspect.Parameter.empty}


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


def log_values(low: float, high: float, per_decade: int = 10) -> list:
    """Log-spaced round stops from ``low`` to ``high``, both included: a list for a slider.

    Between the ends the stops are the round numbers of a preferred-number series,
    ``per_decade`` of them per factor of ten (1: 1; 3: 1, 2, 5; 10: 1, 1.25, 1.6, 2, 2.5, 3.2,
    4, 5, 6.3, 8), so a slider reads ``0.005``, never ``0.00501187``. Integer ends give integer
    stops (rounded, duplicates dropped). Also reachable as ``live.log``::

        live(render, t=live.log(1e-3, 2.0))   # 0.001, 0.00125, 0.0016, ..., 1.6, 2
        explorer(render, t=live.log(1e-3, 1.0, per_decade=1))   # 0.001, 0.01, 0.1, 1
    """
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"log_values {name} must be a finite number, got {value!r}")
    if not 0 < low < high:
        raise ValueError(f"log_values needs 0 < low < high, got low={low!r}, high={high!r}")
    if per_decade not in MANTISSAS:
        raise ValueError(f"per_decade must be one of {sorted(MANTISSAS)}, got {per_decade!r}")
    integer = isinstance(low, Integral) and isinstance(high, Integral)
    inner = [float(f"{m}e{e}") for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
             for m in MANTISSAS[per_decade]]
    inner = [v for v in inner if low * (1 + 1e-9) < v < high * (1 - 1e-9)]
    stops = [low, *inner, high]
    if integer:
        stops = list(dict.fromkeys(round(v) for v in stops))
    return stops


class Frame(widgets.Image):
    """An ``Image`` whose ``tooltip`` (the frame's alt text) reaches the page as ``<img title>``.

    ipywidgets 8's views read the model's ``description`` before writing ``title`` and fail to
    render an ``Image`` with a tooltip, which has none ("Could not create a view"); an empty
    synced ``description`` gives them one. Its trait default is ``None`` so that the ``""`` is
    never dropped as a default from a saved widget state. Same model and view as ``Image``.
    """

    description = traitlets.Unicode(None, allow_none=True).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**{"description": "", **kwargs})


class Explorer(widgets.VBox):
    """The widget ``explorer`` returns: sliders above nested stacks of pre-rendered frames.

    Python-side attributes (not synced to the browser) for tests and scripts: ``render``,
    ``grids`` (name -> list of values), ``sliders`` (name -> ``SelectionSlider``),
    ``frames`` (tuple of value indices -> PNG bytes), ``stack`` (the outer ``Stack``) and
    ``links`` (the front-end ``jsdlink`` widgets). Each frame's ``Image.tooltip`` is its alt text.
    """

    def __repr__(self) -> str:
        # The text/plain fallback, shown where the widget is not: in JupyterLab or VS Code before
        # the cell has run, on GitHub, in a text export.
        grids = ", ".join(f"{name}=[{', '.join(map(_label, values))}]"
                          for name, values in getattr(self, "grids", {}).items())
        return (f"explorer({grids}): the sliders are not loaded here. Run this cell (in JupyterLab or "
                f"VS Code) to use them, or read this notebook in the labkit book, where the explorer "
                f"works without a kernel.")

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle:
            bundle["text/plain"] = repr(self)  # whole: ipywidgets cuts it at 110 characters
        return bundle

    def frame_at(self, **indices: int) -> widgets.Image:
        """The ``Image`` shown when slider ``name`` sits at position ``indices[name]``."""
        node = self.stack
        for name in self.grids:
            node = node.children[indices.get(name, self.sliders[name].index)]
        return node

    def current(self) -> bytes:
        """PNG bytes of the frame the sliders select (as the kernel last saw them)."""
        return self.frame_at().value


def _label_style(names) -> dict:
    """One label width for every slider of a widget, so their tracks line up."""
    return {"description_width": f"{max([4, *map(len, names)]) + 2}ch"}


def explorer(render: Callable[..., Figure], *, max_frames: int = MAX_FRAMES, dpi: float = 90,
             colors: int | None = 256, alt: str | None = None, **grids: Sequence) -> Explorer:
    """Pre-render ``render`` on the grid of parameter values; sliders switch frames with no kernel.

    ``render(**params)`` must be pure and return a new matplotlib ``Figure`` (closed here once
    encoded). Each keyword of ``grids`` names a parameter of ``render`` and lists its slider
    stops in order, e.g. ``explorer(render, t=[0.01, 0.1, 1.0], n=[50, 500])`` renders 6
    frames. A slider starts at ``render``'s default for that parameter when the default is one
    of the stops, else at the first stop. At most ``max_frames`` frames (default ``MAX_FRAMES``),
    encoded by ``figure_png(fig, dpi, colors)`` (256-colour palette PNGs by default). Each
    frame's alt text is ``alt_text(fig, params)``: its slider values, then ``alt`` if given,
    else the figure's title.
    """
    _check_render(render, list(grids), "explorer")
    if isinstance(max_frames, bool) or not isinstance(max_frames, Integral) or max_frames <= 0:
        raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}")
    _check_encoding(dpi, colors)
    if alt is not None and not (isinstance(alt, str) and alt.strip()):
        raise ValueError(f"alt must be None or a non-empty string, got {alt!r}")
    grids = {name: _check_grid(name, values) for name, values in grids.items()}
    sizes = [len(values) for values in grids.values()]
    total = math.prod(sizes)
    if total > max_frames:
        shape = " x ".join(f"{len(v)} {k}" for k, v in grids.items())
        raise ValueError(f"explorer would render {total} frames ({shape}), more than max_frames="
                         f"{max_frames}; use fewer values (every frame is stored in the notebook)")

    defaults = _defaults(render)
    start = {}
    for name, values in grids.items():
        labels = [_label(v) for v in values]
        start[name] = labels.index(_label(defaults[name])) if name in defaults \
            and _label(defaults[name]) in labels else 0

    frames, alts = {}, {}
    for index in itertools.product(*(range(size) for size in sizes)):
        params = {name: grids[name][i] for name, i in zip(grids, index)}
        fig = render(**params)
        if not isinstance(fig, Figure):
            raise TypeError(f"render must return a matplotlib.figure.Figure, got {type(fig).__name__}")
        alts[index] = alt_text(fig, params, _render_name(render), title=alt)
        frames[index] = figure_png(fig, dpi=dpi, colors=colors)

    style = _label_style(grids)
    sliders = {
        name: widgets.SelectionSlider(
            options=[(_label(v), i) for i, v in enumerate(values)], index=start[name], description=name,
            tooltip=name,
            continuous_update=True, layout=widgets.Layout(width=SLIDER_WIDTH), style=style)
        for name, values in grids.items()
    }

    # One level of stacks per parameter: level k holds prod(sizes[:k]) stacks of sizes[k] children.
    names = list(grids)
    links = []

    def build(level: int, prefix: tuple):
        if level == len(names):
            return Frame(value=frames[prefix], format="png", tooltip=alts[prefix],
                                 layout=widgets.Layout(max_width="100%", height="auto"))
        name = names[level]
        children = [build(level + 1, prefix + (i,)) for i in range(sizes[level])]
        stack = widgets.Stack(children=children, selected_index=start[name])
        links.append(widgets.jsdlink((sliders[name], "index"), (stack, "selected_index")))
        return stack

    stack = build(0, ())
    box = Explorer(children=[*sliders.values(), stack])
    box.add_class("labkit-explorer")  # how the book's browser test finds explorers on a page
    box.render, box.grids, box.sliders, box.frames, box.stack, box.links = render, grids, sliders, frames, stack, links
    return box


def _decimals(*numbers) -> int:
    """Digits after the decimal point needed to write every one of ``numbers`` exactly (at most 8)."""
    places = [-decimal.Decimal(repr(float(x))).normalize().as_tuple().exponent for x in numbers]
    return min(8, max(0, *places))


def _control(name: str, spec, default=inspect.Parameter.empty):
    """A widget for one ``live`` parameter, starting at ``default`` where it is in range.

    A list -> ``SelectionSlider`` (a numeric default between its stops becomes a stop), a
    ``(low, high[, step])`` tuple -> ``IntSlider``/``FloatSlider`` whose readout shows every
    decimal of its values, a ready-made control -> itself.
    """
    if isinstance(spec, widgets.ValueWidget):
        return spec
    has_default = default is not inspect.Parameter.empty
    if isinstance(spec, tuple) and 2 <= len(spec) <= 3 and all(
            isinstance(v, Real) and not isinstance(v, bool) for v in spec):
        if not spec[0] < spec[1]:
            raise ValueError(f"range {name!r} must be (low, high[, step]) with low < high, got {spec}")
        control = widgets.interactive.widget_from_abbrev(spec)
        integer = isinstance(control, widgets.IntSlider)
        if has_default and isinstance(default, Real) and not isinstance(default, bool) \
                and spec[0] <= default <= spec[1] and (isinstance(default, Integral) or not integer):
            control.value = default
        if not integer:
            control.readout_format = f".{_decimals(spec[0], control.step, control.value)}f"
        control.continuous_update = False
        return control
    values = _check_grid(name, spec)
    labels = [_label(v) for v in values]
    numeric = all(isinstance(v, Real) and not isinstance(v, bool) for v in values)
    if has_default and _label(default) not in labels and numeric and isinstance(default, Real) \
            and not isinstance(default, bool) and values == sorted(values) and values[0] < default < values[-1]:
        values = sorted([*values, default])
        labels = [_label(v) for v in values]
    index = labels.index(_label(default)) if has_default and _label(default) in labels else 0
    return widgets.SelectionSlider(options=list(zip(labels, values)), index=index, continuous_update=False)


class Live(widgets.interactive):
    """The widget ``live`` returns: its controls, then the ``Image`` of the current frame.

    ``render``, ``controls`` (name -> widget) and ``image`` are Python-side attributes for tests
    and scripts.
    """

    def __repr__(self) -> str:
        names = ", ".join(getattr(self, "controls", {}))
        return (f"live({names}): these controls need a running Python kernel. Run this cell (in JupyterLab "
                f"or VS Code) to use them; in the labkit book, use the explorer, which works without one.")

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle:
            bundle["text/plain"] = repr(self)
        return bundle


def live(render: Callable[..., Figure], *, dpi: float = 90, colors: int | None = 256, **ranges) -> Live:
    """Kernel-backed explorer: re-render ``render(**params)`` whenever a control moves.

    Each keyword is a list of values (selection slider; ``live.log(low, high)`` gives
    log-spaced ones), a ``(low, high)`` or ``(low, high, step)`` tuple (integer or float
    slider, as ``ipywidgets.interact``), or a ready-made ipywidgets control (e.g. a
    ``FloatLogSlider``). Controls start at ``render``'s defaults where those are in range.
    The image shows at the figure's own pixel size (never stretched) and carries
    ``alt_text`` for the current values. Needs a running kernel; use ``explorer`` for the book::

        live(render_fields, t=live.log(0.001, 2.0), n=live.log(5, 200))
    """
    _check_render(render, list(ranges), "live")
    _check_encoding(dpi, colors)
    defaults = _defaults(render)
    controls = {name: _control(name, spec, defaults.get(name, inspect.Parameter.empty))
                for name, spec in ranges.items()}
    # align_self: a flex item of the panel would otherwise stretch to the output's full width.
    image = Frame(format="png", layout=widgets.Layout(max_width="100%", height="auto", align_self="flex-start"))
    name = _render_name(render)

    def show(**params):
        fig = render(**params)
        if not isinstance(fig, Figure):
            raise TypeError(f"render must return a matplotlib.figure.Figure, got {type(fig).__name__}")
        alt = alt_text(fig, params, name)
        png = figure_png(fig, dpi=dpi, colors=colors)
        with image.hold_sync():  # one message: the page never shows the new alt over the old frame
            image.tooltip, image.value = alt, png

    panel = Live(show, **controls)  # gives each control without a description its name
    labelled = [control for control in controls.values() if isinstance(control, DescriptionWidget)]
    style = _label_style([control.description for control in labelled])
    for control in labelled:
        control.layout.width = SLIDER_WIDTH
        control.style.description_width = style["description_width"]
        if control.tooltip is None:
            control.tooltip = control.description  # else the label's title reads "null"
    panel.children = (*panel.children, image)
    panel.add_class("labkit-live")
    panel.render, panel.controls, panel.image = render, controls, image
    return panel


live.log = log_values


def closed_form_denoisers_figure(t: float = 0.2, patch_size: int = 5, n: int = 32,
                                 num: int = 4) -> Figure:
    """A pure render (for :func:`explorer`): ``num`` held-out digits noised to OU time ``t``,
    and what the empirical, Gaussian (Wiener) and local patch denoisers (``patch_size``) of
    ``n`` training digits make of them (:mod:`labkit.denoisers`). Notebook 04."""
    import torch

    from .denoisers import fit_gaussian, gaussian_denoiser, local_denoiser
    from .images import load_digits
    from .process import diffuse
    from .scores import empirical_denoiser

    data = load_digits(n, generator=torch.Generator().manual_seed(0))
    clean = data.held_out[:num].double()
    train = data.train.double()
    x, _ = diffuse(clean, t, generator=torch.Generator().manual_seed(1))
    mean, cov = fit_gaussian(train.flatten(1))
    rows = {"clean": clean, f"noisy (t = {t:g})": x,
            "empirical": empirical_denoiser(x.flatten(1), t, train.flatten(1)),
            "Gaussian": gaussian_denoiser(x.flatten(1), t, mean, cov),
            f"local {patch_size}x{patch_size}": local_denoiser(x, t, train, patch_size)}
    fig = Figure(figsize=(1.1 * num + 1.4, 1.15 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), num, squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(num):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(8, 8).numpy(), cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(f"Closed-form denoisers of {n} digits at t = {t:g}")
    return fig
