"""The BD tables of the report: rows for ``bd_rate.csv`` (every test/anchor/metric/method), the
per-image BD-rates (``bd_rate_per_image.csv``), their Markdown (``bd_rate.md`` and the main
tables of the data set's README) and the BD part of ``metrics.json``.

Comparisons are (test Curve, anchor Curve, kind), kind one of ``COMPARISON_TITLES``: ``ours``
(every codec against ``report.anchor``) and ``pair`` (``report.pairs``) compare two of our codecs
and get the per-image statistics of ``benchmark.analysis.bdstats`` (confidence interval, wins);
``published`` (against ``report.reference_anchor``) and ``counterpart`` (against the published
curve of the same codec) compare with a curve that has no per-image values and get none.
"""

from __future__ import annotations

import math
import re
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from benchmark.analysis.bdrate import bd_metrics
from benchmark.analysis.bdstats import BDStats, ImageGrid, bd_rate_stats
from benchmark.analysis.references import Curve
from benchmark.config import ReportConfig
from benchmark.metrics.base import Metric, bd_axes

COMPARISON_TITLES = {
    "ours": "Anchor: {anchor} (our run)",
    "pair": "Pairwise: against {anchor} (our run, report.pairs)",
    "published": "Anchor: {anchor} (published curve)",
    "counterpart": "Each codec against the published curve of the same codec (learned: the same architecture)",
}
PAIRED_KINDS = ("ours", "pair")
"""Comparisons of two of our codecs: per-image BD-rates, wins and bootstrap intervals."""

BD_COLUMNS = [
    "codec", "anchor", "anchor_kind", "metric", "unit", "method",
    "bd_rate_pct", "bd_rate_ci_low_pct", "bd_rate_ci_high_pct", "images_compared", "wins", "win_fraction",
    "quality_overlap_lo", "quality_overlap_hi", "bd_quality", "rate_overlap_lo_bpp", "rate_overlap_hi_bpp",
    "bd_rate_na_reason", "bd_quality_na_reason", "ci_na_reason", "per_image_note",
]
PER_IMAGE_COLUMNS = ["codec", "anchor", "metric", "method", "image", "bd_rate_pct", "na_reason"]


def _quality(curve: Curve, metric: Metric) -> Optional[np.ndarray]:
    """The curve's values of ``metric`` as a quality that grows with rate (negated for metrics
    where lower is better), or None."""
    v = curve.get(metric.name)
    return None if v is None else (v if metric.higher_is_better else -v)


def _signed_range(r, metric: Metric):
    """An overlap (lo, hi) of the (possibly negated) quality axis back in the metric's values."""
    if r is None:
        return math.nan, math.nan
    return (r[0], r[1]) if metric.higher_is_better else (-r[1], -r[0])


def bd_table(
    comparisons: Sequence[tuple], cfg: ReportConfig, grids: Optional[Mapping[str, ImageGrid]] = None
) -> "tuple[pd.DataFrame, pd.DataFrame]":
    """(``bd_rate.csv`` rows, ``bd_rate_per_image.csv`` rows) for every (test, anchor, metric,
    method), over every registered BD axis (``Metric.bd_axis``). BD-quality is in the metric's
    unit, positive = better (lower-is-better metrics are negated first); overlaps are in the
    metric's values and in bpp. Metrics a curve lacks (published curves without MS-SSIM) are left
    out. ``grids``: our codecs' per-image rows; comparisons of two of them (``PAIRED_KINDS``) get
    per-image BD-rates, wins and the bootstrap interval (``cfg``: its minimum overlaps, resamples,
    seed and level), except a codec against itself."""
    grids = grids or {}
    rows, per_image = [], []
    for test, anchor, kind in comparisons:
        for metric in bd_axes():
            a_q, t_q = _quality(anchor, metric), _quality(test, metric)
            if a_q is None or t_q is None:
                continue
            min_q = float(cfg.min_overlap_quality.get(metric.name, 0.0))
            for method in cfg.bd_methods:
                r = bd_metrics(anchor.bpp, a_q, test.bpp, t_q, method=method, min_quality_overlap=min_q,
                               min_rate_ratio=float(cfg.min_overlap_rate_ratio))
                q_lo, q_hi = _signed_range(r.overlap, metric)
                row = {
                    "codec": test.name, "anchor": anchor.name, "anchor_kind": kind, "metric": metric.name,
                    "unit": metric.unit, "method": method, "bd_rate_pct": r.bd_rate_pct,
                    "bd_rate_ci_low_pct": math.nan, "bd_rate_ci_high_pct": math.nan,
                    "images_compared": math.nan, "wins": math.nan, "win_fraction": math.nan,
                    "quality_overlap_lo": q_lo, "quality_overlap_hi": q_hi, "bd_quality": r.bd_psnr_db,
                    "rate_overlap_lo_bpp": r.rate_overlap[0] if r.rate_overlap else math.nan,
                    "rate_overlap_hi_bpp": r.rate_overlap[1] if r.rate_overlap else math.nan,
                    "bd_rate_na_reason": r.rate_note, "bd_quality_na_reason": r.quality_note,
                    "ci_na_reason": "", "per_image_note": "",
                }
                if kind not in PAIRED_KINDS:
                    row["ci_na_reason"] = "published curve: no per-image values"
                elif test.name == anchor.name:
                    row["ci_na_reason"] = "the anchor itself"
                elif test.name not in grids or anchor.name not in grids:
                    row["ci_na_reason"] = "no per-image rows"
                elif not math.isfinite(r.bd_rate_pct):
                    row["ci_na_reason"] = "no BD-rate"
                if row["ci_na_reason"] and row["ci_na_reason"] != "no BD-rate":
                    rows.append(row)
                    continue
                s = bd_rate_stats(grids[anchor.name], grids[test.name], metric, method, min_quality_overlap=min_q,
                                  resamples=cfg.bootstrap_resamples, seed=cfg.bootstrap_seed, level=cfg.ci_level)
                row.update(images_compared=s.images_compared, wins=s.wins, win_fraction=s.win_fraction,
                           per_image_note=s.per_image_note)
                if not row["ci_na_reason"]:
                    row.update(bd_rate_ci_low_pct=s.ci_low_pct, bd_rate_ci_high_pct=s.ci_high_pct, ci_na_reason=s.ci_reason)
                rows.append(row)
                per_image += _per_image_rows(test.name, anchor.name, metric.name, method, s)
    return pd.DataFrame(rows, columns=BD_COLUMNS), pd.DataFrame(per_image, columns=PER_IMAGE_COLUMNS)


def _per_image_rows(codec: str, anchor: str, metric: str, method: str, s: BDStats) -> List[dict]:
    return [
        {"codec": codec, "anchor": anchor, "metric": metric, "method": method, "image": img,
         "bd_rate_pct": float(v), "na_reason": why}
        for img, v, why in zip(s.images, s.per_image_pct, s.per_image_reasons)
    ]


# --- Markdown --------------------------------------------------------------------------------


def _num(v, digits: int = 2, sign: bool = True) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _rate_cell(r) -> str:
    """``-36.7 [-40.1, -33.0]``: BD-rate with its interval where there is one."""
    cell = _num(r.bd_rate_pct, 1)
    if math.isfinite(r.bd_rate_ci_low_pct):
        cell += f" [{_num(r.bd_rate_ci_low_pct, 1)}, {_num(r.bd_rate_ci_high_pct, 1)}]"
    return cell


def _shows_wins(r) -> bool:
    """Wins are shown beside a BD-rate that exists (the per-image values are in the CSVs)."""
    n = r.images_compared
    return isinstance(n, (int, float)) and math.isfinite(n) and n > 0 and math.isfinite(r.bd_rate_pct)


def _wins_cell(r) -> str:
    return f"{int(r.wins)}/{int(r.images_compared)}" if _shows_wins(r) else "-"


def _overlap_cell(lo, hi, digits: int = 2, unit: str = "") -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "none"
    return f"{lo:.{digits}f}–{hi:.{digits}f}" + (f" {unit}" if unit else "")


SKIPPED_REASONS = ("no BD-rate", "the anchor itself", "published curve: no per-image values")
"""Interval reasons not worth a footnote (the table already shows why)."""


def _reasons(sub: pd.DataFrame, methods: Sequence[str], quality: bool = True) -> List[str]:
    """Footnotes: why a value of the table is n/a, once per (codec, reason); BD-quality
    reasons only when the table shows BD-quality."""
    seen, out = set(), []
    short = {m.name: m.short_label for m in bd_axes()}
    for _, r in sub[sub.method.isin(methods)].iterrows():
        for what, text in (("BD-rate", r.bd_rate_na_reason), ("BD-quality", r.bd_quality_na_reason if quality else ""),
                           ("interval", r.ci_na_reason)):
            if not isinstance(text, str) or not text or text in SKIPPED_REASONS:
                continue
            key = (r.codec, what, text)
            if key in seen:
                continue
            seen.add(key)
            out.append(f"- {r.codec}, {short.get(r.metric, r.metric)}, {what} ({r.method}): {text}")
    return out


def _groups(bd: pd.DataFrame) -> List[tuple]:
    """(kind, anchor or None, rows) in the order of ``COMPARISON_TITLES``."""
    out = []
    for kind in COMPARISON_TITLES:
        sub = bd[bd.anchor_kind == kind]
        if sub.empty:
            continue
        if kind == "counterpart":
            out.append((kind, None, sub))
        else:
            out += [(kind, a, sub[sub.anchor == a]) for a in sub.anchor.unique()]
    return out


def _points(summary: pd.DataFrame, codec: str) -> str:
    return str(int((summary.codec == codec).sum()))


def main_tables(bd: pd.DataFrame, summary: pd.DataFrame, method: str, notes: Optional[Mapping[str, str]] = None,
                level: float = 0.95, heading: str = "###") -> List[str]:
    """The compact tables: per comparison, a row per codec with, for each BD axis, the BD-rate
    of ``method`` with its interval, the quality overlap and the wins; then why values are n/a.
    ``notes``: our codec -> how it differs from its published counterpart (a column of the
    counterpart table)."""
    notes = notes or {}
    axes = [m for m in bd_axes() if (bd.metric == m.name).any()]
    ci = f"[{level:.0%} CI]".replace("%", " %")
    lines: List[str] = []
    for kind, anchor, sub in _groups(bd[bd.method == method]):
        paired = kind in PAIRED_KINDS
        lines += [f"{heading} " + COMPARISON_TITLES[kind].format(anchor=anchor), ""]
        header = ["codec"] + (["published curve"] if kind == "counterpart" else []) + ["points"]
        for m in axes:
            unit = f" [{m.unit}]" if m.unit else ""
            header += [f"BD-rate {m.short_label} [%]" + (f" {ci}" if paired else ""), f"{m.short_label} overlap{unit}"]
            header += ["wins"] if paired else []
        header += ["configuration differs"] if kind == "counterpart" else []
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for codec in sub.codec.unique():
            cs = sub[sub.codec == codec]
            cells = [codec] + ([cs.anchor.iloc[0]] if kind == "counterpart" else []) + [_points(summary, codec)]
            for m in axes:
                r = cs[cs.metric == m.name]
                if r.empty:
                    cells += ["-", "-"] + (["-"] if paired else [])
                    continue
                r = r.iloc[0]
                itself = paired and codec == anchor
                cells += ["anchor" if itself else _rate_cell(r), _overlap_cell(r.quality_overlap_lo, r.quality_overlap_hi)]
                cells += [_wins_cell(r)] if paired else []
            cells += [notes.get(codec, "")] if kind == "counterpart" else []
            lines.append("| " + " | ".join(cells) + " |")
        reasons = _reasons(sub, [method], quality=False)
        lines += ([""] + reasons if reasons else []) + [""]
    return lines


def _full_tables(bd: pd.DataFrame, summary: pd.DataFrame, methods: Sequence[str]) -> List[str]:
    """Every method: per comparison a row per (codec, BD axis) with BD-rate [CI] and wins per
    method, the quality overlap, BD-quality per method and the rate overlap."""
    lines: List[str] = []
    for kind, anchor, sub in _groups(bd):
        paired = kind in PAIRED_KINDS
        lines += ["### " + COMPARISON_TITLES[kind].format(anchor=anchor), ""]
        header = ["codec"] + (["published curve"] if kind == "counterpart" else []) + ["metric", "points"]
        for meth in methods:
            header += [f"BD-rate {meth} [%]"] + ([f"wins {meth}"] if paired else [])
        header += ["quality overlap"] + [f"BD-quality {meth}" for meth in methods] + ["rate overlap [bpp]"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for (codec, metric), cs in sub.groupby(["codec", "metric"], sort=False):
            by_method = {r.method: r for _, r in cs.iterrows()}
            m0 = next(iter(by_method.values()))
            unit = f" {m0.unit}" if m0.unit else ""
            label = next((m.short_label for m in bd_axes() if m.name == metric), metric)
            cells = [codec] + ([m0.anchor] if kind == "counterpart" else []) + [label, _points(summary, codec)]
            for meth in methods:
                r = by_method.get(meth)
                cells += [_rate_cell(r) if r is not None else "-"] + ([_wins_cell(r) if r is not None else "-"] if paired else [])
            ov = next((r for r in by_method.values() if math.isfinite(r.quality_overlap_lo)), m0)
            cells += [_overlap_cell(ov.quality_overlap_lo, ov.quality_overlap_hi, unit=m0.unit)]
            q = {meth: _num(by_method[meth].bd_quality, 3) if meth in by_method else "-" for meth in methods}
            cells += [v + unit if v not in ("n/a", "-") else v for v in q.values()]
            rv = next((r for r in by_method.values() if math.isfinite(r.rate_overlap_lo_bpp)), m0)
            cells += [_overlap_cell(rv.rate_overlap_lo_bpp, rv.rate_overlap_hi_bpp, 3)]
            lines.append("| " + " | ".join(cells) + " |")
        reasons = _reasons(sub, methods)
        lines += ([""] + reasons if reasons else []) + [""]
    return lines


def method_text(cfg: ReportConfig) -> str:
    """The paragraph that says how the numbers were computed (bd_rate.md and the README)."""
    level = f"{cfg.ci_level:.0%}".replace("%", " %")
    mins = ", ".join(f"{m.short_label} {cfg.min_overlap_quality[m.name]:g}{(' ' + m.unit) if m.unit else ''}"
                     for m in bd_axes() if m.name in cfg.min_overlap_quality)
    return (
        "Bjontegaard deltas (VCEG-M33) computed with the `bjontegaard` package on the mean RD curves (mean bpp "
        "and mean quality over the images at each rate point; MS-SSIM dB = -10 log10(1 - mean MS-SSIM)), averaged "
        "over the range where both curves have data (*overlap*). BD-rate: % bits at equal quality (negative = "
        "fewer bits than the anchor); BD-quality: difference at equal rate in the metric's unit (positive = "
        f"better). Interpolation: {', '.join(cfg.bd_methods)} (cubic: one polynomial, needs 4 points per curve; "
        "pchip: piecewise monotone cubic, as the JVET common test conditions, needs 2). A BD-rate is n/a when "
        f"the quality overlap is narrower than {mins or 'zero'} (`report.min_overlap_quality`), a BD-quality when "
        f"the rate overlap spans a ratio under {cfg.min_overlap_rate_ratio:g} (`report.min_overlap_rate_ratio`): "
        "over a narrower range the value is decided by the ends of the interpolants. "
        f"Between two of our codecs: **{level} CI** is the percentile "
        f"interval of {cfg.bootstrap_resamples} bootstrap resamples of the images (seed {cfg.bootstrap_seed}; "
        "each resample recomputes both mean curves over the drawn images and their BD-rate); **wins** is the "
        "number of images whose own BD-rate (that image's curve against the anchor's curve on the same image, "
        "same rules) is negative, over the images where it exists. Published curves have no per-image values: "
        "no interval or wins against them."
    )


def bd_markdown(bd: pd.DataFrame, dataset: str, summary: pd.DataFrame, cfg: ReportConfig) -> str:
    """``bd_rate.md``: how the values were computed, the main tables (``cfg.main_method``: BD-rate
    [CI], overlap, wins) and the full tables (every method, BD-quality, rate overlap)."""
    lines = [f"# BD-rate on {dataset}", "", method_text(cfg), ""]
    lines += [f"## Main tables ({cfg.main_method})", ""]
    lines += main_tables(bd, summary, cfg.main_method, cfg.counterpart_notes, cfg.ci_level)
    lines += [f"## Full tables ({', '.join(cfg.bd_methods)})", ""]
    lines += _full_tables(bd, summary, cfg.bd_methods)
    return "\n".join(lines).rstrip() + "\n"


# --- metrics.json ----------------------------------------------------------------------------


def _slug(name: str) -> str:
    """A key without spaces or punctuation: lower case, runs of other characters as ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def _anchor_key(r) -> str:
    """``vs_<anchor>`` for our codecs, ``vs_published_<curve>`` for published curves."""
    return f"vs_{_slug(r.anchor)}" if r.anchor_kind in PAIRED_KINDS else f"vs_published_{_slug(r.anchor)}"


def _rounded(v, digits: int) -> Optional[float]:
    return round(float(v), digits) if v is not None and math.isfinite(float(v)) else None


def metrics_json(df: pd.DataFrame, bd: pd.DataFrame, method: str) -> Dict[str, dict]:
    """``{codec: {...}}`` for ``dvc metrics``: the image and rate-point counts, and per anchor
    (``vs_<codec>`` / ``vs_published_<curve>``) and BD axis the BD-rate of ``method`` with its
    interval and wins, and the BD-quality. Values that are n/a are left out (``dvc metrics diff``
    shows an absent key plainly); a codec against itself is left out. No means over all rate
    points: they depend on each codec's rate points and cannot be compared between codecs."""
    out: Dict[str, dict] = {}
    for codec, rows in df.groupby("codec", sort=True):
        d: dict = {"n_images": int(rows.image.nunique()), "n_rate_points": int(rows.rate_point.nunique())}
        comparisons: dict = {}
        for _, r in bd[(bd.codec == codec) & (bd.method == method)].iterrows():
            if r.anchor_kind in PAIRED_KINDS and r.anchor == codec:
                continue
            unit = f"_{_slug(r.unit)}" if isinstance(r.unit, str) and r.unit else ""
            values = {
                "bd_rate_pct": _rounded(r.bd_rate_pct, 3),
                "bd_rate_ci_low_pct": _rounded(r.bd_rate_ci_low_pct, 3),
                "bd_rate_ci_high_pct": _rounded(r.bd_rate_ci_high_pct, 3),
                "win_fraction": _rounded(r.win_fraction, 4),
                f"bd_quality{unit}": _rounded(r.bd_quality, 4),
            }
            values = {k: v for k, v in values.items() if v is not None}
            if not math.isfinite(r.bd_rate_pct):  # wins beside a BD-rate only, as in the tables
                values.pop("win_fraction", None)
            if values:
                comparisons.setdefault(_anchor_key(r), {})[_slug(r.metric)] = values
        if comparisons:
            d[method] = comparisons
        out[str(codec)] = d
    return out
