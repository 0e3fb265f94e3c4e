"""Metrics: one registered object each (``benchmark.metrics.base.METRICS``), pure functions
over image batches plus metadata. Computed centrally on the decoded 8-bit reconstruction,
never inside a codec.

Importing this package registers the built-in metrics, in the order of the results columns:
distortion (``distortion``: MSE, PSNR, MS-SSIM, MS-SSIM dB), perception per image
(``perceptual``: LPIPS, DISTS, HaarPSI) and per set (``fid``: FID, KID on HiFiC patches). Their
weight files are resolved by ``weights``; ``suite.PerceptualSuite`` drives the perceptual
metrics of one evaluate run.
"""

from benchmark.metrics import distortion, fid, perceptual  # noqa: F401  (register the built-in metrics)
from benchmark.metrics.base import METRICS, Metric, SetMetric, per_image_metrics, set_metrics
from benchmark.metrics.distortion import distortion_metrics, ms_ssim, ms_ssim_db, psnr

__all__ = [
    "METRICS", "Metric", "SetMetric", "distortion_metrics", "ms_ssim", "ms_ssim_db", "per_image_metrics", "psnr", "set_metrics",
]
