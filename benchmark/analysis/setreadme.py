"""``results/<set>/README.md``: the report of one data set in one page, readable offline and on a
code host: the figures (relative links), the main BD tables, the codecs and how each was
obtained, and the provenance of the rows (git revision, packages, devices). It names no path of
the machine that wrote it: every link is relative to the README's folder."""

from __future__ import annotations

from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

import pandas as pd

from benchmark.analysis.bdtable import main_tables, method_text
from benchmark.analysis.origins import Origin
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


def codec_table(df: pd.DataFrame, summary: pd.DataFrame, origins: Mapping[str, Origin], codecs: Sequence[str]) -> List[str]:
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
        how = origins[c].text + (f" ({origins[c].detail})" if origins[c].detail else "") if c in origins else "-"
        lines.append(f"| {c} | {how} | {libs} | {(param[0] + ' ') if param else ''}{points} | {bpp} | {hashes} |")
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
    origins: Mapping[str, Origin],
    figures: Sequence[Tuple[Path, Path]],
    links: Mapping[str, str],
    *,
    published: Sequence[str] = (),
    left_out: Sequence[str] = (),
    missing_figures: Optional[Mapping[str, str]] = None,
) -> str:
    """The README of one data set's results. ``figures``: the (PNG, PDF) pairs written (the PNG
    embedded, in that order, the PDF linked; relative to ``out_dir``); ``links``: file
    or folder relative to ``out_dir`` -> what it holds (listed under "Files"; only those that
    exist are listed). ``published`` / ``left_out``: the published curves the RD figures draw
    and those they leave out (learned architectures not in the run); ``missing_figures``:
    metric label -> why it has no values, hence no figure."""
    codecs = list(dict.fromkeys(df.codec))
    n_images = int(df.image.nunique())
    lines = [
        f"# Results on {dataset}",
        "",
        f"{n_images} images, {len(codecs)} codecs. Written by the `report` stage from the per-image rows in "
        "`per_image/` (do not edit: `dvc repro` rewrites it). How each codec was obtained: \"Codecs\" below.",
        "",
    ]
    rd = [f for f in figures if Path(f[0]).stem.startswith("rd-")]
    other = [f for f in figures if f not in rd]
    lines += ["## Rate-distortion", "", rd_text(published, left_out), ""] + _figure_lines(rd, out_dir)
    lines += [f"## BD-rate ({cfg.main_method})", "", method_text(cfg), ""]
    lines += main_tables(bd, summary, cfg.main_method, cfg.counterpart_notes, cfg.ci_level)
    lines += ["Every method, BD-quality and the rate overlaps: [bd_rate.md](bd_rate.md).", ""]
    if other or missing_figures:
        lines += ["## Perception", "", "Which perceptual metrics were computed, and why others are missing: "
                  "[perception.md](perception.md).", ""]
        if missing_figures:
            lines += ["No figure for a metric without values:", ""]
            lines += [f"- {label}: {why}" for label, why in missing_figures.items()] + [""]
        lines += _figure_lines(other, out_dir)
    lines += ["## Codecs", ""] + codec_table(df, summary, origins, codecs) + [""]
    lines += ["## Provenance", ""] + provenance_lines(df) + [""]
    present = [(p, what) for p, what in links.items() if (out_dir / p).exists()]
    if present:
        lines += ["## Files", ""] + [f"- [{p}]({p}): {what}" for p, what in present] + [""]
    return "\n".join(lines).rstrip() + "\n"


def rd_text(published: Sequence[str], left_out: Sequence[str]) -> str:
    """What the RD figures show, in words, with the published curves drawn and left out."""
    text = (
        "Our codecs solid, each codec family in one colour and marker (`benchmark/plots/styles.py`); the legend "
        "groups them by how they were obtained (classical; trained here, with the budget and steps; published "
        "weights) with each learned model's parameter count. "
    )
    if published:
        text += (
            "Published curves dashed, in the colour of our codec of the same family (`report.published_counterparts`: "
            f"the same codec, or the same architecture): {', '.join(published)}. "
        )
    if left_out:
        text += f"Not drawn (published curves of learned architectures this run does not have): {', '.join(left_out)}. "
    text += ("Where the learned codecs sit at low rates, a second panel zooms on their rates (the dotted box in the "
             "first panel).")
    return text


def _figure_lines(figures: Sequence[Tuple[Path, Path]], out_dir: Path) -> List[str]:
    """Each PNG embedded under a bold title, with a link to its PDF where there is one; links
    relative to ``out_dir``."""
    lines: List[str] = []
    for f, pdf in figures:
        rel = Path(f).relative_to(out_dir).as_posix()
        pdf = Path(pdf)
        title = _figure_title(Path(f).stem)
        vector = f" ([PDF]({pdf.relative_to(out_dir).as_posix()}))" if pdf.is_file() else ""
        lines += [f"**{title}**{vector}", "", f"![{title}]({rel})", ""]
    return lines
