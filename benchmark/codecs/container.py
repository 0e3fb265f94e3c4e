"""The bitstream container of the learned codecs: a small versioned binary header + the strings.

Every byte of a container counts in the codec's bpp. Three versions: version 1 (below) for every
model whose strings have one symbol order (and the context models' CompressAI raster order);
version 2 is version 1 with one more byte after the version, the **symbol order** of the
context models' latent (0: raster, CompressAI's; 1: wavefront, ``benchmark.codecs.autoregressive``),
so that a decoder never guesses the order; version 3 is the **progressive** container
(``benchmark.codecs.sic``: one model, the rate point is the level, the untransmitted latent
channels are sampled by the decoder): version 1 with, after the version byte, one **sampling**
byte (0 ``none``: nothing is sampled, the top level; 1 ``seeded``: the decoder's draw is seeded
by the varint **seed** that follows; 2 ``official``: the authors' unseeded draw, no seed) and
the symbol order ``slice-wavefront`` implied. Versions 1 and 2 are read as before. Layout,
version 1 (integers are unsigned;
"varint" is unsigned LEB128: 7 bits per byte, least significant group first, high bit set on
every byte but the last, at most 9 bytes)::

    offset  size     field
    0       4        magic b"CBLC"
    4       1        format version (1)
    5       varint   n_id: length of the model id in bytes
    .       n_id     model id, UTF-8 (``benchmark.models.checkpoint.model_id``)
    .       1        quality: the rate point (checkpoint index), uint8
    .       2        height of the original image in pixels, uint16 big-endian (1..65535)
    .       2        width of the original image in pixels, uint16 big-endian (1..65535)
    .       1        n_dims: number of entries of the latent ``shape`` (0..8)
    .       varint   each of the n_dims entries of ``shape`` (what ``model.decompress`` needs)
    .       varint   n_groups: number of string groups (CompressAI's ``strings`` list, 0..64)
            per group:
    .         varint   n_strings: number of strings in the group (1 per image in a batch of 1)
    .         varint   length in bytes of each of those strings
    .       ...      the strings, concatenated in order (group by group); nothing after them

Version 3 inserts after the version byte::

    5       1        sampling: 0 none, 1 seeded, 2 official
    6       varint   seed (only when sampling is 1), below 2**63

A 24-bit-per-pixel image of 65535 x 65535 is the largest the header can describe. ``unpack``
validates everything before it allocates: a count or length larger than the bytes that remain
is rejected at once, so corrupt input never hangs or allocates more than its own size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from benchmark.errors import BenchmarkError

MAGIC = b"CBLC"
VERSION = 1
VERSION_WITH_ORDER = 2
VERSION_PROGRESSIVE = 3
VERSIONS = (VERSION, VERSION_WITH_ORDER, VERSION_PROGRESSIVE)
ORDERS = ("raster", "wavefront")  # the order byte of version 2 indexes this
PROGRESSIVE_ORDER = "slice-wavefront"  # the (implied) symbol order of version 3
SAMPLINGS = ("none", "seeded", "official")  # the sampling byte of version 3 indexes this
MAX_SEED = (1 << (7 * 9)) - 1  # the largest varint
MAX_VARINT_BYTES = 9  # 63 bits: far above any real length, small enough to reject garbage fast
MAX_DIMS = 8
MAX_GROUPS = 64


class ContainerError(BenchmarkError, ValueError):
    """Bytes that are not a valid container (or fields that cannot be packed); the message says
    what is wrong and at which byte offset."""


@dataclass(frozen=True)
class Container:
    """The decoded contents of a container.

    ``model_id``: the model's id (str). ``quality``: the rate point, int in [0, 255].
    ``height``/``width``: the original image size in pixels, ints in [1, 65535]. ``shape``: the
    latent shape ``model.decompress`` needs (tuple of non-negative ints, at most 8).
    ``strings``: CompressAI's ``strings``, a tuple of groups, each a tuple of ``bytes``.
    ``order``: the symbol order of the strings, ``raster`` (written as version 1) or
    ``wavefront`` (version 2), or ``slice-wavefront`` for a progressive container.
    ``sampling``: None for versions 1 and 2; for a progressive container (version 3) how the
    decoder fills the untransmitted channels, one of ``SAMPLINGS``, with ``seed`` (an int in
    [0, 2**63), only for ``seeded``; None otherwise). ``quality`` is then the level.
    """

    model_id: str
    quality: int
    height: int
    width: int
    shape: Tuple[int, ...]
    strings: Tuple[Tuple[bytes, ...], ...]
    order: str = "raster"
    sampling: Optional[str] = None
    seed: Optional[int] = None

    @property
    def payload_bytes(self) -> int:
        """Total length of the strings in bytes (the container without its header)."""
        return sum(len(s) for group in self.strings for s in group)

    def strings_bpp(self) -> float:
        """Bits per pixel of the strings alone, ``8 * payload_bytes / (height * width)``: what
        CompressAI's ``eval_model`` reports as bpp (it ignores headers)."""
        return 8.0 * self.payload_bytes / (self.height * self.width)


def _varint(n: int) -> bytes:
    if n < 0 or n >= 1 << (7 * MAX_VARINT_BYTES):
        raise ContainerError(f"cannot pack {n} as a varint (must be in [0, 2**{7 * MAX_VARINT_BYTES}))")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _progressive_fields(c: Container) -> List[int]:
    """The version byte, the sampling byte and the seed's varint bytes of a progressive container."""
    if c.order != PROGRESSIVE_ORDER:
        raise ContainerError(f"a progressive container has the symbol order {PROGRESSIVE_ORDER!r}, got {c.order!r}")
    if c.sampling not in SAMPLINGS:
        raise ContainerError(f"sampling {c.sampling!r} is not one of {SAMPLINGS}")
    fields = [VERSION_PROGRESSIVE, SAMPLINGS.index(c.sampling)]
    if c.sampling == "seeded":
        if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed <= MAX_SEED:
            raise ContainerError(f"seed {c.seed!r} is not an int in [0, 2**63)")
        fields += list(_varint(c.seed))
    elif c.seed is not None:
        raise ContainerError(f"sampling {c.sampling!r} stores no seed, got seed {c.seed!r}")
    return fields


def pack(c: Container) -> bytes:
    """Serialize ``c`` (layout in the module docstring). Raises ``ContainerError`` naming the
    field that does not fit (quality outside 0..255, a side outside 1..65535, too many dims or
    groups, a string that is not bytes)."""
    mid = c.model_id.encode("utf-8")
    if not 0 <= c.quality <= 255:
        raise ContainerError(f"quality {c.quality} does not fit in a uint8")
    for name, v in (("height", c.height), ("width", c.width)):
        if not 1 <= v <= 0xFFFF:
            raise ContainerError(f"{name} {v} is outside 1..65535")
    if len(c.shape) > MAX_DIMS:
        raise ContainerError(f"shape has {len(c.shape)} dims, at most {MAX_DIMS} fit")
    if len(c.strings) > MAX_GROUPS:
        raise ContainerError(f"{len(c.strings)} string groups, at most {MAX_GROUPS} fit")
    if c.sampling is None:
        if c.order not in ORDERS:
            raise ContainerError(f"symbol order {c.order!r} is not one of {ORDERS}")
        if c.seed is not None:
            raise ContainerError("a seed is only stored in a progressive container (sampling 'seeded')")
        version = [VERSION] if c.order == "raster" else [VERSION_WITH_ORDER, ORDERS.index(c.order)]
    else:
        version = _progressive_fields(c)
    parts: List[bytes] = [MAGIC, bytes(version), _varint(len(mid)), mid]
    parts.append(struct.pack(">BHHB", c.quality, c.height, c.width, len(c.shape)))
    parts += [_varint(int(d)) for d in c.shape]
    parts.append(_varint(len(c.strings)))
    for group in c.strings:
        parts.append(_varint(len(group)))
        for s in group:
            if not isinstance(s, (bytes, bytearray)):
                raise ContainerError(f"strings must be bytes, got {type(s).__name__}")
            parts.append(_varint(len(s)))
    parts += [bytes(s) for group in c.strings for s in group]
    return b"".join(parts)


class _Reader:
    """Reads fields from ``data`` with bounds checks; every failure is a ``ContainerError``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.remaining:
            raise ContainerError(f"truncated: {what} needs {n} bytes at offset {self.pos}, {self.remaining} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, what: str) -> int:
        start, n, shift = self.pos, 0, 0
        for _ in range(MAX_VARINT_BYTES):
            if self.pos >= len(self.data):
                raise ContainerError(f"truncated: {what} (varint) at offset {start} runs past the end")
            byte = self.data[self.pos]
            self.pos += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return n
        raise ContainerError(f"{what} at offset {start}: varint longer than {MAX_VARINT_BYTES} bytes")

    def count(self, what: str, limit: int, bytes_each: int = 1) -> int:
        """A varint count of items that each need at least ``bytes_each`` more bytes."""
        start = self.pos
        n = self.varint(what)
        if n > limit:
            raise ContainerError(f"{what} at offset {start} is {n}, more than the limit {limit}")
        if n * bytes_each > self.remaining:
            raise ContainerError(f"{what} at offset {start} is {n}, but only {self.remaining} bytes remain")
        return n


def unpack(data: bytes) -> Container:
    """Parse a container made by ``pack``. Raises ``ContainerError`` (with the byte offset) for
    wrong magic, an unknown version, truncation anywhere, a model id that is not UTF-8, a zero or
    absurd size or count, or bytes left over after the last string."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ContainerError(f"expected bytes, got {type(data).__name__}")
    r = _Reader(bytes(data))
    magic = r.take(len(MAGIC), "magic")
    if magic != MAGIC:
        raise ContainerError(f"wrong magic {magic!r}, expected {MAGIC!r} (not a learned-codec container)")
    version = r.take(1, "format version")[0]
    if version not in VERSIONS:
        raise ContainerError(f"unknown container format version {version} (this reader knows {', '.join(map(str, VERSIONS))})")
    order, sampling, seed = "raster", None, None
    if version == VERSION_WITH_ORDER:
        code = r.take(1, "symbol order")[0]
        if code >= len(ORDERS):
            raise ContainerError(f"unknown symbol order {code} at offset {r.pos - 1} (known: {', '.join(f'{i} {o}' for i, o in enumerate(ORDERS))})")
        order = ORDERS[code]
    elif version == VERSION_PROGRESSIVE:
        code = r.take(1, "sampling")[0]
        if code >= len(SAMPLINGS):
            raise ContainerError(f"unknown sampling {code} at offset {r.pos - 1} (known: {', '.join(f'{i} {o}' for i, o in enumerate(SAMPLINGS))})")
        order, sampling = PROGRESSIVE_ORDER, SAMPLINGS[code]
        if sampling == "seeded":
            seed = r.varint("seed")  # at most 9 bytes: below 2**63
    n_id = r.count("model id length", limit=r.remaining)
    raw_id = r.take(n_id, "model id")
    try:
        mid = raw_id.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ContainerError(f"model id is not UTF-8 ({e})") from None
    quality, height, width, n_dims = struct.unpack(">BHHB", r.take(6, "quality, height, width, dims"))
    if height == 0 or width == 0:
        raise ContainerError(f"image size {height}x{width} has a zero side")
    if n_dims > MAX_DIMS:
        raise ContainerError(f"latent shape has {n_dims} dims, more than the limit {MAX_DIMS}")
    shape = tuple(r.varint(f"shape[{i}]") for i in range(n_dims))
    n_groups = r.count("number of string groups", limit=MAX_GROUPS)
    lengths: List[List[int]] = []
    for g in range(n_groups):
        n_strings = r.count(f"number of strings in group {g}", limit=r.remaining)
        lengths.append([r.varint(f"length of string {i} of group {g}") for i in range(n_strings)])
    total = sum(sum(g) for g in lengths)
    if total > r.remaining:
        raise ContainerError(f"truncated: the strings need {total} bytes at offset {r.pos}, {r.remaining} left")
    if total < r.remaining:
        raise ContainerError(f"{r.remaining - total} bytes of trailing garbage after the strings")
    strings = tuple(tuple(r.take(n, f"string {i} of group {g}") for i, n in enumerate(group)) for g, group in enumerate(lengths))
    return Container(model_id=mid, quality=quality, height=height, width=width, shape=shape, strings=strings, order=order,
                     sampling=sampling, seed=seed)


def header_size(c: Container) -> int:
    """Bytes of ``pack(c)`` that are not string payload."""
    return len(pack(c)) - c.payload_bytes


def as_container_strings(strings: Sequence[Sequence[bytes]]) -> Tuple[Tuple[bytes, ...], ...]:
    """CompressAI's ``strings`` (list of lists of bytes) as the tuple of tuples a Container holds."""
    return tuple(tuple(bytes(s) for s in group) for group in strings)
