"""Rate-distortion figures: our curves (solid) against published reference curves (dashed).

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend)
and written as PNG (raster, 200 dpi) and PDF (vector, TrueType fonts) with fixed metadata, so
the same inputs give the same bytes for a given matplotlib version.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from benchmark.analysis.references import Curve
from benchmark.fileio import write_bytes_atomic

METRICS = {
    "psnr": "PSNR (RGB) [dB]",
    "ms_ssim_db": "MS-SSIM (RGB) [dB]",
}
"""Accepted ``metric`` names and their y-axis labels. ``ms_ssim_db`` is -10 log10(1 - MS-SSIM)."""

X_LABEL = "Rate [bpp]"
PNG_DPI = 200
FIGSIZE_IN = (6.0, 4.2)
MAX_LEGEND_INSIDE = 8  # more entries than this: legend goes outside, right of the axes

# Styles: our codecs take tab10 colours in the order given; a published curve of the same codec
# (``counterparts``) shares its codec's colour and marker; other published curves take the next
# unused colours.
_COLOURS = list(matplotlib.colormaps["tab10"].colors)
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
_RC = {"pdf.fonttype": 42}  # TrueType in PDFs (many venues reject Type 3 fonts)


def styles_for(
    ours: Sequence[str], references: Sequence[str] = (), counterparts: Optional[Mapping[str, str]] = None
) -> Dict[Tuple[str, bool], Tuple[tuple, str]]:
    """(RGB colour, marker) per (name, published).

    Our names get slots 0, 1, ... in the order given (so a codec keeps its style across
    figures of one run); a reference whose name (case-insensitive) is ``counterparts[codec]``
    for one of our codecs shares that codec's slot; the other references get the next slots,
    in sorted order. Slot i is tab10 colour i % 10 and marker i % 8: pairs stay unique for 40
    curves, and neighbouring curves differ in marker too (grayscale print).
    """
    counterparts = {k: v.lower() for k, v in (counterparts or {}).items()}
    out: Dict[Tuple[str, bool], Tuple[tuple, str]] = {}
    slot = 0
    for name in dict.fromkeys(ours):
        out[(name, False)] = (_COLOURS[slot % 10], _MARKERS[slot % len(_MARKERS)])
        slot += 1
    by_published = {v: out[(k, False)] for k, v in counterparts.items() if (k, False) in out}
    for name in sorted(set(references), key=str.lower):
        if name.lower() in by_published:
            out[(name, True)] = by_published[name.lower()]
        else:
            out[(name, True)] = (_COLOURS[slot % 10], _MARKERS[slot % len(_MARKERS)])
            slot += 1
    return out


def _values(curve: Curve, metric: str) -> Optional[np.ndarray]:
    return curve.psnr if metric == "psnr" else curve.ms_ssim_db


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
        metric: "psnr" (y = PSNR in dB) or "ms_ssim_db" (y = -10 log10(1 - MS-SSIM) in dB).
            Curves without values for the metric (``psnr`` or ``ms_ssim`` None) are left out.
        title: axes title.
        max_bpp: right end of the x axis in bpp (x starts at 0). Points beyond it stay in the
            line data and are clipped by the axes. None: the largest plotted rate + 3 %.
        counterparts: our codec name -> name of the published curve of the same codec, drawn
            in the same colour and marker (``styles_for``).

    Returns:
        A ``matplotlib.figure.Figure`` (Agg canvas) with one axes. The y range is fitted to
        the data visible in [0, max_bpp], with a 4 % margin.

    Raises:
        ValueError: unknown metric, max_bpp <= 0, or no curve has values for the metric.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {sorted(METRICS)}")
    if max_bpp is not None and not max_bpp > 0:
        raise ValueError(f"max_bpp must be positive, got {max_bpp}")
    styles = styles_for([c.name for c in ours], [c.name for c in references], counterparts)
    drawn = [(c, False) for c in ours if _values(c, metric) is not None]
    drawn += [(c, True) for c in references if _values(c, metric) is not None]
    if not drawn:
        raise ValueError(f"no curve has {metric} values to plot")
    xmax = max_bpp if max_bpp is not None else 1.03 * max(float(c.bpp.max()) for c, _ in drawn)

    fig = Figure(figsize=FIGSIZE_IN)
    ax = fig.add_subplot()
    visible = []
    for curve, published in drawn:
        y = _values(curve, metric)
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
    ax.set_ylabel(METRICS[metric])
    ax.set_title(title)
    ax.grid(True, which="major", linewidth=0.5, alpha=0.5)
    if len(drawn) <= MAX_LEGEND_INSIDE:
        ax.legend(loc="lower right", fontsize="small", framealpha=0.9)
    else:
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", frameon=False)
    return fig


def save_figure(fig: Figure, out_stem: Path) -> List[Path]:
    """Write ``fig`` to ``out_stem.png`` (200 dpi) and ``out_stem.pdf`` (vector), each atomically,
    tight bounding box, no timestamp / software metadata. Returns [png_path, pdf_path]."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(_RC):
        for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=PNG_DPI, bbox_inches="tight", metadata=meta)
            paths.append(write_bytes_atomic(out_stem.with_name(f"{out_stem.name}.{fmt}"), buf.getvalue()))
    return paths


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
