"""Reading images as 8-bit RGB, writing lossless PNGs, and the data set manifest.

Every image in the benchmark is a C-contiguous ``(H, W, 3) uint8`` array with values 0..255
(sRGB as stored in the file; no colour management). ``load_rgb8`` is the one place that
decides what an input file means; anything it cannot represent exactly is an ``ImageError``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, List, Union

import numpy as np
from PIL import Image, ImageOps

from benchmark.errors import BenchmarkError
from benchmark.fileio import atomic_write

PathLike = Union[str, "os.PathLike[str]"]

# MS-SSIM with 5 scales and an 11x11 Gaussian window needs more than (11 - 1) * 2**4 = 160
# pixels a side (the image is halved 4 times and the window must still fit).
MIN_SIDE = 161

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("name", "file", "height", "width", "pixel_sha256", "origin")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB_MODES = {"1", "L", "P", "RGB", "YCbCr", "CMYK"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


class ImageError(BenchmarkError, ValueError):
    """An input image that cannot be used; the message starts with the file path, then the reason."""


class ManifestError(BenchmarkError, ValueError):
    """A missing or malformed ``manifest.csv``; the message starts with its path."""


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth per sample from a PNG's IHDR chunk (byte 24 of the file), or None if not a PNG."""
    with open(path, "rb") as f:
        head = f.read(25)
    if len(head) == 25 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
        return head[24]
    return None


def _pnm_maxval(path: Path) -> int | None:
    """The maxval of a greymap/pixmap (P2, P3, P5, P6) header, or None."""
    with open(path, "rb") as f:
        head = f.read(1024)
    if head[:2] not in (b"P2", b"P3", b"P5", b"P6"):
        return None
    tokens = re.sub(rb"#[^\n]*", b" ", head).split()
    return int(tokens[3]) if len(tokens) > 3 and tokens[3].isdigit() else None


def _too_deep(img: Image.Image, path: Path) -> str | None:
    """The reason an opened image has more than 8 bits per sample, or None."""
    if (
        img.mode.startswith("I;16")
        or (img.format == "PNG" and _png_bit_depth(path) == 16)
        or (img.format == "PPM" and (_pnm_maxval(path) or 0) > 255)
    ):
        return "16-bit images are not supported; convert to 8-bit first"
    if img.mode in ("I", "F"):
        kind = "float" if img.mode == "F" else "32-bit integer"
        return f"{kind} images (Pillow mode {img.mode}) are not supported; convert to 8-bit first"
    if img.format == "TIFF":
        bps = img.tag_v2.get(258)  # BitsPerSample
        bps = bps if isinstance(bps, tuple) else (bps,) if bps is not None else ()
        if any(b > 8 for b in bps):
            return f"{max(bps)}-bit images are not supported; convert to 8-bit first"
    return None


def load_rgb8(path: PathLike, *, alpha: str = "refuse", min_side: int = MIN_SIDE) -> np.ndarray:
    """Read an image file as the pixels the benchmark compresses.

    Returns a C-contiguous ``(H, W, 3) uint8`` array, values 0..255, with the EXIF orientation
    applied. Modes 1, L, P, RGB, YCbCr and CMYK are converted to RGB by Pillow.

    An alpha channel (modes RGBA, LA, PA, or any image with ``transparency`` info) that is not
    fully opaque is refused when ``alpha="refuse"``; with ``alpha="flatten"`` the image is
    composited onto a white background. A fully opaque alpha channel is dropped in both cases
    (compositing it would change nothing).

    Raises ``ImageError`` (message ``"<path>: <reason>"``) if the file cannot be decoded
    (missing, truncated, not an image), has more than 8 bits per sample (16-bit PNG/TIFF,
    Pillow modes I;16*, I, F), has a non-opaque alpha channel and ``alpha="refuse"``, has an
    unsupported mode, or is smaller than ``min_side`` pixels on either side.
    Raises ``ValueError`` if ``alpha`` is not ``"refuse"`` or ``"flatten"``.
    """
    if alpha not in ("refuse", "flatten"):
        raise ValueError(f"alpha must be 'refuse' or 'flatten', got {alpha!r}")
    p = Path(path)
    try:
        with Image.open(p) as opened:
            opened.load()  # force a full decode so that truncated files fail here
            deep = _too_deep(opened, p)
            img = opened if deep else ImageOps.exif_transpose(opened)
            if not deep:
                img.load()
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, ...
        raise ImageError(f"{p}: cannot be read as an image: {e}") from None
    if deep:
        raise ImageError(f"{p}: {deep}")

    has_alpha = img.mode in _ALPHA_MODES or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        a = np.asarray(rgba)[..., 3]
        if a.min() < 255:
            if alpha == "refuse":
                raise ImageError(
                    f"{p}: has an alpha channel (mode {img.mode}) with transparent pixels; "
                    "set `datasets.<name>.alpha: flatten` to composite it onto white"
                )
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgba = Image.alpha_composite(white, rgba)
        img = rgba.convert("RGB")
    elif img.mode in _RGB_MODES:
        img = img.convert("RGB")
    else:
        raise ImageError(f"{p}: unsupported image mode {img.mode!r}")

    arr = np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    h, w = arr.shape[:2]
    if h < min_side or w < min_side:
        raise ImageError(f"{p}: image is {w}x{h} pixels (WxH); the minimum is {min_side} pixels a side")
    return arr


def _check_rgb8(arr: np.ndarray) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        desc = f"{arr.dtype} array of shape {arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 array, got a {desc}")


def pixel_sha256(arr: np.ndarray) -> str:
    """Hex SHA-256 of the raw bytes of an ``(H, W, 3) uint8`` array in C (row-major) order.

    Raises ``ValueError`` for any other shape or dtype (no silent casting).
    """
    _check_rgb8(arr)
    return hashlib.sha256(np.ascontiguousarray(arr, dtype=np.uint8).tobytes()).hexdigest()


def save_png_atomic(arr: np.ndarray, path: PathLike) -> Path:
    """Write an ``(H, W, 3) uint8`` array as a lossless 8-bit RGB PNG at ``path``.

    The file appears complete or not at all (temp file in the same directory, then
    ``os.replace``; the temp file is removed on failure). Returns ``path`` as a ``Path``.
    Raises ``ValueError`` for a wrong shape/dtype, ``OSError`` if the file cannot be written.
    """
    _check_rgb8(arr)
    p = Path(path)
    img = Image.fromarray(np.ascontiguousarray(arr))
    atomic_write(p, lambda tmp: img.save(tmp, format="PNG"))
    return p


@dataclass(frozen=True)
class ManifestRow:
    """One image of a data set: ``file`` is relative to the data directory (``images/x.png``);
    ``height``/``width`` in pixels; ``pixel_sha256`` as ``pixel_sha256``; ``origin`` says where
    it came from (URL, source file or package)."""

    name: str
    file: str
    height: int
    width: int
    pixel_sha256: str
    origin: str


def write_manifest(data_dir: PathLike, rows: Iterable[ManifestRow]) -> Path:
    """Write ``data_dir/manifest.csv`` (columns ``MANIFEST_COLUMNS``) atomically; returns its path."""
    path = Path(data_dir) / MANIFEST_NAME
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    for r in rows:
        w.writerow([getattr(r, f.name) for f in fields(ManifestRow)])
    atomic_write(path, lambda tmp: Path(tmp).write_text(buf.getvalue(), encoding="utf-8"))
    return path


def read_manifest(data_dir: PathLike) -> List[ManifestRow]:
    """Read ``data_dir/manifest.csv`` written by ``write_manifest``.

    Raises ``ManifestError`` naming the file if it is missing or unreadable, or naming the file and
    line if the header, a row's column count, a size, a hash or a name is wrong (duplicates too).
    """
    path = Path(data_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found (run the fetch stage first)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read the manifest ({e})") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != MANIFEST_COLUMNS:
        raise ManifestError(f"{path}: bad header {header!r}; expected {','.join(MANIFEST_COLUMNS)}")
    rows: List[ManifestRow] = []
    seen = set()
    for line_no, rec in enumerate(reader, start=2):
        if len(rec) != len(MANIFEST_COLUMNS):
            raise ManifestError(f"{path}: line {line_no}: expected {len(MANIFEST_COLUMNS)} columns, got {len(rec)}")
        name, file, h, w, sha, origin = rec
        try:
            height, width = int(h), int(w)
        except ValueError:
            raise ManifestError(f"{path}: line {line_no}: height/width must be integers, got {h!r}, {w!r}") from None
        if not name or not file or height <= 0 or width <= 0 or len(sha) != 64:
            raise ManifestError(f"{path}: line {line_no}: malformed row {rec!r}")
        if name in seen:
            raise ManifestError(f"{path}: line {line_no}: duplicate image name {name!r}")
        seen.add(name)
        rows.append(ManifestRow(name, file, height, width, sha, origin))
    return rows
