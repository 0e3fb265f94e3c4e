"""Rate-distortion figures: our curves (solid) against published reference curves (dashed), with
a second panel on the low rates where the learned codecs are.

Styles and legends come from ``benchmark.plots.styles`` (one colour and marker per codec family;
a published curve in the colour of our codec of the same family; legend groups below the axes
that say how each codec was obtained). Figures are written by
``benchmark.plots.common.save_figure`` (PNG 200 dpi and vector PDF, fixed metadata).

The layout, shared with the rate-perception figures (``draw_rate_figure``):

- the full panel spans [0, ``max_bpp``] (RD: ``report.max_bpp``);
- a low-rate panel on its right spans [0, ``zoom_bpp(...)``]: 1.15 times the largest rate of
  our learned codecs, rounded up to a 0.05 / 0.1 bpp step; drawn only when the run has learned
  codecs and that range is at most half of the full panel's (``ZOOM_MAX_FRACTION``); the
  full panel marks the zoomed region with a dotted box;
- each panel's y range is fitted to the data visible in it (4 % margin).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Mapping, NamedTuple, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from benchmark.analysis.references import Curve
from benchmark.metrics.base import METRICS
from benchmark.plots.common import PNG_DPI, save_figure  # noqa: F401  (PNG_DPI: the figures' resolution)
from benchmark.plots.styles import FONT, Entry, FigureKey, figure_key, legend_panel

X_LABEL = "Rate [bpp]"
FIGSIZE_IN = (7.2, 3.0)
"""Width and height of the axes area with two panels (the legend panel is added below)."""
FIGSIZE_ONE_IN = (6.0, 3.2)
ZOOM_MAX_FRACTION = 0.5
ZOOM_MARGIN = 1.15


class Series(NamedTuple):
    """One line of a rate figure: name, published (dashed), bpp, values, optional error bars."""

    name: str
    published: bool
    x: np.ndarray
    y: np.ndarray
    yerr: Optional[np.ndarray] = None


def nice_ceil(x: float) -> float:
    step = 0.05 if x <= 0.3 else 0.1 if x <= 1.0 else 0.25
    return round(math.ceil(x / step - 1e-9) * step, 10)


def zoom_bpp(series: Sequence[Series], learned: Sequence[str], xmax: float) -> Optional[float]:
    """Right end of the low-rate panel: ``ZOOM_MARGIN`` times the largest rate of the learned
    codecs among ``series``, rounded up to a 0.05 (up to 0.3 bpp) or 0.1 bpp step; None when
    no learned codec is drawn or the range exceeds ``ZOOM_MAX_FRACTION`` of ``xmax``."""
    rates = [float(s.x.max()) for s in series if not s.published and s.name in learned and len(s.x)]
    if not rates:
        return None
    z = nice_ceil(ZOOM_MARGIN * max(rates))
    return z if z <= ZOOM_MAX_FRACTION * xmax else None


def _visible_y(x: np.ndarray, y: np.ndarray, xmax: float) -> np.ndarray:
    """y of points with x <= xmax, plus the curve's value where it crosses x = xmax."""
    ys = [y[x <= xmax]]
    if x.min() <= xmax < x.max():
        ys.append(np.interp([xmax], x, y))
    return np.concatenate(ys)


def _ylim(series: Sequence[Series], xmax: float):
    vis = np.concatenate([_visible_y(s.x, s.y, xmax) for s in series] or [np.array([])])
    vis = vis[np.isfinite(vis)]
    if not vis.size:
        return None
    lo, hi = float(vis.min()), float(vis.max())
    pad = 0.04 * (hi - lo) if hi > lo else max(0.05 * abs(hi), 0.01)
    return lo - pad, hi + pad


def draw_rate_figure(
    series: Sequence[Series],
    key: FigureKey,
    *,
    ylabel: str,
    title: str,
    xmax: float,
    note: Optional[str] = None,
    extra_groups: Sequence = (),
) -> Figure:
    """Rate on x, one metric on y, one line per series (styles and legend from ``key``), in one
    panel [0, xmax] or two (plus the low-rate panel, ``zoom_bpp``). ``note``: a line below the
    legend. Returns the figure (Agg canvas)."""
    zoom = zoom_bpp(series, key.learned, xmax)
    fig = Figure(figsize=FIGSIZE_IN if zoom else FIGSIZE_ONE_IN)
    if zoom:
        axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1.0], "wspace": 0.22})
        ranges = [xmax, zoom]
    else:
        axes, ranges = [fig.add_subplot()], [xmax]
    for ax, right in zip(axes, ranges):
        for s in series:
            kw = key.style(s.name, s.published).line_kwargs()
            if s.yerr is not None and np.nanmax(s.yerr) > 0:
                ax.errorbar(s.x, s.y, yerr=s.yerr, capsize=2, **kw)
            else:
                ax.plot(s.x, s.y, **kw)
        ax.set_xlim(0.0, right)
        lim = _ylim(series, right)
        if lim:
            ax.set_ylim(*lim)
        ax.set_xlabel(X_LABEL, fontsize=FONT["axes"])
        ax.tick_params(labelsize=FONT["ticks"])
        ax.grid(True, which="major", linewidth=0.5, alpha=0.5)
    axes[0].set_ylabel(ylabel, fontsize=FONT["axes"])
    axes[0].set_title(title, fontsize=FONT["title"])
    if zoom:
        axes[1].set_title("low rates (learned codecs)", fontsize=FONT["title"])
        y0, y1 = axes[1].get_ylim()
        axes[0].add_patch(Rectangle((0.0, y0), zoom, y1 - y0, fill=False, linestyle=":", linewidth=0.9,
                                    edgecolor="#555555", zorder=1))
    ours = [s.name for s in series if not s.published]
    published = [s.name for s in series if s.published]
    legend_panel(fig, key.legend_groups(ours, published) + list(extra_groups), note=note)
    return fig


def build_rd_figure(
    ours: Sequence[Curve],
    references: Sequence[Curve],
    metric: str,
    *,
    title: str,
    max_bpp: Optional[float] = None,
    key: Optional[FigureKey] = None,
    counterparts: Optional[Mapping[str, str]] = None,
) -> Figure:
    """Draw rate-distortion curves and return the (unsaved) figure.

    Args:
        ours: our curves, drawn solid with markers.
        references: published curves, drawn dashed, thinner, with smaller markers, under the
            legend group "Published curves"; only those ``key`` draws (``key.published``).
        metric: a registered metric (``benchmark.metrics.base.METRICS``), e.g. ``psnr`` (y = PSNR
            in dB) or ``ms_ssim_db`` (y = -10 log10(1 - MS-SSIM) in dB); the y label is its
            ``axis_label``. Curves without values for the metric (``Curve.get``) are left out.
        title: the figure's title.
        max_bpp: right end of the full panel in bpp (x starts at 0). Points beyond it stay in the
            line data and are clipped by the axes. None: the largest plotted rate + 3 %.
        key: the run's styles and legend entries (``styles.figure_key``); None: one built from
            the curve names (families looked up by name) and ``counterparts``.

    Returns:
        A ``matplotlib.figure.Figure`` (Agg canvas): the full panel, the low-rate panel where
        the run has learned codecs at low rates (module docstring), the legend below.

    Raises:
        UnknownNameError: an unregistered metric.
        ValueError: max_bpp <= 0, or no curve has values for the metric.
    """
    m = METRICS.get(metric)
    if max_bpp is not None and not max_bpp > 0:
        raise ValueError(f"max_bpp must be positive, got {max_bpp}")
    if key is None:
        key = figure_key([Entry(c.name) for c in ours], [r.name for r in references], counterparts)
    series = [Series(c.name, False, c.bpp, c.get(metric)) for c in ours if c.get(metric) is not None]
    series += [Series(r.name, True, r.bpp, r.get(metric)) for r in references
               if r.name in key.published and r.get(metric) is not None]
    if not series:
        raise ValueError(f"no curve has {metric} values to plot")
    xmax = max_bpp if max_bpp is not None else 1.03 * max(float(s.x.max()) for s in series)
    return draw_rate_figure(series, key, ylabel=m.axis_label, title=title, xmax=xmax)


def plot_rd(
    ours: Sequence[Curve],
    references: Sequence[Curve],
    metric: str,
    out_stem: Path,
    *,
    title: str,
    max_bpp: Optional[float] = None,
    key: Optional[FigureKey] = None,
    counterparts: Optional[Mapping[str, str]] = None,
    pdf_stem: Optional[Path] = None,
) -> List[Path]:
    """Draw a rate-distortion figure (see ``build_rd_figure``) and write ``out_stem.png`` and
    ``<pdf_stem or out_stem>.pdf`` atomically (parent directories are created). Returns [png, pdf].

    Raises:
        ValueError: as ``build_rd_figure``.
        OSError: the files cannot be written.
    """
    fig = build_rd_figure(ours, references, metric, title=title, max_bpp=max_bpp, key=key, counterparts=counterparts)
    return save_figure(fig, out_stem, pdf_stem=pdf_stem)
