"""params.yaml -> frozen dataclasses, validated once, with errors that name the key.

Each stage loads only the section it uses (``load_dataset``, ``load_codec``, ...), so that
what DVC tracks as a stage's params (dvc.yaml) is exactly what the stage reads.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

MIRROR_ENV = "BENCHMARK_MIRROR"


class ConfigError(ValueError):
    """A missing or invalid setting; the message names the file and the key."""


def read_params(path: "str | os.PathLike[str]") -> Dict[str, Any]:
    """Read a params YAML file into a dict. Raises ``ConfigError`` if unreadable or not a mapping.

    Parsed as YAML 1.2 with ruamel.yaml, as DVC parses it: both see the same values (YAML 1.1
    parsers such as PyYAML read an unquoted ``4:2:0``, which ``dvc exp run -S`` writes, as the
    base-60 integer 14520).
    """
    p = Path(path)
    try:
        with p.open() as f:
            data = YAML(typ="safe", pure=True).load(f)
    except OSError as e:
        raise ConfigError(f"{p}: cannot read params file ({e.strerror})") from None
    except YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return data


def _section(params: Mapping[str, Any], dotted: str, source: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"{source}: missing key {dotted!r}")
        node = node[part]
    return node


def params_hash(section: Any) -> str:
    """First 12 hex digits of the SHA-256 of a params section as canonical JSON."""
    blob = json.dumps(section, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass(frozen=True)
class DatasetConfig:
    """One entry of ``datasets``: where images come from.

    ``source`` is a registered dataset source (``builtin``, ``kodak``, ``folder``, ``bsds500``,
    ``wikipedia-photos``, ``coco``).
    ``images`` optionally selects images by name; ``max_images`` keeps the first N (sorted).
    ``references`` are URLs of published RD curves (CompressAI results-JSON) for this set.
    """

    name: str
    source: str
    path: Optional[str] = None
    images: Optional[Tuple[str, ...]] = None
    max_images: Optional[int] = None
    references: Tuple[str, ...] = ()
    alpha: str = "refuse"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class CodecConfig:
    """One entry of ``codecs``: a registered codec class, its rate points and options."""

    name: str
    codec: str
    rate_points: Tuple[float, ...]
    options: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def hash(self) -> str:
        return params_hash(self.raw)


@dataclass(frozen=True)
class ReportConfig:
    """The ``report`` section. ``anchor``: our codec every BD-rate is computed against;
    ``reference_anchor``: the published curve (by name) likewise; ``bd_methods``: Bjontegaard
    interpolations; ``max_bpp``: RD figures' x limit; ``counterparts``: our codec -> published
    curve of the same codec; ``pairs``: extra (test, anchor) pairs of our codecs, computed where
    both are in the run (e.g. the hierarchical VAE against the single-layer one)."""

    anchor: str = "jpeg"
    reference_anchor: Optional[str] = "VTM"
    bd_methods: Tuple[str, ...] = ("cubic", "pchip")
    max_bpp: float = 2.0
    counterparts: Mapping[str, str] = field(default_factory=dict)
    pairs: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CheckConfig:
    bpp_rel: float = 0.005
    psnr: float = 0.02
    ms_ssim_db: float = 0.02


def resolve_mirror(params: Optional[Mapping[str, Any]] = None, override: Optional[str] = None) -> Optional[Path]:
    """The mirror directory: ``override`` (CLI) > ``data.mirror`` > ``$BENCHMARK_MIRROR`` > None."""
    value = override
    if value is None and params is not None:
        value = (params.get("data") or {}).get("mirror")
    if value is None:
        value = os.environ.get(MIRROR_ENV) or None
    return Path(value).expanduser() if value else None


def _opt_int(v: Any, key: str, source: str) -> Optional[int]:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ConfigError(f"{source}: {key} must be a positive integer or null, got {v!r}")
    return v


def load_dataset(params: Mapping[str, Any], name: str, source: str = "params.yaml") -> DatasetConfig:
    raw = _section(params, f"datasets.{name}", source)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: datasets.{name} must be a mapping")
    if "source" not in raw:
        raise ConfigError(f"{source}: datasets.{name}.source is missing (a registered source: builtin, kodak, folder, bsds500, wikipedia-photos, coco)")
    images = raw.get("images")
    if images is not None and (not isinstance(images, list) or not all(isinstance(i, str) for i in images)):
        raise ConfigError(f"{source}: datasets.{name}.images must be a list of names")
    refs = raw.get("references") or []
    if not isinstance(refs, list):
        raise ConfigError(f"{source}: datasets.{name}.references must be a list of URLs")
    alpha = raw.get("alpha", "refuse")
    if alpha not in ("refuse", "flatten"):
        raise ConfigError(f"{source}: datasets.{name}.alpha must be 'refuse' or 'flatten', got {alpha!r}")
    if raw["source"] == "folder" and not raw.get("path"):
        raise ConfigError(f"{source}: datasets.{name}.path is required for a folder source")
    return DatasetConfig(
        name=name,
        source=str(raw["source"]),
        path=raw.get("path"),
        images=tuple(images) if images is not None else None,
        max_images=_opt_int(raw.get("max_images"), f"datasets.{name}.max_images", source),
        references=tuple(str(r) for r in refs),
        alpha=alpha,
        raw=dict(raw),
    )


def load_codec(params: Mapping[str, Any], name: str, source: str = "params.yaml") -> CodecConfig:
    raw = _section(params, f"codecs.{name}", source)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: codecs.{name} must be a mapping")
    for key in ("codec", "rate_points"):
        if key not in raw:
            raise ConfigError(f"{source}: codecs.{name}.{key} is missing")
    rps = raw["rate_points"]
    if not isinstance(rps, list) or not rps or not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in rps):
        raise ConfigError(f"{source}: codecs.{name}.rate_points must be a non-empty list of numbers")
    if len(set(rps)) != len(rps):
        raise ConfigError(f"{source}: codecs.{name}.rate_points has duplicates: {rps}")
    options = raw.get("options") or {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{source}: codecs.{name}.options must be a mapping")
    return CodecConfig(name=name, codec=str(raw["codec"]), rate_points=tuple(rps), options=dict(options), raw=dict(raw))


def load_report(params: Mapping[str, Any], source: str = "params.yaml") -> ReportConfig:
    raw = params.get("report") or {}
    methods = tuple(raw.get("bd_methods", ("cubic", "pchip")))
    for m in methods:
        if m not in ("cubic", "pchip", "akima"):
            raise ConfigError(f"{source}: report.bd_methods: unknown method {m!r} (cubic, pchip, akima)")
    pairs = raw.get("pairs") or []
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(c, str) for c in p) and p[0] != p[1] for p in pairs
    ):
        raise ConfigError(f"{source}: report.pairs must be a list of [test codec, anchor codec] pairs, got {pairs!r}")
    return ReportConfig(
        pairs=tuple((str(a), str(b)) for a, b in pairs),
        anchor=str(raw.get("anchor", "jpeg")),
        reference_anchor=raw.get("reference_anchor", "VTM"),
        bd_methods=methods,
        max_bpp=float(raw.get("max_bpp", 2.0)),
        counterparts={str(k): str(v) for k, v in (raw.get("published_counterparts") or {}).items()},
    )


def load_check(params: Mapping[str, Any], source: str = "params.yaml") -> CheckConfig:
    raw = (params.get("check") or {}).get("tolerances") or {}
    known = {"bpp_rel", "psnr", "ms_ssim_db"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{source}: check.tolerances: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    vals = {}
    for k, v in raw.items():
        if not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(f"{source}: check.tolerances.{k} must be a non-negative number, got {v!r}")
        vals[k] = float(v)
    return CheckConfig(**vals)


PERCEPTUAL_METRICS = ("lpips", "dists", "haarpsi", "fid", "kid")
WEIGHT_KEYS = ("alexnet", "lpips_linear", "vgg16", "dists", "inception")


@dataclass(frozen=True)
class MetricsConfig:
    """The ``metrics`` section: perceptual metrics scored by evaluate and their figures.

    ``perceptual``: which of ``PERCEPTUAL_METRICS`` to compute. ``weights``: explicit weight
    files by key of ``WEIGHT_KEYS`` (None: the torch hub cache, then the mirror).
    ``download``: fetch missing weights from their URL. ``patch_size``: side of the HiFiC FID/KID
    patches (px). ``kid_subsets``/``kid_subset_size``: KID's subsets (the size is capped at the
    patch count). ``fid_indicative_below``: FID/KID over fewer patches are marked indicative.
    ``dp_rates``: rates (bpp) of the distortion-perception figure. ``device``: ``auto`` (CUDA
    when present), ``cpu`` or ``cuda[:N]``. ``batch_size``: images or patches per network call.
    """

    perceptual: Tuple[str, ...] = PERCEPTUAL_METRICS
    weights: Mapping[str, Optional[str]] = field(default_factory=dict)
    download: bool = True
    patch_size: int = 256
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    fid_indicative_below: int = 1000
    dp_rates: Tuple[float, ...] = (0.25, 0.5, 1.0)
    device: str = "auto"
    batch_size: int = 8


def load_metrics(params: Mapping[str, Any], source: str = "params.yaml") -> MetricsConfig:
    """``MetricsConfig`` from ``params['metrics']`` (defaults for what is absent; no section:
    all defaults). Raises ``ConfigError`` naming the key for unknown metrics or weight keys,
    non-positive sizes, or a bad device."""
    raw = params.get("metrics") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: metrics must be a mapping")
    known = {"perceptual", "weights", "download", "patches", "figures", "device", "batch_size"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{source}: metrics: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    perceptual = raw.get("perceptual", list(PERCEPTUAL_METRICS))
    if not isinstance(perceptual, list) or any(m not in PERCEPTUAL_METRICS for m in perceptual):
        raise ConfigError(f"{source}: metrics.perceptual must be a list out of {list(PERCEPTUAL_METRICS)}, got {perceptual!r}")
    weights = raw.get("weights") or {}
    if not isinstance(weights, Mapping) or set(weights) - set(WEIGHT_KEYS):
        raise ConfigError(f"{source}: metrics.weights: keys must be among {list(WEIGHT_KEYS)}, got {weights!r}")
    for k, v in weights.items():
        if v is not None and not isinstance(v, str):
            raise ConfigError(f"{source}: metrics.weights.{k} must be a file path or null, got {v!r}")
    for sec, keys in (("patches", {"size", "kid_subsets", "kid_subset_size"}), ("figures", {"fid_indicative_below", "dp_rates"})):
        node = raw.get(sec) or {}
        if not isinstance(node, Mapping) or set(node) - keys:
            raise ConfigError(f"{source}: metrics.{sec}: keys must be among {sorted(keys)}, got {node!r}")
    patches = raw.get("patches") or {}
    figures = raw.get("figures") or {}

    def pos_int(v: Any, key: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{source}: {key} must be a positive integer, got {v!r}")
        return v

    rates = figures.get("dp_rates", [0.25, 0.5, 1.0])
    if not isinstance(rates, list) or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in rates):
        raise ConfigError(f"{source}: metrics.figures.dp_rates must be a list of positive rates in bpp, got {rates!r}")
    device = str(raw.get("device", "auto"))
    if device != "auto" and device != "cpu" and not (device == "cuda" or device.startswith("cuda:")):
        raise ConfigError(f"{source}: metrics.device must be auto, cpu, cuda or cuda:N, got {device!r}")
    download = raw.get("download", True)
    if not isinstance(download, bool):
        raise ConfigError(f"{source}: metrics.download must be true or false, got {download!r}")
    return MetricsConfig(
        perceptual=tuple(dict.fromkeys(perceptual)),
        weights={str(k): (None if v is None else str(v)) for k, v in weights.items()},
        download=download,
        patch_size=pos_int(patches.get("size", 256), "metrics.patches.size"),
        kid_subsets=pos_int(patches.get("kid_subsets", 100), "metrics.patches.kid_subsets"),
        kid_subset_size=pos_int(patches.get("kid_subset_size", 1000), "metrics.patches.kid_subset_size"),
        fid_indicative_below=pos_int(figures.get("fid_indicative_below", 1000), "metrics.figures.fid_indicative_below"),
        dp_rates=tuple(float(r) for r in rates),
        device=device,
        batch_size=pos_int(raw.get("batch_size", 8), "metrics.batch_size"),
    )
