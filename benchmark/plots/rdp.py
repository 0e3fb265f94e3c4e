"""Rate-distortion-perception figures (Blau & Michaeli, ICML 2019, "Rethinking Lossy Compression:
The Rate-Distortion-Perception Tradeoff"): rate vs a perceptual metric, and distortion vs
perception at matched rates.

- ``build_rdp_figure``: bpp vs LPIPS, DISTS, HaarPSI (means over images per rate point) or FID /
  KID (per rate point over all HiFiC patches; KID with its std over subsets as error bars), one
  line per codec in the RD figures' colours and markers.
- ``build_dp_figure``: distortion (PSNR) vs perception (LPIPS, HaarPSI, ...) with each codec's
  values interpolated at the same rates (``dp_rates``, linear in log bpp, no extrapolation):
  the codec's whole curve thin, its matched-rate points marked, one marker shape per rate.

A metric without values (weights missing, not requested, older results) never fails a figure:
the figure is drawn with a note saying why instead of the curves, or beside the curves when only
some codecs lack it. Figures are written like the RD figures (``common.save_figure``): PNG 200 dpi
and vector PDF, without timestamps.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.analysis.perception import at_matched_rates
from benchmark.metrics.base import METRICS
from benchmark.plots.common import save_figure
from benchmark.plots.rd import FIGSIZE_IN, MAX_LEGEND_INSIDE, X_LABEL, styles_for

RATE_MARKERS = ["o", "s", "^", "D", "v", "P"]
NOTE_WIDTH = 88  # characters per line of a note


def axis_label(metric: str) -> str:
    """Axis label of a registered metric with its direction, e.g. "LPIPS (AlexNet, v0.1), lower is
    better" or "PSNR (RGB) [dB], higher is better". Raises ``UnknownNameError`` for an unknown metric."""
    m = METRICS.get(metric)
    return f"{m.axis_label}, {m.direction}"


def _note(ax, text: str, *, alone: bool) -> None:
    wrapped = "\n".join(textwrap.fill(part, NOTE_WIDTH if not alone else 60) for part in text.split("\n"))
    if alone:
        ax.text(0.5, 0.5, wrapped, transform=ax.transAxes, ha="center", va="center", fontsize="medium",
                bbox=dict(boxstyle="round", facecolor="#f4f4f4", edgecolor="#999999"))
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.annotate(wrapped, xy=(0.0, -0.16), xycoords="axes fraction", ha="left", va="top", fontsize="x-small", color="#444444")


def _legend(ax, n: int) -> None:
    if n <= MAX_LEGEND_INSIDE:
        ax.legend(loc="best", fontsize="small", framealpha=0.9)
    else:
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", frameon=False)


def _finite(summary: pd.DataFrame, codec: str, columns: Sequence[str]) -> pd.DataFrame:
    s = summary[summary.codec == codec]
    if not set(columns) <= set(s.columns):
        return s.iloc[0:0]
    return s[np.isfinite(s[list(columns)].to_numpy(float)).all(axis=1)].sort_values("bpp")


def build_rdp_figure(
    summary: pd.DataFrame,
    metric: str,
    *,
    codecs: Sequence[str],
    title: str,
    max_bpp: Optional[float] = None,
    note: Optional[str] = None,
    indicative_below: Optional[int] = None,
) -> Figure:
    """Rate vs one perceptual metric, one line per codec (solid, markers; RD colours).

    Args:
        summary: per-(codec, rate point) table with ``codec``, ``bpp`` and the ``metric`` column
            (``kid_std`` for KID error bars, ``n_patches`` for FID/KID).
        metric: ``lpips``, ``dists``, ``haarpsi``, ``fid`` or ``kid``.
        codecs: the codecs of the run, in legend order (their styles follow this order).
        title: axes title. max_bpp: right end of the x axis (None: largest rate + 3 %).
        note: why the metric is missing for some or all codecs (drawn in the figure).
        indicative_below: for FID/KID, mark the figure indicative when a rate point has fewer patches.

    Returns:
        The figure. With no finite value for any codec, an empty axes with ``note`` (or a
        default note) in the middle: never an error.

    Raises:
        ValueError: unknown metric, or max_bpp <= 0.
    """
    label = axis_label(metric)
    if max_bpp is not None and not max_bpp > 0:
        raise ValueError(f"max_bpp must be positive, got {max_bpp}")
    styles = styles_for(list(codecs))
    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    drawn = 0
    patches: List[int] = []
    for c in codecs:
        s = _finite(summary, c, ["bpp", metric])
        if s.empty:
            continue
        colour, marker = styles[(c, False)]
        std = f"{metric}_std"
        if std in s and np.nanmax(s[std].to_numpy(float)) > 0:
            ax.errorbar(s.bpp, s[metric], yerr=s[std], color=colour, marker=marker, markersize=4.5, linewidth=1.8,
                        capsize=2, label=c, zorder=3)
        else:
            ax.plot(s.bpp, s[metric], color=colour, marker=marker, markersize=4.5, linewidth=1.8, label=c, zorder=3)
        if "n_patches" in s:
            patches += [int(n) for n in s.n_patches.dropna()]
        drawn += 1
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(label)
    if not METRICS.get(metric).per_image and patches:
        fewest = min(patches)
        flag = indicative_below is not None and fewest < indicative_below
        title += f" - {fewest} patches" + (f" (< {indicative_below}: indicative)" if flag else "")
    ax.set_title(title)
    if drawn == 0:
        _note(ax, f"{METRICS.get(metric).label}: no values to plot.\n" + (note or "The metric was not computed."), alone=True)
        return fig
    xmax = max_bpp if max_bpp is not None else 1.03 * float(summary[np.isfinite(summary[metric].to_numpy(float))].bpp.max())
    ax.set_xlim(0.0, xmax)
    ax.grid(True, which="major", linewidth=0.5, alpha=0.5)
    _legend(ax, drawn)
    if note:
        _note(ax, note, alone=False)
    return fig


def build_dp_figure(
    summary: pd.DataFrame,
    *,
    codecs: Sequence[str],
    rates: Sequence[float],
    title: str,
    distortion: str = "psnr",
    perception: str = "lpips",
    note: Optional[str] = None,
) -> Figure:
    """Distortion vs perception at matched rates (``at_matched_rates``).

    Each codec: its whole (distortion, perception) curve over its rate points as a thin line,
    and its values interpolated at each rate of ``rates`` (bpp) as markers joined by a solid
    line; marker shape = rate (second legend), colour = codec (RD colours). x: ``distortion``
    (``psnr`` or ``ms_ssim_db``, dB), y: ``perception`` (a perceptual metric).

    Returns a figure; with no codec having both values, a note instead (never an error).
    Raises ``ValueError`` for an unknown metric or empty ``rates``.
    """
    label = axis_label(perception)
    if not rates:
        raise ValueError("rates must name at least one rate in bpp")
    styles = styles_for(list(codecs))
    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    ax.set_xlabel(axis_label(distortion))
    ax.set_ylabel(label)
    ax.set_title(title)
    drawn, rate_handles = 0, {}
    for c in codecs:
        s = _finite(summary, c, ["bpp", distortion, perception])
        if s.empty:
            continue
        colour, marker = styles[(c, False)]
        ax.plot(s[distortion], s[perception], color=colour, linewidth=0.8, alpha=0.45, zorder=2)
        m = at_matched_rates(summary, c, [distortion, perception], rates)
        ax.plot(m[distortion], m[perception], color=colour, linewidth=1.6, label=c, zorder=3)
        for i, r in enumerate(rates):
            at = m[m.bpp == float(r)]
            if len(at):
                shape = RATE_MARKERS[i % len(RATE_MARKERS)]
                ax.plot(at[distortion], at[perception], linestyle="none", marker=shape, markersize=6,
                        color=colour, markeredgecolor="black", markeredgewidth=0.5, zorder=4)
                rate_handles[r] = shape
        drawn += 1
    if drawn == 0:
        _note(ax, f"{METRICS.get(distortion).axis_label} vs {METRICS.get(perception).label}: no values to plot.\n"
                  + (note or "The perceptual metric was not computed."), alone=True)
        return fig
    ax.grid(True, which="major", linewidth=0.5, alpha=0.5)
    first = ax.legend(loc="upper right" if not METRICS.get(perception).higher_is_better else "lower right", fontsize="small",
                      framealpha=0.9, title="codec", title_fontsize="small")
    if rate_handles:
        handles = [ax.plot([], [], linestyle="none", marker=shape, color="#888888", markeredgecolor="black",
                           markeredgewidth=0.5)[0] for shape in rate_handles.values()]
        ax.add_artist(first)
        ax.legend(handles, [f"{r:g} bpp" for r in rate_handles], loc="lower left" if not METRICS.get(perception).higher_is_better else "upper left",
                  fontsize="small", framealpha=0.9, title="matched rate", title_fontsize="small")
    if note:
        _note(ax, note, alone=False)
    return fig


def plot_rdp(summary: pd.DataFrame, metric: str, out_stem: Path, **kwargs) -> List[Path]:
    """``build_rdp_figure(summary, metric, **kwargs)`` written to ``out_stem.png`` and
    ``out_stem.pdf`` (atomically; parents created). Returns [png, pdf]. Raises as the builder,
    and ``OSError`` if the files cannot be written."""
    return save_figure(build_rdp_figure(summary, metric, **kwargs), out_stem)


def plot_dp(summary: pd.DataFrame, out_stem: Path, **kwargs) -> List[Path]:
    """``build_dp_figure(summary, **kwargs)`` written to ``out_stem.png`` / ``.pdf``; [png, pdf]."""
    return save_figure(build_dp_figure(summary, **kwargs), out_stem)
