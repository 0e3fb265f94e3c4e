"""The single-layer discretized VAE (``dvae``) after Duan et al., "Lossy Image Compression with
Quantized Hierarchical VAEs", WACV 2023, written for this benchmark.

The hierarchical model of the paper, QRes-VAE (``qres-vae``, ``qres34m``, ``qres17m``), is
``benchmark.models.qres`` (the authors' architecture and state_dict layout).

The model follows the paper's recipe:

- **posterior**: uniform, q(z | x) = U(f(x) − 1/2, f(x) + 1/2). Training samples
  z = f(x) + u, u ~ U(−1/2, 1/2); test time rounds, z = round(f(x)).
- **prior**: discretized Gaussian, P(z) = Φ((z + 1/2 − μ)/σ) − Φ((z − 1/2 − μ)/σ)
  (:func:`discretized_gaussian_mass`), with σ ≥ 0.11 and P ≥ 1e-9 (CompressAI's bounds), so the
  mass is non-zero everywhere.
- **emission / loss**: −log p(x | z) = λ · d(g(z), x) with d = MSE; the training loss is
  rate + distortion on CompressAI's λ scale, ``λ · 255² · MSE + bpp`` (x in [0, 1]), the same as
  the CompressAI baselines (``benchmark.training.loop.rd_loss``), so rate points with the same
  λ are comparable.

It gives the CompressAI contract the benchmark's ``learned`` codec uses: ``forward(x)`` ->
``{"x_hat", "likelihoods"}``; ``compress(x)`` -> ``{"strings", "shape"}``;
``decompress(strings, shape)`` -> ``{"x_hat"}``; ``update(force)``; ``aux_loss()`` (zero: no
entropy bottleneck).

:class:`DiscretizedVAE` (``dvae``): the analysis/synthesis transforms of the CompressAI
scale-hyperprior baseline (Ballé et al. 2018: four 5x5 stride-2 convolutions with GDN, N and M
channels), one latent at stride 16 with a learned per-channel μ, σ. It is coded with
constriction's ``QuantizedGaussian`` (rANS), which codes an integer z under the exact discretized
Gaussian with a fractional μ.
"""

from __future__ import annotations

import struct
from typing import Dict, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from benchmark._torchvision_compat import ensure_torchvision_importable

ensure_torchvision_importable()  # compressai imports torchvision

from compressai.layers import GDN  # noqa: E402
from compressai.models.base import CompressionModel  # noqa: E402
from compressai.models.utils import conv, deconv  # noqa: E402

SCALE_BOUND = 0.11  # σ lower bound: CompressAI's GaussianConditional (scale_bound) and scale table minimum
MASS_BOUND = 1e-9  # lower bound on the probability mass of any integer (CompressAI's likelihood bound)


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
    group, 8 bytes; [z, z + 1] for a constant latent, as the coder needs two symbols at least)
    with the per-channel μ, σ of ``update`` (float64 buffers stored in the state dict, never
    recomputed when loading), so the decoder uses exactly the encoder's model.
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
        hi = max(hi, lo + 1)  # a constant latent (a flat image, untrained weights): constriction needs lo < hi
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
        if lo >= hi:  # the encoder writes lo < hi; constriction would panic (not raise) on lo == hi
            raise ValueError(f"DiscretizedVAE: bad symbol range {lo}..{hi}")
        mean, scale = self._coding_params(shape)
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        symbols = coder.decode(constriction.stream.model.QuantizedGaussian(lo, hi), mean, scale)
        z = torch.from_numpy(symbols.astype(np.float32)).view(1, self.M, *shape).to(self.coding_mean.device)
        return {"x_hat": self.g_s(z).clamp_(0, 1)}


# ---- the hierarchical model --------------------------------------------------------------

# The paper's qres34m layout: latent layers per stride (top-down), latent channels per stride,
# encoder blocks per stride (bottom-up, strides 4..64).
def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters (int)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "DiscretizedVAE",
    "discretized_gaussian_mass",
    "standard_normal_cdf",
    "parameter_count",
    "SCALE_BOUND",
    "MASS_BOUND",
]

