"""The results schema: tidy per-image rows, their validation, and derived per-rate-point summaries.

One row per (dataset, codec, rate point, image). Units: ``bytes`` (the whole bitstream),
``bpp`` = 8 * bytes / (H * W), ``psnr`` and ``ms_ssim_db`` in dB, ``ms_ssim`` in [0, 1],
``mse`` on the [0, 255] scale, ``encode_s``/``decode_s`` in seconds (wall clock; one thread,
or all threads of the machine for in-process codecs such as learned ones).

Perceptual measures per image (NaN where the metric was not computed, e.g. its weights were
missing; see ``benchmark.metrics.suite``): ``lpips`` (LPIPS AlexNet v0.1, >= 0, lower is better),
``dists`` (DISTS distance, lower is better) and ``haarpsi`` (HaarPSI in [0, 1], higher is better).

After the measures come the codec's own reports: ``bpp_estimated`` (the model's estimate,
``-sum(log2 likelihoods) / (H * W)``; NaN for codecs without a model; never used as the rate)
and ``decode_check`` ("ok": the pixels decoded by the evaluation equal the encoder's decode of the
same bytes, "mismatch": they differ, "n/a": the codec gives no encoder-side decode).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from benchmark.fileio import atomic_write

KEY_COLUMNS = ["dataset", "codec", "rate_param", "rate_point", "image"]
PERCEPTUAL_COLUMNS = ["lpips", "dists", "haarpsi"]
MEASURE_COLUMNS = ["height", "width", "bytes", "bpp", "mse", "psnr", "ms_ssim", "ms_ssim_db"] + PERCEPTUAL_COLUMNS + ["encode_s", "decode_s"]
CODEC_REPORT_COLUMNS = ["bpp_estimated", "decode_check"]
PROVENANCE_COLUMNS = ["codec_library", "packages", "git_rev", "params_hash", "device"]
RESULT_COLUMNS = KEY_COLUMNS + MEASURE_COLUMNS + CODEC_REPORT_COLUMNS + PROVENANCE_COLUMNS
DECODE_CHECK_VALUES = ("ok", "mismatch", "n/a")

# Means over images per rate point; bpp and metrics are averaged per image (CompressAI's convention).
SUMMARY_MEASURES = ["bpp", "psnr", "ms_ssim", "ms_ssim_db"] + PERCEPTUAL_COLUMNS + ["encode_s", "decode_s"]


class ResultsError(ValueError):
    """A results file is missing, malformed, or inconsistent; the message names the file."""


def write_csv_atomic(df: pd.DataFrame, path: "str | os.PathLike[str]") -> None:
    """Write ``df`` as CSV (no index, 10 significant digits) atomically."""
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, float_format="%.10g"))


def read_results(path: "str | os.PathLike[str]") -> pd.DataFrame:
    """Read and validate a per-image results CSV written by ``evaluate``.

    Files written before ``bpp_estimated``/``decode_check`` or the perceptual columns existed
    are accepted: the columns are added as NaN (perceptual ones after ``ms_ssim_db``) and "n/a"
    (pandas also reads a stored "n/a" as NaN; it is restored).
    Raises ``ResultsError`` naming the file if it is missing, lacks columns, is empty, has
    duplicate (rate point, image) rows, or a ``decode_check`` value other than ok/mismatch/n/a.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: results file not found")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: not a readable CSV ({e})") from None
    missing = [c for c in KEY_COLUMNS + ["bpp", "psnr", "ms_ssim", "ms_ssim_db"] if c not in df.columns]
    if missing:
        raise ResultsError(f"{path}: missing columns {missing}")
    if df.empty:
        raise ResultsError(f"{path}: no rows")
    for i, col in enumerate(PERCEPTUAL_COLUMNS):
        if col not in df.columns:
            df.insert(df.columns.get_loc("ms_ssim_db") + 1 + i, col, np.nan)
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
    """Mean over images per (dataset, codec, rate point), sorted by codec and bpp.

    ``ms_ssim_db`` is the mean of the per-image dB values. ``n_images`` counts the images.
    """
    g = df.groupby(["dataset", "codec", "rate_param", "rate_point"], sort=False)
    out = g[SUMMARY_MEASURES].mean().reset_index()
    out.insert(4, "n_images", g.size().values)
    return out.sort_values(["codec", "bpp"], kind="stable").reset_index(drop=True)


def finite_mean(values: Sequence[float]) -> float:
    """Mean of the finite values (NaN if none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
