"""Stage ``evaluate-progressive``: one progressive codec (SIC: one checkpoint, the rate points
are its levels) on one data set, as ``evaluate-learned`` does for the learned codecs (see
``benchmark.evaluation``); the checkpoint is the ``--checkpoints`` path of dvc.yaml."""

from __future__ import annotations

from typing import Optional, Sequence

from benchmark.codecs import sic  # noqa: F401  (registers the sic codec)
from benchmark.codecs.base import CODECS, build_codec
from benchmark.config import ConfigError, load_config
from benchmark.evaluation import build_parser, run

DESCRIPTION = (
    "Encode every image of a fetched data set with one progressive codec (SIC) at each of its levels (the "
    "rate points of its codec entry, all from one checkpoint), decode the real bitstreams, and write one CSV row "
    "per (image, level) as `evaluate` does, plus the model's estimated bpp and the decode check."
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser("benchmark evaluate-progressive", DESCRIPTION)
    parser.add_argument(
        "--checkpoints", required=True,
        help="path of the one checkpoint, with the field {model} (dvc.yaml: models/<budget>/{model}/model.pt)",
    )
    args = parser.parse_args(argv)
    cfg = load_config(args.params)
    codec_cfg = cfg.codec(args.codec)
    if not CODECS.get(codec_cfg.codec).progressive:
        raise ConfigError(
            f"{cfg.source}: codecs.{args.codec}: codec {codec_cfg.codec!r} is not progressive (one model for every "
            f"rate point); evaluate-progressive runs codecs such as sic, list it under evaluate.codecs or evaluate.learned"
        )
    return run(args, cfg, build_codec(codec_cfg.codec, codec_cfg.options, checkpoints=args.checkpoints))
