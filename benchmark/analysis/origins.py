"""How each codec of a run was obtained, in words, for the report (the data set's README) and
figure legends: a classical codec and its options; a learned codec trained here (budget, steps,
batch, crops, training set, size, λ), or published weights (CompressAI's zoo, the authors'
release). Read from the params the run used (``codecs``, ``models``, ``train``), which are
what made the checkpoints the per-image rows were coded with (the model stages depend on
exactly these params)."""

from __future__ import annotations

from typing import Dict, Sequence

from benchmark.config import Config

SOURCE_WORDS = {
    "zoo": "published weights (CompressAI model zoo, `{arch}`)",
    "pretrained": "published weights (the authors' release, `{arch}`)",
}


def _size(size) -> str:
    if size == "paper":
        return "the published widths"
    return ", ".join(f"{k}={v}" for k, v in size.items())


def _options(options) -> str:
    return ", ".join(f"{k} {v}" for k, v in options.items()) if options else "default options"


def codec_origin(cfg: Config, codec: str) -> str:
    """One line on how ``codec`` (a codec of the run) was obtained. Raises ``ConfigError`` for a
    codec or model that params do not define."""
    c = cfg.codec(codec)
    learned = codec in cfg.evaluate.learned or codec in cfg.evaluate.variants
    if not learned:
        return f"classical codec `{c.codec}`, {_options(c.options)}"
    model = cfg.model(str(c.options.get("model", codec)))
    if model.source != "train":
        return SOURCE_WORDS[model.source].format(arch=model.architecture)
    t = cfg.train
    entry = cfg.budget().models.get(model.name)
    lambdas = [t.lambdas[q] for q in c.rate_points if q in t.lambdas] or [t.lambdas[q] for q in t.qualities]
    lam = f"λ {min(lambdas):g}-{max(lambdas):g}" if len(lambdas) > 1 else f"λ {lambdas[0]:g}"
    if entry is None:
        return f"trained here (`{t.budget}` budget), {lam}"
    s = entry.settings
    return (
        f"trained here (`{t.budget}` budget): {s.steps} steps per rate point, batch {s.batch_size} of "
        f"{s.patch_size} px crops of `{t.data}`, lr {s.lr:g}, {_size(entry.size)}, {lam}"
    )


def codec_origins(cfg: Config, codecs: Sequence[str]) -> Dict[str, str]:
    """``{codec: codec_origin(cfg, codec)}`` for the codecs of a run, in their order."""
    return {c: codec_origin(cfg, c) for c in codecs}
