"""Stage ``samples``: unconditional samples of a trained hierarchical VAE (QRes-VAE), figure.

Draws ``samples.n`` samples of ``samples.size`` x ``samples.size`` pixels from the prior of the
checkpoint, top-down, once with continuous latents and once with integer latents from the same
seed (:meth:`benchmark.models.qres.OfficialQResVAE.sample`), and writes the figure
(:func:`benchmark.plots.samples.plot_samples`) as PNG and PDF. The model must have a ``sample``
method (the hierarchical model); others are refused with a ``ConfigError``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import torch

from benchmark.config import ConfigError, load_config
from benchmark.models.checkpoint import load_model
from benchmark.plots.samples import plot_samples


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark samples",
        description="Unconditional samples of a hierarchical VAE checkpoint (continuous and integer latents, same seed): PNG + PDF.",
    )
    p.add_argument("--params", default="params.yaml", help="params file, or a run overlay (reads samples)")
    p.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint of the model stage (models/<budget>/<model>/q<k>.pt)")
    p.add_argument("--out", required=True, type=Path, help="output path without extension (.png and .pdf are written)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    s = load_config(args.params).samples
    model, meta = load_model(args.checkpoint)
    if not hasattr(model, "sample"):
        raise ConfigError(f"{args.checkpoint}: {meta['arch']} cannot sample from its prior (only the hierarchical VAE can)")
    grids = {}
    with torch.no_grad():
        for integer in (False, True):
            x = model.sample(s.n, s.size, s.size, integer=integer, seed=s.seed, temperature=s.temperature)
            grids[integer] = x.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    rp = str(meta.get("rate_point", "?"))
    title = (
        f"{meta['arch']} {rp if rp.startswith('q') else 'q' + rp} (λ={meta.get('lmbda')}, {meta.get('step')} steps): "
        f"prior samples, seed {s.seed}, τ={s.temperature}"
    )
    paths = plot_samples(grids[False], grids[True], title, args.out)
    print(f"samples: {s.n} x {s.size}x{s.size} from {args.checkpoint} -> {', '.join(map(str, paths))}")
    return 0
