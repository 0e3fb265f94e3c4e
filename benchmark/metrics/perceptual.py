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
  implementation; above 4 MP on the CPU our own equal formulation over strips of rows (within
  1e-5 of piq's float32, ~10x faster, in bounded memory; see ``haarpsi``). Needs no learned
  weights, so an offline run always has a perception axis. In [0, 1], higher is better, 1 for
  identical images.

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
    C = 30, alpha = 4.2 as in the paper, Reisenhofer et al., SPIC 2018), on the YIQ transform of
    the RGB images.

    Images of at most ``BATCH_PIXELS`` (4M) pixels, and all images when ``device`` is not the
    CPU, go through ``piq.haarpsi`` in float32, ``batch_size`` pairs per call (fewer for large
    images: at most ``BATCH_PIXELS`` pixels per call, or one pair), so their values are piq's;
    piq holds several whole-image float32 copies (about 100 bytes per pixel of a pair). Larger
    images on the CPU are scored one pair at a time by ``_haarpsi_strips``: the same formula over
    strips of rows of the 2x-subsampled image, in float32 with float64 sums, without any
    whole-image float copy (a few MB of strip buffers, whatever the size; the input is read strip
    by strip) and about 10x faster on one core (20 MP: 0.48 s against piq's 4.9 s,
    ``benchmarks/haarpsi_large.py``). Its values are within 1e-5 of piq's float32 values
    (tested; measured up to 3e-6, which is piq's own float32 error: our float32 is within 3e-7 of
    piq in float64, and within 8e-8 on the 20 MP photograph, where piq's float32 is 6e-7 off).

    Args:
        ref, rec: (N, 3, H, W) in [0, 255] (uint8 or float), sides >= 16 px; ``ref`` may have N = 1.
        batch_size: pairs per piq call (see above).
        device: where to compute (default CPU).

    Returns:
        float64 array (N,) in [0, 1], higher is better; 1 for identical images (up to float32
        rounding, which can pass 1: the astronaut against itself scores 1 + 4e-6 by piq, 1 + 6e-8
        by the strips).

    Raises:
        ValueError: shapes are not (N, 3, H, W), differ, or a side is under 16 px; on the
            large-image path also a value outside [0, 255] in a non-uint8 input (piq's own check,
            on the other path, raises AssertionError).
    """
    a, b = _pairs(ref, rec)
    if min(a.shape[-2:]) < HAARPSI_MIN_SIDE:
        raise ValueError(f"HaarPSI needs at least {HAARPSI_MIN_SIDE} px a side, got {tuple(a.shape[-2:])}")
    if a.shape[-2] * a.shape[-1] > BATCH_PIXELS and torch.device(device or "cpu").type == "cpu":
        return np.array([_haarpsi_strips(b[i : i + 1], a[i : i + 1]) for i in range(a.shape[0])], dtype=np.float64)
    ensure_torchvision_importable()
    import piq

    out = []
    batch_size = max(1, min(batch_size, BATCH_PIXELS // (a.shape[-2] * a.shape[-1])))
    for i in range(0, a.shape[0], batch_size):
        x = b[i : i + batch_size].to(device or "cpu", torch.float32)
        y = a[i : i + batch_size].to(device or "cpu", torch.float32)
        out.append(piq.haarpsi(x, y, data_range=255.0, reduction="none").reshape(-1).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


HAARPSI_C = 30.0  # the paper's C and alpha (piq's defaults)
HAARPSI_ALPHA = 4.2
HAARPSI_STRIP_PIXELS = 1 << 16  # pixels of the 2x-subsampled image per strip of rows (large-image path)
_HALO_UP, _HALO_DOWN = 3, 4  # rows the coarsest Haar filter (8 x 8, padded 3 above, 4 below) reaches
_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))  # piq's rgb2yiq


def _haarpsi_strips(x: torch.Tensor, y: torch.Tensor, dtype: type = np.float32) -> float:
    """HaarPSI of one image pair, equal to ``piq.haarpsi(x, y, data_range=255)`` (3 scales,
    subsampling, C = 30, alpha = 4.2), computed over strips of rows in bounded memory.

    The 2x-subsampled YIQ images are made strip by strip (``HAARPSI_STRIP_PIXELS`` pixels of them
    per strip, plus a halo of 3 rows above and 4 below, carried over from the previous strip),
    the Haar coefficients as differences of box sums, and the two pooled sums of piq's score,
    ``sum(sigmoid(alpha sim) w)`` and ``sum(w)``, accumulated in float64; outside the image the
    subsampled rows are zero, as piq's zero padding makes them. Symmetric in x and y.

    Args:
        x, y: (1, 3, H, W) tensors, RGB in [0, 255], uint8 (pooled exactly in integers) or
            another dtype (converted to ``dtype`` strip by strip), any strides and device.
        dtype: ``np.float32`` (default; within 3e-7 of piq in float64 in the tests, 8e-8 on a
            20 MP photograph) or ``np.float64`` (within 1e-13 of piq in float64).

    Returns:
        HaarPSI in [0, 1] (up to rounding) as a Python float.

    Raises:
        ValueError: a value of a non-uint8 input outside [0, 255] (or NaN).
    """
    h, w = x.shape[-2:]
    hs, ws = (h + 1) // 2, (w + 1) // 2
    step = max(1, HAARPSI_STRIP_PIXELS // ws)
    num = den = 0.0
    for i0, fx, fy in zip(range(0, hs, step), _half_yiq_strips(x, step, dtype), _half_yiq_strips(y, step, dtype)):
        strip_num, strip_den = _haarpsi_strip_sums(fx, fy, min(step, hs - i0))
        num += strip_num
        den += strip_den
    eps = float(np.finfo(dtype).eps)  # piq's, for the dtype it computes in
    score = (num + eps) / (den + eps)
    return float((np.log(score / (1 - score)) / HAARPSI_ALPHA) ** 2)


def _half_yiq_strips(t: torch.Tensor, step: int, dtype: type):
    """Yields, for the strips of ``step`` rows of the 2x-subsampled YIQ image of ``t`` (1, 3, H, W),
    its rows i0 - 3 .. i0 + rows + 4: arrays (3, rows + 7, ceil(W/2)) in ``dtype`` (one buffer,
    overwritten by the next strip). The subsampled image is piq's: means of 2x2 blocks of the
    image zero-extended to even sides (``F.pad`` and ``avg_pool2d``), ceil(H/2) x ceil(W/2), and
    the rows outside it are zero (piq's zero padding of the Haar filters). The halo rows come
    from the previous strip; every input row is read and converted once."""
    h, w = t.shape[-2:]
    hs, ws = (h + 1) // 2, (w + 1) // 2
    halo = _HALO_UP + _HALO_DOWN
    step = min(step, hs)
    buf = np.zeros((3, step + halo, ws), dtype)
    done = -_HALO_UP  # subsampled rows before this one are in the buffer
    for i0 in range(0, hs, step):
        rows = min(step, hs - i0)
        if i0:
            buf[:, :halo] = buf[:, step : step + halo]
        new = buf[:, done - (i0 - _HALO_UP) : rows + halo]
        _half_yiq(t, done, i0 + rows + _HALO_DOWN, new)
        done = i0 + rows + _HALO_DOWN
        yield buf[:, : rows + halo]


def _half_yiq(t: torch.Tensor, r0: int, r1: int, out: np.ndarray) -> None:
    """Writes rows ``r0:r1`` of the 2x-subsampled YIQ image of ``t`` (see ``_half_yiq_strips``)
    into ``out`` (3, r1 - r0, ceil(W/2)); rows outside the subsampled image get zeros. Reads
    input rows 2 r0 .. 2 r1 only."""
    h, w = t.shape[-2:]
    hs, ws = (h + 1) // 2, (w + 1) // 2
    lo, hi = min(max(r0, 0), r1), max(min(r1, hs), r0)  # the rows inside, r0 <= lo <= hi <= r1
    out[:, : lo - r0] = 0
    out[:, hi - r0 :] = 0
    if hi <= lo:
        return
    src = t[0, :, 2 * lo : min(2 * hi, h)].detach().cpu().numpy()  # (3, rows, W), a view where it can be
    if src.dtype == np.uint8:
        acc = np.uint16  # sums of four 8-bit values: exact
    else:
        acc = out.dtype
        if not (src.min() >= 0 and src.max() <= 255):
            raise ValueError(f"HaarPSI: values outside [0, 255] in rows {2 * lo}-{2 * lo + src.shape[1] - 1}")
    pairs = np.zeros((3, hi - lo, 2 * ws), acc)  # row pairs summed, a zero column if W is odd
    pairs[:, :, :w] = src[:, 0::2]
    pairs[:, : src.shape[1] // 2, :w] += src[:, 1::2]  # a last odd row pairs with zeros
    sums = pairs[:, :, 0::2] + pairs[:, :, 1::2]  # (3, hi - lo, ws): 4 x the block means
    m = np.asarray(_YIQ, out.dtype) * out.dtype.type(0.25)  # the 1/4 folded in: exact
    block = out[:, lo - r0 : hi - r0]
    for k in range(3):
        np.multiply(sums[0], m[k, 0], out=block[k], casting="unsafe")
        block[k] += m[k, 1] * sums[1]
        block[k] += m[k, 2] * sums[2]


def _haarpsi_strip_sums(fx: np.ndarray, fy: np.ndarray, rows: int):
    """piq's ``sum(sigmoid(alpha sim) w)`` and ``sum(w)`` (float64) over the ``rows`` output rows
    of a strip, from its subsampled YIQ rows with the halo, (3, rows + 7, Ws) each.

    Per pixel and orientation (horizontal, vertical edges), the similarity is the mean over the
    Haar scales k = 2, 4 of S(|a|, |b|) = (2 |a b| + C) / (a^2 + b^2 + C) of the two images'
    coefficients, the weight the larger magnitude at k = 8; the chroma similarity is the mean of
    S over the absolute 2x2 means of I and Q, its weight the mean of the two others."""
    c, alpha = HAARPSI_C, HAARPSI_ALPHA
    hx, hy = _haar(fx[0], rows), _haar(fy[0], rows)
    num = den = 0.0
    weights = []
    for o in range(2):
        wmax = np.maximum(np.abs(hx[2][o]), np.abs(hy[2][o]))
        wmax *= wmax.dtype.type(1 / 8)  # the maps are k times piq's coefficients
        sim = _similarity(hx[0][o], hy[0][o], c * 4) + _similarity(hx[1][o], hy[1][o], c * 16)
        num += _weighted_sigmoid(sim, alpha / 2, wmax)
        den += wmax.sum(dtype=np.float64)
        weights.append(wmax)
    wc = weights[0] + weights[1]
    wc *= wc.dtype.type(0.5)
    sim = _similarity(_pair_means(fx[1, 3 : 4 + rows]), _pair_means(fy[1, 3 : 4 + rows]), c)
    sim += _similarity(_pair_means(fx[2, 3 : 4 + rows]), _pair_means(fy[2, 3 : 4 + rows]), c)
    num += _weighted_sigmoid(sim, alpha / 2, wc)
    den += wc.sum(dtype=np.float64)
    return num, den


def _haar(lum: np.ndarray, rows: int):
    """k times piq's Haar coefficients of the luminance at scales k = 2, 4, 8, for output rows
    3 .. 3 + rows of ``lum`` (rows + 7, Ws). piq convolves with the k x k filter of +-1/k, its
    upper half positive (first orientation: horizontal edges) and its transpose (second), the
    image zero-padded by k/2 - 1 above and left, k/2 below and right (MATLAB's ``conv2 'same'``);
    here they are differences of box sums (pairwise sums of columns, then of rows).

    Returns ``[(rows_k, cols_k) for k in (2, 4, 8)]``, each (rows, Ws) in ``lum``'s dtype."""
    n, ws = lum.shape
    p = np.zeros((n, ws + 7), lum.dtype)  # 3 zero columns left, 4 right
    p[:, 3 : 3 + ws] = lum
    box = {1: p}  # box[b][:, c] = p[:, c] + ... + p[:, c + b - 1]
    for b in (2, 4, 8):
        prev = box[b // 2]
        box[b] = prev[:, : -(b // 2)] + prev[:, b // 2 :]
    out = []
    for k in (2, 4, 8):
        h = k // 2
        full = box[k][:, 4 - h : 4 - h + ws]  # columns j - h + 1 .. j + h
        half = box[h][:, 4 - h : 4 - h + ws]  # columns j - h + 1 .. j minus j + 1 .. j + h
        half -= box[h][:, 4 : 4 + ws]  # (in place: box[h] is not needed after this scale)
        up = _row_sums(full, h)  # up[q]: rows q .. q + h - 1
        rows_edge = up[4 - h : 4 - h + rows] - up[4 : 4 + rows]  # rows i - h + 1 .. i minus i + 1 .. i + h
        cols_edge = _row_sums(half, k)[4 - h : 4 - h + rows]  # rows i - h + 1 .. i + h
        out.append((rows_edge, cols_edge))
    return out


def _row_sums(v: np.ndarray, n: int) -> np.ndarray:
    """Sums of ``n`` (a power of two) consecutive rows: out[q] = v[q] + ... + v[q + n - 1]."""
    step = 1
    while step < n:
        v = v[:-step] + v[step:]
        step *= 2
    return v


def _pair_means(v: np.ndarray) -> np.ndarray:
    """Absolute means of the 2x2 blocks starting at each pixel of rows 0 .. n - 2 of ``v``
    (n, Ws), zero right of it: piq's chroma filter (pad right and bottom by one,
    ``avg_pool2d(kernel_size=2, stride=1)``, ``abs``). Returns (n - 1, Ws)."""
    s = v[:, :-1] + v[:, 1:]
    s = np.concatenate([s, v[:, -1:]], axis=1)
    s = s[:-1] + s[1:]
    s *= s.dtype.type(0.25)
    return np.abs(s, out=s)


def _similarity(a: np.ndarray, b: np.ndarray, c: float) -> np.ndarray:
    """``(2 |a b| + c) / (a^2 + b^2 + c)``, piq's ``similarity_map`` of |a| and |b| (a new array)."""
    den = a * a
    den += b * b
    den += c
    num = a * b
    np.abs(num, out=num)
    num *= 2
    num += c
    return np.divide(num, den, out=num)


def _weighted_sigmoid(sim: np.ndarray, scale: float, w: np.ndarray) -> float:
    """``sum(w / (1 + exp(-scale sim)))`` in float64 (overwrites ``sim``)."""
    sim *= -scale
    np.exp(sim, out=sim)
    sim += 1
    np.divide(w, sim, out=sim)
    return float(sim.sum(dtype=np.float64))


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
