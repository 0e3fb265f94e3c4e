"""The learned-codec bitstream container: layout, round trips, and corrupt input that must fail
with ContainerError (never another exception, a hang, or a large allocation)."""

import random
import struct
import time

import numpy as np
import pytest

from benchmark.codecs.container import (
    MAGIC,
    Container,
    ContainerError,
    as_container_strings,
    header_size,
    pack,
    unpack,
)


@pytest.fixture(scope="module")
def real() -> Container:
    """A container around the strings a real (random-init, tiny) CompressAI hyperprior writes
    for a 100x150 photo crop, plus a synthetic 300-byte string so that lengths need 2-byte varints."""
    import torch
    from skimage import data

    from benchmark.models.checkpoint import finalize_for_coding
    from benchmark.models.specs import build_model

    torch.manual_seed(0)
    model = finalize_for_coding(build_model("bmshj2018-hyperprior", {"N": 16, "M": 16}))
    x = torch.from_numpy(data.astronaut()[:128, :192].copy()).permute(2, 0, 1).float().div(255)[None]
    with torch.no_grad():
        out = model.compress(x)
    strings = as_container_strings(out["strings"]) + ((bytes(range(256)) + b"x" * 44,),)
    return Container("bmshj2018-hyperprior/M16,N16/q3", 3, 100, 150, tuple(int(d) for d in out["shape"]), strings)


def test_layout_byte_by_byte():
    c = Container("ab", 5, 0x0102, 300, (4, 130), ((b"xyz",), (b"", b"Q" * 200)))
    expected = (
        b"CBLC"  # magic
        + b"\x01"  # version
        + b"\x02ab"  # model id: varint length, utf-8
        + b"\x05"  # quality uint8
        + b"\x01\x02"  # height uint16 BE
        + struct.pack(">H", 300)  # width uint16 BE
        + b"\x02"  # number of shape dims
        + b"\x04" + b"\x82\x01"  # shape 4, 130 (LEB128)
        + b"\x02"  # two groups
        + b"\x01" + b"\x03"  # group 0: one string of 3 bytes
        + b"\x02" + b"\x00" + b"\xc8\x01"  # group 1: strings of 0 and 200 bytes
        + b"xyz" + b"Q" * 200
    )
    assert pack(c) == expected
    assert unpack(expected) == c
    assert c.payload_bytes == 203 and header_size(c) == len(expected) - 203 == 24
    assert c.strings_bpp() == pytest.approx(8 * 203 / (0x0102 * 300), rel=1e-15)


def test_round_trip_real_strings(real):
    data = pack(real)
    assert data.startswith(MAGIC)
    back = unpack(data)
    assert back == real
    assert len(data) == real.payload_bytes + header_size(real)
    assert header_size(real) < 64  # the header is small next to any real payload


def test_every_truncation_raises(real):
    data = pack(real)
    for n in range(len(data)):
        with pytest.raises(ContainerError):
            unpack(data[:n])


def test_trailing_garbage_wrong_magic_unknown_version(real):
    data = pack(real)
    with pytest.raises(ContainerError, match="1 bytes of trailing garbage"):
        unpack(data + b"\x00")
    with pytest.raises(ContainerError, match="wrong magic"):
        unpack(b"JFIF" + data[4:])
    with pytest.raises(ContainerError, match="unknown container format version 4"):
        unpack(data[:4] + b"\x04" + data[5:])
    with pytest.raises(ContainerError, match="unknown symbol order 7"):
        unpack(data[:4] + b"\x02\x07" + data[5:])


def test_symbol_order_is_recorded(real):
    """Raster containers are version 1 (as before the order existed); wavefront ones version 2
    with an order byte: one byte more, and the order comes back."""
    import dataclasses

    raster, wave = pack(real), pack(dataclasses.replace(real, order="wavefront"))
    assert raster[4] == 1 and wave[4:6] == b"\x02\x01" and len(wave) == len(raster) + 1
    assert unpack(raster).order == "raster" and unpack(wave) == dataclasses.replace(real, order="wavefront")
    with pytest.raises(ContainerError, match="symbol order 'zigzag'"):
        pack(dataclasses.replace(real, order="zigzag"))
    with pytest.raises(ContainerError, match="expected bytes"):
        unpack("CBLC")


def test_progressive_container_layout_and_errors():
    """Version 3 (progressive): a sampling byte after the version, the seed's varint only for
    'seeded'; the order is slice-wavefront; bad sampling codes, seeds and fields are refused."""
    import dataclasses

    base = Container("s", 7, 64, 96, (), ((b"zz",), (b"yyy",)), order="slice-wavefront", sampling="seeded", seed=300)
    data = pack(base)
    assert data[:7] == b"CBLC\x03\x01" + b"\xac" and data[7] == 0x02  # seed 300 = LEB128 ac 02
    assert data[8:] == pack(dataclasses.replace(base, sampling=None, seed=None, order="raster"))[5:]
    assert unpack(data) == base
    for sampling, code in (("none", 0), ("official", 2)):
        c = dataclasses.replace(base, sampling=sampling, seed=None)
        packed = pack(c)
        assert packed[4:6] == bytes([3, code]) and len(packed) == len(data) - 2 and unpack(packed) == c
    with pytest.raises(ContainerError, match="unknown sampling 3"):
        unpack(data[:5] + b"\x03" + data[6:])
    top = data[:6] + b"\xff" * 8 + b"\x7f" + data[8:]  # the largest seed, 2**63 - 1, in 9 bytes
    assert unpack(top) == dataclasses.replace(base, seed=2**63 - 1) and pack(unpack(top)) == top
    with pytest.raises(ContainerError, match="seed .* varint longer than 9 bytes"):
        unpack(data[:6] + b"\xff" * 9 + b"\x01" + data[8:])
    with pytest.raises(ContainerError, match="truncated: seed"):
        unpack(data[:6] + b"\x80")
    for bad, match in (
        (dict(seed=-1), "seed -1"), (dict(seed=None), "seed None"), (dict(seed=2**63), "seed"),
        (dict(sampling="none"), "stores no seed"), (dict(sampling="gaussian"), "sampling 'gaussian'"),
        (dict(order="raster"), "order .slice-wavefront."), (dict(sampling=None, order="raster"), "only stored in a progressive"),
    ):
        with pytest.raises(ContainerError, match=match):
            pack(dataclasses.replace(base, **bad))


def _header(id_len=b"\x00", groups=b"") -> bytes:
    return b"CBLC\x01" + id_len + struct.pack(">BHHB", 3, 10, 10, 0) + groups  # no shape dims


def test_absurd_sizes_fail_fast():
    t0 = time.perf_counter()
    huge = b"\xff" * 8 + b"\x7f"  # 2**63 - 1, the largest varint accepted
    cases = {
        "model id length": b"CBLC\x01" + huge,
        "number of strings in group 0": _header(groups=b"\x01" + huge),
        "strings need": _header(groups=b"\x01\x01" + huge),
        "number of string groups": _header(groups=b"\x7f"),
        "varint longer than 9 bytes": _header(groups=b"\x01\x01" + b"\x80" * 20),
    }
    for what, data in cases.items():
        with pytest.raises(ContainerError, match=what):
            unpack(data)
    with pytest.raises(ContainerError, match="zero side"):
        unpack(b"CBLC\x01\x00" + struct.pack(">BHHB", 3, 0, 10, 0) + b"\x00")
    with pytest.raises(ContainerError, match="not UTF-8"):
        unpack(b"CBLC\x01\x01\xff" + struct.pack(">BHHB", 3, 1, 1, 0) + b"\x00")
    assert time.perf_counter() - t0 < 1.0


def test_random_byte_flips_never_crash_otherwise(real):
    """2000 seeded corruptions (1-3 random bytes replaced): each either unpacks or raises
    ContainerError; any other exception type fails the test."""
    data = pack(real)
    rng = random.Random(1234)
    outcomes = {"error": 0, "ok": 0}
    for _ in range(2000):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        try:
            c = unpack(bytes(buf))
        except ContainerError:
            outcomes["error"] += 1
        else:
            outcomes["ok"] += 1
            assert c.payload_bytes <= len(buf)
    assert outcomes["error"] > 0 and outcomes["ok"] > 0  # flips in the payload still unpack


def test_random_bytes_after_the_magic():
    rng = np.random.default_rng(0)
    for n in range(0, 200, 3):
        for _ in range(20):
            try:
                unpack(b"CBLC\x01" + rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            except ContainerError:
                pass


def test_pack_rejects_fields_that_do_not_fit():
    ok = dict(model_id="m", quality=3, height=10, width=10, shape=(1, 1), strings=((b"a",),))
    for field, value, msg in [
        ("quality", 256, "uint8"),
        ("height", 0, "height 0"),
        ("width", 70000, "width 70000"),
        ("shape", (1,) * 9, "9 dims"),
        ("strings", ((b"a",),) * 65, "65 string groups"),
        ("strings", (("a",),), "must be bytes"),
    ]:
        with pytest.raises(ContainerError, match=msg):
            pack(Container(**{**ok, field: value}))
