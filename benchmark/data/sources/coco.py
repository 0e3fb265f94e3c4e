"""The ``coco`` source: a deterministic subset of COCO 2017 images, by id."""

from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from pydantic import Field, StrictInt, StrictStr
from pydantic.dataclasses import dataclass
from typing_extensions import Annotated

from benchmark.config import ConfigError, DatasetConfig, NonNegInt, PosInt
from benchmark.data.download import DownloadError, sha256_file
from benchmark.data.images import ImageError, ManifestRow, load_rgb8, save_png_atomic
from benchmark.data.sources.common import STRICT, SourceResult, _fetch_decoded, _row, register_source

COCO_BASE_URL = "http://images.cocodataset.org"
COCO_URL = "{base_url}/{split}/{id:012d}.jpg"
COCO_DEFAULT_SPLIT = "train2017"
_COCO_FILE = re.compile(r"^(\d{12})\.jpg$")

Sha256Hex = Annotated[StrictStr, Field(pattern=r"^[0-9a-fA-F]{64}$")]


@dataclass(frozen=True, config=STRICT)
class CocoOptions:
    """The ``coco`` source's keys under ``datasets.<name>`` (see ``coco``):

    * ``split``: ``train2017`` (default), ``val2017``, ... (letters, digits, ``_.-``);
    * ``ids`` (non-negative integers) or ``ids_file`` (a text file, one id a line), else every
      ``<id:012d>.jpg`` in ``local_path``; ``count`` and ``seed`` (default 0) draw a subset;
    * ``local_path``: a directory of ``<id:012d>.jpg`` (an extracted copy) to read instead of
      ``<base_url>/<split>/<id:012d>.jpg`` (``base_url`` default ``COCO_BASE_URL``);
    * ``sha256``: image id -> SHA-256 of its JPEG file (64 hex digits), checked for those ids.
    """

    split: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = COCO_DEFAULT_SPLIT
    ids: Optional[Tuple[NonNegInt, ...]] = None
    ids_file: Optional[StrictStr] = None
    local_path: Optional[StrictStr] = None
    count: Optional[PosInt] = None
    seed: StrictInt = 0
    base_url: Annotated[StrictStr, Field(min_length=1)] = COCO_BASE_URL
    sha256: Optional[Dict[Annotated[int, Field(ge=0)], Sha256Hex]] = None


def _coco_ids_file(path: Path, key: str) -> List[int]:
    """Ids from a text file, one integer a line; blank lines and ``#`` comments are ignored.
    Raises ``ConfigError`` naming ``key`` (and the line) if unreadable or not an integer."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{key}: cannot read the id list {path} ({e})") from None
    ids = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            if not line.isdigit():
                raise ConfigError(f"{key}: {path}: line {line_no}: expected an integer COCO image id, got {line!r}")
            ids.append(int(line))
    return ids


def _local_dir(options: CocoOptions, key: str) -> Optional[Path]:
    """``options.local_path`` as a directory, or None. ``ConfigError`` if it is not a directory."""
    if options.local_path is None:
        return None
    local = Path(options.local_path).expanduser()
    if not local.is_dir():
        raise ConfigError(f"{key}.local_path: {local} is not a directory")
    return local


def _candidates(options: CocoOptions, key: str) -> List[int]:
    """The ids of ``ids``, else ``ids_file``, else ``local_path`` (unsorted, maybe repeated)."""
    if options.ids is not None:
        return list(options.ids)
    if options.ids_file is not None:
        return _coco_ids_file(Path(options.ids_file).expanduser(), f"{key}.ids_file")
    local = _local_dir(options, key)
    if local is None:
        raise ConfigError(f"{key}: the coco source needs `ids`, `ids_file` or `local_path`")
    return [int(m[1]) for p in local.iterdir() if (m := _COCO_FILE.match(p.name))]


def coco_select(cfg: DatasetConfig, options: CocoOptions) -> List[int]:
    """The COCO image ids a ``coco`` data set uses, sorted (see ``coco`` for the options).

    Candidates are ``ids``, else the ids in ``ids_file``, else the ids of the ``<id:012d>.jpg``
    files in ``local_path``; duplicates are dropped and the rest sorted. With ``count``, the
    subset ``sorted(random.Random(seed).sample(candidates, count))`` (CPython's ``sample``
    algorithm, unchanged for years but not promised forever: the manifest records the outcome).
    ``max_images`` then keeps the first N. Raises ``ConfigError`` naming the key.
    """
    key = f"datasets.{cfg.name}"
    if cfg.images is not None:
        raise ConfigError(f"{key}.images: the coco source selects images by `ids`/`ids_file`, not by name")
    if options.ids is not None and options.ids_file is not None:
        raise ConfigError(f"{key}: give `ids` or `ids_file`, not both")
    candidates = sorted(set(_candidates(options, key)))
    if not candidates:
        raise ConfigError(f"{key}: no COCO image ids to choose from (ids, ids_file or local_path is empty)")
    if options.count is not None:
        if options.count > len(candidates):
            raise ConfigError(f"{key}.count: {options.count} images asked for, only {len(candidates)} ids to choose from")
        candidates = sorted(random.Random(options.seed).sample(candidates, options.count))
    return candidates[: cfg.max_images] if cfg.max_images is not None else candidates


def _read_local(local: Path, image_id: int, expected: Optional[str], key: str) -> np.ndarray:
    """The ``(H, W, 3) uint8`` pixels of ``local/<id:012d>.jpg``, its file SHA-256 checked against
    ``expected`` if given. Raises ``ImageError`` naming the file and the id."""
    path = local / f"{image_id:012d}.jpg"
    if not path.is_file():
        raise ImageError(f"{path}: COCO image {image_id} is not in {key}.local_path")
    actual = sha256_file(path) if expected is not None else None
    if actual != expected:
        raise ImageError(f"{path}: COCO image {image_id}: file SHA-256 is {actual}, expected {expected} ({key}.sha256)")
    try:
        return load_rgb8(path)
    except ImageError as e:
        raise ImageError(f"{e} (COCO image {image_id})") from None


@register_source("coco", CocoOptions)
def coco(cfg: DatasetConfig, options: CocoOptions, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """COCO 2017 images (Lin et al., ECCV 2014; JPEGs of about 640x480), named ``<split>-<id:012d>``.

    Options (``CocoOptions``): ``split``; which ids (``coco_select``: ``ids``, ``ids_file`` or
    every image in ``local_path``, ``count`` + ``seed`` for a deterministic subset, then
    ``max_images``); where the bytes come from: ``local_path`` if given, else
    ``<base_url>/<split>/<id:012d>.jpg`` through ``fetch_url`` (the mirror first, then the
    network); ``sha256``, checked for the ids it lists.

    There is no published per-file hash list, so an image is verified by decoding it with
    ``load_rgb8`` (8-bit RGB, at least ``MIN_SIDE`` pixels a side; greyscale JPEGs become RGB)
    and by ``sha256`` when given; it is stored as a lossless ``<name>.png`` and the manifest's
    pixel hash pins the decoded pixels.

    Nothing is skipped silently: a training set that quietly shrinks is not reproducible. An image
    that cannot be fetched (after ``fetch_url``'s retries; HTTP 404 fails at once), differs from
    its ``sha256`` or does not decode raises ``DownloadError`` naming the id and the URL (for
    ``local_path``, ``ImageError`` naming the id and the file) and no data directory is made.
    Bad options raise ``ConfigError``.
    """
    key = f"datasets.{cfg.name}"
    base_url = options.base_url.rstrip("/")
    hashes = {k: v.lower() for k, v in (options.sha256 or {}).items()}
    local = _local_dir(options, key)
    ids = coco_select(cfg, options)
    rows: List[ManifestRow] = []
    with tempfile.TemporaryDirectory(prefix=".download-", dir=images_dir.parent) as scratch:
        for image_id in ids:
            if local is not None:
                arr = _read_local(local, image_id, hashes.get(image_id), key)
                origin = str(local / f"{image_id:012d}.jpg")
            else:
                origin = COCO_URL.format(base_url=base_url, split=options.split, id=image_id)
                try:
                    arr = _fetch_decoded(
                        origin, Path(scratch), mirror=mirror, sha256=hashes.get(image_id), what=f"{image_id:012d}.jpg"
                    )
                except DownloadError as e:
                    raise DownloadError(f"COCO image {image_id} ({options.split}): {e}") from None
            name = f"{options.split}-{image_id:012d}"
            save_png_atomic(arr, images_dir / f"{name}.png")
            rows.append(_row(name, images_dir, arr, origin))
    return rows, []
