"""Stage ``evaluate``: one classical codec (or a plugin's) on one data set, every image at every
rate point, into ``results/<set>/per_image/<codec>.csv`` (see ``benchmark.evaluation``)."""

from __future__ import annotations

from typing import Optional, Sequence

from benchmark.codecs import classical  # noqa: F401  (registers the classical codecs)
from benchmark.codecs.base import build_codec
from benchmark.config import load_config
from benchmark.evaluation import build_parser, run

DESCRIPTION = (
    "Encode every image of a fetched data set with one classical codec at each of its rate points, decode "
    "the real bitstreams, and write one CSV row per (image, rate point): bytes, bpp, every registered "
    "per-image metric (PSNR, MS-SSIM, and the perceptual metrics of `metrics.perceptual`, NaN where "
    "missing), encode/decode seconds, the decode check and provenance. With --set-out, FID/KID per rate "
    "point over the HiFiC patches of all images; with --status-out, which perceptual metrics were "
    "computed or missing (and why)."
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser("benchmark evaluate", DESCRIPTION).parse_args(argv)
    cfg = load_config(args.params)
    codec_cfg = cfg.codec(args.codec)
    return run(args, cfg, build_codec(codec_cfg.codec, codec_cfg.options))
