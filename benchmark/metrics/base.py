"""The metric registry: one typed object per metric, read by everything that shows a metric.

A metric is registered once, with what it is (``name``, the results column; ``label`` and
``unit`` for axes and tables; direction; per image or per set; the weight files it needs; the
package and paper) and how it is computed: ``setup`` once (networks loaded from the resolved
weight files onto a device), then ``score`` over batches (N, 3, H, W) in [0, 255]. The results
columns, config validation, the summary, the BD tables (a metric with ``bd_axis`` is a quality
axis of the BD tables and gets an RD figure), the RD/RDP figures and ``check`` all read this
registry; nothing dispatches on a metric's name.

Kinds: ``distortion`` metrics need no weights and are computed for every row, in the worker
processes that code the images; ``perception`` metrics are computed when listed in
``metrics.perceptual``, in the evaluate stage's main process on ``metrics.device``, batched
over an image's rate points; a per-set metric (``SetMetric``: FID, KID) compares features of the
HiFiC patches of all images per rate point.

Registering a metric from outside the package (a module named under ``plugins`` in params.yaml)::

    from benchmark.metrics.base import METRICS, Metric

    def l1(ref, rec):  # (N, 3, H, W) in [0, 255] -> (N,)
        return (ref.double() - rec.double()).abs().mean(dim=(1, 2, 3)).numpy()

    METRICS.add("l1", Metric("l1", "L1 (RGB)", unit="", higher_is_better=False, fn=l1, bd_axis=True))
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Literal, Mapping, Optional, Tuple, Union

import numpy as np

from benchmark.registry import Registry

Scorer = Callable[[Any, Any], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric.

    Attributes:
        name: the results column (``psnr``).
        label: axis / table label without unit (``PSNR (RGB)``).
        unit: unit (``dB``; empty for unitless values).
        higher_is_better: direction (check tolerances, BD axes and figure labels follow it).
        kind: ``distortion`` (always computed, in workers) or ``perception`` (computed when
            listed in ``metrics.perceptual``, in the main process on ``metrics.device``).
        per_image: one value per image (False: per set, see ``SetMetric``).
        weights: keys of the weight files it needs (``benchmark.metrics.weights.WEIGHT_FILES``).
        package: the package that implements it (recorded with its version).
        reference: the paper or standard it follows.
        bd_axis: a quality axis of the BD tables, with an RD figure (``rd-<slug>``).
        slug: file-name form of the name (default: ``name`` with ``_`` as ``-``).
        short: short label for table headers (default ``label``).
        fn: the function ``fn(ref, rec, **kw) -> (N,) float64`` over batches (N, 3, H, W) in
            [0, 255] (uint8 or float, torch or numpy); ``kw`` holds ``model`` (what ``load``
            returned), ``batch_size`` and ``device`` where the function takes them.
        load: ``load(files, device)`` -> the network ``fn`` needs (files: weight key -> path),
            or None. It may raise ``benchmark.metrics.perceptual.WeightsLoadError``.
        base, derive: a derived metric is ``derive(<values of metric base>)`` per image (PSNR
            from MSE, MS-SSIM dB from MS-SSIM); ``fn`` is then unused.
        curve_of_mean: for a derived metric, its value on an RD curve (figures, BD tables) is
            ``derive(mean of base)`` rather than the mean of the per-image values.
        fn_kwargs: which of ``model``, ``batch_size``, ``device`` ``fn`` takes.
        in_summary: averaged per rate point in ``summary.csv`` (MSE is not: PSNR, the mean
            of per-image PSNR as in CompressAI's results, stands for it).
    """

    name: str
    label: str
    unit: str = ""
    higher_is_better: bool = True
    kind: Literal["distortion", "perception"] = "distortion"
    per_image: bool = True
    weights: Tuple[str, ...] = ()
    package: str = ""
    reference: str = ""
    bd_axis: bool = False
    slug: Optional[str] = None
    short: Optional[str] = None
    fn: Optional[Callable[..., np.ndarray]] = None
    load: Optional[Callable[[Mapping[str, Any], Any], Any]] = None
    base: Optional[str] = None
    derive: Optional[Callable[[np.ndarray], np.ndarray]] = None
    curve_of_mean: bool = False
    fn_kwargs: Tuple[str, ...] = ()
    in_summary: bool = True

    @property
    def file_stem(self) -> str:
        """The name as used in file names (``ms-ssim``)."""
        return self.slug or self.name.replace("_", "-")

    @property
    def short_label(self) -> str:
        return self.short or self.label

    @property
    def axis_label(self) -> str:
        """``label [unit]`` (``PSNR (RGB) [dB]``), or the label alone for unitless metrics."""
        return f"{self.label} [{self.unit}]" if self.unit else self.label

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def setup(self, files: Optional[Mapping[str, Any]] = None, device: Any = "cpu", batch_size: int = 8) -> Scorer:
        """Load what the metric needs (``load(files, device)``) and return ``score(ref, rec) ->
        float64 (N,)`` over batches (N, 3, H, W) in [0, 255] (a reference batch of size 1 is
        compared with every reconstruction where ``fn`` allows it). Raises what ``load`` raises
        (``WeightsLoadError`` for weights that do not load); ``ValueError`` for a derived metric
        (score its base and ``derive``)."""
        if self.fn is None:
            raise ValueError(f"metric {self.name!r} is derived from {self.base!r}: score that and apply derive()")
        model = self.load(files or {}, device) if self.load is not None else None
        context = {"model": model, "batch_size": batch_size, "device": device}
        kw = {k: context[k] for k in self.fn_kwargs}
        fn = self.fn
        return lambda ref, rec: np.asarray(fn(ref, rec, **kw), dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class SetMetric(Metric):
    """A metric over the set of images at one rate point (FID, KID): features of the HiFiC
    patches of every original and every reconstruction, then ``from_features(ref, rec,
    patches_cfg) -> {column: value}`` (``columns``: what it adds to the per-set table, its own
    name first). ``load`` gives the feature network named ``extractor`` (loaded once and shared
    by the metrics that name the same one), ``features(patches uint8 (P, 3, p, p), model,
    batch_size) -> float (P, D)``."""

    per_image: bool = False
    extractor: str = "features"
    columns: Tuple[str, ...] = ()
    features: Optional[Callable[..., Any]] = None
    from_features: Optional[Callable[..., Dict[str, float]]] = None


METRICS: Registry[Metric] = Registry("metric")


def register(metric: Metric) -> Metric:
    """Add ``metric`` to ``METRICS`` under its name; returns it."""
    return METRICS.add(metric.name, metric)


def per_image_metrics(kind: Optional[str] = None) -> List[Metric]:
    """The registered per-image metrics (optionally of one ``kind``), in registration order:
    the order of the results columns."""
    return [m for m in METRICS.values() if m.per_image and (kind is None or m.kind == kind)]


def set_metrics() -> List[SetMetric]:
    """The registered per-set metrics, in registration order."""
    return [m for m in METRICS.values() if not m.per_image]  # type: ignore[misc]


def bd_axes() -> List[Metric]:
    """The metrics that are quality axes of the BD tables and RD figures, in registration order."""
    return [m for m in METRICS.values() if m.bd_axis]


def set_columns() -> List[str]:
    """The value columns of the per-set table: every ``SetMetric``'s ``columns``."""
    return [c for m in set_metrics() for c in (m.columns or (m.name,))]


def set_table_columns() -> List[str]:
    """Columns of the per-set table (``evaluate --set-out``): rate point, images, HiFiC patches,
    patch size, then every per-set metric's columns (FID; KID and its std)."""
    return ["rate_point", "n_images", "n_patches", "patch_size"] + set_columns()


def score_distortion(ref: Any, rec: Any) -> Dict[str, np.ndarray]:
    """Every registered distortion metric of two batches (N, 3, H, W) in [0, 255]: metrics with
    ``fn`` first, then the derived ones from their bases. ``{name: float64 (N,)}``."""
    out: Dict[str, np.ndarray] = {}
    metrics = per_image_metrics("distortion")
    for m in metrics:
        if m.derive is None:
            out[m.name] = m.setup()(ref, rec)
    for m in metrics:
        if m.derive is not None:
            out[m.name] = np.asarray(m.derive(out[m.base]), dtype=np.float64)
    return out


def curve_value(metric: Union[str, Metric], means: Mapping[str, float]) -> float:
    """The value of ``metric`` on an RD curve from the means over images at one rate point
    (``means``: column -> mean): the mean itself, or for a ``curve_of_mean`` derived metric
    ``derive(mean of base)``."""
    m = METRICS.get(metric) if isinstance(metric, str) else metric
    if m.curve_of_mean and m.derive is not None:
        return float(m.derive(np.array([means[m.base]], dtype=np.float64))[0])
    return float(means[m.name])
