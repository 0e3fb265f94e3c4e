"""Rate-distortion training of any registered architecture, resumable and deterministic.

Follows CompressAI's ``examples/train.py``:

- loss = λ · 255² · MSE(x̂, x) + bpp, with x in [0, 1], MSE over pixels and channels, and
  bpp = Σ −log₂ p(ŷ, ẑ) / (N · H · W) from the model's likelihoods (the *estimated* rate of the
  training forward pass, with additive uniform noise in place of rounding);
- the auxiliary loss (``model.aux_loss()``) trains the entropy bottleneck's ``quantiles`` with
  its own Adam optimizer; all other parameters use the main Adam optimizer;
- the main learning rate drops ×0.1 at each milestone (fractions of ``steps``); gradients of the
  main parameters are clipped to ``clip_max_norm``;
- batches are random ``patch_size`` crops of the training images with random horizontal and
  vertical flips, drawn from a seeded ``torch.Generator`` whose state is checkpointed.

Every ``checkpoint_every`` steps the whole training state (model, optimizers, scheduler,
generator, log) is written to ``state_path``; a run started again with the same configuration
resumes there and gives the same weights as an uninterrupted run (on the same device). A loss
that is not finite stops the run with :class:`TrainingError`. When training ends, the entropy
coder's tables are computed once on the CPU and the final checkpoint is written.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from benchmark.config import params_hash
from benchmark.fileio import atomic_write
from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
from benchmark.models.specs import build_model

LOG_COLUMNS = ["step", "loss", "bpp_estimated", "mse", "psnr", "aux_loss", "lr", "seconds"]


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable data); the message says where and why."""


@dataclass(frozen=True)
class TrainConfig:
    """What one training run does. ``lmbda`` on CompressAI's scale (λ · 255² · MSE + bpp)."""

    arch: str
    size: Dict[str, int]
    lmbda: float
    steps: int
    batch_size: int = 8
    patch_size: int = 128
    lr: float = 1e-4
    aux_lr: float = 1e-3
    milestones: Sequence[float] = (0.8,)
    clip_max_norm: float = 1.0
    checkpoint_every: int = 500
    log_every: int = 25
    seed: int = 0
    device: str = "auto"

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not checkpoint/log frequency, not device)."""
        d = asdict(self)
        for k in ("checkpoint_every", "log_every", "device"):
            d.pop(k)
        return params_hash(d)


def pick_device(requested: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. ``cuda`` without a GPU raises ``TrainingError``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(requested)


class PatchSampler:
    """Random crops with flips from a list of uint8 (H, W, 3) images, deterministic by seed.

    ``sample(batch)`` returns float32 (batch, 3, p, p) in [0, 1]. Images are chosen uniformly
    with replacement; crop offsets uniform; each patch flipped horizontally and vertically with
    probability 1/2. All randomness comes from ``self.generator``.
    """

    def __init__(self, images: Sequence[np.ndarray], patch_size: int, seed: int) -> None:
        small = [i for i, im in enumerate(images) if min(im.shape[:2]) < patch_size]
        if not images:
            raise TrainingError("no training images")
        if small:
            raise TrainingError(f"{len(small)} training images are smaller than patch_size={patch_size}")
        self.images = [torch.from_numpy(np.require(im, np.uint8, ['C', 'W'])).permute(2, 0, 1) for im in images]
        self.patch_size = patch_size
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, batch: int) -> torch.Tensor:
        g, p = self.generator, self.patch_size
        out = torch.empty(batch, 3, p, p, dtype=torch.uint8)
        idx = torch.randint(len(self.images), (batch,), generator=g)
        for b, i in enumerate(idx.tolist()):
            im = self.images[i]
            top = int(torch.randint(im.shape[1] - p + 1, (1,), generator=g))
            left = int(torch.randint(im.shape[2] - p + 1, (1,), generator=g))
            patch = im[:, top : top + p, left : left + p]
            flips = torch.rand(2, generator=g)
            if flips[0] < 0.5:
                patch = patch.flip(2)
            if flips[1] < 0.5:
                patch = patch.flip(1)
            out[b] = patch
        return out.float().div_(255.0)


def rd_loss(out: Dict[str, object], x: torch.Tensor, lmbda: float) -> Dict[str, torch.Tensor]:
    """CompressAI's RateDistortionLoss (MSE): ``λ·255²·MSE + bpp``; returns loss, bpp, mse."""
    n, _, h, w = x.shape
    num_pixels = n * h * w
    bpp = sum(torch.log(lk).sum() for lk in out["likelihoods"].values()) / (-math.log(2) * num_pixels)
    mse = torch.nn.functional.mse_loss(out["x_hat"], x)
    return {"loss": lmbda * 255**2 * mse + bpp, "bpp": bpp, "mse": mse}


def _optimizers(model: torch.nn.Module, cfg: TrainConfig):
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    main = [p for n, p in params.items() if not n.endswith(".quantiles")]
    aux = [p for n, p in params.items() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux, lr=cfg.aux_lr) if aux else None
    milestones = sorted({max(1, int(round(m * cfg.steps))) for m in cfg.milestones})
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    return opt, aux_opt, sched, main


def _write_log(path: Path, rows: List[Dict[str, float]]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def train(
    cfg: TrainConfig,
    images: Sequence[np.ndarray],
    out_path: Path,
    state_path: Path,
    log_path: Path,
    *,
    train_image_hashes: Sequence[str] = (),
    meta: Optional[Dict[str, object]] = None,
    progress: bool = True,
    on_step: Optional[Callable[[int], None]] = None,
) -> Path:
    """Train ``cfg.arch`` on ``images`` (uint8 (H, W, 3)); write the final checkpoint to ``out_path``.

    ``state_path``: the resumable training state (read if present with the same
    ``cfg.fingerprint()``, else training starts from scratch). ``log_path``: CSV with
    ``LOG_COLUMNS`` (bpp is the estimated training rate, PSNR from the training MSE in dB).
    ``on_step(step)`` is called after each completed step (tests use it to interrupt).
    Raises :class:`TrainingError` on a non-finite loss, naming the step.
    """
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, cfg.size).to(device).train()
    sampler = PatchSampler(images, cfg.patch_size, cfg.seed)
    opt, aux_opt, sched, main_params = _optimizers(model, cfg)
    step, rows, elapsed = 0, [], 0.0

    if state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        if state.get("fingerprint") == cfg.fingerprint():
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if aux_opt is not None:
                aux_opt.load_state_dict(state["aux_optimizer"])
            sched.load_state_dict(state["scheduler"])
            sampler.generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            step, rows, elapsed = state["step"], state["log_rows"], state["seconds"]
            print(f"resuming {cfg.arch} λ={cfg.lmbda} from step {step} ({state_path})", file=sys.stderr)
        else:
            print(f"{state_path}: training state of another configuration; starting from scratch", file=sys.stderr)

    def save_state() -> None:
        buf = io.BytesIO()
        torch.save(
            {
                "fingerprint": cfg.fingerprint(),
                "config": asdict(cfg),
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "aux_optimizer": aux_opt.state_dict() if aux_opt is not None else None,
                "scheduler": sched.state_dict(),
                "generator": sampler.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "log_rows": rows,
                "seconds": elapsed,
            },
            buf,
        )
        atomic_write(state_path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))
        _write_log(log_path, rows)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.arch} λ={cfg.lmbda}", unit="step", file=sys.stderr)
    t_last = time.perf_counter()
    while step < cfg.steps:
        x = sampler.sample(cfg.batch_size).to(device)
        opt.zero_grad(set_to_none=True)
        if aux_opt is not None:
            aux_opt.zero_grad(set_to_none=True)
        out = model(x)
        losses = rd_loss(out, x, cfg.lmbda)
        if not torch.isfinite(losses["loss"]):
            raise TrainingError(
                f"{cfg.arch} λ={cfg.lmbda}: loss became {losses['loss'].item()} at step {step + 1} "
                f"(bpp {losses['bpp'].item()}, mse {losses['mse'].item()}, lr {sched.get_last_lr()[0]}); "
                f"the last good state is {state_path if state_path.is_file() else 'not saved yet'}"
            )
        losses["loss"].backward()
        if cfg.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(main_params, cfg.clip_max_norm)
        opt.step()
        aux_loss = model.aux_loss()
        if aux_opt is not None:
            aux_loss.backward()
            aux_opt.step()
        sched.step()
        step += 1
        now = time.perf_counter()
        elapsed += now - t_last
        t_last = now
        if step % cfg.log_every == 0 or step == cfg.steps:
            mse = losses["mse"].item()
            rows.append(
                {
                    "step": step,
                    "loss": losses["loss"].item(),
                    "bpp_estimated": losses["bpp"].item(),
                    "mse": mse,
                    "psnr": 10 * math.log10(1.0 / mse) if mse > 0 else float("inf"),
                    "aux_loss": float(aux_loss.item()),
                    "lr": sched.get_last_lr()[0],
                    "seconds": round(elapsed, 3),
                }
            )
            if bar is not None:
                bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", bpp=f"{rows[-1]['bpp_estimated']:.3f}", psnr=f"{rows[-1]['psnr']:.2f}")
        if bar is not None:
            bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_state()
        if on_step is not None:
            on_step(step)
    if bar is not None:
        bar.close()

    model = finalize_for_coding(model)
    _write_log(log_path, rows)
    return save_checkpoint(
        out_path,
        {
            "arch": cfg.arch,
            "size": dict(cfg.size),
            "lmbda": cfg.lmbda,
            "step": step,
            "state_dict": model.state_dict(),
            "coder_ready": True,
            "train_config": asdict(cfg),
            "train_images_sha256": list(train_image_hashes),
            "train_seconds": elapsed,
            **(meta or {}),
        },
    )
