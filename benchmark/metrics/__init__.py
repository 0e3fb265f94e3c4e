"""Metrics: pure functions over image batches plus metadata, in one registry.

A metric takes a reference and a reconstruction batch, (N, 3, H, W), uint8 in [0, 255] or float
in [0, 255], and returns one value per image (``per_image``) or one value per set. Metrics are
computed centrally on the decoded 8-bit reconstruction, never inside a codec.

Distortion: PSNR, MS-SSIM (``distortion``). Perception: LPIPS, DISTS, HaarPSI per image
(``perceptual``) and FID/KID on HiFiC patches per set (``fid``); their weight files are resolved
by ``weights`` and the metrics of one evaluate run are driven by ``suite.PerceptualSuite``.
"""

from benchmark.metrics.base import METRICS, MetricInfo
from benchmark.metrics.distortion import distortion_metrics, ms_ssim, ms_ssim_db, psnr
from benchmark.metrics.suite import PERCEPTUAL, PerceptualSuite

__all__ = ["METRICS", "MetricInfo", "PERCEPTUAL", "PerceptualSuite", "distortion_metrics", "ms_ssim", "ms_ssim_db", "psnr"]
