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

import argparse
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
from benchmark.config import MetricsConfig, ReportConfig, load_metrics, load_report, read_params
from benchmark.fileio import write_text_atomic
from benchmark.plots.rd import plot_rd
from benchmark.plots.rdp import plot_dp, plot_rdp
from benchmark.results import PERCEPTUAL_COLUMNS, ResultsError, read_results, summarize, write_csv_atomic

METRIC_LABELS = {"psnr": "PSNR", "ms_ssim_db": "MS-SSIM dB"}


def curve_from_summary(summary: pd.DataFrame, codec: str, source: str) -> Curve:
    """The mean RD curve of one codec from a summary table (bpp, PSNR dB, MS-SSIM linear)."""
    s = summary[summary.codec == codec].sort_values("bpp")
    return Curve(
        name=codec,
        bpp=s.bpp.to_numpy(float),
        psnr=s.psnr.to_numpy(float),
        ms_ssim=s.ms_ssim.to_numpy(float),
        source=source,
    )


def _dist(curve: Curve, metric: str) -> Optional[np.ndarray]:
    return curve.psnr if metric == "psnr" else curve.ms_ssim_db


COMPARISON_TITLES = {
    "ours": "Anchor: {anchor} (our run)",
    "published": "Anchor: {anchor} (published curve)",
    "pair": "Pairwise: against {anchor} (our run, report.pairs)",
    "counterpart": "Each codec against the published curve of the same codec",
}


def bd_table(comparisons: Sequence[tuple], methods: Sequence[str]) -> pd.DataFrame:
    """BD-rate/BD-quality rows for every (test, anchor, metric, method).

    ``comparisons`` are (test Curve, anchor Curve, kind), kind one of ``COMPARISON_TITLES``.
    Metrics the anchor lacks (published curves without MS-SSIM) are left out.
    """
    rows = []
    for test, anchor, kind in comparisons:
        for metric in ("psnr", "ms_ssim_db"):
            a_dist = _dist(anchor, metric)
            if a_dist is None:
                continue
            for method in methods:
                r = bd_metrics(anchor.bpp, a_dist, test.bpp, _dist(test, metric), method=method)
                rows.append(
                    {
                        "codec": test.name,
                        "anchor": anchor.name,
                        "anchor_kind": kind,
                        "metric": metric,
                        "method": method,
                        "bd_rate_pct": r.bd_rate_pct,
                        "bd_quality_db": r.bd_psnr_db,
                        "note": r.note,
                    }
                )
    return pd.DataFrame(
        rows, columns=["codec", "anchor", "anchor_kind", "metric", "method", "bd_rate_pct", "bd_quality_db", "note"]
    )


def _fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:+.{digits}f}"


def bd_markdown(bd: pd.DataFrame, dataset: str, summary: pd.DataFrame) -> str:
    """A Markdown table per anchor: codecs as rows, (metric, method) BD-rate % and BD-quality dB."""
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
        lines.append("## " + COMPARISON_TITLES[kind].format(anchor=anchor))
        lines.append("")
        cols = [(m, meth) for m in ("psnr", "ms_ssim_db") for meth in sub.method.unique() if ((sub.metric == m) & (sub.method == meth)).any()]
        header = ["codec"] + (["published curve"] if kind == "counterpart" else []) + ["rate points"] + [f"BD-rate {METRIC_LABELS[m]} ({meth}) [%]" for m, meth in cols] + [
            f"BD-{METRIC_LABELS[m]} ({meth}) [dB]" for m, meth in cols
        ]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        notes = []
        for codec in sub.codec.unique():
            cs = sub[sub.codec == codec]
            n = int((summary.codec == codec).sum())
            rates, quals = [], []
            for m, meth in cols:
                r = cs[(cs.metric == m) & (cs.method == meth)]
                rates.append(_fmt(r.bd_rate_pct.iloc[0]) if len(r) else "n/a")
                quals.append(_fmt(r.bd_quality_db.iloc[0], 3) if len(r) else "n/a")
                for note in r.note:
                    if isinstance(note, str) and note and (codec, note) not in notes:
                        notes.append((codec, note))
            first = [codec] + ([cs.anchor.iloc[0]] if kind == "counterpart" else []) + [str(n)]
            lines.append("| " + " | ".join(first + rates + quals) + " |")
        for codec, note in notes:
            lines.append(f"\n- {codec}: {note}")
        lines.append("")
    return "\n".join(lines) + "\n"


def metrics_json(summary: pd.DataFrame, df: pd.DataFrame, bd: pd.DataFrame, method: str) -> Dict[str, Dict[str, float]]:
    """``{codec: {...}}`` numbers for ``dvc metrics``: means over all rows and BD-rates (one method)."""
    out: Dict[str, Dict[str, float]] = {}
    for codec, rows in df.groupby("codec", sort=True):
        d = {
            "n_images": int(rows.image.nunique()),
            "n_rate_points": int(rows.rate_point.nunique()),
            "mean_bpp": round(float(rows.bpp.mean()), 6),
            "mean_psnr_db": round(float(rows.psnr.replace(np.inf, np.nan).mean()), 4),
            "mean_ms_ssim_db": round(float(rows.ms_ssim_db.replace(np.inf, np.nan).mean()), 4),
            "mean_encode_s": round(float(rows.encode_s.mean()), 5),
            "mean_decode_s": round(float(rows.decode_s.mean()), 5),
        }
        for col in PERCEPTUAL_COLUMNS:  # only where computed: dvc metrics diff shows absent keys plainly
            if col in rows and rows[col].notna().any():
                d[f"mean_{col}"] = round(float(rows[col].mean()), 6)
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

    BD-rates: every codec against ``cfg.anchor`` and the published ``cfg.reference_anchor``,
    each codec against its published counterpart, and the ``cfg.pairs`` whose two codecs are
    both in ``codecs`` (the others are skipped).

    ``perception_dir``: evaluate's per-set perceptual outputs (``<codec>.csv``, ``<codec>.json``);
    None or absent files: those codecs have no FID/KID and no status record (noted in
    ``perception.md`` and the figures). ``metrics_cfg``: which perceptual figures to draw, the
    matched rates and the indicative threshold (default ``MetricsConfig()``).

    Raises ``ResultsError`` if a codec's results are missing or malformed (also a perception file
    that exists but is malformed), or the anchor is not among the codecs.
    """
    mcfg = metrics_cfg or MetricsConfig()
    frames = [read_results(results_dir / f"{c}.csv") for c in codecs]
    df = pd.concat(frames, ignore_index=True)
    summary = attach_set_metrics(summarize(df), read_set_results(perception_dir, codecs))
    statuses = read_status(perception_dir, codecs)
    ours = [curve_from_summary(summary, c, str(results_dir / f"{c}.csv")) for c in codecs]
    refs = load_references(data_dir / "references")

    if cfg.anchor not in codecs:
        raise ResultsError(f"report.anchor {cfg.anchor!r} is not among evaluate.codecs {list(codecs)}")
    by_name = {r.name.lower(): r for r in refs}
    anchor = next(c for c in ours if c.name == cfg.anchor)
    comparisons = [(c, anchor, "ours") for c in ours]
    published_anchor = by_name.get(str(cfg.reference_anchor).lower()) if cfg.reference_anchor else None
    if published_anchor is not None:
        comparisons += [(c, published_anchor, "published") for c in ours]
    comparisons += [
        (c, by_name[cfg.counterparts[c.name].lower()], "counterpart")
        for c in ours
        if c.name in cfg.counterparts and cfg.counterparts[c.name].lower() in by_name
    ]
    by_codec = {c.name: c for c in ours}
    comparisons += [(by_codec[t], by_codec[a], "pair") for t, a in cfg.pairs if t in by_codec and a in by_codec]
    bd = bd_table(comparisons, cfg.bd_methods)

    written: Dict[str, Path] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(summary, out_dir / "summary.csv")
    written["summary"] = out_dir / "summary.csv"
    write_csv_atomic(bd, out_dir / "bd_rate.csv")
    written["bd_rate"] = out_dir / "bd_rate.csv"
    write_text_atomic(out_dir / "bd_rate.md", bd_markdown(bd, dataset, summary))
    written["bd_rate_md"] = out_dir / "bd_rate.md"
    metrics = metrics_json(summary, df, bd, cfg.bd_methods[0])
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    written["metrics"] = out_dir / "metrics.json"

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
    written["compressai"] = out_dir / "compressai"

    n_img = int(df.image.nunique())
    for metric, stem in (("psnr", "rd-psnr"), ("ms_ssim_db", "rd-ms-ssim")):
        plot_rd(
            ours,
            refs,
            metric,
            out_dir / "figures" / stem,
            title=f"{dataset} ({n_img} images)",
            max_bpp=cfg.max_bpp,
            counterparts=cfg.counterparts,
        )
    write_text_atomic(
        out_dir / "perception.md",
        perception_markdown(dataset, statuses, summary, indicative_below=mcfg.fid_indicative_below, metrics=mcfg.perceptual),
    )
    written["perception_md"] = out_dir / "perception.md"
    title = f"{dataset} ({n_img} images)"
    for metric in mcfg.perceptual:
        plot_rdp(
            summary, metric, out_dir / "figures" / f"rdp-{metric}", codecs=list(codecs), title=title,
            max_bpp=cfg.max_bpp, note=missing_note(statuses, metric), indicative_below=mcfg.fid_indicative_below,
        )
    for metric in (m for m in ("lpips", "haarpsi") if m in mcfg.perceptual):
        plot_dp(
            summary, out_dir / "figures" / f"dp-psnr-{metric}", codecs=list(codecs), rates=list(mcfg.dp_rates),
            title=f"{title}: distortion vs perception at matched rates", distortion="psnr", perception=metric,
            note=missing_note(statuses, metric),
        )
    written["figures"] = out_dir / "figures"
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark report",
        description="Summarize per-image results of one data set into summary.csv, bd_rate.csv/.md, "
        "metrics.json, RD figures (PNG + PDF), CompressAI-format JSON curves, perception.md (perceptual "
        "metrics computed and missing, FID/KID with patch counts) and rate-distortion-perception figures.",
    )
    p.add_argument(
        "--params", default="params.yaml",
        help="params file (reads report, metrics.perceptual, metrics.figures, evaluate.codecs and evaluate.learned)",
    )
    p.add_argument("--dataset", required=True, help="data set name (figure titles)")
    p.add_argument("--results", required=True, type=Path, help="directory of per-codec CSVs from evaluate")
    p.add_argument("--data", required=True, type=Path, help="fetched data set directory (for references/)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument(
        "--perception", type=Path, default=None,
        help="directory of evaluate's per-set perceptual outputs (<codec>.csv FID/KID, <codec>.json status records)",
    )
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    params = read_params(args.params)
    cfg = load_report(params, source=args.params)
    ev = params.get("evaluate") or {}
    codecs = list(ev.get("codecs") or []) + list(ev.get("learned") or [])
    if not codecs:
        raise ResultsError(f"{args.params}: evaluate.codecs and evaluate.learned are empty")
    mcfg = load_metrics(params, source=args.params)
    written = report(args.dataset, codecs, args.results, args.data, args.out, cfg, args.perception, mcfg)
    print(f"report {args.dataset}: " + ", ".join(str(p) for p in written.values()))
    print((args.out / "bd_rate.md").read_text())
    return 0
