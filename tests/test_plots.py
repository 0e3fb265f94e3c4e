"""Tests for benchmark.plots.rd (rate-distortion figures)."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.analysis.references import Curve, read_curve
from benchmark.plots.rd import FIGSIZE_IN, PNG_DPI, build_rd_figure, plot_rd, styles_for

VTM = ("raw.githubusercontent.com/InterDigitalInc/CompressAI/"
       "869a9f5d4126d015b7de8f203fe60ee9e1608193/results/image/kodak/vtm.json")

OURS = [
    Curve("codec-a", [0.1, 0.3, 0.6, 1.2, 2.5], {"psnr": [27.0, 30.5, 33.0, 36.0, 40.0],
          "ms_ssim": [0.90, 0.95, 0.975, 0.99, 0.996]}, "fake"),
    Curve("codec-b", [0.15, 0.4, 0.8, 1.6], {"psnr": [26.5, 29.8, 32.4, 35.2],
          "ms_ssim": [0.89, 0.94, 0.97, 0.985]}, "fake"),
]
# A published curve without MS-SSIM (like CompressAI's paper-*.json files).
PSNR_ONLY = Curve("paper-x", [0.12, 0.35, 0.7], {"psnr": [28.0, 31.5, 34.0]}, "fake")


def _references():
    refs = [PSNR_ONLY]
    root = os.environ.get("BENCHMARK_MIRROR")
    if root and (Path(root) / VTM).exists():
        refs.append(read_curve(Path(root) / VTM))
    return refs


def test_plot_rd_writes_png_and_pdf(tmp_path):
    paths = plot_rd(OURS, _references(), "psnr", tmp_path / "sub" / "kodak_psnr",
                    title="Kodak", max_bpp=2.0)
    png, pdf = paths
    assert (png.name, pdf.name) == ("kodak_psnr.png", "kodak_psnr.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        im.load()
        w, h = im.size
    # Figure size at PNG_DPI, give or take what the tight bounding box trims or adds.
    assert abs(w - FIGSIZE_IN[0] * PNG_DPI) < 0.25 * FIGSIZE_IN[0] * PNG_DPI
    assert abs(h - FIGSIZE_IN[1] * PNG_DPI) < 0.25 * FIGSIZE_IN[1] * PNG_DPI
    assert not list(png.parent.glob(".*.tmp"))


def test_same_input_gives_same_bytes(tmp_path):
    a = plot_rd(OURS, _references(), "psnr", tmp_path / "a", title="t", max_bpp=2.0)
    b = plot_rd(OURS, _references(), "psnr", tmp_path / "b", title="t", max_bpp=2.0)
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa.suffix


def test_line_styles_labels_and_axes():
    refs = _references()
    fig = build_rd_figure(OURS, refs, "psnr", title="Kodak", max_bpp=2.0)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert set(lines) == {"codec-a", "codec-b"} | {f"{r.name} (published)" for r in refs}
    for c in OURS:
        ln = lines[c.name]
        assert ln.get_linestyle() == "-" and ln.get_marker() not in (None, "None", "")
    for r in refs:
        ln = lines[f"{r.name} (published)"]
        assert ln.get_linestyle() == "--"
        assert ln.get_linewidth() < lines["codec-a"].get_linewidth()
    assert ax.get_xlabel() == "Rate [bpp]" and ax.get_ylabel() == "PSNR (RGB) [dB]"
    assert ax.get_xlim() == (0.0, 2.0)
    # The 2.5 bpp point is beyond the axis but still in the line data (clipped, not dropped).
    assert 2.5 in lines["codec-a"].get_xdata()
    # y range covers every visible point, and not the hidden 40 dB one.
    lo, hi = ax.get_ylim()
    vis = [y for c in OURS + refs for x, y in zip(c.bpp, c.get("psnr")) if x <= 2.0]
    assert lo < min(vis) and max(vis) < hi
    ax = build_rd_figure(OURS, [PSNR_ONLY], "psnr", title="t", max_bpp=2.0).axes[0]
    lo, hi = ax.get_ylim()
    at_edge = np.interp(2.0, OURS[0].bpp, OURS[0].get("psnr"))  # where codec-a leaves the axes
    assert lo < 26.5 and at_edge < hi < 40.0
    assert ax.get_legend() is not None
    assert all(g.get_visible() for g in ax.get_xgridlines() + ax.get_ygridlines())


def test_ms_ssim_figure_leaves_out_references_without_ms_ssim():
    fig = build_rd_figure(OURS, _references(), "ms_ssim_db", title="t")
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "paper-x (published)" not in labels and {"codec-a", "codec-b"} <= set(labels)
    assert ax.get_ylabel() == "MS-SSIM (RGB) [dB]"
    a = next(ln for ln in ax.get_lines() if ln.get_label() == "codec-a")
    np.testing.assert_allclose(a.get_ydata(), -10 * np.log10(1 - OURS[0].get("ms_ssim")))
    # max_bpp None: the x axis ends just past the largest plotted rate.
    largest = max(float(ln.get_xdata().max()) for ln in ax.get_lines())
    assert largest < ax.get_xlim()[1] <= 1.05 * largest


def test_styles_distinct_and_counterparts_shared():
    s = styles_for(["jpeg", "webp", "avif"], ["JPEG", "VTM", "mbt2018", "qres34m"], {"jpeg": "JPEG"})
    assert s[("JPEG", True)] == s[("jpeg", False)]  # a codec and its published curve match
    others = [s[k] for k in s if k != ("JPEG", True)]
    assert len({c for c, _ in others}) == len(others) == 6  # every other curve has its own colour
    assert styles_for(["b", "a"]) == styles_for(["b", "a", "b"])  # order given, duplicates ignored
    fig_psnr = build_rd_figure(OURS, [PSNR_ONLY], "psnr", title="t")
    fig_ms = build_rd_figure(OURS, [PSNR_ONLY], "ms_ssim_db", title="t")
    col = lambda fig: {ln.get_label(): ln.get_color() for ln in fig.axes[0].get_lines()}
    assert col(fig_psnr)["codec-b"] == col(fig_ms)["codec-b"]


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(KeyError, match="unknown metric 'ssim'"):
        build_rd_figure(OURS, [], "ssim", title="t")
    with pytest.raises(ValueError, match="no curve has ms_ssim_db"):
        build_rd_figure([], [PSNR_ONLY], "ms_ssim_db", title="t")
    with pytest.raises(ValueError, match="max_bpp"):
        plot_rd(OURS, [], "psnr", tmp_path / "x", title="t", max_bpp=0)
