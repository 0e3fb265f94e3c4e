"""Figure of unconditional samples of a hierarchical VAE: continuous against integer latents.

Two panels side by side, each a grid of ``n`` samples drawn top-down from the prior from the same
seed (the same ε per latent element): left ``z = μ + σε`` (continuous latents), right
``z = μ + round(σε)`` (integer latents, what the codec can represent). Written as PNG and PDF
through :func:`benchmark.plots.common.save_figure` (fixed metadata, no pyplot state).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List

import numpy as np
from matplotlib.figure import Figure

from benchmark.plots.common import RC, save_figure


def tile(images: np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """Tile uint8 (n, H, W, 3) images row-major into one (rows·(H+pad)−pad, cols·(W+pad)−pad, 3)
    uint8 image on a white background. Raises ``ValueError`` for another shape or dtype."""
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8 or cols < 1:
        raise ValueError(f"tile: expected uint8 (n, H, W, 3) images and cols >= 1, got {images.dtype} {images.shape}, cols={cols}")
    n, h, w, _ = images.shape
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    return out


def plot_samples(continuous: np.ndarray, integer: np.ndarray, title: str, out_stem: Path) -> List[Path]:
    """Write ``<out_stem>.png`` and ``.pdf``: the two grids of samples, uint8 (n, H, W, 3) each
    (same n, same seed), side by side with their labels. Returns the two paths."""
    import matplotlib

    cols = max(1, int(math.ceil(math.sqrt(len(continuous)))))
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(8.0, 4.4))
        for k, (grid, label) in enumerate(
            [(continuous, "continuous latents  z = μ + σε"), (integer, "integer latents  z = μ + round(σε)")]
        ):
            ax = fig.add_subplot(1, 2, k + 1)
            ax.imshow(tile(grid, cols), interpolation="nearest")
            ax.set_title(label, fontsize=9)
            ax.set_axis_off()
        fig.suptitle(title, fontsize=10)
        return save_figure(fig, out_stem)
