"""The results schema: tidy per-image rows, their validation, and derived per-rate-point summaries.

One row per (dataset, codec, rate point, image). Units: ``bytes`` (the whole bitstream),
``bpp`` = 8 * bytes / (H * W), ``encode_s``/``decode_s`` in seconds (wall clock; one thread, or
all threads of the machine for in-process codecs such as learned ones).

The metric columns are those of the registered per-image metrics, in registration order
(``benchmark.metrics.base.METRICS``; built in: ``mse`` on the [0, 255] scale, ``psnr`` and
``ms_ssim_db`` in dB, ``ms_ssim`` in [0, 1], then the perceptual ``lpips``, ``dists``,
``haarpsi``, NaN where a metric was not computed, e.g. its weights were missing).

After the measures come the codec's own reports: ``bpp_estimated`` (the model's estimate,
``-sum(log2 likelihoods) / (H * W)``; NaN for codecs without a model; never used as the rate)
and ``decode_check`` ("ok": the pixels decoded by the evaluation equal the encoder's decode of the
same bytes, "mismatch": they differ, "n/a": the codec gives no encoder-side decode, "failed": the
decode raised ``DecodeError``, or the image could not be coded or scored within the evaluate stage's
limits; its measures NaN); then the
provenance columns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Sequence

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.fileio import atomic_write
from benchmark.metrics.base import per_image_metrics

KEY_COLUMNS = ["dataset", "codec", "rate_param", "rate_point", "image"]
SIZE_COLUMNS = ["height", "width", "bytes", "bpp"]
TIME_COLUMNS = ["encode_s", "decode_s"]
CODEC_REPORT_COLUMNS = ["bpp_estimated", "decode_check"]
PROVENANCE_COLUMNS = ["codec_library", "packages", "git_rev", "params_hash", "device"]
DECODE_CHECK_VALUES = ("ok", "mismatch", "n/a", "failed")
REQUIRED_METRICS = ["psnr", "ms_ssim", "ms_ssim_db"]  # every results file has had these


class ResultsError(BenchmarkError, ValueError):
    """A results file is missing, malformed, or inconsistent; the message names the file."""


def metric_columns() -> List[str]:
    """The per-image metric columns, in registration order."""
    return [m.name for m in per_image_metrics()]


def result_columns() -> List[str]:
    """Every column of a per-image results file, in order: keys, sizes, metrics, times, the
    codec's reports, provenance."""
    return KEY_COLUMNS + SIZE_COLUMNS + metric_columns() + TIME_COLUMNS + CODEC_REPORT_COLUMNS + PROVENANCE_COLUMNS


def summary_measures() -> List[str]:
    """What ``summarize`` averages per rate point: bpp, the metrics marked ``in_summary``, the times."""
    return ["bpp"] + [m.name for m in per_image_metrics() if m.in_summary] + TIME_COLUMNS


def write_csv_atomic(df: pd.DataFrame, path: "str | os.PathLike[str]") -> None:
    """Write ``df`` as CSV (no index, 10 significant digits) atomically."""
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.10g"))


def read_results(path: "str | os.PathLike[str]") -> pd.DataFrame:
    """Read and validate a per-image results CSV written by ``evaluate``.

    Files written before a metric was registered, or before ``bpp_estimated``/``decode_check``
    existed, are accepted: a missing metric column is added as NaN at its place among the
    metric columns, ``bpp_estimated`` as NaN and ``decode_check`` as "n/a" (pandas also reads a
    stored "n/a" as NaN; it is restored).
    Raises ``ResultsError`` naming the file if it is missing, lacks columns, is empty, has
    duplicate (rate point, image) rows, or a ``decode_check`` value other than ok/mismatch/n/a/failed.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: results file not found")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: not a readable CSV ({e})") from None
    missing = [c for c in KEY_COLUMNS + ["bpp"] + REQUIRED_METRICS if c not in df.columns]
    if missing:
        raise ResultsError(f"{path}: missing columns {missing}")
    if df.empty:
        raise ResultsError(f"{path}: no rows")
    previous = "bpp"
    for col in metric_columns():
        if col not in df.columns:
            df.insert(df.columns.get_loc(previous) + 1, col, np.nan)
        previous = col
    after = df.columns.get_loc("decode_s") + 1 if "decode_s" in df.columns else len(df.columns)
    if "bpp_estimated" not in df.columns:
        df.insert(after, "bpp_estimated", np.nan)
    if "decode_check" not in df.columns:
        df.insert(df.columns.get_loc("bpp_estimated") + 1, "decode_check", "n/a")
    df["decode_check"] = df["decode_check"].fillna("n/a")
    bad = ~df["decode_check"].isin(DECODE_CHECK_VALUES)
    if bad.any():
        raise ResultsError(f"{path}: decode_check must be one of {list(DECODE_CHECK_VALUES)}, got {df.decode_check[bad].iloc[0]!r}")
    dup = df.duplicated(["codec", "rate_point", "image"])
    if dup.any():
        raise ResultsError(f"{path}: duplicate (codec, rate_point, image) rows, e.g. {df[dup].iloc[0][['codec', 'rate_point', 'image']].tolist()}")
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean over images per (dataset, codec, rate point), sorted by codec and bpp: the points of
    the RD curves that the figures and BD tables use.

    Every metric is the mean of its per-image values (CompressAI's convention), except a
    ``curve_of_mean`` derived metric, which is derived from the mean of its base: ``ms_ssim_db``
    is the dB of the mean MS-SSIM, as CompressAI plots it and as published curves (which give the
    mean MS-SSIM only) are compared (``benchmark.metrics.base.curve_value``). ``n_images``
    counts the images.
    """
    g = df.groupby(["dataset", "codec", "rate_param", "rate_point"], sort=False)
    cols = [c for c in summary_measures() if c in df.columns]
    out = g[cols].mean().reset_index()
    for m in per_image_metrics():
        if m.curve_of_mean and m.derive is not None and m.name in out and m.base in out:
            out[m.name] = np.asarray(m.derive(out[m.base].to_numpy(np.float64)), dtype=np.float64)
    out.insert(4, "n_images", g.size().values)
    return out.sort_values(["codec", "bpp"], kind="stable").reset_index(drop=True)


def finite_mean(values: Sequence[float]) -> float:
    """Mean of the finite values (NaN if none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
