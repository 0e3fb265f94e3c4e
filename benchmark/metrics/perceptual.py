"""Full-reference perceptual metrics per image: LPIPS, DISTS and HaarPSI.

- **LPIPS** (Zhang, Isola, Efros, Shechtman, Wang, CVPR 2018, "The Unreasonable Effectiveness of
  Deep Features as a Perceptual Metric"), the ``lpips`` package: AlexNet backbone (torchvision's
  ImageNet weights, ``alexnet-owt-7be5be79.pth``) with the v0.1 linear layers. The package
  expects inputs in [-1, 1]; ours are [0, 255] and are mapped with ``x / 127.5 - 1``. Lower is
  better; 0 for identical images.
- **DISTS** (Ding, Ma, Wang, Simoncelli, TPAMI 2020, "Image Quality Assessment: Unifying Structure
  and Texture Similarity"), piq's implementation: VGG16 backbone (``vgg16-397923af.pth``) with
  the DISTS alpha/beta weights (``dists_weights.pt``); inputs in [0, 1] (``x / 255``); piq
  resizes so that the short side is 256 px. Reported as a distance, ``1 - similarity``: lower is
  better, 0 for identical images (with the published weights).
- **HaarPSI** (Reisenhofer, Bosse, Kutyniok, Wiegand, Signal Processing: Image Communication 2018,
  "A Haar wavelet-based perceptual similarity index for image quality assessment"), piq's
  implementation. Needs no learned weights, so an offline run always has a perception axis.
  In [0, 1], higher is better, 1 for identical images.

Registered as the ``perception`` metrics ``lpips``, ``dists`` and ``haarpsi``
(``benchmark.metrics.base``). Weights are never downloaded here: the loaders take file paths, which
``benchmark.metrics.weights.resolve_weights`` finds (explicit path, hub cache, mirror).
Inputs of the distance functions are batches (N, 3, H, W), uint8 or float in [0, 255], as
``torch.Tensor`` or ``numpy.ndarray``; a reference batch of size 1 is compared with every
reconstruction. Networks run on the model's device, ``batch_size`` pairs per call, without
gradients. Outputs are float64 numpy arrays of shape (N,).
"""

from __future__ import annotations

import os
import warnings
from typing import Optional, Union

import numpy as np
import torch

from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.errors import BenchmarkError
from benchmark.metrics.base import Metric, register

Array = Union[np.ndarray, torch.Tensor]
PathLike = Union[str, "os.PathLike[str]"]

DISTS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)
HAARPSI_MIN_SIDE = 16  # 2 ** (scales + 1) with piq's 3 scales
BATCH_PIXELS = 1 << 22  # at most this many pixels per image times images per call (HaarPSI), or one image


class WeightsLoadError(BenchmarkError, RuntimeError):
    """A weight file exists but does not load into the network; the message names the file."""


def _batch(x: Array, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.require(x, requirements=["C", "W"]))
    if t.ndim != 4 or t.shape[1] != 3:
        raise ValueError(f"{name}: expected a batch of shape (N, 3, H, W) in [0, 255], got {tuple(t.shape)}")
    return t


def _pairs(ref: Array, rec: Array):
    a, b = _batch(ref, "ref"), _batch(rec, "rec")
    if a.shape[0] == 1 and b.shape[0] > 1:
        a = a.expand(b.shape[0], -1, -1, -1)
    if a.shape != b.shape:
        raise ValueError(f"ref and rec shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return a, b


def _load_state(path: PathLike, what: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise WeightsLoadError(f"{path}: cannot be read as {what} weights ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise WeightsLoadError(f"{path}: expected a state dict of {what} weights, got {type(state).__name__}")
    return state


def _load_into(module: torch.nn.Module, state: dict, path: PathLike, what: str) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError) as e:
        raise WeightsLoadError(f"{path}: does not fit {what} ({e})") from None


# --- LPIPS -------------------------------------------------------------------------------------


def load_lpips(backbone: PathLike, linear: PathLike, device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """LPIPS v0.1 with the AlexNet backbone (``lpips.LPIPS(net="alex", version="0.1")``), its
    weights loaded from files: ``backbone`` is torchvision's AlexNet state dict
    (``alexnet-owt-7be5be79.pth``: keys ``features.<i>.weight|bias``, ``classifier...``),
    ``linear`` the v0.1 linear layers (``alex.pth``: keys ``lin<k>.model.1.weight``). Both are
    loaded strictly (every tensor present, every shape right), unlike the package's own
    ``strict=False``. Returns the module in eval mode on ``device``.

    Raises ``WeightsLoadError`` naming the file if one does not load.
    """
    ensure_torchvision_importable()
    import lpips

    with warnings.catch_warnings():  # torchvision's "pretrained is deprecated"
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net="alex", version="0.1", lpips=True, pretrained=False, pnet_rand=True, verbose=False)
    state = _load_state(backbone, "torchvision AlexNet")
    mapped = {}
    for slice_name, block in model.net.named_children():  # slice<k> holds AlexNet's features[i] as "<i>"
        for index, layer in block.named_children():
            for param, _ in layer.named_parameters(recurse=False):
                key = f"features.{index}.{param}"
                if key not in state:
                    raise WeightsLoadError(f"{backbone}: not torchvision AlexNet weights (no {key!r})")
                mapped[f"{slice_name}.{index}.{param}"] = state[key]
    _load_into(model.net, mapped, backbone, "the LPIPS AlexNet backbone")
    lin = _load_state(linear, "LPIPS linear-layer")
    _load_into(torch.nn.ModuleDict({f"lin{k}": model.lins[k] for k in range(len(model.lins))}), lin, linear, "the LPIPS v0.1 AlexNet linear layers")
    return model.eval().requires_grad_(False).to(device)


def to_lpips_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 255] -> [-1, 1] (float32), the input range ``lpips.LPIPS`` expects."""
    return x.to(torch.float32) / 127.5 - 1.0


def lpips_distance(ref: Array, rec: Array, model: torch.nn.Module, batch_size: int = 8) -> np.ndarray:
    """LPIPS distance per image pair (spatial average of the v0.1 linear-layer outputs).

    Args:
        ref, rec: (N, 3, H, W) in [0, 255] (uint8 or float); ``ref`` may have N = 1.
        model: from ``load_lpips`` (or any ``lpips.LPIPS``).
        batch_size: pairs per forward call.

    Returns:
        float64 array (N,), >= 0, unitless; 0 for identical images.

    Raises:
        ValueError: shapes are not (N, 3, H, W) or differ.
    """
    a, b = _pairs(ref, rec)
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, a.shape[0], batch_size):
            x = to_lpips_range(a[i : i + batch_size].to(device))
            y = to_lpips_range(b[i : i + batch_size].to(device))
            out.append(model(x, y).reshape(-1).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


# --- DISTS -------------------------------------------------------------------------------------


def load_dists(backbone: PathLike, dists_weights: PathLike, device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """piq's ``DISTS`` (reduction "none") with its weights loaded from files instead of its URLs:
    ``backbone`` is torchvision's VGG16 state dict (``vgg16-397923af.pth``), ``dists_weights``
    the DISTS ``{"alpha", "beta"}`` tensors of shape (1, 1475, 1, 1) (``dists_weights.pt``).
    Built exactly as ``piq.DISTS.__init__`` does (layers relu1_2 .. relu5_3, L2 pooling), which
    a test checks against ``piq.DISTS()`` loading the same files from the hub cache.

    Raises ``WeightsLoadError`` naming the file if one does not load.
    """
    ensure_torchvision_importable()
    from piq.perceptual import DISTS, IMAGENET_MEAN, IMAGENET_STD, VGG16_LAYERS, ContentLoss
    from torchvision.models import vgg16

    vgg = vgg16(weights=None)
    _load_into(vgg, _load_state(backbone, "torchvision VGG16"), backbone, "torchvision VGG16")
    w = _load_state(dists_weights, "DISTS")
    total = sum(DISTS_CHANNELS)
    for k in ("alpha", "beta"):
        if k not in w or tuple(w[k].shape) != (1, total, 1, 1):
            raise WeightsLoadError(f"{dists_weights}: expected DISTS weights with {k!r} of shape (1, {total}, 1, 1)")
    layer_weights = list(torch.split(w["alpha"], DISTS_CHANNELS, dim=1)) + list(torch.split(w["beta"], DISTS_CHANNELS, dim=1))
    model = DISTS.__new__(DISTS)
    ContentLoss.__init__(
        model, vgg.features, layers=[VGG16_LAYERS[n] for n in DISTS_LAYERS], weights=layer_weights,
        replace_pooling=True, reduction="none", mean=IMAGENET_MEAN, std=IMAGENET_STD,
        normalize_features=False, allow_layers_weights_mismatch=True,
    )
    model.weights = [t.to(device) for t in model.weights]
    return model.eval().requires_grad_(False).to(device)


def dists_distance(ref: Array, rec: Array, model: torch.nn.Module, batch_size: int = 8) -> np.ndarray:
    """DISTS distance (piq: ``1 - DISTS similarity``) per image pair.

    Args:
        ref, rec: (N, 3, H, W) in [0, 255] (uint8 or float); ``ref`` may have N = 1.
        model: from ``load_dists`` (or ``piq.DISTS(reduction="none")``).
        batch_size: pairs per forward call.

    Returns:
        float64 array (N,), unitless; with the published weights (alpha and beta summing to 1)
        in [0, 1] and 0 for identical images.

    Raises:
        ValueError: shapes are not (N, 3, H, W) or differ.
    """
    a, b = _pairs(ref, rec)
    device = next(model.model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, a.shape[0], batch_size):
            x = b[i : i + batch_size].to(device, torch.float32) / 255.0
            y = a[i : i + batch_size].to(device, torch.float32) / 255.0
            out.append(model(x, y).reshape(-1).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


# --- HaarPSI -----------------------------------------------------------------------------------


def haarpsi(ref: Array, rec: Array, batch_size: int = 8, device: Optional[Union[str, torch.device]] = None) -> np.ndarray:
    """HaarPSI per image pair (piq's ``haarpsi`` with ``data_range=255``, 3 scales, subsampling,
    C = 30, alpha = 4.2 as in the paper), on the YIQ transform of the RGB images.

    Args:
        ref, rec: (N, 3, H, W) in [0, 255] (uint8 or float), sides >= 16 px; ``ref`` may have N = 1.
        batch_size: pairs per call, fewer for large images (at most ``BATCH_PIXELS`` pixels per
            call, or one pair: piq holds several float32 copies of each image). device: where to compute (default CPU).

    Returns:
        float64 array (N,) in [0, 1], higher is better; 1 for identical images.

    Raises:
        ValueError: shapes are not (N, 3, H, W), differ, or a side is under 16 px.
    """
    ensure_torchvision_importable()
    import piq

    a, b = _pairs(ref, rec)
    if min(a.shape[-2:]) < HAARPSI_MIN_SIDE:
        raise ValueError(f"HaarPSI needs at least {HAARPSI_MIN_SIDE} px a side, got {tuple(a.shape[-2:])}")
    out = []
    batch_size = max(1, min(batch_size, BATCH_PIXELS // (a.shape[-2] * a.shape[-1])))
    for i in range(0, a.shape[0], batch_size):
        x = b[i : i + batch_size].to(device or "cpu", torch.float32)
        y = a[i : i + batch_size].to(device or "cpu", torch.float32)
        out.append(piq.haarpsi(x, y, data_range=255.0, reduction="none").reshape(-1).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


# --- registry entries ----------------------------------------------------------------------


def _load_lpips_files(files, device) -> torch.nn.Module:
    return load_lpips(files["alexnet"], files["lpips_linear"], device)


def _load_dists_files(files, device) -> torch.nn.Module:
    return load_dists(files["vgg16"], files["dists"], device)


register(
    Metric(
        "lpips", "LPIPS (AlexNet, v0.1)", higher_is_better=False, kind="perception", weights=("alexnet", "lpips_linear"),
        package="lpips", reference="Zhang et al., CVPR 2018", fn=lpips_distance, load=_load_lpips_files,
        fn_kwargs=("model", "batch_size"),
    )
)
register(
    Metric(
        "dists", "DISTS", higher_is_better=False, kind="perception", weights=("vgg16", "dists"), package="piq",
        reference="Ding et al., TPAMI 2020", fn=dists_distance, load=_load_dists_files, fn_kwargs=("model", "batch_size"),
    )
)
register(
    Metric(
        "haarpsi", "HaarPSI", higher_is_better=True, kind="perception", package="piq",
        reference="Reisenhofer et al., SPIC 2018", fn=haarpsi, fn_kwargs=("batch_size", "device"),
    )
)
