"""PSNR and MS-SSIM on 8-bit RGB images.

Conventions (as in CompressAI's evaluation and most learned-compression papers):

- PSNR over all three RGB channels jointly, peak 255: ``10 log10(255^2 / MSE)`` in dB. An exact
  reconstruction gives ``inf``.
- MS-SSIM (Wang, Simoncelli, Bovik 2003) as ``pytorch-msssim`` defines it, ``data_range=255``,
  the standard 11x11 Gaussian window (sigma 1.5), 5 scales with the paper's weights, averaged
  over the RGB channels. Needs at least 161 px a side. Computed in float32 strips of rows
  (within 4e-7 of float64 on Kodak; tested); MSE exactly (integer sums over strips).
- MS-SSIM in dB: ``-10 log10(1 - MS-SSIM)`` (``inf`` for MS-SSIM = 1).

Registered metrics (``benchmark.metrics.base``): ``mse``, ``psnr`` (derived from MSE),
``ms_ssim`` and ``ms_ssim_db`` (derived from MS-SSIM; on RD curves, the dB of the mean MS-SSIM).

Inputs are batches (N, 3, H, W) as ``torch.Tensor`` or ``numpy.ndarray``, uint8 in [0, 255] or
float in [0, 255]. Outputs are float64 numpy arrays of shape (N,).
"""

from __future__ import annotations

from typing import Dict, Optional, Union

import numpy as np
import torch

from benchmark.metrics.base import Metric, register, score_distortion

Array = Union[np.ndarray, torch.Tensor]
MS_SSIM_MIN_SIDE = 161
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # pytorch-msssim's (Wang et al. 2003)
MS_SSIM_WIN_SIZE, MS_SSIM_WIN_SIGMA = 11, 1.5
STRIP_ELEMENTS = 1 << 22  # values per strip of rows (4M: 16 MB in float32)


def _as_tensor(x: Array, name: str, dtype: Optional[torch.dtype]) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim != 4 or t.shape[1] != 3:
        raise ValueError(f"{name}: expected a batch of shape (N, 3, H, W), got {tuple(t.shape)}")
    return t if dtype is None else t.to(dtype)


def _pair(ref: Array, rec: Array, dtype: Optional[torch.dtype] = torch.float64):
    """The two batches as tensors (N, 3, H, W), converted to ``dtype`` (None: as they are)."""
    a, b = _as_tensor(ref, "ref", dtype), _as_tensor(rec, "rec", dtype)
    if a.shape != b.shape:
        raise ValueError(f"ref and rec shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return a, b


def mse(ref: Array, rec: Array) -> np.ndarray:
    """Mean squared error per image over all pixels and channels, on the [0, 255] scale. Shape (N,).

    Computed in strips of rows (``STRIP_ELEMENTS`` values per strip), never as a full-size
    float copy: for two uint8 batches exactly, as an integer sum of squared differences divided
    by the count (the float64 result of the whole-image mean, bit for bit); for float inputs in
    float64, summed strip by strip (equal to the whole-image float64 mean to about 1e-15
    relative). Raises ``ValueError`` for shapes that are not (N, 3, H, W) or differ.
    """
    a, b = _pair(ref, rec, None)
    n, c, h, w = a.shape
    exact = a.dtype == torch.uint8 and b.dtype == torch.uint8
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        total = 0 if exact else 0.0
        for r0, r1 in _strips(h, c * w):
            if exact:
                d = a[i, :, r0:r1].to(torch.int32) - b[i, :, r0:r1].to(torch.int32)
                total += int((d * d).sum(dtype=torch.int64))
            else:
                d = a[i, :, r0:r1].to(torch.float64) - b[i, :, r0:r1].to(torch.float64)
                total += float((d * d).sum())
        out[i] = total / (c * h * w)
    return out


def psnr(ref: Array, rec: Array, data_range: float = 255.0) -> np.ndarray:
    """PSNR in dB per image, RGB jointly, peak ``data_range`` (255 for 8-bit). Shape (N,); inf if equal."""
    return _psnr_from_mse(mse(ref, rec), data_range)


def ms_ssim(ref: Array, rec: Array, data_range: float = 255.0, dtype: torch.dtype = torch.float32) -> np.ndarray:
    """MS-SSIM per image in [0, 1], as ``pytorch_msssim.ms_ssim`` defines it: 5 scales with Wang
    et al.'s weights, 11-tap Gaussian window of sigma 1.5 (pytorch-msssim's, applied along rows
    then columns, valid region only), K = (0.01, 0.03), relu of each scale's term, 2x2 average
    pooling with zero padding of odd sides; averaged over the RGB channels. Computed in ``dtype``
    (float32: within 4e-7 of float64 on Kodak, where pytorch-msssim's float32 is off by up to
    4.2e-6); returned as float64, shape (N,).

    Bounded memory and time on large images: each scale's SSIM and contrast-structure maps are
    computed in strips of rows overlapping by the window (10 rows), so that the strips' valid
    maps tile the image's; their sums are accumulated in float64. The Gaussian filter is
    ``scipy.ndimage.correlate1d`` (accumulating in double; pytorch-msssim's grouped convolution
    is 3-9x slower on the CPU), four filters per strip (x^2 + y^2 in one), and the variances come
    from values centred on ``data_range / 2``. Only the 2x-downsampled images (a quarter of the input's pixels,
    in ``dtype``) are held whole; the input is converted strip by strip. Tested against
    ``pytorch_msssim.ms_ssim`` on the whole image: within 1e-6 in float32, 1e-12 in float64.

    Raises ``ValueError`` for shapes that are not (N, 3, H, W) or differ, or a side smaller than
    161 px.
    """
    a, b = _pair(ref, rec, None)
    if min(a.shape[-2:]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs at least {MS_SSIM_MIN_SIDE} px a side, got {tuple(a.shape[-2:])}")
    return np.array([_ms_ssim_one(a[i : i + 1], b[i : i + 1], data_range, dtype) for i in range(a.shape[0])], dtype=np.float64)


def _ms_ssim_one(x: torch.Tensor, y: torch.Tensor, data_range: float, dtype: torch.dtype) -> float:
    """MS-SSIM of one pair (1, C, H, W), any dtype (see ``ms_ssim``)."""
    from pytorch_msssim.ssim import _fspecial_gauss_1d

    win = _fspecial_gauss_1d(MS_SSIM_WIN_SIZE, MS_SSIM_WIN_SIGMA).flatten().double().numpy()
    terms = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        ssim_c, cs_c = _ssim_strips(x, y, win, data_range, dtype)
        if level < len(MS_SSIM_WEIGHTS) - 1:
            terms.append(np.maximum(cs_c, 0.0))
            x, y = _pool2(x, dtype), _pool2(y, dtype)
    terms.append(np.maximum(ssim_c, 0.0))
    per_channel = np.prod(np.stack(terms) ** np.asarray(MS_SSIM_WEIGHTS)[:, None], axis=0)
    return float(per_channel.mean())


def _ssim_strips(x: torch.Tensor, y: torch.Tensor, win: np.ndarray, data_range: float, dtype: torch.dtype):
    """Mean SSIM and contrast-structure per channel over the valid map (pytorch-msssim's
    ``_ssim``) of (1, C, H, W) tensors, from strips of rows: float64 (C,) each."""
    from scipy.ndimage import correlate1d

    c, h, w = x.shape[1:]
    halo = len(win) - 1
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(v: np.ndarray) -> np.ndarray:  # (C, r + halo, W) -> (C, r, W - halo), the valid region
        v = correlate1d(v[:, :, :], win, axis=2)[:, :, halo // 2 : w - halo // 2]
        return correlate1d(v, win, axis=1)[:, halo // 2 : v.shape[1] - halo // 2]

    rows = h - halo  # rows of the valid map
    s_sum, cs_sum = np.zeros(c), np.zeros(c)
    # Variances from values centred on k (less float cancellation than from raw values), with
    # the terms that keep pytorch-msssim's formula exactly although its 2-D window (the 1-D one
    # along rows, then columns) sums to S != 1 by float rounding: for m = blur(x - k),
    # blur(x) = m + kS and blur(x^2) - blur(x)^2 = blur((x - k)^2) - m^2 + 2k m (1 - S) + k^2 S (1 - S).
    k = data_range / 2
    total = float(win.sum()) ** 2
    e = 1.0 - total
    for r0, r1 in _strips(rows, c * w):
        xs = x[0, :, r0 : r1 + halo].to(dtype, copy=True).numpy()  # copies: changed in place below
        ys = y[0, :, r0 : r1 + halo].to(dtype, copy=True).numpy()
        xs -= k
        ys -= k
        m1, m2 = blur(xs), blur(ys)
        sigma12 = blur(xs * ys)
        np.multiply(xs, xs, out=xs)
        np.multiply(ys, ys, out=ys)
        np.add(xs, ys, out=xs)
        var_sum = blur(xs)  # of both images in one filter: it is linear
        m_sum = m1 + m2
        sigma12 -= m1 * m2 - (k * e) * m_sum - k * k * total * e
        var_sum -= m1 * m1 + m2 * m2 - (2 * k * e) * m_sum - 2 * k * k * total * e
        cs_map = (2 * sigma12 + c2) / (var_sum + c2)
        m1 += k * total
        m2 += k * total
        ssim_map = (2 * m1 * m2 + c1) / (m1 * m1 + m2 * m2 + c1) * cs_map
        s_sum += ssim_map.sum(axis=(1, 2), dtype=np.float64)
        cs_sum += cs_map.sum(axis=(1, 2), dtype=np.float64)
    n = rows * (w - halo)
    return s_sum / n, cs_sum / n


def _pool2(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``F.avg_pool2d(x, 2, padding=(H % 2, W % 2))`` (pytorch-msssim's downsampling: odd sides
    zero-padded on both ends, the zeros counted) of (1, C, H, W) in ``dtype``, strip by strip."""
    import torch.nn.functional as F

    c, h, w = x.shape[1:]
    ph, pw = h % 2, w % 2
    ho, wo = (h + 2 * ph - 2) // 2 + 1, (w + 2 * pw - 2) // 2 + 1
    out = torch.empty((1, c, ho, wo), dtype=dtype)
    for i0, i1 in _strips(ho, 4 * c * w):
        lo, hi = 2 * i0 - ph, 2 * i1 - ph  # input rows, in the unpadded image
        strip = x[:, :, max(lo, 0) : min(hi, h)].to(dtype)
        strip = F.pad(strip, (0, 0, max(0, -lo), max(0, hi - h)))
        out[:, :, i0:i1] = F.avg_pool2d(strip, kernel_size=2, padding=(0, pw))
    return out


def _strips(rows: int, row_elements: int):
    """(start, stop) row ranges covering ``rows`` with about ``STRIP_ELEMENTS`` values each
    (``row_elements`` values per row), at least 16 rows."""
    step = max(16, STRIP_ELEMENTS // max(row_elements, 1))
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


def ms_ssim_db(ref: Array, rec: Array, data_range: float = 255.0) -> np.ndarray:
    """MS-SSIM in dB, ``-10 log10(1 - MS-SSIM)``. Shape (N,); inf for a perfect match."""
    return to_db(ms_ssim(ref, rec, data_range))


def to_db(ms_ssim_values: np.ndarray) -> np.ndarray:
    """``-10 log10(1 - v)`` elementwise (inf where v >= 1)."""
    v = np.asarray(ms_ssim_values, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return -10.0 * np.log10(np.clip(1.0 - v, 0.0, None))


def distortion_metrics(ref_hwc: np.ndarray, rec_hwc: np.ndarray) -> Dict[str, float]:
    """Every registered distortion metric (MSE, PSNR, MS-SSIM, MS-SSIM dB, and any a plugin
    registers) of one (H, W, 3) uint8 image pair, as plain floats keyed by column name.
    Raises ``ValueError`` for images that are not uint8 (H, W, 3) of one shape."""
    if ref_hwc.shape != rec_hwc.shape or ref_hwc.dtype != np.uint8 or rec_hwc.dtype != np.uint8 or ref_hwc.ndim != 3:
        raise ValueError(
            f"expected two uint8 (H, W, 3) images of one shape, got {ref_hwc.dtype}{ref_hwc.shape} "
            f"and {rec_hwc.dtype}{rec_hwc.shape}"
        )
    a = torch.from_numpy(np.require(ref_hwc, requirements=["C", "W"])).permute(2, 0, 1)[None]
    b = torch.from_numpy(np.require(rec_hwc, requirements=["C", "W"])).permute(2, 0, 1)[None]
    return {name: float(v[0]) for name, v in score_distortion(a, b).items()}


def _psnr_from_mse(m: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(data_range**2 / np.asarray(m, dtype=np.float64))


register(
    Metric(
        "mse", "MSE (RGB, 0-255)", higher_is_better=False, fn=mse, in_summary=False,
        reference="mean over pixels and RGB channels",
    )
)
register(
    Metric(
        "psnr", "PSNR (RGB)", unit="dB", base="mse", derive=_psnr_from_mse, bd_axis=True, short="PSNR",
        reference="10 log10(255^2 / MSE), RGB jointly, peak 255",
    )
)
register(Metric("ms_ssim", "MS-SSIM (RGB)", fn=ms_ssim, package="pytorch-msssim", reference="Wang, Simoncelli, Bovik 2003"))
register(
    Metric(
        "ms_ssim_db", "MS-SSIM (RGB)", unit="dB", base="ms_ssim", derive=to_db, curve_of_mean=True, bd_axis=True,
        slug="ms-ssim", short="MS-SSIM dB", reference="-10 log10(1 - MS-SSIM)",
    )
)
