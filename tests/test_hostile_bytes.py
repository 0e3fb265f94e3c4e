"""Hostile bytes (issue 15): every codec's decode gives an image or its one ``DecodeError``, in
a child process so that a crash or hang is reported, never another exception; headers beyond
params.yaml's ``decode`` limits are refused before anything is allocated; a failed decode in
evaluate is a "failed" row that ``check`` reports.

The fuzz here is the CI size (a few dozen corruptions per codec); ``benchmarks/fuzz_decoders.py``
runs more and prints the counts.
"""

import dataclasses
import math
import pickle
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import benchmark.codecs.classical  # noqa: F401  (registers the classical codecs)
import benchmark.codecs.learned  # noqa: F401
from benchmark.codecs.base import CODECS, CodecError, DecodeError, build_codec
from benchmark.codecs.classical import JPEG
from benchmark.codecs.container import pack, unpack
from benchmark.config import CheckConfig, ConfigError, DecodeConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from fuzz_decoders import CLASSICAL, container_field_cases, corruptions, run_cases  # noqa: E402

CASES = 204  # per codec in CI (34 of each of the 6 kinds), plus the header-field cases; the benchmark script takes any count


@pytest.fixture(scope="module")
def image():
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:164, 150:246])  # 64 x 96, a real photo


def _assert_clean(name, outcomes):
    counts = Counter(o for o, _ in outcomes)
    bad = [(i, o, d) for i, (o, d) in enumerate(outcomes) if o not in ("image", "decode_error")]
    assert not bad, f"{name}: {dict(counts)}; e.g. {bad[:3]}"
    print(f"fuzz {name}: {len(outcomes)} cases, {counts['image']} images, {counts['decode_error']} decode errors, 0 other")
    return counts


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_classical_fuzz_gives_image_or_decode_error(name, image):
    """Seeded byte replacements, bit flips, truncations, insertions, appended bytes and extreme
    header words: each decode (in a child under a memory cap and a time limit) is an image or a
    DecodeError naming the codec, never another type, a signal or a hang (before issue 15:
    AVIF RuntimeError, HEVC SyntaxError/IndexError, JPEG XL ValueError, JPEG 2000 Pillow's
    DecompressionBombError)."""
    data = build_codec(name, {}).encode(image, CLASSICAL[name])
    cases = [b for _, b in corruptions(data, CASES, seed=1)] + [data[:0], data[:1], b"\x00" * 64]
    outcomes = run_cases(name, {}, {}, ["benchmark.codecs.classical"], cases, timeout_s=20, mem_cap_gb=4,
                         warmup=data)
    counts = _assert_clean(name, outcomes)
    assert counts["decode_error"] >= 3  # the empty, one-byte and zero inputs at least
    assert outcomes[-3][1].startswith(f"{name}: ")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Random-weight hyperprior and dvae checkpoints (entropy tables, coding prior computed): real
    strings. (dvae's random-weight latent is constant, which its coder panicked on before.)"""
    import torch

    from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
    from benchmark.models.specs import build_model

    root = tmp_path_factory.mktemp("hostile")
    for arch, size in (("bmshj2018-hyperprior", {"N": 16, "M": 16}), ("dvae", {"N": 16, "M": 16})):
        torch.manual_seed(0)
        model = finalize_for_coding(build_model(arch, size))
        save_checkpoint(root / arch / "q3.pt", {"arch": arch, "size": size, "rate_point": "q3", "state_dict": model.state_dict(),
                                                "coder_ready": True, "train_images_sha256": []})
    return str(root / "{model}" / "q{rate_point}.pt")


@pytest.mark.parametrize("model", ["bmshj2018-hyperprior", "dvae"])
def test_learned_fuzz_and_extreme_header_fields(model, image, tiny_models):
    """The learned container: random corruptions and its header fields set to 0, 1, 2**16-1,
    2**32-1, and the issue's header (65535 x 65535 with the latent that fits it: a SIGSEGV in the
    hyperprior's decoder and a 12 GiB MemoryError in dvae's before issue 15): an image or a
    DecodeError, in a child process with a 4 GiB address-space cap."""
    codec = build_codec("learned", {"model": model}, checkpoints=tiny_models)
    data = codec.encode(image, 3)
    fields = container_field_cases(data)
    cases = [b for _, b in corruptions(data, CASES, seed=2)] + [b for _, b in fields]
    outcomes = run_cases("learned", {"model": model}, {"checkpoints": tiny_models}, ["benchmark.codecs.learned"], cases,
                         timeout_s=60, mem_cap_gb=4, warmup=data)
    _assert_clean(model, outcomes)
    crafted = outcomes[-1]
    assert crafted[0] == "decode_error" and "65535x65535" in crafted[1] and "decode.max_pixels" in crafted[1]


def test_learned_header_limits_name_the_field(image, tiny_models):
    """In process: pixels over decode.max_pixels, memory over decode.max_memory_gb, and a z
    string too short for the latent the header claims: DecodeError naming field and value."""
    codec = build_codec("learned", {"model": "bmshj2018-hyperprior"}, checkpoints=tiny_models)
    data = codec.encode(image, 3)
    c = unpack(data)
    assert codec.decode(data).shape == image.shape
    codec.limits = DecodeConfig(max_pixels=64 * 64)
    with pytest.raises(DecodeError, match=r"learned: image size 64x96, padded 64x128 is 8192 pixels, above the limit"):
        codec.decode(data)
    codec.limits = DecodeConfig(max_memory_gb=1e-5)
    with pytest.raises(DecodeError, match=r"64x128 needs about .* GiB to decode, above the limit \(decode.max_memory_gb\)"):
        codec.decode(data)
    codec.limits = DecodeConfig()
    big = pack(dataclasses.replace(c, height=4096, width=4096, shape=(64, 64)))
    with pytest.raises(DecodeError, match=r"latent shape \(64, 64\) needs at least \d+ bytes for its 65536 entropy-bottleneck"):
        codec.decode(big)
    with pytest.raises(DecodeError) as e:
        codec.decode(data[:-3])
    assert e.value.codec == "learned" and isinstance(e.value.__cause__, Exception)
    again = pickle.loads(pickle.dumps(e.value))  # crosses worker processes intact
    assert (again.codec, again.reason, str(again)) == (e.value.codec, e.value.reason, str(e.value))


def test_dvae_symbol_range_and_coder_panics_are_decode_errors(image, tiny_models, monkeypatch):
    """dvae's [lo, hi] symbol range with lo == hi (constriction panics on it, a BaseException
    that ``except Exception`` does not catch) is refused by name, and any panic of a Rust coder
    during decode comes out as the codec's DecodeError; a constant latent encodes (it panicked)."""
    import struct

    codec = build_codec("learned", {"model": "dvae"}, checkpoints=tiny_models)
    data = codec.encode(image, 3)
    c = unpack(data)
    lo, hi = struct.unpack("<ii", c.strings[0][0])
    assert hi == lo + 1  # random weights: a constant latent, coded over [z, z + 1]
    assert codec.decode(data).shape == image.shape
    same = pack(dataclasses.replace(c, strings=[[struct.pack("<ii", lo, lo)], *[list(g) for g in c.strings[1:]]]))
    with pytest.raises(DecodeError, match=rf"bad symbol range {lo}..{lo}"):
        codec.decode(same)

    class Panic(BaseException):  # what pyo3's PanicException derives from
        pass

    model, _ = codec.load(3)

    def panic(*args, **kwargs):
        raise Panic("assertion failed")

    monkeypatch.setattr(model, "decompress", panic)
    with pytest.raises(DecodeError, match="decompress failed: Panic: assertion failed"):
        codec.decode(data)


def test_pillow_header_size_is_checked_before_decoding(image):
    """The size in a JPEG's header is checked against decode.max_pixels before the pixels are
    decoded, and Pillow's decompression-bomb limit follows decode.max_pixels."""
    codec = build_codec("jpeg", {})
    data = codec.encode(image, 50)
    codec.limits = DecodeConfig(max_pixels=4000)  # Pillow's own error would come at twice that
    with pytest.raises(DecodeError, match=r"jpeg: JPEG header's image size 64x96 is 6144 pixels, above the limit"):
        codec.decode(data)
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS != 4000  # restored after the call
    codec.limits = DecodeConfig(max_pixels=1000)
    with pytest.raises(DecodeError, match="jpeg: JPEG decode failed: DecompressionBombError"):
        codec.decode(data)
    for name in ("hevc", "jpegxl"):
        other = build_codec(name, {})
        other.limits = DecodeConfig(max_pixels=1000)
        with pytest.raises(DecodeError, match=rf"{name}: .*64x96 is 6144 pixels"):
            other.decode(other.encode(image, CLASSICAL[name]))


def test_decode_errors_are_codec_errors_named_by_the_registry():
    assert issubclass(DecodeError, CodecError)
    for name in CODECS.names():
        if name in CLASSICAL:
            assert build_codec(name, {}).name == name


def test_decode_section_of_params():
    """params.yaml's ``decode``: the committed values are the defaults; unknown keys and
    non-positive limits are refused naming the key."""
    from benchmark.config import load_config, parse_options

    root = Path(__file__).resolve().parents[1]
    assert load_config(root / "params.yaml", import_plugins=False).decode == DecodeConfig() == DecodeConfig(1 << 28, None)
    assert parse_options(DecodeConfig, {"max_pixels": 1000, "max_memory_gb": 2}, "decode") == DecodeConfig(1000, 2)
    with pytest.raises(ConfigError, match="max_pixel"):
        parse_options(DecodeConfig, {"max_pixel": 1}, "params.yaml: decode")
    with pytest.raises(ConfigError, match="decode"):
        parse_options(DecodeConfig, {"max_pixels": 0}, "params.yaml: decode")


class _FailingDecoder(JPEG):
    """JPEG whose decode fails at quality 10 (as a decode over the limits would)."""

    def decode(self, data):
        if self._fail:
            raise DecodeError(self.name, "header beyond the limits (test)")
        return super().decode(data)

    def encode_verbose(self, image, rate_point):
        self._fail = rate_point == 10
        return super().encode_verbose(image, rate_point)


def test_failed_decode_is_a_failed_row_that_check_reports(image, tmp_path):
    from benchmark.check import compare
    from benchmark.data.images import pixel_sha256, save_png_atomic
    from benchmark.evaluation import code_image, summary_line

    from skimage import data

    image = np.ascontiguousarray(data.astronaut()[:200, :240])  # evaluate's minimum is 161 px a side
    path = tmp_path / "img.png"
    save_png_atomic(image, path)
    rows, recs = code_image(_FailingDecoder(), str(path), pixel_sha256(image), [10, 50], keep=True)
    failed, ok = rows
    assert failed["decode_check"] == "failed" and math.isnan(failed["psnr"]) and failed["bytes"] > 0 and recs[0] is None
    assert ok["decode_check"] == "n/a" and ok["psnr"] > 20 and recs[1].shape == image.shape
    assert failed["failure"].startswith("decode failed: _FailingDecoder: header beyond the limits")  # the evaluate stage prints it
    df = pd.DataFrame([{"codec": "jpeg", "image": "img", **r} for r in rows])
    assert "1 FAILED row(s) of 1 image(s)" in summary_line(df.assign(bpp=df.bpp), "set/jpeg", 1, 2, "x.csv")
    baseline = df.assign(decode_check="n/a", psnr=30.0, ms_ssim_db=15.0)
    regressions, _ = compare(df, baseline, CheckConfig())
    assert any("rate_point=10 image=img decode_check: failed (the codec could not decode its own bitstream" in r for r in regressions)
