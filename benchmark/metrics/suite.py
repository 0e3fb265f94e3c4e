"""The perceptual metrics of one evaluate run: which ones could be set up, the per-image scores,
the FID/KID patch features gathered over all images per rate point, and the status record
saying what was computed and what was missing, why, and which file it needs.

    suite = PerceptualSuite(load_metrics(params), mirror=resolve_mirror(params))
    for each image:                      # in manifest order
        scores = suite.score_image(ref, recs)          # {"lpips": (R,), "dists": (R,), "haarpsi": (R,)}
        suite.add_patches(ref, list(zip(rate_points, recs)))
    rows = suite.set_rows()              # FID / KID per rate point, with the patch count
    record = suite.status_record()       # JSON-ready

A metric whose weight files are missing (``benchmark.metrics.weights``) or do not load is
recorded as missing and left out (NaN in its columns); the others go on. Networks run on
``metrics.device`` (``auto``: CUDA when present), ``metrics.batch_size`` images or patches per call.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from benchmark.config import PERCEPTUAL_METRICS, ConfigError, MetricsConfig
from benchmark.metrics import fid as fidlib
from benchmark.metrics import perceptual
from benchmark.metrics.weights import ResolvedWeights, WeightsMissing, hub_cache_dir, resolve_weights

PathLike = Union[str, "os.PathLike[str]"]

PER_IMAGE_METRICS = ("lpips", "dists", "haarpsi")
SET_METRICS = ("fid", "kid")
SET_COLUMNS = ["rate_point", "n_images", "n_patches", "patch_size", "fid", "kid", "kid_std"]


@dataclass(frozen=True)
class PerceptualMetric:
    """What a perceptual metric is: display ``label``, direction, granularity, the weight files
    it needs (``WEIGHT_FILES`` keys), the package that implements it and the paper."""

    name: str
    label: str
    higher_is_better: bool
    per_image: bool
    weights: Tuple[str, ...]
    package: str
    reference: str


PERCEPTUAL: Dict[str, PerceptualMetric] = {
    m.name: m
    for m in (
        PerceptualMetric("lpips", "LPIPS (AlexNet, v0.1)", False, True, ("alexnet", "lpips_linear"), "lpips",
                         "Zhang et al., CVPR 2018"),
        PerceptualMetric("dists", "DISTS", False, True, ("vgg16", "dists"), "piq", "Ding et al., TPAMI 2020"),
        PerceptualMetric("haarpsi", "HaarPSI", True, True, (), "piq", "Reisenhofer et al., SPIC 2018"),
        PerceptualMetric("fid", "FID (256x256 patches)", False, False, ("inception",), "torch-fidelity",
                         "Heusel et al., NeurIPS 2017; patches as Mentzer et al. (HiFiC), NeurIPS 2020"),
        PerceptualMetric("kid", "KID (256x256 patches)", False, False, ("inception",), "torch-fidelity",
                         "Binkowski et al., ICLR 2018; patches as Mentzer et al. (HiFiC), NeurIPS 2020"),
    )
}
assert tuple(PERCEPTUAL) == PERCEPTUAL_METRICS


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as given.
    Raises ``ConfigError`` if CUDA is asked for and not available."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"metrics.device is {spec!r} but CUDA is not available (use auto or cpu)")
    return torch.device(spec)


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
        m = PERCEPTUAL[self.name]
        try:
            version = metadata.version(m.package)
        except metadata.PackageNotFoundError:
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
        set_level: compute FID/KID (needs somewhere to write them); False records them as
            "not computed".
        cache_dir: hub cache directory (default ``$TORCH_HOME/hub/checkpoints``, read now).

    Raises ``ConfigError`` for a CUDA device that is not available. Missing or unloadable
    weights never raise: they are recorded.
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
        self.device = resolve_device(cfg.device)
        self.cache_dir = hub_cache_dir() if cache_dir is None else cache_dir
        self.status: Dict[str, MetricStatus] = {}
        self.seconds: Dict[str, float] = {}
        self._models: Dict[str, torch.nn.Module] = {}
        self._files: Dict[str, Union[ResolvedWeights, WeightsMissing]] = {}
        self._mirror = mirror
        self._download_failed = False
        self._ref_features: List[torch.Tensor] = []
        self._rec_features: Dict[float, List[torch.Tensor]] = {}
        self._patch_counts: Dict[float, int] = {}
        self._n_images = 0
        for name in cfg.perceptual:
            if name in SET_METRICS and not set_level:
                self.status[name] = MetricStatus(name, "not computed", "no per-set output file was given (evaluate --set-out)")
                continue
            self.status[name] = self._setup(name)

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

    def _setup(self, name: str) -> MetricStatus:
        meta = PERCEPTUAL[name]
        files = {k: self._file(k) for k in meta.weights}
        found = [f.record() for f in files.values() if isinstance(f, ResolvedWeights)]
        missing = [f for f in files.values() if isinstance(f, WeightsMissing)]
        if missing:
            reason = "weight file(s) not available: " + ", ".join(m.file for m in missing)
            return MetricStatus(name, "missing", reason, [m.record() for m in missing], found)
        model_key = "inception" if name in SET_METRICS else name
        t0 = time.perf_counter()
        try:
            if model_key not in self._models:
                paths = {k: f.path for k, f in files.items()}
                if model_key == "lpips":
                    self._models[model_key] = perceptual.load_lpips(paths["alexnet"], paths["lpips_linear"], self.device)
                elif model_key == "dists":
                    self._models[model_key] = perceptual.load_dists(paths["vgg16"], paths["dists"], self.device)
                elif model_key == "inception":
                    self._models[model_key] = fidlib.load_inception(paths["inception"], self.device)
        except perceptual.WeightsLoadError as e:
            needs = [dict(WeightsMissing(k, f"it does not load ({e})", self.cache_dir).record()) for k in meta.weights]
            return MetricStatus(name, "missing", f"the weights do not load: {e}", needs, found)
        self._add_seconds("setup", time.perf_counter() - t0)
        return MetricStatus(name, "computed", "", [], found)

    def _add_seconds(self, what: str, s: float) -> None:
        self.seconds[what] = self.seconds.get(what, 0.0) + s

    # -- scoring ------------------------------------------------------------------------------

    def computed(self, name: str) -> bool:
        """True if ``name`` was requested and could be set up."""
        return name in self.status and self.status[name].status == "computed"

    def score_image(self, ref: np.ndarray, recs: Sequence[np.ndarray]) -> Dict[str, np.ndarray]:
        """Per-image metrics of reconstructions ``recs`` of one image ``ref``.

        Args:
            ref: uint8 (H, W, 3). recs: uint8 (H, W, 3) each (e.g. one per rate point).

        Returns:
            ``{name: float64 array (len(recs),)}`` for every name in ``PER_IMAGE_METRICS``;
            all NaN for a metric that is not computed.

        Raises:
            ValueError: an image that is not uint8 HxWx3 of ``ref``'s shape.
        """
        for r in recs:
            if r.shape != ref.shape or r.dtype != np.uint8 or ref.dtype != np.uint8 or ref.ndim != 3:
                raise ValueError(f"expected uint8 (H, W, 3) images of one shape, got {ref.dtype}{ref.shape} and {r.dtype}{r.shape}")
        n = len(recs)
        out = {name: np.full(n, np.nan) for name in PER_IMAGE_METRICS}
        if n == 0:
            return out
        a = torch.from_numpy(np.require(ref, requirements=["C", "W"])).permute(2, 0, 1)[None]
        b = torch.from_numpy(np.stack(recs)).permute(0, 3, 1, 2)
        bs = self.cfg.batch_size
        for name in PER_IMAGE_METRICS:
            if not self.computed(name):
                continue
            t0 = time.perf_counter()
            if name == "lpips":
                out[name] = perceptual.lpips_distance(a, b, self._models["lpips"], bs)
            elif name == "dists":
                out[name] = perceptual.dists_distance(a, b, self._models["dists"], bs)
            elif name == "haarpsi":
                out[name] = perceptual.haarpsi(a, b, bs, self.device)
            self._add_seconds(name, time.perf_counter() - t0)
        return out

    @property
    def wants_patches(self) -> bool:
        """True if FID or KID is computed (then ``add_patches`` does work)."""
        return any(self.computed(m) for m in SET_METRICS)

    def add_patches(self, ref: np.ndarray, recs: Sequence[Tuple[float, np.ndarray]]) -> None:
        """Add the HiFiC patches of one image to the FID/KID sets: the original's patches once,
        each reconstruction's to its rate point's set. ``ref`` and every rec are uint8 (H, W, 3).
        Patches are counted even when FID/KID are not computed; an image smaller than one patch
        adds nothing. Call once per image, in a fixed order (KID's subsets depend on the order).
        Raises ``ValueError`` as ``extract_patches``."""
        p = self.cfg.patch_size
        n = len(fidlib.patch_origins(ref.shape[0], ref.shape[1], p))
        self._n_images += 1
        for rp, _ in recs:
            self._patch_counts[float(rp)] = self._patch_counts.get(float(rp), 0) + n
        if not self.wants_patches or n == 0:
            return
        t0 = time.perf_counter()
        model = self._models["inception"]
        self._ref_features.append(fidlib.inception_features(fidlib.extract_patches(ref, p), model, self.cfg.batch_size))
        for rp, rec in recs:
            feats = fidlib.inception_features(fidlib.extract_patches(rec, p), model, self.cfg.batch_size)
            self._rec_features.setdefault(float(rp), []).append(feats)
        self._add_seconds("inception features", time.perf_counter() - t0)

    def set_rows(self) -> List[Dict[str, Any]]:
        """One dict per rate point (in the order first added) with ``SET_COLUMNS``: images,
        patches, patch size, FID, KID mean and std (NaN where not computed or under 2 patches;
        the patch count is given either way)."""
        ref = torch.cat(self._ref_features) if self._ref_features else torch.zeros((0, 2048))
        rows = []
        for rp, n_patches in self._patch_counts.items():
            parts = self._rec_features.get(rp, [])
            rec = torch.cat(parts) if parts else torch.zeros((0, 2048))
            t0 = time.perf_counter()
            fid = fidlib.fid_from_features(rec, ref) if self.computed("fid") else float("nan")
            kid, kid_std = (
                fidlib.kid_from_features(rec, ref, self.cfg.kid_subsets, self.cfg.kid_subset_size)
                if self.computed("kid") else (float("nan"), float("nan"))
            )
            if self.wants_patches:
                self._add_seconds("fid/kid statistics", time.perf_counter() - t0)
            rows.append({
                "rate_point": rp, "n_images": self._n_images, "n_patches": n_patches,
                "patch_size": self.cfg.patch_size, "fid": fid, "kid": kid, "kid_std": kid_std,
            })
        return rows

    def status_record(self) -> Dict[str, Any]:
        """JSON-ready record: device, patch protocol, one ``MetricStatus.record()`` per requested
        metric, and seconds spent per part (setup, each metric, Inception features, statistics)."""
        return {
            "device": str(self.device),
            "batch_size": self.cfg.batch_size,
            "patch_size": self.cfg.patch_size,
            "patch_protocol": "HiFiC (Mentzer et al. 2020): non-overlapping grid + grid shifted by half a patch",
            "kid": {"subsets": self.cfg.kid_subsets, "subset_size": self.cfg.kid_subset_size, "seed": fidlib.KID_SEED},
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


# --- registry entries: the metrics as plain functions with default weights -----------------------

_DEFAULT_MODELS: Dict[Tuple[str, str], torch.nn.Module] = {}


def _default_model(name: str) -> torch.nn.Module:
    """The network of ``name`` with weights resolved with defaults (hub cache, then the mirror of
    ``$BENCHMARK_MIRROR``, no download), cached per weight path. Raises ``WeightsMissing``."""
    from benchmark.config import resolve_mirror

    keys = PERCEPTUAL[name].weights
    files = [resolve_weights(k, mirror=resolve_mirror(None)) for k in keys]
    cache_key = (name, "|".join(str(f.path) for f in files))
    if cache_key not in _DEFAULT_MODELS:
        if name == "lpips":
            _DEFAULT_MODELS[cache_key] = perceptual.load_lpips(files[0].path, files[1].path)
        elif name == "dists":
            _DEFAULT_MODELS[cache_key] = perceptual.load_dists(files[0].path, files[1].path)
        else:
            _DEFAULT_MODELS[cache_key] = fidlib.load_inception(files[0].path)
    return _DEFAULT_MODELS[cache_key]


def lpips_metric(ref, rec) -> np.ndarray:
    """LPIPS (AlexNet, v0.1) per image of (N, 3, H, W) batches in [0, 255], default weights; (N,)
    float64. Raises ``WeightsMissing`` naming the file when the backbone is not in place."""
    return perceptual.lpips_distance(ref, rec, _default_model("lpips"))


def dists_metric(ref, rec) -> np.ndarray:
    """DISTS distance per image of (N, 3, H, W) batches in [0, 255], default weights; (N,)
    float64. Raises ``WeightsMissing`` naming the file when a weight file is not in place."""
    return perceptual.dists_distance(ref, rec, _default_model("dists"))


def _set_features(batch, name: str) -> torch.Tensor:
    t = perceptual._batch(batch, name)
    if t.dtype != torch.uint8:
        t = t.round().clamp(0, 255).to(torch.uint8)
    model = _default_model("fid")
    parts = [fidlib.inception_features(fidlib.extract_patches(img.permute(1, 2, 0).numpy()), model) for img in t]
    return torch.cat(parts)


def fid_metric(ref, rec) -> float:
    """FID between the HiFiC 256x256 patches of two (N, 3, H, W) batches in [0, 255] (rounded to
    uint8), default weights; one value for the set. Raises ``WeightsMissing`` as above."""
    return fidlib.fid_from_features(_set_features(rec, "rec"), _set_features(ref, "ref"))


def kid_metric(ref, rec) -> float:
    """KID (mean over 100 subsets) between the HiFiC patches of two batches, as ``fid_metric``."""
    return fidlib.kid_from_features(_set_features(rec, "rec"), _set_features(ref, "ref"))[0]


def _register() -> None:
    from benchmark.metrics.base import METRICS, MetricInfo
    from benchmark.metrics.weights import WEIGHT_FILES

    fns = {"lpips": lpips_metric, "dists": dists_metric, "haarpsi": perceptual.haarpsi, "fid": fid_metric, "kid": kid_metric}
    for name, m in PERCEPTUAL.items():
        weights = " + ".join(WEIGHT_FILES[k].file for k in m.weights) or None
        METRICS.register(name)(MetricInfo(name, "", m.higher_is_better, m.per_image, fns[name], weights=weights, reference=m.reference))


_register()
