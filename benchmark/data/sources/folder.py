"""The ``folder`` source: every image file of a local directory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Literal, Optional

from pydantic import StrictStr
from pydantic.dataclasses import dataclass

from benchmark.config import ConfigError, DatasetConfig
from benchmark.data.images import IMAGE_SUFFIXES, ImageError, ManifestRow, load_rgb8, save_png_atomic
from benchmark.data.sources.common import STRICT, Skipped, SourceResult, _row, _select, register_source


@dataclass(frozen=True, config=STRICT)
class FolderOptions:
    """The ``folder`` source's keys under ``datasets.<name>``: ``path``, the directory of image
    files (required; ``~`` is expanded); ``alpha``, what to do with a transparent alpha channel:
    ``refuse`` (skip the file) or ``flatten`` (composite it onto white)."""

    path: StrictStr
    alpha: Literal["refuse", "flatten"] = "refuse"


def _image_files(src: Path, key: str) -> Dict[str, Path]:
    """Stem -> file for the files in ``src`` with an ``IMAGE_SUFFIXES`` suffix (any case), in name
    order. Raises ``ConfigError`` naming ``key`` if two share a stem (case-insensitive)."""
    files: Dict[str, Path] = {}
    lower: Dict[str, Path] = {}
    for p in sorted(src.iterdir(), key=lambda q: q.name):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        stem = p.stem.lower()
        if stem in lower:
            raise ConfigError(
                f"{key}: {lower[stem].name} and {p.name} in {src} have the same name "
                f"{p.stem!r} (case-insensitive); rename one"
            )
        lower[stem] = p
        files[p.stem] = p
    return files


@register_source("folder", FolderOptions)
def folder(cfg: DatasetConfig, options: FolderOptions, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """Every file in ``options.path`` (not recursive) whose suffix is in ``IMAGE_SUFFIXES`` (any
    case), in name order, named by its stem. Each is read with ``load_rgb8(alpha=options.alpha)``
    and written as ``<stem>.png``; a file it rejects (``ImageError``) is skipped, recorded and
    warned about on stderr. ``max_images`` counts usable images: files are read in name order
    until N are kept.

    Raises ``ConfigError`` if the directory is missing, two files share a stem (case-insensitive),
    ``cfg.images`` names an unknown stem, or no usable image is left.
    """
    key = f"datasets.{cfg.name}.path"
    src = Path(options.path).expanduser()
    if not src.is_dir():
        raise ConfigError(f"{key}: {src} is not a directory")
    files = _image_files(src, key)
    names = _select(cfg, list(files), apply_max=False)  # max_images counts usable images
    limit = cfg.max_images if cfg.max_images is not None else len(names)
    rows: List[ManifestRow] = []
    skipped: Skipped = []
    for name in names:
        if len(rows) >= limit:
            break
        p = files[name]
        try:
            arr = load_rgb8(p, alpha=options.alpha)
        except ImageError as e:
            reason = str(e).removeprefix(f"{p}: ")
            skipped.append((p.name, reason))
            print(f"warning: skipping {p}: {reason}", file=sys.stderr)
            continue
        save_png_atomic(arr, images_dir / f"{name}.png")
        rows.append(_row(name, images_dir, arr, str(p)))
    if not rows:
        raise ConfigError(
            f"{key}: no usable image in {src} "
            f"({len(files)} image file(s), {len(skipped)} skipped; suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return rows, skipped
