"""Stage ``model``: make the checkpoint of one learned model at one rate point, or the one
checkpoint of a progressive model (SIC) that serves all its levels.

``models.<name>.source`` decides how: ``train`` runs the training loop here with the budget
``train.budget`` (the model's entry in ``train.budgets.<budget>.models``: size and settings)
and the λ of the rate point (``train.lambdas``, CompressAI's MSE λ per zoo quality); ``zoo``
fetches CompressAI's pretrained weights (URL + hash, torch hub cache or mirror) and
``pretrained`` other published weights (QRes-VAE's, ``benchmark.models.published``: quality k =
the k-th published λ); neither ever trains instead. Rate points are quality indices (1..8).

Without ``--quality`` the model must be progressive (``ModelSpec.progressive``; the
``model-progressive`` stage, ``train.progressive``): ``source: train`` runs the SIC schedule
(``benchmark.training.sic``: warm-up, progressive, GAN fine-tune, steps from the model's budget
entry), ``source: file`` turns the authors' weight file at ``models.<name>.path`` into our
checkpoint (``benchmark.models.official``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, Optional, Sequence, Type

from benchmark.config import Config, ConfigError, ModelConfig, load_config
from benchmark.data.images import load_rgb8, read_manifest
from benchmark.fileio import write_bytes_atomic
from benchmark.models.official import file_checkpoint
from benchmark.models.published import pretrained_checkpoint
from benchmark.models.specs import ARCHITECTURES
from benchmark.models.zoo import zoo_checkpoint
from benchmark.training.loop import TrainConfig, _Run, train, write_log
from benchmark.training.sic import ProgressiveTrainConfig, SICRun


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark model",
        description="Make the checkpoint of one learned model at one rate point (zoo quality index): "
        "train it here (models.<name>.source: train; budget train.budget) or fetch CompressAI's "
        "pretrained weights (source: zoo), or other published weights (source: pretrained: QRes-VAE's). "
        "Without --quality, the one checkpoint of a progressive model (SIC, all levels): trained here, "
        "or from its authors' file (source: file). Training resumes from --state if interrupted.",
    )
    p.add_argument("--params", default="params.yaml", help="params file, or a run overlay")
    p.add_argument("--model", required=True, help="entry of `models` in params.yaml")
    p.add_argument("--quality", type=int, help="rate point: CompressAI zoo quality 1..8 (none for a progressive model)")
    p.add_argument("--train-data", type=Path, help="fetched training set directory (manifest.csv)")
    p.add_argument("--out", required=True, type=Path, help="final checkpoint (.pt)")
    p.add_argument("--state", type=Path, help="resumable training state (default: <out>.state)")
    p.add_argument("--log", type=Path, help="training log CSV (default: <out without .pt>.log.csv)")
    p.add_argument("--mirror", default=None, help="mirror directory for published weights (zoo, pretrained)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _untrained_outputs(args: argparse.Namespace, source: str) -> None:
    """The other outputs dvc.yaml declares for every model stage, for a model that is fetched,
    not trained: an empty training log (header only) and a training state holding only its
    ``source`` (no configuration fingerprint, so a later ``source: train`` starts from scratch)."""
    import io

    import torch

    write_log(_log_path(args), [])
    buf = io.BytesIO()
    torch.save({"fingerprint": None, "source": source}, buf)
    write_bytes_atomic(_state_path(args), buf.getvalue())


def _state_path(args: argparse.Namespace) -> Path:
    """``--state``, default: ``--out`` with the suffix ``.state``."""
    return args.state or args.out.with_suffix(".state")


def _log_path(args: argparse.Namespace) -> Path:
    """``--log``, default: ``--out`` with the suffix ``.log.csv``."""
    return args.log or args.out.with_suffix(".log.csv")


def _train(args: argparse.Namespace, tcfg, run_class: Type[_Run], meta: Dict[str, object]) -> None:
    """Train run ``tcfg`` (a ``TrainConfig`` with ``_Run``, a ``ProgressiveTrainConfig`` with
    ``SICRun``) on every image of ``--train-data`` (its manifest's order; their pixel SHA-256
    go into the checkpoint), resumable from ``--state``, logged to ``--log``, the checkpoint to
    ``--out`` with ``meta``. Raises ``ConfigError`` without ``--train-data``."""
    if args.train_data is None:
        raise ConfigError("--train-data is required to train")
    manifest = read_manifest(args.train_data)
    images = [load_rgb8(args.train_data / row.file) for row in manifest]
    train(
        tcfg,
        images,
        args.out,
        _state_path(args),
        _log_path(args),
        run_class=run_class,
        train_image_hashes=[row.pixel_sha256 for row in manifest],
        meta=meta,
        progress=not args.no_progress,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.params)
    model = cfg.model(args.model)
    spec = ARCHITECTURES.get(model.architecture)
    if args.quality is None:
        return _progressive(args, cfg, model, spec.progressive)
    if spec.progressive:
        raise ConfigError(
            f"{cfg.source}: models.{args.model}: architecture {model.architecture!r} is progressive (one checkpoint for all "
            f"its levels): list it under train.progressive and make it without --quality (stage model-progressive)"
        )
    if model.source == "file":
        raise ConfigError(f"{cfg.source}: models.{args.model}: source file makes one checkpoint for all levels; run without --quality")
    if model.source in ("zoo", "pretrained"):
        fetch = zoo_checkpoint if model.source == "zoo" else pretrained_checkpoint
        fetch(model.architecture, args.quality, args.out, mirror=cfg.mirror(args.mirror))
        _untrained_outputs(args, model.source)
        what = "CompressAI zoo weights" if model.source == "zoo" else "published weights"
        print(f"model {args.model} q{args.quality}: {what} -> {args.out}")
        return 0
    tcfg = TrainConfig.from_params(cfg, args.model, args.quality)
    _train(args, tcfg, _Run, meta={"rate_point": args.quality, "model": args.model, "source": "train"})
    print(f"model {args.model} q{args.quality}: trained {tcfg.steps} steps (λ={tcfg.lmbda}) -> {args.out}")
    return 0


def _progressive(args: argparse.Namespace, cfg: Config, model: ModelConfig, progressive: bool) -> int:
    """The one checkpoint of progressive model ``args.model``: trained, or from the authors' file."""
    name, arch = args.model, model.architecture
    if not progressive:
        raise ConfigError(
            f"{cfg.source}: train.progressive: model {name!r} (architecture {arch!r}) is not progressive; it is made "
            f"per rate point: list it under train.models and pass --quality"
        )
    if model.source == "file":
        meta = {"model": name, "num_samples": model.num_samples, "gan": model.gan}
        file_checkpoint(arch, model.path, args.out, sha256=model.sha256, meta=meta)
        print(f"model {name}: the authors' weights {model.path} -> {args.out}")
        return 0
    if model.source != "train":
        raise ConfigError(
            f"{cfg.source}: models.{name}.source: {model.source} has no progressive checkpoints; use train or file"
        )
    tcfg = ProgressiveTrainConfig.from_params(cfg, name, mirror=cfg.mirror(args.mirror))
    _train(args, tcfg, SICRun, meta={"model": name})
    phases = ", ".join(f"{k} {v}" for k, v in tcfg.phases().items())
    print(f"model {name}: trained {tcfg.steps} steps ({phases}; perceptual {tcfg.perceptual.label}) -> {args.out}")
    return 0
