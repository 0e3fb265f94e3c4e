"""Stage ``check``: compare fresh per-image results with a committed baseline; exit 1 naming
codec, rate point, image and metric on any regression beyond ``check.tolerances``
(``benchmark.check``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from benchmark.check import check_dirs
from benchmark.config import load_config
from benchmark.metrics.base import METRICS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark check",
        description="Compare fresh per-image results against a committed baseline with per-metric "
        "tolerances (params.yaml check.tolerances); exit 1 naming codec, rate point, image and metric "
        "on any regression.",
    )
    p.add_argument("--fresh", required=True, type=Path, help="directory of fresh per-codec CSVs")
    p.add_argument("--baseline", required=True, type=Path, help="directory of baseline per-codec CSVs")
    p.add_argument("--params", default="params.yaml", help="params file (reads check.tolerances)")
    p.add_argument("--codecs", nargs="*", default=None, help="only these codecs (default: every CSV in --fresh)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    tol = load_config(args.params).check
    regressions, improvements, n_rows, n_files = check_dirs(args.fresh, args.baseline, tol, args.codecs)
    for line in improvements:
        print(f"improved: {line}")
    for line in regressions:
        print(f"REGRESSION: {line}")
    verdict = "FAILED" if regressions else "passed"
    limits = ", ".join(f"{METRICS.get(k).short_label} -{v} {METRICS.get(k).unit}".rstrip() for k, v in tol.metrics.items())
    print(
        f"check {verdict}: {n_rows} rows in {n_files} codec file(s) against {args.baseline}; "
        f"{len(regressions)} regression(s), {len(improvements)} improvement(s) beyond tolerance "
        f"(bpp +{tol.bpp_rel:.2%}, {limits})"
    )
    return 1 if regressions else 0
