"""Reproducible rate-distortion(-perception) benchmark for lossy image compression.

Stages (``python -m benchmark --help``): ``fetch`` a data set, ``evaluate`` one codec on it
into real bitstreams and per-image metrics, ``report`` tables and figures, ``check`` fresh
results against a committed baseline.
"""

__version__ = "0.1.0"
