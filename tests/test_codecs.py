"""Codec round trips: real bitstreams decode alone to images of the right shape and quality."""

import io

import numpy as np
import pytest

import benchmark.codecs.classical  # noqa: F401  (registers the classical codecs)
from benchmark.codecs.base import CODECS, CodecError, build_codec
from benchmark.metrics import distortion_metrics

# (codec, low rate point, high rate point): the high one must cost more bits and give higher PSNR.
SWEEPS = [
    ("jpeg", 10, 90),
    ("webp", 10, 90),
    ("avif", 20, 90),
    ("jpeg2000", 0.2, 1.5),
    ("jpegxl", 8.0, 0.7),
    ("hevc", 20, 90),
]


@pytest.fixture(scope="module")
def odd_image(astronaut):
    # Odd sizes (not multiples of 8/16/64) catch padding/cropping bugs.
    return np.ascontiguousarray(astronaut[:301, :419])


def test_all_classical_codecs_registered():
    assert {s[0] for s in SWEEPS} <= set(CODECS.names())


@pytest.mark.parametrize("name,low,high", SWEEPS)
def test_round_trip_and_rate_ordering(name, low, high, odd_image):
    codec = build_codec(name, {})
    results = []
    for rp in (low, high):
        data = codec.encode(odd_image, rp)
        assert isinstance(data, bytes) and len(data) > 0
        rec = build_codec(name, {}).decode(data)  # a fresh instance: decode needs only the bytes
        assert rec.shape == odd_image.shape and rec.dtype == np.uint8
        m = distortion_metrics(odd_image, rec)
        results.append((len(data), m["psnr"]))
        assert 20 < m["psnr"] < 60
    (b_lo, p_lo), (b_hi, p_hi) = results
    assert b_hi > b_lo and p_hi > p_lo


def test_deterministic_bitstream(odd_image):
    for name, _, high in SWEEPS:
        c = build_codec(name, {})
        assert c.encode(odd_image, high) == c.encode(odd_image, high), name


def test_jpeg_matches_direct_pillow(odd_image):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(odd_image).save(buf, format="JPEG", quality=75)
    assert build_codec("jpeg", {}).encode(odd_image, 75) == buf.getvalue()


def test_jpeg_subsampling_option_changes_stream(odd_image):
    a = build_codec("jpeg", {"subsampling": "4:2:0"}).encode(odd_image, 75)
    b = build_codec("jpeg", {"subsampling": "4:4:4"}).encode(odd_image, 75)
    assert len(b) > len(a)


def test_jpeg2000_hits_target_rate(odd_image):
    c = build_codec("jpeg2000", {})
    h, w, _ = odd_image.shape
    for target in (0.25, 1.0):
        bpp = 8 * len(c.encode(odd_image, target)) / (h * w)
        assert bpp == pytest.approx(target, rel=0.1)


def test_bad_options_and_rate_points(odd_image):
    with pytest.raises(CodecError, match="unknown options"):
        build_codec("jpeg", {"qualty": 3})
    with pytest.raises(CodecError, match="quality"):
        build_codec("jpeg", {}).encode(odd_image, 120)
    with pytest.raises(CodecError, match="distance"):
        build_codec("jpegxl", {}).encode(odd_image, 0)
    with pytest.raises(CodecError, match="uint8"):
        build_codec("webp", {}).encode(odd_image.astype(np.float32), 50)
    with pytest.raises(CodecError, match="subsampling=14520"):  # unquoted 4:2:0 read as YAML 1.1
        build_codec("jpeg", {"subsampling": 14520})
    with pytest.raises(CodecError, match="chroma"):
        build_codec("hevc", {"chroma": "4:2:0"})
    with pytest.raises(KeyError, match="unknown codec"):
        build_codec("bpg", {})


@pytest.mark.parametrize("name", [s[0] for s in SWEEPS])
def test_corrupt_bitstream_raises_codec_error(name, odd_image):
    codec = build_codec(name, {})
    data = codec.encode(odd_image, SWEEPS[[s[0] for s in SWEEPS].index(name)][2])
    with pytest.raises(CodecError):
        codec.decode(data[: len(data) // 8])


def test_library_versions_are_reported():
    for name in [s[0] for s in SWEEPS]:
        v = build_codec(name, {}).library_version()
        assert v and "unknown" not in v
