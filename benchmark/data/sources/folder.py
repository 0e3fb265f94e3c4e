"""The ``folder`` source: every image file of a local directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple

from pydantic import StrictStr
from pydantic.dataclasses import dataclass

from benchmark.config import ConfigError, DatasetConfig
from benchmark.data.images import IMAGE_SUFFIXES, ImageError, ManifestRow, load_rgb8, pixel_sha256, save_png_atomic
from benchmark.data.sources.common import STRICT, Skipped, SourceResult, _row, _select, register_source


@dataclass(frozen=True, config=STRICT)
class FolderOptions:
    """The ``folder`` source's keys under ``datasets.<name>``: ``path``, the directory of image
    files (required; ``~`` is expanded); ``alpha``, what to do with a transparent alpha channel:
    ``refuse`` (skip the file) or ``flatten`` (composite it onto white)."""

    path: StrictStr
    alpha: Literal["refuse", "flatten"] = "refuse"


def _entries(src: Path, key: str) -> Tuple[Dict[str, Path], Skipped]:
    """The entries of ``src`` in name order: (stem -> image file, for regular files or symlinks
    to one with an ``IMAGE_SUFFIXES`` suffix in any case; ``(entry, reason)`` for every other
    entry: a directory, a dangling symlink, a file of another suffix, anything not a regular
    file). Raises ``ConfigError`` naming ``key`` if two image files share a stem (case-insensitive)."""
    files: Dict[str, Path] = {}
    lower: Dict[str, Path] = {}
    unused: Skipped = []
    for p in sorted(src.iterdir(), key=lambda q: q.name):
        image_suffix = p.suffix.lower() in IMAGE_SUFFIXES
        if p.is_symlink() and not p.exists():
            unused.append((p.name, f"a symlink to {os.readlink(p)}, which does not exist"))
        elif p.is_dir():
            unused.append((p.name, "a directory (the folder source does not read subdirectories)"))
        elif not p.is_file():
            unused.append((p.name, "not a regular file"))
        elif not image_suffix:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            unused.append((p.name, f"not an image file name (suffix {p.suffix or 'none'!r}; read: {suffixes})"))
        else:
            stem = p.stem.lower()
            if stem in lower:
                raise ConfigError(
                    f"{key}: {lower[stem].name} and {p.name} in {src} have the same name "
                    f"{p.stem!r} (case-insensitive); rename one"
                )
            lower[stem] = p
            files[p.stem] = p
    return files, unused


@register_source("folder", FolderOptions)
def folder(cfg: DatasetConfig, options: FolderOptions, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """Every file in ``options.path`` (not recursive) whose suffix is in ``IMAGE_SUFFIXES`` (any
    case), in name order, named by its stem. Each is read with ``load_rgb8(alpha=options.alpha)``
    and written as ``<stem>.png``. ``max_images`` counts usable images: files are read in name
    order until N are kept.

    Every entry of the directory that is not used is skipped with its reason (returned, hence in
    ``skipped.csv``): a file ``load_rgb8`` rejects (``ImageError``), a directory, a dangling
    symlink, a file without an image suffix, anything not a regular file, an image whose pixels
    are identical to an earlier one's (``duplicate``, below), and the images left out by
    ``cfg.images`` or ``max_images``. The reasons of the first kinds are printed to stderr one
    per entry, the selection's as one line.

    Duplicates are scored once: an image whose decoded pixels (their SHA-256) equal those of an
    image earlier in name order (a symlink to it, a copy, the same photo in another format) is
    skipped naming that image, so that no photograph weighs twice in the means, the BD-rates
    and their bootstrap. Skipping rather than refusing the set: the pixels are the same, so no
    result depends on which name is kept, and a folder organised with links stays usable.

    Raises ``ConfigError`` if the directory is missing, two files share a stem (case-insensitive),
    ``cfg.images`` names an unknown stem, or no usable image is left.
    """
    key = f"datasets.{cfg.name}.path"
    src = Path(options.path).expanduser()
    if not src.is_dir():
        raise ConfigError(f"{key}: {src} is not a directory")
    files, skipped = _entries(src, key)
    for entry, reason in skipped:
        print(f"warning: skipping {src / entry}: {reason}", file=sys.stderr)
    names = _select(cfg, list(files), apply_max=False)  # max_images counts usable images
    limit = cfg.max_images if cfg.max_images is not None else len(names)
    unselected = [(files[n].name, f"not in datasets.{cfg.name}.images") for n in sorted(set(files) - set(names))]
    rows: List[ManifestRow] = []
    seen: Dict[str, str] = {}  # pixel SHA-256 -> the name kept
    for i, name in enumerate(names):
        if len(rows) >= limit:
            unselected += [(files[n].name, f"beyond datasets.{cfg.name}.max_images ({limit})") for n in names[i:]]
            break
        p = files[name]
        try:
            arr = load_rgb8(p, alpha=options.alpha)
        except ImageError as e:
            reason = str(e).removeprefix(f"{p}: ")
            skipped.append((p.name, reason))
            print(f"warning: skipping {p}: {reason}", file=sys.stderr)
            continue
        sha = pixel_sha256(arr)
        if sha in seen:
            reason = f"duplicate: the same pixels as {files[seen[sha]].name} (scored once, as {seen[sha]!r})"
            skipped.append((p.name, reason))
            print(f"warning: skipping {p}: {reason}", file=sys.stderr)
            continue
        seen[sha] = name
        save_png_atomic(arr, images_dir / f"{name}.png")
        rows.append(_row(name, images_dir, arr, str(p)))
    if unselected:
        n = len(unselected)
        print(f"note: {n} image file(s) of {src} not selected (images / max_images), listed in skipped.csv", file=sys.stderr)
    if not rows:
        raise ConfigError(
            f"{key}: no usable image in {src} "
            f"({len(files)} image file(s), {len(skipped)} skipped; suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return rows, skipped + unselected
