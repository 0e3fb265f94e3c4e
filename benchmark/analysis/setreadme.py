"""``results/<set>/README.md``: the report of one data set in one page, readable offline and on a
code host: the figures (relative links), the main BD tables, the codecs and how each was
obtained, and the provenance of the rows (git revision, packages, devices). It names no path of
the machine that wrote it: every link is relative to the README's folder."""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Sequence

import pandas as pd

from benchmark.analysis.bdtable import main_tables, method_text
from benchmark.config import ReportConfig
from benchmark.metrics.base import METRICS

FIGURE_TITLES = {"rd": "Rate-distortion", "rdp": "Rate-perception", "dp-psnr": "Distortion-perception at matched rates"}


def _figure_title(stem: str) -> str:
    """``rd-psnr`` -> ``Rate-distortion: PSNR (RGB)`` (the metric's label where it is registered)."""
    for prefix in sorted(FIGURE_TITLES, key=len, reverse=True):
        if stem.startswith(prefix + "-"):
            rest = stem[len(prefix) + 1:]
            label = next((m.label for m in METRICS.values() if m.file_stem == rest), rest)
            return f"{FIGURE_TITLES[prefix]}: {label}"
    return stem


def _unique(values) -> List[str]:
    return list(dict.fromkeys(str(v) for v in values if isinstance(v, str) and v))


def _packages(df: pd.DataFrame) -> List[str]:
    """Every ``name=version`` of the rows' ``packages`` column, once, in order."""
    out: List[str] = []
    for s in _unique(df.get("packages", pd.Series(dtype=str))):
        out += [p for p in s.split(";") if p and p not in out]
    return out


def codec_table(df: pd.DataFrame, summary: pd.DataFrame, origins: Mapping[str, str], codecs: Sequence[str]) -> List[str]:
    """A row per codec: how it was obtained, the libraries that coded the bytes (from the rows),
    its rate points and bpp range, and the params hash of its entry."""
    lines = ["| codec | how it was obtained | libraries (from the rows) | rate points | bpp | params hash |",
             "|---|---|---|---|---|---|"]
    for c in codecs:
        rows, s = df[df.codec == c], summary[summary.codec == c]
        points = ", ".join(f"{v:g}" for v in sorted(rows.rate_point.unique()))
        param = _unique(rows.rate_param)
        libs = "; ".join(_unique(rows.codec_library)) or "-"
        hashes = ", ".join(f"`{h}`" for h in _unique(rows.params_hash)) or "-"
        bpp = f"{s.bpp.min():.3f}-{s.bpp.max():.3f}" if len(s) else "-"
        lines.append(f"| {c} | {origins.get(c, '-')} | {libs} | {(param[0] + ' ') if param else ''}{points} | {bpp} | {hashes} |")
    return lines


def provenance_lines(df: pd.DataFrame) -> List[str]:
    """Git revisions, devices and package versions recorded in the rows."""
    revs = _unique(df.get("git_rev", pd.Series(dtype=str)))
    devices = _unique(df.get("device", pd.Series(dtype=str)))
    lines = [
        f"- Git revision of the code that made the rows: {', '.join(f'`{r}`' for r in revs) or 'not recorded'}"
        + (" (rows from more than one revision)" if len(revs) > 1 else ""),
        f"- Devices: {'; '.join(devices) or 'not recorded'}",
        f"- Packages: {', '.join(f'`{p}`' for p in _packages(df)) or 'not recorded'}",
    ]
    return lines


def dataset_readme(
    dataset: str,
    out_dir: Path,
    df: pd.DataFrame,
    summary: pd.DataFrame,
    bd: pd.DataFrame,
    cfg: ReportConfig,
    origins: Mapping[str, str],
    figures: Sequence[Path],
    links: Mapping[str, str],
) -> str:
    """The README of one data set's results. ``figures``: the PNGs written (embedded in that
    order, linked relative to ``out_dir``); ``links``: file or folder relative to ``out_dir`` ->
    what it holds (listed under "Files"; only those that exist are listed)."""
    codecs = list(dict.fromkeys(df.codec))
    n_images = int(df.image.nunique())
    lines = [
        f"# Results on {dataset}",
        "",
        f"{n_images} images, {len(codecs)} codecs. Written by the `report` stage from the per-image rows in "
        "`per_image/` (do not edit: `dvc repro` rewrites it). How each codec was obtained: \"Codecs\" below.",
        "",
    ]
    rd = [f for f in figures if Path(f).stem.startswith("rd-")]
    other = [f for f in figures if f not in rd]
    lines += ["## Rate-distortion", ""] + _figure_lines(rd, out_dir)
    lines += [f"## BD-rate ({cfg.main_method})", "", method_text(cfg), ""]
    lines += main_tables(bd, summary, cfg.main_method, cfg.counterpart_notes, cfg.ci_level)
    lines += ["Every method, BD-quality and the rate overlaps: [bd_rate.md](bd_rate.md).", ""]
    if other:
        lines += ["## Perception", "", "Which perceptual metrics were computed, and why others are missing: "
                  "[perception.md](perception.md).", ""] + _figure_lines(other, out_dir)
    lines += ["## Codecs", ""] + codec_table(df, summary, origins, codecs) + [""]
    lines += ["## Provenance", ""] + provenance_lines(df) + [""]
    present = [(p, what) for p, what in links.items() if (out_dir / p).exists()]
    if present:
        lines += ["## Files", ""] + [f"- [{p}]({p}): {what}" for p, what in present] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _figure_lines(figures: Sequence[Path], out_dir: Path) -> List[str]:
    """Each PNG embedded under a bold title, with a link to its PDF where there is one; links
    relative to ``out_dir``."""
    lines: List[str] = []
    for f in figures:
        rel = Path(f).relative_to(out_dir).as_posix()
        pdf = Path(f).with_suffix(".pdf")
        title = _figure_title(Path(f).stem)
        vector = f" ([PDF]({pdf.relative_to(out_dir).as_posix()}))" if pdf.is_file() else ""
        lines += [f"**{title}**{vector}", "", f"![{title}]({rel})", ""]
    return lines
