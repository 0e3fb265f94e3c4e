"""Metric metadata and the metric registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from benchmark.registry import Registry


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is: its column name, unit, direction, granularity and needed weights.

    ``fn(ref, rec) -> np.ndarray`` takes two (N, 3, H, W) batches in [0, 255].
    ``weights`` names the file the metric needs (None: no downloaded weights).
    """

    name: str
    unit: str
    higher_is_better: bool
    per_image: bool
    fn: Callable
    weights: Optional[str] = None
    reference: str = ""


METRICS: Registry[MetricInfo] = Registry("metric")
