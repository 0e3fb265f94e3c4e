"""The Codec interface every codec implements, and the codec registry."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Dict, Mapping

import numpy as np

from benchmark.registry import Registry


class CodecError(RuntimeError):
    """A codec failed to encode or decode, or was configured wrongly; the message says which."""


class Codec(abc.ABC):
    """A lossy image codec.

    ``encode`` turns a uint8 RGB image of shape (H, W, 3), values in [0, 255], into ``bytes``
    that hold everything the decoder needs (headers and container included), so that
    ``bpp = 8 * len(bytes) / (H * W)``. ``decode`` turns those bytes alone back into a uint8
    (H, W, 3) image; it never sees the original. Rate points are in the codec's own unit,
    named by ``rate_param`` (quality, target bpp, distance, lambda, model index, ...).

    Subclasses set ``rate_param``, ``defaults`` (their options and default values) and
    ``choices`` (allowed values of enumerated options); unknown options and values outside
    ``choices`` raise ``CodecError`` at construction. A codec must be picklable (it is sent to
    worker processes) and should use one thread: the benchmark parallelizes over images.
    """

    rate_param: ClassVar[str] = "quality"
    defaults: ClassVar[Dict[str, Any]] = {}
    choices: ClassVar[Dict[str, tuple]] = {}  # option -> allowed values, checked at construction

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise CodecError(
                f"{type(self).__name__}: unknown options {sorted(unknown)}; known: {sorted(self.defaults)}"
            )
        self.options: Dict[str, Any] = {**self.defaults, **options}
        for key, allowed in self.choices.items():
            if self.options[key] not in allowed:
                raise CodecError(
                    f"{type(self).__name__}: option {key}={self.options[key]!r} is not one of {list(allowed)}"
                )

    @abc.abstractmethod
    def encode(self, image: np.ndarray, rate_point: float) -> bytes:
        """Encode a uint8 (H, W, 3) image at ``rate_point`` into a self-contained bitstream."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decode a bitstream made by ``encode`` into a uint8 (H, W, 3) image."""

    @classmethod
    def library_version(cls) -> str:
        """The codec library and version that does the work, e.g. ``libjpeg-turbo 3.1.0``."""
        return "unknown"


CODECS: Registry[type] = Registry("codec")


def build_codec(codec: str, options: Mapping[str, Any]) -> Codec:
    """Instantiate the codec class registered as ``codec`` with ``options``."""
    return CODECS.get(codec)(**dict(options))
