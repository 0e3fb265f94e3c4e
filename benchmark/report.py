"""Stage ``report``: per-rate-point summary, BD-rate tables, metrics.json, RD figures and
CompressAI-format exports for one data set.

Inputs: the per-image CSVs of ``evaluate`` (one per codec in ``evaluate.codecs``) and the
published reference curves fetched with the data set (``<data>/references/*.json``).

Outputs in ``--out``:

- ``summary.csv``: means over images per (codec, rate point), with ``n_images`` (MS-SSIM dB:
  the dB of the mean MS-SSIM, the value on the RD curves).
- ``bd_rate.csv`` / ``bd_rate.md``: Bjontegaard BD-rate (%) and BD-quality of every codec
  against the anchor codec of ours (``report.anchor``), the published
  ``report.reference_anchor`` curve (e.g. VTM) where the data set has it, its published
  counterpart, and ``report.pairs``; for every BD axis (PSNR, MS-SSIM dB), with each method in
  ``report.bd_methods``, the overlaps and the minimum-overlap rule; between two of our codecs
  also the bootstrap interval over images and the wins (``benchmark.analysis.bdtable``,
  ``benchmark.analysis.bdstats``). ``bd_rate_per_image.csv``: the per-image BD-rates.
- ``metrics.json``: for ``dvc metrics``: per codec, the image and rate-point counts and the
  BD-rates of ``report.main_method`` (pchip) with interval and wins, and BD-quality.
- ``README.md``: the data set's report in one page: figures, main tables, codecs and how each
  was obtained, provenance (``benchmark.analysis.setreadme``).
- Figures, each as ``figures/<stem>.png`` (the folder DVC renders as plots: PNG only) and
  ``figures-pdf/<stem>.pdf``; styles and legends shared by all figures of the run
  (``benchmark.plots.styles.figure_key``: a colour and marker per codec family, a published
  curve in its counterpart's, legend groups saying how each codec was obtained, from
  ``origins``): ``rd-psnr``, ``rd-ms-ssim`` (one per BD axis): ours solid, published dashed,
  with a low-rate panel on the learned codecs (``benchmark.plots.rd``). Before writing, the
  report removes the figures of an earlier run from both folders.
- ``compressai/<codec>.json``: our curves in CompressAI's results-JSON format.
- Perception (``--perception``: evaluate's ``<codec>.csv`` FID/KID tables and ``<codec>.json``
  status records): the summary gains the mean LPIPS / DISTS / HaarPSI and the per-rate-point
  FID, KID (+ std) and patch count; ``perception.md`` lists the perceptual metrics computed and
  those missing (reason, file needed, where to put it) and the FID/KID table, marked indicative
  under ``metrics.figures.fid_indicative_below`` patches; figures ``rdp-<metric>`` (bpp vs LPIPS,
  DISTS, HaarPSI, FID, KID) and ``dp-psnr-<metric>`` (PSNR vs LPIPS and vs HaarPSI at the matched
  rates ``metrics.figures.dp_rates``). No figure without data: a metric no codec has a value of
  gets none, and README.md names it with the reason; one some codecs lack is drawn for the
  others with a note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from benchmark.analysis.bdstats import image_grid
from benchmark.analysis.bdtable import bd_markdown, bd_table, metrics_json
from benchmark.analysis.perception import (
    attach_set_metrics,
    missing_note,
    perception_markdown,
    read_set_results,
    read_status,
)
from benchmark.analysis.origins import Origin
from benchmark.analysis.references import Curve, read_curve, write_compressai_json
from benchmark.analysis.setreadme import dataset_readme
from benchmark.config import MetricsConfig, ReportConfig
from benchmark.fileio import write_text_atomic
from benchmark.metrics.base import METRICS, bd_axes, per_image_metrics
from benchmark.plots.rd import plot_rd
from benchmark.plots.rdp import has_values, plot_dp, plot_rdp
from benchmark.plots.styles import Entry, FigureKey, figure_key
from benchmark.results import ResultsError, read_results, summarize, write_csv_atomic


def curve_from_summary(summary: pd.DataFrame, codec: str, source: str) -> Curve:
    """The mean RD curve of one codec from a summary table: bpp and the mean of every metric
    column the table has (a ``curve_of_mean`` metric is derived from its base by ``Curve.get``)."""
    s = summary[summary.codec == codec].sort_values("bpp")
    values = {m.name: s[m.name].to_numpy(float) for m in per_image_metrics() if m.name in s and not m.curve_of_mean}
    values = {k: v for k, v in values.items() if np.all(np.isfinite(v))}
    return Curve(name=codec, bpp=s.bpp.to_numpy(float), values=values, source=source)


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


def _write_tables(out_dir: Path, dataset: str, summary: pd.DataFrame, df: pd.DataFrame, bd: pd.DataFrame,
                  per_image: pd.DataFrame, cfg: ReportConfig) -> Dict[str, Path]:
    written = {"summary": out_dir / "summary.csv", "bd_rate": out_dir / "bd_rate.csv", "bd_rate_md": out_dir / "bd_rate.md",
               "bd_rate_per_image": out_dir / "bd_rate_per_image.csv", "metrics": out_dir / "metrics.json"}
    write_csv_atomic(summary, written["summary"])
    write_csv_atomic(bd, written["bd_rate"])
    write_csv_atomic(per_image, written["bd_rate_per_image"])
    write_text_atomic(written["bd_rate_md"], bd_markdown(bd, dataset, summary, cfg))
    metrics = metrics_json(df, bd, cfg.main_method)
    write_text_atomic(written["metrics"], json.dumps(metrics, indent=2, sort_keys=True) + "\n")
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


FIGURES_PDF = "figures-pdf"
"""The folder of the figures' PDFs, beside ``figures/`` (PNG only: DVC renders that folder as
its plots, and fails on anything but images and data files)."""


def figure_entries(codecs: Sequence[str], origins: Mapping[str, Origin]) -> List[Entry]:
    """Our codecs as the figures list them: family, legend group and detail from ``origins``
    (a codec without one is looked up by its name and listed under "Ours")."""
    out = []
    for c in codecs:
        o = origins.get(c)
        out.append(Entry(c) if o is None else Entry(c, family=o.family, learned=o.learned, group=o.group, detail=o.detail))
    return out


def _clear_figures(*folders: Path) -> None:
    """Remove the PNG and PDF files directly in ``folders`` (the report's own figure folders), so
    that a figure the report no longer draws (a metric without values) does not linger."""
    for folder in folders:
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file() and p.suffix.lower() in (".png", ".pdf"):
                    p.unlink()


def _write_figures(out_dir: Path, title: str, codecs: Sequence[str], ours, refs, summary, statuses, cfg: ReportConfig,
                   mcfg: MetricsConfig, key: FigureKey) -> Tuple[List[Tuple[Path, Path]], Dict[str, str]]:
    """RD figures (one per BD axis), RDP figures (one per requested perceptual metric with values)
    and the distortion-perception figures of ``metrics.figures.dp``: PNGs in ``figures/``, PDFs
    in ``figures-pdf/``. Returns the (PNG, PDF) pairs written, in order, and {metric label: why it has no
    figure} for the requested perceptual metrics without values."""
    figures, pdfs = out_dir / "figures", out_dir / FIGURES_PDF
    _clear_figures(figures, pdfs)
    stems: List[str] = []
    missing: Dict[str, str] = {}
    for metric in bd_axes():
        stems.append(f"rd-{metric.file_stem}")
        plot_rd(ours, refs, metric.name, figures / stems[-1], title=title, max_bpp=cfg.max_bpp, key=key,
                pdf_stem=pdfs / stems[-1])
    for metric in mcfg.perceptual:
        m = METRICS.get(metric)
        if not has_values(summary, metric, codecs):
            missing[m.label] = missing_note(statuses, metric) or "no values in the per-image or per-set results."
            continue
        stems.append(f"rdp-{m.file_stem}")
        plot_rdp(
            summary, metric, figures / stems[-1], pdf_stem=pdfs / stems[-1], codecs=list(codecs), title=title,
            max_bpp=cfg.max_bpp, note=missing_note(statuses, metric), indicative_below=mcfg.figures.fid_indicative_below,
            key=key,
        )
    for metric in (m for m in mcfg.figures.dp if m in mcfg.perceptual):
        if not has_values(summary, metric, codecs):
            continue
        stems.append(f"dp-psnr-{METRICS.get(metric).file_stem}")
        plot_dp(
            summary, figures / stems[-1], pdf_stem=pdfs / stems[-1], codecs=list(codecs),
            rates=list(mcfg.figures.dp_rates), title=f"{title}: distortion vs perception at matched rates",
            distortion="psnr", perception=metric, note=missing_note(statuses, metric), key=key,
        )
    return [(figures / f"{s}.png", pdfs / f"{s}.pdf") for s in stems], missing


README_LINKS = {
    "bd_rate.md": "BD tables, every method (CSV: bd_rate.csv)",
    "bd_rate.csv": "BD-rate, BD-quality, overlaps, intervals, wins and n/a reasons, one row per comparison",
    "bd_rate_per_image.csv": "BD-rate of every image (the wins and what the intervals resample)",
    "summary.csv": "means over images per (codec, rate point): the points of the RD curves",
    "metrics.json": "the headline BD-rates for `dvc metrics`",
    "perception.md": "perceptual metrics computed and missing, FID/KID",
    "per_image": "the per-image rows every number here is derived from",
    "compressai": "our curves in CompressAI's results-JSON format",
}
"""What the README's "Files" section lists (relative to the data set's results folder)."""


def report(
    dataset: str,
    codecs: Sequence[str],
    results_dir: Path,
    data_dir: Path,
    out_dir: Path,
    cfg: ReportConfig,
    perception_dir: Optional[Path] = None,
    metrics_cfg: Optional[MetricsConfig] = None,
    origins: Optional[Mapping[str, Origin]] = None,
) -> Dict[str, Path]:
    """Build every report output for one data set; returns name -> path of what it wrote.

    BD-rates: see ``comparisons``. ``perception_dir``: evaluate's per-set perceptual outputs
    (``<codec>.csv``, ``<codec>.json``); None or absent files: those codecs have no FID/KID and
    no status record (noted in ``perception.md`` and the figures). ``metrics_cfg``: which
    perceptual figures to draw, the matched rates and the indicative threshold (default
    ``MetricsConfig()``). ``origins``: codec -> how it was obtained
    (``benchmark.analysis.origins.codec_origins``), for the README's codec table and the figure
    legends and styles (family); an absent codec shows "-" and is styled by its name.

    Raises ``ResultsError`` if a codec's results are missing or malformed (also a perception file
    that exists but is malformed), or the anchor is not among the codecs.
    """
    mcfg = metrics_cfg or MetricsConfig()
    df = pd.concat([read_results(results_dir / f"{c}.csv") for c in codecs], ignore_index=True)
    summary = attach_set_metrics(summarize(df), read_set_results(perception_dir, codecs))
    statuses = read_status(perception_dir, codecs)
    ours = [curve_from_summary(summary, c, str(results_dir / f"{c}.csv")) for c in codecs]
    refs = load_references(data_dir / "references")
    columns = [m.name for m in per_image_metrics()] + [m.base for m in per_image_metrics() if m.base]
    grids = {c: image_grid(df, c, columns) for c in codecs}
    bd, per_image = bd_table(comparisons(ours, refs, cfg), cfg, grids)

    out_dir.mkdir(parents=True, exist_ok=True)
    written = _write_tables(out_dir, dataset, summary, df, bd, per_image, cfg)
    written["compressai"] = _write_compressai(out_dir, dataset, codecs, summary, df)
    title = f"{dataset} ({int(df.image.nunique())} images)"
    write_text_atomic(
        out_dir / "perception.md",
        perception_markdown(dataset, statuses, summary, indicative_below=mcfg.figures.fid_indicative_below, metrics=mcfg.perceptual),
    )
    written["perception_md"] = out_dir / "perception.md"
    key = figure_key(figure_entries(codecs, origins or {}), [r.name for r in refs], cfg.published_counterparts,
                     cfg.reference_anchor)
    pngs, missing = _write_figures(out_dir, title, codecs, ours, refs, summary, statuses, cfg, mcfg, key)
    written["figures"] = out_dir / "figures"
    written["figures_pdf"] = out_dir / FIGURES_PDF
    written["readme"] = out_dir / "README.md"
    write_text_atomic(written["readme"], dataset_readme(
        dataset, out_dir, df, summary, bd, cfg, origins or {}, pngs, README_LINKS,
        published=key.published, left_out=key.left_out, missing_figures=missing,
    ))
    return written
