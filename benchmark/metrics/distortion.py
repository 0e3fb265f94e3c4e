"""PSNR and MS-SSIM on 8-bit RGB images.

Conventions (as in CompressAI's evaluation and most learned-compression papers):

- PSNR over all three RGB channels jointly, peak 255: ``10 log10(255^2 / MSE)`` in dB. An exact
  reconstruction gives ``inf``.
- MS-SSIM (Wang, Simoncelli, Bovik 2003) from ``pytorch-msssim`` with ``data_range=255``, the
  standard 11x11 Gaussian window (sigma 1.5), 5 scales with the paper's weights, averaged over
  the RGB channels. Needs at least 161 px a side. Computed in float32 (within 2e-7 of float64,
  tested). MSE exactly (integer sums over strips of rows), PSNR from it in float64.
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
STRIP_ELEMENTS = 1 << 22  # values per strip of rows of MSE (4M)


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
    """MS-SSIM per image in [0, 1] (pytorch-msssim, 5 scales, 11x11 Gaussian window), computed
    in ``dtype`` (float32: within 2e-7 of float64 on 8-bit images, at a third of the time);
    returned as float64, shape (N,). Whole-image maps: about 200 bytes per pixel at its peak
    (a row-strip version, within 4e-7 of float64, is on branch ``large``; adopting it moves the
    committed values by up to 4.5e-5 and needs every evaluate stage rerun).

    Raises ``ValueError`` if a side is smaller than 161 px.
    """
    from pytorch_msssim import ms_ssim as _ms_ssim

    a, b = _pair(ref, rec, dtype)
    if min(a.shape[-2:]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs at least {MS_SSIM_MIN_SIDE} px a side, got {tuple(a.shape[-2:])}")
    return _ms_ssim(a, b, data_range=data_range, size_average=False).double().numpy()


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
