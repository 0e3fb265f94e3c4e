"""BD statistics over images (benchmark.analysis.bdstats, bdtable): per-image BD-rates, wins,
the seeded bootstrap interval, the minimum-overlap rule, and one MS-SSIM dB definition."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.bdrate import bd_metrics
from benchmark.analysis.bdstats import bd_rate_stats, curve_points, image_grid, resample_weights
from benchmark.analysis.bdtable import bd_markdown, bd_table, metrics_json
from benchmark.analysis.references import Curve
from benchmark.config import ReportConfig
from benchmark.metrics.base import METRICS
from benchmark.metrics.distortion import to_db
from benchmark.results import summarize

PSNR, MS_SSIM_DB = METRICS.get("psnr"), METRICS.get("ms_ssim_db")
COLUMNS = ["psnr", "ms_ssim", "ms_ssim_db"]


def synthetic_rows(codec, factors, qualities, seed=0, n_images=12):
    """Per-image rows of a JPEG-like codec on ``n_images`` images of different difficulty: image
    i reaches PSNR q at bpp = base_i * 2**((q - 30) / 4) (4 dB per doubling, as JPEG on Kodak)
    times ``factors[i]`` (the codec's rate relative to the anchor on that image), with a little
    noise; MS-SSIM dB follows PSNR at 0.9 dB per dB."""
    rng = np.random.default_rng(seed)
    base = np.exp(np.linspace(np.log(0.5), np.log(1.6), n_images))
    rows = []
    for i in range(n_images):
        for k, q in enumerate(qualities):
            psnr = q + rng.normal(0, 0.05) + 0.3 * i / n_images
            bpp = base[i] * 2 ** ((q - 30) / 4) * factors[i] * (1 + rng.normal(0, 0.01))
            msdb = 0.9 * (psnr - 30) + 14 + rng.normal(0, 0.05)
            ms = 1 - 10 ** (-msdb / 10)
            rows.append({"dataset": "syn", "codec": codec, "rate_param": "q", "rate_point": k, "image": f"im{i:02d}",
                         "bpp": bpp, "psnr": psnr, "ms_ssim": ms, "ms_ssim_db": msdb, "encode_s": 0.0, "decode_s": 0.0})
    return pd.DataFrame(rows)


QUALITIES = [26, 28, 30, 32, 34, 36]
N = 12


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(7)
    better = 0.8 * (1 + rng.normal(0, 0.05, N))  # about 20 % fewer bits, image by image
    better[3] = 1.15  # one image where the test loses
    return pd.concat([
        synthetic_rows("anchor", np.ones(N), QUALITIES, seed=1, n_images=N),
        synthetic_rows("test", better, [27, 29, 31, 33, 35], seed=2, n_images=N),
    ], ignore_index=True), better


def _grids(df):
    return image_grid(df, "anchor", COLUMNS), image_grid(df, "test", COLUMNS)


def test_bootstrap_is_seeded_reproducible_and_contains_the_point_estimate(rows):
    df, factors = rows
    anchor, test = _grids(df)
    for metric in (PSNR, MS_SSIM_DB):
        # The point estimate: BD-rate of the mean curves, as the report computes it from the summary.
        ra, qa = curve_points(anchor, metric)
        rt, qt = curve_points(test, metric)
        point = bd_metrics(ra[0], qa[0], rt[0], qt[0], "pchip").bd_rate_pct
        s1 = bd_rate_stats(anchor, test, metric, "pchip", min_quality_overlap=1.0, resamples=300, seed=5)
        s2 = bd_rate_stats(anchor, test, metric, "pchip", min_quality_overlap=1.0, resamples=300, seed=5)
        s3 = bd_rate_stats(anchor, test, metric, "pchip", min_quality_overlap=1.0, resamples=300, seed=6)
        assert (s1.ci_low_pct, s1.ci_high_pct) == (s2.ci_low_pct, s2.ci_high_pct)  # same seed, same interval
        assert (s1.ci_low_pct, s1.ci_high_pct) != (s3.ci_low_pct, s3.ci_high_pct)  # the seed is used
        assert s1.ci_reason == "" and s1.ci_low_pct < point < s1.ci_high_pct
        assert -30 < s1.ci_low_pct and s1.ci_high_pct < -10  # around the true -20 %
        # Per image: each image's own curve against the anchor's on that image.
        assert s1.images_compared == N and s1.wins == N - 1 and s1.win_fraction == pytest.approx((N - 1) / N)
        assert s1.per_image_pct[3] > 0 and np.allclose(s1.per_image_pct, 100 * (factors - 1), atol=3.0)


def test_resamples_are_images_drawn_with_replacement():
    w = resample_weights(7, 50, seed=0)
    assert w.shape == (50, 7) and np.all(w.sum(axis=1) == 7) and np.all(w == np.round(w))
    assert np.array_equal(w, resample_weights(7, 50, seed=0))


def test_curve_points_are_the_summary_means(rows):
    df, _ = rows
    grid = image_grid(df, "test", COLUMNS)
    s = summarize(df[df.codec == "test"]).sort_values("rate_point")
    bpp, q = curve_points(grid, MS_SSIM_DB)
    assert np.allclose(bpp[0], s.bpp) and np.allclose(q[0], s.ms_ssim_db)
    # One MS-SSIM dB everywhere: the summary's MS-SSIM dB is the dB of the mean MS-SSIM, not the
    # mean of the per-image dB (which is larger: the dB transform is convex).
    assert np.allclose(s.ms_ssim_db, to_db(s.ms_ssim.to_numpy()))
    per_image_mean = df[df.codec == "test"].groupby("rate_point").ms_ssim_db.mean().to_numpy()
    assert np.all(per_image_mean > s.ms_ssim_db.to_numpy())


def test_too_little_overlap_is_na_with_the_reason():
    bpp = np.array([0.2, 0.4, 0.8, 1.6])
    anchor = np.array([26.0, 30.0, 34.0, 38.0])
    test = anchor - 11.5  # overlaps the anchor's quality range by 0.5 dB only
    r = bd_metrics(bpp, anchor, bpp * 0.9, test, "pchip", min_quality_overlap=1.0)
    assert math.isnan(r.bd_rate_pct) and "under the minimum 1" in r.rate_note and "0.5 wide" in r.rate_note
    assert math.isfinite(bd_metrics(bpp, anchor, bpp * 0.9, test, "pchip").bd_rate_pct)  # no minimum: a value
    # The rate overlap rule for BD-quality: rates overlapping by a ratio of 1.1 < 1.2.
    q = bd_metrics(bpp, anchor, bpp * 7.3, anchor, "pchip", min_rate_ratio=1.2)
    assert math.isnan(q.bd_psnr_db) and "under the minimum 1.2" in q.quality_note and math.isfinite(q.bd_rate_pct)


def test_report_tables_carry_na_reason_interval_and_wins(rows):
    df, _ = rows
    df = pd.concat([df, synthetic_rows("low", np.full(N, 0.5), [23.0, 24.5, 26.4], seed=3, n_images=N)], ignore_index=True)
    summary = summarize(df)
    curves = {c: Curve(c, s.bpp.to_numpy(), {"psnr": s.psnr.to_numpy(), "ms_ssim": s.ms_ssim.to_numpy()}, "test")
              for c, s in summary.sort_values("bpp").groupby("codec")}
    grids = {c: image_grid(df, c, COLUMNS) for c in curves}
    cfg = dataclasses.replace(ReportConfig(), bootstrap_resamples=100, bd_methods=("cubic", "pchip"))
    comps = [(curves[c], curves["anchor"], "ours") for c in ("anchor", "test", "low")]
    comps.append((curves["test"], Curve("Pub", curves["anchor"].bpp * 0.9, dict(curves["anchor"].values), "pub"), "published"))
    bd, per_image = bd_table(comps, cfg, grids)

    t = bd[(bd.codec == "test") & (bd.anchor == "anchor") & (bd.metric == "psnr") & (bd.method == "pchip")].iloc[0]
    assert t.bd_rate_ci_low_pct < t.bd_rate_pct < t.bd_rate_ci_high_pct and t.wins == N - 1 and t.images_compared == N
    assert t.quality_overlap_hi - t.quality_overlap_lo > 5 and t.rate_overlap_lo_bpp > 0
    low = bd[(bd.codec == "low") & (bd.metric == "psnr") & (bd.method == "pchip")].iloc[0]
    assert math.isnan(low.bd_rate_pct) and "under the minimum" in low.bd_rate_na_reason
    pub = bd[(bd.anchor_kind == "published") & (bd.method == "pchip")]
    assert pub.bd_rate_ci_low_pct.isna().all() and (pub.ci_na_reason == "published curve: no per-image values").all()
    assert set(per_image.image) == {f"im{i:02d}" for i in range(N)} and "anchor" not in set(per_image.codec)

    md = bd_markdown(bd, "syn", summary, cfg)
    row = next(line for line in md.splitlines() if line.startswith("| test |"))
    assert f"{t.bd_rate_pct:+.1f} [{t.bd_rate_ci_low_pct:+.1f}, {t.bd_rate_ci_high_pct:+.1f}]" in row and f"{N - 1}/{N}" in row
    assert "| low |" in md and "low, PSNR, BD-rate (pchip): quality overlap" in md and "95 % CI" in md

    metrics = metrics_json(df, bd, cfg.main_method)
    assert metrics["test"]["pchip"]["vs_anchor"]["psnr"]["bd_rate_pct"] == pytest.approx(t.bd_rate_pct, abs=1e-3)
    assert "bd_rate_pct" not in metrics["low"].get("pchip", {}).get("vs_anchor", {}).get("psnr", {})  # n/a: left out
    assert "vs_published_pub" in metrics["test"]["pchip"] and "vs_anchor" not in metrics["anchor"].get("pchip", {})
