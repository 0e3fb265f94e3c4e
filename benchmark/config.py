"""params.yaml -> one frozen, typed ``Config``, validated once, with errors that name the key.

Every section of params.yaml has a frozen dataclass here (validated by pydantic); unknown keys
are errors that list the valid names and the closest one, and defaults live in these classes
only. A stage loads the whole file once (``load_config``) and uses its own section; what DVC
tracks as the stage's params (dvc.yaml) is what the stage reads.

Two kinds of options are typed by the part that owns them and parsed strictly with
:func:`parse_options` when that part is built, so that this module never imports a codec or a
data source (which would make every stage depend on every codec): a data set's source-specific
keys (``DatasetConfig.options``) and a codec's ``options``.

**Runs.** ``params.yaml`` holds every setting and the default run. Another run (the Kodak run:
``runs/kodak/params.yaml``) is an *overlay*: a params file that sets only the run keys
(``RUN_KEYS``: which data sets, training set, budget, models, qualities and codecs) and is
merged over the params.yaml of the project root (``run.root``, relative to the overlay's
directory). The run's dvc.yaml (a link to the root one) reads the overlay for its templates, and
its stages track the run keys in the overlay and everything else in params.yaml.

**Plugins.** ``plugins`` lists modules imported once the file is read, before any registry is
used: codecs, metrics, data set sources and architectures from outside the package register
themselves there (README "Extending").
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, Literal, Mapping, Optional, Sequence, Tuple, Union

from pydantic import ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError
from pydantic.dataclasses import dataclass
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from typing_extensions import Annotated

from benchmark.errors import BenchmarkError
from benchmark.registry import unknown_name

MIRROR_ENV = "BENCHMARK_MIRROR"
PARAMS_FILE = "params.yaml"

_STRICT = ConfigDict(extra="forbid")

PosInt = Annotated[StrictInt, Field(gt=0)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]
Number = Union[StrictInt, StrictFloat]
PosNumber = Annotated[Union[StrictInt, StrictFloat], Field(gt=0)]
NonNegNumber = Annotated[Union[StrictInt, StrictFloat], Field(ge=0)]
Names = Tuple[StrictStr, ...]


class ConfigError(BenchmarkError, ValueError):
    """A missing or invalid setting; the message names the file and the key."""


def params_hash(section: Any) -> str:
    """First 12 hex digits of the SHA-256 of a params section as canonical JSON."""
    blob = json.dumps(section, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


# --- sections ------------------------------------------------------------------------------


@dataclass(frozen=True, config=_STRICT)
class RunConfig:
    """``run``: where this params file sits, for dvc.yaml's templates. ``root``: the project
    root relative to the file's directory (``.`` for params.yaml, ``../..`` for
    ``runs/<run>/params.yaml``); ``params``: the file's path from the project root (stages are
    passed ``--params <it>`` and track the run keys in it)."""

    root: StrictStr = "."
    params: StrictStr = PARAMS_FILE


@dataclass(frozen=True, config=_STRICT)
class DataConfig:
    """``data``: ``eval``, the data sets evaluated (names under ``datasets``); ``mirror``, a
    directory laid out as ``<host>/<url path>`` tried before the network (None: the
    ``BENCHMARK_MIRROR`` environment variable, else the network only)."""

    eval: Names = ("builtin",)
    mirror: Optional[StrictStr] = None


DATASET_KEYS = ("source", "images", "max_images", "references")


@dataclass(frozen=True, config=_STRICT)
class DatasetConfig:
    """One entry of ``datasets``: where images come from.

    ``source``: a registered data set source (``builtin``, ``kodak``, ``folder``, ``bsds500``,
    ``wikipedia-photos``, ``coco``, or a plugin's). ``images``: names to keep; ``max_images``:
    the first N (sorted); ``references``: URLs of published RD curves (CompressAI results JSON).
    ``options``: the entry's other keys, the source's own (e.g. ``path`` for ``folder``),
    parsed by the source with :func:`parse_options`.
    """

    name: StrictStr
    source: StrictStr
    images: Optional[Names] = None
    max_images: Optional[PosInt] = None
    references: Names = ()
    options: Dict[StrictStr, Any] = Field(default_factory=dict)


@dataclass(frozen=True, config=_STRICT)
class CodecConfig:
    """One entry of ``codecs``: a registered codec class (``codec``), its rate points in the
    codec's own unit and its ``options`` (checked by the codec class). A learned codec (listed
    under ``evaluate.learned`` or ``evaluate.variants``) takes its rate points from
    ``train.qualities`` unless it names a subset of them."""

    name: StrictStr
    codec: StrictStr
    rate_points: Tuple[Number, ...] = ()
    options: Dict[StrictStr, Any] = Field(default_factory=dict)

    @property
    def hash(self) -> str:
        """``params_hash`` of the entry as the codec sees it (codec, rate points, options)."""
        return params_hash({"codec": self.codec, "rate_points": list(self.rate_points), "options": dict(self.options)})


Sha256 = Annotated[StrictStr, Field(pattern=r"^[0-9a-fA-F]{64}$")]

FILE_SOURCE_KEYS = ("path", "sha256", "num_samples", "gan")


@dataclass(frozen=True, config=_STRICT)
class ModelConfig:
    """One entry of ``models``: ``arch`` (a registered architecture; default: the entry's
    name) and ``source``: ``train`` (here, with ``train.budget``), ``zoo`` (CompressAI's
    pretrained weights), ``pretrained`` (other published weights: QRes-VAE's ``qres34m`` and
    ``qres17m``, ``benchmark.models.published``) or ``file`` (a weight file its authors
    published, already on this machine: SIC's checkpoints, ``benchmark.models.official``); the
    last three are never trained instead.

    Only with ``source: file``: ``path`` (required) to the authors' file; ``sha256`` (optional)
    its expected SHA-256, checked; and what the file does not say about its training, recorded
    with the checkpoint: ``num_samples`` (SIC's M) and ``gan`` (fine-tuned with a GAN)."""

    name: StrictStr
    arch: Optional[StrictStr] = None
    source: Literal["train", "zoo", "pretrained", "file"] = "train"
    path: Optional[StrictStr] = None
    sha256: Optional[Sha256] = None
    num_samples: Optional[PosInt] = None
    gan: Optional[StrictBool] = None

    @property
    def architecture(self) -> str:
        return self.arch or self.name


@dataclass(frozen=True, config=_STRICT)
class TrainSettings:
    """How one model is trained (``train.budgets.<budget>.defaults``, overridden per model):
    ``steps``; ``batch_size`` patches of ``patch_size`` px; Adam ``lr`` (×0.1 at each of the
    ``milestones``, fractions of ``steps``) and ``aux_lr`` for the entropy bottleneck;
    ``clip_max_norm`` (0: none); a resumable state every ``checkpoint_every`` steps, a log row
    every ``log_every`` steps (neither changes the weights)."""

    steps: PosInt = 2000
    batch_size: PosInt = 8
    patch_size: PosInt = 128
    lr: PosNumber = 1.0e-4
    aux_lr: PosNumber = 1.0e-3
    milestones: Tuple[Annotated[Number, Field(gt=0, lt=1)], ...] = (0.8,)
    clip_max_norm: NonNegNumber = 1.0
    checkpoint_every: PosInt = 500
    log_every: PosInt = 25


@dataclass(frozen=True, config=_STRICT)
class ProgressiveSettings:
    """The schedule of a progressive model (SIC, ``benchmark.training.sic``), the ``progressive``
    key of its budget entry; the entry's ``steps`` are the progressive phase's.

    Phases, in order: ``warmup_steps`` of the authors' warm-up (``warming.py``: full rate only,
    plus std − min of the per-slice rates); ``steps`` of progressive training (the level rolled
    per batch 16, 15, ..., 1), the first ``balance_steps`` of which add the authors' first-epochs
    terms 64·std(per-slice bpp) − 4·bpp(slice ℓ); then ``gan_steps`` of GAN fine-tuning
    (non-saturating, discriminator conditioned on the transmitted latent, ``disc_width``
    channels, Adam(W) at ``disc_lr``); 0 skips it (CPU budgets). ``num_samples``: M, the samples
    of the untransmitted slices per image in the expected MSE and perceptual terms.
    ``perceptual``: the perceptual term, ``lpips`` (AlexNet, the paper's; its weights resolved as
    the LPIPS metric's, an error when they are not available), ``ms-ssim`` (1 − MS-SSIM, the
    weight-free stand-in) or ``auto`` (LPIPS when its weights resolve, else the stand-in with a
    warning). ``weight_decay``: AdamW's in the progressive and GAN phases (the warm-up uses
    Adam, as the authors)."""

    warmup_steps: NonNegInt = 0
    balance_steps: NonNegInt = 0
    gan_steps: NonNegInt = 0
    num_samples: PosInt = 1
    perceptual: Literal["auto", "lpips", "ms-ssim"] = "lpips"
    weight_decay: NonNegNumber = 5.0e-5
    disc_lr: PosNumber = 2.0e-4
    disc_width: PosInt = 64


Size = Union[Literal["paper"], Dict[StrictStr, PosInt]]


@dataclass(frozen=True, config=_STRICT)
class BudgetModel:
    """A model's entry in a budget: ``size`` (channel counts, or ``paper``: the published
    widths per quality), ``settings``, the budget's defaults with this model's overrides, and
    for a progressive model its schedule (``progressive``; None for the others)."""

    size: Size
    settings: TrainSettings
    progressive: Optional[ProgressiveSettings] = None


@dataclass(frozen=True, config=_STRICT)
class Budget:
    """``train.budgets.<name>``: ``defaults`` for every model and per-model entries
    (``models.<model>: {size: ..., <any TrainSettings key>: override}``, and for a progressive
    model ``progressive: {<ProgressiveSettings key>: ...}``)."""

    defaults: TrainSettings
    models: Dict[StrictStr, BudgetModel]


@dataclass(frozen=True, config=_STRICT)
class TrainConfigSection:
    """``train``: the training set (``data``), which ``models`` are made at which
    ``qualities`` (CompressAI zoo quality indices, λ from ``lambdas``, CompressAI's MSE scale
    λ·255²·MSE + bpp), which ``progressive`` models are made (one checkpoint each, serving all
    their levels: SIC), under which ``budget``; ``seed``; ``device`` (auto | cpu | cuda[:N])."""

    data: StrictStr
    models: Names
    qualities: Tuple[PosInt, ...]
    budget: StrictStr
    lambdas: Dict[PosInt, PosNumber]
    budgets: Dict[StrictStr, Budget]
    progressive: Names = ()
    seed: StrictInt = 0
    device: StrictStr = "auto"


@dataclass(frozen=True, config=_STRICT)
class SamplesConfig:
    """``samples``: unconditional samples of a hierarchical VAE: ``n`` samples of ``size`` px
    (a multiple of 64) from the checkpoint of ``quality`` of each of ``models``, ``seed``, τ
    (``temperature``) scaling σ."""

    models: Names = ()
    quality: PosInt = 2
    n: PosInt = 16
    size: Annotated[StrictInt, Field(ge=64, multiple_of=64)] = 64
    seed: StrictInt = 0
    temperature: PosNumber = 1.0


@dataclass(frozen=True, config=_STRICT)
class EvaluateConfig:
    """``evaluate``: classical ``codecs``, ``learned`` codecs (each named like its model),
    learned ``variants`` (another name over a model, e.g. other options) and ``progressive``
    codecs (one checkpoint for every rate point, SIC; each named like its model, its rate points
    the levels of its codec entry, in 1..``PROGRESSIVE_LEVELS``); ``workers``: worker processes
    per sweep (0 = one per core). ``executor``: ``local`` (worker processes on this machine) or
    ``ray`` (one Ray task per image, settings under ``ray``, see ``benchmark.executors``). Limits
    per image in a worker process (``benchmark.evaluation``): ``image_memory_gb``, the address
    space a worker may use (null: the memory available when the sweep starts), and
    ``image_timeout_s``, the wall time of one image at all its rate points; an image over either
    is a failed row, not a failed sweep. None of these is tracked by DVC (results don't depend on
    them: the rows are the same but for the timing and device columns)."""

    codecs: Names = ()
    learned: Names = ()
    variants: Names = ()
    progressive: Names = ()
    workers: NonNegInt = 0
    executor: Literal["local", "ray"] = "local"
    image_memory_gb: Optional[PosNumber] = None
    image_timeout_s: PosNumber = 3600


@dataclass(frozen=True, config=_STRICT)
class TaskResources:
    """The Ray resources one task reserves: ``cpus`` (also its torch threads, at least 1) and
    ``gpus`` (a fraction shares a GPU between tasks; only requested when the work runs on CUDA)."""

    cpus: PosNumber = 1
    gpus: NonNegNumber = 0


@dataclass(frozen=True, config=_STRICT)
class RayConfig:
    """``ray``: the Ray cluster of ``evaluate.executor: ray`` and of ``benchmark train-ray``
    (``benchmark.executors``); not tracked by DVC. ``address``: ``local`` starts a Ray instance
    in this process with ``local_cpus`` CPUs (0 = every core), anything else is passed to
    ``ray.init(address=...)`` (``auto``, ``<head>:6379``, ``ray://<head>:10001``).
    ``max_retries``: how often a task whose worker process or node dies is run again (Ray's
    ``max_retries``; a task that raises is never retried). ``evaluate``/``train``: the resources
    of one evaluate task (one image) and one model stage."""

    address: StrictStr = "local"
    local_cpus: NonNegInt = 0
    max_retries: NonNegInt = 3
    evaluate: TaskResources = Field(default_factory=TaskResources)
    train: TaskResources = Field(default_factory=TaskResources)


@dataclass(frozen=True, config=_STRICT)
class DecodeConfig:
    """``decode``: what a decoder accepts from a bitstream's header before it allocates anything
    (``benchmark.codecs.base.check_decode_size``). ``max_pixels``: the largest image (height x
    width, after the codec's padding) any codec decodes; the default 2**28 is 16384 x 16384,
    four times 8K x 8K. ``max_memory_gb``: the most memory (GiB) a decode may need by the codec's
    estimate; None: the machine's physical memory. A header beyond either is a ``DecodeError``
    naming the field and the value."""

    max_pixels: PosInt = 1 << 28
    max_memory_gb: Optional[PosNumber] = None


@dataclass(frozen=True, config=_STRICT)
class PatchesConfig:
    """``metrics.patches``: FID/KID over HiFiC patches of ``size`` px; KID over
    ``kid_subsets`` subsets of ``kid_subset_size`` (capped at the patch count)."""

    size: PosInt = 256
    kid_subsets: PosInt = 100
    kid_subset_size: PosInt = 1000


@dataclass(frozen=True, config=_STRICT)
class FiguresConfig:
    """``metrics.figures``: FID/KID over fewer than ``fid_indicative_below`` patches are marked
    indicative; the distortion-perception figures compare PSNR with each metric of ``dp`` at the
    rates ``dp_rates`` (bpp)."""

    fid_indicative_below: PosInt = 1000
    dp_rates: Tuple[PosNumber, ...] = (0.25, 0.5, 1.0)
    dp: Names = ("lpips", "haarpsi")


@dataclass(frozen=True, config=_STRICT)
class MetricsConfig:
    """``metrics``: the perceptual metrics evaluate scores beside the distortion ones
    (``perceptual``, registered metric names), explicit weight files (``weights``, by key of
    ``benchmark.metrics.weights.WEIGHT_FILES``; None: hub cache, then mirror), ``download``
    missing weights, the FID/KID ``patches``, the ``figures``, ``device`` (auto | cpu | cuda[:N])
    and ``batch_size`` (images or patches per network call)."""

    perceptual: Names = ("lpips", "dists", "haarpsi", "fid", "kid")
    weights: Dict[StrictStr, Optional[StrictStr]] = Field(default_factory=dict)
    download: StrictBool = True
    patches: PatchesConfig = PatchesConfig()
    figures: FiguresConfig = FiguresConfig()
    device: Annotated[StrictStr, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"
    batch_size: PosInt = 8


@dataclass(frozen=True, config=_STRICT)
class ReportConfig:
    """``report``: BD-rates of every codec against our ``anchor`` codec and the published
    ``reference_anchor`` curve (by name), with each of ``bd_methods``; ``max_bpp``, the RD
    figures' x limit; ``pairs`` of our codecs (test, anchor), computed where both are in the
    run; ``published_counterparts``: our codec -> the published curve of the same codec, with
    ``counterpart_notes`` (our codec -> how the two configurations differ) shown beside it (a
    note for a codec without a counterpart in the run is not shown).

    Statistics (README "Results"): a BD-rate is n/a when the quality overlap of the two curves is
    narrower than ``min_overlap_quality[<metric>]`` (in the metric's unit; a BD axis not listed
    needs only some overlap), a BD-quality when the rate overlap's top is less than
    ``min_overlap_rate_ratio`` times its bottom. Comparisons between two of our codecs get the
    BD-rate per image, the fraction of images where the test wins, and a ``ci_level`` percentile
    interval from ``bootstrap_resamples`` resamples of the images (0: no interval) drawn with
    ``bootstrap_seed``."""

    anchor: StrictStr = "jpeg"
    reference_anchor: Optional[StrictStr] = "VTM"
    bd_methods: Annotated[Tuple[Literal["cubic", "pchip", "akima"], ...], Field(min_length=1)] = ("cubic", "pchip")
    max_bpp: PosNumber = 2.0
    pairs: Tuple[Tuple[StrictStr, StrictStr], ...] = ()
    published_counterparts: Dict[StrictStr, StrictStr] = Field(default_factory=dict)
    counterpart_notes: Dict[StrictStr, StrictStr] = Field(default_factory=dict)
    min_overlap_quality: Dict[StrictStr, NonNegNumber] = Field(default_factory=lambda: {"psnr": 1.0, "ms_ssim_db": 1.0})
    min_overlap_rate_ratio: Annotated[Union[StrictInt, StrictFloat], Field(ge=1)] = 1.2
    bootstrap_resamples: NonNegInt = 1000
    bootstrap_seed: NonNegInt = 0
    ci_level: Annotated[StrictFloat, Field(gt=0, lt=1)] = 0.95

    @property
    def main_method(self) -> str:
        """The method of the main tables and metrics.json: pchip where listed (it needs 2 points
        per curve, cubic 4), else the first of ``bd_methods``."""
        return "pchip" if "pchip" in self.bd_methods else self.bd_methods[0]


@dataclass(frozen=True, config=_STRICT)
class CheckConfig:
    """``check.tolerances``: a fresh row regresses when its ``bpp`` exceeds the baseline's by
    more than ``bpp_rel`` (relative), or a metric named in ``metrics`` (a registered per-image
    metric -> absolute tolerance in its unit) is worse by more than its tolerance."""

    bpp_rel: NonNegNumber = 0.005
    metrics: Dict[StrictStr, NonNegNumber] = Field(default_factory=lambda: {"psnr": 0.02, "ms_ssim_db": 0.02})


@dataclass(frozen=True)
class Config:
    """The whole params file(s). ``files``: the files read (params.yaml, then the run overlay
    if any), for messages and provenance; ``source``: how messages name them."""

    files: Tuple[Path, ...]
    source: str
    plugins: Tuple[str, ...]
    run: RunConfig
    data: DataConfig
    datasets: Mapping[str, DatasetConfig]
    codecs: Mapping[str, CodecConfig]
    models: Mapping[str, ModelConfig]
    train: TrainConfigSection
    samples: SamplesConfig
    evaluate: EvaluateConfig
    metrics: MetricsConfig
    report: ReportConfig
    check: CheckConfig
    ray: RayConfig
    decode: DecodeConfig = DecodeConfig()

    def dataset(self, name: str) -> DatasetConfig:
        """``datasets.<name>``; ``ConfigError`` listing the known names."""
        return _lookup(self.datasets, name, "data set", f"{self.source}: datasets")

    def codec(self, name: str) -> CodecConfig:
        """``codecs.<name>``; ``ConfigError`` listing the known names."""
        return _lookup(self.codecs, name, "codec", f"{self.source}: codecs")

    def model(self, name: str) -> ModelConfig:
        """``models.<name>``; ``ConfigError`` listing the known names."""
        return _lookup(self.models, name, "model", f"{self.source}: models")

    def budget(self) -> Budget:
        """The budget selected by ``train.budget``."""
        return self.train.budgets[self.train.budget]

    def mirror(self, override: Optional[str] = None) -> Optional[Path]:
        """The mirror directory: ``override`` (CLI) > ``data.mirror`` > ``$BENCHMARK_MIRROR`` > None."""
        return resolve_mirror(self.data.mirror, override)

    def evaluated_codecs(self) -> Tuple[str, ...]:
        """Every codec of the run: classical, learned, variants and progressive, in that order."""
        return self.evaluate.codecs + self.evaluate.learned + self.evaluate.variants + self.evaluate.progressive


def _lookup(table: Mapping[str, Any], name: str, kind: str, where: str) -> Any:
    if name not in table:
        e = unknown_name(kind, name, table, where)
        raise ConfigError(str(e))
    return table[name]


def resolve_mirror(configured: Optional[str] = None, override: Optional[str] = None) -> Optional[Path]:
    """The mirror directory: ``override`` > ``configured`` (``data.mirror``) > ``$BENCHMARK_MIRROR`` > None."""
    value = override or configured or os.environ.get(MIRROR_ENV) or None
    return Path(value).expanduser() if value else None


# --- strict parsing --------------------------------------------------------------------------


def _key(loc: Sequence[Any]) -> str:
    out = ""
    for p in loc:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p not in ("int", "float", "str", "bool"):  # pydantic names the union member tried
            out += f".{p}" if out else str(p)
    return out


def _unwrap(tp: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``Optional[...]``/``Union[...]`` (the first member
    that is a dataclass or a container), else ``tp`` itself."""
    while typing.get_origin(tp) in (Annotated, Union):
        args = typing.get_args(tp)
        inner = [a for a in args if dataclasses.is_dataclass(a) or typing.get_origin(a) in (dict, tuple, list)]
        if typing.get_origin(tp) is Annotated:
            tp = args[0]
        elif inner:
            tp = inner[0]
        else:
            return tp
    return tp


def _class_at(cls: Any, loc: Sequence[Any]) -> Any:
    """The dataclass reached by following ``loc`` (field names, mapping keys, tuple indices)
    from the dataclass ``cls``; None when it leads elsewhere."""
    tp = cls
    for part in loc:
        tp = _unwrap(tp)
        if dataclasses.is_dataclass(tp):
            tp = typing.get_type_hints(tp, include_extras=True).get(part)
        elif typing.get_origin(tp) in (dict, tuple, list):
            tp = typing.get_args(tp)[-1 if typing.get_origin(tp) is dict else 0]
        else:
            return None
    tp = _unwrap(tp)
    return tp if dataclasses.is_dataclass(tp) else None


def _describe(e: ValidationError, cls: Any, where: str) -> str:
    """One line for the first problem of a pydantic error: the dotted key, what is wrong, and
    for an unknown key the valid names and the closest one."""
    errors = e.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    key = ".".join(filter(None, [where, _key(loc)]))
    if first["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        owner = _class_at(cls, loc[:-1])
        valid = [f.name for f in dataclasses.fields(owner) if f.name != "name"] if owner else []
        return str(unknown_name("key", loc[-1], valid, ".".join(filter(None, [where, _key(loc[:-1])]))))
    if first["type"] == "missing":
        return f"{key}: missing"
    # a union reports once per member: say what was given and what each member wanted
    same = [x for x in errors if tuple(x["loc"])[: len(loc) - 1] == loc[:-1]]
    wanted = "; or ".join(dict.fromkeys(x["msg"] for x in same)) if len(same) > 1 else first["msg"]
    wanted = wanted.replace("Input should be a valid integer; or Input should be a valid number", "Input should be a number")
    return f"{key}: {wanted}, got {first.get('input')!r}"


def parse_options(cls: Any, raw: Mapping[str, Any], where: str) -> Any:
    """Build the frozen (pydantic) dataclass ``cls`` from the mapping ``raw`` strictly.

    Raises ``ConfigError`` naming ``where`` and the key: an unknown key (with the valid names
    and the closest one), a missing one, or a value of the wrong type or range.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    try:
        return cls(**{str(k): v for k, v in raw.items()})
    except ValidationError as e:
        raise ConfigError(_describe(e, cls, where)) from None
    except TypeError as e:  # a positional/keyword mismatch pydantic leaves to Python
        raise ConfigError(f"{where}: {e}") from None


# --- reading -------------------------------------------------------------------------------


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


RUN_KEYS: Tuple[str, ...] = (
    "run",
    "data.eval",
    "train.data",
    "train.models",
    "train.qualities",
    "train.progressive",
    "train.budget",
    "samples.models",
    "samples.quality",
    "evaluate.codecs",
    "evaluate.learned",
    "evaluate.variants",
    "evaluate.progressive",
)
"""The keys a run overlay sets (every one of them: dvc.yaml's templates read them from the
overlay alone); everything else comes from params.yaml."""


def _leaves(d: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and key not in RUN_KEYS:
            yield from _leaves(v, key + ".")
        else:
            yield key


def _get(d: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(d, Mapping) or part not in d:
            return KeyError
        d = d[part]
    return d


def _merge(base: Dict[str, Any], overlay: Mapping[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in overlay.items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, Mapping) and k != "run" else v
    return out


def _overlay(path: Path, raw: Dict[str, Any]) -> Tuple[Dict[str, Any], Tuple[Path, ...], str]:
    """(merged params, files read, source label) for a params file that may be a run overlay."""
    run = raw.get("run") or {}
    root = run.get("root", ".") if isinstance(run, Mapping) else "."
    if root in (".", "", None):
        return raw, (path,), str(path)
    base_path = Path(os.path.normpath(path.parent / str(root) / PARAMS_FILE))
    extra = [k for k in _leaves(raw) if k not in RUN_KEYS]
    if extra:
        raise ConfigError(
            f"{path}: a run overlay sets only the run keys ({', '.join(RUN_KEYS)}); {extra[0]} belongs in {base_path}"
        )
    missing = [k for k in RUN_KEYS if _get(raw, k) is KeyError]
    if missing:
        raise ConfigError(f"{path}: a run overlay must set every run key (dvc.yaml's templates read them from it); missing {', '.join(missing)}")
    base = read_params(base_path)
    return _merge(base, raw), (base_path, path), f"{path} over {base_path}"


# --- building the typed config -------------------------------------------------------------


def _named(section: str, raw: Any, cls: Any, src: str, common: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{src}: {section} must be a mapping of name -> entry")
    out = {}
    for name, entry in raw.items():
        where = f"{src}: {section}.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {entry!r}")
        if "name" in entry:
            raise ConfigError(f"{where}.name: the entry's name is its key; remove 'name'")
        fields = dict(entry)
        if common is not None:  # the other keys are the part's own options
            fields = {k: v for k, v in entry.items() if k in common}
            fields["options"] = {k: v for k, v in entry.items() if k not in common}
        out[str(name)] = parse_options(cls, {**fields, "name": str(name)}, f"{src}: {section}.{name}")
    return out


def _budget(raw: Any, where: str) -> Budget:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'defaults' and 'models'")
    unknown = set(raw) - {"defaults", "models"}
    if unknown:
        raise ConfigError(str(unknown_name("key", sorted(unknown)[0], ["defaults", "models"], where)))
    defaults = parse_options(TrainSettings, raw.get("defaults") or {}, f"{where}.defaults")
    models = {}
    for name, entry in (raw.get("models") or {}).items():
        w = f"{where}.models.{name}"
        if not isinstance(entry, Mapping) or "size" not in entry:
            raise ConfigError(f"{w}: expected a mapping with 'size' (channel counts, or 'paper') and optional overrides")
        overrides = {k: v for k, v in entry.items() if k not in ("size", "progressive")}
        merged = {**dataclasses.asdict(defaults), **overrides}
        settings = parse_options(TrainSettings, merged, w)
        progressive = None
        if "progressive" in entry:
            progressive = parse_options(ProgressiveSettings, entry["progressive"], f"{w}.progressive")
        models[str(name)] = parse_options(
            BudgetModel, {"size": entry["size"], "settings": settings, "progressive": progressive}, w
        )
    return Budget(defaults=defaults, models=models)


def _section(params: Mapping[str, Any], name: str, cls: Any, src: str) -> Any:
    return parse_options(cls, params.get(name) or {}, f"{src}: {name}")


TOP_LEVEL = (
    "plugins", "run", "data", "datasets", "codecs", "models", "train", "samples", "evaluate", "metrics", "report", "check",
    "decode", "ray",
)


def build_config(params: Mapping[str, Any], files: Sequence[Path] = (), source: str = PARAMS_FILE) -> Config:
    """The typed, cross-checked ``Config`` of a params mapping (see ``load_config``).
    Raises ``ConfigError`` naming the key for any problem."""
    src = source
    unknown = [k for k in params if k not in TOP_LEVEL]
    if unknown:
        raise ConfigError(str(unknown_name("section", unknown[0], TOP_LEVEL, src)))
    plugins = params.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"{src}: plugins must be a list of module names, got {plugins!r}")
    train_raw = dict(params.get("train") or {})
    budgets_raw = train_raw.get("budgets") or {}
    if not isinstance(budgets_raw, Mapping):
        raise ConfigError(f"{src}: train.budgets must be a mapping of budget name -> budget")
    train_raw["budgets"] = {str(k): _budget(v, f"{src}: train.budgets.{k}") for k, v in budgets_raw.items()}
    check_raw = params.get("check") or {}
    tolerances = dict(check_raw.get("tolerances") or {}) if isinstance(check_raw, Mapping) else check_raw
    if not isinstance(check_raw, Mapping) or set(check_raw) - {"tolerances"}:
        raise ConfigError(f"{src}: check must be a mapping with one key, tolerances")
    for k, v in tolerances.items():  # checked here so that the message names check.tolerances.<metric>
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(f"{src}: check.tolerances.{k}: expected a non-negative number, got {v!r}")
    check = CheckConfig(bpp_rel=tolerances.pop("bpp_rel", CheckConfig.__dataclass_fields__["bpp_rel"].default), metrics=tolerances)
    cfg = Config(
        files=tuple(Path(f) for f in files),
        source=src,
        plugins=tuple(plugins),
        run=_section(params, "run", RunConfig, src),
        data=_section(params, "data", DataConfig, src),
        datasets=_named("datasets", params.get("datasets"), DatasetConfig, src, common=DATASET_KEYS),
        codecs=_named("codecs", params.get("codecs"), CodecConfig, src),
        models=_named("models", params.get("models"), ModelConfig, src),
        train=parse_options(TrainConfigSection, train_raw, f"{src}: train"),
        samples=_section(params, "samples", SamplesConfig, src),
        evaluate=_section(params, "evaluate", EvaluateConfig, src),
        metrics=_section(params, "metrics", MetricsConfig, src),
        report=_section(params, "report", ReportConfig, src),
        check=check,
        decode=_section(params, "decode", DecodeConfig, src),
        ray=_section(params, "ray", RayConfig, src),
    )
    return _cross_check(cfg)


def _must_be_in(names: Iterable[str], table: Iterable[str], key: str, kind: str, src: str) -> None:
    table = list(table)
    for n in names:
        if n not in table:
            raise ConfigError(str(unknown_name(kind, n, table, f"{src}: {key}")))


def _cross_check(cfg: Config) -> Config:
    """References between sections, and the learned codecs' rate points (from train.qualities)."""
    src, t, ev = cfg.source, cfg.train, cfg.evaluate
    _must_be_in(cfg.data.eval, cfg.datasets, "data.eval", "data set", src)
    _must_be_in([t.data], cfg.datasets, "train.data", "data set", src)
    _must_be_in(t.models, cfg.models, "train.models", "model", src)
    _must_be_in([t.budget], t.budgets, "train.budget", "budget", src)
    _must_be_in(t.qualities, t.lambdas, "train.qualities", "quality (no λ in train.lambdas)", src)
    budget = t.budgets[t.budget]
    trained = [m for m in t.models if cfg.models[m].source == "train"]
    _must_be_in(trained, budget.models, f"train.budgets.{t.budget}.models (train.models)", "model", src)
    _check_progressive(cfg, budget, src)
    for name, m in cfg.models.items():
        given = [k for k in FILE_SOURCE_KEYS if getattr(m, k) is not None]
        if m.source == "file" and m.path is None:
            raise ConfigError(f"{src}: models.{name}.path: missing (source: file reads the authors' weight file at this path)")
        if m.source != "file" and given:
            raise ConfigError(f"{src}: models.{name}.{given[0]}: only for source: file (this model's source is {m.source})")
    _must_be_in(cfg.samples.models, t.models, "samples.models", "trained model", src)
    if cfg.samples.models and cfg.samples.quality not in t.qualities:
        raise ConfigError(f"{src}: samples.quality {cfg.samples.quality} is not in train.qualities {list(t.qualities)}")
    lists = (("evaluate.codecs", ev.codecs), ("evaluate.learned", ev.learned), ("evaluate.variants", ev.variants),
             ("evaluate.progressive", ev.progressive))
    for key, names in lists:
        _must_be_in(names, cfg.codecs, key, "codec", src)
    seen: Dict[str, str] = {}
    for key, names in lists:
        for name in names:
            if name in seen:
                raise ConfigError(f"{src}: codec {name!r} is listed twice, under {seen[name]} and {key} (one evaluate stage writes its results)")
            seen[name] = key
    codecs = dict(cfg.codecs)
    for name in ev.learned + ev.variants:
        codecs[name] = _learned_codec(cfg.codecs[name], name in ev.learned, t, src)
    for name in ev.progressive:
        _progressive_codec(cfg.codecs[name], src)
    for name in ev.codecs:
        if not cfg.codecs[name].rate_points:
            raise ConfigError(f"{src}: codecs.{name}.rate_points: missing (a non-empty list of rate points)")
    for name, c in codecs.items():
        if len(set(c.rate_points)) != len(c.rate_points):
            raise ConfigError(f"{src}: codecs.{name}.rate_points has duplicates: {list(c.rate_points)}")
    run_codecs = ev.codecs + ev.learned + ev.variants + ev.progressive
    if run_codecs and cfg.report.anchor not in run_codecs:
        raise ConfigError(f"{src}: report.anchor {cfg.report.anchor!r} is not among the run's codecs {list(run_codecs)}")
    return dataclasses.replace(cfg, codecs=codecs)


def _check_progressive(cfg: Config, budget: Budget, src: str) -> None:
    """``train.progressive``: known models, not also in ``train.models`` (one checkpoint serves
    every level of a progressive model), made by training (with a budget entry) or from a file.
    (That each one's architecture is progressive is checked by the model stage, which knows the
    architectures.)"""
    t = cfg.train
    _must_be_in(t.progressive, cfg.models, "train.progressive", "model", src)
    if len(set(t.progressive)) != len(t.progressive):
        raise ConfigError(f"{src}: train.progressive has duplicates: {list(t.progressive)}")
    both = [m for m in t.progressive if m in t.models]
    if both:
        raise ConfigError(
            f"{src}: train.progressive: {both[0]!r} is also in train.models; a progressive model has one checkpoint "
            f"for all its levels (model-progressive stage), not one per quality"
        )
    for name in t.progressive:
        source = cfg.models[name].source
        if source not in ("train", "file"):
            raise ConfigError(
                f"{src}: train.progressive: {name!r} has source {source}; a progressive model is trained here "
                f"(source: train) or read from its authors' file (source: file)"
            )
    trained = [m for m in t.progressive if cfg.models[m].source == "train"]
    _must_be_in(trained, budget.models, f"train.budgets.{t.budget}.models (train.progressive)", "model", src)
    filed = [m for m in t.models if cfg.models[m].source == "file"]
    if filed:
        raise ConfigError(
            f"{src}: train.models: {filed[0]!r} has source file, which makes one checkpoint for all levels of a "
            f"progressive model; list it under train.progressive"
        )


def _learned_codec(c: CodecConfig, plain: bool, t: TrainConfigSection, src: str) -> CodecConfig:
    model = c.options.get("model")
    where = f"{src}: codecs.{c.name}"
    if plain and model != c.name:
        raise ConfigError(
            f"{where}.options.model: a codec under evaluate.learned is named like its model "
            f"(got model {model!r}); list a codec over another model under evaluate.variants"
        )
    if not c.rate_points:
        return dataclasses.replace(c, rate_points=tuple(t.qualities))
    extra = [r for r in c.rate_points if r not in t.qualities]
    if extra:
        raise ConfigError(
            f"{where}.rate_points {list(c.rate_points)}: {extra} not in train.qualities {list(t.qualities)} "
            f"(a learned codec's rate points are the qualities the model stage makes; leave rate_points out to use them all)"
        )
    return c


PROGRESSIVE_LEVELS = 16
"""The levels of a progressive codec (SIC: 16 latent slices); its rate points lie in 1..16."""


def _progressive_codec(c: CodecConfig, src: str) -> None:
    """A codec under ``evaluate.progressive``: named like its model (dvc.yaml's stage depends on
    ``models/<budget>/<codec name>/model.pt``), with rate points (the levels) that are integers in
    1..``PROGRESSIVE_LEVELS``. Whether the codec class is progressive is checked by the stage,
    which imports it (this module imports no codec)."""
    where = f"{src}: codecs.{c.name}"
    if c.options.get("model") != c.name:
        raise ConfigError(
            f"{where}.options.model: a codec under evaluate.progressive is named like its model "
            f"(got model {c.options.get('model')!r})"
        )
    if not c.rate_points:
        raise ConfigError(f"{where}.rate_points: missing (the levels to code, integers in 1..{PROGRESSIVE_LEVELS})")
    bad = [r for r in c.rate_points if isinstance(r, bool) or not float(r).is_integer() or not 1 <= r <= PROGRESSIVE_LEVELS]
    if bad:
        raise ConfigError(f"{where}.rate_points {list(c.rate_points)}: {bad} are not levels (integers in 1..{PROGRESSIVE_LEVELS})")


def load_config(path: "str | os.PathLike[str]" = PARAMS_FILE, *, import_plugins: bool = True) -> Config:
    """Read a params file (a run overlay is merged over its params.yaml), build the typed
    ``Config``, and import the modules of ``plugins`` (so that their codecs, metrics, sources
    and architectures are registered). Raises ``ConfigError`` naming the file and the key, and
    for a plugin that does not import."""
    p = Path(path)
    raw = read_params(p)
    merged, files, source = _overlay(p, raw)
    cfg = build_config(merged, files, source)
    if import_plugins:
        for module in cfg.plugins:
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise ConfigError(f"{source}: plugins: cannot import {module!r} ({e})") from None
    return cfg
