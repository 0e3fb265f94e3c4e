"""Tests for benchmark.analysis.bdrate (Bjontegaard deltas, VCEG-M33)."""

import math

import numpy as np
import pytest

from benchmark.analysis.bdrate import METHODS, BDResult, bd_metrics, bd_psnr, bd_rate

# Published reference values. RD points: JCT-VC contribution JCTVC-E137 (Geneva, 2011,
# http://phenix.it-sudparis.eu/jct/doc_end_user/documents/5_Geneva/wg11/JCTVC-E137-v1.zip),
# rate in kbit/s and Y-PSNR in dB. Expected BD-rates: Netflix VMAF,
# python/test/bd_rate_calculator_test.py, class BDrateCalculatorJCTVCTest, which checks its
# JCT-VC-style piecewise-cubic (PCHIP) BD-rate against them as fractions with
# assertAlmostEqual(places=4), i.e. |error| < 5e-5 = 0.005 %. Same data and values are used in
# Android CTS (hostsidetests/mediapc/videoencodingquality/bdrate BdRateCalculatorTests).
JCTVC_E137 = [
    (  # (anchor rate, anchor PSNR, test rate, test PSNR, expected BD-rate %)
        [108048.8736, 61279.976, 33905.6656, 18883.6928], [43.6471, 40.3953, 37.247, 34.2911],
        [108061.2784, 61299.9936, 33928.7472, 18910.912], [43.6768, 40.4232, 37.2761, 34.3147],
        -0.00465215420752807 * 100,
    ),
    (
        [40433.8848, 7622.7456, 2394.488, 1017.6184], [37.5761, 35.3756, 33.8977, 32.0603],
        [40370.12, 7587.0024, 2390.0944, 1017.0984], [37.5982, 35.4025, 33.9194, 32.0822],
        -0.018779823450567612 * 100,
    ),
]
VMAF_TOL_PCT = 5e-5 * 100

# A realistic image-codec curve (bpp, PSNR dB) with 6 points, concave in log-rate.
BPP = np.array([0.12, 0.19, 0.30, 0.45, 0.67, 0.95])
PSNR = np.array([27.6, 29.2, 30.9, 32.6, 34.4, 36.1])


@pytest.mark.parametrize("case", JCTVC_E137)
def test_pchip_matches_published_jctvc_values(case):
    ra, da, rt, dt, expected = case
    assert bd_rate(ra, da, rt, dt, method="pchip") == pytest.approx(expected, abs=VMAF_TOL_PCT)


def _vceg_m33_cubic(ra, da, rt, dt):
    """Independent VCEG-M33 formula: cubic fit of log10(rate) against PSNR, integrated over the
    common PSNR interval. Checks that method="cubic" is the original polynomial fit."""
    lo, hi = max(min(da), min(dt)), min(max(da), max(dt))
    pa = np.polyint(np.polyfit(da, np.log10(ra), 3))
    pt = np.polyint(np.polyfit(dt, np.log10(rt), 3))
    avg = ((np.polyval(pt, hi) - np.polyval(pt, lo)) - (np.polyval(pa, hi) - np.polyval(pa, lo))) / (hi - lo)
    return (10 ** avg - 1) * 100


@pytest.mark.parametrize("case", JCTVC_E137)
def test_cubic_is_the_vceg_m33_polynomial_fit(case):
    ra, da, rt, dt, _ = case
    assert bd_rate(ra, da, rt, dt, method="cubic") == pytest.approx(
        _vceg_m33_cubic(ra, da, rt, dt), abs=1e-9)


def test_methods_differ_on_real_data():
    # The three interpolations give different numbers on JCTVC-E137 pair 2; a wrong name
    # mapping (e.g. everything going to pchip) would make them equal.
    ra, da, rt, dt, _ = JCTVC_E137[1]
    values = {m: bd_rate(ra, da, rt, dt, method=m) for m in METHODS}
    assert len({round(v, 6) for v in values.values()}) == 3


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method):
    r = bd_metrics(BPP, PSNR, BPP, PSNR, method=method)
    assert r.bd_rate_pct == pytest.approx(0.0, abs=1e-9)
    assert r.bd_psnr_db == pytest.approx(0.0, abs=1e-9)
    assert r.note == ""


@pytest.mark.parametrize("method", METHODS)
def test_rates_scaled_by_0_9_give_minus_10_percent(method):
    # log10 rate shifts by log10(0.9) at every quality: BD-rate = 0.9 - 1 = -10 % exactly.
    assert bd_rate(BPP, PSNR, 0.9 * BPP, PSNR, method=method) == pytest.approx(-10.0, abs=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_psnr_plus_1db_gives_plus_1db(method):
    assert bd_psnr(BPP, PSNR, BPP, PSNR + 1.0, method=method) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_sign_convention_and_antisymmetry(method):
    # Test better (1 dB more at the same rate): fewer bits needed, positive BD-PSNR.
    r = bd_metrics(BPP, PSNR, BPP, PSNR + 1.0, method=method)
    assert r.bd_rate_pct < 0 and r.bd_psnr_db > 0
    back = bd_metrics(BPP, PSNR + 1.0, BPP, PSNR, method=method)
    # BD-rate in log domain is antisymmetric: (1 + a)(1 + b) = 1.
    assert (1 + r.bd_rate_pct / 100) * (1 + back.bd_rate_pct / 100) == pytest.approx(1.0, abs=1e-9)
    assert back.bd_psnr_db == pytest.approx(-r.bd_psnr_db, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_point_order_does_not_matter(method):
    ra, da, rt, dt, _ = JCTVC_E137[1]
    rng = np.random.default_rng(0)
    pa, pt = rng.permutation(4), rng.permutation(4)
    shuffled = bd_metrics(np.array(ra)[pa], np.array(da)[pa], np.array(rt)[pt], np.array(dt)[pt], method)
    ordered = bd_metrics(ra, da, rt, dt, method)
    assert shuffled.bd_rate_pct == pytest.approx(ordered.bd_rate_pct, abs=1e-12)
    assert shuffled.bd_psnr_db == pytest.approx(ordered.bd_psnr_db, abs=1e-12)


def test_dominated_and_duplicate_points_are_dropped():
    # Add a duplicate-rate point with lower quality and a point that costs more bits for less
    # quality; the result must equal that of the clean curve.
    dirty_r = np.append(BPP, [BPP[2], 0.5])
    dirty_d = np.append(PSNR, [PSNR[2] - 0.3, 31.0])  # 31.0 < PSNR at 0.45 bpp
    clean = bd_metrics(BPP, PSNR, 0.9 * BPP, PSNR)
    dirty = bd_metrics(dirty_r, dirty_d, 0.9 * BPP, PSNR)
    assert dirty.n_anchor == BPP.size
    assert dirty.bd_rate_pct == pytest.approx(clean.bd_rate_pct, abs=1e-12)


def test_non_overlapping_quality_gives_nan_with_note():
    r = bd_metrics(BPP, PSNR, BPP, PSNR + 20.0)
    assert math.isnan(r.bd_rate_pct)
    assert r.overlap is None
    assert "quality ranges do not overlap" in r.note
    assert r.bd_psnr_db == pytest.approx(20.0, abs=1e-9)  # same rates: BD-PSNR still defined
    assert math.isnan(bd_rate(BPP, PSNR, BPP, PSNR + 20.0))


def test_non_overlapping_rates_give_nan_bd_psnr():
    r = bd_metrics(BPP, PSNR, BPP * 100, PSNR)
    assert math.isnan(r.bd_psnr_db)
    assert "rate ranges do not overlap" in r.note


def test_overlap_range_is_reported():
    r = bd_metrics(BPP, PSNR, BPP, PSNR + 1.0)
    assert r.overlap == (pytest.approx(PSNR[0] + 1.0), pytest.approx(PSNR[-1]))
    assert isinstance(r, BDResult) and r.method == "pchip"


def test_too_few_points_for_cubic_gives_nan_with_note():
    r = bd_metrics(BPP[:3], PSNR[:3], BPP[:3], PSNR[:3] + 0.5, method="cubic")
    assert math.isnan(r.bd_rate_pct) and math.isnan(r.bd_psnr_db)
    assert "too few" in r.note and (r.n_anchor, r.n_test) == (3, 3)
    # pchip works with 3 points.
    assert bd_psnr(BPP[:3], PSNR[:3], BPP[:3], PSNR[:3] + 0.5, method="pchip") == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize(
    "args, match",
    [
        ((BPP, PSNR[:-1], BPP, PSNR), "anchor: 6 rates but 5"),
        ((BPP, PSNR, BPP, PSNR[:-1]), "test: 6 rates but 5"),
        ((np.where(BPP == BPP[0], 0.0, BPP), PSNR, BPP, PSNR), "positive"),
        ((BPP, PSNR, -BPP, PSNR), "positive"),
        ((BPP, np.where(PSNR == PSNR[1], np.nan, PSNR), BPP, PSNR), "finite"),
        ((BPP, PSNR, np.where(BPP == BPP[1], np.nan, BPP), PSNR), "finite"),
    ],
)
def test_invalid_input_raises(args, match):
    with pytest.raises(ValueError, match=match):
        bd_metrics(*args)


def test_unknown_method_raises():
    with pytest.raises(ValueError, match="unknown BD interpolation method"):
        bd_rate(BPP, PSNR, BPP, PSNR, method="linear")
