"""Seeded corruption of a bitstream, for codec robustness tests."""

import random
import time

import numpy as np

from benchmark.codecs.base import CodecError


def assert_corruptions_decode_or_fail_cleanly(codec, data: bytes, trials: int, seed: int, max_seconds: float) -> None:
    """``trials`` corruptions of ``data`` (1-3 bytes replaced, positions and values from
    ``random.Random(seed)``): each decodes to a uint8 (h, w, 3) image (h, w: what the possibly
    corrupted header says) or raises ``CodecError``, within ``max_seconds``; never another
    exception."""
    rng = random.Random(seed)
    for _ in range(trials):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        t0 = time.perf_counter()
        try:
            rec = codec.decode(bytes(buf))
            assert rec.dtype == np.uint8 and rec.ndim == 3 and rec.shape[2] == 3
        except CodecError:
            pass
        assert time.perf_counter() - t0 < max_seconds
