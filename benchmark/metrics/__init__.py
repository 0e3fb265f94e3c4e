"""Metrics: pure functions over image batches plus metadata, in one registry.

A metric takes a reference and a reconstruction batch, (N, 3, H, W), uint8 in [0, 255] or float
in [0, 255], and returns one value per image (``per_image``) or one value per set. Metrics are
computed centrally on the decoded 8-bit reconstruction, never inside a codec.
"""

from benchmark.metrics.base import METRICS, MetricInfo
from benchmark.metrics.distortion import distortion_metrics, ms_ssim, ms_ssim_db, psnr

__all__ = ["METRICS", "MetricInfo", "distortion_metrics", "ms_ssim", "ms_ssim_db", "psnr"]
