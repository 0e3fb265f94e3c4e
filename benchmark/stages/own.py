"""Command ``own`` (not a DVC stage): benchmark your own CompressAI checkpoints, or your own
images, against a run's codecs, and write the report stage's tables and figures for them
(``benchmark.own``). Nothing is written outside ``--out``; an ``--out`` that is not empty is
refused unless ``--overwrite``.

    # your model on Kodak, against the committed Kodak run (one checkpoint per rate point)
    python -m benchmark own --params runs/kodak/params.yaml --data data/kodak \\
        --baseline results/kodak/per_image --baseline-perception results/kodak/perception \\
        --arch mbt2018-mean --checkpoint q1.pth.tar q2.pth.tar q3.pth.tar --out results/own/kodak-mine

    # your images, coded by the run's classical codecs (and your model, if given)
    python -m benchmark own --images ~/photos --out results/own/photos
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from benchmark.config import load_config
from benchmark.own import run_own, summary_lines

DESCRIPTION = """\
Benchmark your own model or images against the codecs of a run, without editing dvc.yaml.
Your model: CompressAI checkpoint files (as `python -m compressai.utils.eval_model checkpoint -a ARCH -p
PATH...` reads them; one file per rate point), coded into real bitstreams by the learned codec and scored
like the run's codecs. Against a data set the run has results for (--data, --baseline), the run's rows are
copied beside yours; with --images, the run's codecs code your images. OUT gets the report stage's
outputs: README.md, summary.csv, bd_rate.csv/.md (BD-rates with bootstrap intervals and wins),
metrics.json, figures/ (PNG), figures-pdf/, compressai/ JSON, per_image/ and perception/."""


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments (``python -m benchmark own --help``)."""
    p = argparse.ArgumentParser(prog="benchmark own", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", default="params.yaml",
                   help="params of the run to compare with (its codecs, report and metrics settings; "
                   "e.g. runs/kodak/params.yaml; default: %(default)s)")
    p.add_argument("--out", required=True, type=Path, help="output folder (refused if not empty, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace what this command writes in a non-empty --out")
    yours = p.add_argument_group("your model (CompressAI checkpoints)")
    yours.add_argument("-a", "--arch",
                       help="CompressAI architecture, e.g. bmshj2018-hyperprior, mbt2018-mean, mbt2018, cheng2020-anchor")
    yours.add_argument("-p", "--checkpoint", nargs="+", type=Path, default=[],
                       help="checkpoint files, one per rate point (a state_dict, or a dict with it under 'state_dict', "
                       "'network' or 'model_state_dict', as CompressAI's examples/train.py saves it)")
    yours.add_argument("--name", help="your codec's name in tables and figures (default: <arch>-yours)")
    yours.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                       help="device your model codes on (default: %(default)s)")
    base = p.add_argument_group("against a run's results on a data set")
    base.add_argument("--data", type=Path, help="the run's fetched data set (data/<set>, with manifest.csv and references/)")
    base.add_argument("--baseline", type=Path, help="the run's per-image results (results/<set>/per_image)")
    base.add_argument("--baseline-perception", type=Path,
                      help="the run's per-set perceptual results (results/<set>/perception; optional)")
    imgs = p.add_argument_group("your images")
    imgs.add_argument("--images", type=Path, help="a folder of images (PNG/JPEG/TIFF/BMP/WebP/PPM, not recursive)")
    imgs.add_argument("--dataset-name", help="the data set's name in the results (default: the folder's name)")
    imgs.add_argument("--codecs", nargs="+", help="the run's codecs to code the images with (default: its classical "
                      "codecs, and its learned ones when --checkpoints is given)")
    imgs.add_argument("--checkpoints",
                      help="template of the run's learned checkpoints, e.g. 'models/cpu/{model}/q{rate_point}.pt'")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: evaluate.workers; 0 = all cores)")
    p.add_argument("--mirror", default=None,
                   help="mirror directory for metric weight files (default: data.mirror, else $BENCHMARK_MIRROR)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.params)
    run_own(args, cfg)
    for line in summary_lines(args.out):
        print(line)
    return 0
