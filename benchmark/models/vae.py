"""Discretized VAEs for lossy image compression (Duan et al., "Lossy Image Compression with
Quantized Hierarchical VAEs", WACV 2023), written for this benchmark.

Both models follow the paper's recipe:

- **posterior**: uniform, q(z | x) = U(f(x) − 1/2, f(x) + 1/2). Training samples
  z = f(x) + u, u ~ U(−1/2, 1/2); test time rounds (single layer: z = round(f(x)); hierarchical:
  the residual against the prior mean, z = round(f − μ) + μ, as the paper does).
- **prior**: discretized Gaussian, P(z) = Φ((z + 1/2 − μ)/σ) − Φ((z − 1/2 − μ)/σ)
  (:func:`discretized_gaussian_mass`), with σ ≥ 0.11 and P ≥ 1e-9 (CompressAI's bounds), so the
  mass is non-zero everywhere.
- **emission / loss**: −log p(x | z) = λ · d(g(z), x) with d = MSE; the training loss is
  rate + distortion on CompressAI's λ scale, ``λ · 255² · MSE + bpp`` (x in [0, 1]), the same as
  the CompressAI baselines (``benchmark.training.loop.rd_loss``), so rate points with the same
  λ are comparable.

Both give the CompressAI contract the benchmark's ``learned`` codec uses: ``forward(x)`` ->
``{"x_hat", "likelihoods"}``; ``compress(x)`` -> ``{"strings", "shape"}``;
``decompress(strings, shape)`` -> ``{"x_hat"}``; ``update(force)``; ``aux_loss()`` (zero: no
entropy bottleneck).

:class:`DiscretizedVAE` (``dvae``) is the single-layer model: the analysis/synthesis transforms
of the CompressAI scale-hyperprior baseline (Ballé et al. 2018: four 5x5 stride-2 convolutions
with GDN, N and M channels), one latent at stride 16 with a learned per-channel μ, σ. It is coded
with constriction's ``QuantizedGaussian`` (rANS), which codes an integer z under the exact
discretized Gaussian with a fractional μ.

:class:`QResVAE` (``qres-vae``) is the hierarchical model: 12 latent layers at strides
64, 32, 16, 8, 4 (1, 2, 3, 3, 3 layers), ConvNeXt-style residual blocks, a bottom-up encoder and a
top-down decoder whose layers predict the prior (μ, σ) of the next latent from the latents above.
Every layer is coded with CompressAI's ``GaussianConditional`` (rANS with a table of 256 scales),
top-down, so the decoder recomputes each prior from the latents it has already decoded.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmark._torchvision_compat import ensure_torchvision_importable

ensure_torchvision_importable()  # compressai imports torchvision

from compressai.entropy_models import GaussianConditional  # noqa: E402
from compressai.layers import GDN  # noqa: E402
from compressai.models.base import CompressionModel, get_scale_table  # noqa: E402
from compressai.models.utils import conv, deconv  # noqa: E402

SCALE_BOUND = 0.11  # σ lower bound: CompressAI's GaussianConditional (scale_bound) and scale table minimum
MASS_BOUND = 1e-9  # lower bound on the probability mass of any integer (CompressAI's likelihood bound)
# Scales of the hierarchical model's coding tables: log-spaced from SCALE_BOUND to 256, as
# CompressAI's get_scale_table, but 256 levels instead of 64. σ is rounded up to the next table
# scale; with 64 levels (13 % apart) the coded rate of a 12-layer model was measured 4.3 % above
# its estimate, with 256 levels (3 % apart) 1.6 %.
SCALE_LEVELS = 256


def standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Φ(x) = ½ erfc(−x / √2), elementwise, in the dtype of ``x`` (as CompressAI computes it)."""
    return 0.5 * torch.erfc(-x * (2**-0.5))


def discretized_gaussian_mass(
    z: torch.Tensor,
    mean: torch.Tensor,
    scale: torch.Tensor,
    scale_bound: float = SCALE_BOUND,
    mass_bound: float = MASS_BOUND,
) -> torch.Tensor:
    """Probability mass of a Gaussian N(μ, σ²) over the unit bin around ``z``.

    ``P(z) = Φ((z + 1/2 − μ)/σ) − Φ((z − 1/2 − μ)/σ)``, computed as
    ``Φ((1/2 − |z − μ|)/σ) − Φ((−1/2 − |z − μ|)/σ)`` (the same value, more accurate in the tails),
    with σ bounded below by ``scale_bound`` and the mass by ``mass_bound`` (both with gradients
    that pass when moving towards the bound, CompressAI's ``LowerBound``).

    ``z``, ``mean``, ``scale``: float tensors that broadcast together (any shape); ``scale`` > 0.
    At integer ``z`` (and any μ) the masses sum to 1 over all integers, up to the bound; with
    ``z = f + u``, u ~ U(−1/2, 1/2), it is the density of the noisy latent (the training rate).
    Returns a float tensor of the broadcast shape with values in [mass_bound, 1].
    """
    scale = _lower_bound(scale, scale_bound)
    v = (z - mean).abs()
    mass = standard_normal_cdf((0.5 - v) / scale) - standard_normal_cdf((-0.5 - v) / scale)
    return _lower_bound(mass, mass_bound)


def _lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    from compressai.ops.bound_ops import LowerBoundFunction

    return LowerBoundFunction.apply(x, torch.tensor([bound], dtype=x.dtype, device=x.device))


class _ZeroAux:
    """``aux_loss()`` of models without an entropy bottleneck: a zero tensor (the training loop
    logs it and calls ``.item()``)."""

    def aux_loss(self) -> torch.Tensor:  # noqa: D401 - CompressAI's name
        return torch.zeros((), device=next(self.parameters()).device)


# ---- the single-layer model --------------------------------------------------------------


class DiscretizedVAE(_ZeroAux, CompressionModel):
    """Single-layer discretized VAE: z = round(g_a(x)) under a learned discretized Gaussian.

    Transforms (channels ``N`` inside, ``M`` latent channels) are those of CompressAI's
    ``ScaleHyperprior`` (Ballé et al., ICLR 2018): g_a = 4 × (5x5 conv, stride 2) with GDN, latent
    at stride 16; g_s the transpose with inverse GDN. Prior: per-channel μ and log σ, learned.

    Input ``x``: float32 (B, 3, H, W) in [0, 1], H and W multiples of 16. ``forward`` returns
    ``x_hat`` (B, 3, H, W), unclamped, and ``likelihoods["z"]`` (B, M, H/16, W/16), P(z) per
    element, from noisy latents in training mode and rounded ones in eval mode.

    Coding (``compress``/``decompress``, batch of 1 image): the integer latents are coded with
    constriction's ``QuantizedGaussian`` over [min z, max z] (both stored in the first string
    group, 8 bytes) with the per-channel μ, σ of ``update`` (float64 buffers stored in the state
    dict, never recomputed when loading), so the decoder uses exactly the encoder's model.
    """

    def __init__(self, N: int = 128, M: int = 192) -> None:
        super().__init__()
        self.N, self.M = int(N), int(M)
        self.g_a = nn.Sequential(
            conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M),
        )
        self.g_s = nn.Sequential(
            deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True), deconv(N, 3),
        )
        self.prior_mean = nn.Parameter(torch.zeros(M))
        self.prior_log_scale = nn.Parameter(torch.zeros(M))
        # the coding model: float64 copies made by update(); empty until then
        self.register_buffer("coding_mean", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("coding_scale", torch.zeros(0, dtype=torch.float64))

    def prior(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ) of the prior, each float (1, M, 1, 1); σ bounded below by ``SCALE_BOUND``."""
        mean = self.prior_mean.view(1, -1, 1, 1)
        scale = _lower_bound(self.prior_log_scale.exp(), SCALE_BOUND).view(1, -1, 1, 1)
        return mean, scale

    def forward(self, x: torch.Tensor) -> Dict[str, object]:
        y = self.g_a(x)
        z = y + torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else torch.round(y)
        mean, scale = self.prior()
        return {"x_hat": self.g_s(z), "likelihoods": {"z": discretized_gaussian_mass(z, mean, scale)}}

    def update(self, scale_table=None, force: bool = False, update_quantiles: bool = False) -> bool:
        """Freeze the coding model: float64 per-channel μ and σ (bounded) into the buffers
        ``coding_mean``/``coding_scale``. Returns True if they were (re)computed."""
        if self.coding_mean.numel() and not force:
            return False
        with torch.no_grad():
            mean, scale = self.prior()
        self.coding_mean = mean.flatten().double().cpu().clone()
        self.coding_scale = scale.flatten().double().cpu().clone()
        return True

    def load_state_dict(self, state_dict, strict: bool = True):
        for name in ("coding_mean", "coding_scale"):
            if name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[name]))
        return nn.Module.load_state_dict(self, state_dict, strict=strict)

    def _coding_params(self, shape: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        if self.coding_mean.numel() != self.M:
            raise RuntimeError("DiscretizedVAE: coding model not computed; call update() after training")
        h, w = shape
        mean = np.repeat(self.coding_mean.numpy(), h * w)
        scale = np.repeat(self.coding_scale.numpy(), h * w)
        return mean, scale

    def compress(self, x: torch.Tensor) -> Dict[str, object]:
        import constriction

        if x.shape[0] != 1:
            raise ValueError(f"DiscretizedVAE.compress codes one image at a time, got a batch of {x.shape[0]}")
        z = torch.round(self.g_a(x))[0]  # (M, h, w)
        shape = tuple(z.shape[1:])
        symbols = z.to(torch.int64).flatten().cpu().numpy()
        lo, hi = int(symbols.min()), int(symbols.max())
        if not (-(2**31) <= lo and hi < 2**31):
            raise ValueError(f"DiscretizedVAE: latent values out of the int32 range ({lo}..{hi})")
        mean, scale = self._coding_params(shape)
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(symbols.astype(np.int32), constriction.stream.model.QuantizedGaussian(lo, hi), mean, scale)
        data = coder.get_compressed().astype("<u4").tobytes()
        return {"strings": [[struct.pack("<ii", lo, hi)], [data]], "shape": shape}

    def decompress(self, strings: Sequence[Sequence[bytes]], shape: Sequence[int]) -> Dict[str, torch.Tensor]:
        import constriction

        if len(strings) != 2 or len(strings[0]) != 1 or len(strings[1]) != 1:
            raise ValueError(f"DiscretizedVAE: expected 2 string groups of 1 string, got {[len(g) for g in strings]}")
        header, data = bytes(strings[0][0]), bytes(strings[1][0])
        if len(header) != 8 or len(data) % 4:
            raise ValueError(f"DiscretizedVAE: bad string lengths ({len(header)} header bytes, {len(data)} data bytes)")
        lo, hi = struct.unpack("<ii", header)
        if lo > hi:
            raise ValueError(f"DiscretizedVAE: bad symbol range {lo}..{hi}")
        mean, scale = self._coding_params(shape)
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        symbols = coder.decode(constriction.stream.model.QuantizedGaussian(lo, hi), mean, scale)
        z = torch.from_numpy(symbols.astype(np.float32)).view(1, self.M, *shape).to(self.coding_mean.device)
        return {"x_hat": self.g_s(z).clamp_(0, 1)}


# ---- the hierarchical model --------------------------------------------------------------

# The paper's qres34m layout: latent layers per stride (top-down), latent channels per stride,
# encoder blocks per stride (bottom-up, strides 4..64).
STRIDES = (64, 32, 16, 8, 4)
LATENT_LAYERS = (1, 2, 3, 3, 3)
PAPER_Z = (16, 14, 12, 10, 8)
PAPER_ENC_BLOCKS = (6, 6, 6, 4, 2)  # strides 4, 8, 16, 32, 64


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of (B, C, H, W), per pixel (ConvNeXt's channels-first norm)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        x = (x - mu) / torch.sqrt(var + self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ConvNeXtBlock(nn.Module):
    """Residual block: 7x7 depthwise conv, LayerNorm, 1x1 (×2 width), GELU, 1x1, layer scale.

    The block of QRes-VAE (Duan et al.'s ``MyConvNeXtBlock``, after Liu et al., ConvNeXt, CVPR
    2022). (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, kernel_size: int = 7, mlp_ratio: int = 2, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.norm = LayerNorm2d(channels)
        self.pw1 = nn.Conv2d(channels, channels * mlp_ratio, 1)
        self.pw2 = nn.Conv2d(channels * mlp_ratio, channels, 1)
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.pw2(F.gelu(self.pw1(self.norm(self.dw(x)))))


class LatentBlock(nn.Module):
    """One latent layer of the top-down path (QRes-VAE's ``QLatentBlockX``).

    ``feature`` (B, C, h, w) -> ConvNeXt block -> prior (μ, σ) of the latent (B, Z, h, w); the
    posterior mean f from ``feature`` and the encoder's feature at the same stride; the latent z;
    ``feature + proj(z)`` -> ConvNeXt block.
    """

    def __init__(self, width: int, enc_width: int, z_channels: int) -> None:
        super().__init__()
        self.z_channels = z_channels
        self.in_res = ConvNeXtBlock(width)
        self.prior = nn.Sequential(nn.Conv2d(width, width, 1), nn.GELU(), nn.Conv2d(width, 2 * z_channels, 1))
        nn.init.zeros_(self.prior[-1].weight)  # start at μ = 0, σ = 1
        nn.init.zeros_(self.prior[-1].bias)
        self.posterior = nn.Sequential(
            nn.Conv2d(width + enc_width, width, 1), nn.GELU(), nn.Conv2d(width, z_channels, 3, padding=1)
        )
        self.z_proj = nn.Conv2d(z_channels, width, 1)
        self.out_res = ConvNeXtBlock(width)

    def prior_params(self, feature: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(feature after the input block, μ, σ): μ and σ float (B, Z, h, w), σ = exp(log σ)
        with log σ clamped to [−5, 5.5] (σ at most 245, inside the 64-entry scale table)."""
        feature = self.in_res(feature)
        mean, log_scale = self.prior(feature).chunk(2, dim=1)
        return feature, mean, log_scale.clamp(-5.0, 5.5).exp()

    def finish(self, feature: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.out_res(feature + self.z_proj(z))


class QResVAE(_ZeroAux, CompressionModel):
    """Hierarchical discretized VAE after QRes-VAE (Duan et al., WACV 2023), 12 latent layers.

    Sizes: ``N`` base width (the paper's qres34m: 96; blocks are 2N wide at stride 4 and 4N at
    strides 8..64), ``Z`` latent channels scale (16: the paper's 16, 14, 12, 10, 8 channels at
    strides 64, 32, 16, 8, 4), ``E`` encoder blocks scale (6: the paper's 6, 6, 6, 4, 2 blocks at
    strides 4, 8, 16, 32, 64). ``QResVAE(96, 16, 6)`` has 33.1M parameters (qres34m: about 34M).

    Encoder: 4x4 stride-4 patch conv, ConvNeXt blocks, 2x2 stride-2 patch downsampling between
    strides; its last feature at each stride feeds the posteriors of that stride. Decoder: from a
    learned constant at stride 64, latent blocks (1, 2, 3, 3, 3 per stride), 2x upsampling (1x1
    conv + pixel shuffle) between strides, and a 1x1 conv + 4x pixel shuffle to RGB.

    Latents: training z = f + u (noise), test z = round(f − μ) + μ, both through CompressAI's
    ``GaussianConditional`` (the same discretized Gaussian as :func:`discretized_gaussian_mass`).

    Input ``x``: float32 (B, 3, H, W) in [0, 1], H and W multiples of 64. ``forward`` returns
    ``x_hat`` and ``likelihoods`` ``{"z1": ..., "z12": ...}`` (top-down order). ``compress``
    (batch of 1): 12 string groups (one per layer, top-down) and the stride-64 shape;
    ``decompress`` decodes them top-down. ``sample`` draws from the prior.
    """

    def __init__(self, N: int = 96, Z: int = 16, E: int = 6) -> None:
        super().__init__()
        self.N, self.Z, self.E = int(N), int(Z), int(E)
        widths = {4: 2 * N, 8: 4 * N, 16: 4 * N, 32: 4 * N, 64: 4 * N}
        z_dims = {s: max(1, round(Z * p / 16)) for s, p in zip(STRIDES, PAPER_Z)}
        enc_blocks = {s: max(1, round(E * p / 6)) for s, p in zip((4, 8, 16, 32, 64), PAPER_ENC_BLOCKS)}
        self.widths, self.z_dims = widths, z_dims

        # bottom-up encoder
        self.enc_stem = nn.Conv2d(3, widths[4], 4, stride=4)
        self.enc_stages = nn.ModuleDict()
        self.enc_down = nn.ModuleDict()
        for s in (4, 8, 16, 32, 64):
            if s > 4:
                self.enc_down[str(s)] = nn.Conv2d(widths[s // 2], widths[s], 2, stride=2)
            self.enc_stages[str(s)] = nn.Sequential(*[ConvNeXtBlock(widths[s]) for _ in range(enc_blocks[s])])

        # top-down decoder
        self.top = nn.Parameter(torch.zeros(1, widths[64], 1, 1))
        self.latents = nn.ModuleList()
        self.layer_stride: List[int] = []
        self.dec_up = nn.ModuleDict()
        for s, n in zip(STRIDES, LATENT_LAYERS):
            for _ in range(n):
                self.latents.append(LatentBlock(widths[s], widths[s], z_dims[s]))
                self.layer_stride.append(s)
            if s > 4:
                self.dec_up[str(s)] = nn.Sequential(nn.Conv2d(widths[s], widths[s // 2] * 4, 1), nn.PixelShuffle(2))
        self.to_rgb = nn.Sequential(ConvNeXtBlock(widths[4]), nn.Conv2d(widths[4], 3 * 16, 1), nn.PixelShuffle(4))
        self.gaussian_conditional = GaussianConditional(None, scale_bound=SCALE_BOUND, likelihood_bound=MASS_BOUND)

    def update(self, scale_table=None, force: bool = False, update_quantiles: bool = False) -> bool:
        """Compute the coding tables (CDFs for a table of ``SCALE_LEVELS`` scales, stored as
        buffers in the state dict). Returns True if they were (re)computed."""
        if scale_table is None:
            scale_table = get_scale_table(SCALE_BOUND, 256, SCALE_LEVELS)
        return self.gaussian_conditional.update_scale_table(scale_table, force=force)

    # -- the two passes ---------------------------------------------------------------------

    def encode_features(self, x: torch.Tensor) -> Dict[int, torch.Tensor]:
        """Bottom-up features {stride: (B, width, H/stride, W/stride)} for strides 4..64."""
        feats: Dict[int, torch.Tensor] = {}
        h = self.enc_stem(x)
        for s in (4, 8, 16, 32, 64):
            if s > 4:
                h = self.enc_down[str(s)](h)
            h = self.enc_stages[str(s)](h)
            feats[s] = h
        return feats

    def _top_down(self, batch: int, top_shape: Tuple[int, int], choose) -> torch.Tensor:
        """Run the decoder; ``choose(i, block, feature, mean, scale)`` returns latent i (z).
        Returns the unclamped reconstruction (B, 3, 64 h, 64 w)."""
        feature = self.top.expand(batch, -1, *top_shape)
        for i, (block, s) in enumerate(zip(self.latents, self.layer_stride)):
            feature, mean, scale = block.prior_params(feature)
            z = choose(i, block, feature, mean, scale)
            feature = block.finish(feature, z)
            last_of_stride = i + 1 == len(self.latents) or self.layer_stride[i + 1] != s
            if last_of_stride and s > 4:
                feature = self.dec_up[str(s)](feature)
        return self.to_rgb(feature)

    def forward(self, x: torch.Tensor) -> Dict[str, object]:
        feats = self.encode_features(x)
        likelihoods: Dict[str, torch.Tensor] = {}

        def choose(i, block, feature, mean, scale):
            f = block.posterior(torch.cat([feature, feats[self.layer_stride[i]]], dim=1))
            z, lk = self.gaussian_conditional(f, scale, means=mean)
            likelihoods[f"z{i + 1}"] = lk
            return z

        x_hat = self._top_down(x.shape[0], tuple(feats[64].shape[2:]), choose)
        return {"x_hat": x_hat, "likelihoods": likelihoods}

    # -- coding -----------------------------------------------------------------------------

    def compress(self, x: torch.Tensor) -> Dict[str, object]:
        if x.shape[0] != 1:
            raise ValueError(f"QResVAE.compress codes one image at a time, got a batch of {x.shape[0]}")
        feats = self.encode_features(x)
        gc = self.gaussian_conditional
        strings: List[List[bytes]] = []

        def choose(i, block, feature, mean, scale):
            f = block.posterior(torch.cat([feature, feats[self.layer_stride[i]]], dim=1))
            indexes = gc.build_indexes(scale)
            strings.append(gc.compress(f, indexes, means=mean))
            symbols = gc.quantize(f, "symbols", mean)
            return gc.dequantize(symbols, mean)  # what the decoder will have: round(f − μ) + μ

        shape = tuple(feats[64].shape[2:])
        self._top_down(1, shape, choose)
        return {"strings": strings, "shape": shape}

    def decompress(self, strings: Sequence[Sequence[bytes]], shape: Sequence[int]) -> Dict[str, torch.Tensor]:
        if len(strings) != len(self.latents) or any(len(g) != 1 for g in strings):
            raise ValueError(f"QResVAE: expected {len(self.latents)} string groups of 1 string, got {[len(g) for g in strings]}")
        gc = self.gaussian_conditional

        def choose(i, block, feature, mean, scale):
            indexes = gc.build_indexes(scale)
            return gc.decompress([bytes(strings[i][0])], indexes, dtype=mean.dtype, means=mean)

        x_hat = self._top_down(1, (int(shape[0]), int(shape[1])), choose)
        return {"x_hat": x_hat.clamp_(0, 1)}

    # -- generation -------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int, height: int, width: int, *, integer: bool, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """Unconditional samples: draw every latent from its prior top-down, then decode.

        ``z = μ + τσε`` (continuous latents) or ``z = μ + round(τσε)`` (integer latents: a draw
        from the discretized Gaussian when τ = 1), ε ~ N(0, 1) from a ``torch.Generator`` seeded
        with ``seed``, so both kinds use the same ε. ``height``/``width``: multiples of 64 (px).
        Returns float32 (n, 3, height, width) in [0, 1]. Raises ``ValueError`` for other sizes.
        """
        if height % 64 or width % 64 or height <= 0 or width <= 0:
            raise ValueError(f"QResVAE.sample: height and width must be positive multiples of 64, got {height}x{width}")
        g = torch.Generator().manual_seed(int(seed))
        device = self.top.device

        def choose(i, block, feature, mean, scale):
            eps = torch.randn(mean.shape, generator=g).to(device)
            scale = torch.clamp_min(scale, SCALE_BOUND)
            step = temperature * scale * eps
            return mean + (torch.round(step) if integer else step)

        return self._top_down(n, (height // 64, width // 64), choose).clamp(0, 1)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters (int)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "DiscretizedVAE",
    "QResVAE",
    "discretized_gaussian_mass",
    "standard_normal_cdf",
    "parameter_count",
    "SCALE_BOUND",
    "MASS_BOUND",
]

