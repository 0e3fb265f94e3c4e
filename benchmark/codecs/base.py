"""The Codec interface every codec implements, and the codec registry."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, FrozenSet, Mapping, Optional

import numpy as np

from benchmark.errors import BenchmarkError
from benchmark.registry import Registry


class CodecError(BenchmarkError, RuntimeError):
    """A codec failed to encode or decode, or was configured wrongly; the message says which."""


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
    ``choices`` raise ``CodecError`` at construction. A codec must be picklable (it is sent to
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
    # Bytes per pixel that a worker process needs above its baseline to code one image at one
    # rate point and score it: the evaluate stage's memory estimate
    # (``benchmark.evaluation.image_memory_estimate``). The classical codecs' values are the
    # growth of a worker's peak RSS over encode + decode of a 4 MP photograph at their highest
    # default rate point, plus 20 for the original, the decoded copy and the MS-SSIM pyramid.
    # The default is what a small learned model needs (the hyperprior: 6.6 GB at 24 MP).
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
        """Decode a bitstream made by ``encode`` into a uint8 (H, W, 3) image."""

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
