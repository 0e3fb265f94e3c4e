"""Progressive Synonymous Image Compression (SIC): Liang et al., "Synonymous Variational Inference
for Perceptual Image Compression", ICML 2025 (arXiv 2505.22438), with the state_dict layout of the
authors' checkpoints (``ProgSIC`` of github.com/ZJLiang6412/SynonymousImageCompression).

Written from the architecture facts in ``shared/fixtures/sic/README.md``; the authors' repository
has no licence, so none of its code is used here. The modules are named so that, after
:func:`official_state_dict` (strip ``module.``, compressai-1.2.4 EntropyBottleneck names to 1.2.8
ones, drop the loss networks and the Swin ``attn_mask`` buffers), an official checkpoint loads
with strict ``load_state_dict`` (:func:`load_official_checkpoint`).

Model (``dim`` latent channels in ``num_slices`` = 16 slices of ``dim/16``; official dim = 512):

- ``ga`` (:class:`AnalysisTransform`): Swin-v1 encoder, RGB (N, 3, H, W) -> y (N, dim, H/16, W/16);
- ``ha``/``hs``: convolutional hyperprior, z = ha(y) (N, dim·3/4, H/64, W/64); hs(ẑ) gives
  ``[σ_hyper, μ_hyper]`` (N, 2·dim, H/16, W/16);
- ``entropy_bottleneck``: CompressAI's factorized prior of z (medians ``quantiles[:, 0, 1]``);
- ``context_model`` (:class:`SliceCausalContext`): a 5x5 masked convolution over ŷ that is
  causal across slices (slice s sees slices < s fully, its own slice in raster order);
- ``entropy_parameters`` (:class:`GroupEntropyParameters`): per-slice 1x1 convolutions from
  ``[σ_hyper, μ_hyper, ctx]`` to the Gaussian (σ, μ) of every element of ŷ;
- ``gs`` (:class:`SynthesisTransform`): Swin-v1 decoder, ŷ -> x̂ (N, 3, H, W), clamped to [0, 1].

Progressive (synonymous) coding at level ℓ = 0..16: the first ℓ slices, channels
``[0, ℓ·dim/16)`` of ŷ = round(y), are transmitted (rate from the Gaussian conditional); the
others are *sampled* at the decoder from the hyperprior as ``round(μ_hyper + n)``, n ~ U[-2, 2)
(:func:`uniform_sample_noise`), so every level decodes to a member of the "synonymous set" of
images sharing the transmitted part. Rates (bpp) are Σ -log2 P / (H·W) of the padded image.

Units and ranges: images float32 RGB in [0, 1] (no normalisation); y, ŷ, z unitless latents
(ŷ integer valued, ẑ = round(z - m) + m with m the medians); σ is a standard deviation, bounded
below by 0.11 (``SCALE_BOUND``) in every probability; P(ŷ) = Φ((½-|ŷ-μ|)/σ) - Φ((-½-|ŷ-μ|)/σ)
clamped to [1e-9, 1] (``LIKELIHOOD_BOUND``).

Numerics: the reduced fixture model is reproduced in float32 to 2e-6 relative (y, z, ga(x̂)),
1e-7 (x̂, P, bpp), hs, the context and the entropy parameters bit for bit, ŷ, ẑ and the samples
exactly (tests/test_sic_official.py states the measured worst cases and the tolerances).

The authors never entropy-code (their bpp are likelihood estimates and their CDF buffers stay
empty); this module gives the model and its test path, the coder is built on top of it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.errors import BenchmarkError

ensure_torchvision_importable()  # compressai imports torchvision

from compressai.entropy_models import EntropyBottleneck, GaussianConditional  # noqa: E402
from compressai.models.base import CompressionModel  # noqa: E402
from compressai.ops import quantize_ste  # noqa: E402

MAX_STRIDE = 64  # z is at H/64: inputs to forward/test_level are padded to multiples of 64
LATENT_STRIDE = 16  # y is at H/16
NUM_SLICES = 16  # progressive levels of the official model (config.semDim_level)
SCALE_BOUND = 0.11  # lower bound on σ in P(ŷ) (CompressAI's GaussianConditional default)
LIKELIHOOD_BOUND = 1e-9  # lower bound on P(ŷ) and P(ẑ)
SAMPLE_HALF_WIDTH = 2.0  # untransmitted channels: round(μ_hyper + U[-2, 2))
SWIN_MASK_VALUE = -100.0  # added to attention logits across shifted-window region boundaries

#: Value of ``rng`` that selects the official draw from numpy's global RNG (``np.random.rand``).
GLOBAL_NUMPY = "global-numpy"


class SICCheckpointError(BenchmarkError, ValueError):
    """An official SIC checkpoint does not fit the model; the message names the file and the keys."""


# ---- Swin-v1 building blocks -----------------------------------------------------------------


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of ``window`` -> (B·nW, window², C), windows in raster order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B·nW, window², C) -> (B, h, w, C)."""
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def relative_position_index(window: int) -> torch.Tensor:
    """int64 (window², window²): index into the (2w-1)² relative-position bias table for each
    (query, key) pair of a window (Swin-v1: ``(dy + w - 1)·(2w - 1) + (dx + w - 1)``)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def shifted_window_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """float32 (nW, window², window²) additive mask of shifted-window attention for a token grid of
    ``height`` x ``width`` (multiples of ``window``): 0 between tokens of the same region of the
    cyclically shifted image, -100 otherwise (Swin-v1). Regions: rows and columns split at
    ``-window`` and ``-shift``."""
    region = torch.zeros(1, height, width, 1)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            region[:, hs, ws, :] = label
            label += 1
    windows = window_partition(region, window).squeeze(-1)  # (nW, window²)
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, SWIN_MASK_VALUE)


class Mlp(nn.Module):
    """``fc2(gelu(fc1(x)))``, Linear dim→hidden→dim with biases, exact GELU; (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``window`` x ``window`` windows with a learned relative
    position bias (Swin-v1). q is scaled by ``head_dim^-0.5``. Keys:
    ``relative_position_bias_table`` ((2w-1)², heads), ``relative_position_index`` (w², w²) int64
    buffer, ``qkv`` Linear(dim→3·dim), ``proj`` Linear(dim→dim).
    (B·nW, w², dim) -> (B·nW, w², dim); ``mask`` (nW, w², w²) is added to the logits."""

    def __init__(self, dim: int, window: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"SIC: attention width {dim} is not a multiple of {heads} heads")
        self.dim, self.window, self.heads = int(dim), int(window), int(heads)
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B·nW, heads, n, n)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.heads, n, n) + mask.to(attn.dtype).unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """Swin-v1 transformer block (pre-norm, LayerNorm eps 1e-5, no dropout or drop-path):
    ``x = x + attn(norm1(x))``, ``x = x + mlp(norm2(x))``; windows of ``window`` tokens, cyclically
    shifted by ``shift`` (0 or window/2) with the region mask of :func:`shifted_window_mask`.

    When the grid is not a multiple of the window, the normalised tokens are zero-padded at the
    bottom/right before the shift; the padded tokens take part in attention (only the shift mask
    applies) and are cropped afterwards. The shift mask is computed for the actual (padded) grid
    on first use and cached per grid size and device (never stored in the state_dict).

    forward(x (B, H·W, dim), H, W) -> (B, H·W, dim). Keys: ``norm1``, ``attn``, ``norm2``, ``mlp``.
    """

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float = 4.0, qkv_bias: bool = True) -> None:
        super().__init__()
        self.dim, self.window, self.shift = int(dim), int(window), int(shift)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self._masks: dict[tuple, torch.Tensor] = {}

    def attn_mask(self, height: int, width: int, device: torch.device) -> torch.Tensor | None:
        """The shift mask (nW, w², w²) for a padded grid ``height`` x ``width`` (None without shift)."""
        if not self.shift:
            return None
        key = (int(height), int(width), str(device))
        mask = self._masks.get(key)
        if mask is None:
            if len(self._masks) >= 8:
                self._masks.clear()
            mask = shifted_window_mask(height, width, self.window, self.shift).to(device)
            self._masks[key] = mask
        return mask

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        b, length, c = x.shape
        if length != height * width:
            raise ValueError(f"SIC Swin block: {length} tokens for a {height}x{width} grid")
        ws = self.window
        shortcut = x
        x = self.norm1(x).view(b, height, width, c)
        pad_b, pad_r = -height % ws, -width % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = height + pad_b, width + pad_r
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = self.attn(window_partition(x, ws), mask=self.attn_mask(hp, wp, x.device))
        x = window_reverse(windows, ws, hp, wp)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        if pad_b or pad_r:
            x = x[:, :height, :width, :].contiguous()
        x = shortcut + x.view(b, height * width, c)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """``proj`` Conv2d(3→dim, k=s=2) then ``norm`` LayerNorm(dim):
    (B, 3, H, W) -> tokens (B, H/2·W/2, dim), raster order."""

    def __init__(self, dim: int, in_ch: int = 3, patch: int = 2) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class PatchMerging(nn.Module):
    """2x2 token merge: ``cat[x(0::2,0::2), x(1::2,0::2), x(0::2,1::2), x(1::2,1::2)]`` (4·in
    channels), ``norm`` LayerNorm(4·in), ``reduction`` Linear(4·in→out, no bias).
    (B, H·W, in) at H x W (even) -> (B, H/2·W/2, out)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * in_dim, out_dim, bias=False)
        self.norm = nn.LayerNorm(4 * in_dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, height, width, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class PatchReverseMerging(nn.Module):
    """2x token upsampling: tokens -> NCHW, ``PixelShuffle(2)`` (in/4 channels), tokens,
    ``norm`` LayerNorm(in/4), ``increment`` Linear(in/4→out, no bias).
    (B, H·W, in) at H x W -> (B, 2H·2W, out)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        if in_dim % 4:
            raise ValueError(f"SIC: PatchReverseMerging needs a multiple of 4 channels, got {in_dim}")
        self.increment = nn.Linear(in_dim // 4, out_dim, bias=False)
        self.norm = nn.LayerNorm(in_dim // 4)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, height, width, c).permute(0, 3, 1, 2)
        x = F.pixel_shuffle(x, 2).flatten(2).permute(0, 2, 1)
        return self.increment(self.norm(x))


def _swin_blocks(dim: int, depth: int, heads: int, window: int, mlp_ratio: float) -> nn.ModuleList:
    """``depth`` Swin blocks, shift window/2 on the odd ones."""
    return nn.ModuleList(
        SwinBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio) for i in range(depth)
    )


class EncoderStage(nn.Module):
    """``downsample`` (:class:`PatchMerging`, none in stage 0) then ``blocks``. Keys ``blocks.*``
    before ``downsample.*`` (the official order)."""

    def __init__(
        self, in_dim: int, dim: int, depth: int, heads: int, window: int, mlp_ratio: float, downsample: bool
    ) -> None:
        super().__init__()
        self.blocks = _swin_blocks(dim, depth, heads, window, mlp_ratio)
        self.downsample = PatchMerging(in_dim, dim) if downsample else None

    def forward(self, x: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, int, int]:
        if self.downsample is not None:
            x = self.downsample(x, height, width)
            height, width = height // 2, width // 2
        for block in self.blocks:
            x = block(x, height, width)
        return x, height, width


class DecoderStage(nn.Module):
    """``blocks`` at ``dim`` then ``upsample`` (:class:`PatchReverseMerging` dim→out_dim, 2x)."""

    def __init__(self, dim: int, out_dim: int, depth: int, heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = _swin_blocks(dim, depth, heads, window, mlp_ratio)
        self.upsample = PatchReverseMerging(dim, out_dim)

    def forward(self, x: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, int, int]:
        for block in self.blocks:
            x = block(x, height, width)
        return self.upsample(x, height, width), 2 * height, 2 * width


class AnalysisTransform(nn.Module):
    """ga: :class:`PatchEmbed` (3→dims[0], /2), stage 0 (``depths[0]`` blocks at dims[0]),
    stages 1..3 (:class:`PatchMerging` dims[i-1]→dims[i], /2, then ``depths[i]`` blocks), final
    ``norm`` LayerNorm(dims[-1]). x float32 (B, 3, H, W), H and W multiples of 16 ->
    y (B, dims[-1], H/16, W/16)."""

    def __init__(
        self, dims: Sequence[int], depths: Sequence[int], heads: Sequence[int], window: int = 8, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        if not (len(dims) == len(depths) == len(heads)):
            raise ValueError("SIC ga: dims, depths and heads must have the same length")
        self.patch_embed = PatchEmbed(dims[0])
        self.layers = nn.ModuleList(
            EncoderStage(dims[max(i - 1, 0)], dims[i], depths[i], heads[i], window, mlp_ratio, downsample=i > 0)
            for i in range(len(dims))
        )
        self.norm = nn.LayerNorm(dims[-1])
        self.stride = 2 ** len(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if h % self.stride or w % self.stride:
            raise ValueError(f"SIC ga: H and W must be multiples of {self.stride}, got {h}x{w}")
        x = self.patch_embed(x)
        h, w = h // 2, w // 2
        for layer in self.layers:
            x, h, w = layer(x, h, w)
        x = self.norm(x)
        return x.view(b, h, w, -1).permute(0, 3, 1, 2)


class SynthesisTransform(nn.Module):
    """gs: stages i = 0..3 (``depths[i]`` blocks at dims[i], then :class:`PatchReverseMerging`
    dims[i]→dims[i+1], the last to dims[-1]), ``outconv`` Conv3x3(dims[-1]→3, padding 1).
    ŷ float32 (B, dims[0], h, w) -> (B, 3, 16h, 16w), **not clamped** (the model clamps)."""

    def __init__(
        self, dims: Sequence[int], depths: Sequence[int], heads: Sequence[int], window: int = 8, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        if not (len(dims) == len(depths) == len(heads)):
            raise ValueError("SIC gs: dims, depths and heads must have the same length")
        outs = list(dims[1:]) + [dims[-1]]
        self.layers = nn.ModuleList(
            DecoderStage(dims[i], outs[i], depths[i], heads[i], window, mlp_ratio) for i in range(len(dims))
        )
        self.outconv = nn.Conv2d(dims[-1], 3, 3, padding=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        b, _, h, w = y.shape
        x = y.flatten(2).permute(0, 2, 1)
        for layer in self.layers:
            x, h, w = layer(x, h, w)
        return self.outconv(x.view(b, h, w, -1).permute(0, 3, 1, 2))


# ---- entropy model ---------------------------------------------------------------------------


def slice_causal_mask(dim: int, num_slices: int = NUM_SLICES, kernel: int = 5) -> torch.Tensor:
    """float32 (2·dim, dim, k, k) mask of the context convolution, in blocks of
    (2·dim/S out x dim/S in) channels for output slice o and input slice i: o > i all ones; o < i
    all zeros; o == i ones strictly before the centre in raster order (rows above the centre, and
    the centre row left of the centre)."""
    if dim % num_slices:
        raise ValueError(f"SIC: dim {dim} is not a multiple of {num_slices} slices")
    d = dim // num_slices
    c = kernel // 2
    causal = torch.ones(kernel, kernel)
    causal[c, c:] = 0
    causal[c + 1:, :] = 0
    mask = torch.zeros(2 * dim, dim, kernel, kernel)
    for o in range(num_slices):
        rows = slice(2 * d * o, 2 * d * (o + 1))
        mask[rows, : d * o] = 1
        mask[rows, d * o : d * (o + 1)] = causal
    return mask


class MaskedConv2d(nn.Conv2d):
    """Conv2d whose weight is multiplied by the ``mask`` buffer at every use (the stored weight
    may hold anything at the masked places: the official checkpoints are not pre-masked)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, mask: torch.Tensor) -> None:
        super().__init__(in_ch, out_ch, kernel, padding=kernel // 2)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class SliceCausalContext(nn.Module):
    """The autoregressive context model (``ContextModel_AR``): ``layer`` a 5x5
    :class:`MaskedConv2d` dim→2·dim with :func:`slice_causal_mask`; its output, per slice s the
    2·d channels ``[a_s, b_s]`` (d = dim/S), is reordered to ``[a_0..a_{S-1}, b_0..b_{S-1}]``.
    ŷ (B, dim, h, w) -> (B, 2·dim, h, w). Output slice s depends on ŷ slices < s and on slice s
    at raster-earlier positions only."""

    def __init__(self, dim: int, num_slices: int = NUM_SLICES, kernel: int = 5) -> None:
        super().__init__()
        self.dim, self.num_slices = int(dim), int(num_slices)
        self.layer = MaskedConv2d(dim, 2 * dim, kernel, slice_causal_mask(dim, num_slices, kernel))

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        out = self.layer(y_hat)
        b, _, h, w = out.shape
        s = self.num_slices
        return out.view(b, s, 2, self.dim // s, h, w).permute(0, 2, 1, 3, 4, 5).reshape(b, 2 * self.dim, h, w)


class GroupEntropyParameters(nn.Module):
    """Per-slice entropy parameters: input ``[σ_hyper, μ_hyper, ctx_a, ctx_b]`` (4·dim channels,
    each block slice-major) regrouped so group s holds the four d-channel pieces of slice s; then
    ``layer`` = 1x1 Conv(4·dim→3·dim, groups=S), LeakyReLU(0.01), 1x1 Conv(3·dim→3·dim, groups=S),
    LeakyReLU, 1x1 Conv(3·dim→2·dim, groups=S); the output (per slice [σ_s, μ_s]) is regrouped to
    ``[σ (dim), μ (dim)]``. (B, 4·dim, h, w) -> (B, 2·dim, h, w)."""

    def __init__(self, in_ch: int, num_slices: int = NUM_SLICES) -> None:
        super().__init__()
        if in_ch % (4 * num_slices):
            raise ValueError(f"SIC: entropy parameters input {in_ch} is not a multiple of 4·{num_slices}")
        self.in_ch, self.num_slices = int(in_ch), int(num_slices)
        dim = in_ch // 4
        g = num_slices
        self.layer = nn.Sequential(
            nn.Conv2d(in_ch, 3 * dim, 1, groups=g),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(3 * dim, 3 * dim, 1, groups=g),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(3 * dim, 2 * dim, 1, groups=g),
        )

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        b, c, h, w = params.shape
        s = self.num_slices
        x = params.view(b, 4, s, c // (4 * s), h, w).permute(0, 2, 1, 3, 4, 5).reshape(b, c, h, w)
        out = self.layer(x)
        return out.view(b, s, 2, c // (4 * s), h, w).permute(0, 2, 1, 3, 4, 5).reshape(b, c // 2, h, w)


# ---- sampling of the untransmitted channels --------------------------------------------------


_DRAWS = {  # kind: (torch function, numpy Generator method, RandomState method, np.random function)
    "uniform": ("rand", "random", "random_sample", "rand"),
    "gaussian": ("randn", "standard_normal", "standard_normal", "randn"),
}


def _draw(kind: str, shape: Sequence[int], rng: Any) -> np.ndarray:
    """float64 numpy array of ``shape``: uniform in [0, 1) (``kind="uniform"``) or standard
    normal (``"gaussian"``) from ``rng``: a ``torch.Generator`` (``torch.rand``/``torch.randn``
    in float64 on the CPU), a numpy ``Generator`` (``random``/``standard_normal``) or
    ``RandomState`` (``random_sample``/``standard_normal``), or ``GLOBAL_NUMPY`` (numpy's
    global ``np.random.rand``/``np.random.randn``). Raises ``TypeError`` for another ``rng``."""
    torch_fn, gen_method, state_method, global_fn = _DRAWS[kind]
    shape = tuple(int(s) for s in shape)
    if isinstance(rng, torch.Generator):
        return getattr(torch, torch_fn)(shape, generator=rng, dtype=torch.float64).numpy()
    if isinstance(rng, np.random.Generator):
        return getattr(rng, gen_method)(shape)
    if isinstance(rng, np.random.RandomState):
        return getattr(rng, state_method)(shape)
    if isinstance(rng, str) and rng == GLOBAL_NUMPY:
        return getattr(np.random, global_fn)(*shape)
    raise TypeError(
        f"SIC: rng must be a torch.Generator, a numpy Generator/RandomState or {GLOBAL_NUMPY!r}, got {type(rng).__name__}"
    )


def uniform_sample_noise(shape: Sequence[int], rng: Any) -> torch.Tensor:
    """float32 CPU tensor of ``shape``, values in [-2, 2): the noise added to μ_hyper for the
    untransmitted channels, computed as the authors do: ``2 · float32(2u - 1)`` with u float64
    uniform in [0, 1).

    ``rng``: a ``torch.Generator`` (u from ``torch.rand(..., dtype=float64)``), a numpy
    ``Generator`` (``rng.random``) or ``RandomState`` (``rng.random_sample``), or
    ``GLOBAL_NUMPY`` for the official unseeded draw ``np.random.rand`` (after
    ``np.random.seed(2024)`` it gives the fixtures' ``sample_noise``). Raises ``TypeError`` for
    anything else.
    """
    u = _draw("uniform", shape, rng)
    return SAMPLE_HALF_WIDTH * torch.tensor(2 * u - 1, dtype=torch.float32)


def gaussian_sample_noise(shape: Sequence[int], rng: Any) -> torch.Tensor:
    """float32 CPU tensor of ``shape``: standard normal ε for the authors' ``UniformSampling=False``
    option (samples ``round(μ_hyper + σ_hyper·ε)``); ``rng`` as in :func:`uniform_sample_noise`
    (``GLOBAL_NUMPY``: ``np.random.randn``, float64 cast to float32)."""
    return torch.tensor(_draw("gaussian", shape, rng), dtype=torch.float32)


def official_loss_weights(level: int) -> tuple[float, float, float]:
    """(λ_mse, γ_lpips, β_bpp) of config.py for level ℓ = 1..16: ``128·ℓ``, ``2^(5 - ℓ/8)``,
    ``2^(6 - 3ℓ/8)``. Raises ``ValueError`` outside 1..16."""
    if not 1 <= int(level) <= NUM_SLICES:
        raise ValueError(f"SIC: loss weights exist for levels 1..{NUM_SLICES}, got {level}")
    ell = int(level)
    return 128.0 * ell, 2.0 ** (5 - ell / 8), 2.0 ** (6 - 3 * ell / 8)


def pad_bottom_right(x: torch.Tensor, multiple: int = MAX_STRIDE) -> torch.Tensor:
    """Zero-pad (B, C, H, W) at the bottom and right to multiples of ``multiple`` (the image stays
    top-left, as the authors' main.py does); returns ``x`` itself when nothing is needed."""
    h, w = x.shape[-2:]
    pad_b, pad_r = -h % multiple, -w % multiple
    return F.pad(x, (0, pad_r, 0, pad_b)) if (pad_b or pad_r) else x


def _bits(likelihoods: torch.Tensor) -> torch.Tensor:
    return torch.log(likelihoods).sum() / (-math.log(2))


# ---- the model -------------------------------------------------------------------------------


class SIC(CompressionModel):
    """Progressive SIC (``ProgSIC``), see the module docstring. Build with :func:`sic_official`,
    :func:`sic` or :func:`build_sic`.

    Attributes: ``dim`` (channels of y), ``num_slices`` (16), ``slice_dim`` (= dim / 16),
    ``hyper_dim`` (channels of z, dim·3/4 officially).

    Entry points (x: float32 (B, 3, H, W) RGB in [0, 1]):

    - :meth:`test_level` (alias :meth:`test`): the authors' test path at level ℓ, with the image
      zero-padded bottom/right to multiples of 64 and every intermediate returned;
    - ``forward(x, level=None, num_samples=1, rng=None)``: training / CompressAI contract
      (``{"x_hat", "likelihoods": {"y", "z"}, ...}``), H and W multiples of 64;
    - the pieces a coder composes: :meth:`analysis`, :meth:`hyper_analysis`,
      :meth:`hyper_synthesis`, :meth:`context`, :meth:`gaussian_params`, :meth:`y_likelihoods`,
      :meth:`sample_untransmitted`, :meth:`synthesis`;
    - CompressAI's ``update()`` (fills the EntropyBottleneck and GaussianConditional tables) and
      ``aux_loss()`` (the EntropyBottleneck quantile loss).
    """

    def __init__(
        self,
        dim: int,
        ga_dims: Sequence[int],
        ga_depths: Sequence[int],
        gs_dims: Sequence[int],
        gs_depths: Sequence[int],
        heads: Sequence[int] | int,
        window: int = 8,
        mlp_ratio: float = 4.0,
        num_slices: int = NUM_SLICES,
        hyper_dim: int | None = None,
    ) -> None:
        super().__init__()
        dim = int(dim)
        if ga_dims[-1] != dim or gs_dims[0] != dim:
            raise ValueError(f"SIC: ga must end and gs start at dim={dim}, got {list(ga_dims)} / {list(gs_dims)}")
        if dim % num_slices:
            raise ValueError(f"SIC: dim {dim} is not a multiple of {num_slices} slices")
        hyper_dim = dim * 3 // 4 if hyper_dim is None else int(hyper_dim)
        ga_heads = [int(heads)] * len(ga_dims) if isinstance(heads, int) else list(heads)
        gs_heads = [int(heads)] * len(gs_dims) if isinstance(heads, int) else list(heads)
        self.dim, self.num_slices, self.slice_dim, self.hyper_dim = dim, int(num_slices), dim // num_slices, hyper_dim
        self.config = {
            "dim": dim, "ga_dims": list(ga_dims), "ga_depths": list(ga_depths), "gs_dims": list(gs_dims),
            "gs_depths": list(gs_depths), "heads": heads if isinstance(heads, int) else list(heads), "window": int(window),
            "mlp_ratio": float(mlp_ratio), "num_slices": int(num_slices), "hyper_dim": hyper_dim,
        }

        self.ga = AnalysisTransform(ga_dims, ga_depths, ga_heads, window, mlp_ratio)
        self.gs = SynthesisTransform(gs_dims, gs_depths, gs_heads, window, mlp_ratio)
        self.ha = nn.Sequential(
            nn.Conv2d(dim, hyper_dim, 3, stride=1, padding=1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(hyper_dim, hyper_dim, 5, stride=2, padding=2),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(hyper_dim, hyper_dim, 5, stride=2, padding=2),
        )
        self.hs = nn.Sequential(
            nn.ConvTranspose2d(hyper_dim, dim, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(dim, dim * 3 // 2, 5, stride=2, padding=2, output_padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(dim * 3 // 2, 2 * dim, 3, stride=1, padding=1),
        )
        self.entropy_bottleneck = EntropyBottleneck(hyper_dim)
        self.gaussian_conditional = GaussianConditional(None, scale_bound=SCALE_BOUND, likelihood_bound=LIKELIHOOD_BOUND)
        self.context_model = SliceCausalContext(dim, num_slices)
        self.entropy_parameters = GroupEntropyParameters(4 * dim, num_slices)
        self._init_weights()

    # -- initialisation (training from scratch only; loading replaces it) ----------------------

    def _init_weights(self) -> None:
        """Swin parts: Linear weights and bias tables truncated normal (std 0.02), Linear biases 0,
        LayerNorm 1/0 (Swin-v1); ha/hs: Kaiming-normal (fan_out) weights, as the authors."""
        with torch.no_grad():
            for m in list(self.ga.modules()) + list(self.gs.modules()):
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, WindowAttention):
                    nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
            for seq, last in ((self.ha, "conv2d"), (self.hs, "conv_transpose2d")):
                nn.init.kaiming_normal_(seq[0].weight, mode="fan_out", nonlinearity="leaky_relu")
                nn.init.kaiming_normal_(seq[2].weight, mode="fan_out", nonlinearity="leaky_relu")
                nn.init.kaiming_normal_(seq[4].weight, mode="fan_out", nonlinearity=last)

    # -- pieces --------------------------------------------------------------------------------

    def sem_dim(self, level: int) -> int:
        """Transmitted channels at level ℓ: ``ℓ · dim / 16``. Raises ``ValueError`` outside 0..16."""
        if not 0 <= int(level) <= self.num_slices:
            raise ValueError(f"SIC: level must be in 0..{self.num_slices}, got {level}")
        return int(level) * self.slice_dim

    def _check_input(self, x: torch.Tensor, multiple: int = MAX_STRIDE) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SIC: expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h, w = x.shape[2:]
        if h % multiple or w % multiple:
            raise ValueError(f"SIC: H and W must be multiples of {multiple}, got {h}x{w} (pad with pad_bottom_right)")

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """y = ga(x): (B, 3, H, W) in [0, 1] -> (B, dim, H/16, W/16)."""
        return self.ga(x)

    def synthesis(self, y_hat: torch.Tensor) -> torch.Tensor:
        """x̂ = clamp(gs(ŷ), 0, 1): (B, dim, h, w) -> (B, 3, 16h, 16w) in [0, 1]."""
        return self.gs(y_hat).clamp(0, 1)

    def hyper_analysis(self, y: torch.Tensor) -> torch.Tensor:
        """z = ha(y): (B, dim, h, w) -> (B, hyper_dim, h/4, w/4)."""
        return self.ha(y)

    def z_medians(self) -> torch.Tensor:
        """(hyper_dim, 1, 1): the EntropyBottleneck medians ``quantiles[:, :, 1:2]``."""
        return self.entropy_bottleneck._get_medians().detach()

    def quantize_z(self, z: torch.Tensor) -> torch.Tensor:
        """ẑ = round(z - m) + m with the medians m (straight-through gradient)."""
        m = self.entropy_bottleneck._get_medians()
        return quantize_ste(z - m) + m

    def hyper_synthesis(self, z_hat: torch.Tensor) -> torch.Tensor:
        """hs(ẑ): (B, hyper_dim, h/4, w/4) -> (B, 2·dim, h, w) = ``[σ_hyper, μ_hyper]``."""
        return self.hs(z_hat)

    def context(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Context parameters (B, 2·dim, h, w) of ŷ (B, dim, h, w); see :class:`SliceCausalContext`."""
        return self.context_model(y_hat)

    def gaussian_params(self, hyper_params: torch.Tensor, context_params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(σ, μ), each (B, dim, h, w), from ``cat(hs(ẑ), ctx(ŷ))``. σ is as the network outputs it
        (may be ≤ 0; probabilities bound it below by 0.11)."""
        scales, means = self.entropy_parameters(torch.cat((hyper_params, context_params), dim=1)).chunk(2, 1)
        return scales, means

    def y_likelihoods(self, y_hat: torch.Tensor, scales: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """P(ŷ) = Φ((½-|ŷ-μ|)/σ') - Φ((-½-|ŷ-μ|)/σ'), σ' = max(σ, 0.11), clamped to [1e-9, 1];
        ``y_hat`` integer valued at test time, y + U(-½, ½) in training. Same shape as ``y_hat``."""
        return self.gaussian_conditional._likelihood(y_hat, scales, means).clamp(LIKELIHOOD_BOUND, 1.0)

    def sample_untransmitted(
        self,
        hyper_params: torch.Tensor,
        sem_dim: int,
        *,
        noise: torch.Tensor | None = None,
        rng: Any = None,
        sampling: str = "uniform",
        num_samples: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(samples, noise) for channels ``[sem_dim, dim)``: ``round(μ_hyper + n)`` (straight-through
        gradient) with n = ``noise`` or drawn from ``rng`` (:func:`uniform_sample_noise`);
        ``sampling="gaussian"``: ``round(μ_hyper + σ_hyper·ε)`` with ε = ``noise`` or
        :func:`gaussian_sample_noise`. ``num_samples`` M repeats μ (the batch becomes M·B, sample
        major). Shapes (M·B, dim - sem_dim, h, w); the noise is on the CPU as drawn, float32.
        Raises ``ValueError`` when samples are needed but neither ``noise`` nor ``rng`` is given, or
        for a noise tensor of the wrong shape."""
        scales_h, means_h = hyper_params.chunk(2, 1)
        scales_h = scales_h[:, sem_dim:].repeat(num_samples, 1, 1, 1)
        means_h = means_h[:, sem_dim:].repeat(num_samples, 1, 1, 1)
        shape = tuple(means_h.shape)
        if sampling not in ("uniform", "gaussian"):
            raise ValueError(f"SIC: sampling must be 'uniform' or 'gaussian', got {sampling!r}")
        if noise is None:
            if shape[1] == 0:
                noise = torch.zeros(shape)
            elif rng is None:
                raise ValueError("SIC: levels below 16 sample the untransmitted channels: give noise or rng "
                                 f"(a torch/numpy generator, or {GLOBAL_NUMPY!r} for the official unseeded draw)")
            else:
                noise = (uniform_sample_noise if sampling == "uniform" else gaussian_sample_noise)(shape, rng)
        if tuple(noise.shape) != shape:
            raise ValueError(f"SIC: noise of shape {tuple(noise.shape)}, expected {shape}")
        n = noise.to(device=means_h.device, dtype=means_h.dtype)
        samples = quantize_ste(means_h + (n if sampling == "uniform" else scales_h * n))
        return samples, noise

    # -- the authors' test path ----------------------------------------------------------------

    @torch.no_grad()
    def test_level(
        self,
        x: torch.Tensor,
        level: int,
        *,
        noise: torch.Tensor | None = None,
        rng: Any = None,
        sampling: str = "uniform",
        distances: bool = False,
    ) -> dict[str, Any]:
        """The authors' ``ProgSIC.test(x, semDim = level·dim/16)`` (one sample).

        ``x``: float32 (B, 3, H, W) RGB in [0, 1], any H, W; zero-padded bottom/right to
        multiples of 64 (Hp x Wp). ``level`` ℓ in 0..16. Untransmitted channels: ``noise``
        ((B, dim - ℓ·dim/16, Hp/16, Wp/16), added to μ_hyper) or drawn from ``rng`` (see
        :meth:`sample_untransmitted`, :func:`uniform_sample_noise`; ``GLOBAL_NUMPY`` is the
        official unseeded draw). ``distances``: also run ga on x̂ (the authors' y_dis) and return
        ``y_dis``, ``synonym_distance`` = MSE(ŷ[:, :s], y_dis[:, :s]), ``sample_distance`` =
        MSE(samples, y_dis[:, s:]) (0 at ℓ = 16) and ``Emse`` = MSE(x_padded, x̂).

        Returns a dict (float32 tensors unless said): ``x_padded`` (B, 3, Hp, Wp); ``y``
        (B, dim, h, w), h = Hp/16; ``z``, ``z_hat`` (B, hyper_dim, Hp/64, Wp/64) with
        ``z_medians`` (hyper_dim, 1, 1); ``z_likelihoods`` (EntropyBottleneck, eval, ≥ 1e-9);
        ``hyper_params`` (B, 2·dim, h, w) = [``scales_hyper``, ``means_hyper``]; ``y_hat_syn`` =
        round(y); ``context_params`` (B, 2·dim, h, w); ``scales_hat``, ``means_hat``;
        ``y_likelihoods`` P(round(y)) in [1e-9, 1]; ``level``, ``sem_dim`` (int);
        ``y_hat_transmitted`` (B, s, h, w); ``sample_noise`` and ``y_hat_samples``
        (B, dim - s, h, w); ``y_hat`` (B, dim, h, w), the gs input; ``x_hat`` (B, 3, Hp, Wp) in
        [0, 1]; ``x_hat_cropped`` (B, 3, H, W); rates in bits per padded pixel, float32 scalars
        averaged over the batch: ``bpp_y`` (all channels), ``bpp_ys`` (transmitted), ``bpp_z``,
        ``bpp`` = bpp_ys + bpp_z (the paper's figure), ``bpp_y_splits`` (16,) per slice.
        Raises ``ValueError`` for a bad shape or level, or missing noise.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SIC: expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        s = self.sem_dim(level)
        b, _, h0, w0 = x.shape
        xp = pad_bottom_right(x)
        hp, wp = xp.shape[2:]
        y = self.ga(xp)
        z = self.ha(y)
        _, z_likelihoods = self.entropy_bottleneck(z, training=False)
        z_hat = self.quantize_z(z)
        hyper_params = self.hs(z_hat)
        y_hat_syn = torch.round(y)
        context_params = self.context_model(y_hat_syn)
        scales_hat, means_hat = self.gaussian_params(hyper_params, context_params)
        y_likelihoods = self.y_likelihoods(y_hat_syn, scales_hat, means_hat)
        samples, used_noise = self.sample_untransmitted(hyper_params, s, noise=noise, rng=rng, sampling=sampling)
        y_hat = torch.cat([y_hat_syn[:, :s], samples], dim=1)
        x_hat = self.gs(y_hat).clamp(0, 1)

        denom = hp * wp * b
        bits_per_slice = torch.stack([_bits(p) for p in y_likelihoods.chunk(self.num_slices, dim=1)])
        bpp_y = _bits(y_likelihoods) / denom
        bpp_ys = _bits(y_likelihoods[:, :s]) / denom
        bpp_z = _bits(z_likelihoods) / denom
        scales_hyper, means_hyper = hyper_params.chunk(2, 1)
        out: dict[str, Any] = {
            "x_padded": xp, "y": y, "z": z, "z_medians": self.z_medians(), "z_hat": z_hat, "z_likelihoods": z_likelihoods,
            "hyper_params": hyper_params, "scales_hyper": scales_hyper, "means_hyper": means_hyper,
            "y_hat_syn": y_hat_syn, "context_params": context_params, "scales_hat": scales_hat, "means_hat": means_hat,
            "y_likelihoods": y_likelihoods, "level": int(level), "sem_dim": s,
            "y_hat_transmitted": y_hat_syn[:, :s], "sample_noise": used_noise, "y_hat_samples": samples,
            "y_hat": y_hat, "x_hat": x_hat, "x_hat_cropped": x_hat[:, :, :h0, :w0],
            "bpp_y": bpp_y, "bpp_ys": bpp_ys, "bpp_z": bpp_z, "bpp": bpp_ys + bpp_z, "bpp_y_splits": bits_per_slice / denom,
        }
        if distances:
            y_dis = self.ga(x_hat)
            out["y_dis"] = y_dis
            out["Emse"] = F.mse_loss(x_hat, xp)
            out["synonym_distance"] = F.mse_loss(y_dis[:, :s], y_hat_syn[:, :s]) if s else torch.zeros(())
            out["sample_distance"] = F.mse_loss(y_dis[:, s:], samples) if s < self.dim else torch.zeros(())
        return out

    test = test_level  # the authors' name

    # -- training ------------------------------------------------------------------------------

    def forward(
        self,
        x: torch.Tensor,
        level: int | None = None,
        *,
        num_samples: int = 1,
        rng: Any = None,
        noise: torch.Tensor | None = None,
        distances: bool = False,
    ) -> dict[str, Any]:
        """Training forward (the authors' ``ProgSIC.forward``) and CompressAI's contract.

        ``x``: float32 (B, 3, H, W) in [0, 1], H and W multiples of 64. In training mode z and y
        get additive U(-½, ½) noise for their likelihoods (CompressAI's ``"noise"``); ẑ and ŷ fed
        to hs, the context model and gs are rounded with a straight-through gradient (ẑ around the
        medians). In eval mode the likelihoods are those of the rounded values.

        Returns ``x_hat`` (B, 3, H, W) = clamp(gs(ŷ_syn), 0, 1), the full-rate ("syntactic")
        reconstruction; ``likelihoods`` ``{"y": (B, dim, h, w), "z": ...}`` (so the generic
        ``λ·255²·MSE + bpp`` loop trains all 16 slices at full rate); ``y_likelihoods_quantized``
        (P(round(y)) with the straight-through gradient, for per-slice rates); ``y``, ``y_hat``
        (STE-rounded), ``hyper_params``, ``scales_hat``, ``means_hat``.

        With ``level`` ℓ (0..16) also the synonymous reconstructions: ``x_hat_samples``
        (M·B, 3, H, W), M = ``num_samples``, sample major, from ``cat(ŷ[:, :s], round(μ_hyper + n))``
        with n from ``noise`` or ``rng`` (:meth:`sample_untransmitted`), plus ``y_hat_samples``,
        ``sem_dim`` and, with ``distances``, ``y_dis`` = ga(x̂) for ``[x_hat; x_hat_samples]``
        (the authors' synonym and sample distances, :func:`official_loss`).
        """
        self._check_input(x)
        y = self.ga(x)
        z = self.ha(y)
        _, z_likelihoods = self.entropy_bottleneck(z)
        z_hat = self.quantize_z(z)
        hyper_params = self.hs(z_hat)
        y_hat = quantize_ste(y)
        scales_hat, means_hat = self.gaussian_params(hyper_params, self.context_model(y_hat))
        y_noisy = self.gaussian_conditional.quantize(y, "noise") if self.training else y_hat
        y_likelihoods = self.y_likelihoods(y_noisy, scales_hat, means_hat)
        y_lik_q = self.y_likelihoods(y_hat, scales_hat, means_hat)
        out: dict[str, Any] = {
            "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}, "y_likelihoods_quantized": y_lik_q,
            "y": y, "y_hat": y_hat, "hyper_params": hyper_params, "scales_hat": scales_hat, "means_hat": means_hat,
        }
        if level is None:
            out["x_hat"] = self.gs(y_hat).clamp(0, 1)
            if distances:
                out["y_dis"] = self.ga(out["x_hat"])
            return out
        s = self.sem_dim(level)
        samples, _ = self.sample_untransmitted(hyper_params, s, noise=noise, rng=rng, num_samples=num_samples)
        y_sem = torch.cat([y_hat[:, :s].repeat(num_samples, 1, 1, 1), samples], dim=1)
        b = x.shape[0]
        x_all = self.gs(torch.cat([y_hat, y_sem], dim=0)).clamp(0, 1)
        out.update({"x_hat": x_all[:b], "x_hat_samples": x_all[b:], "y_hat_samples": samples, "sem_dim": s,
                    "level": int(level), "num_samples": int(num_samples)})
        if distances:
            out["y_dis"] = self.ga(x_all)
        return out


def official_loss(
    model: SIC,
    out: Mapping[str, Any],
    x: torch.Tensor,
    perceptual: Any = None,
    warmup: bool = False,
) -> dict[str, torch.Tensor]:
    """The authors' training objective for one batch, from ``model(x, level, distances=True)``.

    With (λ, γ, β) = :func:`official_loss_weights` and index 16 for the full rate:
    ``0.5·[λ16·MSE(x̂) + γ16·P(x̂) + β16·(bpp_y + bpp_z)] + 0.5·[λℓ·E_M MSE(x̂_m) + γℓ·E_M P(x̂_m)
    + βℓ·(bpp_ys + bpp_z)] + synonym_distance + sample_distance``, plus
    ``64·std(bpp per slice) - 4·bpp(slice ℓ)`` when ``warmup`` (the authors' first 2 epochs).
    ``perceptual(x, x_hat)`` -> per-image or scalar distance (LPIPS in the paper; None: 0).
    Rates are bits per pixel of the batch images (noisy likelihoods for bpp_y/bpp_ys, the
    STE-quantized ones per slice); MSE on [0, 1]. Returns the loss and its terms (float32 scalars).
    Raises ``ValueError`` if ``out`` has no level or no ``y_dis``.
    """
    if "level" not in out or "y_dis" not in out:
        raise ValueError("SIC official_loss: call model(x, level, distances=True)")
    level, s, m = out["level"], out["sem_dim"], out["num_samples"]
    if level < 1:
        raise ValueError("SIC official_loss: the loss weights exist for levels 1..16")
    b, _, h, w = x.shape
    denom = b * h * w
    y_lik, z_lik = out["likelihoods"]["y"], out["likelihoods"]["z"]
    bpp_z = _bits(z_lik) / denom
    bpp_y = _bits(y_lik) / denom
    bpp_ys = _bits(y_lik[:, :s]) / denom
    splits = torch.stack([_bits(p) / denom for p in out["y_likelihoods_quantized"].chunk(model.num_slices, dim=1)])
    mse_syn = F.mse_loss(out["x_hat"], x)
    mse_samples = torch.stack([F.mse_loss(xs, x) for xs in out["x_hat_samples"].chunk(m, 0)]).mean()

    def perc(a, bb):
        return torch.zeros((), device=x.device) if perceptual is None else torch.as_tensor(perceptual(a, bb)).mean()

    p_syn = perc(x, out["x_hat"])
    p_samples = torch.stack([perc(x, xs) for xs in out["x_hat_samples"].chunk(m, 0)]).mean()
    y_hat, y_dis = out["y_hat"], out["y_dis"]
    dis_syn, dis_samples = y_dis[:b], y_dis[b:].chunk(m, 0)
    samples = out["y_hat_samples"].chunk(m, 0)
    syn_terms = [F.mse_loss(y_hat, dis_syn)] + [F.mse_loss(y_hat[:, :s], d[:, :s]) for d in dis_samples]
    synonym_distance = torch.stack(syn_terms).mean()
    zero = torch.zeros((), device=x.device)
    smp_terms = [zero] + ([F.mse_loss(sm, d[:, s:]) for sm, d in zip(samples, dis_samples)] if s < model.dim else [zero] * m)
    sample_distance = torch.stack(smp_terms).mean()
    lam16, gam16, beta16 = official_loss_weights(NUM_SLICES)
    lam, gam, beta = official_loss_weights(level)
    loss = 0.5 * (lam16 * mse_syn + gam16 * p_syn + beta16 * (bpp_y + bpp_z)) \
        + 0.5 * (lam * mse_samples + gam * p_samples + beta * (bpp_ys + bpp_z)) + synonym_distance + sample_distance
    if warmup:
        loss = loss + 64 * torch.std(splits) - 4 * splits[level - 1]
    return {"loss": loss, "bpp_y": bpp_y, "bpp_ys": bpp_ys, "bpp_z": bpp_z, "bpp_y_splits": splits, "mse_syn": mse_syn,
            "mse_samples": mse_samples, "perceptual_syn": p_syn, "perceptual_samples": p_samples,
            "synonym_distance": synonym_distance, "sample_distance": sample_distance}


# ---- official checkpoints --------------------------------------------------------------------

_EB_OLD_NAMES = {"_matrix": "matrices", "_bias": "biases", "_factor": "factors"}
_LOSS_NETWORKS = ("lpips.", "dists.")


def _map_key(key: str) -> str | None:
    """The key of our model for an official key, or None for a key that is dropped."""
    if key.startswith("module."):
        key = key[len("module."):]
    if key.startswith(_LOSS_NETWORKS) or key.endswith("attn_mask"):
        return None
    prefix, _, leaf = key.rpartition(".")
    if prefix.endswith("entropy_bottleneck"):
        for old, new in _EB_OLD_NAMES.items():
            if leaf.startswith(old) and leaf[len(old):].isdigit():
                return f"{prefix}.{new}.{leaf[len(old):]}"
    return key


def official_state_dict(source: "str | Path | Mapping[str, torch.Tensor]") -> "OrderedDict[str, torch.Tensor]":
    """An official SIC checkpoint mapped to this module's key names.

    ``source``: a path (``torch.load`` on the CPU; a dict with a ``state_dict``/``model`` entry is
    unwrapped) or a state_dict. Keys: a leading ``module.`` (DDP) is stripped; compressai-1.2.4
    EntropyBottleneck parameters ``_matrix{i}``/``_bias{i}``/``_factor{i}`` become
    ``matrices.{i}``/``biases.{i}``/``factors.{i}`` (1.2.8 names pass unchanged); the loss
    networks ``lpips.*``, ``dists.*`` and every Swin ``*.attn_mask`` (resolution-dependent,
    recomputed here) are dropped. The (empty) CDF buffers are kept; :func:`load_official_checkpoint`
    resizes the model's to them. Raises :class:`SICCheckpointError` for an unreadable file or a non-dict.
    """
    name = str(source) if isinstance(source, (str, Path)) else "<state_dict>"
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.is_file():
            raise SICCheckpointError(f"{p}: SIC checkpoint not found")
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for corrupt files
            raise SICCheckpointError(f"{p}: cannot read the SIC checkpoint ({type(e).__name__}: {e})") from None
    else:
        state = source
    if isinstance(state, Mapping) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        for k in ("state_dict", "model"):
            if isinstance(state.get(k), Mapping):
                state = state[k]
                break
    if not isinstance(state, Mapping):
        raise SICCheckpointError(f"{name}: not a state_dict ({type(state).__name__})")
    mapped: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, v in state.items():
        new = _map_key(str(k))
        if new is None:
            continue
        if new in mapped:
            raise SICCheckpointError(f"{name}: two entries map to {new!r}")
        mapped[new] = v
    return mapped


def _list(keys: Sequence[str], limit: int = 8) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_official_checkpoint(model: SIC, source: "str | Path | Mapping[str, torch.Tensor]") -> SIC:
    """Load an official checkpoint (:func:`official_state_dict`) into ``model`` strictly; returns it.

    The entropy coder's tables (``_quantized_cdf``, ``_offset``, ``_cdf_length``,
    ``scale_table``) take the checkpoint's sizes: the authors' files have them empty, so the
    model needs ``update()`` before coding. Raises :class:`SICCheckpointError` naming the file
    and the missing and unexpected keys, or the keys whose shapes differ (e.g. a checkpoint of
    another ``dim``), before touching the model.
    """
    name = str(source) if isinstance(source, (str, Path)) else "<state_dict>"
    state = official_state_dict(source)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    buffers_resized = {"_quantized_cdf", "_offset", "_cdf_length", "scale_table"}
    shapes = [
        f"{k} {list(state[k].shape)} (model {list(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape) and k.rpartition(".")[2] not in buffers_resized
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys: {_list(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys: {_list(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shapes differ: {_list(shapes, 4)}")
        raise SICCheckpointError(f"{name}: does not fit the SIC model (dim={model.dim}): " + "; ".join(parts))
    # the coder tables take the checkpoint's sizes (empty in the authors' files: call update())
    buffers = dict(model.named_buffers())
    for k, v in state.items():
        if k.rpartition(".")[2] in buffers_resized and buffers[k].shape != v.shape:
            buffers[k].resize_(v.shape)
    model.load_state_dict(state, strict=True)
    return model


# ---- builders --------------------------------------------------------------------------------


def build_sic(
    dim: int,
    ga_dims: Sequence[int],
    ga_depths: Sequence[int],
    gs_dims: Sequence[int],
    gs_depths: Sequence[int],
    heads: Sequence[int] | int,
    window: int = 8,
    mlp_ratio: float = 4.0,
    num_slices: int = NUM_SLICES,
    hyper_dim: int | None = None,
) -> SIC:
    """A SIC model of any size (see :class:`SIC`); ``hyper_dim`` defaults to dim·3/4."""
    return SIC(dim, ga_dims, ga_depths, gs_dims, gs_depths, heads, window, mlp_ratio, num_slices, hyper_dim)


def build_sic_from_config(config: Mapping[str, Any]) -> SIC:
    """From the authors' config (``config.py`` attributes as in ``sic_config.json``): ``dim``,
    ``semDim_interval`` (slices = dim / interval), ``ga_kwargs``/``gs_kwargs`` (``embed_dims``,
    ``depths``, ``num_heads``, ``window_size``, ``mlp_ratio``; ``img_size`` is not used: the
    shift masks follow the input)."""
    ga, gs = config["ga_kwargs"], config["gs_kwargs"]
    if ga["window_size"] != gs["window_size"] or ga["mlp_ratio"] != gs["mlp_ratio"]:
        raise ValueError("SIC: ga and gs must share window_size and mlp_ratio")
    heads = list(ga["num_heads"]) if list(ga["num_heads"]) == list(gs["num_heads"]) else None
    if heads is None:
        raise ValueError("SIC: ga and gs must have the same num_heads list")
    return build_sic(
        config["dim"], ga["embed_dims"], ga["depths"], gs["embed_dims"], gs["depths"], heads,
        window=ga["window_size"], mlp_ratio=ga["mlp_ratio"], num_slices=config["dim"] // config["semDim_interval"],
    )


OFFICIAL_DEPTHS_GA = (1, 2, 2, 3)
OFFICIAL_DEPTHS_GS = (3, 2, 2, 1)


def sic(dim: int = 512, heads: int = 16) -> SIC:
    """The project's trainable ``sic``: the official structure at latent width ``dim`` (a multiple
    of 16; ``dim/2`` and ``3·dim/4`` multiples of ``heads``): ga widths
    [dim/2, 3·dim/4, dim, dim] depths [1, 2, 2, 3], gs widths [dim, dim, 3·dim/4, dim/2] depths
    [3, 2, 2, 1], ``heads`` heads everywhere, window 8, MLP ratio 4, z of 3·dim/4 channels, 16 slices.

    Parameters: dim=512, heads=16 (:func:`sic_official`) 87,211,843 (the loss networks are not
    part of the model); dim=96, heads=4: 3,100,815, the proposed CPU-trainable size (6 channels
    per slice, z of 72); dim=128, heads=4: 5,489,107; dim=64, heads=4: 1,392,267. (The context
    convolution's parameters count in full although the mask zeroes about half of them.)
    Raises ``ValueError`` for widths that do not divide.
    """
    dim, heads = int(dim), int(heads)
    if dim % NUM_SLICES or dim % 8 or (dim // 2) % heads or (3 * dim // 4) % heads:
        raise ValueError(
            f"sic: dim must be a multiple of 16 with dim/2 and 3·dim/4 multiples of heads, got dim={dim}, heads={heads}"
        )
    ga = [dim // 2, 3 * dim // 4, dim, dim]
    gs = [dim, dim, 3 * dim // 4, dim // 2]
    return build_sic(dim, ga, OFFICIAL_DEPTHS_GA, gs, OFFICIAL_DEPTHS_GS, heads)


def sic_official() -> SIC:
    """The authors' model (config.py): dim 512, 16 slices of 32, ga [256, 384, 512, 512] depths
    [1, 2, 2, 3], gs [512, 512, 384, 256] depths [3, 2, 2, 1], 16 heads, window 8, MLP ratio 4,
    z of 384 channels. 87,211,843 parameters (ga 22.37M, gs 20.29M, ha 9.14M, hs 21.83M,
    context 13.11M, entropy parameters 0.45M, entropy bottleneck 23k); the four published
    checkpoints (M = 1 or 5, with or without GAN fine-tuning) all have this structure."""
    return sic(512, 16)


__all__ = [
    "GLOBAL_NUMPY",
    "LIKELIHOOD_BOUND",
    "MAX_STRIDE",
    "NUM_SLICES",
    "SCALE_BOUND",
    "SIC",
    "AnalysisTransform",
    "GroupEntropyParameters",
    "MaskedConv2d",
    "SICCheckpointError",
    "SliceCausalContext",
    "SwinBlock",
    "SynthesisTransform",
    "build_sic",
    "build_sic_from_config",
    "gaussian_sample_noise",
    "load_official_checkpoint",
    "official_loss",
    "official_loss_weights",
    "official_state_dict",
    "pad_bottom_right",
    "shifted_window_mask",
    "sic",
    "sic_official",
    "slice_causal_mask",
    "uniform_sample_noise",
]
