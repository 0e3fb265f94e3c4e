"""Stage ``samples``: unconditional samples of a trained hierarchical VAE (QRes-VAE), figure.

Draws ``n`` samples of ``size`` x ``size`` pixels from the prior of the checkpoint, top-down, once
with continuous latents and once with integer latents from the same seed
(:meth:`benchmark.models.vae.QResVAE.sample`), and writes the figure
(:func:`benchmark.plots.samples.plot_samples`) as PNG and PDF. The model must have a ``sample``
method (the hierarchical model); others are refused with a ``ConfigError``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from benchmark.config import ConfigError, read_params


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark samples",
        description="Unconditional samples of a hierarchical VAE checkpoint (continuous and integer latents, same seed): PNG + PDF.",
    )
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint of the model stage (models/<budget>/<model>/q<k>.pt)")
    p.add_argument("--out", required=True, type=Path, help="output path without extension (.png and .pdf are written)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    s = read_params(args.params).get("samples") or {}
    n, size, seed = int(s.get("n", 16)), int(s.get("size", 64)), int(s.get("seed", 0))
    temperature = float(s.get("temperature", 1.0))
    if n < 1 or size < 64 or size % 64:
        raise ConfigError(f"{args.params}: samples.n must be >= 1 and samples.size a multiple of 64, got n={n}, size={size}")

    import torch

    from benchmark.models.checkpoint import load_model
    from benchmark.plots.samples import plot_samples

    model, meta = load_model(args.checkpoint)
    if not hasattr(model, "sample"):
        raise ConfigError(f"{args.checkpoint}: {meta['arch']} cannot sample from its prior (only the hierarchical VAE can)")
    grids = {}
    with torch.no_grad():
        for integer in (False, True):
            x = model.sample(n, size, size, integer=integer, seed=seed, temperature=temperature)
            grids[integer] = x.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    rp = str(meta.get("rate_point", "?"))
    title = f"{meta['arch']} {rp if rp.startswith('q') else 'q' + rp} (λ={meta.get('lmbda')}, {meta.get('step')} steps): prior samples, seed {seed}, τ={temperature}"
    paths = plot_samples(grids[False], grids[True], title, args.out)
    print(f"samples: {n} x {size}x{size} from {args.checkpoint} -> {', '.join(map(str, paths))}")
    return 0
