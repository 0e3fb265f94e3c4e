"""Stage ``check``: fail when fresh results regress against committed baseline results.

Rows are matched on (codec, rate point, image) between each fresh per-codec CSV and the
baseline CSV of the same name. A row regresses when

- ``bpp``        > baseline * (1 + ``bpp_rel``)          (more bits), or
- ``psnr``       < baseline - ``psnr``        [dB]        (lower quality), or
- ``ms_ssim_db`` < baseline - ``ms_ssim_db``  [dB], or
- ``decode_check`` is "mismatch" (decoder and encoder disagree: not a codec, a bug).

Changes beyond tolerance in the good direction are listed as improvements (refresh the
baseline to keep them). Fresh rows without a baseline row are an error: the comparison would be
silently empty. Exit status: 0 no regression, 1 regression(s), 2 bad input.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pandas as pd

from benchmark.config import CheckConfig, load_check, read_params
from benchmark.results import ResultsError, read_results

KEY = ["codec", "rate_point", "image"]


def compare(fresh: pd.DataFrame, baseline: pd.DataFrame, tol: CheckConfig, source: str = "") -> Tuple[List[str], List[str]]:
    """Return (regressions, improvements) as human-readable lines naming codec, rate point,
    image and metric. Raises ``ResultsError`` if a fresh row has no baseline row."""
    merged = fresh.merge(baseline, on=KEY, how="left", suffixes=("", "_base"), indicator=True)
    orphans = merged[merged["_merge"] == "left_only"]
    if len(orphans):
        o = orphans.iloc[0]
        raise ResultsError(
            f"{source}: {len(orphans)} fresh rows have no baseline row, e.g. codec={o.codec} "
            f"rate_point={o.rate_point} image={o.image}"
        )
    regressions, improvements = [], []
    for _, r in merged.iterrows():
        where = f"codec={r.codec} rate_point={r.rate_point:g} image={r.image}"
        if "decode_check" in merged.columns and r.decode_check == "mismatch":
            regressions.append(f"{where} decode_check: the decoder's image differs from the encoder's")
        checks = [
            ("bpp", r.bpp, r.bpp_base, r.bpp_base * tol.bpp_rel, False),
            ("psnr", r.psnr, r.psnr_base, tol.psnr, True),
            ("ms_ssim_db", r.ms_ssim_db, r.ms_ssim_db_base, tol.ms_ssim_db, True),
        ]
        for metric, new, old, allowed, higher_better in checks:
            if math.isinf(new) and math.isinf(old) and new == old:
                continue
            delta = new - old
            worse = -delta if higher_better else delta
            line = f"{where} {metric}: baseline {old:.6g} -> fresh {new:.6g} (delta {delta:+.4g}, tolerance {allowed:.3g})"
            if math.isnan(new) or worse > allowed:  # inf handled by the arithmetic (inf PSNR = exact)
                regressions.append(line)
            elif -worse > allowed:
                improvements.append(line)
    return regressions, improvements


def check_dirs(fresh_dir: Path, baseline_dir: Path, tol: CheckConfig, codecs: Optional[Sequence[str]] = None):
    """Compare every ``<codec>.csv`` in ``fresh_dir`` (or only ``codecs``) with ``baseline_dir``."""
    files = [fresh_dir / f"{c}.csv" for c in codecs] if codecs else sorted(fresh_dir.glob("*.csv"))
    if not files:
        raise ResultsError(f"{fresh_dir}: no per-codec results (*.csv) to check")
    regressions, improvements, n_rows = [], [], 0
    for f in files:
        fresh = read_results(f)
        base = read_results(baseline_dir / f.name)
        r, i = compare(fresh, base, tol, source=str(f))
        regressions += r
        improvements += i
        n_rows += len(fresh)
    return regressions, improvements, n_rows, len(files)


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
    tol = load_check(read_params(args.params), source=args.params)
    regressions, improvements, n_rows, n_files = check_dirs(args.fresh, args.baseline, tol, args.codecs)
    for line in improvements:
        print(f"improved: {line}")
    for line in regressions:
        print(f"REGRESSION: {line}")
    verdict = "FAILED" if regressions else "passed"
    print(
        f"check {verdict}: {n_rows} rows in {n_files} codec file(s) against {args.baseline}; "
        f"{len(regressions)} regression(s), {len(improvements)} improvement(s) beyond tolerance "
        f"(bpp +{tol.bpp_rel:.2%}, PSNR -{tol.psnr} dB, MS-SSIM -{tol.ms_ssim_db} dB)"
    )
    return 1 if regressions else 0
