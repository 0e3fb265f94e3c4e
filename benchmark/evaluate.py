"""Stage ``evaluate``: one codec on one data set, every image at every rate point.

Each (image, rate point) is encoded to real bytes, decoded from those bytes alone, and scored
centrally (PSNR, MS-SSIM) against the original 8-bit image. Images are processed in parallel
worker processes (one thread each). The output is a tidy CSV, one row per (image, rate point),
written atomically; see ``RESULT_COLUMNS``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pandas as pd

from benchmark.codecs import Codec, CodecError, build_codec
from benchmark.config import load_codec, read_params
from benchmark.data.images import ManifestRow, load_rgb8, pixel_sha256, read_manifest
from benchmark.metrics import distortion_metrics
from benchmark.provenance import provenance
from benchmark.results import RESULT_COLUMNS, write_csv_atomic

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def evaluate_image(codec: Codec, image_path: str, expected_sha: str, rate_points: Sequence[float]) -> List[Dict[str, Any]]:
    """Encode/decode one image at every rate point; rows of bpp, metrics and seconds.

    Raises ``CodecError`` naming the image and rate point if a codec fails or returns an image
    of the wrong shape/dtype, and ``ValueError`` if the image's pixels differ from the manifest.
    """
    image = load_rgb8(image_path)
    if pixel_sha256(image) != expected_sha:
        raise ValueError(f"{image_path}: pixels differ from the manifest (data set changed since fetch?)")
    h, w, _ = image.shape
    rows = []
    for rp in rate_points:
        t0 = time.perf_counter()
        try:
            data = codec.encode(image, rp)
            t1 = time.perf_counter()
            rec = codec.decode(bytes(data))
            t2 = time.perf_counter()
        except CodecError as e:
            raise CodecError(f"{image_path} at rate point {rp}: {e}") from e
        if rec.shape != image.shape or rec.dtype != image.dtype:
            raise CodecError(f"{image_path} at rate point {rp}: decoded {rec.dtype}{rec.shape}, expected uint8{image.shape}")
        m = distortion_metrics(image, rec)
        rows.append(
            {
                "rate_point": rp,
                "height": h,
                "width": w,
                "bytes": len(data),
                "bpp": 8.0 * len(data) / (h * w),
                **m,
                "encode_s": t1 - t0,
                "decode_s": t2 - t1,
            }
        )
    return rows


def _run_one(args):
    codec, row, path, rate_points = args
    return row.name, evaluate_image(codec, path, row.pixel_sha256, rate_points)


def evaluate(
    codec_name: str,
    codec: Codec,
    rate_points: Sequence[float],
    manifest: Sequence[ManifestRow],
    data_dir: Path,
    dataset: str,
    params_hash: str,
    workers: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``codec`` over all images of ``manifest``; returns the tidy result table (RESULT_COLUMNS)."""
    n_workers = workers or os.cpu_count() or 1
    jobs = [(codec, row, str(data_dir / row.file), list(rate_points)) for row in manifest]
    bar = tqdm(total=len(jobs), desc=f"{dataset}/{codec_name}", unit="img", disable=not progress or tqdm is None, file=sys.stderr) if tqdm else None
    by_image: Dict[str, List[Dict[str, Any]]] = {}
    if n_workers == 1 or len(jobs) == 1:
        _worker_init()
        results = map(_run_one, jobs)
        for name, rows in results:
            by_image[name] = rows
            if bar:
                bar.update()
    else:
        with ProcessPoolExecutor(max_workers=min(n_workers, len(jobs)), initializer=_worker_init) as pool:
            for name, rows in pool.map(_run_one, jobs):
                by_image[name] = rows
                if bar:
                    bar.update()
    if bar:
        bar.close()
    prov = provenance(params_hash, type(codec).library_version())
    records = []
    for row in manifest:
        for r in by_image[row.name]:
            records.append(
                {"dataset": dataset, "codec": codec_name, "rate_param": type(codec).rate_param, "image": row.name, **r, **prov}
            )
    return pd.DataFrame.from_records(records, columns=RESULT_COLUMNS)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark evaluate",
        description="Encode every image of a fetched data set with one codec at each of its rate points, "
        "decode the real bitstreams, and write one CSV row per (image, rate point): bytes, bpp, PSNR, "
        "MS-SSIM, MS-SSIM dB, encode/decode seconds and provenance.",
    )
    p.add_argument("--params", default="params.yaml", help="params file (reads codecs.<codec> and evaluate.workers)")
    p.add_argument("--dataset", required=True, help="data set name (for the dataset column)")
    p.add_argument("--codec", required=True, help="entry of `codecs` in params.yaml")
    p.add_argument("--data", required=True, type=Path, help="fetched data set directory (with manifest.csv)")
    p.add_argument("--out", required=True, type=Path, help="output CSV")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: evaluate.workers; 0 = all cores)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    params = read_params(args.params)
    cfg = load_codec(params, args.codec, source=args.params)
    codec = build_codec(cfg.codec, cfg.options)
    workers = args.workers if args.workers is not None else int((params.get("evaluate") or {}).get("workers", 0))
    manifest = read_manifest(args.data)
    df = evaluate(args.codec, codec, cfg.rate_points, manifest, args.data, args.dataset, cfg.hash, workers=workers)
    write_csv_atomic(df, args.out)
    print(
        f"{args.dataset}/{args.codec}: {len(manifest)} images x {len(cfg.rate_points)} rate points -> {args.out} "
        f"(mean bpp {df.bpp.mean():.3f}, mean PSNR {df.psnr.mean():.2f} dB)"
    )
    return 0
