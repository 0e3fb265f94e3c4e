"""The regression check: fresh results against committed baseline results.

Rows are matched on (codec, rate point, image) between each fresh per-codec CSV and the
baseline CSV of the same name. A row regresses when

- ``bpp`` > baseline * (1 + ``bpp_rel``) (more bits), or
- a metric named in ``check.tolerances`` (a registered per-image metric: PSNR, MS-SSIM dB, ...)
  is worse than the baseline by more than its tolerance, in the metric's own direction and unit, or
- ``decode_check`` is "mismatch" (decoder and encoder disagree: not a codec, a bug), or
  "failed" (the codec could not decode its own bytes, or the image could not be coded or scored within
  the evaluate stage's limits: out of memory, timed out, worker died; the evaluate log names the reason).

Changes beyond tolerance in the good direction are listed as improvements (refresh the
baseline to keep them). Fresh rows without a baseline row are an error: the comparison would be
silently empty. The stage entry point is ``benchmark.stages.check`` (exit 0 no regression,
1 regression(s), 2 bad input).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pandas as pd

from benchmark.config import CheckConfig, ConfigError
from benchmark.metrics.base import METRICS, per_image_metrics
from benchmark.registry import unknown_name
from benchmark.results import ResultsError, read_results

KEY = ["codec", "rate_point", "image"]


def _checks(tol: CheckConfig) -> List[Tuple[str, float, bool, bool]]:
    """(column, tolerance, relative, higher is better) for bpp and each metric of ``tol``.
    Raises ``ConfigError`` for a tolerance key that is not a registered per-image metric."""
    known = [m.name for m in per_image_metrics()]
    out = [("bpp", tol.bpp_rel, True, False)]
    for name, allowed in tol.metrics.items():
        if name not in known:
            raise ConfigError(str(unknown_name("per-image metric", name, known + ["bpp_rel"], "check.tolerances")))
        out.append((name, float(allowed), False, METRICS.get(name).higher_is_better))
    return out


def compare(fresh: pd.DataFrame, baseline: pd.DataFrame, tol: CheckConfig, source: str = "") -> Tuple[List[str], List[str]]:
    """Return (regressions, improvements) as human-readable lines naming codec, rate point,
    image and metric. Raises ``ResultsError`` if a fresh row has no baseline row, and
    ``ConfigError`` for an unknown tolerance key."""
    checks = _checks(tol)
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
        if "decode_check" in merged.columns and r.decode_check == "failed":
            regressions.append(f"{where} decode_check: failed (the codec could not decode its own bitstream, or the image was "
                               f"not coded or scored within the evaluate limits; the evaluate log says why)")
            continue
        for metric, tolerance, relative, higher_better in checks:
            new, old = r[metric], r[f"{metric}_base"]
            if math.isinf(new) and math.isinf(old) and new == old:
                continue
            allowed = old * tolerance if relative else tolerance
            delta = new - old
            worse = -delta if higher_better else delta
            line = f"{where} {metric}: baseline {old:.6g} -> fresh {new:.6g} (delta {delta:+.4g}, tolerance {allowed:.3g})"
            if math.isnan(new) or worse > allowed:  # inf handled by the arithmetic (inf PSNR = exact)
                regressions.append(line)
            elif -worse > allowed:
                improvements.append(line)
    return regressions, improvements


def check_dirs(fresh_dir: Path, baseline_dir: Path, tol: CheckConfig, codecs: Optional[Sequence[str]] = None):
    """Compare every ``<codec>.csv`` in ``fresh_dir`` (or only ``codecs``) with ``baseline_dir``;
    returns (regressions, improvements, rows compared, files compared)."""
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
