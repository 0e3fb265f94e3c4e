"""The official QRes-VAE (Duan, Lu, Ma, Zhu, "Lossy Image Compression with Quantized Hierarchical
VAEs", WACV 2023), with the state_dict layout of the authors' checkpoints.

Written from the architecture facts in ``shared/fixtures/qres-vae/README.md`` (the authors' code,
``duanzhiihao/lossy-vae`` ``lvae/models/qresvae``, is read for facts, never copied). The
modules are named so that ``state_dict()`` has exactly the keys, shapes and dtypes of the zoo
models ``qres34m`` (813 keys) and ``qres17m`` (744 keys), including the misspelt
``downsapmle`` of the encoder's patch-down blocks, the learned ``decoder.bias`` and the seven
buffers of CompressAI's ``GaussianConditional`` per latent block, so the published checkpoints
(``torch.load(f)["model"]``) load with strict ``load_state_dict``.

Units and ranges:

- input image ``im``: float32 (N, 3, H, W) RGB in [0, 1], H and W multiples of 64 (``MAX_STRIDE``);
- encoder input ``(im + im_shift) * im_scale`` (ImageNet mean/std for qres34m, CelebA for qres17m);
- decoder output ``x_hat`` lives on the [-1, 1] scale of the target ``(im - 0.5) * 2``;
  the reconstruction is ``im_hat = clamp(x_hat, -1, 1) * 0.5 + 0.5`` in [0, 1];
- latents: 12 blocks top-down (coarse to fine), each z of ``zdim`` channels at the stride of its
  block; posterior mean ``qm``; prior mean ``pm`` and scale (standard deviation)
  ``pv = exp(softplus(raw + 2.3) - 2.3)`` > 0.1003;
- test time: ``z = round(qm - pm) + pm``; the rate of an element is ``-ln P(z)`` nats with
  ``P(z) = Φ((½ - |z - pm|)/s) - Φ((-½ - |z - pm|)/s)``, ``s = max(pv, 0.11)``,
  ``P ≥ 1e-9`` (CompressAI's ``GaussianConditional``); training: ``z = qm + u``, u ~ U(-½, ½);
- coding: per block, the symbols ``round(qm - pm)`` are coded with CompressAI's rANS
  (``GaussianConditional.compress``, 16-bit CDFs, bypass escape for symbols outside the table)
  with means ``pm`` and the table index of the lower-bounded scale, over the 64-scale table
  ``exp(linspace(ln 0.1, ln 20, 64))`` (:func:`coding_scale_table`); decoding gives
  ``symbols + pm``, the forward ``z`` bit for bit.

Numerics: the reference fixtures are reproduced to about 1e-6 relative (tests/test_qres_official.py),
the coded symbols and the rANS bytes exactly. The last-bit differences come from the CPU's math
library, not the model: the reference's ``exp`` (MKL VML) rounds about 2% of values the other way
(run here with ``MKL_CBWR=COMPATIBLE`` it matches, but then the matrix products do not), and very
small matrix products take other kernels. Memory layout matters for bit-level agreement: the
ConvNeXt block returns NCHW-contiguous tensors (as the reference does), so ``decompress``, whose
latents come out contiguous, repeats the forward pass exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from benchmark._torchvision_compat import ensure_torchvision_importable

ensure_torchvision_importable()  # compressai imports torchvision

from compressai.entropy_models import GaussianConditional  # noqa: E402
from compressai.models.base import CompressionModel  # noqa: E402

MAX_STRIDE = 64  # the coarsest latent is at H/64, W/64; H and W must be multiples of it
SCALE_BOUND = 0.11  # lower bound on the prior scale in the rate and the coder (GaussianConditional default)
LIKELIHOOD_BOUND = 1e-9  # lower bound on the probability of a latent element (GaussianConditional default)
LOGV_SHIFT = 2.3  # plogv = softplus(raw + 2.3) - 2.3, so pv = exp(plogv) > exp(-2.3) ≈ 0.1003

# Pre-processing constants of the zoo models (encoder input (im + shift) * scale).
QRES34M_IM_SHIFT = -0.4546259594901961  # ImageNet mean, negated
QRES34M_IM_SCALE = 3.67572653978347  # 1 / ImageNet std
QRES17M_IM_SHIFT = -0.4356  # CelebA mean, negated
QRES17M_IM_SCALE = 3.397893306150187  # 1 / CelebA std

# Published rate points (training λ, the `lmb` of the checkpoint file names).
QRES34M_LMBS = (16, 32, 64, 128, 256, 512, 1024, 2048)
QRES17M_LMBS = (1, 2, 4, 8, 16, 32, 64, 1024)


def coding_scale_table() -> torch.Tensor:
    """The coder's scale table of the official model: float32 (64,), ``exp(linspace(ln 0.1, ln 20, 64))``.

    Every latent block uses it (``compress_mode(True)`` in the reference code); scales above 20
    use the last entry, scales are bounded below by 0.11 before the index is chosen. Equal to the
    reference's table but for entry 43 (3.72001147 here, 3.72001171 there: its ``exp`` rounded the
    other way); the CDF tables computed from the two are identical.
    """
    return torch.exp(torch.linspace(math.log(0.1), math.log(20.0), 64))


def lmb_to_compressai_lambda(lmb: float) -> float:
    """CompressAI's λ (loss ``λ·255²·MSE01 + bpp``) equivalent to QRes-VAE's ``lmb``.

    QRes-VAE's loss is ``R + lmb·D`` with R in nats per sub-pixel (= bpp·ln2/3) and D the MSE on the
    [-1, 1] scale (= 4·MSE01), i.e. ``(ln2/3)·(bpp + 12·lmb/ln2·MSE01)``; so λ = 12·lmb / (ln2·255²).
    """
    return 12.0 * float(lmb) / (math.log(2.0) * 255.0**2)


# ---- building blocks -----------------------------------------------------------------------


class _Mlp(nn.Module):
    """Channels-last MLP of the ConvNeXt block: ``fc2(gelu(fc1(x)))`` (keys ``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf) GELU
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block as QRes-VAE uses it (Liu et al., CVPR 2022; timm's block with ``mlp_ratio=2``).

    ``y = x + gamma * fc2(gelu(fc1(LayerNorm(dwconv(x)))))``: depthwise k×k convolution (bias,
    padding (k-1)//2), LayerNorm over channels (channels-last, eps 1e-6, affine), Linear dim→2·dim,
    exact GELU, Linear 2·dim→dim, per-channel layer scale ``gamma`` (dim,), residual.
    (N, dim, H, W) float -> (N, dim, H, W). Keys: ``gamma``, ``conv_dw.*``, ``norm.*``, ``mlp.fc1.*``,
    ``mlp.fc2.*``.
    """

    def __init__(self, dim: int, kernel_size: int = 7, mlp_ratio: int = 2, layer_scale_init: float = 1e-6) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(mlp_ratio * dim))
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_dw(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        x = self.mlp(self.norm(x)).permute(0, 3, 1, 2)
        # shortcut first: the sum takes the shortcut's (contiguous NCHW) layout, which the
        # following convolutions see; with the other order it is channels-last and the
        # results differ from the reference's in the last bits
        return shortcut + x.mul(self.gamma.reshape(1, -1, 1, 1))


class ConvNeXtPatchDown(ConvNeXtBlock):
    """A k7 ConvNeXt block on ``in_ch`` channels, then a patch downsampling ``downsapmle`` (sic,
    the official key): Conv2d(in_ch→out_ch, kernel = stride = ``rate``, no padding).
    (N, in_ch, H, W) -> (N, out_ch, H/rate, W/rate)."""

    def __init__(self, in_ch: int, out_ch: int, rate: int = 2, kernel_size: int = 7) -> None:
        super().__init__(in_ch, kernel_size=kernel_size)
        self.downsapmle = patch_downsample(in_ch, out_ch, rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsapmle(super().forward(x))


def patch_downsample(in_ch: int, out_ch: int, rate: int) -> nn.Conv2d:
    """Conv2d(in_ch→out_ch, kernel = stride = ``rate``, no padding, bias): (N, in, H, W) -> (N, out, H/rate, W/rate)."""
    return nn.Conv2d(in_ch, out_ch, rate, stride=rate)


def patch_upsample(in_ch: int, out_ch: int, rate: int) -> nn.Sequential:
    """1x1 Conv2d(in_ch→out_ch·rate², bias) + PixelShuffle(rate): (N, in, H, W) -> (N, out, rate·H, rate·W).
    Keys ``0.weight``, ``0.bias``."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch * rate * rate, 1), nn.PixelShuffle(rate))


class VDBlock(nn.Module):
    """Pre-activation bottleneck (after VDVAE's block, no residual):
    ``c4(gelu(c3(gelu(c2(gelu(c1(gelu(x))))))))``; c1 1x1 in→hidden, c2 and c3 3x3 (padding 1;
    1x1 when ``use_3x3`` is False), c4 1x1 hidden→out. (N, in, H, W) -> (N, out, H, W)."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int, use_3x3: bool = True) -> None:
        super().__init__()
        k = 3 if use_3x3 else 1
        self.c1 = nn.Conv2d(in_ch, hidden, 1)
        self.c2 = nn.Conv2d(hidden, hidden, k, padding=(k - 1) // 2)
        self.c3 = nn.Conv2d(hidden, hidden, k, padding=(k - 1) // 2)
        self.c4 = nn.Conv2d(hidden, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c1(F.gelu(x))
        x = self.c2(F.gelu(x))
        x = self.c3(F.gelu(x))
        return self.c4(F.gelu(x))


class QLatentBlockX(nn.Module):
    """One latent layer of the top-down decoder (the official ``QLatentBlockX``).

    ``width``: feature channels C; ``zdim``: latent channels Z; ``kernel_size``: of the two
    ConvNeXt blocks (1 at stride 64; then the prior/posterior use 1x1 convs only); hidden width of
    the prior/posterior ``int(0.25·width)``, of ``z_proj`` half that.

    1. ``f = resnet_front(feature)``;
    2. prior: ``pm, raw = prior(f).chunk(2)``, ``plogv = softplus(raw + 2.3) - 2.3``, ``pv = exp(plogv)``;
    3. posterior mean ``qm = posterior(cat([f, enc_feature]))`` (the encoder feature has C channels);
    4. z: test ``round(qm - pm) + pm``, training ``qm + U(-½, ½)``; P(z) from ``discrete_gaussian``;
    5. ``feature = resnet_end(f + z_proj(z))``.

    All tensors (N, ·, h, w) float32 at the block's resolution.
    """

    def __init__(self, width: int, zdim: int, kernel_size: int) -> None:
        super().__init__()
        self.width, self.zdim, self.kernel_size = int(width), int(zdim), int(kernel_size)
        hidden = int(0.25 * width)
        use_3x3 = kernel_size >= 3
        self.resnet_front = ConvNeXtBlock(width, kernel_size=kernel_size)
        self.resnet_end = ConvNeXtBlock(width, kernel_size=kernel_size)
        self.posterior = VDBlock(2 * width, hidden, zdim, use_3x3=use_3x3)
        self.prior = VDBlock(width, hidden, 2 * zdim, use_3x3=use_3x3)
        k = 3 if use_3x3 else 1
        self.z_proj = nn.Sequential(
            nn.Conv2d(zdim, hidden // 2, k, padding=(k - 1) // 2), nn.GELU(), nn.Conv2d(hidden // 2, width, 1)
        )
        self.discrete_gaussian = GaussianConditional(None, scale_bound=SCALE_BOUND, likelihood_bound=LIKELIHOOD_BOUND)

    def prior_params(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(f, pm, plogv, pv)``: f (N, C, h, w) after ``resnet_front``; pm, plogv, pv (N, Z, h, w):
        prior mean, log-scale ``softplus(raw + 2.3) - 2.3`` (> -2.3) and scale ``exp(plogv)``
        (a standard deviation, > 0.1003; the 0.11 bound is applied later, in the rate and the coder)."""
        f = self.resnet_front(feature)
        pm, raw = self.prior(f).chunk(2, dim=1)
        plogv = F.softplus(raw + LOGV_SHIFT) - LOGV_SHIFT
        return f, pm, plogv, torch.exp(plogv)

    def posterior_mean(self, f: torch.Tensor, enc_feature: torch.Tensor) -> torch.Tensor:
        """qm (N, Z, h, w) from f (N, C, h, w) and the encoder feature (N, C, h, w)."""
        return self.posterior(torch.cat([f, enc_feature], dim=1))

    def finish(self, f: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The block's output feature (N, C, h, w): ``resnet_end(f + z_proj(z))``."""
        return self.resnet_end(f + self.z_proj(z))

    def forward(self, feature: torch.Tensor, enc_feature: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Returns the output feature and the layer's tensors ``f`` (after resnet_front), ``qm``,
        ``pm``, ``plogv``, ``pv``, ``z``, ``likelihood`` (P(z), in [1e-9, 1]) and ``kl``
        (``-ln P(z)``, nats per element), all (N, ·, h, w) float32."""
        f, pm, plogv, pv = self.prior_params(feature)
        qm = self.posterior_mean(f, enc_feature)
        z, likelihood = self.discrete_gaussian(qm, pv, means=pm, training=self.training)
        kl = -torch.log(likelihood)
        out = self.finish(f, z)
        stats = {"f": f, "qm": qm, "pm": pm, "plogv": plogv, "pv": pv, "z": z, "likelihood": likelihood, "kl": kl}
        return out, stats


class BottomUpEncoder(nn.Module):
    """``enc_blocks`` applied in order to ``(im + im_shift) * im_scale``; returns the features
    ``{height: (N, C, height, width)}`` keyed by their height, the last block at each height wins
    (as in the reference: the decoder takes the feature of the same height)."""

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.enc_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        features: dict[int, torch.Tensor] = {}
        for block in self.enc_blocks:
            x = block(x)
            features[int(x.shape[2])] = x
        return features


class TopDownDecoder(nn.Module):
    """A learned ``bias`` (1, C, 1, 1), expanded to the coarsest feature's size, then
    ``dec_blocks`` in order: :class:`QLatentBlockX` blocks (which read the encoder feature of
    their height) and resolution changes (``patch_upsample``, nearest ``Upsample``,
    ``ConvTranspose2d``); the last block maps to RGB on the [-1, 1] scale."""

    def __init__(self, width: int, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, int(width), 1, 1))
        self.dec_blocks = nn.ModuleList(blocks)

    def initial_feature(self, batch: int, height: int, width: int) -> torch.Tensor:
        """(batch, C, height, width): the bias, expanded (a view)."""
        return self.bias.expand(batch, -1, height, width)


class OfficialQResVAE(CompressionModel):
    """QRes-VAE (Duan et al., WACV 2023) with the official module tree; see the module docstring.

    Build with :func:`qres34m` / :func:`qres17m` (the zoo models) or
    :func:`build_qres34m_structure` / :func:`build_qres17m_structure` (other widths).

    CompressAI contract (``x``: float32 (N, 3, H, W) RGB in [0, 1], H and W multiples of 64):

    - ``forward(x)`` -> ``x_hat`` (N, 3, H, W) on the [0, 1] scale, **not clamped**
      (``x_hat_pm1·½ + ½``, as CompressAI's models return ``g_s(y_hat)``; ``x_hat.clamp(0, 1)``
      is bit for bit the official reconstruction ``clamp(x_hat_pm1, -1, 1)·½ + ½``),
      ``likelihoods`` ``{"z1": ..., "z12": ...}`` (top-down order, P per latent element, in
      [1e-9, 1]), ``x_hat_pm1`` (the decoder output, unclamped, [-1, 1] scale) and ``layers``
      (per latent block the dict of :meth:`QLatentBlockX.forward`); :meth:`rate_distortion` gives
      the official loss and statistics from it;
    - training with the project's loop (``benchmark.training.loop.rd_loss``:
      ``λ·255²·MSE(x_hat, x) + bpp``) is the official objective ``R + lmb·MSE_pm1`` times
      3/ln 2 when ``λ = 12·lmb / (ln 2·255²)`` (:func:`lmb_to_compressai_lambda`): MSE on [0, 1]
      of the unclamped ``x_hat`` is ``MSE_pm1 / 4`` and bpp = ``R·3/ln 2``; same gradients up to
      that factor;
    - ``aux_loss()``: a zero tensor (no entropy bottleneck, nothing for an auxiliary optimizer);
    - ``update(force=...)``: fills every block's coder tables with :func:`coding_scale_table`;
    - ``compress(x)`` -> ``{"strings": [12 lists of N bytes], "shape": (H/64, W/64)}``;
      :meth:`compress_verbose` also returns the estimate and the reconstruction of the same pass;
    - ``decompress(strings, shape)`` -> ``{"x_hat": (N, 3, H, W) in [0, 1]}``, the forward
      reconstruction (test mode, clamped) bit for bit;
    - :meth:`sample`: unconditional samples from the prior, top-down.
    """

    max_stride = MAX_STRIDE

    def __init__(
        self,
        enc_blocks: Sequence[nn.Module],
        dec_width: int,
        dec_blocks: Sequence[nn.Module],
        im_shift: float,
        im_scale: float,
        lmb: float | None = None,
    ) -> None:
        super().__init__()
        self.encoder = BottomUpEncoder(enc_blocks)
        self.decoder = TopDownDecoder(dec_width, dec_blocks)
        self.out_net = nn.Identity()  # the official MSEOutputNet: no parameters, x_hat = decoder output
        self.register_buffer("_dummy", torch.zeros(1), persistent=False)
        self.im_shift = float(im_shift)
        self.im_scale = float(im_scale)
        self.lmb = None if lmb is None else float(lmb)

    # -- helpers -----------------------------------------------------------------------------

    @property
    def latent_blocks(self) -> list[QLatentBlockX]:
        """The 12 latent blocks, top-down."""
        return [b for b in self.decoder.dec_blocks if isinstance(b, QLatentBlockX)]

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"QRes-VAE: expected a (N, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h, w = x.shape[2:]
        if h % MAX_STRIDE or w % MAX_STRIDE:
            raise ValueError(f"QRes-VAE: H and W must be multiples of {MAX_STRIDE}, got {h}x{w}")

    def preprocess(self, im: torch.Tensor) -> torch.Tensor:
        """Encoder input ``(im + im_shift) * im_scale`` from im (N, 3, H, W) in [0, 1]."""
        return (im + self.im_shift) * self.im_scale

    @staticmethod
    def target(im: torch.Tensor) -> torch.Tensor:
        """The decoder's target ``(im - 0.5) * 2`` on the [-1, 1] scale."""
        return (im - 0.5) * 2

    @staticmethod
    def postprocess(x_hat_pm1: torch.Tensor) -> torch.Tensor:
        """The reconstruction in [0, 1]: ``clamp(x_hat, -1, 1) * 0.5 + 0.5``."""
        return x_hat_pm1.clamp(-1, 1) * 0.5 + 0.5

    def _top_down(self, features: dict[int, torch.Tensor] | None, batch: int, shape: Sequence[int], choose) -> torch.Tensor:
        """Run the decoder from the bias at ``shape`` (h, w); ``choose(i, block, feature, enc)``
        returns block i's output feature. Returns the decoder output (N, 3, 64h, 64w), [-1, 1] scale."""
        feature = self.decoder.initial_feature(batch, int(shape[0]), int(shape[1]))
        i = 0
        for block in self.decoder.dec_blocks:
            if isinstance(block, QLatentBlockX):
                enc = None if features is None else features[int(feature.shape[2])]
                feature = choose(i, block, feature, enc)
                i += 1
            else:
                feature = block(feature)
        return self.out_net(feature)

    # -- forward -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        """x: float32 (N, 3, H, W) in [0, 1]. See the class docstring for the outputs. In training
        mode the latents are ``qm + U(-½, ½)`` (CompressAI's noise) and P(z) the same bounded
        Gaussian mass (the reference computes the training rate in log space, its
        ``gaussian_log_prob_mass``; values agree, gradients may differ where P hits 1e-9);
        in eval mode rounded."""
        self._check_input(x)
        features = self.encoder(self.preprocess(x))
        coarsest = features[min(features)]
        layers: list[dict[str, torch.Tensor]] = []

        def choose(i, block, feature, enc):
            out, stats = block(feature, enc)
            layers.append(stats)
            return out

        x_hat = self._top_down(features, x.shape[0], coarsest.shape[2:], choose)
        return {
            "x_hat": x_hat * 0.5 + 0.5,  # unclamped; clamp(0, 1) of it == postprocess(x_hat) bit for bit
            "likelihoods": {f"z{i + 1}": s["likelihood"] for i, s in enumerate(layers)},
            "x_hat_pm1": x_hat,
            "layers": layers,
        }

    def rate_distortion(self, out: dict[str, object], x: torch.Tensor, lmb: float | None = None) -> dict[str, torch.Tensor]:
        """The official loss and statistics of a ``forward(x)`` output.

        ``kl_nats_per_layer`` float64 (12,): Σ ``-ln P(z)`` per block over the batch (nats);
        ``kl`` total nats / (N·3·H·W) (nats per sub-pixel, the training rate R); ``bppix``
        bits / (N·H·W); ``mse_pm1`` MSE between the unclamped decoder output and ``(x - 0.5)·2``;
        ``loss`` = ``kl + lmb·mse_pm1`` (``lmb`` defaults to the model's).
        """
        n, _, h, w = x.shape
        nats = torch.stack([s["kl"].double().sum() for s in out["layers"]])
        kl = nats.sum() / (n * 3 * h * w)
        mse = F.mse_loss(out["x_hat_pm1"], self.target(x))
        lmb = self.lmb if lmb is None else float(lmb)
        result = {
            "kl_nats_per_layer": nats,
            "bits_per_layer": nats / math.log(2.0),
            "kl": kl,
            "bppix": nats.sum() / math.log(2.0) / (n * h * w),
            "mse_pm1": mse,
        }
        if lmb is not None:
            result["loss"] = kl + lmb * mse
        return result

    # -- coding ------------------------------------------------------------------------------

    def update(self, scale_table=None, force: bool = False, update_quantiles: bool = False) -> bool:
        """Fill every latent block's coder tables (``_quantized_cdf`` (64, 249) int32, ``_offset``,
        ``_cdf_length``, ``scale_table``) from ``scale_table`` (default :func:`coding_scale_table`).
        Returns True if any block was (re)computed (``force`` recomputes filled ones)."""
        if scale_table is None:
            scale_table = coding_scale_table()
        updated = False
        for block in self.latent_blocks:
            updated |= block.discrete_gaussian.update_scale_table(scale_table, force=force)
        return updated

    def compress(self, x: torch.Tensor) -> dict[str, object]:
        """x: float32 (N, 3, H, W) in [0, 1] -> ``strings`` (12 lists of N ``bytes``, top-down; the
        reference's bytes) and ``shape`` (H/64, W/64). The reference's ``compress`` gives the
        coarsest feature's full shape (N, C, H/64, W/64) instead (what its ``compress_file`` pickles)."""
        out = self.compress_verbose(x)
        return {"strings": out["strings"], "shape": out["shape"]}

    def compress_verbose(self, x: torch.Tensor) -> dict[str, object]:
        """:meth:`compress`, plus what the encoder knows from the same pass: ``likelihoods``
        (``{"z1": ..., "z12": ...}``, P of each coded latent element, as ``forward`` in eval mode
        gives them) and ``x_hat`` (N, 3, H, W) in [0, 1], the reconstruction a correct decoder
        produces (``decompress`` of the strings, bit for bit)."""
        self._check_input(x)
        features = self.encoder(self.preprocess(x))
        shape = tuple(int(s) for s in features[min(features)].shape[2:])
        strings: list[list[bytes]] = []
        likelihoods: dict[str, torch.Tensor] = {}

        def choose(i, block, feature, enc):
            gc = block.discrete_gaussian
            f, pm, _, pv = block.prior_params(feature)
            qm = block.posterior_mean(f, enc)
            strings.append(gc.compress(qm, gc.build_indexes(pv), means=pm))
            z, likelihoods[f"z{i + 1}"] = gc(qm, pv, means=pm, training=False)  # z = round(qm - pm) + pm: what the decoder gets
            return block.finish(f, z)

        x_hat = self._top_down(features, x.shape[0], shape, choose)
        return {"strings": strings, "shape": shape, "likelihoods": likelihoods, "x_hat": self.postprocess(x_hat)}

    def decompress(self, strings: Sequence[Sequence[bytes]], shape: Sequence[int]) -> dict[str, torch.Tensor]:
        """Decode top-down: ``strings`` as :meth:`compress` gives them, ``shape`` (h, w) of the
        coarsest latent. Returns ``x_hat`` float32 (N, 3, 64h, 64w) in [0, 1]."""
        blocks = self.latent_blocks
        if len(strings) != len(blocks):
            raise ValueError(f"QRes-VAE: expected {len(blocks)} string lists, got {len(strings)}")
        batch = len(strings[0])
        if batch == 0 or any(len(s) != batch for s in strings):
            raise ValueError(f"QRes-VAE: string lists of unequal or zero length: {[len(s) for s in strings]}")

        def choose(i, block, feature, enc):
            gc = block.discrete_gaussian
            f, pm, _, pv = block.prior_params(feature)
            z = gc.decompress([bytes(s) for s in strings[i]], gc.build_indexes(pv), dtype=pm.dtype, means=pm)
            return block.finish(f, z)

        x_hat = self._top_down(None, batch, shape, choose)
        return {"x_hat": self.postprocess(x_hat)}

    def aux_loss(self) -> torch.Tensor:
        """Zero (a float32 scalar tensor on the model's device): the model has no entropy
        bottleneck, so the training loop's auxiliary optimizer has nothing to fit."""
        return torch.zeros((), device=self.decoder.bias.device)

    # -- generation --------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, height: int, width: int, *, integer: bool, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """Unconditional samples: every latent drawn from its prior top-down, then decoded.

        Continuous latents ``z = pm + τ·pv·ε`` (the reference's prior sampling, ``pv`` the prior
        scale as the network outputs it); integer latents ``z = pm + round(τ·max(pv, 0.11)·ε)``, a
        draw of the discretized Gaussian the coder uses when τ = 1 (``z - pm`` an integer, as
        every coded latent). ε ~ N(0, 1) from a CPU ``torch.Generator`` seeded with ``seed``, so
        both kinds use the same ε. ``height``/``width``: positive multiples of 64 (px).
        Returns float32 (n, 3, height, width) in [0, 1]. Raises ``ValueError`` for other sizes.
        """
        if height <= 0 or width <= 0 or height % MAX_STRIDE or width % MAX_STRIDE:
            raise ValueError(f"QRes-VAE sample: height and width must be positive multiples of 64, got {height}x{width}")
        g = torch.Generator().manual_seed(int(seed))
        device = self.decoder.bias.device

        def choose(i, block, feature, enc):
            f, pm, _, pv = block.prior_params(feature)
            eps = torch.randn(pm.shape, generator=g).to(device)
            if integer:
                z = pm + torch.round(temperature * pv.clamp_min(SCALE_BOUND) * eps)
            else:
                z = pm + temperature * pv * eps
            return block.finish(f, z)

        return self.postprocess(self._top_down(None, n, (height // MAX_STRIDE, width // MAX_STRIDE), choose))


# ---- builders --------------------------------------------------------------------------------


def _init_weights(model: OfficialQResVAE) -> None:
    """Initialisation for training from scratch, after the reference's description (it does not
    affect loading): conv biases outside the ConvNeXt blocks zero, prior ``c4`` weights zero,
    and each ``z_proj[2].weight`` multiplied by sqrt(L/3), L the number of latent blocks (the
    reference's ``sqrt(1/3*N)``, as written)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.groups == 1 and m.bias is not None:
                m.bias.zero_()
        blocks = model.latent_blocks
        for b in blocks:
            b.prior.c4.weight.zero_()
            b.z_proj[2].weight.mul_(math.sqrt(len(blocks) / 3))


def _latents(width: int, zdim: int, kernel: int, n: int) -> list[nn.Module]:
    return [QLatentBlockX(width, zdim, kernel) for _ in range(n)]


def _bottom_up(stages: Sequence[tuple[int, int, int, int]]) -> list[nn.Module]:
    """The encoder's blocks from ``stages`` of (width, kernel, blocks, rate): the first stage is
    entered by a patch embedding Conv(3→width, k=s=rate), each later one by a
    ConvNeXtPatchDown(previous width→width, rate); then its ConvNeXt(width, kernel) blocks."""
    blocks: list[nn.Module] = []
    previous = 3
    for i, (width, kernel, n, rate) in enumerate(stages):
        blocks.append(patch_downsample(3, width, rate) if i == 0 else ConvNeXtPatchDown(previous, width, rate=rate))
        blocks += [ConvNeXtBlock(width, kernel) for _ in range(n)]
        previous = width
    return blocks


def build_qres34m_structure(
    ch: int = 96,
    z_dims: Sequence[int] = (16, 14, 12, 10, 8),
    enc_nums: Sequence[int] = (6, 6, 6, 4, 2),
    dec_nums: Sequence[int] = (1, 2, 3, 3, 3),
    im_shift: float = QRES34M_IM_SHIFT,
    im_scale: float = QRES34M_IM_SCALE,
    lmb: float | None = None,
) -> OfficialQResVAE:
    """The qres34m structure with widths ``2ch`` (stride 4) and ``4ch`` (strides 8..64).

    Encoder: Conv(3→2ch, k=s=4); ``enc_nums[0]``× ConvNeXt(2ch, k7); PatchDown(2ch→4ch, 2);
    ``enc_nums[1]``× ConvNeXt(4ch, k7); PatchDown(4ch→4ch, 2); ``enc_nums[2]``× k5; PatchDown;
    ``enc_nums[3]``× k3; PatchDown; ``enc_nums[4]``× k1 (features at H/4 … H/64).
    Decoder: ``dec_nums[0]``× QLatent(4ch, z_dims[0], k1) @H/64; patch_upsample(4ch→4ch, 2);
    ``dec_nums[1]``× QLatent(4ch, z_dims[1], k3); up; ``dec_nums[2]``× (z_dims[2], k5); up;
    ``dec_nums[3]``× (z_dims[3], k7); patch_upsample(4ch→2ch, 2); ``dec_nums[4]``× QLatent(2ch,
    z_dims[4], k7) @H/4; patch_upsample(2ch→3, 4). Defaults: the zoo's qres34m (34,036,602 parameters).
    """
    c2, c4 = 2 * ch, 4 * ch
    enc = _bottom_up([(c2, 7, enc_nums[0], 4), (c4, 7, enc_nums[1], 2), (c4, 5, enc_nums[2], 2),
                      (c4, 3, enc_nums[3], 2), (c4, 1, enc_nums[4], 2)])

    dec: list[nn.Module] = _latents(c4, z_dims[0], 1, dec_nums[0])
    dec.append(patch_upsample(c4, c4, 2))
    dec += _latents(c4, z_dims[1], 3, dec_nums[1])
    dec.append(patch_upsample(c4, c4, 2))
    dec += _latents(c4, z_dims[2], 5, dec_nums[2])
    dec.append(patch_upsample(c4, c4, 2))
    dec += _latents(c4, z_dims[3], 7, dec_nums[3])
    dec.append(patch_upsample(c4, c2, 2))
    dec += _latents(c2, z_dims[4], 7, dec_nums[4])
    dec.append(patch_upsample(c2, 3, 4))

    model = OfficialQResVAE(enc, c4, dec, im_shift, im_scale, lmb=lmb)
    _init_weights(model)
    return model


def build_qres17m_structure(
    ch: int = 72,
    z_dims: Sequence[int] = (16, 8, 6, 4),
    enc_nums: Sequence[int] = (6, 6, 4, 2),
    dec_nums: Sequence[int] = (1, 2, 4, 5),
    im_shift: float = QRES17M_IM_SHIFT,
    im_scale: float = QRES17M_IM_SCALE,
    lmb: float | None = None,
) -> OfficialQResVAE:
    """The qres17m structure (latents at H/64, H/16, H/8, H/4; no H/32 level).

    Encoder: Conv(3→2ch, k=s=4); ``enc_nums[0]``× ConvNeXt(2ch, k7); PatchDown(2ch→4ch, 2);
    ``enc_nums[1]``× ConvNeXt(4ch, k5); PatchDown(4ch→4ch, 2); ``enc_nums[2]``× k3;
    PatchDown(4ch→4ch, rate 4); ``enc_nums[3]``× k1.
    Decoder: ``dec_nums[0]``× QLatent(4ch, z_dims[0], k1) @H/64; nearest Upsample ×4;
    ``dec_nums[1]``× QLatent(4ch, z_dims[1], k3) @H/16; ConvTranspose2d(4ch→4ch, k3, s2, p1, op1);
    ``dec_nums[2]``× QLatent(4ch, z_dims[2], k5) @H/8; ConvTranspose2d(4ch→2ch, k5, s2, p2, op1);
    ``dec_nums[3]``× QLatent(2ch, z_dims[3], k7) @H/4; patch_upsample(2ch→3, 4).
    Defaults: the zoo's qres17m (16,678,842 parameters).
    """
    c2, c4 = 2 * ch, 4 * ch
    enc = _bottom_up([(c2, 7, enc_nums[0], 4), (c4, 5, enc_nums[1], 2), (c4, 3, enc_nums[2], 2), (c4, 1, enc_nums[3], 4)])

    dec: list[nn.Module] = _latents(c4, z_dims[0], 1, dec_nums[0])
    dec.append(nn.Upsample(scale_factor=4, mode="nearest"))
    dec += _latents(c4, z_dims[1], 3, dec_nums[1])
    dec.append(nn.ConvTranspose2d(c4, c4, 3, stride=2, padding=1, output_padding=1))
    dec += _latents(c4, z_dims[2], 5, dec_nums[2])
    dec.append(nn.ConvTranspose2d(c4, c2, 5, stride=2, padding=2, output_padding=1))
    dec += _latents(c2, z_dims[3], 7, dec_nums[3])
    dec.append(patch_upsample(c2, 3, 4))

    model = OfficialQResVAE(enc, c4, dec, im_shift, im_scale, lmb=lmb)
    _init_weights(model)
    return model


def qres34m(lmb: float | None = None) -> OfficialQResVAE:
    """The zoo's qres34m (ImageNet pre-processing, 12 latents of 16, 14,14, 12×3, 10×3, 8×3 channels).
    ``lmb``: the training λ of the weights to be loaded (only used by :meth:`rate_distortion`)."""
    return build_qres34m_structure(lmb=lmb)


def qres17m(lmb: float | None = None) -> OfficialQResVAE:
    """The zoo's qres17m (CelebA pre-processing, 12 latents of 16, 8×2, 6×4, 4×5 channels)."""
    return build_qres17m_structure(lmb=lmb)


def qres_vae(ch: int = 96) -> OfficialQResVAE:
    """The project's trainable ``qres-vae``: the qres34m structure (ImageNet pre-processing, the
    latent channels 16, 14,14, 12×3, 10×3, 8×3, encoder depths 6, 6, 6, 4, 2) at width ``ch``
    (feature widths 2·ch at stride 4, 4·ch at strides 8..64). ``ch=96`` is qres34m itself
    (34,036,602 parameters); ``ch=20``: 1,607,915 (the CPU budgets'); ``ch=16``: 1,055,542.
    ``ch`` must be at least 4 (``z_proj`` is ``int(0.25·2ch) // 2`` channels wide at stride 4);
    a ``ValueError`` otherwise."""
    if int(ch) < 4:
        raise ValueError(f"qres-vae: ch must be at least 4 (the narrowest z_proj has ch // 4 channels), got {ch}")
    return build_qres34m_structure(ch=int(ch))


__all__ = [
    "LIKELIHOOD_BOUND",
    "MAX_STRIDE",
    "QRES17M_IM_SCALE",
    "QRES17M_IM_SHIFT",
    "QRES34M_IM_SCALE",
    "QRES34M_IM_SHIFT",
    "SCALE_BOUND",
    "ConvNeXtBlock",
    "ConvNeXtPatchDown",
    "OfficialQResVAE",
    "QLatentBlockX",
    "VDBlock",
    "build_qres17m_structure",
    "build_qres34m_structure",
    "coding_scale_table",
    "lmb_to_compressai_lambda",
    "patch_downsample",
    "patch_upsample",
    "qres17m",
    "qres34m",
    "qres_vae",
]
