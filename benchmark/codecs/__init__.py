"""Codecs: one registered class each, uint8 (H, W, 3) image -> bytes -> uint8 (H, W, 3) image.

Importing this package registers the built-in codecs in ``CODECS``.
"""

from benchmark.codecs import (
    classical,  # noqa: F401  (registers the classical codecs)
    learned,  # noqa: F401  (registers the learned codec)
)
from benchmark.codecs.base import (
    CODECS,
    Codec,
    CodecError,
    Encoded,
    TrainingLeakError,
    build_codec,
)

__all__ = ["CODECS", "Codec", "CodecError", "Encoded", "TrainingLeakError", "build_codec"]
