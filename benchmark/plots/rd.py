"""Rate-distortion figures: our curves (solid) against published reference curves (dashed).

Figures are written by ``benchmark.plots.common.save_figure`` (PNG 200 dpi and vector PDF, fixed
metadata).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from benchmark.analysis.references import Curve
from benchmark.metrics.base import METRICS
from benchmark.plots.common import PNG_DPI, save_figure  # noqa: F401  (PNG_DPI: the figures' resolution)

X_LABEL = "Rate [bpp]"
FIGSIZE_IN = (6.0, 4.2)
MAX_LEGEND_INSIDE = 8  # more entries than this: legend goes outside, right of the axes

# Styles: our codecs take colours in the order given; a published curve of the same codec
# (``counterparts``) shares its codec's colour and marker; other published curves take the next
# unused colours. tab10, then ten hues that none of tab10's resembles (a Kodak figure has 12 of
# our codecs and more published curves: a 10-colour cycle gave two codecs the same colour).
_EXTRA_COLOURS = ["#000000", "#b8860b", "#000080", "#008080", "#800000", "#32cd32", "#ff00ff", "#4b0082", "#ff7f50", "#556b2f"]
_COLOURS = list(matplotlib.colormaps["tab10"].colors) + [matplotlib.colors.to_rgb(c) for c in _EXTRA_COLOURS]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def styles_for(
    ours: Sequence[str], references: Sequence[str] = (), counterparts: Optional[Mapping[str, str]] = None
) -> Dict[Tuple[str, bool], Tuple[tuple, str]]:
    """(RGB colour, marker) per (name, published).

    Our names get slots 0, 1, ... in the order given (so a codec keeps its style across
    figures of one run); a reference whose name (case-insensitive) is ``counterparts[codec]``
    for one of our codecs shares that codec's slot; the other references get the next slots,
    in sorted order. Slot i is colour i % 20 (tab10, then ten other hues) and marker i % 8:
    pairs stay unique for 40 curves, and neighbouring curves differ in marker too (grayscale
    print).
    """
    counterparts = {k: v.lower() for k, v in (counterparts or {}).items()}
    out: Dict[Tuple[str, bool], Tuple[tuple, str]] = {}
    slot = 0
    for name in dict.fromkeys(ours):
        out[(name, False)] = (_COLOURS[slot % len(_COLOURS)], _MARKERS[slot % len(_MARKERS)])
        slot += 1
    by_published = {v: out[(k, False)] for k, v in counterparts.items() if (k, False) in out}
    for name in sorted(set(references), key=str.lower):
        if name.lower() in by_published:
            out[(name, True)] = by_published[name.lower()]
        else:
            out[(name, True)] = (_COLOURS[slot % len(_COLOURS)], _MARKERS[slot % len(_MARKERS)])
            slot += 1
    return out


def _visible_y(x: np.ndarray, y: np.ndarray, xmax: float) -> np.ndarray:
    """y of points with x <= xmax, plus the curve's value where it crosses x = xmax."""
    ys = [y[x <= xmax]]
    if x.min() <= xmax < x.max():
        ys.append(np.interp([xmax], x, y))
    return np.concatenate(ys)


def build_rd_figure(
    ours: Sequence[Curve],
    references: Sequence[Curve],
    metric: str,
    *,
    title: str,
    max_bpp: Optional[float] = None,
    counterparts: Optional[Mapping[str, str]] = None,
) -> Figure:
    """Draw rate-distortion curves on one axes and return the (unsaved) figure.

    Args:
        ours: our curves, drawn solid with markers.
        references: published curves, drawn dashed, thinner, with small markers, labelled
            "<name> (published)".
        metric: a registered metric (``benchmark.metrics.base.METRICS``), e.g. ``psnr`` (y = PSNR
            in dB) or ``ms_ssim_db`` (y = -10 log10(1 - MS-SSIM) in dB); the y label is its
            ``axis_label``. Curves without values for the metric (``Curve.get``) are left out.
        title: axes title.
        max_bpp: right end of the x axis in bpp (x starts at 0). Points beyond it stay in the
            line data and are clipped by the axes. None: the largest plotted rate + 3 %.
        counterparts: our codec name -> name of the published curve of the same codec, drawn
            in the same colour and marker (``styles_for``).

    Returns:
        A ``matplotlib.figure.Figure`` (Agg canvas) with one axes. The y range is fitted to
        the data visible in [0, max_bpp], with a 4 % margin.

    Raises:
        UnknownNameError: an unregistered metric.
        ValueError: max_bpp <= 0, or no curve has values for the metric.
    """
    m = METRICS.get(metric)
    if max_bpp is not None and not max_bpp > 0:
        raise ValueError(f"max_bpp must be positive, got {max_bpp}")
    styles = styles_for([c.name for c in ours], [c.name for c in references], counterparts)
    drawn = [(c, False) for c in ours if c.get(metric) is not None]
    drawn += [(c, True) for c in references if c.get(metric) is not None]
    if not drawn:
        raise ValueError(f"no curve has {metric} values to plot")
    xmax = max_bpp if max_bpp is not None else 1.03 * max(float(c.bpp.max()) for c, _ in drawn)

    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    visible = []
    for curve, published in drawn:
        y = curve.get(metric)
        colour, marker = styles[(curve.name, published)]
        style = (dict(linestyle="--", linewidth=1.1, markersize=3, zorder=2) if published
                 else dict(linestyle="-", linewidth=1.8, markersize=4.5, zorder=3))
        label = f"{curve.name} (published)" if published else curve.name
        ax.plot(curve.bpp, y, color=colour, marker=marker, label=label, **style)
        visible.append(_visible_y(curve.bpp, y, xmax))

    ax.set_xlim(0.0, xmax)
    vis = np.concatenate(visible)
    vis = vis[np.isfinite(vis)]
    if vis.size:
        lo, hi = float(vis.min()), float(vis.max())
        pad = max(0.04 * (hi - lo), 0.25)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(m.axis_label)
    ax.set_title(title)
    ax.grid(True, which="major", linewidth=0.5, alpha=0.5)
    if len(drawn) <= MAX_LEGEND_INSIDE:
        ax.legend(loc="lower right", fontsize="small", framealpha=0.9)
    else:
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", frameon=False)
    return fig


def plot_rd(
    ours: Sequence[Curve],
    references: Sequence[Curve],
    metric: str,
    out_stem: Path,
    *,
    title: str,
    max_bpp: Optional[float] = None,
    counterparts: Optional[Mapping[str, str]] = None,
) -> List[Path]:
    """Draw a rate-distortion figure (see ``build_rd_figure``) and write ``out_stem.png`` and
    ``out_stem.pdf`` atomically (parent directories are created). Returns [png, pdf] paths.

    Raises:
        ValueError: as ``build_rd_figure``.
        OSError: the files cannot be written.
    """
    fig = build_rd_figure(ours, references, metric, title=title, max_bpp=max_bpp, counterparts=counterparts)
    return save_figure(fig, out_stem)
