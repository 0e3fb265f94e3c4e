"""``python -m benchmark <stage> [options]`` (also the ``compression-benchmark`` console script).

Each stage is a thin ``main(argv)`` in its own module; ``<stage> --help`` describes it.
Errors in input (bad params, images, downloads, results) print one line naming the file and
what is wrong, and exit with status 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

STAGES = {
    "fetch": ("benchmark.data.fetch", "download/verify a data set (and its reference curves) into a directory"),
    "model": ("benchmark.training.stage", "train (or fetch from the CompressAI zoo) one learned model at one rate point"),
    "samples": ("benchmark.samples", "unconditional samples of a hierarchical VAE (continuous and integer latents): figure"),
    "evaluate": ("benchmark.evaluate", "encode/decode a data set with one codec at all rate points; per-image CSV"),
    "report": ("benchmark.report", "summary, BD-rate tables, metrics.json, RD figures, CompressAI JSON"),
    "check": ("benchmark.check", "compare fresh results with a committed baseline; non-zero exit on regression"),
}


def _usage() -> str:
    lines = ["usage: python -m benchmark <stage> [--help] [options]", "", "stages:"]
    lines += [f"  {name:<10} {desc}" for name, (_, desc) in STAGES.items()]
    lines += ["", "The DVC pipeline (dvc.yaml) runs fetch -> model -> evaluate -> report; see README.md."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"error: unknown stage {stage!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from benchmark.codecs import CodecError
    from benchmark.config import ConfigError
    from benchmark.data.download import DownloadError
    from benchmark.data.images import ImageError, ManifestError
    from benchmark.models.checkpoint import CheckpointError
    from benchmark.models.zoo import WeightsHashError, WeightsUnavailableError
    from benchmark.results import ResultsError
    from benchmark.training.loop import TrainingError

    module = importlib.import_module(STAGES[stage][0])
    try:
        return int(module.main(rest) or 0)
    except (
        ConfigError, DownloadError, ImageError, ManifestError, ResultsError, CodecError, CheckpointError, TrainingError,
        WeightsUnavailableError, WeightsHashError, KeyError,
    ) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error ({stage}): {msg}", file=sys.stderr)
        return 2
