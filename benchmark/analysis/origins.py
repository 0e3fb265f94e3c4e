"""How each codec of a run was obtained, for the report (the data set's README) and the figure
legends: a classical codec and its options; a learned codec trained here (budget, steps, batch,
crops, training set, size, λ), or published weights (CompressAI's zoo, the authors' release),
with its parameter count. Read from the params the run used (``codecs``, ``models``, ``train``),
which are what made the checkpoints the per-image rows were coded with (the model stages depend
on exactly these params)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence

from benchmark.config import Config

SOURCE_WORDS = {
    "zoo": "published weights (CompressAI model zoo, `{arch}`)",
    "pretrained": "published weights (the authors' release, `{arch}`)",
}
CLASSICAL_GROUP = "Ours: classical codecs"


@dataclass(frozen=True)
class Origin:
    """How one codec of the run was obtained.

    ``text``: one line for the README. ``family``: what the figure styles look the codec up by
    (``benchmark.plots.styles.FAMILIES``): the registered codec class of a classical codec, the
    architecture of a learned one. ``learned``. ``group``: the legend group title (what the
    codecs listed under it have in common: classical; trained here with budget and steps;
    published weights). ``detail``: what the legend adds after the name (parameter count)."""

    text: str
    family: str
    learned: bool = False
    group: str = CLASSICAL_GROUP
    detail: str = ""


def _size(size) -> str:
    if size == "paper":
        return "the published widths"
    return ", ".join(f"{k}={v}" for k, v in size.items())


def _options(options) -> str:
    return ", ".join(f"{k} {v}" for k, v in options.items()) if options else "default options"


def parameter_count(arch: str, size: Dict[str, int]) -> int:
    """Number of parameters (``nn.Parameter`` elements; not buffers such as CDF tables) of
    architecture ``arch`` at channel counts ``size``. Built on the meta device (no memory, no
    initialisation) where the architecture allows it; CompressAI's GDN mixes a CPU tensor into
    its initialisation, so those are built on the CPU (a few MB, milliseconds), without
    gradients."""
    import torch

    from benchmark.models.specs import build_model

    with torch.no_grad():
        try:
            with torch.device("meta"):
                model = build_model(arch, size)
        except RuntimeError:
            model = build_model(arch, size)
    return int(sum(p.numel() for p in model.parameters()))


def _format_millions(n: int) -> str:
    """``n`` parameters in millions: three significant digits with at most two decimals,
    trailing zeros dropped (``0.75M``, ``2.48M``, ``3.1M``, ``34M``, ``123M``); below 0.1M two
    significant digits (``0.045M``, ``0.0045M``)."""
    m = n / 1e6
    if m <= 0:
        return "0M"
    exponent = math.floor(math.log10(m))
    decimals = 1 - exponent if m < 0.1 else min(2, max(0, 2 - exponent))
    text = f"{m:.{decimals}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "M"


def _millions(counts: Sequence[int]) -> str:
    """The legend's parameter count of a codec's checkpoints (counts: one per rate point):
    ``"0.75M params"``, or ``"1.28M-2.48M params"`` where they differ as written
    (:func:`_format_millions`)."""
    lo, hi = _format_millions(min(counts)), _format_millions(max(counts))
    return f"{lo} params" if lo == hi else f"{lo}-{hi} params"


def _rate_points(cfg: Config, codec: str) -> List[int]:
    c = cfg.codec(codec)
    return [int(q) for q in (c.rate_points or cfg.train.qualities)]


def _sizes(cfg: Config, model, points: Sequence[int]) -> List[Dict[str, int]]:
    """The channel counts of ``model``'s checkpoint at each rate point."""
    from benchmark.models.specs import ARCHITECTURES

    spec = ARCHITECTURES.get(model.architecture)
    if model.source == "train":
        entry = cfg.budget().models.get(model.name)
        size = entry.size if entry is not None else "paper"
    else:
        size = "paper"
    if size == "paper":
        return [dict((spec.paper_sizes or {}).get(q, {})) for q in points]
    return [dict(size) for _ in points]


def codec_origin(cfg: Config, codec: str, *, count_parameters: bool = True) -> Origin:
    """How ``codec`` (a codec of the run) was obtained. ``count_parameters``: put the learned
    model's parameter count in the legend detail (``parameter_count``; builds the
    architecture). Raises ``ConfigError`` for a codec or model that params do not define."""
    c = cfg.codec(codec)
    if codec in cfg.evaluate.progressive:
        return _progressive_origin(cfg, codec, count_parameters)
    learned = codec in cfg.evaluate.learned or codec in cfg.evaluate.variants
    if not learned:
        return Origin(f"classical codec `{c.codec}`, {_options(c.options)}", family=c.codec)
    model = cfg.model(str(c.options.get("model", codec)))
    points = _rate_points(cfg, codec)
    detail = ""
    if count_parameters:
        try:
            detail = _millions([parameter_count(model.architecture, s) for s in _sizes(cfg, model, points)])
        except (ValueError, TypeError):  # an architecture without published widths for a `paper` size: no count
            detail = ""
    if model.source != "train":
        return Origin(SOURCE_WORDS[model.source].format(arch=model.architecture), family=model.architecture, learned=True,
                      group="Ours: published weights", detail=detail)
    t = cfg.train
    entry = cfg.budget().models.get(model.name)
    lambdas = [t.lambdas[q] for q in c.rate_points if q in t.lambdas] or [t.lambdas[q] for q in t.qualities]
    lam = f"λ {min(lambdas):g}-{max(lambdas):g}" if len(lambdas) > 1 else f"λ {lambdas[0]:g}"
    if entry is None:
        return Origin(f"trained here (`{t.budget}` budget), {lam}", family=model.architecture, learned=True,
                      group=f"Ours: trained here ({t.budget} budget)", detail=detail)
    steps = f"{entry.settings.steps} steps"
    return _trained_here(cfg, model, entry, f"{steps} per rate point", lam, steps, detail)


def _trained_here(cfg: Config, model, entry, steps: str, tail: str, group: str, detail: str) -> Origin:
    """The origin of a model trained by this project's model stage with its budget ``entry``:
    ``steps`` (how many, of what), the training data, batch, crops, lr and size, then ``tail``;
    legend group "Ours: trained here (<budget> budget, ``group``)"."""
    t, s = cfg.train, entry.settings
    return Origin(
        f"trained here (`{t.budget}` budget): {steps}, batch {s.batch_size} of {s.patch_size} px crops of "
        f"`{t.data}`, lr {s.lr:g}, {_size(entry.size)}, {tail}",
        family=model.architecture,
        learned=True,
        group=f"Ours: trained here ({t.budget} budget, {group})",
        detail=detail,
    )


def codec_origins(cfg: Config, codecs: Sequence[str], *, count_parameters: bool = True) -> Dict[str, Origin]:
    """``{codec: codec_origin(cfg, codec)}`` for the codecs of a run, in their order."""
    return {c: codec_origin(cfg, c, count_parameters=count_parameters) for c in codecs}


def _progressive_origin(cfg: Config, codec: str, count_parameters: bool) -> Origin:
    """A progressive codec (SIC): one checkpoint of its model for all its levels, made by the
    model-progressive stage (trained here, with its phases' steps and perceptual term, or from a
    published file)."""
    c = cfg.codec(codec)
    model = cfg.model(str(c.options.get("model", codec)))
    entry = cfg.budget().models.get(model.name)
    size = dict(entry.size) if entry is not None and entry.size != "paper" else {}
    detail = ""
    if count_parameters and size:
        try:
            detail = _millions([parameter_count(model.architecture, size)])
        except (ValueError, TypeError):
            detail = ""
    levels = f"{len(c.rate_points)} levels from one checkpoint"
    if model.source != "train" or entry is None or entry.progressive is None:
        group = "Ours: published weights" if model.source != "train" else f"Ours: trained here ({cfg.train.budget} budget)"
        return Origin(f"{model.architecture}, {levels} ({model.source})", family=model.architecture, learned=True,
                      group=group, detail=detail)
    p = entry.progressive
    perceptual = "MS-SSIM stand-in for LPIPS" if p.perceptual == "ms-ssim" else p.perceptual
    steps = f"{p.warmup_steps} warm-up + {entry.settings.steps} progressive steps"
    return _trained_here(cfg, model, entry, steps, f"M = {p.num_samples}, perceptual term {perceptual}; {levels}",
                         f"{steps}, {perceptual}", detail)
