"""Stage ``report``: per-rate-point summary, BD-rate tables, metrics.json, RD figures and
CompressAI-format exports for one data set.

Inputs: the per-image CSVs of ``evaluate`` (one per codec in ``evaluate.codecs``) and the
published reference curves fetched with the data set (``<data>/references/*.json``).

Outputs in ``--out``:

- ``summary.csv``: means over images per (codec, rate point), with ``n_images``.
- ``bd_rate.csv`` / ``bd_rate.md``: Bjontegaard BD-rate (%) and BD-quality (dB) of every codec
  against the anchor codec of ours (``report.anchor``) and against the published
  ``report.reference_anchor`` curve (e.g. VTM) where the data set has it; for PSNR and
  MS-SSIM (dB), with each method in ``report.bd_methods``.
- ``metrics.json``: for ``dvc metrics``: per codec, mean bpp/PSNR/MS-SSIM dB over all rate
  points' rows and the BD-rates of the first method.
- ``figures/rd-psnr.{png,pdf}``, ``figures/rd-ms-ssim.{png,pdf}``: ours solid, published dashed.
- ``compressai/<codec>.json``: our curves in CompressAI's results-JSON format.
- Perception (``--perception``: evaluate's ``<codec>.csv`` FID/KID tables and ``<codec>.json``
  status records): the summary gains the mean LPIPS / DISTS / HaarPSI and the per-rate-point
  FID, KID (+ std) and patch count; ``perception.md`` lists the perceptual metrics computed and
  those missing (reason, file needed, where to put it) and the FID/KID table, marked indicative
  under ``metrics.figures.fid_indicative_below`` patches; ``figures/rdp-<metric>.{png,pdf}`` (bpp
  vs LPIPS, DISTS, HaarPSI, FID, KID) and ``figures/dp-psnr-<metric>.{png,pdf}`` (PSNR vs LPIPS and
  vs HaarPSI at the matched rates ``metrics.figures.dp_rates``). A missing metric gives a figure
  with a note, never an error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from benchmark.analysis.bdrate import bd_metrics
from benchmark.analysis.perception import (
    attach_set_metrics,
    missing_note,
    perception_markdown,
    read_set_results,
    read_status,
)
from benchmark.analysis.references import Curve, read_curve, write_compressai_json
from benchmark.config import MetricsConfig, ReportConfig
from benchmark.fileio import write_text_atomic
from benchmark.metrics.base import METRICS, Metric, bd_axes, per_image_metrics
from benchmark.plots.rd import plot_rd
from benchmark.plots.rdp import plot_dp, plot_rdp
from benchmark.results import ResultsError, read_results, summarize, write_csv_atomic


def curve_from_summary(summary: pd.DataFrame, codec: str, source: str) -> Curve:
    """The mean RD curve of one codec from a summary table: bpp and the mean of every metric
    column the table has (a ``curve_of_mean`` metric is derived from its base by ``Curve.get``)."""
    s = summary[summary.codec == codec].sort_values("bpp")
    values = {m.name: s[m.name].to_numpy(float) for m in per_image_metrics() if m.name in s and not m.curve_of_mean}
    values = {k: v for k, v in values.items() if np.all(np.isfinite(v))}
    return Curve(name=codec, bpp=s.bpp.to_numpy(float), values=values, source=source)


def _quality(curve: Curve, metric: Metric) -> Optional[np.ndarray]:
    """The curve's values of ``metric`` as a quality that grows with rate (negated for metrics
    where lower is better), or None."""
    v = curve.get(metric.name)
    return None if v is None else (v if metric.higher_is_better else -v)


COMPARISON_TITLES = {
    "ours": "Anchor: {anchor} (our run)",
    "published": "Anchor: {anchor} (published curve)",
    "pair": "Pairwise: against {anchor} (our run, report.pairs)",
    "counterpart": "Each codec against the published curve of the same codec",
}
BD_COLUMNS = ["codec", "anchor", "anchor_kind", "metric", "method", "bd_rate_pct", "bd_quality_db", "note"]


def bd_table(comparisons: Sequence[tuple], methods: Sequence[str]) -> pd.DataFrame:
    """BD-rate/BD-quality rows for every (test, anchor, metric, method), over every registered
    BD axis (``Metric.bd_axis``: PSNR, MS-SSIM dB, ...). BD-quality is in the metric's unit,
    positive = better (for lower-is-better metrics the curves are negated first).

    ``comparisons`` are (test Curve, anchor Curve, kind), kind one of ``COMPARISON_TITLES``.
    Metrics a curve lacks (published curves without MS-SSIM) are left out.
    """
    rows = []
    for test, anchor, kind in comparisons:
        for metric in bd_axes():
            a_q, t_q = _quality(anchor, metric), _quality(test, metric)
            if a_q is None or t_q is None:
                continue
            for method in methods:
                r = bd_metrics(anchor.bpp, a_q, test.bpp, t_q, method=method)
                rows.append(
                    {
                        "codec": test.name,
                        "anchor": anchor.name,
                        "anchor_kind": kind,
                        "metric": metric.name,
                        "method": method,
                        "bd_rate_pct": r.bd_rate_pct,
                        "bd_quality_db": r.bd_psnr_db,
                        "note": r.note,
                    }
                )
    return pd.DataFrame(rows, columns=BD_COLUMNS)


def _fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:+.{digits}f}"


def _bd_group_lines(sub: pd.DataFrame, kind: str, anchor: Optional[str], summary: pd.DataFrame) -> List[str]:
    """One Markdown table of ``bd_markdown``: a row per codec, BD-rates then BD-qualities."""
    lines = ["## " + COMPARISON_TITLES[kind].format(anchor=anchor), ""]
    cols = [(m.name, meth) for m in bd_axes() for meth in sub.method.unique() if ((sub.metric == m.name) & (sub.method == meth)).any()]
    short = {m.name: m.short_label for m in bd_axes()}
    unit = {m.name: m.unit for m in bd_axes()}
    header = ["codec"] + (["published curve"] if kind == "counterpart" else []) + ["rate points"]
    header += [f"BD-rate {short[m]} ({meth}) [%]" for m, meth in cols]
    header += [f"BD-{short[m]} ({meth})" + (f" [{unit[m]}]" if unit[m] else "") for m, meth in cols]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = []
    for codec in sub.codec.unique():
        cs = sub[sub.codec == codec]
        rates, quals = [], []
        for m, meth in cols:
            r = cs[(cs.metric == m) & (cs.method == meth)]
            rates.append(_fmt(r.bd_rate_pct.iloc[0]) if len(r) else "n/a")
            quals.append(_fmt(r.bd_quality_db.iloc[0], 3) if len(r) else "n/a")
            notes += [(codec, n) for n in r.note if isinstance(n, str) and n and (codec, n) not in notes]
        first = [codec] + ([cs.anchor.iloc[0]] if kind == "counterpart" else []) + [str(int((summary.codec == codec).sum()))]
        lines.append("| " + " | ".join(first + rates + quals) + " |")
    lines += [f"\n- {codec}: {note}" for codec, note in notes]
    return lines + [""]


def bd_markdown(bd: pd.DataFrame, dataset: str, summary: pd.DataFrame) -> str:
    """A Markdown table per anchor: codecs as rows, (metric, method) BD-rate % and BD-quality."""
    lines = [f"# BD-rate on {dataset}", ""]
    lines.append(
        "Bjontegaard deltas (VCEG-M33) computed with the `bjontegaard` package over the overlapping "
        "quality range. BD-rate: % bits for equal quality (negative = fewer bits than the anchor). "
        "BD-quality: dB at equal rate (positive = better). MS-SSIM in dB is -10 log10(1 - MS-SSIM)."
    )
    lines.append("")
    groups = [(k, a) for k in COMPARISON_TITLES if k != "counterpart" for a in bd[bd.anchor_kind == k].anchor.unique()]
    groups += [("counterpart", None)] if (bd.anchor_kind == "counterpart").any() else []
    for kind, anchor in groups:
        sub = bd[(bd.anchor_kind == kind) & ((bd.anchor == anchor) if anchor is not None else True)]
        lines += _bd_group_lines(sub, kind, anchor, summary)
    return "\n".join(lines) + "\n"


def _json_key(m: Metric) -> str:
    """``mean_<name>``, with the unit appended where the name lacks it (``mean_psnr_db``)."""
    unit = m.unit.lower()
    return f"mean_{m.name}" + (f"_{unit}" if unit and not m.name.endswith(f"_{unit}") else "")


def metrics_json(summary: pd.DataFrame, df: pd.DataFrame, bd: pd.DataFrame, method: str) -> Dict[str, Dict[str, float]]:
    """``{codec: {...}}`` numbers for ``dvc metrics``: means over all rows of the BD-axis
    metrics and of the perception metrics that were computed, times, and the BD-rates (one
    method)."""
    out: Dict[str, Dict[str, float]] = {}
    for codec, rows in df.groupby("codec", sort=True):
        d = {
            "n_images": int(rows.image.nunique()),
            "n_rate_points": int(rows.rate_point.nunique()),
            "mean_bpp": round(float(rows.bpp.mean()), 6),
            "mean_encode_s": round(float(rows.encode_s.mean()), 5),
            "mean_decode_s": round(float(rows.decode_s.mean()), 5),
        }
        for m in bd_axes():
            d[_json_key(m)] = round(float(rows[m.name].replace([np.inf, -np.inf], np.nan).mean()), 4)
        for m in per_image_metrics("perception"):  # only where computed: dvc metrics diff shows absent keys plainly
            if m.name in rows and rows[m.name].notna().any():
                d[_json_key(m)] = round(float(rows[m.name].mean()), 6)
        for _, r in bd[(bd.codec == codec) & (bd.method == method)].iterrows():
            if math.isfinite(r.bd_rate_pct):
                d[f"bd_rate_{r.metric}_vs_{r.anchor}_pct"] = round(float(r.bd_rate_pct), 4)
        out[str(codec)] = d
    return out


def load_references(ref_dir: Path) -> List[Curve]:
    """All reference curves (``*.json``) in ``ref_dir``, sorted by file name; [] if absent."""
    if not ref_dir.is_dir():
        return []
    return [read_curve(p) for p in sorted(ref_dir.glob("*.json"))]


def comparisons(ours: Sequence[Curve], refs: Sequence[Curve], cfg: ReportConfig) -> List[tuple]:
    """(test, anchor, kind) for the BD tables: every codec against ``cfg.anchor`` and the
    published ``cfg.reference_anchor``, each codec against its published counterpart, and the
    ``cfg.pairs`` whose two codecs are both in the run. Raises ``ResultsError`` if the anchor
    is not among the codecs."""
    by_codec = {c.name: c for c in ours}
    if cfg.anchor not in by_codec:
        raise ResultsError(f"report.anchor {cfg.anchor!r} is not among the run's codecs {list(by_codec)}")
    by_name = {r.name.lower(): r for r in refs}
    out = [(c, by_codec[cfg.anchor], "ours") for c in ours]
    published_anchor = by_name.get(str(cfg.reference_anchor).lower()) if cfg.reference_anchor else None
    if published_anchor is not None:
        out += [(c, published_anchor, "published") for c in ours]
    counterparts = cfg.published_counterparts
    out += [
        (c, by_name[counterparts[c.name].lower()], "counterpart")
        for c in ours
        if c.name in counterparts and counterparts[c.name].lower() in by_name
    ]
    out += [(by_codec[t], by_codec[a], "pair") for t, a in cfg.pairs if t in by_codec and a in by_codec]
    return out


def _write_tables(out_dir: Path, dataset: str, summary: pd.DataFrame, df: pd.DataFrame, bd: pd.DataFrame, method: str) -> Dict[str, Path]:
    written = {"summary": out_dir / "summary.csv", "bd_rate": out_dir / "bd_rate.csv", "bd_rate_md": out_dir / "bd_rate.md",
               "metrics": out_dir / "metrics.json"}
    write_csv_atomic(summary, written["summary"])
    write_csv_atomic(bd, written["bd_rate"])
    write_text_atomic(written["bd_rate_md"], bd_markdown(bd, dataset, summary))
    write_text_atomic(written["metrics"], json.dumps(metrics_json(summary, df, bd, method), indent=2, sort_keys=True) + "\n")
    return written


def _write_compressai(out_dir: Path, dataset: str, codecs: Sequence[str], summary: pd.DataFrame, df: pd.DataFrame) -> Path:
    """Our curves in CompressAI's results-JSON format (its fixed keys: PSNR, MS-SSIM, times)."""
    for c in codecs:
        s = summary[summary.codec == c].sort_values("bpp")
        lib = df[df.codec == c].codec_library.iloc[0]
        write_compressai_json(
            out_dir / "compressai" / f"{c}.json",
            name=c,
            description=f"{c} on {dataset} ({lib}); means over {int(s.n_images.max())} images per rate point",
            bpp=s.bpp.tolist(),
            psnr=s.psnr.tolist(),
            ms_ssim=s.ms_ssim.tolist(),
            encoding_time=s.encode_s.tolist(),
            decoding_time=s.decode_s.tolist(),
        )
    return out_dir / "compressai"


def _write_figures(out_dir: Path, title: str, codecs: Sequence[str], ours, refs, summary, statuses, cfg: ReportConfig, mcfg: MetricsConfig) -> Path:
    """RD figures (one per BD axis), RDP figures (one per requested perceptual metric) and the
    distortion-perception figures of ``metrics.figures.dp``."""
    figures = out_dir / "figures"
    for metric in bd_axes():
        plot_rd(ours, refs, metric.name, figures / f"rd-{metric.file_stem}", title=title, max_bpp=cfg.max_bpp,
                counterparts=cfg.published_counterparts)
    for metric in mcfg.perceptual:
        plot_rdp(
            summary, metric, figures / f"rdp-{METRICS.get(metric).file_stem}", codecs=list(codecs), title=title,
            max_bpp=cfg.max_bpp, note=missing_note(statuses, metric), indicative_below=mcfg.figures.fid_indicative_below,
        )
    for metric in (m for m in mcfg.figures.dp if m in mcfg.perceptual):
        plot_dp(
            summary, figures / f"dp-psnr-{METRICS.get(metric).file_stem}", codecs=list(codecs), rates=list(mcfg.figures.dp_rates),
            title=f"{title}: distortion vs perception at matched rates", distortion="psnr", perception=metric,
            note=missing_note(statuses, metric),
        )
    return figures


def report(
    dataset: str,
    codecs: Sequence[str],
    results_dir: Path,
    data_dir: Path,
    out_dir: Path,
    cfg: ReportConfig,
    perception_dir: Optional[Path] = None,
    metrics_cfg: Optional[MetricsConfig] = None,
) -> Dict[str, Path]:
    """Build every report output for one data set; returns name -> path of what it wrote.

    BD-rates: see ``comparisons``. ``perception_dir``: evaluate's per-set perceptual outputs
    (``<codec>.csv``, ``<codec>.json``); None or absent files: those codecs have no FID/KID and
    no status record (noted in ``perception.md`` and the figures). ``metrics_cfg``: which
    perceptual figures to draw, the matched rates and the indicative threshold (default
    ``MetricsConfig()``).

    Raises ``ResultsError`` if a codec's results are missing or malformed (also a perception file
    that exists but is malformed), or the anchor is not among the codecs.
    """
    mcfg = metrics_cfg or MetricsConfig()
    df = pd.concat([read_results(results_dir / f"{c}.csv") for c in codecs], ignore_index=True)
    summary = attach_set_metrics(summarize(df), read_set_results(perception_dir, codecs))
    statuses = read_status(perception_dir, codecs)
    ours = [curve_from_summary(summary, c, str(results_dir / f"{c}.csv")) for c in codecs]
    refs = load_references(data_dir / "references")
    bd = bd_table(comparisons(ours, refs, cfg), cfg.bd_methods)

    out_dir.mkdir(parents=True, exist_ok=True)
    written = _write_tables(out_dir, dataset, summary, df, bd, cfg.bd_methods[0])
    written["compressai"] = _write_compressai(out_dir, dataset, codecs, summary, df)
    title = f"{dataset} ({int(df.image.nunique())} images)"
    write_text_atomic(
        out_dir / "perception.md",
        perception_markdown(dataset, statuses, summary, indicative_below=mcfg.figures.fid_indicative_below, metrics=mcfg.perceptual),
    )
    written["perception_md"] = out_dir / "perception.md"
    written["figures"] = _write_figures(out_dir, title, codecs, ours, refs, summary, statuses, cfg, mcfg)
    return written
