"""Classical codecs through maintained libraries.

=========  ==========================================  ===========================
name       library                                     rate point (unit)
=========  ==========================================  ===========================
jpeg       Pillow / libjpeg-turbo (ITU-T T.81)          quality 1..95
webp       Pillow / libwebp (lossy, VP8)                quality 0..100
avif       Pillow / libavif + aom (AV1 intra)           quality 0..100
jpeg2000   Pillow / OpenJPEG (ISO 15444-1, .j2k)        target bpp (rate control)
jpegxl     imagecodecs / libjxl (ISO 18181, VarDCT)     Butteraugli distance
hevc       pillow-heif / libheif + x265 (HEVC intra)   quality 0..100
=========  ==========================================  ===========================

Every ``encode`` returns the complete file the library writes (headers included).

**Hostile bytes.** ``decode`` reads the image size from the file's header before the library
decodes the pixels (Pillow's ``Image.open``, which parses the header only; pillow-heif's
``open_heif``, likewise; for JPEG XL, which imagecodecs decodes in one call, the codestream's
``SizeHeader`` read by :func:`jxl_size`) and refuses a size beyond the codec's ``limits``
(``Codec.check_decode_size``, with ``DECODE_BYTES_PER_PIXEL``); Pillow's own decompression-bomb
limit is set to ``limits.max_pixels`` for the call (its error, at twice that, stays). Whatever the library raises on corrupt input
(``OSError``, ``ValueError``, ``SyntaxError``, ``RuntimeError``, ``EOFError``, ...) becomes a
``DecodeError`` naming the codec, the library's exception chained.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any, ClassVar, Dict, Iterator, Optional, Tuple

import numpy as np
from PIL import Image, features

from benchmark.codecs.base import CODECS, Codec, CodecError, DecodeError

# Memory a library decode needs per pixel, an upper bound of what was measured here (peak RSS
# growth of ``decode`` of a 2048 x 2048 photo: 7-22 B/px for the six codecs), with margin: the
# library's own buffers, the RGB image, and the numpy copy the codec returns.
DECODE_BYTES_PER_PIXEL = {"pillow": 24, "hevc": 32, "jpegxl": 48}


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise CodecError(f"expected a uint8 (H, W, 3) array, got {getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


class _PillowCodec(Codec):
    """Shared encode/decode through ``PIL.Image.save`` / ``PIL.Image.open``."""

    format: ClassVar[str]
    feature: ClassVar[str]

    def _save_kwargs(self, rate_point: float) -> Dict[str, Any]:
        raise NotImplementedError

    def encode(self, image: np.ndarray, rate_point: float) -> bytes:
        _check_image(image)
        buf = io.BytesIO()
        try:
            Image.fromarray(image, "RGB").save(buf, format=self.format, **self._save_kwargs(rate_point))
        except (OSError, ValueError) as e:
            raise CodecError(f"{self.format} encode at {self.rate_param}={rate_point} failed: {e}") from e
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """Decode the file into a uint8 (H, W, 3) image; its header's size is checked against
        ``limits`` before the pixels are decoded. Raises ``DecodeError``."""
        try:
            with _pillow_bomb_limit(self.limits.max_pixels), Image.open(io.BytesIO(data), formats=[self.format]) as img:
                width, height = img.size
                self.check_decode_size(height, width, DECODE_BYTES_PER_PIXEL["pillow"], what=f"{self.format} header's image size")
                img.load()
                return _to_rgb_array(img)
        except DecodeError:
            raise
        except Exception as e:  # noqa: BLE001 - any library error on hostile bytes is a decode error
            raise DecodeError(self.name, f"{self.format} decode failed: {type(e).__name__}: {e}") from e

    @classmethod
    def library_version(cls) -> str:
        import PIL

        return f"{cls.feature} {features.version(cls.feature)} (Pillow {PIL.__version__})"


@contextlib.contextmanager
def _pillow_bomb_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's decompression-bomb check at ``max_pixels`` for the block (restored after): its
    error (``Image.open`` of more than twice ``Image.MAX_IMAGE_PIXELS``) stays as a second line of
    defence; its warning (above it) is silenced, because ``check_decode_size`` refuses such a
    size right after ``open``, naming the field."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def _quality(rate_point: float, lo: int, hi: int, name: str) -> int:
    q = int(rate_point)
    if q != rate_point or not lo <= q <= hi:
        raise CodecError(f"{name}: quality must be an integer in [{lo}, {hi}], got {rate_point}")
    return q


@CODECS.register("jpeg")
class JPEG(_PillowCodec):
    """Baseline JPEG (ITU-T T.81) via Pillow and libjpeg-turbo.

    Options: ``subsampling`` ("4:2:0" default, "4:2:2", "4:4:4"), ``optimize`` (optimized Huffman
    tables; off by default, as in CompressAI's published JPEG curve), ``progressive``.
    """


    memory_per_pixel = 30.0  # bytes/px beyond the worker baseline: coding at the top rate point + 20 (benchmark.evaluation)
    format = "JPEG"
    feature = "libjpeg_turbo"
    defaults = {"subsampling": "4:2:0", "optimize": False, "progressive": False}
    choices = {"subsampling": ("4:2:0", "4:2:2", "4:4:4"), "optimize": (False, True), "progressive": (False, True)}

    def _save_kwargs(self, rate_point: float) -> Dict[str, Any]:
        return {
            "quality": _quality(rate_point, 1, 95, "jpeg"),
            "subsampling": self.options["subsampling"],
            "optimize": bool(self.options["optimize"]),
            "progressive": bool(self.options["progressive"]),
        }


@CODECS.register("webp")
class WebP(_PillowCodec):
    """Lossy WebP (VP8 intra) via Pillow and libwebp. Option ``method`` 0 (fast) .. 6 (best)."""


    memory_per_pixel = 40.0  # bytes/px beyond the worker baseline: coding at the top rate point + 20 (benchmark.evaluation)
    format = "WEBP"
    feature = "webp"
    defaults = {"method": 6}
    choices = {"method": tuple(range(7))}

    def _save_kwargs(self, rate_point: float) -> Dict[str, Any]:
        return {"quality": _quality(rate_point, 0, 100, "webp"), "method": int(self.options["method"]), "lossless": False}


@CODECS.register("avif")
class AVIF(_PillowCodec):
    """AVIF (AV1 intra in HEIF) via Pillow's built-in libavif with the aom encoder.

    Options: ``subsampling`` ("4:2:0" default, "4:4:4"), ``speed`` 0 (best) .. 10 (fastest),
    ``codec`` (libavif encoder name, "auto" picks aom when available).
    """


    memory_per_pixel = 50.0  # bytes/px beyond the worker baseline: coding at the top rate point + 20 (benchmark.evaluation)
    format = "AVIF"
    feature = "avif"
    defaults = {"subsampling": "4:2:0", "speed": 6, "codec": "auto"}
    choices = {"subsampling": ("4:0:0", "4:2:0", "4:2:2", "4:4:4"), "speed": tuple(range(11))}

    def _save_kwargs(self, rate_point: float) -> Dict[str, Any]:
        return {
            "quality": _quality(rate_point, 0, 100, "avif"),
            "subsampling": self.options["subsampling"],
            "speed": int(self.options["speed"]),
            "codec": self.options["codec"],
            "max_threads": 1,
        }


@CODECS.register("jpeg2000")
class JPEG2000(_PillowCodec):
    """JPEG 2000 (ISO/IEC 15444-1) codestream via Pillow and OpenJPEG, rate-controlled.

    The rate point is a target in bpp, given to OpenJPEG as the compression ratio
    ``24 / bpp`` of one quality layer; the actual bpp (measured from the bytes) is close to
    but not exactly the target. Options: ``irreversible`` (9/7 wavelet, default True),
    ``mct`` (RGB -> YCbCr component transform, default 1), ``num_resolutions`` (default 6).
    The raw codestream (.j2k, no JP2 boxes) is what is counted.
    """


    memory_per_pixel = 60.0  # bytes/px beyond the worker baseline: coding at the top rate point + 20 (benchmark.evaluation)
    format = "JPEG2000"
    feature = "jpg_2000"
    rate_param = "target_bpp"
    defaults = {"irreversible": True, "mct": 1, "num_resolutions": 6}
    choices = {"irreversible": (False, True), "mct": (0, 1)}

    def _save_kwargs(self, rate_point: float) -> Dict[str, Any]:
        if not 0 < rate_point < 24:
            raise CodecError(f"jpeg2000: target bpp must be in (0, 24), got {rate_point}")
        return {
            "quality_mode": "rates",
            "quality_layers": [24.0 / float(rate_point)],
            "irreversible": bool(self.options["irreversible"]),
            "mct": int(self.options["mct"]),
            "num_resolutions": int(self.options["num_resolutions"]),
            "no_jp2": True,
        }


@CODECS.register("jpegxl")
class JPEGXL(Codec):
    """JPEG XL (ISO/IEC 18181) via imagecodecs and libjxl, lossy VarDCT.

    The rate point is the Butteraugli ``distance`` (1.0 ~ visually lossless, larger = fewer bits,
    0.0 < d <= 25). Option ``effort`` 1..9 (default 7, libjxl's default).
    """


    memory_per_pixel = 65.0  # bytes/px beyond the worker baseline: coding at the top rate point + 20 (benchmark.evaluation)
    rate_param = "distance"
    defaults = {"effort": 7}
    choices = {"effort": tuple(range(1, 10))}

    def encode(self, image: np.ndarray, rate_point: float) -> bytes:
        import imagecodecs

        _check_image(image)
        if not 0 < rate_point <= 25:
            raise CodecError(f"jpegxl: distance must be in (0, 25], got {rate_point}")
        try:
            return bytes(
                imagecodecs.jpegxl_encode(
                    np.ascontiguousarray(image), distance=float(rate_point), effort=int(self.options["effort"]), numthreads=1
                )
            )
        except imagecodecs.JpegxlError as e:
            raise CodecError(f"jpegxl encode at distance={rate_point} failed: {e}") from e

    def decode(self, data: bytes) -> np.ndarray:
        """Decode a JPEG XL file into a uint8 (H, W, 3) image; the codestream's size header is
        read first (:func:`jxl_size`) and checked against ``limits``. Raises ``DecodeError``."""
        import imagecodecs

        size = jxl_size(data)
        if size is None:
            raise DecodeError(self.name, "no JPEG XL codestream size header (not a JPEG XL file, or truncated)")
        height, width = size
        self.check_decode_size(height, width, DECODE_BYTES_PER_PIXEL["jpegxl"], what="JPEG XL size header's image size")
        try:
            out = imagecodecs.jpegxl_decode(data, numthreads=1)
        except Exception as e:  # noqa: BLE001 - JpegxlError, ValueError, ... on hostile bytes
            raise DecodeError(self.name, f"jpegxl decode failed: {type(e).__name__}: {e}") from e
        if out.ndim != 3 or out.shape[2] != 3 or out.dtype != np.uint8:
            raise DecodeError(self.name, f"jpegxl decode returned {out.dtype} {out.shape}, expected uint8 (H, W, 3)")
        return np.ascontiguousarray(out)

    @classmethod
    def library_version(cls) -> str:
        import imagecodecs

        return f"{imagecodecs.jpegxl_version()} (imagecodecs {imagecodecs.__version__})"


@CODECS.register("hevc")
class HEVC(Codec):
    """HEVC intra (ITU-T H.265, Main / Main Still Picture) in a HEIF file via pillow-heif,
    libheif and x265: the available stand-in for BPG.

    Options: ``chroma`` 420 (default), 422 or 444. The whole HEIF file is counted (its boxes
    add a few hundred bytes over a raw HEVC stream, as BPG's header does over its stream).
    """


    memory_per_pixel = 50.0  # bytes/px beyond the worker baseline: coding at the top rate point + 20 (benchmark.evaluation)
    defaults = {"chroma": 420}
    choices = {"chroma": (420, 422, 444)}

    def encode(self, image: np.ndarray, rate_point: float) -> bytes:
        import pillow_heif

        _check_image(image)
        q = _quality(rate_point, 0, 100, "hevc")
        h, w, _ = image.shape
        buf = io.BytesIO()
        try:
            pillow_heif.encode("RGB", (w, h), np.ascontiguousarray(image).tobytes(), buf, quality=q, chroma=int(self.options["chroma"]))
        except (RuntimeError, ValueError) as e:
            raise CodecError(f"hevc encode at quality={q} failed: {e}") from e
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """Decode a HEIF file into a uint8 (H, W, 3) image; the size in its boxes is checked
        against ``limits`` before the HEVC stream is decoded. Raises ``DecodeError``."""
        import pillow_heif

        try:
            heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
            width, height = heif.size
            self.check_decode_size(height, width, DECODE_BYTES_PER_PIXEL["hevc"], what="HEIF header's image size")
            return _to_rgb_array(heif.to_pillow())
        except DecodeError:
            raise
        except Exception as e:  # noqa: BLE001 - RuntimeError, ValueError, SyntaxError, ... on hostile bytes
            raise DecodeError(self.name, f"hevc decode failed: {type(e).__name__}: {e}") from e

    @classmethod
    def library_version(cls) -> str:
        import pillow_heif

        info = pillow_heif.libheif_info()
        return f"libheif {info.get('libheif')}, {info.get('HEIF')} (pillow-heif {pillow_heif.__version__})"


# ---- JPEG XL size header (ISO/IEC 18181-1, SizeHeader) ------------------------------------

_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


def _jxl_codestream(data: bytes) -> Optional[bytes]:
    """The start of the codestream: ``data`` itself if it is a bare codestream (``FF 0A``), or
    the payload of the first ``jxlc``/``jxlp`` box of a JPEG XL container; None otherwise."""
    if data[:2] == b"\xff\x0a":
        return data
    if not data.startswith(_JXL_CONTAINER):
        return None
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        head = 8
        if size == 1 and pos + 16 <= len(data):
            size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        if kind == b"jxlc":
            return data[pos + head:]
        if kind == b"jxlp":
            return data[pos + head + 4:]  # a 4-byte part index precedes the codestream part
        if size < head:  # 0: the box runs to the end of the file; anything else smaller is corrupt
            return None
        pos += size
    return None


def jxl_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(height, width) in pixels from the ``SizeHeader`` of a JPEG XL file (bare codestream or
    container; ISO/IEC 18181-1: ``small`` flag, ``U32`` sizes, aspect ratio codes), read without
    decoding anything; None if ``data`` holds no complete size header."""
    stream = _jxl_codestream(bytes(data))
    if stream is None or len(stream) < 3:
        return None
    bits = int.from_bytes(stream[2:2 + 16], "little")  # the size header is at most 1+2+30+3+2+30 bits
    available = 8 * len(stream[2:2 + 16])
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        if pos + n > available:
            raise IndexError
        value = (bits >> pos) & ((1 << n) - 1)
        pos += n
        return value

    def u32() -> int:
        return take((9, 13, 18, 30)[take(2)]) + 1

    try:
        if take(1):  # small: multiples of 8 up to 256
            height = (take(5) + 1) * 8
            ratio = take(3)
            width = (take(5) + 1) * 8 if ratio == 0 else None
        else:
            height = u32()
            ratio = take(3)
            width = u32() if ratio == 0 else None
    except IndexError:
        return None
    if width is None:
        num, den = _JXL_RATIOS[ratio]
        width = height * num // den
    return height, width
