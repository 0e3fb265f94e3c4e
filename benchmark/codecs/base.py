"""The Codec interface every codec implements, and the codec registry."""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, FrozenSet, Mapping, Optional

import numpy as np

from benchmark.config import DecodeConfig
from benchmark.errors import BenchmarkError
from benchmark.registry import Registry


class CodecError(BenchmarkError, RuntimeError):
    """A codec failed to encode or decode, or was configured wrongly; the message says which."""


class DecodeError(CodecError):
    """The one error out of every codec's ``decode``: the bytes are not a bitstream this codec
    can decode (corrupt, truncated, another format, or a header beyond ``DecodeConfig``).

    ``codec``: the codec's registered name (``jpeg``, ``learned``, ...); ``reason``: what is
    wrong, naming the field and value where there is one. The library's own exception, if any,
    is chained (``raise DecodeError(...) from e``). ``str(e)`` is ``"<codec>: <reason>"``.
    """

    def __init__(self, codec: str, reason: str) -> None:
        super().__init__(f"{codec}: {reason}")
        self.codec = codec
        self.reason = reason

    def __reduce__(self):  # picklable across worker processes despite the two-argument __init__
        return (type(self), (self.codec, self.reason))


class TrainingLeakError(CodecError):
    """An evaluation image is among the training images of the model that would code it."""


@dataclass(frozen=True)
class Encoded:
    """What ``Codec.encode_verbose`` returns.

    ``data``: the complete bitstream (every byte counts in bpp). ``reconstruction_sha256``: hex
    SHA-256 (``benchmark.data.images.pixel_sha256``) of the uint8 (H, W, 3) image the encoder
    side decoded from ``data``, kept outside the bitstream so the evaluation can check that its
    own decode gives the same pixels; None when the codec does not provide it.
    ``estimated_bits``: the model's own estimate of the bits, ``-sum(log2(likelihoods))`` of its
    forward pass (not a measurement; None when the codec has no model). ``encode_s``: seconds the
    encoder took to produce ``data`` alone (without the extra work of ``encode_verbose``), or
    None, in which case the caller times ``encode_verbose`` as a whole.
    """

    data: bytes
    reconstruction_sha256: Optional[str] = None
    estimated_bits: Optional[float] = None
    encode_s: Optional[float] = None


class Codec(abc.ABC):
    """A lossy image codec.

    ``encode`` turns a uint8 RGB image of shape (H, W, 3), values in [0, 255], into ``bytes``
    that hold everything the decoder needs (headers and container included), so that
    ``bpp = 8 * len(bytes) / (H * W)``. ``decode`` turns those bytes alone back into a uint8
    (H, W, 3) image; it never sees the original. Rate points are in the codec's own unit,
    named by ``rate_param`` (quality, target bpp, distance, lambda, model index, ...).

    Subclasses set ``rate_param``, ``defaults`` (their options and default values) and
    ``choices`` (allowed values of enumerated options); unknown options and values outside
    ``choices`` raise ``CodecError`` at construction. ``limits`` (``DecodeConfig``, params.yaml's
    ``decode``, set by the evaluate stage) bounds what ``decode`` accepts from a header
    (``check_decode_size``). A codec must be picklable (it is sent to
    worker processes) and should use one thread: the benchmark parallelizes over images, unless
    ``in_process`` is true (a class attribute, or a property of the instance, e.g. a model on a
    GPU): the evaluate stage then runs it in the main process, one image after another, with
    torch using all threads.

    A ``progressive`` codec (class attribute) codes every rate point with one model (SIC: the
    rate point is the level, how many latent slices are sent); the ``evaluate-progressive``
    stage runs it, with the path of its one checkpoint.

    Codecs that need files (a learned codec's checkpoints) take their locations as keyword
    arguments of their own constructor, passed by the stage from dvc.yaml; they never build
    paths themselves.
    """

    rate_param: ClassVar[str] = "quality"
    progressive: ClassVar[bool] = False  # one model serves every rate point (SIC's levels); stage evaluate-progressive
    defaults: ClassVar[Dict[str, Any]] = {}
    choices: ClassVar[Dict[str, tuple]] = {}  # option -> allowed values, checked at construction
    in_process: ClassVar[bool] = False
    limits: DecodeConfig = DecodeConfig()  # what decode accepts from a header; the stage sets params.yaml's ``decode``
    # Bytes per pixel that a worker process needs above its baseline to code one image at one
    # rate point and score it: the evaluate stage's memory estimate
    # (``benchmark.evaluation.image_memory_estimate``). The classical codecs' values are the
    # growth of a worker's peak RSS over encode + decode of a 4 MP photograph at their highest
    # default rate point, plus 20 for the original and the decoded copy; the metrics' own need is
    # ``benchmark.evaluation.DISTORTION_BYTES_PER_PIXEL``, added to it. The default is what a small
    # learned model needs (the hyperprior: 6.6 GB at 24 MP, metrics included: an overestimate).
    memory_per_pixel: ClassVar[float] = 300.0

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
        """Decode a bitstream made by ``encode`` into a uint8 (H, W, 3) image. Any bytes that do
        not decode (corrupt, truncated, a header beyond ``limits``) raise ``DecodeError`` naming
        the codec, never another exception type: the library's exception is chained."""

    @property
    def name(self) -> str:
        """The name the codec's class is registered under (``jpeg``, ``learned``, ...), or the
        class name if it is not registered; error messages start with it."""
        return next((n for n in CODECS.names() if CODECS.get(n) is type(self)), type(self).__name__)

    def check_decode_size(self, height: int, width: int, bytes_per_pixel: float, what: str = "image size") -> None:
        """Refuse, before anything is allocated, a header that describes more than ``limits``
        allows: ``height`` x ``width`` pixels (as the decoder will allocate them, padding
        included) above ``limits.max_pixels``, a side below 1, or an estimated
        ``height * width * bytes_per_pixel`` bytes of decoding memory above
        ``limits.max_memory_gb`` (default: physical memory, ``physical_memory_bytes``).
        ``what`` names the header field in the message. Raises ``DecodeError``."""
        if height < 1 or width < 1:
            raise DecodeError(self.name, f"{what} {height}x{width} has a side below 1")
        pixels = height * width
        if pixels > self.limits.max_pixels:
            raise DecodeError(
                self.name,
                f"{what} {height}x{width} is {pixels} pixels, above the limit decode.max_pixels = {self.limits.max_pixels}",
            )
        need = pixels * bytes_per_pixel
        limit = physical_memory_bytes() if self.limits.max_memory_gb is None else self.limits.max_memory_gb * 2**30
        if need > limit:
            source = "physical memory" if self.limits.max_memory_gb is None else "decode.max_memory_gb"
            raise DecodeError(
                self.name, f"{what} {height}x{width} needs about {need / 2**30:.1f} GiB to decode, above the limit "
                f"({source}) of {limit / 2**30:.1f} GiB",
            )

    def encode_verbose(self, image: np.ndarray, rate_point: float) -> Encoded:
        """``encode`` plus what the codec can tell about it (see ``Encoded``). The default gives
        the bytes only; codecs with a model override it."""
        return Encoded(self.encode(image, rate_point))

    def training_image_hashes(self, rate_point: float) -> FrozenSet[str]:
        """``pixel_sha256`` of the images the model used at ``rate_point`` was trained on (empty
        for codecs without a trained model). The evaluate stage refuses to code these."""
        return frozenset()

    def model_source(self, rate_point: float) -> str:
        """Where the model used at ``rate_point`` comes from (a checkpoint path), for messages;
        empty for codecs without a model file."""
        return ""

    @classmethod
    def library_version(cls) -> str:
        """The codec library and version that does the work, e.g. ``libjpeg-turbo 3.1.0``
        (codecs whose libraries depend on the model override it as an instance method)."""
        return "unknown"

    @property
    def device(self) -> str:
        """The device that codes: ``cpu``, or ``cuda[:N]`` for codecs that run on a GPU."""
        return "cpu"


CODECS: Registry[type] = Registry("codec")


def physical_memory_bytes() -> int:
    """The machine's physical memory in bytes (``os.sysconf``); 2**62 where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def build_codec(codec: str, options: Mapping[str, Any], **files: Any) -> Codec:
    """Instantiate the codec class registered as ``codec`` with ``options`` (and, for codecs that
    need files, their locations as keyword arguments, e.g. ``checkpoints=`` for ``learned``).

    The codec's module must have been imported (``benchmark.codecs.classical``,
    ``benchmark.codecs.learned``, or a plugin's). Raises ``UnknownNameError`` for an unknown
    codec name and ``CodecError`` for bad options.
    """
    cls = CODECS.get(codec)
    clash = set(files) & set(options)
    if clash:
        raise CodecError(f"{codec}: {sorted(clash)} are not options; they come from the evaluate stage's arguments")
    return cls(**files, **dict(options))
