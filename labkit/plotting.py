"""Notebook setup, the size switch, the figure theme and ``savefig``.

Every notebook starts with one call, ``cfg = labkit.plotting.setup()``, which seeds torch,
numpy and random, picks the device (CPU unless asked), applies the seaborn theme and reads the
size switch ``LABKIT_FAST=1`` (the small size used by the test run). ``savefig(fig, name)``
writes ``figures/<name>.png``, where ``name`` starts with the notebook number
(``"01_gap_vs_t"``). Introduced in ``notebooks/00_primer.ipynb``.

Where files go: in a source checkout (an editable install included) figures and caches live in
the repository's ``figures/`` and ``.cache/``; an installed package never writes beside itself,
so there ``savefig`` writes ``./figures`` and caches go to the user cache directory
(``platformdirs``, e.g. ``~/.cache/labkit``). ``$LABKIT_FIGURES`` and ``$LABKIT_CACHE`` always win.
Those folders and the size switch are :mod:`labkit.store`'s (:func:`labkit.store.figures_dir`,
:func:`labkit.store.cache_dir`, :func:`labkit.store.is_fast`); the old names here
(``labkit.plotting.is_fast`` ...) still work until labkit 0.3, with a ``DeprecationWarning``.

Alt text: a figure's title states its finding, so it is also the figure's description for a
screen reader (``figure_alt``). ``savefig`` and, after ``setup()`` in a notebook kernel, every
figure a cell shows store it in the PNG as its ``Title`` and ``Description`` text chunks; the
book (``docs/conf.py``) makes the description the image's ``alt``.
"""

from __future__ import annotations

import functools
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch

from . import _moved, store

__all__ = [
    "censored_law_figure",
    "Setup",
    "setup",
    "seed_everything",
    "savefig",
    "figure_alt",
    "png_metadata",
    "show_alt_text",
    "PALETTE",
    "apply_theme",
    "score_field",
    "score_fields_figure",
    "sampling_figure",
    "training_curves",
    "memorization_time_figure",
    "value_grid",
    "interval_series",
]

# Okabe-Ito: distinguishable under the common forms of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, numpy and torch (for notebooks only; library code takes ``generator=``).

    Returns a fresh ``torch.Generator`` seeded with ``seed`` to pass on explicitly.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def apply_theme() -> None:
    """The lab's seaborn theme: white grid, colour-blind-safe palette, PNG-friendly sizes."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    matplotlib.rcParams.update({
        "figure.dpi": 90,
        "savefig.dpi": 110,
        "savefig.bbox": "tight",
        "axes.titlesize": 11,
        "axes.titleweight": "bold",
        "figure.titlesize": 12,
        "figure.titleweight": "bold",
        "legend.fontsize": 9,
        "image.cmap": "viridis",
    })


@dataclass(frozen=True)
class Setup:
    """What ``setup()`` decided: the size switch, the device and a seeded generator."""

    fast: bool
    device: torch.device
    seed: int
    generator: torch.Generator

    def pick(self, full, fast):
        """``fast`` at the test size, ``full`` otherwise: ``n = cfg.pick(2000, 200)``."""
        return fast if self.fast else full


def setup(seed: int = 0, device: str | None = None, threads: int | None = None) -> Setup:
    """One call at the top of every notebook: seed, device, theme, size switch.

    ``device`` defaults to ``$LABKIT_DEVICE`` or ``"cpu"``; ``threads`` caps torch's intra-op
    threads (default: leave torch's choice, or ``$OMP_NUM_THREADS``).
    """
    device = torch.device(device or os.environ.get("LABKIT_DEVICE", "cpu"))
    if threads is not None:
        torch.set_num_threads(int(threads))
    generator = seed_everything(seed)
    apply_theme()
    show_alt_text()
    return Setup(fast=store.is_fast(), device=device, seed=seed, generator=generator)


def savefig(fig, name: str) -> Path:
    """Write ``fig`` to ``figures/<name>.png`` (atomically) and return the path.

    ``name`` must start with the notebook's two-digit number, e.g. ``"02_width_vs_n"``.
    """
    if not (isinstance(name, str) and len(name) > 3 and name[:2].isdigit() and name[2] == "_"):
        raise ValueError(f"name must look like '<two-digit notebook number>_<what>', got {name!r}")
    if name.endswith(".png"):
        name = name[:-4]
    out = store.figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, format="png", metadata=png_metadata(fig))
    os.replace(tmp, path)
    return path


def figure_alt(fig) -> str:
    r"""The alt text of a figure: its suptitle, else its axes titles joined by "; ", as plain
    text (mathtext without ``$``, backslashes or braces); "" for an untitled figure.

    >>> import matplotlib.figure
    >>> fig = matplotlib.figure.Figure()
    >>> _ = fig.add_subplot().set_title(r"the gap shrinks like $\sigma_t^{2}$")
    >>> figure_alt(fig)
    'the gap shrinks like sigma_t^2'
    """
    title = fig.get_suptitle() or "; ".join(
        text for ax in fig.axes for text in (ax.get_title("left"), ax.get_title(), ax.get_title("right")) if text)
    return _plain_text(title)


def _plain_text(title: str) -> str:
    """A matplotlib title as a screen reader should read it: mathtext without ``$``, ``\\`` or
    braces (``$\\alpha\\sigma_t^{2}$`` -> ``alpha sigma_t^2``). The one rule for every alt
    text (figures here, widget frames in :mod:`labkit.widgets`)."""
    text = re.sub(r"\\([A-Za-z]+)", r" \1", title.replace("$", ""))
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def png_metadata(fig) -> dict:
    """PNG text chunks that carry ``figure_alt(fig)``: ``{"Title": ..., "Description": ...}``
    (``{}`` for an untitled figure), for ``Figure.savefig(..., metadata=)``."""
    alt = figure_alt(fig)
    return {"Title": alt, "Description": alt} if alt else {}


def show_alt_text(shell=None) -> bool:
    """Make the figures a notebook cell shows (``plt.show()``, a figure as a cell's value) carry
    ``png_metadata`` in their PNG, by wrapping the kernel's PNG formatter for figures (the
    inline backend's). Idempotent; False outside IPython or without a PNG formatter."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", {})
    if "image/png" not in formatters:
        return False
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    plt.switch_backend(matplotlib.get_backend())  # loads the inline backend, which registers its formatter

    png = formatters["image/png"]
    try:
        current = png.lookup_by_type(Figure)
    except KeyError:
        return False
    if getattr(current, "carries_alt_text", False):
        return True

    def with_alt_text(fig):
        return current(fig, metadata=png_metadata(fig))

    with_alt_text.carries_alt_text = True
    png.for_type(Figure, with_alt_text)
    return True


def score_field(ax, score_fn, t: float, lim: float = 4.0, grid: int = 17, color: str = PALETTE[0],
                normalize: bool = True):
    """Quiver plot of a 2-D score function ``score_fn(x, t)`` on ``[-lim, lim]^2`` at time t.

    Arrows are scaled to unit length when ``normalize`` (directions are the lesson; lengths
    grow like 1/sigma_t^2 near training points), coloured by log10 of the norm.
    """
    axis = torch.linspace(-lim, lim, grid, dtype=torch.float64)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    pts = torch.stack([xx.flatten(), yy.flatten()], dim=1)  # (grid^2, 2)
    s = score_fn(pts, torch.tensor(t, dtype=torch.float64))
    norm = s.norm(dim=1).clamp_min(1e-12)
    u = s / norm[:, None] if normalize else s
    q = ax.quiver(pts[:, 0], pts[:, 1], u[:, 0], u[:, 1], torch.log10(norm), cmap="viridis",
                  angles="xy", scale_units="xy", scale=grid / (1.6 * lim), width=0.005)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
    return q


def score_fields_figure(gmm, train: torch.Tensor, t: float = 0.1, lim: float = 4.0, grid: int = 17):
    """True vs empirical score of a 2-D mixture at time t, side by side, with the training set.

    gmm: a 2-D ``labkit.data.GaussianMixture``; train: (n, 2). Returns the Figure. The title
    gives the mean squared difference of the two fields at diffused training points (the
    Loss-Gap of Proposition 4.1 at this t).
    """
    import matplotlib.pyplot as plt

    from .losses import loss_gap
    from .scores import empirical_score

    train = train.to(torch.float64)
    emp = functools.partial(empirical_score, train=train)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.4), constrained_layout=True)
    fields = []
    for ax, fn, name in ((axes[0], gmm.score, "true score $\\nabla\\log p_t$"),
                         (axes[1], emp, "empirical score $\\nabla\\log \\hat p_t$")):
        fields.append(score_field(ax, fn, t, lim, grid))
        ax.scatter(train[:, 0], train[:, 1], s=14, c=PALETTE[3], edgecolor="white", linewidth=0.5,
                   zorder=3, label=f"training points (n={len(train)})")
        ax.set_title(name)
    # One colour range for both panels, so one colour bar reads both; its ends are the 2% and 98%
    # quantiles, so that a near-zero score (the centre of a symmetric mixture) does not wash it out.
    low, high = np.quantile(np.concatenate([np.asarray(q.get_array()) for q in fields]), [0.02, 0.98])
    for q in fields:
        q.set_clim(low, high)
    fig.colorbar(fields[-1], ax=axes, shrink=0.8, extend="both", label="$\\log_{10}$ |score|, both panels")
    axes[0].legend(loc="lower left", fontsize=8, framealpha=0.9)
    gap = loss_gap(gmm.score, train, t, num_noise=16, generator=torch.Generator().manual_seed(0))
    fig.suptitle(f"t = {t:g}: Loss-Gap$_t$ = E|emp - true|$^2$ = {gap.value:.3g}")
    return fig


def sampling_figure(train: torch.Tensor, paths: torch.Tensor, new: torch.Tensor, copies: torch.Tensor,
                    title: str, lim: float = 4.0, num_paths: int = 12):
    """Reverse-process paths and the samples of two 2-D samplers, over the training set.

    train: (n, 2); paths: (steps + 1, m, 2), trajectories of the sampler whose samples are
    ``copies`` (m, 2); new: (m', 2), samples of a sampler that makes new points. Draws
    ``num_paths`` of the paths, then ``new`` and ``copies``; returns the Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), sharex=True, sharey=True, constrained_layout=True)
    for i in range(min(num_paths, paths.shape[1])):
        axes[0].plot(paths[:, i, 0], paths[:, i, 1], lw=0.8, alpha=0.8)
    axes[0].set_title("reverse-SDE paths, empirical score")
    axes[1].scatter(new[:, 0], new[:, 1], s=4, alpha=0.5, color=PALETTE[0])
    axes[1].set_title("samples, true score: new points")
    axes[2].scatter(copies[:, 0], copies[:, 1], s=30, alpha=0.15, color=PALETTE[1])
    axes[2].set_title("samples, empirical score: copies")
    for ax in axes:
        ax.scatter(train[:, 0], train[:, 1], s=18, marker="x", color=PALETTE[3], label="training points", zorder=3)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="$x_1$")
    axes[0].set_ylabel("$x_2$")
    axes[2].legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------------------------
# Notebook 02: the training-time study (one function per figure family)

_MARKERS = ("o", "s", "^", "D", "v", "P")
_DASHES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)))


def training_curves(axes, rows, ns, key: str = "memorization"):
    """Draw one panel family of the training-time study on ``axes`` (two axes): the memorization
    excess over the null rate and the log-likelihood gap to fresh draws against training steps,
    one colour, marker and line style per n, the mean over seeds with a band from the lowest to
    the highest seed. ``rows``: training-time rows (dicts) of one mixture and width."""
    ax_mem, ax_ll = axes
    for i, n in enumerate(ns):
        runs = [r for r in rows if r["n"] == n]
        if not runs:
            continue
        # the seeds' common evaluations (a shorter run's grid is a prefix of a longer one's);
        # runs evaluated at other steps cannot be averaged point by point
        k = min(len(r["steps"]) for r in runs) - 1
        if any(r["steps"][1:k + 1] != runs[0]["steps"][1:k + 1] for r in runs):
            raise ValueError(f"the rows at n = {n} were evaluated at different steps; pass rows "
                             "of one evaluation grid (same first_eval and evals_per_octave)")
        steps = np.asarray(runs[0]["steps"][1:k + 1], dtype=float)
        mem = np.array([np.asarray(r["memorization"][1:k + 1]) - r["null_memorization"] for r in runs])
        gap = np.array([np.asarray(r["log_likelihood"][1:k + 1]) - r["reference_log_likelihood"] for r in runs])
        style = dict(color=PALETTE[i % len(PALETTE)], ls=_DASHES[i % len(_DASHES)], marker=_MARKERS[i % len(_MARKERS)],
                     ms=3, lw=1.5, markevery=2)
        for ax, values in ((ax_mem, mem), (ax_ll, gap)):
            ax.plot(steps, values.mean(0), label=f"n = {n}", **style)
            ax.fill_between(steps, values.min(0), values.max(0), color=style["color"], alpha=0.15, lw=0)
    ax_mem.axhline(0.10, color="0.4", lw=0.8, ls=":")
    ax_ll.axhline(-0.25, color="0.4", lw=0.8, ls=":")
    ax_mem.set(xscale="log", xlabel="training step", ylabel="memorization minus null rate", ylim=(-0.1, 1.0))
    top = max([0.6] + [float(np.nanmax(line.get_ydata())) + 0.2 for line in ax_ll.get_lines() if len(line.get_ydata())])
    ax_ll.set(xscale="log", xlabel="training step", ylabel="log-likelihood minus fresh data (nats)",
              ylim=(-3.0, top))


def memorization_time_figure(times: dict, fits: dict, title: str):
    """Memorization and generalization times against n (log-log), one point per seed, with the
    fitted power law of each and a slope-1 guide (Bonnaire et al.'s linear law) through the
    memorization times. ``times``: ``{label: {n: {"tau_mem": [...], "tau_gen": [...]}}}``;
    ``fits``: ``{label: {"slope", "lo", "hi", "intercept"}}``, a power law fitted to tau_mem."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(times), figsize=(5.2 * len(times), 4.0), layout="constrained", squeeze=False)
    for ax, (label, table) in zip(axes[0], times.items()):
        ns = np.array(sorted(table), dtype=float)
        for key, color, marker, name in (("tau_mem", PALETTE[3], "o", "memorization time"),
                                         ("tau_gen", PALETTE[0], "s", "generalization time")):
            xs = [n for n in table for v in table[n][key] if v is not None]
            ys = [v for n in table for v in table[n][key] if v is not None]
            ax.scatter(xs, ys, color=color, marker=marker, alpha=0.8, label=name, zorder=3)
        fit = fits.get(label)
        if fit is not None:
            ax.plot(ns, np.exp(fit["intercept"]) * ns ** fit["slope"], color=PALETTE[3],
                    label=f"fit: slope {fit['slope']:.2f} [{fit['lo']:.2f}, {fit['hi']:.2f}]")
            mid = np.exp(fit["intercept"]) * np.exp(np.log(ns).mean()) ** fit["slope"]
            ax.plot(ns, mid * ns / np.exp(np.log(ns).mean()), "k:", lw=1, label="slope 1 (linear in n)")
        ax.set(xscale="log", yscale="log", xlabel="training points n", ylabel="training step", title=label)
        ax.set_xticks(ns, [f"{n:.0f}" for n in ns])
        ax.minorticks_off()
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    return fig


# ----------------------------------------------------------------------------------------------
# Notebook 02: Fig. 3 (memorization over a grid of settings, sweeps with seed intervals)

def value_grid(ax, mean, half=None, *, rows, cols, vmin: float = 0.0, vmax: float = 1.0,
               cmap: str = "viridis", missing: str = "not run"):
    """A heatmap of ``mean`` (shape ``(len(rows), len(cols))``, fractions shown as percent), each
    cell labelled with its value and, where ``half`` (same shape) is given, ``± half``. A NaN
    cell (a setting that was not run) is hatched grey and labelled ``missing``, so it cannot be
    read as a value. ``rows`` and ``cols`` label the y and x ticks. Returns the image (for a
    colour bar)."""
    from matplotlib.patches import Rectangle

    mean = np.asarray(mean, dtype=float)
    if mean.shape != (len(rows), len(cols)):
        raise ValueError(f"mean must have shape (len(rows), len(cols)) = {(len(rows), len(cols))}, "
                         f"got {mean.shape}")
    half = None if half is None else np.asarray(half, dtype=float)
    if half is not None and half.shape != mean.shape:
        raise ValueError(f"half must have the shape of mean {mean.shape}, got {half.shape}")
    image = ax.imshow(mean, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    colormap = matplotlib.colormaps[cmap]
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            if np.isnan(mean[i, j]):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="0.92", edgecolor="0.55",
                                       hatch="///", lw=0))
                ax.text(j, i, missing, ha="center", va="center", fontsize=11, color="0.25")
                continue
            text = f"{mean[i, j]:.0%}" + ("" if half is None else f"\n±{half[i, j]:.0%}")
            red, green, blue, _ = colormap((mean[i, j] - vmin) / (vmax - vmin))
            dark = 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.45  # relative luminance
            ax.text(j, i, text, ha="center", va="center", fontsize=11,
                    color="w" if dark else "k")  # >= 9 pt at the book's column width
    ax.grid(False)
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    return image


def interval_series(ax, labels, series: dict, *, reference: float | None = None,
                    reference_label: str | None = None, offset: float = 0.06):
    """Points with their intervals against the categories ``labels`` (the x ticks), one series
    per entry of ``series`` (``{name: [(mean, lo, hi), ...]}``, one triple per label), each in
    its own colour, marker and line style and shifted by ``offset`` so the bars do not overlap.
    ``reference`` draws a dotted horizontal line (``reference_label`` in the legend)."""
    for k, (name, stats) in enumerate(series.items()):
        stats = np.asarray(stats, dtype=float)
        if stats.shape != (len(labels), 3):
            raise ValueError(f"series {name!r} must hold one (mean, lo, hi) per label "
                             f"({len(labels)}), got shape {stats.shape}")
        xs = np.arange(len(labels)) + (k - (len(series) - 1) / 2) * offset
        ax.errorbar(xs, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]],
                    color=PALETTE[(3, 0, 2, 4)[k % 4]], marker=_MARKERS[k % len(_MARKERS)],
                    ls=_DASHES[k % len(_DASHES)], capsize=3, ms=5, lw=1.5, label=name)
    if reference is not None:
        ax.axhline(reference, color="0.4", lw=1, ls=":", label=reference_label)
    ax.set_xticks(range(len(labels)), [str(label) for label in labels])


def censored_law_figure(laws: dict, title: str):
    """Interval-censored training times against n (log-log), one panel per law, with the
    fitted censored power law. ``laws``: ``{panel title: (observations, fit)}`` with the
    observations of :func:`labkit.experiments.time_observations` (``{"x", "seed", "lower",
    "upper"}``; ``upper`` None: beyond the budget) and the fit of
    :func:`labkit.experiments.censored_power_law`. Each run is a bar from the last evaluation
    below the mark to the first at or above it; a run beyond the budget is a triangle at its
    budget pointing up; one reached before the first evaluation is a triangle at that evaluation
    pointing down. A dotted slope-1 guide (Bonnaire et al.'s linear law) passes through
    the fit's centre."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(laws), figsize=(3.6 * len(laws), 4.2), layout="constrained",
                             squeeze=False)
    for ax, (name, (observations, fit)) in zip(axes[0], laws.items()):
        ns = np.array(sorted({o["x"] for o in observations}), dtype=float)
        seeds = sorted({o["seed"] for o in observations})
        for o in observations:
            x = o["x"] * 1.06 ** (seeds.index(o["seed"]) - (len(seeds) - 1) / 2)  # (jitter)
            if o["upper"] is None:
                ax.scatter([x], [o["lower"]], marker="^", color=PALETTE[1], zorder=3, s=30)
            elif o["lower"] <= 0:  # reached before the first evaluation after step 0
                ax.scatter([x], [o["upper"]], marker="v", color=PALETTE[3], zorder=3, s=30)
            else:
                ax.plot([x, x], [o["lower"], o["upper"]], color=PALETTE[3], lw=2)
        line = np.exp(fit["intercept"]) * ns ** fit["slope"]
        lo, hi = fit["interval"]
        bounds = f"[{'-' if lo is None else f'{lo:.2f}'}, {'-' if hi is None else f'{hi:.2f}'}]"
        ax.plot(ns, line, color="k", lw=1.2, label="censored fit")
        centre = np.exp(np.log(ns).mean())
        mid = np.exp(fit["intercept"]) * centre ** fit["slope"]
        ax.plot(ns, mid * ns / centre, "k:", lw=1, label="slope 1 (linear in n)")
        ax.plot([], [], color=PALETTE[3], lw=2, label="a run: between two evaluations")
        ax.scatter([], [], marker="^", color=PALETTE[1], label="a run beyond the budget")
        ax.set(xscale="log", yscale="log", xlabel="training points n", ylabel="training step",
               title=f"{name}\nslope {fit['slope']:.2f} {bounds} (95%)")
        ax.set_xticks(ns, [f"{n:.0f}" for n in ns])
        ax.minorticks_off()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9)
    fig.suptitle(title)
    return fig


# The environment and the paths live in labkit.store, the package's bottom layer.
__getattr__ = _moved(__name__, {name: f"labkit.store.{name}" for name in (
    "repo_root", "is_fast", "figures_dir", "cache_dir")}, remove_in="0.3")
