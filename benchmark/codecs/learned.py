"""Learned codecs: a trained CompressAI-style model per rate point, entropy-coded for real.

Registered as ``learned``. The rate point is an integer quality index 1..8 (the CompressAI zoo
convention). The checkpoints (``benchmark.models.checkpoint`` format) are where the stage says:
it passes a path template from dvc.yaml, ``checkpoints``, with the fields ``{model}`` and
``{rate_point}`` (``models/quick/{model}/q{rate_point}.pt``), filled with the codec's model and
the quality.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, Optional, Tuple

import numpy as np

from benchmark.codecs.autoregressive import compress as ar_compress
from benchmark.codecs.autoregressive import decompress as ar_decompress
from benchmark.codecs.autoregressive import encoder_estimate, is_autoregressive
from benchmark.codecs.base import CODECS, Codec, CodecError, DecodeError, Encoded
from benchmark.codecs.container import (
    Container,
    ContainerError,
    as_container_strings,
    pack,
    unpack,
)

QUALITIES = range(1, 9)
PAD_MULTIPLE = 64  # 2**6: the models downsample 6 times (g_a 4x, h_a 2x), as eval_model pads
# torch threads during compress/decompress. The entropy parameters (h_s, context model) come out
# of float convolutions whose results depend on the thread count; for autoregressive models a
# bitstream encoded with 2 threads and decoded with 1 decodes to other pixels. One fixed count
# on both sides makes bitstreams reproducible; 1 is what CompressAI's eval_model uses.
CODING_THREADS = 1
# Decoding memory per padded pixel, estimated from the model before decoding (``decode_bytes_per_pixel``):
# DECODE_BYTES_BASE + DECODE_BYTES_PER_CHANNEL x the widest convolution's output channels. Measured
# here (peak RSS growth of decode, 256 -> 768 px and 512 -> 1024 px squares, one thread): 170-320
# B/px for every architecture at the quick and cpu widths (widest layer 96-384 channels), 670-850
# for the hyperprior at the paper's N=192, M=320, 1100 for SIC at the quick width (288); the
# formula gives 450-1600: above every measurement, by at most 3x.
DECODE_BYTES_BASE = 64
DECODE_BYTES_PER_CHANNEL = 4
RANS_PRECISION = 16  # CompressAI's rANS probability precision (bits)


@contextlib.contextmanager
def _coding_threads() -> Iterator[None]:
    """Run the block with torch using CODING_THREADS threads, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(CODING_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _import_torch():
    from benchmark._torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # before compressai imports torchvision
    import torch
    import torch.nn.functional as F
    from compressai.ops import compute_padding

    return torch, F, compute_padding


def _check_latent_shape(c: Container) -> None:
    """The latent shape must be the padded image size divided by a power of two (16 for
    factorized priors, 64 for hyperpriors); anything else is corruption, refused before
    ``decompress`` could allocate a tensor of that size."""
    hp = -(-c.height // PAD_MULTIPLE) * PAD_MULTIPLE
    wp = -(-c.width // PAD_MULTIPLE) * PAD_MULTIPLE
    if not any(c.shape == (hp // f, wp // f) for f in (2**k for k in range(7))):
        raise DecodeError("learned", f"corrupt bitstream: latent shape {c.shape} does not fit a {c.height}x{c.width} image")


def bottleneck_min_bits(entropy_bottleneck, codec: str = "learned") -> float:
    """The fewest bits CompressAI's rANS coder can spend on one symbol of ``entropy_bottleneck``
    (its stored quantized CDFs: ``-log2`` of the largest probability of any channel). Raises
    ``CodecError`` (naming ``codec``) if the tables were never computed."""
    cdf = entropy_bottleneck._quantized_cdf
    lengths = entropy_bottleneck._cdf_length.reshape(-1).tolist()
    if cdf.numel() == 0:
        raise CodecError(f"{codec}: the checkpoint's EntropyBottleneck tables are empty (model.update(force=True) was never run)")
    best = 0
    for row, n in zip(cdf.tolist(), lengths):
        best = max(best, max(row[i + 1] - row[i] for i in range(n - 1)))
    return -math.log2(best / (1 << RANS_PRECISION))


def decode_bytes_per_pixel(model) -> int:
    """Estimated decoding memory of ``model`` per padded image pixel, in bytes: ``DECODE_BYTES_BASE
    + DECODE_BYTES_PER_CHANNEL`` x the most output channels of any of its convolutions (the
    widest activation, one float32 per channel per pixel; see the measurements at the constants)."""
    import torch

    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    widest = max((m.out_channels for m in model.modules() if isinstance(m, convs)), default=0)
    return DECODE_BYTES_BASE + DECODE_BYTES_PER_CHANNEL * widest


def _compress_observed(model, x) -> Tuple[Dict[str, Any], float, Any]:
    """``model.compress(x)`` (the model's own, so its own bytes), and from what its encoder
    computed on the way (``y = g_a(x)``, ``z = h_a(.)``, the hyper-synthesis ``h_s(z_hat)``,
    observed with forward hooks) the estimated bits and the reconstruction a correct decoder
    produces: the likelihoods of the model's forward pass in eval mode, under the scales (and
    means) the decoder will compute, and ``g_s(y_hat)`` clamped to [0, 1], where ``y_hat`` is the
    quantized latent exactly as the decoder dequantizes it. For CompressAI's FactorizedPrior,
    ScaleHyperprior and MeanScaleHyperprior; a model with ``compress_verbose`` (QRes-VAE) returns
    ``strings``, ``shape``, ``likelihoods`` and ``x_hat`` from one pass itself; any other model
    gets one forward pass in eval mode, whose ``x_hat`` its decoder must reproduce (``dvae``)."""
    import torch
    from compressai.models import FactorizedPrior, MeanScaleHyperprior, ScaleHyperprior

    if hasattr(model, "compress_verbose"):  # the model reports both from its own encoder pass (QRes-VAE)
        out = model.compress_verbose(x)
        bits = sum(float(-torch.log2(v.double()).sum()) for v in out["likelihoods"].values())
        return {"strings": out["strings"], "shape": out["shape"]}, bits, out["x_hat"].clamp(0, 1)
    if not isinstance(model, (FactorizedPrior, ScaleHyperprior)):
        fwd = model(x)
        bits = sum(float(-torch.log2(v.double()).sum()) for v in fwd["likelihoods"].values())
        return model.compress(x), bits, fwd["x_hat"].clamp(0, 1)
    seen: Dict[str, Any] = {}
    names = [n for n in ("g_a", "h_a", "h_s") if hasattr(model, n)]
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o)) for n in names]
    try:
        out = model.compress(x)
    finally:
        for h in hooks:
            h.remove()
    if isinstance(model, FactorizedPrior):
        y_hat, y_lik = model.entropy_bottleneck(seen["g_a"])
        likelihoods = [y_lik]
    else:
        params = seen["h_s"].chunk(2, 1) if isinstance(model, MeanScaleHyperprior) else (seen["h_s"], None)
        y_hat, y_lik = model.gaussian_conditional(seen["g_a"], *params)
        likelihoods = [y_lik, model.entropy_bottleneck(seen["h_a"])[1]]
    bits = sum(float(-torch.log2(v.double()).sum()) for v in likelihoods)
    return out, bits, model.g_s(y_hat).clamp(0, 1)


@CODECS.register("learned")
class LearnedCodec(Codec):
    """A learned image codec: analysis transform, quantization, entropy coding (CompressAI's rANS
    coder and its models' ``compress``/``decompress``), one trained checkpoint per rate point.

    ``checkpoints``: the path template of the checkpoints (fields ``{model}``, ``{rate_point}``),
    given by the evaluate stage from dvc.yaml.

    Options: ``model`` (required: the model's name under ``models`` in params.yaml),
    ``device`` ("cpu" default, or "cuda": a ``CodecError`` if CUDA is not available),
    ``decode_check`` (default True: ``encode_verbose`` reports the SHA-256 of the reconstruction
    the encoder expects a correct decoder to produce, without decoding the bytes a second time),
    ``order`` (the context models' symbol order, ``benchmark.codecs.autoregressive``:
    ``wavefront``, the default, fast; or ``raster``, CompressAI's own bitstreams; recorded in the
    container, so a decoder reads either whatever its own option says).

    Bits: ALL bytes of the container (``benchmark.codecs.container``: magic, version, model id,
    quality, image size, latent shape, string lengths and the strings) count, so
    ``bpp = 8 * len(bytes) / (H * W)``. ``strings_bpp(data)`` gives the strings alone, which is
    what CompressAI's ``eval_model`` reports.

    Encode: uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1] (``v / 255``, as torchvision's
    ``ToTensor``), padded to multiples of 64 as the architecture's ``ModelSpec.padding`` says:
    ``zeros-centred`` (CompressAI's models), zeros around the image, centred, as ``eval_model``
    does (``compressai.ops.compute_padding`` and ``F.pad(mode="constant", value=0)``), or
    ``replicate-bottom-right`` (QRes-VAE), the last row and column repeated to the bottom and right,
    as the QRes-VAE authors' ``compress_file`` does (``F.pad(mode="replicate")``), or
    ``zeros-bottom-right`` (SIC), zeros to the bottom and right, the image top-left, as the SIC
    authors' ``main.py`` does; then
    ``model.compress`` under ``torch.no_grad()`` (a context model: ``autoregressive.compress`` in
    the chosen order).

    Threads: ``compress`` and ``decompress`` always run with ``CODING_THREADS`` (1) torch
    threads, whatever the caller set, because the entropy parameters of some models (mbt2018:
    measured) differ with the thread count and a bitstream must decode to the same pixels
    wherever it is decoded on the same kind of machine; 1 thread is also eval_model's setting.
    The estimate and expected reconstruction of ``encode_verbose`` too.

    Decode uses only the bytes and the checkpoint the container names (by quality; its model id
    must match the checkpoint's): ``model.decompress(strings, shape)`` (a context model:
    ``autoregressive.decompress`` in the container's order), the padding cropped (the same
    ``padding`` as the encoder's: the architecture is the checkpoint's), clamped to [0, 1],
    ``round(255 x)`` to uint8 (H, W, 3). It never sees the original.

    Loaded models are cached per instance and dropped when pickled (a pickled codec reloads its
    checkpoints lazily). The entropy-coder tables come from the checkpoint; they are never
    recomputed here.
    """

    rate_param = "quality"
    defaults: Dict[str, Any] = {"model": None, "device": "cpu", "decode_check": True, "order": "wavefront"}
    choices = {"device": ("cpu", "cuda"), "decode_check": (False, True), "order": ("wavefront", "raster")}
    @property
    def in_process(self) -> bool:
        """On a GPU, coded in the evaluate stage's main process (one model on the device); on
        the CPU in worker processes, one torch thread each, images in parallel."""
        return self.options["device"] != "cpu"

    def __init__(self, *, checkpoints: str = "models/{model}/q{rate_point}.pt", **options: Any) -> None:
        super().__init__(**options)
        if "{rate_point}" not in checkpoints:
            raise CodecError(f"learned: the checkpoints template {checkpoints!r} has no {{rate_point}} field")
        self.checkpoints = checkpoints
        if not isinstance(self.options["model"], str) or not self.options["model"]:
            raise CodecError(f"learned: option model (the model name under the models directory) is required, got {self.options['model']!r}")
        if self.options["device"] == "cuda":
            torch, _, _ = _import_torch()
            if not torch.cuda.is_available():
                raise CodecError("learned: device 'cuda' was requested but CUDA is not available to torch")
        self._models: Dict[int, Tuple[Any, Dict[str, Any]]] = {}

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_models"] = {}  # never pickle loaded models; reload lazily
        return state

    # ---- checkpoints ----------------------------------------------------------------------

    @staticmethod
    def _quality(rate_point: float) -> int:
        q = int(rate_point) if float(rate_point).is_integer() else None
        if q not in QUALITIES:
            raise CodecError(f"learned: quality must be an integer in [{QUALITIES[0]}, {QUALITIES[-1]}], got {rate_point}")
        return q

    def checkpoint_path(self, rate_point: float) -> Path:
        """The checkpoint of quality ``rate_point``: the ``checkpoints`` template filled with the
        model and the quality. Raises ``CodecError`` for a bad quality."""
        return Path(self.checkpoints.format(model=self.options["model"], rate_point=self._quality(rate_point)))

    def model_source(self, rate_point: float) -> str:
        return str(self.checkpoint_path(rate_point))

    def load(self, rate_point: float) -> Tuple[Any, Dict[str, Any]]:
        """Load the checkpoint of quality ``rate_point`` (once; cached per instance) and return
        (model in eval mode on the device, checkpoint metadata without the weights).

        Raises ``CodecError`` naming the file (made by a model stage of dvc.yaml) if missing,
        and naming the file and the reason if unreadable or unfinished.
        """
        q = self._quality(rate_point)
        if q not in self._models:
            from benchmark.models.checkpoint import CheckpointError, load_model

            _import_torch()
            path = self.checkpoint_path(q)
            if not path.is_file():
                raise CodecError(
                    f"{path}: checkpoint of model {self.options['model']!r} at quality {q} not found; it is an output "
                    f"of a model stage of dvc.yaml (`dvc repro`, or `dvc stage list` to find the stage)"
                )
            try:
                self._models[q] = load_model(path, device=self.options["device"])
            except CheckpointError as e:
                raise CodecError(str(e)) from e
        return self._models[q]

    def training_image_hashes(self, rate_point: float) -> FrozenSet[str]:
        """``pixel_sha256`` of the checkpoint's training images (meta ``train_images_sha256``;
        empty if the checkpoint does not list them, e.g. zoo weights)."""
        _, meta = self.load(rate_point)
        return frozenset(meta.get("train_images_sha256") or ())

    # ---- coding ---------------------------------------------------------------------------

    def _to_tensor(self, image: np.ndarray):
        torch, _, _ = _import_torch()
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise CodecError(f"expected a uint8 (H, W, 3) array, got {getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
        x = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1).to(torch.float32).div(255)
        return x[None].to(self.options["device"])

    @staticmethod
    def _padding(meta: Dict[str, Any]) -> str:
        """The padding of the checkpoint's architecture (``ModelSpec.padding``)."""
        from benchmark.models.specs import ARCHITECTURES

        return ARCHITECTURES.get(meta["arch"]).padding

    @staticmethod
    def _pads(height: int, width: int, padding: str) -> Tuple[Tuple[int, int, int, int], Tuple[int, int, int, int]]:
        """(pad, unpad) for ``F.pad`` (left, right, top, bottom) from ``height`` x ``width`` to
        multiples of 64 and back: centred for ``zeros-centred`` (``compute_padding``), all at the
        right and bottom for ``replicate-bottom-right`` and ``zeros-bottom-right``."""
        _, _, compute_padding = _import_torch()
        if padding == "zeros-centred":
            return compute_padding(height, width, min_div=PAD_MULTIPLE)
        right, bottom = -width % PAD_MULTIPLE, -height % PAD_MULTIPLE
        return (0, right, 0, bottom), (0, -right, 0, -bottom)

    def _padded(self, image: np.ndarray, padding: str = "zeros-centred"):
        """The (1, 3, H', W') float32 input in [0, 1], H' and W' multiples of 64, padded as
        ``padding`` says (``ModelSpec.padding``)."""
        _, F, _ = _import_torch()
        x = self._to_tensor(image)
        pad, _ = self._pads(x.shape[2], x.shape[3], padding)
        if padding in ("zeros-centred", "zeros-bottom-right"):
            return F.pad(x, pad, mode="constant", value=0)
        return F.pad(x, pad, mode="replicate") if any(pad) else x

    def _compress(self, image: np.ndarray, rate_point: float, verbose: bool) -> Tuple[bytes, Optional[float], Any]:
        """(container bytes, estimated bits, expected reconstruction (1, 3, H', W') in [0, 1]);
        the last two only with ``verbose`` (else None). The encoder knows both from its own pass:
        a context model's from ``autoregressive.encoder_estimate``, CompressAI's hyperprior
        models' from ``_compress_observed``. Everything runs with ``CODING_THREADS``."""
        torch, _, _ = _import_torch()
        from benchmark.models.checkpoint import model_id

        model, meta = self.load(rate_point)
        x = self._padded(image, self._padding(meta))
        ar = is_autoregressive(model)
        order = self.options["order"] if ar else "raster"
        bits = expected = None
        with torch.no_grad(), _coding_threads():
            if ar:
                out = ar_compress(model, x, order)
                if verbose:
                    bits, expected = encoder_estimate(model, out["_encoder_side"])
            elif verbose:
                out, bits, expected = _compress_observed(model, x)
            else:
                out = model.compress(x)
        h, w, _ = image.shape
        c = Container(
            model_id=model_id(meta), quality=self._quality(rate_point), height=h, width=w,
            shape=tuple(int(d) for d in out["shape"]), strings=as_container_strings(out["strings"]), order=order,
        )
        try:
            return pack(c), bits, expected
        except ContainerError as e:
            raise CodecError(f"learned: cannot pack the bitstream: {e}") from e

    def encode(self, image: np.ndarray, rate_point: float) -> bytes:
        """Compress a uint8 (H, W, 3) image with the checkpoint of quality ``rate_point`` into a
        container (``bytes``); context models in the symbol order of option ``order``. Raises
        ``CodecError`` for a bad image, quality or checkpoint."""
        return self._compress(image, rate_point, verbose=False)[0]

    def encode_verbose(self, image: np.ndarray, rate_point: float) -> Encoded:
        """``encode``, its time (``encode_s``, seconds, with the estimate), the model's estimated
        bits (``-sum(log2 likelihoods)`` of the padded input ``compress`` codes: bits, float;
        eval_model's ``--entropy-estimation`` runs on the unpadded image instead) and, with
        ``decode_check``, the SHA-256 of the reconstruction the encoder expects a correct decoder
        to produce (see ``_compress``): no second entropy decode."""
        from benchmark.data.images import pixel_sha256

        t0 = time.perf_counter()
        data, bits, expected = self._compress(image, rate_point, verbose=True)
        encode_s = time.perf_counter() - t0
        padding = self._padding(self.load(rate_point)[1])
        rec_sha = None
        if self.options["decode_check"]:
            rec_sha = pixel_sha256(self._to_image(expected, image.shape[0], image.shape[1], padding))
        return Encoded(data, reconstruction_sha256=rec_sha, estimated_bits=bits, encode_s=encode_s)

    def _to_image(self, x_hat, height: int, width: int, padding: str = "zeros-centred") -> np.ndarray:
        """The padded (1, 3, H', W') reconstruction in [0, 1] cropped to ``height`` x ``width``
        (where ``padding`` put the image) and rounded to a uint8 (H, W, 3) image, as ``decode``
        does. Raises ``CodecError`` for a shape that does not crop to the image."""
        torch, F, _ = _import_torch()
        _, unpad = self._pads(height, width, padding)
        x_hat = F.pad(x_hat, unpad)
        if tuple(x_hat.shape) != (1, 3, height, width):
            raise CodecError(f"learned: decoded {tuple(x_hat.shape)}, expected (1, 3, {height}, {width})")
        rec = x_hat[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(rec)

    def decode(self, data: bytes) -> np.ndarray:
        """Decode a container into a uint8 (H, W, 3) image. Raises ``DecodeError`` for a corrupt
        container (the reason from ``ContainerError``), a quality without a checkpoint, a model id
        other than the checkpoint's (naming both), a header beyond what it can hold (see
        :meth:`check_header`), or a failing ``decompress``."""
        torch, F, compute_padding = _import_torch()
        from benchmark.models.checkpoint import model_id

        try:
            c = unpack(data)
        except ContainerError as e:
            raise DecodeError(self.name, f"corrupt bitstream: {e}") from e
        if c.sampling is not None:
            raise DecodeError(self.name, "corrupt bitstream: a progressive (version 3) container, which the sic codec writes")
        _check_latent_shape(c)
        try:
            model, meta = self.load(c.quality)
        except CodecError as e:
            raise DecodeError(self.name, f"the header's quality {c.quality} has no usable checkpoint: {e}") from e
        expected = model_id(meta)
        if c.model_id != expected:
            raise DecodeError(
                self.name, f"bitstream was made by model {c.model_id!r}, but {self.checkpoint_path(c.quality)} is {expected!r}"
            )
        if c.order != "raster" and not is_autoregressive(model):
            raise DecodeError(self.name, f"corrupt bitstream: symbol order {c.order!r} for {expected!r}, which has one order")
        self.check_header(c, model)
        strings = [list(g) for g in c.strings]
        try:
            with torch.no_grad(), _coding_threads():
                if is_autoregressive(model):
                    x_hat = ar_decompress(model, strings, torch.Size(c.shape), c.order)["x_hat"]
                else:
                    x_hat = model.decompress(strings, torch.Size(c.shape))["x_hat"]
            return self._to_image(x_hat, c.height, c.width, self._padding(meta))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - the models and coders raise many types on corrupt strings,
            # and a Rust coder's panic (pyo3's PanicException) derives from BaseException only
            raise DecodeError(self.name, f"decompress failed: {type(e).__name__}: {e}") from e

    def check_header(self, c: Container, model) -> None:
        """Refuse a header before anything of its size is allocated: the padded image against
        ``limits`` (pixels, and the memory ``decode_bytes_per_pixel(model)`` estimates), and, for
        CompressAI's models, the last string group (coded by the entropy bottleneck over the
        container's ``shape``) against the fewest bytes its symbols can take. Raises ``DecodeError``
        naming the field and value."""
        hp, wp = -(-c.height // PAD_MULTIPLE) * PAD_MULTIPLE, -(-c.width // PAD_MULTIPLE) * PAD_MULTIPLE
        self.check_decode_size(hp, wp, decode_bytes_per_pixel(model), what=f"image size {c.height}x{c.width}, padded")
        eb = getattr(model, "entropy_bottleneck", None)
        if eb is None or not type(model).__module__.startswith("compressai.") or len(c.shape) != 2 or not c.strings:
            return
        n = eb.channels * c.shape[0] * c.shape[1]
        bits = n * bottleneck_min_bits(eb, self.name)
        string = c.strings[-1][0] if c.strings[-1] else b""
        if bits > 8 * len(string) + 64:
            raise DecodeError(
                self.name, f"corrupt bitstream: latent shape {c.shape} needs at least {bits / 8:.0f} bytes for its {n} "
                f"entropy-bottleneck symbols, the string has {len(string)}",
            )

    @staticmethod
    def strings_bpp(data: bytes) -> float:
        """bpp of the entropy-coded strings alone (container header excluded): ``8 * sum of
        string lengths / (H * W)``, CompressAI ``eval_model``'s bpp. Raises ``CodecError`` for
        a corrupt container."""
        try:
            return unpack(data).strings_bpp()
        except ContainerError as e:
            raise DecodeError("learned", f"corrupt bitstream: {e}") from e

    @property
    def device(self) -> str:
        return self.options["device"]

    def library_version(self) -> str:
        """The packages that code the bytes of the models loaded so far: CompressAI (layers and
        its rANS coder), plus each architecture's own entropy coder (``ModelSpec.coders``, e.g.
        constriction for dvae), then torch; then, for checkpoints made from published weight
        files (``weights_sha256`` in the checkpoint: CompressAI's zoo, QRes-VAE's weights), the
        file and its SHA-256 per quality, with ``(hash not published: computed here)`` where the
        file could not be checked against a published hash:
        ``compressai 1.2.6, torch 2.5.1; weights q2 qres34m-lmb32.pt sha256 cfd4...``."""
        from importlib import metadata

        from benchmark.models.specs import ARCHITECTURES

        torch, _, _ = _import_torch()
        packages = {"compressai": None}
        for _, meta in self._models.values():
            packages.update(dict.fromkeys(ARCHITECTURES.get(meta["arch"]).coders))
        versions = ", ".join(f"{p} {metadata.version(p)}" for p in packages)
        weights = []
        for q, (_, meta) in sorted(self._models.items()):
            if meta.get("weights_sha256"):
                name = meta.get("weights_file") or str(meta.get("source", "")).rsplit("/", 1)[-1]
                note = " (hash not published: computed here)" if meta.get("weights_verified") is False else ""
                weights.append(f"q{q} {name} sha256 {meta['weights_sha256']}{note}")
        tail = f"; weights {', '.join(weights)}" if weights else ""
        return f"{versions}, torch {torch.__version__}{tail}"
