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

The loop (:func:`train`) drives a run object (:class:`_Run`: the state, one step, a log row,
the final record); a model with another objective subclasses it (progressive SIC's phases and
loss: ``benchmark.training.sic.SICRun``), is passed as ``train(..., run_class=...)`` and keeps
the step loop, the resumable state, the log, the non-finite-loss stop and the final checkpoint
of this module.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Type

import numpy as np
import torch

from benchmark.config import Config, ConfigError, TrainSettings, params_hash, parse_options
from benchmark.errors import BenchmarkError
from benchmark.fileio import atomic_write
from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
from benchmark.models.specs import ARCHITECTURES, build_model
from benchmark.registry import unknown_name

LOG_COLUMNS = ["step", "loss", "bpp_estimated", "mse", "psnr", "aux_loss", "lr", "seconds"]


class TrainingError(BenchmarkError, RuntimeError):
    """Training cannot go on (non-finite loss, unusable data); the message says where and why."""


@dataclass(frozen=True)
class TrainConfig:
    """What one training run does: architecture ``arch`` at channel counts ``size``, λ
    ``lmbda`` on CompressAI's scale (λ · 255² · MSE + bpp), the budget's ``settings`` for this
    model (steps, batch, patches, learning rates, ...), ``seed`` and ``device``."""

    arch: str
    size: Dict[str, int]
    lmbda: float
    settings: TrainSettings
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_params(cls, cfg: Config, model: str, quality: int) -> "TrainConfig":
        """The run of ``model`` at zoo quality ``quality`` under ``train.budget``: its entry in
        the budget (size and settings), the λ of the quality, the seed and device. Raises
        ``ConfigError`` naming the key when the model, its budget entry or the λ is missing."""
        spec = cfg.model(model)
        budget = cfg.budget()
        where = f"{cfg.source}: train.budgets.{cfg.train.budget}.models"
        if model not in budget.models:
            raise ConfigError(str(unknown_name("model", model, budget.models, where)))
        if quality not in cfg.train.lambdas:
            raise ConfigError(f"{cfg.source}: train.lambdas has no λ for quality {quality}")
        entry = budget.models[model]
        arch = spec.architecture
        if entry.size == "paper":
            size = ARCHITECTURES.get(arch).paper_sizes[quality]
        else:
            size = dict(entry.size)
        return cls(arch=arch, size=size, lmbda=float(cfg.train.lambdas[quality]), settings=entry.settings,
                   seed=cfg.train.seed, device=cfg.train.device)

    @classmethod
    def make(cls, arch: str, size: Dict[str, int], lmbda: float, *, seed: int = 0, device: str = "auto", **settings) -> "TrainConfig":
        """A run from plain values: ``settings`` are ``TrainSettings`` fields (its defaults for
        the rest). Raises ``ConfigError`` for an unknown or invalid setting."""
        return cls(arch, dict(size), float(lmbda), parse_options(TrainSettings, settings, "train settings"), seed, device)

    @property
    def steps(self) -> int:
        return self.settings.steps

    @property
    def label(self) -> str:
        """How messages name the run (``mbt2018 λ=0.013``)."""
        return f"{self.arch} λ={self.lmbda}"

    def record(self) -> Dict[str, object]:
        """The configuration as a flat JSON-ready dict (stored in checkpoints)."""
        d = {"arch": self.arch, "size": dict(self.size), "lmbda": self.lmbda, **asdict(self.settings)}
        d.update(milestones=list(self.settings.milestones), seed=self.seed, device=self.device)
        return d

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not checkpoint/log frequency, not device)."""
        return config_fingerprint(self.record())


def config_fingerprint(record: Dict[str, object]) -> str:
    """Hash of a run configuration's ``record()`` without what does not change the weights
    (``checkpoint_every``, ``log_every``, ``device``: keys the record must have; ``KeyError``
    otherwise): the key that lets a run resume from a state file."""
    d = dict(record)
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
    st = cfg.settings
    opt = torch.optim.Adam(main, lr=st.lr)
    aux_opt = torch.optim.Adam(aux, lr=st.aux_lr) if aux else None
    milestones = sorted({max(1, int(round(m * st.steps))) for m in st.milestones})
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    return opt, aux_opt, sched, main


def write_log(path: Path, rows: List[Dict[str, float]], columns: Sequence[str] = LOG_COLUMNS) -> None:
    """Write the training log CSV (``columns``, one row per logged step; header only for no rows)
    atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(columns))
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


class _Run:
    """The state of one training run: model, optimizers, sampler, step, log rows and seconds;
    ``restore`` from and ``save`` to the resumable state file.

    A subclass with another objective overrides :meth:`setup` (its optimizers),
    :meth:`optim_state` / :meth:`load_optim_state` (what of them the state file holds),
    :meth:`one_step`, :meth:`log` (rows with its ``columns``), :meth:`final_record` and, to add
    to the checkpoint's ``meta``, :meth:`checkpoint_meta`; ``total_steps`` is what the loop runs
    to."""

    columns: Sequence[str] = LOG_COLUMNS

    def __init__(self, cfg, images: Sequence[np.ndarray], state_path: Path, log_path: Path) -> None:
        self.cfg, self.state_path, self.log_path = cfg, state_path, log_path
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.arch, cfg.size).to(self.device).train()
        self.sampler = PatchSampler(images, cfg.settings.patch_size, cfg.seed)
        self.step, self.rows, self.elapsed = 0, [], 0.0
        self.setup()

    @property
    def total_steps(self) -> int:
        return self.cfg.steps

    def setup(self) -> None:
        """Build the optimizers (and anything else a step needs besides the model)."""
        self.opt, self.aux_opt, self.sched, self.main_params = _optimizers(self.model, self.cfg)

    def optim_state(self) -> Dict[str, object]:
        """The optimizers' part of the resumable state."""
        return {
            "optimizer": self.opt.state_dict(),
            "aux_optimizer": self.aux_opt.state_dict() if self.aux_opt is not None else None,
            "scheduler": self.sched.state_dict(),
        }

    def load_optim_state(self, state: Dict[str, object]) -> None:
        """Restore what :meth:`optim_state` saved (the model and ``step`` are restored already)."""
        self.opt.load_state_dict(state["optimizer"])
        if self.aux_opt is not None:
            self.aux_opt.load_state_dict(state["aux_optimizer"])
        self.sched.load_state_dict(state["scheduler"])

    def restore(self) -> None:
        """Continue from ``state_path`` when it holds a state of this configuration."""
        if not self.state_path.is_file():
            return
        state = torch.load(self.state_path, map_location=self.device, weights_only=False)
        if state.get("fingerprint") != self.cfg.fingerprint():
            print(f"{self.state_path}: training state of another configuration; starting from scratch", file=sys.stderr)
            return
        self.model.load_state_dict(state["model"])
        self.step, self.rows, self.elapsed = state["step"], state["log_rows"], state["seconds"]
        self.load_optim_state(state)
        self.sampler.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        print(f"resuming {self.cfg.label} from step {self.step} ({self.state_path})", file=sys.stderr)

    def save(self) -> None:
        """Write the whole training state atomically, and the log."""
        buf = io.BytesIO()
        torch.save(
            {
                "fingerprint": self.cfg.fingerprint(),
                "config": self.cfg.record(),
                "model": self.model.state_dict(),
                **self.optim_state(),
                "generator": self.sampler.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
                "step": self.step,
                "log_rows": self.rows,
                "seconds": self.elapsed,
            },
            buf,
        )
        atomic_write(self.state_path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))
        write_log(self.log_path, self.rows, self.columns)

    def one_step(self) -> Dict[str, torch.Tensor]:
        """One optimizer step (main and auxiliary); the losses. Raises ``TrainingError`` on a
        non-finite loss, naming the step."""
        cfg = self.cfg
        x = self.sampler.sample(cfg.settings.batch_size).to(self.device)
        self.opt.zero_grad(set_to_none=True)
        if self.aux_opt is not None:
            self.aux_opt.zero_grad(set_to_none=True)
        losses = rd_loss(self.model(x), x, cfg.lmbda)
        if not torch.isfinite(losses["loss"]):
            raise TrainingError(
                f"{cfg.label}: loss became {losses['loss'].item()} at step {self.step + 1} "
                f"(bpp {losses['bpp'].item()}, mse {losses['mse'].item()}, lr {self.sched.get_last_lr()[0]}); "
                f"the last good state is {self.state_path if self.state_path.is_file() else 'not saved yet'}"
            )
        losses["loss"].backward()
        if cfg.settings.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.main_params, cfg.settings.clip_max_norm)
        self.opt.step()
        losses["aux_loss"] = self.model.aux_loss()
        if self.aux_opt is not None:
            losses["aux_loss"].backward()
            self.aux_opt.step()
        self.sched.step()
        self.step += 1
        return losses

    def log(self, losses: Dict[str, torch.Tensor]) -> Dict[str, float]:
        """Append and return a log row (``LOG_COLUMNS``) for the step just taken."""
        mse = losses["mse"].item()
        self.rows.append(
            {
                "step": self.step,
                "loss": losses["loss"].item(),
                "bpp_estimated": losses["bpp"].item(),
                "mse": mse,
                "psnr": 10 * math.log10(1.0 / mse) if mse > 0 else float("inf"),
                "aux_loss": float(losses["aux_loss"].item()),
                "lr": self.sched.get_last_lr()[0],
                "seconds": round(self.elapsed, 3),
            }
        )
        return self.rows[-1]

    def final_record(self) -> Dict[str, object]:
        """What the final checkpoint says of the run besides the weights (arch, size, λ, ...)."""
        cfg = self.cfg
        return {"arch": cfg.arch, "size": dict(cfg.size), "lmbda": cfg.lmbda, "train_config": cfg.record()}

    def checkpoint_meta(self, meta: Optional[Dict[str, object]]) -> Dict[str, object]:
        """The ``meta`` the caller passed to :func:`train` as the final checkpoint stores it
        (after the run's own fields, overriding them): here a copy (``{}`` for None)."""
        return dict(meta or {})


def train(
    cfg,
    images: Sequence[np.ndarray],
    out_path: Path,
    state_path: Path,
    log_path: Path,
    *,
    run_class: Type[_Run] = _Run,
    train_image_hashes: Sequence[str] = (),
    meta: Optional[Dict[str, object]] = None,
    progress: bool = True,
    on_step: Optional[Callable[[int], None]] = None,
) -> Path:
    """Train ``cfg.arch`` on ``images`` (uint8 (H, W, 3)); write the final checkpoint to ``out_path``.

    ``cfg``: a :class:`TrainConfig` for the default ``run_class`` (:class:`_Run`, the RD
    objective); another run class takes its own configuration (progressive SIC:
    ``benchmark.training.sic.SICRun`` with a ``ProgressiveTrainConfig``).

    The run is restored from ``state_path`` when that holds a state with the same
    ``cfg.fingerprint()`` (else training starts from scratch), takes steps up to
    ``run.total_steps`` (a log row every ``log_every``, the state every ``checkpoint_every``
    and at the end), then the coder tables are computed and the final checkpoint written:
    ``run.final_record()``, ``step``, ``state_dict``, ``coder_ready``, ``train_images_sha256``,
    ``train_seconds`` and ``run.checkpoint_meta(meta)``. ``log_path``: CSV with the run's
    ``columns`` (here ``LOG_COLUMNS``: bpp is the estimated training rate, PSNR from the
    training MSE in dB). ``on_step(step)`` is called after each completed step (tests use it to
    interrupt). Raises :class:`TrainingError` on a non-finite loss, naming the step.
    """
    run = run_class(cfg, images, state_path, log_path)
    meta = run.checkpoint_meta(meta)
    run.restore()
    st = run.cfg.settings
    total = run.total_steps
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=run.step, desc=f"train {run.cfg.label}", unit="step", file=sys.stderr)
    t_last = time.perf_counter()
    while run.step < total:
        losses = run.one_step()
        now = time.perf_counter()
        run.elapsed += now - t_last
        t_last = now
        if run.step % st.log_every == 0 or run.step == total:
            row = run.log(losses)
            if bar is not None:
                bar.set_postfix({k: f"{row[k]:.3f}" for k in ("loss", "bpp_estimated", "psnr") if k in row})
        if bar is not None:
            bar.update(1)
        if run.step % st.checkpoint_every == 0 or run.step == total:
            run.save()
        if on_step is not None:
            on_step(run.step)
    if bar is not None:
        bar.close()
    model = finalize_for_coding(run.model)
    write_log(run.log_path, run.rows, run.columns)
    record = {**run.final_record(), "step": run.step, "state_dict": model.state_dict(), "coder_ready": True,
              "train_images_sha256": list(train_image_hashes), "train_seconds": run.elapsed}
    return save_checkpoint(out_path, {**record, **meta})
