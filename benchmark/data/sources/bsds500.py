"""The ``bsds500`` source: Berkeley Segmentation Data Set images, pinned by file SHA-256."""

from __future__ import annotations

import functools
import re
import tempfile
import typing
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple

from pydantic.dataclasses import dataclass

from benchmark.config import ConfigError, DatasetConfig
from benchmark.data.images import ManifestRow, save_png_atomic
from benchmark.data.sources.common import STRICT, SourceResult, _fetch_decoded, _hash_table, _row, _select, register_source

BSDS500_COMMIT = "a04b7c6c3a9f0ace74bf205c72a43d32e1c72722"
BSDS500_URL = (
    f"https://raw.githubusercontent.com/BIDS/BSDS500/{BSDS500_COMMIT}/BSDS500/data/images/{{split}}/{{id}}.jpg"
)
Split = Literal["train", "val", "test"]
BSDS500_SPLITS: Tuple[str, ...] = typing.get_args(Split)
BSDS500_DEFAULT_SPLITS = ("train", "val")
BSDS500_SHA256_FILE = "bsds500_sha256.txt"  # package data of benchmark.data
_SHA256_LINE = re.compile(r"^([0-9a-f]{64})  (train|val|test)/(\d+)\.jpg$")


@dataclass(frozen=True, config=STRICT)
class Bsds500Options:
    """The ``bsds500`` source's keys under ``datasets.<name>``: ``splits``, which of ``train``,
    ``val``, ``test`` (a non-empty list of distinct names; default ``[train, val]``, the 300
    training images)."""

    splits: Tuple[Split, ...] = BSDS500_DEFAULT_SPLITS


@functools.lru_cache(maxsize=None)
def bsds500_sha256() -> Dict[str, str]:
    """Image name (``<split>-<id>``, e.g. ``train-100075``) -> SHA-256 of the JPEG file's bytes at
    ``BSDS500_URL``, read from the package data file ``benchmark/data/bsds500_sha256.txt``
    (sha256sum format, ``#`` comments; 200 train, 100 val and 200 test images).

    Raises ``RuntimeError`` naming the file and line if the installed package's copy is malformed.
    """
    return _hash_table(BSDS500_SHA256_FILE, _SHA256_LINE, lambda m: f"{m[2]}-{m[3]}", "<sha256>  <split>/<id>.jpg")


def _known_names(cfg: DatasetConfig, splits: Tuple[str, ...]) -> List[str]:
    """The image names of ``splits``; ``ConfigError`` if ``splits`` is empty or repeats a split,
    or ``cfg.images`` names an image outside them."""
    if not splits or len(set(splits)) != len(splits):
        raise ConfigError(
            f"datasets.{cfg.name}.splits must be a non-empty list of distinct splits out of "
            f"{list(BSDS500_SPLITS)}, got {list(splits)!r}"
        )
    known = [n for n in bsds500_sha256() if n.split("-", 1)[0] in splits]
    unknown = sorted(set(cfg.images or ()) - set(known))
    if unknown:
        raise ConfigError(
            f"datasets.{cfg.name}.images: unknown image(s) {unknown} for source 'bsds500' with splits "
            f"{list(splits)}; names are <split>-<id>, e.g. {known[0]} (list: benchmark/data/{BSDS500_SHA256_FILE})"
        )
    return known


@register_source("bsds500", Bsds500Options)
def bsds500(cfg: DatasetConfig, options: Bsds500Options, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """BSDS500 images (Arbelaez et al., TPAMI 2011; 481x321 or 321x481 JPEGs) from the BIDS/BSDS500
    GitHub repository at commit ``BSDS500_COMMIT``, named ``<split>-<id>`` (e.g. ``train-100075``).

    Options: ``Bsds500Options`` (``splits``); ``images`` (names to keep, all in ``splits``) and
    ``max_images`` (the first N of the sorted names). Each JPEG is fetched with ``fetch_url``
    (mirror first), its file bytes checked against ``bsds500_sha256()``, decoded once by the
    installed Pillow (``load_rgb8``) and stored as a lossless ``<name>.png``; the manifest's
    pixel hashes pin those decoded pixels. The JPEG itself is not kept.

    Raises ``ConfigError`` for bad ``splits`` or names not in them, ``DownloadError`` (naming the
    URL, and for a wrong file ``<split>/<id>.jpg`` with both hashes) if a file cannot be fetched,
    differs from the pinned one or does not decode.
    """
    known = _known_names(cfg, options.splits)
    table = bsds500_sha256()
    rows: List[ManifestRow] = []
    with tempfile.TemporaryDirectory(prefix=".download-", dir=images_dir.parent) as scratch:
        for name in _select(cfg, known):
            split, image_id = name.split("-", 1)
            url = BSDS500_URL.format(split=split, id=image_id)
            arr = _fetch_decoded(url, Path(scratch), mirror=mirror, sha256=table[name], what=f"{split}/{image_id}.jpg")
            save_png_atomic(arr, images_dir / f"{name}.png")
            rows.append(_row(name, images_dir, arr, url))
    return rows, []
