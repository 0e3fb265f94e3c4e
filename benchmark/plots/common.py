"""Writing figures: PNG (raster, 200 dpi) and PDF (vector, TrueType fonts) with fixed metadata.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend), so
the same inputs give the same bytes for a given matplotlib version.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import List, Optional

import matplotlib
from matplotlib.figure import Figure

from benchmark.fileio import write_bytes_atomic

PNG_DPI = 200
RC = {"pdf.fonttype": 42}  # TrueType in PDFs (many venues reject Type 3 fonts)


def save_figure(fig: Figure, out_stem: Path, pdf_stem: Optional[Path] = None) -> List[Path]:
    """Write ``fig`` to ``out_stem.png`` (200 dpi) and ``<pdf_stem or out_stem>.pdf`` (vector),
    each atomically (parent directories created), tight bounding box, no timestamp / software
    metadata. Returns [png_path, pdf_path]. Raises ``OSError`` if a file cannot be written."""
    stems = {"png": Path(out_stem), "pdf": Path(pdf_stem) if pdf_stem is not None else Path(out_stem)}
    paths = []
    with matplotlib.rc_context(RC):
        for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=PNG_DPI, bbox_inches="tight", metadata=meta)
            stem = stems[fmt]
            stem.parent.mkdir(parents=True, exist_ok=True)
            paths.append(write_bytes_atomic(stem.with_name(f"{stem.name}.{fmt}"), buf.getvalue()))
    return paths
