"""Training progressive SIC (Liang et al., "Synonymous Variational Inference for Perceptual Image
Compression", ICML 2025): the authors' schedule as one run (:class:`SICRun`) of the resumable
loop (``benchmark.training.loop.train(..., run_class=SICRun)``, or :func:`train_progressive`),
making one checkpoint for all 16 levels.

Phases (budget settings, ``benchmark.config.ProgressiveSettings``; global step numbers run
through all three, so one state file and one log cover the run):

1. **warm-up**, ``warmup_steps`` (the authors' ``warming.py``): the full-rate reconstruction
   only, ``λ16·MSE + γ16·P + β16·(bpp_y + bpp_z) + std_s(bpp_s) − min_s(bpp_s)`` with
   the per-slice rates bpp_s of the noisy training likelihoods (β16 = 1); Adam.
2. **progressive**, ``steps`` (``main.py``): at step i of the phase the level is
   ℓ = 16 − (i mod 16) (16, 15, ..., 1, rolled per batch), and the loss is the paper's
   (:func:`benchmark.models.sic.official_loss`)::

       0.5·[λ16·MSE(x̂) + γ16·P(x̂) + β16·(bpp_y + bpp_z)]
     + 0.5·[λℓ·E_M MSE(x̂_m) + γℓ·E_M P(x̂_m) + βℓ·(bpp_ys + bpp_z)]
     + synonym_distance + sample_distance

   with λℓ = 128ℓ, γℓ = 2^(5 − ℓ/8), βℓ = 2^(6 − 3ℓ/8) (``official_loss_weights``), x̂_m the
   M = ``num_samples`` reconstructions from the first ℓ slices and sampled others, bpp_ys the
   synonymous rate of the transmitted slices; the first ``balance_steps`` add the authors'
   first-epochs terms ``64·std_s(bpp_s) − 4·bpp_ℓ`` (per-slice rates of the rounded latent);
   AdamW (``weight_decay``), the learning rate ×0.1 at the ``milestones`` (fractions of
   ``steps``).
3. **GAN fine-tune**, ``gan_steps`` (``finetune_withGAN.py``; 0 on CPU budgets): a
   discriminator conditioned on the transmitted latent (:class:`ConditionalDiscriminator`) is
   trained first on each batch with the non-saturating loss
   ``½[D(x)→1, D(x̂)→0] + ½[D(x)→1, D(x̂_m)→0]``; then the model with the progressive loss
   (no balance terms) plus ``0.5·γ16·G(x̂) + 0.5·γℓ·E_M G(x̂_m)``, G = −log σ(D(·)) (the
   generator's terms enter with the perceptual weight, as the authors'); AdamW for both, the
   discriminator at ``disc_lr``.

Each phase starts fresh optimizers (the authors run each phase as its own script); the
entropy bottleneck's quantiles have their own optimizer throughout (``aux_lr``); gradients are
clipped to ``clip_max_norm`` (the authors: 0.5).

**The perceptual term P** is LPIPS (AlexNet, v0.1; ``lpips(x, x̂, normalize=True)``, inputs in
[0, 1]) when its weight files resolve exactly as the LPIPS metric's do
(``benchmark.metrics.weights.resolve_weights``: ``metrics.weights`` paths, the lpips package's
linear layers, the hub cache, the mirror, a download if ``metrics.download``). Without them the
weight-free stand-in is **1 − MS-SSIM** (:func:`ms_ssim`): differentiable, in [0, 1] like
LPIPS' typical range, a structural rather than pixel-wise similarity, and the quality term of
the MS-SSIM-trained learned codecs; it rewards structure but not the textures LPIPS asks for,
so a stand-in model is not the paper's. ``perceptual: lpips`` (the paper) fails without the
weights, ``ms-ssim`` always uses the stand-in, ``auto`` the first that is available (with a
:class:`PerceptualStandInWarning`); the checkpoint records which (``perceptual``:
``lpips`` or ``ms-ssim (stand-in for LPIPS)``), with M, the phases and their steps.

Determinism: the crops come from the loop's seeded sampler, the untransmitted slices' noise
from a torch generator seeded with ``seed + 1``, the discriminator is initialised from
``seed + 2``; all their states are in the resumable state, so an interrupted run ends with the
weights of an uninterrupted one (on the same device).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.config import Config, ConfigError, ProgressiveSettings, TrainSettings
from benchmark.metrics.base import METRICS
from benchmark.metrics.weights import ResolvedWeights, WeightsMissing, resolve_weights
from benchmark.models.sic import NUM_SLICES, official_loss, official_loss_weights
from benchmark.models.specs import ARCHITECTURES
from benchmark.registry import unknown_name
from benchmark.training.loop import TrainingError, _Run, config_fingerprint, train

PHASES = ("warmup", "progressive", "gan")
LPIPS = "lpips"
STAND_IN = "ms-ssim"
STAND_IN_LABEL = "ms-ssim (stand-in for LPIPS)"
LOG_COLUMNS = [
    "step", "phase", "level", "loss", "bpp_estimated", "bpp_level", "mse", "psnr", "mse_samples", "psnr_samples",
    "perceptual", "perceptual_samples", "synonym_distance", "sample_distance", "d_loss", "g_loss", "aux_loss", "lr",
    "seconds",
]
"""Columns of a SIC training log: ``phase``; ``level`` ℓ (16 in the warm-up); ``bpp_estimated``
= bpp_y + bpp_z (all slices) and ``bpp_level`` = bpp_ys + bpp_z (the transmitted ones), both
estimated training rates; ``mse``/``psnr`` of the full-rate reconstruction and
``mse_samples``/``psnr_samples`` of the level's (expected over M); the perceptual term P of
each; the distances; the GAN losses (discriminator, generator terms); empty where a phase has
no such value."""

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli, Bovik 2003
MS_SSIM_WINDOW, MS_SSIM_SIGMA = 11, 1.5
DISC_CONTEXT_CHANNELS = 12


class PerceptualStandInWarning(UserWarning):
    """``perceptual: auto`` fell back to the weight-free stand-in (LPIPS' weights are not
    available); the checkpoint says ``ms-ssim (stand-in for LPIPS)``."""


# ---- the stand-in: MS-SSIM --------------------------------------------------------------------


def ms_ssim_scales(side: int) -> int:
    """Scales of :func:`ms_ssim` for images whose short side is ``side`` px: the most of the
    standard five whose coarsest image still holds the 11-px window, side ≥ 10·2^(k−1) + 1
    (256 px: 5, 128 px: 4, 64 px: 3). Raises ``ValueError`` below 11 px."""
    if side < MS_SSIM_WINDOW:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_WINDOW} px a side, got {side}")
    k = 1
    while k < len(MS_SSIM_WEIGHTS) and side >= (MS_SSIM_WINDOW - 1) * 2 ** k + 1:
        k += 1
    return k


def _gaussian_window(channels: int, device, dtype) -> torch.Tensor:
    coords = torch.arange(MS_SSIM_WINDOW, device=device, dtype=dtype) - (MS_SSIM_WINDOW - 1) / 2
    g = torch.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / (2 * MS_SSIM_SIGMA**2))
    return (g / g.sum()).expand(channels, 1, MS_SSIM_WINDOW, MS_SSIM_WINDOW)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, scales: Optional[int] = None, eps: float = 1e-6) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik 2003) per image, differentiable.

    ``x``, ``y``: float (N, C, H, W) in [0, 1]. Gaussian window 11 px, σ 1.5, no padding;
    K1 = 0.01, K2 = 0.03; ``scales`` (default :func:`ms_ssim_scales` of the short side) of the
    standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), the first ``scales`` of them
    renormalised to sum to 1; 2x2 average pooling between scales (an odd side first gets a
    replicated row/column at the top/left). Per channel, the contrast-structure terms of the
    finer scales and the SSIM of the coarsest are raised to their weights and multiplied, then
    averaged over channels. Returns (N,). Equals piq's ``multi_scale_ssim`` with the same scale
    weights, except that the terms are clamped below at ``eps`` (piq: at 0), so that the
    gradient stays finite when a term is ≤ 0 (an early, poor reconstruction).
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ms_ssim: expected two (N, C, H, W) batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    k = ms_ssim_scales(min(x.shape[-2:])) if scales is None else int(scales)
    min_side = (MS_SSIM_WINDOW - 1) * 2 ** (k - 1) + 1
    if not 1 <= k <= len(MS_SSIM_WEIGHTS) or min(x.shape[-2:]) < min_side:
        raise ValueError(f"ms_ssim: {k} scales need images of at least {min_side} px a side, got {tuple(x.shape[-2:])}")
    c = x.shape[1]
    win = _gaussian_window(c, x.device, x.dtype)
    c1, c2 = 0.01**2, 0.03**2
    weights = torch.tensor(MS_SSIM_WEIGHTS[:k], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    terms = []
    for i in range(k):
        if i:
            pad = max(x.shape[2] % 2, x.shape[3] % 2)
            if pad:
                x, y = (F.pad(t, [pad, 0, pad, 0], mode="replicate") for t in (x, y))
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        mu_x, mu_y = F.conv2d(x, win, groups=c), F.conv2d(y, win, groups=c)
        sxx = F.conv2d(x * x, win, groups=c) - mu_x**2
        syy = F.conv2d(y * y, win, groups=c) - mu_y**2
        sxy = F.conv2d(x * y, win, groups=c) - mu_x * mu_y
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        if i < k - 1:
            terms.append(cs.mean(dim=(-1, -2)))
        else:
            terms.append(((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs).mean(dim=(-1, -2)))
    stacked = torch.stack(terms).clamp_min(eps)  # (scales, N, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(dim=1)


# ---- the perceptual term ----------------------------------------------------------------------


@dataclass(frozen=True)
class PerceptualTerm:
    """The resolved perceptual term: ``name`` (``lpips`` or ``ms-ssim``), ``label`` (what the
    checkpoint and results say), the LPIPS weight ``files`` it uses (records of
    ``ResolvedWeights``, empty for the stand-in) and, for a network, their paths."""

    name: str
    files: Tuple[Dict[str, Any], ...] = ()
    paths: Tuple[Tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        return LPIPS if self.name == LPIPS else STAND_IN_LABEL

    def record(self) -> Dict[str, Any]:
        """What the fingerprint and the checkpoint keep: the name and the files' SHA-256."""
        return {"name": self.name, "files": [{k: f[k] for k in ("key", "file", "sha256", "verified", "origin")} for f in self.files]}

    def build(self, device: torch.device, patch_size: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``fn(x, x_hat) -> (N,)`` distance, lower is better, differentiable in ``x_hat``;
        x in [0, 1]. LPIPS: the metric's network (frozen) on [0, 1] inputs (``normalize``).
        Stand-in: 1 − :func:`ms_ssim` with the scales the crop allows."""
        if self.name == LPIPS:
            net = METRICS.get("lpips").load(dict(self.paths), device)
            net.requires_grad_(False).eval()

            def lpips_distance(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
                return net(x, x_hat, normalize=True).reshape(-1)

            return lpips_distance
        scales = ms_ssim_scales(patch_size)

        def ms_ssim_distance(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
            return 1.0 - ms_ssim(x, x_hat, scales)

        return ms_ssim_distance


def resolve_perceptual(
    choice: str,
    cfg: Config,
    *,
    where: str,
    mirror: Optional[Path] = None,
    cache_dir: Optional[Path] = None,
) -> PerceptualTerm:
    """The perceptual term for ``choice`` (``lpips``, ``ms-ssim``, ``auto``), LPIPS' weight files
    resolved as the LPIPS metric's: ``metrics.weights`` (explicit paths), the lpips package's
    linear layers, the hub cache (``cache_dir``), the ``mirror``, a download if
    ``metrics.download``. ``lpips`` without its files raises ``ConfigError`` naming ``where``
    (the setting), the file and where to put it; ``auto`` then warns
    (:class:`PerceptualStandInWarning`) and returns the stand-in."""
    if choice == STAND_IN:
        return PerceptualTerm(STAND_IN)
    if choice not in (LPIPS, "auto"):
        raise ConfigError(str(unknown_name("perceptual term", choice, (LPIPS, STAND_IN, "auto"), where)))
    metric = METRICS.get("lpips")
    found: List[ResolvedWeights] = []
    try:
        for key in metric.weights:
            found.append(resolve_weights(key, explicit=cfg.metrics.weights.get(key), cache_dir=cache_dir, mirror=mirror,
                                         download=cfg.metrics.download))
    except WeightsMissing as e:
        if choice == LPIPS:
            raise ConfigError(
                f"{where}: lpips (SIC's perceptual term in the paper) needs LPIPS' weights: {e}. "
                f"Or set it to {STAND_IN} (1 − MS-SSIM, the weight-free stand-in) or auto"
            ) from None
        warnings.warn(PerceptualStandInWarning(
            f"{where}: auto: LPIPS' weights are not available ({e.file}: {e.reason}); training with the stand-in "
            f"{STAND_IN_LABEL}, recorded in the checkpoint"), stacklevel=2)
        return PerceptualTerm(STAND_IN)
    return PerceptualTerm(LPIPS, tuple(f.record() for f in found), tuple((f.key, str(f.path)) for f in found))


# ---- the discriminator ------------------------------------------------------------------------


class ConditionalDiscriminator(nn.Module):
    """The GAN fine-tune's discriminator, conditioned on the transmitted latent (the structure of
    the SIC authors' ``disc/disc.py``, written from its description).

    ``context[ℓ−1]``: Conv3x3 (reflect padding) from the ℓ·dim/16 transmitted channels of ŷ to 12,
    LeakyReLU(0.2), nearest upsampling ×16 to the image grid; concatenated with the image (3 + 12
    channels); four spectral-normalised Conv4x4 stride 2 without bias (``width``·1, 2, 4, 8
    channels), each followed by LeakyReLU(0.2); a 1x1 Conv to one logit per 16x16 patch, no bias.
    Convolution weights Kaiming-normal (fan in), biases 0. The latent is detached: no gradient
    reaches the encoder through the condition.

    forward(x (N, 3, H, W) in [0, 1], latent (N, ℓ·dim/16, H/16, W/16), level ℓ) -> logits
    (N, 1, H/16, W/16).
    """

    def __init__(self, dim: int, num_slices: int = NUM_SLICES, width: int = 64, context: int = DISC_CONTEXT_CHANNELS) -> None:
        super().__init__()
        if dim % num_slices:
            raise ValueError(f"discriminator: dim {dim} is not a multiple of {num_slices} slices")
        d = dim // num_slices
        self.dim, self.num_slices = int(dim), int(num_slices)
        self.context = nn.ModuleList(
            nn.Conv2d(d * (i + 1), context, 3, padding=1, padding_mode="reflect") for i in range(num_slices)
        )
        chans = [3 + context, width, 2 * width, 4 * width, 8 * width]
        convs = [nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1, bias=False) for i in range(4)]
        for m in list(self.context) + convs:
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        self.body = nn.ModuleList(nn.utils.spectral_norm(c) for c in convs)
        self.head = nn.Conv2d(8 * width, 1, 1, bias=False)
        nn.init.kaiming_normal_(self.head.weight, a=0, mode="fan_in")

    def forward(self, x: torch.Tensor, latent: torch.Tensor, level: int) -> torch.Tensor:
        if not 1 <= int(level) <= self.num_slices:
            raise ValueError(f"discriminator: level must be in 1..{self.num_slices}, got {level}")
        c = F.leaky_relu(self.context[int(level) - 1](latent.detach()), 0.2)
        c = F.interpolate(c, size=x.shape[-2:], mode="nearest")
        h = torch.cat([x, c], dim=1)
        for conv in self.body:
            h = F.leaky_relu(conv(h), 0.2)
        return self.head(h)


def discriminator_loss(real: torch.Tensor, fake_syn: torch.Tensor, fake_samples: torch.Tensor) -> torch.Tensor:
    """Non-saturating discriminator loss on logits, as the authors':
    ``½[BCE(real, 1) + BCE(fake_syn, 0)] + ½[BCE(real, 1) + BCE(fake_samples, 0)]`` (means)."""
    bce = F.binary_cross_entropy_with_logits
    l_real = bce(real, torch.ones_like(real))
    return 0.5 * (l_real + bce(fake_syn, torch.zeros_like(fake_syn))) + 0.5 * (l_real + bce(fake_samples, torch.zeros_like(fake_samples)))


def generator_loss(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss on logits: mean of −log σ(D(x̂)) (BCE against 1)."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


# ---- losses -----------------------------------------------------------------------------------


def _bits(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p).sum() / (-math.log(2))


def warmup_loss(model: Any, out: Dict[str, Any], x: torch.Tensor, perceptual: Optional[Callable] = None) -> Dict[str, torch.Tensor]:
    """The authors' warm-up objective (``warming.py``) for ``out = model(x)`` (no level):
    ``λ16·MSE(x̂) + γ16·P(x, x̂) + β16·(bpp_y + bpp_z) + std_s(bpp_s) − min_s(bpp_s)``, bpp_s the
    rate of slice s from the noisy training likelihoods (the same as in bpp_y), std with
    Bessel's correction; rates per pixel of the batch; ``perceptual`` None: P = 0. Returns the
    loss and its terms (float scalars)."""
    b, _, h, w = x.shape
    denom = b * h * w
    y_lik, z_lik = out["likelihoods"]["y"], out["likelihoods"]["z"]
    bpp_y, bpp_z = _bits(y_lik) / denom, _bits(z_lik) / denom
    splits = torch.stack([_bits(p) / denom for p in y_lik.chunk(model.num_slices, dim=1)])
    mse = F.mse_loss(out["x_hat"], x)
    p = torch.zeros((), device=x.device) if perceptual is None else torch.as_tensor(perceptual(x, out["x_hat"])).mean()
    lam, gam, beta = official_loss_weights(NUM_SLICES)
    loss = lam * mse + gam * p + beta * (bpp_y + bpp_z) + torch.std(splits) - torch.min(splits)
    return {"loss": loss, "bpp_y": bpp_y, "bpp_z": bpp_z, "bpp_y_splits": splits, "mse_syn": mse, "perceptual_syn": p}


# ---- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressiveTrainConfig:
    """One progressive training run: architecture ``arch`` at ``size``, the budget's ``settings``
    (``steps`` = the progressive phase; batch, crops, learning rates, clipping, intervals) and
    ``schedule`` (:class:`benchmark.config.ProgressiveSettings`), the resolved ``perceptual``
    term, ``seed``, ``device``."""

    arch: str
    size: Dict[str, int]
    settings: TrainSettings
    schedule: ProgressiveSettings
    perceptual: PerceptualTerm
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_params(
        cls, cfg: Config, model: str, *, mirror: Optional[Path] = None, cache_dir: Optional[Path] = None
    ) -> "ProgressiveTrainConfig":
        """The run of ``model`` under ``train.budget``: its budget entry (size, settings, and its
        ``progressive`` schedule or the defaults), the perceptual term (:func:`resolve_perceptual`),
        seed and device. Raises ``ConfigError`` naming the key when the architecture is not
        progressive or the budget has no entry for the model."""
        spec_cfg = cfg.model(model)
        arch = spec_cfg.architecture
        spec = ARCHITECTURES.get(arch)
        if not spec.progressive:
            raise ConfigError(
                f"{cfg.source}: train.progressive: model {model!r} is architecture {arch!r}, which is not progressive "
                f"(one checkpoint per rate point: list it under train.models)"
            )
        budget = cfg.budget()
        where = f"{cfg.source}: train.budgets.{cfg.train.budget}.models"
        if model not in budget.models:
            raise ConfigError(str(unknown_name("model", model, budget.models, where)))
        entry = budget.models[model]
        if entry.size == "paper":
            sizes = {tuple(sorted(s.items())) for s in (spec.paper_sizes or {}).values()}
            if len(sizes) != 1:
                raise ConfigError(f"{where}.{model}.size: {arch} has no single published size; give the channel counts")
            size = dict(sizes.pop())
        else:
            size = dict(entry.size)
        schedule = entry.progressive or ProgressiveSettings()
        term = resolve_perceptual(schedule.perceptual, cfg, where=f"{where}.{model}.progressive.perceptual",
                                  mirror=mirror, cache_dir=cache_dir)
        return cls(arch, size, entry.settings, schedule, term, cfg.train.seed, cfg.train.device)

    @property
    def steps(self) -> int:
        """Steps of the whole run: warm-up + progressive + GAN."""
        return self.schedule.warmup_steps + self.settings.steps + self.schedule.gan_steps

    @property
    def label(self) -> str:
        return f"{self.arch} (progressive)"

    def phases(self) -> Dict[str, int]:
        """Steps per phase (the progressive phase's first ``balance`` with the balance terms)."""
        s = self.schedule
        return {"warmup": s.warmup_steps, "progressive": self.settings.steps, "balance": min(s.balance_steps, self.settings.steps),
                "gan": s.gan_steps}

    def phase_at(self, step: int) -> Tuple[str, int]:
        """(phase, index within it) of the 0-based global ``step``."""
        w, p = self.schedule.warmup_steps, self.settings.steps
        if step < w:
            return "warmup", step
        if step < w + p:
            return "progressive", step - w
        return "gan", step - w - p

    def record(self) -> Dict[str, object]:
        """The configuration as a JSON-ready dict (stored in the state and the checkpoint)."""
        d = {"arch": self.arch, "size": dict(self.size), **asdict(self.settings), "progressive": asdict(self.schedule)}
        d.update(milestones=list(self.settings.milestones), perceptual=self.perceptual.record(), seed=self.seed, device=self.device)
        return d

    def fingerprint(self) -> str:
        """Hash of everything that changes the result (not checkpoint/log frequency, not device)."""
        return config_fingerprint(self.record())


def level_at(index: int, num_slices: int = NUM_SLICES) -> int:
    """The level of the ``index``-th batch of the progressive and GAN phases: 16, 15, ..., 1, 16, ..."""
    return num_slices - (int(index) % num_slices)


def description(record: Dict[str, Any]) -> str:
    """One line naming which SIC a checkpoint is (for results rows): architecture and size,
    where it comes from, M, the perceptual term, the phases."""
    size = ",".join(f"{k}={v}" for k, v in sorted((record.get("size") or {}).items()))
    head = f"{record['arch']}" + (f"({size})" if size else "")
    m = record.get("num_samples")
    parts = [f"M={m}" if m is not None else "M unknown", f"perceptual {record.get('perceptual')}"]
    phases = record.get("phases")
    if phases:
        steps = f"warm-up {phases['warmup']} + progressive {phases['progressive']}"
        steps += f" + GAN {phases['gan']} steps" if phases["gan"] else " steps, no GAN"
        parts.append(steps)
    elif record.get("gan") is not None:
        parts.append("GAN fine-tuned" if record["gan"] else "no GAN")
    origin = "trained here" if record.get("source") == "train" else f"authors' file {record.get('weights_file')}"
    return f"{head}, {origin}: " + ", ".join(parts)


# ---- the run ----------------------------------------------------------------------------------


class SICRun(_Run):
    """A progressive SIC run in the resumable loop, ``benchmark.training.loop.train(cfg, ...,
    run_class=SICRun)`` with a :class:`ProgressiveTrainConfig` (phases and losses: module
    docstring; ``total_steps`` = ``cfg.steps``, all three phases)."""

    columns = LOG_COLUMNS

    def setup(self) -> None:
        cfg: ProgressiveTrainConfig = self.cfg
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        self.perceptual = cfg.perceptual.build(self.device, cfg.settings.patch_size)
        self.disc = None
        if cfg.schedule.gan_steps:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed + 2)
                self.disc = ConditionalDiscriminator(self.model.dim, self.model.num_slices, cfg.schedule.disc_width)
            self.disc = self.disc.to(self.device).train()
        self.phase = None
        self._build_optimizers(cfg.phase_at(0)[0])

    def _build_optimizers(self, phase: str) -> None:
        """Fresh optimizers for ``phase`` (each phase starts its own, as the authors' scripts)."""
        cfg: ProgressiveTrainConfig = self.cfg
        st, sch = cfg.settings, cfg.schedule
        params = dict(self.model.named_parameters())
        self.main_params = [p for n, p in params.items() if not n.endswith(".quantiles")]
        aux = [p for n, p in params.items() if n.endswith(".quantiles")]
        if phase == "warmup":
            self.opt, self.aux_opt = torch.optim.Adam(self.main_params, lr=st.lr), torch.optim.Adam(aux, lr=st.aux_lr)
        else:
            wd = sch.weight_decay
            self.opt = torch.optim.AdamW(self.main_params, lr=st.lr, weight_decay=wd)
            self.aux_opt = torch.optim.AdamW(aux, lr=st.aux_lr, weight_decay=wd)
        milestones = sorted({max(1, int(round(m * st.steps))) for m in st.milestones}) if phase == "progressive" else []
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, milestones=milestones, gamma=0.1)
        self.disc_opt = None
        if phase == "gan":
            self.disc_opt = torch.optim.AdamW(self.disc.parameters(), lr=sch.disc_lr, weight_decay=sch.weight_decay)
        self.phase = phase

    def optim_state(self) -> Dict[str, object]:
        return {
            "phase": self.phase,
            "optimizer": self.opt.state_dict(),
            "aux_optimizer": self.aux_opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "disc_optimizer": self.disc_opt.state_dict() if self.disc_opt is not None else None,
            "discriminator": self.disc.state_dict() if self.disc is not None else None,
            "noise_generator": self.noise.get_state(),
        }

    def load_optim_state(self, state: Dict[str, object]) -> None:
        self._build_optimizers(state["phase"])
        self.opt.load_state_dict(state["optimizer"])
        self.aux_opt.load_state_dict(state["aux_optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.disc is not None:
            self.disc.load_state_dict(state["discriminator"])
        if self.disc_opt is not None:
            self.disc_opt.load_state_dict(state["disc_optimizer"])
        self.noise.set_state(state["noise_generator"])

    def _check(self, terms: Dict[str, torch.Tensor], phase: str, level: int) -> None:
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise TrainingError(
                f"{self.cfg.label}: loss became {loss.item()} at step {self.step + 1} ({phase}, level {level}; "
                f"bpp_y {terms['bpp_y'].item()}, mse {terms['mse_syn'].item()}, lr {self.sched.get_last_lr()[0]}); "
                f"the last good state is {self.state_path if self.state_path.is_file() else 'not saved yet'}"
            )

    def one_step(self) -> Dict[str, Any]:
        cfg: ProgressiveTrainConfig = self.cfg
        phase, index = cfg.phase_at(self.step)
        if phase != self.phase:
            self._build_optimizers(phase)
        x = self.sampler.sample(cfg.settings.batch_size).to(self.device)
        self.opt.zero_grad(set_to_none=True)
        self.aux_opt.zero_grad(set_to_none=True)
        m = cfg.schedule.num_samples
        extra: Dict[str, torch.Tensor] = {}
        if phase == "warmup":
            level = self.model.num_slices
            terms = warmup_loss(self.model, self.model(x), x, self.perceptual)
        else:
            level = level_at(index, self.model.num_slices)
            out = self.model(x, level, num_samples=m, rng=self.noise, distances=True)
            balance = phase == "progressive" and index < cfg.schedule.balance_steps
            terms = official_loss(self.model, out, x, self.perceptual, warmup=balance)
            if phase == "gan":
                extra = self._gan_terms(out, x, level)
                _, gam16, _ = official_loss_weights(self.model.num_slices)
                _, gam, _ = official_loss_weights(level)
                terms["loss"] = terms["loss"] + 0.5 * gam16 * extra["g_syn"] + 0.5 * gam * extra["g_samples"]
        self._check(terms, phase, level)
        terms["loss"].backward()
        if cfg.settings.clip_max_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.main_params, cfg.settings.clip_max_norm)
        self.opt.step()
        terms["aux_loss"] = self.model.aux_loss()
        terms["aux_loss"].backward()
        self.aux_opt.step()
        self.sched.step()
        self.step += 1
        terms.update(extra, phase=phase, level=level)
        return terms

    def _gan_terms(self, out: Dict[str, Any], x: torch.Tensor, level: int) -> Dict[str, torch.Tensor]:
        """One discriminator step on this batch, then the generator terms (the discriminator
        frozen) for the model's loss. The condition is the transmitted latent ŷ[:, :ℓ·dim/16]
        (rounded), repeated for the M samples."""
        s, m = out["sem_dim"], out["num_samples"]
        cond = out["y_hat"][:, :s].detach()
        cond_m = cond.repeat(m, 1, 1, 1)
        disc = self.disc
        disc.requires_grad_(True)
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(
            disc(x, cond, level), disc(out["x_hat"].detach(), cond, level), disc(out["x_hat_samples"].detach(), cond_m, level)
        )
        d_loss.backward()
        self.disc_opt.step()
        disc.requires_grad_(False)
        g_syn = generator_loss(disc(out["x_hat"], cond, level))
        g_samples = generator_loss(disc(out["x_hat_samples"], cond_m, level))
        return {"d_loss": d_loss.detach(), "g_syn": g_syn, "g_samples": g_samples}

    def log(self, losses: Dict[str, Any]) -> Dict[str, Any]:
        def val(key: str) -> float:
            v = losses.get(key)
            return float(v.item()) if isinstance(v, torch.Tensor) else float("nan")

        def psnr(mse: float) -> float:
            return 10 * math.log10(1.0 / mse) if mse > 0 else (float("nan") if math.isnan(mse) else float("inf"))

        mse, mse_s = val("mse_syn"), val("mse_samples")
        g = (val("g_syn") + val("g_samples")) / 2
        bpp_level = val("bpp_ys") + val("bpp_z") if "bpp_ys" in losses else val("bpp_y") + val("bpp_z")
        self.rows.append({
            "step": self.step, "phase": losses["phase"], "level": losses["level"], "loss": val("loss"),
            "bpp_estimated": val("bpp_y") + val("bpp_z"), "bpp_level": bpp_level, "mse": mse, "psnr": psnr(mse),
            "mse_samples": mse_s, "psnr_samples": psnr(mse_s), "perceptual": val("perceptual_syn"),
            "perceptual_samples": val("perceptual_samples"), "synonym_distance": val("synonym_distance"),
            "sample_distance": val("sample_distance"), "d_loss": val("d_loss"), "g_loss": g, "aux_loss": val("aux_loss"),
            "lr": self.sched.get_last_lr()[0], "seconds": round(self.elapsed, 3),
        })
        return self.rows[-1]

    def final_record(self) -> Dict[str, object]:
        cfg: ProgressiveTrainConfig = self.cfg
        scales = ms_ssim_scales(cfg.settings.patch_size) if cfg.perceptual.name == STAND_IN else None
        return {
            "arch": cfg.arch, "size": dict(cfg.size), "lmbda": None, "source": "train", "levels": self.model.num_slices,
            "num_samples": cfg.schedule.num_samples, "perceptual": cfg.perceptual.label,
            "perceptual_weights": cfg.perceptual.record()["files"], "perceptual_scales": scales,
            "phases": cfg.phases(), "gan": cfg.schedule.gan_steps > 0,
            "loss": "official_loss (benchmark.models.sic): the authors' weights per level", "train_config": cfg.record(),
        }

    def checkpoint_meta(self, meta: Optional[Dict[str, object]]) -> Dict[str, object]:
        """``meta`` and the checkpoint's one-line ``description`` (:func:`description` of
        :meth:`final_record` with ``meta``)."""
        record = {**self.final_record(), **(meta or {})}
        return {**(meta or {}), "description": description(record)}


def train_progressive(
    cfg: ProgressiveTrainConfig,
    images: Sequence[np.ndarray],
    out_path: Path,
    state_path: Path,
    log_path: Path,
    **options: Any,
) -> Path:
    """Train a progressive SIC on ``images`` (uint8 (H, W, 3)) through its phases and write one
    checkpoint for all levels to ``out_path``: ``benchmark.training.loop.train`` with
    ``run_class=SICRun`` (resumable from ``state_path``, the log at ``log_path`` with
    :data:`LOG_COLUMNS`, a ``TrainingError`` naming the step on a non-finite loss); ``options``
    are ``train``'s keywords (``train_image_hashes``, ``meta``, ``progress``, ``on_step``).

    The checkpoint has, besides the weights with their coder tables: ``arch``, ``size``,
    ``source`` ``train``, ``levels`` (16), ``num_samples`` (M), ``perceptual`` (``lpips`` or
    ``ms-ssim (stand-in for LPIPS)``), ``perceptual_weights`` (the LPIPS files' records),
    ``perceptual_scales`` (the stand-in's MS-SSIM scales), ``phases`` (steps of ``warmup``,
    ``progressive``, ``balance``, ``gan``), ``gan`` (fine-tuned), ``description`` (one line
    for results rows), ``lmbda`` None, ``step``, ``train_config``, ``train_images_sha256``,
    ``train_seconds`` and ``meta``.
    """
    return train(cfg, images, out_path, state_path, log_path, run_class=SICRun, **options)
