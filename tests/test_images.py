"""benchmark.data.images: what load_rgb8 accepts and refuses, hashing, atomic PNG, manifest."""

import hashlib
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from benchmark.data.images import (
    MIN_SIDE,
    ImageError,
    ManifestError,
    ManifestRow,
    load_rgb8,
    pixel_sha256,
    read_manifest,
    save_png_atomic,
    write_manifest,
)

H, W = 170, 200  # just above MIN_SIDE, not square (catches transposed axes)


def _rgb(h=H, w=W, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _raw_png(w, h, depth, color_type, rows: bytes) -> bytes:
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_rgb_png_round_trip_exact(tmp_path):
    a = _rgb()
    Image.fromarray(a).save(tmp_path / "a.png")
    out = load_rgb8(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, a)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    g = np.random.default_rng(1).integers(0, 256, (H, W), dtype=np.uint8)
    Image.fromarray(g).save(tmp_path / "g.png")
    out = load_rgb8(tmp_path / "g.png")
    assert out.shape == (H, W, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_palette_image_is_expanded(tmp_path):
    idx = (np.arange(H * W).reshape(H, W) % 3).astype(np.uint8)
    img = Image.fromarray(idx, mode="L").convert("P")
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.save(tmp_path / "p.png")
    out = load_rgb8(tmp_path / "p.png")
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(out, colours[idx])


def _rgba_file(tmp_path):
    a = np.zeros((H, W, 4), dtype=np.uint8)
    a[..., 0] = 200  # red 200
    a[..., 3] = 255
    a[:, : W // 2, 3] = 0  # left half fully transparent
    a[:, W // 2 :, 3] = 128  # right half half transparent
    a[:, -1, 3] = 255  # last column opaque
    p = tmp_path / "rgba.png"
    Image.fromarray(a).save(p)
    return p


def test_rgba_refused_by_default(tmp_path):
    p = _rgba_file(tmp_path)
    with pytest.raises(ImageError) as e:
        load_rgb8(p)
    msg = str(e.value)
    assert msg.startswith(str(p)) and "alpha channel" in msg and "alpha: flatten" in msg


def test_rgba_flattened_onto_white(tmp_path):
    out = load_rgb8(_rgba_file(tmp_path), alpha="flatten")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])  # transparent -> white
    np.testing.assert_array_equal(out[0, -1], [200, 0, 0])  # opaque -> unchanged
    # alpha 128/255 over white: round(200*128/255 + 255*127/255) = 227, 255*127/255 = 127
    assert abs(int(out[0, W // 2, 0]) - 227) <= 1
    assert abs(int(out[0, W // 2, 1]) - 127) <= 1


def test_palette_with_transparency_refused(tmp_path):
    img = Image.new("P", (W, H), 0)
    img.putpalette([0, 0, 0, 255, 255, 255] + [0] * (254 * 3))
    img.paste(1, (0, 0, 10, 10))
    img.info["transparency"] = 1
    p = tmp_path / "pt.png"
    img.save(p, transparency=1)
    with pytest.raises(ImageError, match="alpha channel"):
        load_rgb8(p)
    out = load_rgb8(p, alpha="flatten")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[-1, -1], [0, 0, 0])


def test_fully_opaque_alpha_is_dropped(tmp_path):
    a = _rgb()
    rgba = np.concatenate([a, np.full((H, W, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "o.png")
    np.testing.assert_array_equal(load_rgb8(tmp_path / "o.png"), a)


def test_16bit_gray_png_refused(tmp_path):
    a = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 7) % 65535
    p = tmp_path / "g16.png"
    Image.fromarray(a.astype(np.uint16)).save(p)
    assert Image.open(p).mode.startswith("I;16")
    with pytest.raises(ImageError, match="16-bit images are not supported; convert to 8-bit first") as e:
        load_rgb8(p)
    assert str(e.value).startswith(str(p))


def test_48bit_rgb_png_refused_although_pillow_reads_it_as_rgb(tmp_path):
    row = np.full((W, 3), 1000, dtype=">u2").tobytes()
    p = tmp_path / "rgb48.png"
    p.write_bytes(_raw_png(W, H, 16, 2, b"".join(b"\x00" + row for _ in range(H))))
    assert Image.open(p).mode == "RGB"  # Pillow truncates silently: the reason for the IHDR check
    with pytest.raises(ImageError, match="16-bit images are not supported"):
        load_rgb8(p)


def test_48bit_ppm_and_tiff_refused(tmp_path):
    px = np.full((H, W, 3), 1000, dtype=">u2")
    ppm = tmp_path / "rgb48.ppm"
    ppm.write_bytes(b"P6\n# a comment\n%d %d\n65535\n" % (W, H) + px.tobytes())
    assert Image.open(ppm).mode == "RGB"  # Pillow scales it down silently
    with pytest.raises(ImageError, match="16-bit images are not supported"):
        load_rgb8(ppm)
    tifffile = pytest.importorskip("tifffile")
    tif = tmp_path / "rgb48.tif"
    tifffile.imwrite(tif, px.astype(np.uint16), photometric="rgb")
    with pytest.raises(ImageError, match="16-bit images are not supported"):
        load_rgb8(tif)


def test_float_tiff_refused(tmp_path):
    p = tmp_path / "f.tif"
    Image.fromarray(np.zeros((H, W), np.float32)).save(p)
    with pytest.raises(ImageError, match="float"):
        load_rgb8(p)


def test_truncated_png(tmp_path):
    full = tmp_path / "full.png"
    Image.fromarray(_rgb()).save(full)
    p = tmp_path / "cut.png"
    p.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageError, match="cannot be read as an image") as e:
        load_rgb8(p)
    assert str(e.value).startswith(str(p))


def test_non_image_and_missing_file(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not an image\n")
    with pytest.raises(ImageError, match="cannot be read as an image"):
        load_rgb8(p)
    with pytest.raises(ImageError, match="cannot be read as an image"):
        load_rgb8(tmp_path / "absent.png")


def test_too_small(tmp_path):
    p = tmp_path / "small.png"
    Image.fromarray(_rgb(MIN_SIDE - 1, 300)).save(p)
    with pytest.raises(ImageError, match=rf"300x{MIN_SIDE - 1}.*minimum is {MIN_SIDE}"):
        load_rgb8(p)
    assert load_rgb8(p, min_side=100).shape == (MIN_SIDE - 1, 300, 3)


def test_min_side_matches_ms_ssim_requirement():
    assert MIN_SIDE == (11 - 1) * 2**4 + 1


def test_exif_orientation_applied(tmp_path):
    a = np.zeros((H, W, 3), np.uint8)  # landscape, W > H
    a[:40, :40] = 255  # white block at top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "rot.jpg"
    Image.fromarray(a).save(p, exif=exif, quality=95)
    out = load_rgb8(p)
    assert out.shape == (W, H, 3)  # now portrait
    assert out[:30, -30:].mean() > 200  # top-left block ends up top-right after a CW turn
    assert out[:30, :30].mean() < 50


def test_pixel_sha256_known_value():
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert pixel_sha256(a) == hashlib.sha256(bytes(range(18))).hexdigest()
    # a non-contiguous view hashes by its logical (row-major) content
    big = np.zeros((2, 6, 3), np.uint8)
    big[:, ::2] = a
    assert pixel_sha256(big[:, ::2]) == pixel_sha256(a)
    with pytest.raises(ValueError):
        pixel_sha256(a.astype(np.int16))
    with pytest.raises(ValueError):
        pixel_sha256(a[..., 0])


def test_save_png_atomic_round_trip(tmp_path):
    a = _rgb()
    p = save_png_atomic(a, tmp_path / "x.png")
    assert Image.open(p).format == "PNG"
    np.testing.assert_array_equal(load_rgb8(p), a)
    assert [q.name for q in tmp_path.iterdir()] == ["x.png"]


def test_save_png_atomic_failure_keeps_old_file(tmp_path):
    p = save_png_atomic(_rgb(seed=1), tmp_path / "x.png")
    before = p.read_bytes()
    with pytest.raises(ValueError):
        save_png_atomic(np.zeros((H, W), np.uint8), p)
    (tmp_path / "sub").mkdir()
    with pytest.raises(OSError):  # the target is a directory: os.replace fails after writing
        save_png_atomic(_rgb(), tmp_path / "sub")
    assert p.read_bytes() == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["sub", "x.png"]


def test_manifest_round_trip_and_errors(tmp_path):
    rows = [
        ManifestRow("a", "images/a.png", 512, 768, "0" * 64, "http://x/a.png"),
        ManifestRow("b,c", "images/b,c.png", 200, 300, "f" * 64, "pkg 1.0: b.jpg"),
    ]
    write_manifest(tmp_path, rows)
    assert read_manifest(tmp_path) == rows
    assert (tmp_path / "manifest.csv").read_text().splitlines()[0] == "name,file,height,width,pixel_sha256,origin"

    with pytest.raises(ManifestError, match="manifest.csv: manifest not found"):
        read_manifest(tmp_path / "nowhere")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.csv").write_text("name,file\na,b\n")
    with pytest.raises(ManifestError, match=r"bad/manifest.csv: bad header"):
        read_manifest(bad)
    (bad / "manifest.csv").write_text(
        "name,file,height,width,pixel_sha256,origin\na,images/a.png,tall,768," + "0" * 64 + ",x\n"
    )
    with pytest.raises(ManifestError, match="line 2: height/width must be integers"):
        read_manifest(bad)
