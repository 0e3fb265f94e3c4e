"""Bjontegaard delta rate / delta quality between two rate-distortion curves.

Follows G. Bjontegaard, "Calculation of average PSNR differences between RD-curves",
ITU-T VCEG-M33 (2001): the rate axis is log10(rate), each curve is interpolated, and the
difference between the two interpolants is averaged over the interval where both curves have
data. The interpolation and integration are done by the ``bjontegaard`` package
(FAU-LMS, https://github.com/FAU-LMS/bjontegaard); this module only validates and cleans the
points and reports why a value cannot be computed.

Interpolation methods (``method``):

* ``"cubic"``: one cubic polynomial fitted to all points (the original VCEG-M33 method);
  needs at least 4 points per curve.
* ``"pchip"``: piecewise cubic Hermite (monotone) interpolation, as in the JCT-VC / JVET
  common-test-conditions spreadsheets (JCTVC-L1100, JVET-T2010); at least 2 points.
* ``"akima"``: Akima interpolation (Herglotz et al., ICIP 2022); at least 2 points.

Point cleaning (applied to each curve before interpolation): points are sorted by rate, and a
point is kept only if its quality is strictly higher than that of every cheaper point (for
equal rates the best quality is kept). This keeps the curve's Pareto front, which is strictly
increasing in both rate and quality as the interpolation needs; dominated points (more bits
for no more quality) are dropped.

Minimum overlap: a BD value is an average over the interval where both curves have data; over a
narrow interval it is decided by the ends of the two interpolants (mostly extrapolation of their
last segments) and swings by tens of percent when one point moves. ``bd_metrics`` therefore
takes a minimum width of the quality overlap for BD-rate (``min_quality_overlap``, in the
quality's unit) and of the rate overlap for BD-quality (``min_rate_ratio``: the overlap's top
rate over its bottom rate), below which the value is NaN with the reason; the report reads them
from ``report.min_overlap_quality`` and ``report.min_overlap_rate_ratio``. The ``bjontegaard``
package's own ``min_overlap`` (a fraction of the union of both ranges, and only a warning) is set
to 0: as a fraction of the union it would reject a test curve that lies wholly inside a wide
anchor's range (JPEG spans 17 dB on Kodak).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import bjontegaard
import numpy as np

METHODS = ("cubic", "pchip", "akima")
"""Accepted ``method`` names; they are also the ``bjontegaard`` package's names."""

MIN_POINTS = {"cubic": 4, "pchip": 2, "akima": 2}
"""Fewest points per curve (after cleaning) for each method."""



@dataclass(frozen=True)
class BDResult:
    """Both Bjontegaard deltas for one anchor/test pair.

    Attributes:
        bd_rate_pct: BD-rate in percent; negative means the test needs fewer bits for the
            same quality. NaN when it cannot be computed (see ``rate_note``).
        bd_psnr_db: BD-quality in the quality's unit (dB for PSNR or MS-SSIM in dB); positive
            means the test is better at the same rate. NaN when it cannot be computed (see
            ``quality_note``).
        method: interpolation method used ("cubic", "pchip" or "akima").
        overlap: (lo, hi) of the quality axis over which BD-rate is averaged, or None if the
            curves' quality ranges do not overlap (or a curve has too few points).
        n_anchor: anchor points used (after cleaning).
        n_test: test points used (after cleaning).
        rate_overlap: (lo, hi) of the rate axis over which BD-quality is averaged, or None.
        rate_note: why ``bd_rate_pct`` is NaN; empty when it is finite.
        quality_note: why ``bd_psnr_db`` is NaN; empty when it is finite.
    """

    bd_rate_pct: float
    bd_psnr_db: float
    method: str
    overlap: Optional[Tuple[float, float]]
    n_anchor: int
    n_test: int
    rate_overlap: Optional[Tuple[float, float]] = None
    rate_note: str = ""
    quality_note: str = ""

    @property
    def note(self) -> str:
        """Why a value is NaN (both reasons, once each); empty when both values are finite."""
        return "; ".join(dict.fromkeys(n for n in (self.rate_note, self.quality_note) if n))


def _clean(rate, dist, which: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate one curve and return its Pareto front sorted by rate (float64, shape (K,))."""
    r = np.asarray(rate, dtype=np.float64)
    d = np.asarray(dist, dtype=np.float64)
    if r.ndim != 1 or d.ndim != 1:
        raise ValueError(f"{which}: rate and quality must be 1-D sequences")
    if r.shape != d.shape:
        raise ValueError(f"{which}: {r.size} rates but {d.size} quality values")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(d))):
        raise ValueError(f"{which}: rates and quality values must be finite (no NaN/inf)")
    if np.any(r <= 0):
        raise ValueError(f"{which}: rates must be positive")
    order = np.lexsort((-d, r))  # by rate, then best quality first among equal rates
    keep = []
    for i in order:
        if not keep or (r[i] > r[keep[-1]] and d[i] > d[keep[-1]]):
            keep.append(i)
    return r[keep], d[keep]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown BD interpolation method {method!r}; use one of {METHODS}")


def _range_overlap(a: np.ndarray, b: np.ndarray) -> Optional[Tuple[float, float]]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    return (float(lo), float(hi)) if lo < hi else None


def bd_metrics(
    anchor_bpp: Sequence[float],
    anchor_dist: Sequence[float],
    test_bpp: Sequence[float],
    test_dist: Sequence[float],
    method: str = "pchip",
    *,
    min_quality_overlap: float = 0.0,
    min_rate_ratio: float = 1.0,
    quality: bool = True,
) -> BDResult:
    """BD-rate and BD-quality of a test curve against an anchor (VCEG-M33).

    Args:
        anchor_bpp, test_bpp: rates, shape (N,) / (M,), any positive unit (bpp here); any order.
        anchor_dist, test_dist: quality per point, same shapes, higher is better (PSNR in dB, or
            MS-SSIM in dB); any order.
        method: "cubic", "pchip" (default, JVET CTC) or "akima".
        min_quality_overlap: BD-rate is NaN when the curves' quality ranges overlap by less than
            this (in the quality's unit; 0: any overlap will do).
        min_rate_ratio: BD-quality is NaN when the rate overlap's top is less than this many
            times its bottom (1: any overlap will do).
        quality: False skips BD-quality (NaN, no note): half the time, for the bootstrap.

    Returns:
        A ``BDResult``. A value is NaN, with the reason in ``rate_note`` / ``quality_note``, when
        a curve has fewer than ``MIN_POINTS[method]`` points after cleaning (see module
        docstring), or the curves do not overlap, or overlap by less than the minimum, on the
        quality axis (BD-rate) or on the rate axis (BD-quality).

    Raises:
        ValueError: unknown method, a curve's rate and quality lengths differ, non-1-D input,
            NaN/inf values, a non-positive rate, a negative ``min_quality_overlap`` or a
            ``min_rate_ratio`` below 1.
    """
    _check_method(method)
    if not min_quality_overlap >= 0 or not min_rate_ratio >= 1:
        raise ValueError(f"min_quality_overlap must be >= 0 and min_rate_ratio >= 1, got {min_quality_overlap}, {min_rate_ratio}")
    ra, da = _clean(anchor_bpp, anchor_dist, "anchor")
    rt, dt = _clean(test_bpp, test_dist, "test")
    n_a, n_t = ra.size, rt.size
    need = MIN_POINTS[method]
    if n_a < need or n_t < need:
        note = (f"too few rate-distortion points for {method!r} (need {need} per curve after "
                f"dropping dominated points; anchor has {n_a}, test has {n_t})")
        return BDResult(math.nan, math.nan, method, None, n_a, n_t, None, note, note)

    overlap = _range_overlap(da, dt)
    rate_overlap = _range_overlap(ra, rt)
    rate_note = quality_note = ""
    bd_rate_pct = bd_psnr_db = math.nan
    kwargs = dict(method=method, require_matching_points=False, min_overlap=0)
    if overlap is None:
        rate_note = (f"quality ranges do not overlap (anchor {da.min():.4g}..{da.max():.4g}, "
                     f"test {dt.min():.4g}..{dt.max():.4g})")
    elif overlap[1] - overlap[0] < min_quality_overlap:
        rate_note = (f"quality overlap {overlap[0]:.4g}..{overlap[1]:.4g} is {overlap[1] - overlap[0]:.3g} wide, "
                     f"under the minimum {min_quality_overlap:g}")
    else:
        bd_rate_pct = float(bjontegaard.bd_rate(ra, da, rt, dt, **kwargs))
    if not quality:
        pass
    elif rate_overlap is None:
        quality_note = (f"rate ranges do not overlap (anchor {ra.min():.4g}..{ra.max():.4g}, "
                        f"test {rt.min():.4g}..{rt.max():.4g})")
    elif rate_overlap[1] / rate_overlap[0] < min_rate_ratio:
        quality_note = (f"rate overlap {rate_overlap[0]:.4g}..{rate_overlap[1]:.4g} spans a ratio of "
                        f"{rate_overlap[1] / rate_overlap[0]:.3g}, under the minimum {min_rate_ratio:g}")
    else:
        bd_psnr_db = float(bjontegaard.bd_psnr(ra, da, rt, dt, **kwargs))
    return BDResult(bd_rate_pct, bd_psnr_db, method, overlap, n_a, n_t, rate_overlap, rate_note, quality_note)


def bd_rate(anchor_bpp, anchor_dist, test_bpp, test_dist, method: str = "pchip", **minimum) -> float:
    """BD-rate in percent (negative: the test needs fewer bits at equal quality), VCEG-M33.

    Same arguments, cleaning and errors as ``bd_metrics``; returns NaN where that would
    (too few points, or quality ranges not overlapping enough). Use ``bd_metrics`` for the reason.
    """
    return bd_metrics(anchor_bpp, anchor_dist, test_bpp, test_dist, method, **minimum).bd_rate_pct


def bd_psnr(anchor_bpp, anchor_dist, test_bpp, test_dist, method: str = "pchip", **minimum) -> float:
    """BD-PSNR (BD-quality) in dB (positive: the test is better at equal rate), VCEG-M33.

    Same arguments, cleaning and errors as ``bd_metrics``; returns NaN where that would
    (too few points, or rate ranges not overlapping enough). Use ``bd_metrics`` for the reason.
    """
    return bd_metrics(anchor_bpp, anchor_dist, test_bpp, test_dist, method, **minimum).bd_psnr_db
