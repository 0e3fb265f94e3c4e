"""Stage ``model``: make the checkpoint of one learned model at one rate point.

``models.<name>.source`` decides how: ``train`` runs the training loop here with the budget
``train.budget`` (sizes, steps, batch, patches, learning rates from ``train.budgets.<budget>``)
and the λ of the rate point (``train.lambdas``, CompressAI's MSE λ per zoo quality); ``zoo``
fetches CompressAI's pretrained weights (URL + hash, torch hub cache or mirror) and never trains
instead. Rate points are CompressAI zoo quality indices (1..8).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from benchmark.config import ConfigError, read_params, resolve_mirror
from benchmark.data.images import load_rgb8, read_manifest
from benchmark.models.specs import ARCHITECTURES
from benchmark.training.loop import TrainConfig, train

TRAIN_KEYS = {"batch_size", "patch_size", "lr", "aux_lr", "milestones", "clip_max_norm", "checkpoint_every", "log_every", "steps"}


def model_config(params: Dict[str, Any], name: str, source: str = "params.yaml") -> Dict[str, Any]:
    """``models.<name>`` validated: ``arch`` (registered), ``source`` (train | zoo)."""
    m = (params.get("models") or {}).get(name)
    if not isinstance(m, dict):
        raise ConfigError(f"{source}: missing key 'models.{name}'")
    arch = m.get("arch", name)
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{source}: models.{name}.arch: unknown architecture {arch!r}; known: {ARCHITECTURES.names()}")
    if m.get("source", "train") not in ("train", "zoo"):
        raise ConfigError(f"{source}: models.{name}.source must be 'train' or 'zoo'")
    return {"arch": arch, "source": m.get("source", "train")}


def train_config(params: Dict[str, Any], name: str, quality: int, source: str = "params.yaml") -> TrainConfig:
    """The ``TrainConfig`` of model ``name`` at zoo quality ``quality`` under ``train.budget``.

    The budget's ``steps`` apply to every architecture unless ``model_steps`` (architecture ->
    steps) gives that architecture its own count. Raises ``ConfigError`` naming the key for a
    missing budget, λ or size, an unknown key, or a bad ``model_steps`` entry.
    """
    arch = model_config(params, name, source)["arch"]
    t = params.get("train") or {}
    budget_name = t.get("budget")
    budget = (t.get("budgets") or {}).get(budget_name)
    if not isinstance(budget, dict):
        raise ConfigError(f"{source}: train.budget {budget_name!r} is not under train.budgets")
    lambdas = {int(k): float(v) for k, v in (t.get("lambdas") or {}).items()}
    if quality not in lambdas:
        raise ConfigError(f"{source}: train.lambdas has no λ for quality {quality}")
    sizes = budget.get("sizes")
    spec = ARCHITECTURES.get(arch)
    if sizes == "paper":
        size = spec.paper_sizes[quality]
    elif isinstance(sizes, dict) and arch in sizes:
        size = {k: int(v) for k, v in sizes[arch].items()}
    else:
        raise ConfigError(f"{source}: train.budgets.{budget_name}.sizes has no entry for {arch} (or use 'paper')")
    unknown = set(budget) - TRAIN_KEYS - {"sizes", "model_steps"}
    if unknown:
        raise ConfigError(f"{source}: train.budgets.{budget_name}: unknown keys {sorted(unknown)}")
    kw = {k: budget[k] for k in TRAIN_KEYS if k in budget}
    model_steps = budget.get("model_steps") or {}
    if not isinstance(model_steps, dict) or set(model_steps) - set(ARCHITECTURES.names()):
        raise ConfigError(
            f"{source}: train.budgets.{budget_name}.model_steps must map architectures to step counts, got {model_steps!r}"
        )
    if arch in model_steps:
        steps = model_steps[arch]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
            raise ConfigError(f"{source}: train.budgets.{budget_name}.model_steps.{arch} must be a positive integer, got {steps!r}")
        kw["steps"] = steps
    if "milestones" in kw:
        kw["milestones"] = tuple(float(m) for m in kw["milestones"])
    return TrainConfig(
        arch=arch, size=size, lmbda=lambdas[quality], seed=int(t.get("seed", 0)), device=str(t.get("device", "auto")), **kw
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark model",
        description="Make the checkpoint of one learned model at one rate point (zoo quality index): "
        "train it here (models.<name>.source: train; budget train.budget) or fetch CompressAI's "
        "pretrained weights (source: zoo). Training resumes from --state if interrupted.",
    )
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--model", required=True, help="entry of `models` in params.yaml")
    p.add_argument("--quality", required=True, type=int, help="rate point: CompressAI zoo quality 1..8")
    p.add_argument("--train-data", type=Path, help="fetched training set directory (manifest.csv)")
    p.add_argument("--out", required=True, type=Path, help="final checkpoint (.pt)")
    p.add_argument("--state", type=Path, help="resumable training state (default: <out>.state)")
    p.add_argument("--log", type=Path, help="training log CSV (default: <out without .pt>.log.csv)")
    p.add_argument("--mirror", default=None, help="mirror directory for zoo weights")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    params = read_params(args.params)
    mc = model_config(params, args.model, args.params)
    log = args.log or args.out.with_suffix(".log.csv")
    if mc["source"] == "zoo":
        from benchmark.models.zoo import zoo_checkpoint

        zoo_checkpoint(mc["arch"], args.quality, args.out, mirror=resolve_mirror(params, args.mirror))
        print(f"model {args.model} q{args.quality}: CompressAI zoo weights -> {args.out}")
        return 0
    cfg = train_config(params, args.model, args.quality, args.params)
    if args.train_data is None:
        raise ConfigError("--train-data is required to train")
    manifest = read_manifest(args.train_data)
    images = [load_rgb8(args.train_data / row.file) for row in manifest]
    state = args.state or args.out.with_suffix(".state")
    train(
        cfg,
        images,
        args.out,
        state,
        log,
        train_image_hashes=[row.pixel_sha256 for row in manifest],
        meta={"rate_point": args.quality, "model": args.model, "source": "train"},
        progress=not args.no_progress,
    )
    print(f"model {args.model} q{args.quality}: trained {cfg.steps} steps (λ={cfg.lmbda}) -> {args.out}")
    return 0
