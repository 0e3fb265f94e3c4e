"""Stage ``report``: per-rate-point summary, BD-rate tables (with per-image statistics),
metrics.json, RD and RDP figures, perception.md, the data set's README.md and CompressAI-format
exports for one data set (``benchmark.report``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from benchmark.analysis.origins import codec_origins
from benchmark.config import load_config
from benchmark.report import report
from benchmark.results import ResultsError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark report",
        description="Summarize per-image results of one data set into summary.csv, bd_rate.csv/.md, "
        "bd_rate_per_image.csv, metrics.json, README.md, RD figures (PNG in figures/, PDF in figures-pdf/), CompressAI-format "
        "JSON curves, perception.md (perceptual metrics computed and missing, FID/KID with patch counts) and "
        "rate-distortion-perception figures (for the metrics with values).",
    )
    p.add_argument(
        "--params", default="params.yaml",
        help="params file, or a run overlay (reads report, metrics.perceptual, metrics.figures, the run's codecs "
        "and, for how each learned codec was obtained and its parameter count, models and train)",
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
    cfg = load_config(args.params)
    codecs = list(cfg.evaluated_codecs())
    if not codecs:
        raise ResultsError(f"{cfg.source}: evaluate.codecs, evaluate.learned and evaluate.variants are empty")
    written = report(args.dataset, codecs, args.results, args.data, args.out, cfg.report, args.perception, cfg.metrics,
                     origins=codec_origins(cfg, codecs))
    print(f"report {args.dataset}: " + ", ".join(str(p) for p in written.values()))
    return 0
