"""Stage ``evaluate-progressive``: one progressive codec (SIC: one checkpoint, the rate points
are its levels) on one data set, as ``evaluate-learned`` does for the learned codecs (see
``benchmark.evaluation``); the checkpoint is the ``--checkpoints`` path of dvc.yaml."""

from __future__ import annotations

from typing import Optional, Sequence

from benchmark.codecs import sic  # noqa: F401  (registers the sic codec)
from benchmark.evaluation import checkpoint_main

DESCRIPTION = (
    "Encode every image of a fetched data set with one progressive codec (SIC) at each of its levels (the "
    "rate points of its codec entry, all from one checkpoint), decode the real bitstreams, and write one CSV row "
    "per (image, level) as `evaluate` does, plus the model's estimated bpp and the decode check."
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return checkpoint_main(
        argv, "benchmark evaluate-progressive", DESCRIPTION,
        "path of the one checkpoint, with the field {model} (dvc.yaml: models/<budget>/{model}/model.pt)",
        progressive=True,
    )
