"""Writing figures: PNG (raster, 200 dpi) and PDF (vector, TrueType fonts) with fixed metadata.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend), so
the same inputs give the same bytes for a given matplotlib version.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import List

import matplotlib
from matplotlib.figure import Figure

from benchmark.fileio import write_bytes_atomic

PNG_DPI = 200
RC = {"pdf.fonttype": 42}  # TrueType in PDFs (many venues reject Type 3 fonts)


def save_figure(fig: Figure, out_stem: Path) -> List[Path]:
    """Write ``fig`` to ``out_stem.png`` (200 dpi) and ``out_stem.pdf`` (vector), each atomically,
    tight bounding box, no timestamp / software metadata. Returns [png_path, pdf_path].
    Raises ``OSError`` if a file cannot be written."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(RC):
        for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=PNG_DPI, bbox_inches="tight", metadata=meta)
            paths.append(write_bytes_atomic(out_stem.with_name(f"{out_stem.name}.{fmt}"), buf.getvalue()))
    return paths
