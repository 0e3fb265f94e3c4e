"""Data set sources (``builtin``, ``kodak``, ``folder``, ``bsds500``, ``wikipedia-photos``, ``coco``) and
``fetch_dataset``, which builds a data directory.

A data directory holds::

    images/<name>.png   8-bit RGB PNGs, the pixels every codec compresses
    manifest.csv        name,file,height,width,pixel_sha256,origin (see ``images.ManifestRow``)
    skipped.csv         file,reason for input files that were left out (folder source)
    references/         published RD curves (results JSON) listed in ``datasets.<name>.references``

A source is a function ``source(cfg, images_dir, *, mirror) -> (rows, skipped)`` registered in
``DATASET_SOURCES``; it writes ``images_dir/<name>.png`` and returns the manifest rows and a
list of ``(file, reason)`` for inputs it skipped.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import json
import os
import random
import re
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit

import numpy as np

from benchmark.config import ConfigError, DatasetConfig
from benchmark.data.download import DownloadError, fetch_url, sha256_file
from benchmark.data.images import (
    IMAGE_SUFFIXES,
    ImageError,
    ManifestRow,
    load_rgb8,
    pixel_sha256,
    save_png_atomic,
    write_manifest,
)
from benchmark.registry import Registry

Skipped = List[Tuple[str, str]]
SourceResult = Tuple[List[ManifestRow], Skipped]

DATASET_SOURCES: Registry = Registry("dataset source")


def _select(
    cfg: DatasetConfig, known: Sequence[str], default: Optional[Sequence[str]] = None, *, apply_max: bool = True
) -> List[str]:
    """Names to use, sorted: ``cfg.images`` (else ``default``, else all ``known``), then the first
    ``cfg.max_images`` if ``apply_max``. Raises ``ConfigError`` for names not in ``known``."""
    wanted = cfg.images if cfg.images is not None else default
    if wanted is None:
        chosen = sorted(known)
    else:
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ConfigError(
                f"datasets.{cfg.name}.images: unknown image(s) {unknown} for source {cfg.source!r}; "
                f"known: {', '.join(sorted(known))}"
            )
        chosen = sorted(set(wanted))
    return chosen[: cfg.max_images] if apply_max and cfg.max_images is not None else chosen


def _row(name: str, images_dir: Path, arr: np.ndarray, origin: str) -> ManifestRow:
    return ManifestRow(
        name=name,
        file=f"{images_dir.name}/{name}.png",
        height=int(arr.shape[0]),
        width=int(arr.shape[1]),
        pixel_sha256=pixel_sha256(arr),
        origin=origin,
    )


# --- kodak -------------------------------------------------------------------------------------

KODAK_URL = "http://r0k.us/graphics/kodak/kodak/{name}.png"

# SHA-256 of each image's decoded pixels ((H, W, 3) uint8, row-major bytes; see pixel_sha256),
# copied from the PIXEL_SHA256 file of the benchmark's mirror of r0k.us/graphics/kodak/kodak/.
KODAK_PIXEL_SHA256: Dict[str, str] = {
    "kodim01": "a00210743353594464ac67e680a41710f484444ca5f9dfddeb570de25c428273",
    "kodim02": "ae5a495df4ec40e0941265440ccf98973915b4190ab803e37a23ca93dd43a07e",
    "kodim03": "234e61f585503f2a44400f5561131e8a512ef2c15328cd83d5cdbf10e2616cf2",
    "kodim04": "e88e788fca00e6c723bb66ff45edb8cb56091ee284dcb73e3909834f2c96eeb6",
    "kodim05": "ed3d1ee770909d3b27903b52ce19ee59a9bf24621a7bf1fb57b90677da880cb6",
    "kodim06": "7f45158999fa297d1cfbd292b3e2f3f5b27770701c3473155c211c3f512cc97f",
    "kodim07": "4e3664bf6fe865b49f15f7b554efa7dbecaf73ae0e8699f2e307bf07849f1264",
    "kodim08": "889c3740e4ed54ca53d11ae735a44d15fa24fe312b3bd1609a80618a4092c208",
    "kodim09": "f8453140e63a42301a6dbebb849a3cc40d34e4e59580eb1f372f7f5460df0dbe",
    "kodim10": "fabe11b5c4f028394e093a5b5907e5fabc8072da0d5334fb3a38547a7e1be842",
    "kodim11": "ab4dd9bf8431e717d33892b3ba03c63bfea3c7fa72c2610010de7df3c194c075",
    "kodim12": "f412db2168e599949aac26bd3264f111b23a684f30a21cfd320e9e95bc69bbae",
    "kodim13": "875703d56fb9396f478b5d7d3b18e2b77c17147a685c6dc2567e1c574aaf01e3",
    "kodim14": "2bd5029ee75ac1697542e5b05624e8afe186e3250abd7513d6a806b52084c2f0",
    "kodim15": "b5353e7511277009922ecbdebfc6418fec53aa1b2a08d44fc957a7540825697b",
    "kodim16": "ed21745fd32fce95cc2c6af7fc52b1b15e590c7a14ab18ab34bd65ecaf955ac7",
    "kodim17": "566bc866664e9b06dc86e2654051b454844efe17322dbf7e24156d8243f1943e",
    "kodim18": "3475af71066f3ca8206eb12cfc989ebe9c6e44820a96604e88ae018606e1f7bd",
    "kodim19": "7956408ef24222d37ac53f579bd24d5b2c3557b16c657e8b71c1b6ae9f18de1b",
    "kodim20": "666ce8f2db5566a123bb081e70618f6f4c4253df960f3b41bb9dcc3dd134f3cf",
    "kodim21": "2d6902daf7c4486b7c8c04d834091841a2b38c8f0c81cd7a963a6510b34a2a6a",
    "kodim22": "f430842120c108b67725ada96b8b7b2a914f6a0915eacd5595064c6c1a5d70a0",
    "kodim23": "81992a83592267e69125666f3e3e04c1819529b4c4c1e55fde0a6a741bac4219",
    "kodim24": "e3e3ccc3e795b82a3da66934409dfe98ce0f5aadc6d7767543c506453599bb98",
}


@DATASET_SOURCES.register("kodak")
def kodak(cfg: DatasetConfig, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """The 24 Kodak PhotoCD images (768x512 or 512x768) from r0k.us, each checked against
    ``KODAK_PIXEL_SHA256``. The PNG files are stored as downloaded. Raises ``DownloadError``
    (naming ``kodimNN.png``) if one cannot be fetched or its pixels differ; ``ConfigError`` for
    unknown names in ``cfg.images``."""
    return [
        _fetch_pixel_verified(KODAK_URL.format(name=name), name, f"{name}.png", KODAK_PIXEL_SHA256[name], images_dir, mirror)
        for name in _select(cfg, list(KODAK_PIXEL_SHA256))
    ], []


def _fetch_pixel_verified(url: str, name: str, label: str, expected: str, images_dir: Path, mirror: Optional[Path]) -> ManifestRow:
    """Fetch ``url`` (mirror first) to ``images_dir/<name>.png``, kept only if its decoded pixels
    have SHA-256 ``expected``; the manifest row. Raises ``DownloadError`` naming the URL, and
    ``label`` (the upstream file name) with both hashes when the pixels differ."""
    decoded: List[np.ndarray] = []

    def verify(tmp: Path) -> None:
        arr = load_rgb8(tmp)  # an ImageError is a ValueError: fetch_url reports it
        actual = pixel_sha256(arr)
        if actual != expected:
            raise ValueError(f"{label}: pixel SHA-256 is {actual}, expected {expected}")
        decoded.append(arr)

    fetch_url(url, images_dir / f"{name}.png", mirror=mirror, verify=verify)
    return _row(name, images_dir, decoded[-1], url)


# --- folder ------------------------------------------------------------------------------------


@DATASET_SOURCES.register("folder")
def folder(cfg: DatasetConfig, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """Every file in ``cfg.path`` (not recursive) whose suffix is in ``IMAGE_SUFFIXES`` (any case),
    in name order, named by its stem. Each is read with ``load_rgb8(alpha=cfg.alpha)`` and written
    as ``<stem>.png``; a file it rejects (``ImageError``) is skipped, recorded and warned about on
    stderr. ``max_images`` counts usable images: files are read in name order until N are kept.

    Raises ``ConfigError`` if the directory is missing, two files share a stem (case-insensitive),
    ``cfg.images`` names an unknown stem, or no usable image is left.
    """
    src = Path(str(cfg.path)).expanduser()
    if not src.is_dir():
        raise ConfigError(f"datasets.{cfg.name}.path: {src} is not a directory")
    files: Dict[str, Path] = {}
    lower: Dict[str, Path] = {}
    for p in sorted(src.iterdir(), key=lambda q: q.name):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        key = p.stem.lower()
        if key in lower:
            raise ConfigError(
                f"datasets.{cfg.name}.path: {lower[key].name} and {p.name} in {src} have the same name "
                f"{p.stem!r} (case-insensitive); rename one"
            )
        lower[key] = p
        files[p.stem] = p

    names = _select(cfg, list(files), apply_max=False)  # max_images counts usable images
    limit = cfg.max_images if cfg.max_images is not None else len(names)
    rows: List[ManifestRow] = []
    skipped: Skipped = []
    for name in names:
        if len(rows) >= limit:
            break
        p = files[name]
        try:
            arr = load_rgb8(p, alpha=cfg.alpha)
        except ImageError as e:
            reason = str(e).removeprefix(f"{p}: ")
            skipped.append((p.name, reason))
            print(f"warning: skipping {p}: {reason}", file=sys.stderr)
            continue
        save_png_atomic(arr, images_dir / f"{name}.png")
        rows.append(_row(name, images_dir, arr, str(p)))
    if not rows:
        raise ConfigError(
            f"datasets.{cfg.name}.path: no usable image in {src} "
            f"({len(files)} image file(s), {len(skipped)} skipped; suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return rows, skipped


# --- builtin -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltinImage:
    """A photograph shipped inside an installed package: ``package`` (distribution name),
    ``file`` (name in its data directory) and a short ``description``."""

    package: str
    file: str
    description: str


# Sizes are height x width. Descriptions follow the packages' own docstrings.
BUILTIN_IMAGES: Dict[str, BuiltinImage] = {
    "astronaut": BuiltinImage("scikit-image", "astronaut.png", "astronaut Eileen Collins, NASA portrait, 512x512"),
    "coffee": BuiltinImage("scikit-image", "coffee.png", "coffee cup, Pikolo Espresso Bar, CC0, 400x600"),
    "chelsea": BuiltinImage("scikit-image", "chelsea.png", "Chelsea the cat, 300x451"),
    "rocket": BuiltinImage("scikit-image", "rocket.jpg", "launch of DSCOVR on a SpaceX Falcon 9, JPEG, 427x640"),
    "hubble_deep_field": BuiltinImage(
        "scikit-image", "hubble_deep_field.jpg", "Hubble eXtreme Deep Field, JPEG, 872x1000"
    ),
    "ihc": BuiltinImage("scikit-image", "ihc.png", "immunohistochemistry-stained tissue micrograph, 512x512"),
    "motorcycle_left": BuiltinImage("scikit-image", "motorcycle_left.png", "Middlebury stereo pair, left view, 500x741"),
    "motorcycle_right": BuiltinImage(
        "scikit-image", "motorcycle_right.png", "Middlebury stereo pair, right view, 500x741"
    ),
    "retina": BuiltinImage("scikit-image", "retina.jpg", "human retina fundus photograph, JPEG, 1411x1411"),
    "grace_hopper": BuiltinImage("matplotlib", "grace_hopper.jpg", "Rear Admiral Grace Hopper portrait, JPEG, 600x512"),
}

BUILTIN_DEFAULT = ("astronaut", "coffee", "chelsea", "rocket")


def builtin_image_path(name: str) -> Path:
    """Path of a ``BUILTIN_IMAGES`` file inside its installed package (no download is ever made).

    Raises ``ConfigError`` for an unknown name (listing the known ones) or a file the installed
    package does not ship.
    """
    if name not in BUILTIN_IMAGES:
        raise ConfigError(f"unknown builtin image {name!r}; known: {', '.join(sorted(BUILTIN_IMAGES))}")
    info = BUILTIN_IMAGES[name]
    if info.package == "scikit-image":
        import skimage.data

        path = Path(skimage.data.data_dir) / info.file
    else:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / info.file
    if not path.is_file():
        raise ConfigError(f"builtin image {name!r}: {path} is not shipped by the installed {info.package}")
    return path


def _package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


@DATASET_SOURCES.register("builtin")
def builtin(cfg: DatasetConfig, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """Photographs shipped by scikit-image and matplotlib (``BUILTIN_IMAGES``), read from the
    installed packages; ``cfg.images`` selects them (default ``BUILTIN_DEFAULT``). JPEG files are
    decoded by the installed Pillow, so the manifest's pixel hashes pin the exact pixels.
    Raises ``ConfigError`` for unknown names."""
    rows: List[ManifestRow] = []
    for name in _select(cfg, list(BUILTIN_IMAGES), BUILTIN_DEFAULT):
        path = builtin_image_path(name)
        info = BUILTIN_IMAGES[name]
        arr = load_rgb8(path)
        save_png_atomic(arr, images_dir / f"{name}.png")
        rows.append(_row(name, images_dir, arr, f"{info.package} {_package_version(info.package)}: {info.file}"))
    return rows, []


# --- downloaded JPEGs (bsds500, coco) ----------------------------------------------------------


def _fetch_decoded(
    url: str, scratch: Path, *, mirror: Optional[Path], sha256: Optional[str], what: str
) -> np.ndarray:
    """Fetch ``url`` (mirror first) into the directory ``scratch``, check the SHA-256 of its file
    bytes against ``sha256`` (if given) and decode it with ``load_rgb8`` (default minimum side).
    Returns the ``(H, W, 3) uint8`` pixels; the downloaded file is deleted again.

    Raises ``DownloadError`` naming the URL if it cannot be fetched (after ``fetch_url``'s retries),
    its hash differs (message names ``what`` and both hashes) or it does not decode.
    """
    decoded: List[np.ndarray] = []

    def verify(tmp: Path) -> None:
        if sha256 is not None:
            actual = sha256_file(tmp)
            if actual != sha256:
                raise ValueError(f"{what}: file SHA-256 is {actual}, expected {sha256}")
        decoded.append(load_rgb8(tmp))  # an ImageError is a ValueError: fetch_url reports it

    dest = fetch_url(url, scratch / unquote(urlsplit(url).path).rsplit("/", 1)[-1], mirror=mirror, verify=verify)
    dest.unlink()
    return decoded[-1]


# --- bsds500 -----------------------------------------------------------------------------------

BSDS500_COMMIT = "a04b7c6c3a9f0ace74bf205c72a43d32e1c72722"
BSDS500_URL = (
    f"https://raw.githubusercontent.com/BIDS/BSDS500/{BSDS500_COMMIT}/BSDS500/data/images/{{split}}/{{id}}.jpg"
)
BSDS500_SPLITS = ("train", "val", "test")
BSDS500_DEFAULT_SPLITS = ("train", "val")
BSDS500_SHA256_FILE = "bsds500_sha256.txt"  # package data beside this module
_SHA256_LINE = re.compile(r"^([0-9a-f]{64})  (train|val|test)/(\d+)\.jpg$")


@functools.lru_cache(maxsize=None)
def bsds500_sha256() -> Dict[str, str]:
    """Image name (``<split>-<id>``, e.g. ``train-100075``) -> SHA-256 of the JPEG file's bytes at
    ``BSDS500_URL``, read from the package data file ``benchmark/data/bsds500_sha256.txt``
    (sha256sum format, ``#`` comments; 200 train, 100 val and 200 test images).

    Raises ``RuntimeError`` naming the file and line if the installed package's copy is malformed.
    """
    return _hash_table(BSDS500_SHA256_FILE, _SHA256_LINE, lambda m: f"{m[2]}-{m[3]}", "<sha256>  <split>/<id>.jpg")


def _hash_table(file_name: str, pattern: "re.Pattern[str]", key: Callable[["re.Match[str]"], str], form: str) -> Dict[str, str]:
    """Image name -> SHA-256 from the package data file ``benchmark/data/<file_name>``: one
    ``pattern`` match per line (group 1 the hash, ``key(match)`` the name), ``#`` comments and
    blank lines skipped. Raises ``RuntimeError`` naming the file and line for a line that does
    not match ``form`` or repeats a name."""
    res = importlib.resources.files("benchmark.data").joinpath(file_name)
    table: Dict[str, str] = {}
    for line_no, line in enumerate(res.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        m = pattern.match(line)
        if m is None or key(m) in table:
            raise RuntimeError(f"{res}: line {line_no}: expected '{form}' (once), got {line!r}")
        table[key(m)] = m[1]
    return table


def _bsds500_splits(cfg: DatasetConfig) -> Tuple[str, ...]:
    splits = cfg.raw.get("splits", list(BSDS500_DEFAULT_SPLITS))
    if (
        not isinstance(splits, (list, tuple))
        or not splits
        or any(s not in BSDS500_SPLITS for s in splits)
        or len(set(splits)) != len(splits)
    ):
        raise ConfigError(
            f"datasets.{cfg.name}.splits must be a non-empty list of distinct splits out of "
            f"{list(BSDS500_SPLITS)}, got {splits!r}"
        )
    return tuple(splits)


@DATASET_SOURCES.register("bsds500")
def bsds500(cfg: DatasetConfig, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """BSDS500 images (Arbelaez et al., TPAMI 2011; 481x321 or 321x481 JPEGs) from the BIDS/BSDS500
    GitHub repository at commit ``BSDS500_COMMIT``, named ``<split>-<id>`` (e.g. ``train-100075``).

    Params (``datasets.<name>``): ``splits`` (list out of ``train``, ``val``, ``test``; default
    ``[train, val]``, the 300 training images), ``images`` (names to keep, all in ``splits``) and
    ``max_images`` (the first N of the sorted names). Each JPEG is fetched with ``fetch_url``
    (mirror first), its file bytes checked against ``bsds500_sha256()``, decoded once by the
    installed Pillow (``load_rgb8``) and stored as a lossless ``<name>.png``; the manifest's
    pixel hashes pin those decoded pixels. The JPEG itself is not kept.

    Raises ``ConfigError`` for bad ``splits`` or names not in them, ``DownloadError`` (naming the
    URL, and for a wrong file ``<split>/<id>.jpg`` with both hashes) if a file cannot be fetched,
    differs from the pinned one or does not decode.
    """
    splits = _bsds500_splits(cfg)
    table = bsds500_sha256()
    known = [n for n in table if n.split("-", 1)[0] in splits]
    unknown = sorted(set(cfg.images or ()) - set(known))
    if unknown:
        raise ConfigError(
            f"datasets.{cfg.name}.images: unknown image(s) {unknown} for source 'bsds500' with splits "
            f"{list(splits)}; names are <split>-<id>, e.g. {known[0]} (list: benchmark/data/{BSDS500_SHA256_FILE})"
        )
    rows: List[ManifestRow] = []
    with tempfile.TemporaryDirectory(prefix=".download-", dir=images_dir.parent) as scratch:
        for name in _select(cfg, known):
            split, image_id = name.split("-", 1)
            url = BSDS500_URL.format(split=split, id=image_id)
            arr = _fetch_decoded(url, Path(scratch), mirror=mirror, sha256=table[name], what=f"{split}/{image_id}.jpg")
            save_png_atomic(arr, images_dir / f"{name}.png")
            rows.append(_row(name, images_dir, arr, url))
    return rows, []


# --- wikipedia-photos --------------------------------------------------------------------------

WIKIPEDIA_PHOTOS_COMMIT = "0b8a89db599a384124fb991b85d40cfd63c73d58"
WIKIPEDIA_PHOTOS_URL = (
    f"https://raw.githubusercontent.com/Zelex/images/{WIKIPEDIA_PHOTOS_COMMIT}/wikipedia-photos/{{number}}.png"
)
WIKIPEDIA_PHOTOS_SHA256_FILE = "wikipedia_photos_sha256.txt"  # package data beside this module
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


@DATASET_SOURCES.register("wikipedia-photos")
def wikipedia_photos(cfg: DatasetConfig, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """49 high-resolution photographs (downsampled Wikimedia Commons JPEGs, long side 1058 to
    1724 px, sizes not multiples of 64; Creative Commons, attribution list in the README beside
    them) from the Zelex/images GitHub repository at commit ``WIKIPEDIA_PHOTOS_COMMIT``, named
    ``wiki<NNN>`` (``wiki001`` .. ``wiki049``; a letter first so that no table reads the name as
    a number). A CLIC-like high-resolution test set, large enough for patch FID (1087 HiFiC
    256x256 patches over the 49 images).

    Params (``datasets.<name>``): ``images`` (names to keep) and ``max_images`` (the first N of
    the sorted names). Each PNG is fetched with ``fetch_url`` (mirror first), verified by the
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


# --- coco --------------------------------------------------------------------------------------

COCO_BASE_URL = "http://images.cocodataset.org"
COCO_URL = "{base_url}/{split}/{id:012d}.jpg"
COCO_DEFAULT_SPLIT = "train2017"
_COCO_FILE = re.compile(r"^(\d{12})\.jpg$")


def _coco_id(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"{where}: a COCO image id must be a non-negative integer, got {v!r}")
    return v


def _coco_ids_file(path: Path, key: str) -> List[int]:
    """Ids from a text file, one integer a line; blank lines and ``#`` comments are ignored."""
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


def _coco_sha256(value: Any, key: str) -> Dict[int, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of image id -> SHA-256 of the JPEG file, got {value!r}")
    table = {}
    for k, v in value.items():
        image_id = int(k) if isinstance(k, str) and k.isdigit() else _coco_id(k, key)
        if not isinstance(v, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise ConfigError(f"{key}.{k}: expected a 64-digit hex SHA-256, got {v!r}")
        table[image_id] = v.lower()
    return table


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    return value


def coco_select(cfg: DatasetConfig) -> List[int]:
    """The COCO image ids a ``coco`` data set uses, sorted (see ``coco`` for the params).

    Candidates are ``ids``, else the ids in ``ids_file``, else the ids of the ``<id:012d>.jpg``
    files in ``local_path``; duplicates are dropped and the rest sorted. With ``count``, the
    subset ``sorted(random.Random(seed).sample(candidates, count))`` (``seed`` default 0; CPython's
    ``sample`` algorithm, unchanged for years but not promised forever: the manifest records the
    outcome). ``max_images`` then keeps the first N. Raises ``ConfigError`` naming the key.
    """
    raw, key = cfg.raw, f"datasets.{cfg.name}"
    if cfg.images is not None:
        raise ConfigError(f"{key}.images: the coco source selects images by `ids`/`ids_file`, not by name")
    if raw.get("ids") is not None and raw.get("ids_file") is not None:
        raise ConfigError(f"{key}: give `ids` or `ids_file`, not both")
    if raw.get("ids") is not None:
        if not isinstance(raw["ids"], list):
            raise ConfigError(f"{key}.ids must be a list of integer image ids, got {raw['ids']!r}")
        candidates = [_coco_id(v, f"{key}.ids") for v in raw["ids"]]
    elif raw.get("ids_file") is not None:
        candidates = _coco_ids_file(Path(str(raw["ids_file"])).expanduser(), f"{key}.ids_file")
    elif raw.get("local_path") is not None:
        local = Path(str(raw["local_path"])).expanduser()
        if not local.is_dir():
            raise ConfigError(f"{key}.local_path: {local} is not a directory")
        candidates = [int(m[1]) for p in local.iterdir() if (m := _COCO_FILE.match(p.name))]
    else:
        raise ConfigError(f"{key}: the coco source needs `ids`, `ids_file` or `local_path`")
    candidates = sorted(set(candidates))
    if not candidates:
        raise ConfigError(f"{key}: no COCO image ids to choose from (ids, ids_file or local_path is empty)")
    if raw.get("count") is not None:
        count = _positive_int(raw["count"], f"{key}.count")
        seed = raw.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{key}.seed must be an integer, got {seed!r}")
        if count > len(candidates):
            raise ConfigError(f"{key}.count: {count} images asked for, only {len(candidates)} ids to choose from")
        candidates = sorted(random.Random(seed).sample(candidates, count))
    return candidates[: cfg.max_images] if cfg.max_images is not None else candidates


@DATASET_SOURCES.register("coco")
def coco(cfg: DatasetConfig, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """COCO 2017 images (Lin et al., ECCV 2014; JPEGs of about 640x480), named ``<split>-<id:012d>``.

    Params (``datasets.<name>``):

    * ``split``: ``train2017`` (default), ``val2017``, ...
    * which ids (see ``coco_select``): ``ids`` (list of ints) or ``ids_file`` (text file, one id a
      line), else every ``<id:012d>.jpg`` in ``local_path``; ``count`` + ``seed`` draw a
      deterministic subset of them; ``max_images`` keeps the first N.
    * where the bytes come from: ``local_path`` (an extracted copy, a directory of
      ``<id:012d>.jpg``) if given, else ``<base_url>/<split>/<id:012d>.jpg`` (``base_url``
      default ``COCO_BASE_URL``) through ``fetch_url``: the mirror first, then the network.
    * ``sha256``: optional mapping id -> SHA-256 of the JPEG file, checked for the ids it lists.

    There is no published per-file hash list, so an image is verified by decoding it with
    ``load_rgb8`` (8-bit RGB, at least ``MIN_SIDE`` pixels a side; greyscale JPEGs become RGB)
    and by ``sha256`` when given; it is stored as a lossless ``<name>.png`` and the manifest's
    pixel hash pins the decoded pixels.

    Nothing is skipped silently: a training set that quietly shrinks is not reproducible. An image
    that cannot be fetched (after ``fetch_url``'s retries; HTTP 404 fails at once), differs from
    its ``sha256`` or does not decode raises ``DownloadError`` naming the id and the URL (for
    ``local_path``, ``ImageError`` naming the id and the file) and no data directory is made.
    Bad params raise ``ConfigError``.
    """
    key = f"datasets.{cfg.name}"
    split = cfg.raw.get("split", COCO_DEFAULT_SPLIT)
    if not isinstance(split, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", split):
        raise ConfigError(f"{key}.split must be a COCO split name such as train2017, got {split!r}")
    base_url = str(cfg.raw.get("base_url") or COCO_BASE_URL).rstrip("/")
    hashes = _coco_sha256(cfg.raw.get("sha256"), f"{key}.sha256")
    local = Path(str(cfg.raw["local_path"])).expanduser() if cfg.raw.get("local_path") is not None else None
    if local is not None and not local.is_dir():
        raise ConfigError(f"{key}.local_path: {local} is not a directory")
    ids = coco_select(cfg)

    rows: List[ManifestRow] = []
    with tempfile.TemporaryDirectory(prefix=".download-", dir=images_dir.parent) as scratch:
        for image_id in ids:
            name = f"{split}-{image_id:012d}"
            if local is not None:
                path = local / f"{image_id:012d}.jpg"
                if not path.is_file():
                    raise ImageError(f"{path}: COCO image {image_id} is not in {key}.local_path")
                actual = sha256_file(path) if image_id in hashes else None
                if actual != hashes.get(image_id):
                    raise ImageError(
                        f"{path}: COCO image {image_id}: file SHA-256 is {actual}, "
                        f"expected {hashes[image_id]} ({key}.sha256)"
                    )
                try:
                    arr = load_rgb8(path)
                except ImageError as e:
                    raise ImageError(f"{e} (COCO image {image_id})") from None
                origin = str(path)
            else:
                origin = COCO_URL.format(base_url=base_url, split=split, id=image_id)
                try:
                    arr = _fetch_decoded(
                        origin, Path(scratch), mirror=mirror, sha256=hashes.get(image_id), what=f"{image_id:012d}.jpg"
                    )
                except DownloadError as e:
                    raise DownloadError(f"COCO image {image_id} ({split}): {e}") from None
            save_png_atomic(arr, images_dir / f"{name}.png")
            rows.append(_row(name, images_dir, arr, origin))
    return rows, []


# --- references and the whole data directory ---------------------------------------------------


def _verify_results_json(path: Path) -> None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise ValueError(f"not valid JSON ({e})") from None
    ok = isinstance(data, dict) and (
        (isinstance(data.get("results"), dict) and "bpp" in data["results"]) or isinstance(data.get("bpp"), list)
    )
    if not ok:
        raise ValueError("not an RD results JSON: expected a 'results' mapping with 'bpp' or a top-level 'bpp' list")


def fetch_references(urls: Sequence[str], out_dir: Path, *, mirror: Optional[Path]) -> List[Path]:
    """Fetch each results-JSON URL to ``out_dir/<basename>``, checking it is an RD results JSON.

    Raises ``ConfigError`` if two URLs share a basename, ``DownloadError`` if one cannot be
    fetched or is not a results JSON (a ``results`` mapping with ``bpp``, or a top-level ``bpp`` list).
    """
    out_dir = Path(out_dir)
    names = [unquote(urlsplit(u).path).rsplit("/", 1)[-1] for u in urls]
    for u, n in zip(urls, names):
        if not n or names.count(n) > 1:
            raise ConfigError(f"references: URL {u} has an empty or duplicate file name {n!r}")
    return [fetch_url(u, out_dir / n, mirror=mirror, verify=_verify_results_json) for u, n in zip(urls, names)]


def fetch_dataset(cfg: DatasetConfig, out_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """Build the data directory ``out_dir`` for ``cfg`` (layout in the module docstring).

    Everything is built in a fresh sibling ``.<out_dir name>.tmp-<random>`` that then replaces
    ``out_dir``; on any error the temp directory is removed and an existing ``out_dir`` is left
    untouched. Returns the manifest rows and the skipped ``(file, reason)`` list.
    Raises ``ConfigError`` (unknown source, bad selection, ...) or ``DownloadError``.
    """
    out_dir = Path(out_dir)
    if cfg.source not in DATASET_SOURCES:
        raise ConfigError(
            f"datasets.{cfg.name}.source: unknown source {cfg.source!r}; known: {', '.join(DATASET_SOURCES.names())}"
        )
    source = DATASET_SOURCES.get(cfg.source)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir()
    old = out_dir.parent / f".{out_dir.name}.old-{secrets.token_hex(6)}"
    try:
        images_dir = tmp / "images"
        images_dir.mkdir()
        rows, skipped = source(cfg, images_dir, mirror=mirror)
        write_manifest(tmp, rows)
        with open(tmp / "skipped.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(("file", "reason"))
            w.writerows(skipped)
        (tmp / "references").mkdir()
        fetch_references(cfg.references, tmp / "references", mirror=mirror)
        if os.path.lexists(out_dir):
            os.replace(out_dir, old)
            try:
                os.replace(tmp, out_dir)
            except BaseException:
                os.replace(old, out_dir)
                raise
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return rows, skipped
