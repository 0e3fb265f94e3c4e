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

    ``source`` is a registered dataset source (``builtin``, ``kodak``, ``folder``, ``bsds500``, ``coco``).
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
    anchor: str = "jpeg"
    reference_anchor: Optional[str] = "VTM"
    bd_methods: Tuple[str, ...] = ("cubic", "pchip")
    max_bpp: float = 2.0
    counterparts: Mapping[str, str] = field(default_factory=dict)


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
        raise ConfigError(f"{source}: datasets.{name}.source is missing (a registered source: builtin, kodak, folder, bsds500, coco)")
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
    return ReportConfig(
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
