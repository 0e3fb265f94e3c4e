"""The perceptual metrics of one evaluate run: which ones could be set up, the per-image scores,
the per-set features gathered over all images per rate point, and the status record saying what
was computed and what was missing, why, and which file it needs.

    suite = PerceptualSuite(cfg.metrics, mirror=cfg.mirror())
    for each image:                      # in manifest order
        scores = suite.score_image(ref, recs)          # {"lpips": (R,), "dists": (R,), "haarpsi": (R,)}
        suite.add_patches(ref, list(zip(rate_points, recs)))
    rows = suite.set_rows()              # FID / KID per rate point, with the patch count
    record = suite.status_record()       # JSON-ready

The metrics are the registered ``perception`` metrics named in ``metrics.perceptual``
(``benchmark.metrics.base.METRICS``). A metric whose weight files are missing
(``benchmark.metrics.weights``) or do not load is recorded as missing and left out (NaN in its
columns); the others go on. Networks run on ``metrics.device`` (``auto``: CUDA when present),
``metrics.batch_size`` images or patches per call; a feature network shared by several per-set
metrics (Inception for FID and KID) is loaded and run once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from benchmark.config import ConfigError, MetricsConfig
from benchmark.metrics import fid as fidlib
from benchmark.metrics.base import METRICS, Metric, SetMetric, per_image_metrics, set_columns
from benchmark.metrics.perceptual import WeightsLoadError
from benchmark.metrics.weights import WEIGHT_FILES, ResolvedWeights, WeightsMissing, hub_cache_dir, resolve_weights
from benchmark.registry import unknown_name

PathLike = Union[str, "os.PathLike[str]"]

PATCH_PROTOCOL = "HiFiC (Mentzer et al. 2020): non-overlapping grid + grid shifted by half a patch"
STACK_BYTES = 1 << 28  # an image's reconstructions are scored in one batch up to this many bytes (256 MB), else one by one


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as given.
    Raises ``ConfigError`` if CUDA is asked for and not available."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"metrics.device is {spec!r} but CUDA is not available (use auto or cpu)")
    return torch.device(spec)


def perceptual_metrics(names: Sequence[str]) -> List[Metric]:
    """The registered perception metrics named in ``metrics.perceptual``, in that order.
    Raises ``ConfigError`` naming an unknown one (with the known names and the closest)."""
    known = [m.name for m in METRICS.values() if m.kind == "perception"]
    for n in names:
        if n not in known:
            raise ConfigError(str(unknown_name("perceptual metric", n, known, "metrics.perceptual")))
    return [METRICS.get(n) for n in dict.fromkeys(names)]


@dataclass
class MetricStatus:
    """The outcome for one requested metric: ``status`` is "computed", "missing" (weights missing
    or not loadable: ``reason`` and ``needs``, one ``WeightsMissing.record()`` per file) or
    "not computed" (``reason``: e.g. no per-set output). ``weights``: the files used."""

    name: str
    status: str
    reason: str = ""
    needs: List[Dict[str, Any]] = field(default_factory=list)
    weights: List[Dict[str, Any]] = field(default_factory=list)

    def record(self) -> Dict[str, Any]:
        m = METRICS.get(self.name)
        try:
            version = metadata.version(m.package)
        except (metadata.PackageNotFoundError, ValueError):
            version = "missing"
        return {
            "status": self.status,
            "label": m.label,
            "reason": self.reason,
            "needs": self.needs,
            "weights": self.weights,
            "package": f"{m.package} {version}",
            "reference": m.reference,
            "per_image": m.per_image,
            "higher_is_better": m.higher_is_better,
        }


class PerceptualSuite:
    """Set up the metrics of ``cfg.perceptual`` (see the module docstring).

    Args:
        cfg: the ``metrics`` params.
        mirror: mirror directory for weight files (or None).
        set_level: compute per-set metrics (needs somewhere to write them); False records them
            as "not computed".
        cache_dir: hub cache directory (default ``$TORCH_HOME/hub/checkpoints``, read now).

    Raises ``ConfigError`` for an unknown metric or weight key, or a CUDA device that is not
    available. Missing or unloadable weights never raise: they are recorded.
    """

    def __init__(
        self,
        cfg: MetricsConfig,
        *,
        mirror: Optional[PathLike] = None,
        set_level: bool = True,
        cache_dir: Optional[PathLike] = None,
    ) -> None:
        self.cfg = cfg
        self.metrics = perceptual_metrics(cfg.perceptual)
        for key in cfg.weights:
            if key not in WEIGHT_FILES:
                raise ConfigError(str(unknown_name("weight file", key, WEIGHT_FILES, "metrics.weights")))
        self.device = resolve_device(cfg.device)
        self.cache_dir = hub_cache_dir() if cache_dir is None else cache_dir
        self.status: Dict[str, MetricStatus] = {}
        self.seconds: Dict[str, float] = {}
        self._scorers: Dict[str, Any] = {}
        self._networks: Dict[str, Any] = {}
        self._files: Dict[str, Union[ResolvedWeights, WeightsMissing]] = {}
        self._mirror = mirror
        self._download_failed = False
        self._ref_features: Dict[str, List[torch.Tensor]] = {}
        self._rec_features: Dict[str, Dict[float, List[torch.Tensor]]] = {}
        self._patch_counts: Dict[float, int] = {}
        self._n_images = 0
        for m in self.metrics:
            if not m.per_image and not set_level:
                self.status[m.name] = MetricStatus(m.name, "not computed", "no per-set output file was given (evaluate --set-out)")
                continue
            self.status[m.name] = self._setup(m)

    # -- setup --------------------------------------------------------------------------------

    def _file(self, key: str) -> Union[ResolvedWeights, WeightsMissing]:
        """Resolve one weight file once. After a download has failed (no network, most likely),
        no further download is tried in this run: offline, each would fail again after its retries."""
        if key not in self._files:
            download = self.cfg.download and not self._download_failed
            try:
                self._files[key] = resolve_weights(
                    key, explicit=self.cfg.weights.get(key), cache_dir=self.cache_dir, mirror=self._mirror,
                    download=download,
                )
            except WeightsMissing as e:
                if "the download failed" in e.reason:
                    self._download_failed = True
                elif self.cfg.download and not download:
                    e = WeightsMissing(key, e.reason.replace(
                        "downloading is off (metrics.download)", "no download was tried (an earlier one in this run failed)"
                    ), self.cache_dir)
                self._files[key] = e
        return self._files[key]

    def _setup(self, m: Metric) -> MetricStatus:
        files = {k: self._file(k) for k in m.weights}
        found = [f.record() for f in files.values() if isinstance(f, ResolvedWeights)]
        missing = [f for f in files.values() if isinstance(f, WeightsMissing)]
        if missing:
            reason = "weight file(s) not available: " + ", ".join(f.file for f in missing)
            return MetricStatus(m.name, "missing", reason, [f.record() for f in missing], found)
        paths = {k: f.path for k, f in files.items()}
        t0 = time.perf_counter()
        try:
            if isinstance(m, SetMetric):
                if m.extractor not in self._networks:
                    self._networks[m.extractor] = m.load(paths, self.device)
            else:
                self._scorers[m.name] = m.setup(paths, self.device, self.cfg.batch_size)
        except WeightsLoadError as e:
            needs = [dict(WeightsMissing(k, f"it does not load ({e})", self.cache_dir).record()) for k in m.weights]
            return MetricStatus(m.name, "missing", f"the weights do not load: {e}", needs, found)
        self._add_seconds("setup", time.perf_counter() - t0)
        return MetricStatus(m.name, "computed", "", [], found)

    def _add_seconds(self, what: str, s: float) -> None:
        self.seconds[what] = self.seconds.get(what, 0.0) + s

    # -- scoring ------------------------------------------------------------------------------

    def computed(self, name: str) -> bool:
        """True if ``name`` was requested and could be set up."""
        return name in self.status and self.status[name].status == "computed"

    def score_image(self, ref: np.ndarray, recs: Sequence[np.ndarray]) -> Dict[str, np.ndarray]:
        """Per-image perception metrics of reconstructions ``recs`` of one image ``ref``.

        Args:
            ref: uint8 (H, W, 3). recs: uint8 (H, W, 3) each (e.g. one per rate point).

        Returns:
            ``{name: float64 array (len(recs),)}`` for every registered per-image perception
            metric; all NaN for a metric that is not computed.

        Raises:
            ValueError: an image that is not uint8 HxWx3 of ``ref``'s shape.
        """
        for r in recs:
            if r.shape != ref.shape or r.dtype != np.uint8 or ref.dtype != np.uint8 or ref.ndim != 3:
                raise ValueError(f"expected uint8 (H, W, 3) images of one shape, got {ref.dtype}{ref.shape} and {r.dtype}{r.shape}")
        n = len(recs)
        names = [m.name for m in per_image_metrics("perception")]
        out = {name: np.full(n, np.nan) for name in names}
        if n == 0:
            return out
        a = torch.from_numpy(np.require(ref, requirements=["C", "W"])).permute(2, 0, 1)[None]
        # One batch of all reconstructions, or one at a time where that batch would be large
        # (then no stacked copy: a 24 MP image at 19 rate points would need 1.4 GB for it).
        stack = n * ref.size <= STACK_BYTES
        batches = [np.stack(recs)] if stack else [np.asarray(r)[None] for r in recs]
        for name in names:
            if name in self._scorers and self.computed(name):
                t0 = time.perf_counter()
                parts = [self._scorers[name](a, torch.from_numpy(np.require(x, requirements=["C", "W"])).permute(0, 3, 1, 2))
                         for x in batches]
                out[name] = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in parts])
                self._add_seconds(name, time.perf_counter() - t0)
        return out

    def _set_metrics(self) -> List[SetMetric]:
        return [m for m in self.metrics if isinstance(m, SetMetric) and self.computed(m.name)]

    @property
    def wants_patches(self) -> bool:
        """True if a per-set metric is computed (then ``add_patches`` does work)."""
        return bool(self._set_metrics())

    def add_patches(self, ref: np.ndarray, recs: Sequence[Tuple[float, np.ndarray]]) -> None:
        """Add the HiFiC patches of one image to the per-set features: the original's patches
        once, each reconstruction's to its rate point's set. ``ref`` and every rec are uint8
        (H, W, 3). Patches are counted even when no per-set metric is computed; an image smaller
        than one patch adds nothing. Call once per image, in a fixed order (KID's subsets depend
        on the order). Raises ``ValueError`` as ``extract_patches``."""
        p = self.cfg.patches.size
        n = len(fidlib.patch_origins(ref.shape[0], ref.shape[1], p))
        self._n_images += 1
        for rp, _ in recs:
            self._patch_counts[float(rp)] = self._patch_counts.get(float(rp), 0) + n
        if n == 0:
            return
        for extractor, fn in {m.extractor: m.features for m in self._set_metrics()}.items():
            t0 = time.perf_counter()
            model, bs = self._networks[extractor], self.cfg.batch_size
            self._ref_features.setdefault(extractor, []).append(fn(fidlib.extract_patches(ref, p), model, bs))
            for rp, rec in recs:
                feats = fn(fidlib.extract_patches(rec, p), model, bs)
                self._rec_features.setdefault(extractor, {}).setdefault(float(rp), []).append(feats)
            self._add_seconds(f"{extractor} features", time.perf_counter() - t0)

    def set_rows(self) -> List[Dict[str, Any]]:
        """One dict per rate point (in the order first added) with ``set_table_columns()``:
        images, patches, patch size, and each per-set metric's values (NaN where not computed
        or under 2 patches; the patch count is given either way)."""
        computed = self._set_metrics()
        label = "/".join(m.name for m in computed) + " statistics"
        rows = []
        for rp, n_patches in self._patch_counts.items():
            row = {"rate_point": rp, "n_images": self._n_images, "n_patches": n_patches, "patch_size": self.cfg.patches.size}
            row.update({c: float("nan") for c in set_columns()})
            t0 = time.perf_counter()
            for m in computed:
                ref = torch.cat(self._ref_features.get(m.extractor) or [torch.zeros((0, 2048))])
                rec = torch.cat(self._rec_features.get(m.extractor, {}).get(rp) or [torch.zeros((0, ref.shape[1]))])
                row.update(m.from_features(ref, rec, self.cfg.patches))
            if computed:
                self._add_seconds(label, time.perf_counter() - t0)
            rows.append(row)
        return rows

    def status_record(self) -> Dict[str, Any]:
        """JSON-ready record: device, patch protocol, one ``MetricStatus.record()`` per requested
        metric, and seconds spent per part (setup, each metric, features, statistics)."""
        return {
            "device": str(self.device),
            "batch_size": self.cfg.batch_size,
            "patch_size": self.cfg.patches.size,
            "patch_protocol": PATCH_PROTOCOL,
            "kid": {"subsets": self.cfg.patches.kid_subsets, "subset_size": self.cfg.patches.kid_subset_size, "seed": fidlib.KID_SEED},
            "metrics": {name: s.record() for name, s in self.status.items()},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def missing_summary(record: Mapping[str, Any]) -> List[str]:
    """One line per missing metric of a status record: the metric, why, and where each file goes."""
    lines = []
    for name, r in (record.get("metrics") or {}).items():
        if r.get("status") == "missing":
            files = ", ".join(f"{n['file']} at {n['put_at']}" for n in r.get("needs", []))
            why = "; ".join(f"{n['file']}: {n['reason']}" for n in r.get("needs", []))
            lines.append(f"{name}: {r.get('reason', '')} ({why}). Put {files}")
    return lines
