"""Rate-distortion-perception figures (Blau & Michaeli, ICML 2019, "Rethinking Lossy Compression:
The Rate-Distortion-Perception Tradeoff"): rate vs a perceptual metric, and distortion vs
perception at matched rates.

- ``build_rdp_figure``: bpp vs LPIPS, DISTS, HaarPSI (means over images per rate point) or FID /
  KID (per rate point over all HiFiC patches; KID with its std over subsets as error bars), one
  line per codec in the RD figures' colours and markers (``benchmark.plots.styles``), in the RD
  figures' layout (``benchmark.plots.rd.draw_rate_figure``). The x axis ends where the curves
  have saturated (``saturation_bpp``): HaarPSI, for one, changes by less than 5 % of its range
  above about 1 bpp on Kodak, and a 0-2 bpp axis spent half its width on flat lines.
- ``build_dp_figure``: distortion (PSNR) vs perception (LPIPS, HaarPSI, ...) with each codec's
  values interpolated at the same rates (``dp_rates``, linear in log bpp, no extrapolation):
  the codec's whole curve thin, its matched-rate points marked, one marker shape per rate.

A metric without values for any codec has no figure: the builders raise ``ValueError`` and the
report names the metric and why it is missing instead (README.md, perception.md). When only some
codecs lack it, the figure is drawn with a note saying which and why. Figures are written like
the RD figures (``common.save_figure``): PNG 200 dpi and vector PDF, without timestamps.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmark.analysis.perception import at_matched_rates
from benchmark.metrics.base import METRICS
from benchmark.plots.common import save_figure
from benchmark.plots.rd import FIGSIZE_ONE_IN, Series, nice_ceil, draw_rate_figure
from benchmark.plots.styles import FONT, Entry, FigureKey, figure_key, legend_panel

RATE_MARKERS = ["o", "s", "^", "D", "v", "P"]
SATURATION_FRACTION = 0.05


def axis_label(metric: str) -> str:
    """Axis label of a registered metric with its direction, e.g. "LPIPS (AlexNet, v0.1), lower is
    better" or "PSNR (RGB) [dB], higher is better". Raises ``UnknownNameError`` for an unknown metric."""
    m = METRICS.get(metric)
    return f"{m.axis_label}, {m.direction}"


def _finite(summary: pd.DataFrame, codec: str, columns: Sequence[str]) -> pd.DataFrame:
    s = summary[summary.codec == codec]
    if not set(columns) <= set(s.columns):
        return s.iloc[0:0]
    return s[np.isfinite(s[list(columns)].to_numpy(float)).all(axis=1)].sort_values("bpp")


def has_values(summary: pd.DataFrame, metric: str, codecs: Sequence[str]) -> bool:
    """Whether any of ``codecs`` has a finite value of ``metric`` in ``summary``."""
    return any(not _finite(summary, c, ["bpp", metric]).empty for c in codecs)


def _remaining_change(s: Series, r: float, end: float) -> float:
    """How far the curve moves between rate r and its last point at or below ``end``: the largest
    |y(t) - y(end)| over t in [r, end] (its points there and its value at r)."""
    if r >= end or r >= s.x.max():
        return 0.0
    y_end = float(np.interp(end, s.x, s.y))
    inside = s.y[(s.x >= r) & (s.x <= end)]
    at_r = float(np.interp(r, s.x, s.y)) if r >= s.x.min() else float(s.y[0])
    return float(np.max(np.abs(np.append(inside, at_r) - y_end)))


def saturation_bpp(series: Sequence[Series], xmax: float, fraction: float = SATURATION_FRACTION) -> float:
    """The x limit of a rate-perception figure: the smallest rate r (on a 0.05 bpp grid) beyond
    which no curve moves by more than ``fraction`` of the figure's value range over [0, xmax]
    before xmax, rounded up to a 0.05 / 0.1 / 0.25 bpp step; ``xmax`` when there is none."""
    ys = np.concatenate([s.y[s.x <= xmax] for s in series] or [np.array([])])
    ys = ys[np.isfinite(ys)]
    span = float(ys.max() - ys.min()) if ys.size else 0.0
    if span <= 0:
        return xmax
    for r in np.arange(0.05, xmax, 0.05):
        if all(_remaining_change(s, float(r), xmax) <= fraction * span for s in series):
            return min(xmax, nice_ceil(float(r)))
    return xmax


def _key(key: Optional[FigureKey], codecs: Sequence[str]) -> FigureKey:
    return key if key is not None else figure_key([Entry(c) for c in codecs])


def build_rdp_figure(
    summary: pd.DataFrame,
    metric: str,
    *,
    codecs: Sequence[str],
    title: str,
    max_bpp: Optional[float] = None,
    note: Optional[str] = None,
    indicative_below: Optional[int] = None,
    key: Optional[FigureKey] = None,
) -> Figure:
    """Rate vs one perceptual metric, one line per codec (solid, markers; RD colours).

    Args:
        summary: per-(codec, rate point) table with ``codec``, ``bpp`` and the ``metric`` column
            (``kid_std`` for KID error bars, ``n_patches`` for FID/KID).
        metric: ``lpips``, ``dists``, ``haarpsi``, ``fid`` or ``kid``.
        codecs: the codecs of the run, in legend order.
        title: the figure's title. max_bpp: the largest x limit (None: largest rate + 3 %); the
            axis ends earlier where the curves have saturated (``saturation_bpp``).
        note: why the metric is missing for some codecs (drawn below the legend).
        indicative_below: for FID/KID, mark the figure indicative when a rate point has fewer patches.
        key: the run's styles and legend (``styles.figure_key``; None: from the codec names).

    Raises:
        ValueError: no codec has a finite value of the metric (no figure without data), or
            max_bpp <= 0.
        UnknownNameError: an unregistered metric.
    """
    label = axis_label(metric)
    if max_bpp is not None and not max_bpp > 0:
        raise ValueError(f"max_bpp must be positive, got {max_bpp}")
    key = _key(key, codecs)
    series, patches = [], []
    for c in codecs:
        s = _finite(summary, c, ["bpp", metric])
        if s.empty:
            continue
        std = f"{metric}_std"
        yerr = s[std].to_numpy(float) if std in s else None
        series.append(Series(c, False, s.bpp.to_numpy(float), s[metric].to_numpy(float), yerr))
        if "n_patches" in s:
            patches += [int(n) for n in s.n_patches.dropna()]
    if not series:
        raise ValueError(f"no codec has {metric} values to plot")
    if not METRICS.get(metric).per_image and patches:
        fewest = min(patches)
        flag = indicative_below is not None and fewest < indicative_below
        title += f" - {fewest} patches" + (f" (< {indicative_below}: indicative)" if flag else "")
    xmax = max_bpp if max_bpp is not None else 1.03 * max(float(s.x.max()) for s in series)
    return draw_rate_figure(series, key, ylabel=label, title=title, xmax=saturation_bpp(series, xmax), note=note)


def build_dp_figure(
    summary: pd.DataFrame,
    *,
    codecs: Sequence[str],
    rates: Sequence[float],
    title: str,
    distortion: str = "psnr",
    perception: str = "lpips",
    note: Optional[str] = None,
    key: Optional[FigureKey] = None,
) -> Figure:
    """Distortion vs perception at matched rates (``at_matched_rates``).

    Each codec: its whole (distortion, perception) curve over its rate points as a thin line,
    and its values interpolated at each rate of ``rates`` (bpp) as markers joined by a solid
    line; marker shape = rate (legend group "matched rate"), colour = codec (RD colours). x:
    ``distortion`` (``psnr`` or ``ms_ssim_db``, dB), y: ``perception`` (a perceptual metric).

    Raises ``ValueError`` when no codec has both values (no figure without data) or ``rates``
    is empty; ``UnknownNameError`` for an unknown metric.
    """
    label = axis_label(perception)
    if not rates:
        raise ValueError("rates must name at least one rate in bpp")
    key = _key(key, codecs)
    fig = Figure(figsize=FIGSIZE_ONE_IN)
    ax = fig.add_subplot()
    ax.set_xlabel(axis_label(distortion), fontsize=FONT["axes"])
    ax.set_ylabel(label, fontsize=FONT["axes"])
    ax.set_title(title, fontsize=FONT["title"])
    ax.tick_params(labelsize=FONT["ticks"])
    drawn, rate_shapes = [], {}
    for c in codecs:
        s = _finite(summary, c, ["bpp", distortion, perception])
        if s.empty:
            continue
        colour = key.style(c).colour
        ax.plot(s[distortion], s[perception], color=colour, linewidth=0.8, alpha=0.45, zorder=2)
        m = at_matched_rates(summary, c, [distortion, perception], rates)
        ax.plot(m[distortion], m[perception], color=colour, linewidth=1.6, zorder=3)
        for i, r in enumerate(rates):
            at = m[m.bpp == float(r)]
            if len(at):
                shape = RATE_MARKERS[i % len(RATE_MARKERS)]
                ax.plot(at[distortion], at[perception], linestyle="none", marker=shape, markersize=6,
                        color=colour, markeredgecolor="black", markeredgewidth=0.5, zorder=4)
                rate_shapes[r] = shape
        drawn.append(c)
    if not drawn:
        raise ValueError(f"no codec has both {distortion} and {perception} values to plot")
    ax.grid(True, which="major", linewidth=0.5, alpha=0.5)
    groups = [(g, [(Line2D([], [], color=h.get_color(), linewidth=1.6), text) for h, text in items])
              for g, items in key.legend_groups(drawn)]
    if rate_shapes:
        groups.append(("matched rate", [(Line2D([], [], linestyle="none", marker=shape, color="#888888",
                                                markeredgecolor="black", markeredgewidth=0.5), f"{r:g} bpp")
                                         for r, shape in rate_shapes.items()]))
    legend_panel(fig, groups, note=note)
    return fig


def plot_rdp(summary: pd.DataFrame, metric: str, out_stem: Path, *, pdf_stem: Optional[Path] = None, **kwargs) -> List[Path]:
    """``build_rdp_figure(summary, metric, **kwargs)`` written to ``out_stem.png`` and
    ``<pdf_stem or out_stem>.pdf`` (atomically; parents created). Returns [png, pdf]. Raises as
    the builder, and ``OSError`` if the files cannot be written."""
    return save_figure(build_rdp_figure(summary, metric, **kwargs), out_stem, pdf_stem=pdf_stem)


def plot_dp(summary: pd.DataFrame, out_stem: Path, *, pdf_stem: Optional[Path] = None, **kwargs) -> List[Path]:
    """``build_dp_figure(summary, **kwargs)`` written to ``out_stem.png`` / ``<pdf_stem>.pdf``; [png, pdf]."""
    return save_figure(build_dp_figure(summary, **kwargs), out_stem, pdf_stem=pdf_stem)
