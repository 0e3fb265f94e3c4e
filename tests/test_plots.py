"""Tests for benchmark.plots (rate-distortion figures, the family styles, the figure layout)."""

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.analysis.references import Curve, read_curve
from benchmark.plots.rd import PNG_DPI, Series, build_rd_figure, plot_rd, zoom_bpp
from benchmark.plots.rdp import saturation_bpp
from benchmark.plots.styles import EXTRA_COLOURS, FAMILIES, PUBLISHED_GROUP, Entry, family_of, figure_key

KODAK = "raw.githubusercontent.com/InterDigitalInc/CompressAI/869a9f5d4126d015b7de8f203fe60ee9e1608193/results/image/kodak"
VTM = f"{KODAK}/vtm.json"

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


def _lines(fig):
    """label -> Line2D of every labelled curve of the figure's first axes (legend labels live in
    the legend panel: the curves are matched by style)."""
    return [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata())]


def _legend_texts(fig):
    return {t.get_text() for leg in fig.legends for t in leg.get_texts()}


def _legend_titles(fig):
    return [leg.get_title().get_text() for leg in fig.legends]


def test_plot_rd_writes_png_and_pdf(tmp_path):
    paths = plot_rd(OURS, _references(), "psnr", tmp_path / "sub" / "kodak_psnr", title="Kodak", max_bpp=2.0,
                    pdf_stem=tmp_path / "pdf" / "kodak_psnr")
    png, pdf = paths
    assert (png, pdf) == (tmp_path / "sub" / "kodak_psnr.png", tmp_path / "pdf" / "kodak_psnr.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with Image.open(png) as im:
        im.load()
        w, h = im.size
    # Print size: at most 7.5 in wide at PNG_DPI, legend included; the font sizes are print sizes.
    assert 4 * PNG_DPI < w <= 7.5 * PNG_DPI and h > 2.5 * PNG_DPI
    assert not list(png.parent.glob(".*.tmp"))


def test_same_input_gives_same_bytes(tmp_path):
    a = plot_rd(OURS, _references(), "psnr", tmp_path / "a", title="t", max_bpp=2.0)
    b = plot_rd(OURS, _references(), "psnr", tmp_path / "b", title="t", max_bpp=2.0)
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa.suffix


def test_line_styles_legend_and_axes():
    refs = _references()
    fig = build_rd_figure(OURS, refs, "psnr", title="Kodak", max_bpp=2.0)
    ax = fig.axes[0]
    assert len(fig.axes) == 1  # no learned codec: no low-rate panel
    solid = [ln for ln in _lines(fig) if ln.get_linestyle() == "-"]
    dashed = [ln for ln in _lines(fig) if ln.get_linestyle() == "--"]
    assert len(solid) == len(OURS) and len(dashed) == len(refs)
    assert all(ln.get_marker() not in (None, "None", "") for ln in solid + dashed)
    assert max(ln.get_linewidth() for ln in dashed) < min(ln.get_linewidth() for ln in solid)
    assert _legend_texts(fig) >= {"codec-a", "codec-b"} | {r.name for r in refs}
    assert PUBLISHED_GROUP in _legend_titles(fig)
    assert ax.get_xlabel() == "Rate [bpp]" and ax.get_ylabel() == "PSNR (RGB) [dB]"
    assert ax.get_xlim() == (0.0, 2.0)
    # The 2.5 bpp point is beyond the axis but still in the line data (clipped, not dropped).
    assert any(2.5 in ln.get_xdata() for ln in solid)
    # y range covers every visible point, and not the hidden 40 dB one.
    lo, hi = ax.get_ylim()
    vis = [y for c in OURS + refs for x, y in zip(c.bpp, c.get("psnr")) if x <= 2.0]
    assert lo < min(vis) and max(vis) < hi
    ax = build_rd_figure(OURS, [PSNR_ONLY], "psnr", title="t", max_bpp=2.0).axes[0]
    lo, hi = ax.get_ylim()
    at_edge = np.interp(2.0, OURS[0].bpp, OURS[0].get("psnr"))  # where codec-a leaves the axes
    assert lo < 26.5 and at_edge < hi < 40.0
    assert all(g.get_visible() for g in ax.get_xgridlines() + ax.get_ygridlines())


def test_ms_ssim_figure_leaves_out_references_without_ms_ssim():
    fig = build_rd_figure(OURS, _references(), "ms_ssim_db", title="t")
    assert "paper-x" not in _legend_texts(fig) and {"codec-a", "codec-b"} <= _legend_texts(fig)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "MS-SSIM (RGB) [dB]"
    a = next(ln for ln in _lines(fig) if ln.get_xdata()[0] == 0.1)
    np.testing.assert_allclose(a.get_ydata(), -10 * np.log10(1 - OURS[0].get("ms_ssim")))
    # max_bpp None: the x axis ends just past the largest plotted rate.
    largest = max(float(ln.get_xdata().max()) for ln in _lines(fig))
    assert largest < ax.get_xlim()[1] <= 1.05 * largest


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(KeyError, match="unknown metric 'ssim'"):
        build_rd_figure(OURS, [], "ssim", title="t")
    with pytest.raises(ValueError, match="no curve has ms_ssim_db"):
        build_rd_figure([], [PSNR_ONLY], "ms_ssim_db", title="t")
    with pytest.raises(ValueError, match="max_bpp"):
        plot_rd(OURS, [], "psnr", tmp_path / "x", title="t", max_bpp=0)


# ---- one colour and marker per family ----------------------------------------------------------

KODAK_OURS = [
    Entry("jpeg", "jpeg"), Entry("webp", "webp"), Entry("avif", "avif"), Entry("jpeg2000", "jpeg2000"),
    Entry("jpegxl", "jpegxl"), Entry("hevc", "hevc"),
    *(Entry(a, a, learned=True, group="Ours: trained here") for a in
      ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "dvae", "qres-vae")),
]
KODAK_PUBLISHED = ["JPEG", "WebP", "JPEG2000", "BPG 8b 444 x265 ycbcr", "AV1", "VTM", "bmshj2018-hyperprior",
                   "mbt2018-mean", "mbt2018", "cheng2020-anchor", "qres34m"]
KODAK_COUNTERPARTS = {"jpeg": "JPEG", "webp": "WebP", "jpeg2000": "JPEG2000", "avif": "AV1", "hevc": "BPG 8b 444 x265 ycbcr",
                      "bmshj2018-hyperprior": "bmshj2018-hyperprior", "mbt2018-mean": "mbt2018-mean", "mbt2018": "mbt2018",
                      "cheng2020-anchor": "cheng2020-anchor", "qres-vae": "qres34m"}


def test_a_codec_and_its_published_counterpart_share_colour_and_marker():
    key = figure_key(KODAK_OURS, KODAK_PUBLISHED, KODAK_COUNTERPARTS, "vtm")
    for ours, published in KODAK_COUNTERPARTS.items():
        a, b = key.style(ours), key.style(published, True)
        assert (a.colour, a.marker) == (b.colour, b.marker), ours
        assert (a.linestyle, b.linestyle) == ("-", "--")
    # The colour is the family's, fixed: the same in any run, whatever the order of the codecs.
    assert key.style("jpeg").colour == family_of("jpeg").colour == family_of("JPEG").colour
    reordered = figure_key(list(reversed(KODAK_OURS)), KODAK_PUBLISHED[::-1], KODAK_COUNTERPARTS, "vtm")
    assert all(reordered.style(e.name) == key.style(e.name) for e in KODAK_OURS)
    # VTM has no counterpart: its own family colour, which no codec of ours has.
    assert key.style("VTM", True).colour == family_of("vtm").colour
    assert key.published[:2] == ("JPEG", "WebP") and key.published[-1] == "VTM"  # legend order follows ours


def test_no_two_curves_of_a_figure_look_alike():
    key = figure_key(KODAK_OURS, KODAK_PUBLISHED, KODAK_COUNTERPARTS, "vtm")
    looks = [(s.colour, s.linestyle, s.marker) for s in key.styles.values()]
    assert len(set(looks)) == len(looks) == len(KODAK_OURS) + len(KODAK_PUBLISHED)
    # Our curves, and the published curves without a counterpart, have pairwise different colours.
    own = [s.colour for (n, pub), s in key.styles.items() if not pub or n == "VTM"]
    assert len(set(own)) == len(own)
    # Two codecs of one family (a JPEG variant) and curves of no known family: an extra colour each.
    key = figure_key([Entry("jpeg", "jpeg"), Entry("jpeg-444", "jpeg"), Entry("mine"), Entry("yours")],
                     ["JPEG", "HM", "BPG 8b 444 x265 ycbcr", "other"], {"jpeg": "JPEG"})
    looks = [(s.colour, s.linestyle, s.marker) for s in key.styles.values()]
    assert len(set(looks)) == len(looks)
    assert key.style("jpeg-444").colour in EXTRA_COLOURS and key.style("mine").colour in EXTRA_COLOURS
    assert key.style("HM", True).colour == family_of("hevc").colour  # first of its family: the family colour
    assert key.style("BPG 8b 444 x265 ycbcr", True).colour in EXTRA_COLOURS  # second of it: an extra one
    # The table itself: no two families share a colour or a colour and marker, none is an extra colour.
    colours = [f.colour for f in FAMILIES]
    assert len(set(colours)) == len(colours) and not set(colours) & set(EXTRA_COLOURS)
    assert len({f.key for f in FAMILIES}) == len(FAMILIES)
    assert all(a.marker != b.marker for a, b in itertools.pairwise(FAMILIES))


def test_drawn_figure_has_the_styles_of_the_key():
    ours = [Curve("jpeg", [0.2, 0.5, 1.0, 1.8], {"psnr": [25.0, 29.0, 33.0, 37.0]}, "f"),
            Curve("mbt2018", [0.1, 0.2, 0.3], {"psnr": [24.0, 25.0, 26.0]}, "f")]
    refs = [Curve("JPEG", [0.25, 0.6, 1.2], {"psnr": [25.5, 29.5, 33.5]}, "f"),
            Curve("mbt2018", [0.12, 0.3, 0.6], {"psnr": [29.0, 32.0, 35.0]}, "f"),
            Curve("cheng2020-anchor", [0.12, 0.3, 0.6], {"psnr": [29.5, 32.5, 35.5]}, "f"),
            Curve("VTM", [0.1, 0.5, 1.5], {"psnr": [28.0, 33.0, 39.0]}, "f")]
    key = figure_key([Entry("jpeg", "jpeg"), Entry("mbt2018", "mbt2018", learned=True, group="Ours: trained here",
                                                   detail="2.48M params")],
                     [r.name for r in refs], {"jpeg": "JPEG", "mbt2018": "mbt2018"}, "VTM")
    assert key.left_out == ("cheng2020-anchor",)  # a learned architecture the run does not have: not drawn
    fig = build_rd_figure(ours, refs, "psnr", title="t", max_bpp=2.0, key=key)
    for ax in fig.axes:
        looks = [(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in ax.get_lines() if len(ln.get_xdata())]
        assert len(looks) == 5 and len(set(looks)) == 5
        assert (key.style("mbt2018").colour, "-", key.style("mbt2018").marker) in looks
        assert (key.style("mbt2018").colour, "--", key.style("mbt2018").marker) in looks
    # How each was obtained, in the legend: the group title and the detail.
    assert "mbt2018 (2.48M params)" in _legend_texts(fig) and "Ours: trained here" in _legend_titles(fig)
    assert "cheng2020-anchor" not in _legend_texts(fig)


# ---- layout: low-rate panel, axis limits -------------------------------------------------------


def test_low_rate_panel_zooms_on_the_learned_codecs():
    ours = [Curve("jpeg", [0.2, 0.5, 1.0, 1.8], {"psnr": [25.0, 29.0, 33.0, 37.0]}, "f"),
            Curve("learned", [0.1, 0.2, 0.43], {"psnr": [24.0, 25.0, 26.0]}, "f")]
    key = figure_key([Entry("jpeg", "jpeg"), Entry("learned", learned=True)])
    fig = build_rd_figure(ours, [], "psnr", title="t", max_bpp=2.0, key=key)
    full, low = fig.axes
    assert full.get_xlim() == (0.0, 2.0) and low.get_xlim() == (0.0, 0.5)  # 1.15 x 0.43 = 0.49 -> 0.5
    lo, hi = low.get_ylim()
    assert lo < 24.0 and np.interp(0.5, [0.2, 0.5], [25.0, 29.0]) < hi < 33.0  # fitted to what is visible
    assert any(p.get_linestyle() == ":" for p in full.patches)  # the zoomed region, marked
    # Learned codecs spread over more than half the axis: one panel.
    assert zoom_bpp([Series("learned", False, np.array([0.1, 0.95]), np.array([1.0, 2.0]))], ["learned"], 2.0) is None
    assert zoom_bpp([Series("jpeg", False, np.array([0.1, 0.3]), np.array([1.0, 2.0]))], [], 2.0) is None


def test_saturation_limits_the_rate_axis_of_saturating_metrics():
    x = np.array([0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    fast = Series("a", False, x, np.array([0.6, 0.8, 0.9, 0.95, 0.97, 0.98, 0.985]))
    slow = Series("b", False, x, np.array([0.4, 0.6, 0.8, 0.9, 0.95, 0.975, 0.98]))
    r = saturation_bpp([fast, slow], 2.0)
    assert 0.75 <= r <= 1.25  # both curves within 5 % of the range (0.58) of their end above r
    linear = Series("c", False, x, x * 10)
    assert saturation_bpp([linear], 2.0) == 2.0  # PSNR-like: never saturates


def test_legend_parameter_counts_have_at_most_two_decimals():
    """One format for every legend: millions, three significant digits but at most two decimals,
    trailing zeros dropped (dvae's 752,345 parameters were "0.752M" beside "2.48M"); models
    under 0.1M keep two significant digits."""
    from benchmark.analysis.origins import _millions

    assert _millions([752_345]) == "0.75M params"
    assert _millions([2_481_000]) == "2.48M params"
    assert _millions([3_104_000]) == "3.1M params"
    assert _millions([34_040_000]) == "34M params"
    assert _millions([123_400_000]) == "123M params"
    assert _millions([45_210]) == "0.045M params"
    assert _millions([4_512]) == "0.0045M params"
    assert _millions([1_281_000, 2_481_000]) == "1.28M-2.48M params"


def test_legends_say_how_each_learned_model_was_obtained():
    from benchmark.analysis.origins import codec_origins
    from benchmark.config import load_config
    from benchmark.report import figure_entries

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "runs/kodak/params.yaml")
    origins = codec_origins(cfg, ["jpeg", "qres-vae", "mbt2018-mean"])
    assert (origins["jpeg"].family, origins["jpeg"].learned, origins["jpeg"].detail) == ("jpeg", False, "")
    assert origins["qres-vae"].group == "Ours: trained here (cpu budget, 800 steps)"
    assert origins["qres-vae"].detail == "1.61M params" and origins["mbt2018-mean"].detail == "1.76M params"
    published = codec_origins(load_config(root / "runs/kodak-published/params.yaml"), ["qres34m"])["qres34m"]
    assert (published.group, published.detail, published.family) == ("Ours: published weights", "34M params", "qres34m")
    entries = figure_entries(["jpeg", "qres-vae"], origins)
    key = figure_key(entries, ["qres34m"], {"qres-vae": "qres34m"})
    groups = dict(key.legend_groups(["jpeg", "qres-vae"], ["qres34m"]))
    assert [label for _, label in groups["Ours: trained here (cpu budget, 800 steps)"]] == ["qres-vae (1.61M params)"]
    assert [label for _, label in groups[PUBLISHED_GROUP]] == ["qres34m"]
    assert key.style("qres34m", True).colour == key.style("qres-vae").colour == family_of("qres-vae").colour
