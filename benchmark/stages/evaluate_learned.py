"""Stage ``evaluate-learned``: one learned codec on one data set (its checkpoints from the
model stages, located by the ``--checkpoints`` template of dvc.yaml), as ``evaluate`` does for
classical codecs (see ``benchmark.evaluation``)."""

from __future__ import annotations

from typing import Optional, Sequence

from benchmark.codecs import learned  # noqa: F401  (registers the learned codec)
from benchmark.evaluation import checkpoint_main

DESCRIPTION = (
    "Encode every image of a fetched data set with one learned codec at each of its rate points (the "
    "checkpoints of train.qualities), decode the real bitstreams, and write one CSV row per (image, rate "
    "point) as `evaluate` does, plus the model's estimated bpp and the decode check."
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return checkpoint_main(
        argv, "benchmark evaluate-learned", DESCRIPTION,
        "path template of the checkpoints, with the fields {model} and {rate_point} "
        "(dvc.yaml: models/<budget>/{model}/q{rate_point}.pt)",
    )
