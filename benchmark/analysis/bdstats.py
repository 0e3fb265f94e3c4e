"""BD-rate statistics over the images of a data set: the BD-rate of each image, the fraction of
images on which a codec beats the anchor, and a bootstrap confidence interval over images.

Both codecs must be ours (per-image rows on the same images); a published curve has no
per-image values, so comparisons against one get none of these.

- **Per image**: each image's own RD curve (its bpp and quality at every rate point of the
  codec) against the anchor's curve on the same image, with the same method, point cleaning and
  minimum overlap as the mean-curve BD-rate (``benchmark.analysis.bdrate``). An image where the
  value is n/a (its curves overlap too little) is left out of the win count, and the count of
  images compared is reported with it.
- **Wins**: images whose per-image BD-rate is negative (the test needs fewer bits than the
  anchor for the same quality on that image), over the images compared.
- **Bootstrap** (percentile interval, Efron & Tibshirani 1993, ch. 13): what is resampled is the
  images. Resample b draws n of the n images with replacement
  (``numpy.random.default_rng(seed).integers(0, n, (B, n))``: the same draws for every pair of
  the report, so the intervals are reproducible and do not depend on the order of the pairs);
  for each resample both codecs' mean RD curves are recomputed over the drawn images exactly as
  the reported curves (mean bpp and mean quality per rate point; MS-SSIM dB as the dB of the
  mean MS-SSIM), and so is their BD-rate. Anchor and test share the draws (a paired bootstrap:
  the image content is the variability, and both codecs see the same images). The interval is
  the (1 - level)/2 and (1 + level)/2 quantiles of the B values. A resample needs only some
  overlap (the minimum overlap is a rule for the reported value); if any resample has no value
  the interval is n/a with the reason.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

import numpy as np
import pandas as pd

from benchmark.analysis.bdrate import bd_metrics
from benchmark.metrics.base import Metric


@dataclass(frozen=True)
class ImageGrid:
    """One codec's per-image rows as arrays over (image, rate point).

    Attributes:
        codec: the codec's name.
        images: image names, sorted; the rows of every array.
        rate_points: the codec's rate points, sorted; the columns.
        bpp: float64 (I, R); NaN where a row is missing.
        values: metric column -> float64 (I, R), every per-image metric column the rows have.
    """

    codec: str
    images: Tuple[str, ...]
    rate_points: Tuple[float, ...]
    bpp: np.ndarray
    values: Mapping[str, np.ndarray]

    def subset(self, images) -> "ImageGrid":
        """The grid restricted to ``images`` (in that order; each must be in ``self.images``)."""
        pos = {name: i for i, name in enumerate(self.images)}
        rows = [pos[name] for name in images]
        return ImageGrid(self.codec, tuple(images), self.rate_points, self.bpp[rows], {k: v[rows] for k, v in self.values.items()})


def image_grid(df: pd.DataFrame, codec: str, columns) -> ImageGrid:
    """The ``ImageGrid`` of ``codec`` from per-image rows (``benchmark.results`` schema) over the
    metric ``columns`` present in ``df``."""
    rows = df[df.codec == codec]
    images = tuple(sorted(rows.image.unique()))
    rate_points = tuple(sorted(rows.rate_point.unique()))

    def pivot(col: str) -> np.ndarray:
        p = rows.pivot(index="image", columns="rate_point", values=col).reindex(index=list(images), columns=list(rate_points))
        return p.to_numpy(dtype=np.float64)

    values = {c: pivot(c) for c in columns if c in rows.columns}
    return ImageGrid(codec, images, rate_points, pivot("bpp"), values)


def curve_points(grid: ImageGrid, metric: Metric, weights: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Mean RD curves over images weighted by ``weights`` (float (B, I): how often each image is
    drawn; None: every image once, B = 1): bpp (B, R) and the quality (B, R), the metric's mean,
    or for a ``curve_of_mean`` metric ``derive(mean of its base)``, negated for a
    lower-is-better metric so that quality grows with rate. The same definition as the
    reported curves (``benchmark.results.summarize``)."""
    w = np.ones((1, len(grid.images))) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1, keepdims=True)
    bpp = w @ grid.bpp / total
    if metric.curve_of_mean and metric.derive is not None:
        q = np.asarray(metric.derive(w @ grid.values[metric.base] / total), dtype=np.float64)
    else:
        q = w @ grid.values[metric.name] / total
    return bpp, (q if metric.higher_is_better else -q)


def _bd_rate_finite(ra, qa, rt, qt, method: str, min_quality_overlap: float):
    """``bd_metrics`` over the finite points of each curve (an exact reconstruction has an
    infinite PSNR); returns (BD-rate %, reason it is NaN)."""
    ka, kt = np.isfinite(ra) & np.isfinite(qa), np.isfinite(rt) & np.isfinite(qt)
    r = bd_metrics(ra[ka], qa[ka], rt[kt], qt[kt], method, min_quality_overlap=min_quality_overlap, quality=False)
    return r.bd_rate_pct, r.rate_note


@dataclass(frozen=True)
class BDStats:
    """Per-image BD-rates, wins and the bootstrap interval for one (test, anchor, metric, method).

    Attributes:
        images: the images both codecs have (sorted).
        per_image_pct: BD-rate (%) per image of ``images``; NaN where n/a.
        per_image_reasons: why each NaN value is n/a ("" where the value exists).
        images_compared: images with a per-image value.
        wins: images with a negative per-image BD-rate.
        ci_low_pct, ci_high_pct: the percentile interval of the bootstrap (NaN when n/a).
        resamples: bootstrap resamples drawn (0: none).
        ci_reason: why the interval is n/a ("" when it exists).
    """

    images: Tuple[str, ...]
    per_image_pct: np.ndarray
    per_image_reasons: Tuple[str, ...]
    images_compared: int
    wins: int
    ci_low_pct: float
    ci_high_pct: float
    resamples: int
    ci_reason: str = ""

    @property
    def win_fraction(self) -> float:
        """``wins / images_compared`` (NaN when no image was compared)."""
        return self.wins / self.images_compared if self.images_compared else math.nan

    @property
    def per_image_note(self) -> str:
        """How many images have no per-image value, by kind of reason; "" if none."""
        reasons = [_kind(r) for r in self.per_image_reasons if r]
        if not reasons:
            return ""
        kinds = ", ".join(f"{kind}: {n}" for kind, n in Counter(reasons).most_common())
        return f"no per-image BD-rate on {len(reasons)} of {len(self.images)} images ({kinds})"


def _kind(reason: str) -> str:
    """The kind of a ``bd_metrics`` note, without its numbers."""
    for start, kind in (("too few", "too few points"), ("quality ranges do not overlap", "no quality overlap"),
                        ("quality overlap", "quality overlap under the minimum")):
        if reason.startswith(start):
            return kind
    return reason


def resample_weights(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of ``n_images`` images is drawn in each of ``resamples`` bootstrap
    resamples: float64 (B, n), rows summing to n. Draws: ``default_rng(seed).integers(0, n, (B, n))``."""
    idx = np.random.default_rng(seed).integers(0, n_images, size=(resamples, n_images))
    counts = np.zeros((resamples, n_images))
    np.add.at(counts, (np.arange(resamples)[:, None], idx), 1.0)
    return counts


def bd_rate_stats(
    anchor: ImageGrid,
    test: ImageGrid,
    metric: Metric,
    method: str,
    *,
    min_quality_overlap: float = 0.0,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BDStats:
    """Per-image BD-rates, wins and a bootstrap percentile interval over images (module
    docstring) of ``test`` against ``anchor`` on ``metric`` (a BD axis), with ``method``.

    ``min_quality_overlap`` applies to every per-image BD-rate (as to the reported value);
    ``resamples`` = 0 draws no bootstrap (interval n/a). Images only one codec has are left out.
    """
    common = [i for i in anchor.images if i in set(test.images)]
    a, t = anchor.subset(common), test.subset(common)
    n = len(common)
    per_image, reasons = np.full(n, np.nan), []
    if n:
        one_each = np.eye(n)  # resample i = image i alone: each image's own curve
        (ra, qa), (rt, qt) = curve_points(a, metric, one_each), curve_points(t, metric, one_each)
        for i in range(n):
            per_image[i], why = _bd_rate_finite(ra[i], qa[i], rt[i], qt[i], method, min_quality_overlap)
            reasons.append(why)
    compared = np.isfinite(per_image)
    wins = int((per_image[compared] < 0).sum())

    lo = hi = math.nan
    ci_reason = ""
    if resamples == 0:
        ci_reason = "no bootstrap (report.bootstrap_resamples is 0)"
    elif n < 2:
        ci_reason = f"{n} image(s) in common: nothing to resample"
    elif np.isnan(a.bpp).any() or np.isnan(t.bpp).any():
        ci_reason = "a codec lacks some (image, rate point) rows: the resampled means would not be those reported"
    else:
        w = resample_weights(n, resamples, seed)
        (ra, qa), (rt, qt) = curve_points(a, metric, w), curve_points(t, metric, w)
        values, failed = np.empty(resamples), []
        for b in range(resamples):
            values[b], why = _bd_rate_finite(ra[b], qa[b], rt[b], qt[b], method, 0.0)
            if why:
                failed.append(why)
        if failed:
            ci_reason = f"{len(failed)} of {resamples} resamples have no BD-rate (e.g. {failed[0]})"
        else:
            lo, hi = (float(v) for v in np.quantile(values, [(1 - level) / 2, (1 + level) / 2]))
    return BDStats(tuple(common), per_image, tuple(reasons), int(compared.sum()), wins, lo, hi, resamples, ci_reason)
