"""``python -m benchmark <stage> [options]`` (also the ``compression-benchmark`` console script).

Each stage is a thin ``main(argv)`` in ``benchmark/stages/``; ``<stage> --help`` describes it.
An input error (``benchmark.errors.BenchmarkError``: bad params, images, downloads, results,
bitstreams, checkpoints) prints one line naming the file or key and what is wrong, and exits
with status 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

from benchmark.errors import BenchmarkError

STAGES = {
    "fetch": ("benchmark.stages.fetch", "download/verify a data set (and its reference curves) into a directory"),
    "model": ("benchmark.stages.model", "train (or fetch from the CompressAI zoo) one learned model at one rate point"),
    "samples": ("benchmark.stages.samples", "unconditional samples of a hierarchical VAE (continuous and integer latents): figure"),
    "evaluate": ("benchmark.stages.evaluate", "encode/decode a data set with one classical codec at all rate points; per-image CSV"),
    "evaluate-learned": ("benchmark.stages.evaluate_learned", "the same for one learned codec, from its checkpoints"),
    "evaluate-progressive": ("benchmark.stages.evaluate_progressive", "the same for one progressive codec (SIC), from its one checkpoint"),
    "report": ("benchmark.stages.report", "summary, BD-rate tables, metrics.json, RD/RDP figures, CompressAI JSON"),
    "check": ("benchmark.stages.check", "compare fresh results with a committed baseline; non-zero exit on regression"),
    "own": ("benchmark.stages.own", "your CompressAI checkpoints or images against a run's codecs: tables, figures"),
    "train-ray": ("benchmark.stages.train_ray", "run the model stages as Ray tasks in parallel, then `dvc commit` them (not a DVC stage)"),
}


def _usage() -> str:
    lines = ["usage: python -m benchmark <stage> [--help] [options]", "", "stages:"]
    lines += [f"  {name:<20} {desc}" for name, (_, desc) in STAGES.items()]
    lines += ["", "The DVC pipeline (dvc.yaml) runs fetch -> model -> evaluate -> report; see README.md."]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one stage with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"error: unknown stage {stage!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(STAGES[stage][0])
    try:
        return int(module.main(rest) or 0)
    except BenchmarkError as e:
        print(f"error ({stage}): {e}", file=sys.stderr)
        return 2
