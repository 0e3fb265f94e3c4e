"""The ``wikipedia-photos`` source: 49 high-resolution photographs, pinned by pixel SHA-256."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Dict, List, Optional

from benchmark.config import DatasetConfig
from benchmark.data.images import ManifestRow
from benchmark.data.sources.common import (
    NoOptions,
    SourceResult,
    _fetch_pixel_verified,
    _hash_table,
    _select,
    register_source,
)

WIKIPEDIA_PHOTOS_COMMIT = "0b8a89db599a384124fb991b85d40cfd63c73d58"
WIKIPEDIA_PHOTOS_URL = (
    f"https://raw.githubusercontent.com/Zelex/images/{WIKIPEDIA_PHOTOS_COMMIT}/wikipedia-photos/{{number}}.png"
)
WIKIPEDIA_PHOTOS_SHA256_FILE = "wikipedia_photos_sha256.txt"  # package data of benchmark.data
_WIKI_LINE = re.compile(r"^([0-9a-f]{64})  (\d{3})\.png  (\d+)x(\d+)$")


@functools.lru_cache(maxsize=None)
def wikipedia_photos_sha256() -> Dict[str, str]:
    """Image name (``wiki<NNN>``, e.g. ``wiki001``) -> SHA-256 of its decoded pixels
    (``pixel_sha256``: (H, W, 3) uint8, row-major), read from the package data file
    ``benchmark/data/wikipedia_photos_sha256.txt`` (lines ``<sha256>  <NNN>.png  <W>x<H>``, ``#``
    comments; 49 images). Pixels, not file bytes, are pinned: PNG bytes may differ between copies.

    Raises ``RuntimeError`` naming the file and line if the installed package's copy is malformed.
    """
    return _hash_table(WIKIPEDIA_PHOTOS_SHA256_FILE, _WIKI_LINE, lambda m: f"wiki{m[2]}", "<sha256>  <NNN>.png  <W>x<H>")


@register_source("wikipedia-photos", NoOptions)
def wikipedia_photos(cfg: DatasetConfig, options: NoOptions, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """49 high-resolution photographs (downsampled Wikimedia Commons JPEGs, long side 1058 to
    1724 px, sizes not multiples of 64; Creative Commons, attribution list in the README beside
    them) from the Zelex/images GitHub repository at commit ``WIKIPEDIA_PHOTOS_COMMIT``, named
    ``wiki<NNN>`` (``wiki001`` .. ``wiki049``; a letter first so that no table reads the name as
    a number). A CLIC-like high-resolution test set, large enough for patch FID (1087 HiFiC
    256x256 patches over the 49 images).

    No options of its own; ``images`` (names to keep) and ``max_images`` (the first N of the
    sorted names) select. Each PNG is fetched with ``fetch_url`` (mirror first), verified by the
    SHA-256 of its decoded pixels (``wikipedia_photos_sha256()``) and stored as it was fetched.

    Raises ``ConfigError`` for unknown names, ``DownloadError`` (naming the URL and, for wrong
    pixels, ``NNN.png`` with both hashes) if a file cannot be fetched, does not decode or differs.
    """
    table = wikipedia_photos_sha256()
    rows: List[ManifestRow] = []
    for name in _select(cfg, list(table)):
        number = name[len("wiki"):]
        url = WIKIPEDIA_PHOTOS_URL.format(number=number)
        rows.append(_fetch_pixel_verified(url, name, f"{number}.png", table[name], images_dir, mirror))
    return rows, []
