"""Progressive SIC (``benchmark.models.sic``) coded for real: one checkpoint, 16 rate points (the
levels), CompressAI's rANS coder, the container's progressive version (3).

Registered as ``sic``. The SIC authors never entropy-code (every bpp they report is a likelihood
estimate); this module writes real bytes under the model's own distributions.

**What a level-ℓ bitstream holds** (``benchmark.codecs.container``, version 3): the header
(magic, version, sampling mode and seed, model id, level, image size, string lengths), then two
strings: z, coded by the model's ``EntropyBottleneck`` (CompressAI's ``compress``: its stored
tables, symbols round(z - medians)), and one rANS string with slices 1..ℓ of ŷ = round(y), every
element coded under the discretized Gaussian N(μ, σ) the model predicts for it (the hyperprior
and the slice-causal context of what was decoded before). The untransmitted channels
``[ℓ·dim/16, dim)`` are drawn by the decoder (``SIC.sample_untransmitted``: round(μ_hyper + n),
n ~ U[-2, 2)) from a ``torch.Generator`` seeded with the container's seed, so a bitstream always
decodes to the same image; sampling ``official`` instead draws from numpy's global RNG, unseeded,
as the authors' ``main.py`` does (the same bytes then decode to a different image each time, and
the encoder cannot predict the decoder's image: no decode check). At ℓ = 16 nothing is sampled
(sampling byte ``none``, no seed).

**Symbols and means: ŷ is exactly round(y).** SIC rounds y directly, not y - μ, so CompressAI's
``GaussianConditional.compress(y, indexes, means)`` (symbol round(y - μ), decoded as symbol + μ)
would reconstruct another latent. Here each element is coded as the integer
``q = sign · (ŷ - round(μ))`` with ``δ = μ - round(μ)`` in [-½, ½] and ``sign = -1`` where δ < 0,
+1 elsewhere; the decoder computes the same ``round(μ)`` and ``sign`` from the same μ and sets
``ŷ = round(μ) + sign · q``: integer arithmetic in float32 (exact below 2**24), so ŷ equals the
encoder's round(y) whatever μ is, provided both sides compute the same μ (they run the same
operations, see *Determinism*). The distribution of ``sign · (ŷ - round(μ))`` is the discretized
Gaussian of mean ``|δ|`` and scale σ, so its CDF is taken from a table indexed by (scale, offset):
the model's ``scale_table`` (CompressAI's 64 scales from 0.11 to 256, stored in the checkpoint;
σ is bounded below by 0.11 and rounded *up* to the next table scale, as ``build_indexes`` does)
times ``OFFSET_BINS`` = 17 offsets ``|δ| ∈ {0, 1/32, ..., 1/2}`` (|δ| rounded to the nearest).
Each table row is the pmf ``Φ((k + ½ - δ_b)/σ_k) - Φ((k - ½ - δ_b)/σ_k)`` for
``k ∈ [-c, c]``, ``c = ceil(σ_k · m + ½)`` with m = Φ⁻¹(1 - tail/2) (CompressAI's tail mass
1e-9), plus the tail mass, quantized to 16 bits by CompressAI's ``pmf_to_quantized_cdf``;
values outside ``[-c, c]`` take CompressAI's bypass (escape) code. Ignoring the offset
(coding ``ŷ - round(μ)`` under N(0, σ)) would cost many bits where σ is small and |δ| near ½;
the table's offset and scale quantization cost a little over the model's estimate (measured in
tests/test_sic_codec.py).

**Order of the symbols, and the decode passes.** The context is slice-causal: slice s at
(i, j) depends on every earlier slice within the 5x5 window (all 25 positions) and on slice s
itself at the 12 causal positions (the two rows above, the two positions to the left). So the
decoder works slice by slice (ℓ passes over the grid at most), and within a slice in wavefront
order: position (i, j) at step ``t = 3 i + j`` (``benchmark.codecs.autoregressive.wavefront_steps``;
every causal neighbour of (i, j) is on an earlier step), ``3 (h - 1) + w`` steps per slice, all
positions of a step at once. Per slice s, once: the earlier slices' context (one 5x5 convolution
over the whole grid) and the hyperprior's part of the first entropy-parameter layer (slice s's
group of the grouped 1x1 convolutions); per step: the 12 causal neighbours of the step's
positions (one gather and one matrix product), the rest of slice s's entropy-parameter network,
the table indexes and one rANS ``decode_stream`` call. Symbols are written slice by slice, step
by step, positions of a step by increasing row, the slice's channels of a position in order.

**Determinism.** Encoder and decoder run the same operations on the same values in the same
batches (the encoder replays the decoder's steps), with ``CODING_THREADS`` torch threads, so μ,
σ, the table indexes and round(μ) agree bit for bit on the same kind of machine; the tables are
computed when the model is loaded, in float64, from the checkpoint's stored ``scale_table`` (no
network output goes into them). Every convolution input is in the standard (NCHW-contiguous)
memory layout on both sides: ga's output, hence round(y), is channels-last, and the CPU
convolution of the same values in the two layouts differs in the last bits (measured: 5e-7 in the
context of slice 10 of a 300x451 image, enough to move a table index and desynchronise the
decoder). The decoded image is what the encoder computed
(``encode_verbose``'s reconstruction hash; tested in another process).

**Corrupt input.** The header is validated against the strings before anything is allocated:
the level, the sampling mode (``none`` exactly at the top level), the image size (at most
``MAX_PIXELS`` after padding, and within the codec's ``limits``), and the string lengths against the fewest bits the tables can
spend on the symbols the header implies. Bad headers raise ``DecodeError``. The payload carries
no checksum (as in the other learned codecs): flipped payload bits decode to another image.
CompressAI's rANS decoder does not check the end of its input, so the strings are handed to it
followed by zero bytes, enough for the most it can read (:class:`GuardedDecoder`), and the decoded
latents are clamped to ±``MAX_LATENT``: corrupt strings never read outside their buffer.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import numpy as np

from benchmark.codecs.autoregressive import wavefront_steps
from benchmark.codecs.base import CODECS, Codec, CodecError, DecodeError, Encoded
from benchmark.codecs.container import (
    MAX_SEED,
    PROGRESSIVE_ORDER,
    Container,
    ContainerError,
    pack,
    unpack,
)
from benchmark.codecs.learned import LearnedCodec, _coding_threads, _import_torch, bottleneck_min_bits, decode_bytes_per_pixel

OFFSET_BINS = 17  # |μ - round(μ)| in {0, 1/32, ..., 1/2}
PRECISION = 16  # CompressAI's rANS probability precision (bits)
MAX_PIXELS = 1 << 25  # padded image area the codec codes (33.5 Mpx, e.g. 8192 x 4096)
MAX_LATENT = 1 << 15  # |round(y)| above this is refused by the encoder, clamped by the decoder
MAX_MEAN = float(1 << 16)  # μ is clamped to ±this (and NaN to 0) on both sides before coding
SAMPLINGS = ("seeded", "official")  # the codec's option; the container adds "none" (top level)
KERNEL = 5
PAD = KERNEL // 2
LATENT_STRIDE = 16
PAD_MULTIPLE = 64


def _torch():
    torch, F, _ = _import_torch()
    return torch, F


# ---- tables ------------------------------------------------------------------------------------


class OffsetGaussianTables:
    """Quantized CDFs of the discretized Gaussian of mean δ_b and scale σ_k for every scale σ_k of
    the model's ``gaussian_conditional.scale_table`` (K scales) and every offset
    δ_b = b / (2 (B - 1)), b = 0..B-1 (B = ``bins``): row ``k·B + b`` (see the module docstring).
    Computed once per model in float64 on the CPU. Attributes: ``cdf`` (lists of ints, each cut
    to its length), ``lengths``, ``offsets`` (the first symbol of each row, -c), ``bounds``
    (``scale_table[:-1]``, float32, for the scale index), ``min_bits`` (the fewest bits any
    symbol can cost under any row: the largest quantized probability)."""

    def __init__(self, gaussian_conditional, bins: int = OFFSET_BINS) -> None:
        torch, _ = _torch()
        from compressai.entropy_models.entropy_models import pmf_to_quantized_cdf

        gc = gaussian_conditional
        table = gc.scale_table.detach().to("cpu", torch.float64)
        if table.numel() < 2:
            raise CodecError("sic: the checkpoint's Gaussian scale table is empty (model.update(force=True) was never run)")
        self.bins = int(bins)
        self.lower_bound = gc.lower_bound_scale
        self.bounds = table[:-1].to(torch.float32).contiguous()
        multiplier = -float(gc._standardized_quantile(float(gc.tail_mass) / 2))
        sqrt2 = math.sqrt(2.0)

        def upper(x):  # Q(x) = 1 - Φ(x), accurate in the upper tail
            return 0.5 * torch.special.erfc(x / sqrt2)

        self.cdf: List[List[int]] = []
        self.lengths: List[int] = []
        self.offsets: List[int] = []
        best = 0
        deltas = torch.arange(self.bins, dtype=torch.float64)[:, None] / (2 * (self.bins - 1))  # (B, 1)
        for sigma in table.tolist():
            c = math.ceil(sigma * multiplier + 0.5)
            k = torch.arange(-c, c + 1, dtype=torch.float64)[None, :]
            lo, hi = (k - 0.5 - deltas) / sigma, (k + 0.5 - deltas) / sigma  # (B, 2c + 1)
            pmf = torch.where(lo >= 0, upper(lo) - upper(hi), torch.where(hi <= 0, upper(-hi) - upper(-lo), 1 - upper(hi) - upper(-lo)))
            tail = upper((c + 0.5 + deltas) / sigma) + upper((c + 0.5 - deltas) / sigma)  # (B, 1)
            for row in torch.cat([pmf.clamp_min(0), tail], dim=1):
                cdf = pmf_to_quantized_cdf(row, PRECISION).tolist()
                self.cdf.append(cdf)
                self.lengths.append(len(cdf))
                self.offsets.append(-c)
                best = max(best, max(cdf[i + 1] - cdf[i] for i in range(len(cdf) - 1)))
        self.min_bits = -math.log2(best / (1 << PRECISION))
        self.escape_bits = _escape_bits(self.cdf, self.lengths)

    def coding_params(self, scales, means):
        """(indexes int32, sign float, round(μ) float) for Gaussian parameters of any shape: the
        table row of each element (scale index · B + offset bin), the sign that maps the offset
        to [0, ½], and the rounded mean. μ is first made finite and clamped to ±``MAX_MEAN``."""
        torch, _ = _torch()
        means = torch.nan_to_num(means, nan=0.0).clamp(-MAX_MEAN, MAX_MEAN)
        rounded = torch.round(means)
        delta = means - rounded
        sign = torch.where(delta < 0, -1.0, 1.0).to(means.dtype)
        offset_bin = torch.round(delta.abs() * (2 * (self.bins - 1))).clamp(0, self.bins - 1).to(torch.int32)
        s = self.lower_bound(torch.nan_to_num(scales, nan=0.0, posinf=float(self.bounds[-1]) * 2))
        scale_index = torch.searchsorted(self.bounds.to(s.device), s.to(torch.float32).contiguous(), right=False).to(torch.int32)
        return scale_index * self.bins + offset_bin, sign, rounded

    def subset(self, indexes: Sequence[int]) -> Tuple[List[int], List[List[int]], List[int], List[int]]:
        """(indexes renumbered 0..n-1, and the n CDF rows, lengths and offsets they use): the
        arguments of one rANS call holding only the rows it needs."""
        used = sorted(set(indexes))
        where = {u: i for i, u in enumerate(used)}
        return [where[i] for i in indexes], [self.cdf[u] for u in used], [self.lengths[u] for u in used], [self.offsets[u] for u in used]


# ---- the per-slice networks, split for coding -----------------------------------------------


class SliceCoder:
    """The slice-causal context model and the grouped entropy parameters of a SIC model, split
    per slice for coding (the module docstring says how); built once per model. ``tables``:
    :class:`OffsetGaussianTables`; ``z_min_bits``: the EntropyBottleneck's fewest bits per symbol."""

    def __init__(self, model) -> None:
        torch, _ = _torch()
        from benchmark.models.sic import SIC

        if not isinstance(model, SIC):
            raise CodecError(f"sic: the checkpoint holds a {type(model).__name__}, not a SIC model")
        self.model = model
        self.dim, self.d, self.num_slices = model.dim, model.slice_dim, model.num_slices
        self.tables = OffsetGaussianTables(model.gaussian_conditional)
        self.z_min_bits = bottleneck_min_bits(model.entropy_bottleneck, "sic")
        self.z_tables = _z_tables(model)
        self.z_escape_bits = _escape_bits(*self.z_tables[:2])
        d, dim = self.d, self.dim
        with torch.no_grad():
            layer = model.context_model.layer
            weight = (layer.weight * layer.mask).detach()
            bias = layer.bias.detach()
            causal = layer.mask[0, 0] != 0  # block (0, 0): the 12 causal taps, as in every diagonal block
            taps = causal.nonzero()  # (12, 2) (row, column) in the 5x5 window, raster order
            self.tap_rows, self.tap_cols = taps[:, 0], taps[:, 1]
            conv1, conv2, conv3 = (m for m in model.entropy_parameters.layer if isinstance(m, torch.nn.Conv2d))
            self.slope = next(m for m in model.entropy_parameters.layer if isinstance(m, torch.nn.LeakyReLU)).negative_slope
            self.inter: List[Optional[torch.Tensor]] = []
            self.ctx_bias: List[torch.Tensor] = []
            self.w1_hyper, self.w1_ctx, self.b1, self.w1_intra = [], [], [], []
            self.w2, self.b2, self.w3, self.b3 = [], [], [], []
            for s in range(self.num_slices):
                rows = slice(2 * d * s, 2 * d * (s + 1))
                self.inter.append(weight[rows, : d * s].contiguous() if s else None)
                self.ctx_bias.append(bias[rows])
                intra = weight[rows, d * s : d * (s + 1)][:, :, self.tap_rows, self.tap_cols].reshape(2 * d, -1)  # (2d, d·12)
                w1 = conv1.weight[3 * d * s : 3 * d * (s + 1), :, 0, 0].detach()  # (3d, 4d): [σ_h, μ_h, ctx_a, ctx_b]
                self.w1_hyper.append(w1[:, : 2 * d].contiguous())
                self.w1_ctx.append(w1[:, 2 * d :].contiguous())
                self.w1_intra.append((w1[:, 2 * d :] @ intra).contiguous())  # (3d, d·12)
                self.b1.append(conv1.bias[3 * d * s : 3 * d * (s + 1)].detach())
                self.w2.append(conv2.weight[3 * d * s : 3 * d * (s + 1), :, 0, 0].detach().contiguous())
                self.b2.append(conv2.bias[3 * d * s : 3 * d * (s + 1)].detach())
                self.w3.append(conv3.weight[2 * d * s : 2 * d * (s + 1), :, 0, 0].detach().contiguous())
                self.b3.append(conv3.bias[2 * d * s : 2 * d * (s + 1)].detach())

    def slice_start(self, s: int, y_hat, hyper):
        """What slice ``s`` needs before its steps: the first entropy-parameter layer's
        pre-activation from the hyperprior and the earlier slices' context, for every position,
        (h·w, 3d). ``y_hat`` (1, dim, h, w) holds the decoded slices < s; ``hyper`` = hs(ẑ)."""
        torch, F = _torch()
        d, dim = self.d, self.dim
        h, w = y_hat.shape[2:]
        if s:
            ctx = F.conv2d(y_hat[:, : d * s].contiguous(), self.inter[s], bias=self.ctx_bias[s], padding=PAD)[0]
        else:
            ctx = self.ctx_bias[s][:, None, None].expand(2 * d, h, w)
        sh, mh = hyper[0, d * s : d * (s + 1)], hyper[0, dim + d * s : dim + d * (s + 1)]
        flat = lambda t: t.reshape(t.shape[0], -1).T  # noqa: E731  (C, h, w) -> (h·w, C)
        hyp = torch.cat([flat(sh), flat(mh)], dim=1)
        return F.linear(hyp, self.w1_hyper[s]) + F.linear(flat(ctx), self.w1_ctx[s], self.b1[s])

    def step_params(self, s: int, pre, plane, step):
        """(σ, μ), each (n, d), of slice ``s`` at the n positions of one wavefront ``step``
        (:meth:`steps`), from ``pre`` (:meth:`slice_start`) and ``plane``, slice s's decoded
        values so far, zero-padded by 2 on every side (d, h + 4, w + 4)."""
        torch, F = _torch()
        flat_pos, gather_r, gather_c = step
        n = flat_pos.numel()
        neigh = plane[:, gather_r, gather_c].permute(1, 0, 2).reshape(n, -1)  # (n, d·12)
        h1 = F.leaky_relu(pre[flat_pos] + F.linear(neigh, self.w1_intra[s]), self.slope)
        h2 = F.leaky_relu(F.linear(h1, self.w2[s], self.b2[s]), self.slope)
        out = F.linear(h2, self.w3[s], self.b3[s])
        return out[:, : self.d], out[:, self.d :]

    def steps(self, height: int, width: int, device) -> List[Tuple[Any, Any, Any, Any, Any]]:
        """Per wavefront step: (rows, cols, flat positions i·w + j, and the (n, 12) padded
        coordinates of each position's causal neighbours); cached per grid."""
        key = (height, width, str(device))
        cache = getattr(self, "_steps", None)
        if cache is None or cache[0] != key:
            out = []
            for rows, cols in wavefront_steps(height, width):
                rows, cols = rows.to(device), cols.to(device)
                out.append((rows, cols, rows * width + cols, rows[:, None] + self.tap_rows.to(device), cols[:, None] + self.tap_cols.to(device)))
            self._steps = cache = (key, out)
        return cache[1]


def _coder(model) -> SliceCoder:
    coder = getattr(model, "_benchmark_sic_coder", None)
    if coder is None:
        with _coding_threads():  # many small tensor operations: threads only cost here
            coder = SliceCoder(model)
        model._benchmark_sic_coder = coder  # the weights and tables never change after loading
    return coder


# ---- compress / decompress ---------------------------------------------------------------------


def _rng(sampling: str, seed: Optional[int]):
    torch, _ = _torch()
    from benchmark.models.sic import GLOBAL_NUMPY

    if sampling == "none":
        return None
    if sampling == "official":
        return GLOBAL_NUMPY
    return torch.Generator().manual_seed(int(seed))


def _reconstruct(model, y_hat, hyper, level: int, sampling: str, seed: Optional[int]):
    """x̂ (1, 3, Hp, Wp) in [0, 1]: gs of the transmitted slices of ``y_hat`` and the sampled rest."""
    torch, _ = _torch()
    s = model.sem_dim(level)
    samples, _ = model.sample_untransmitted(hyper, s, rng=_rng(sampling, seed))
    return model.synthesis(torch.cat([y_hat[:, :s], samples], dim=1))


def compress(model, x, level: int, sampling: str = "seeded", seed: Optional[int] = 0) -> Dict[str, Any]:
    """Code a padded image ``x`` (1, 3, Hp, Wp) in [0, 1], Hp and Wp multiples of 64, at ``level``
    (1..16): ``{"strings": [[z string], [y string]], "z_shape", "y_hat" (1, dim, h, w) =
    round(y), "scales", "means" (1, ℓ·d, h, w: the Gaussians the slices were coded with),
    "y", "z", "hyper" (hs(ẑ) with ẑ as the decoder gets it), "bits" (the model's estimate:
    -Σ log2 of the EntropyBottleneck likelihoods of z and of P(ŷ) of the transmitted slices,
    each floored at 1e-9), "x_hat" (the decoder's reconstruction; None with ``official``
    sampling, which the encoder cannot predict)}``. ``sampling``: "seeded" (with ``seed``),
    "official" or "none" (the top level only). Raises ``CodecError`` for a latent beyond ±2**15."""
    torch, _ = _torch()
    from compressai.ans import BufferedRansEncoder

    coder = _coder(model)
    tables = coder.tables
    s_dim = model.sem_dim(level)
    y = model.analysis(x)
    z = model.hyper_analysis(y)
    z_strings = model.entropy_bottleneck.compress(z)
    hyper = model.hyper_synthesis(decode_z(model, z_strings[0], tuple(z.shape[-2:])))
    y_hat = torch.round(y).contiguous()  # NCHW like the decoder's: ga's output is channels-last (see *Determinism*)
    if float(y_hat.abs().max()) > MAX_LATENT:
        raise CodecError(f"sic: a latent value {float(y_hat.abs().max()):g} lies beyond ±{MAX_LATENT}; the coder refuses it")
    _, d, h, w = y.shape
    scales = torch.empty((1, s_dim, h, w), device=y.device)
    means = torch.empty_like(scales)
    symbols: List[int] = []
    indexes: List[int] = []
    padded = torch.nn.functional.pad(y_hat[0], (PAD, PAD, PAD, PAD))
    for s in range(level):
        ch = slice(coder.d * s, coder.d * (s + 1))
        pre = coder.slice_start(s, y_hat, hyper)
        plane = padded[ch]  # the whole slice: the causal taps read only what the decoder has at that step
        for rows, cols, flat, gr, gc in coder.steps(h, w, y.device):
            sc, mu = coder.step_params(s, pre, plane, (flat, gr, gc))
            idx, sign, rounded = tables.coding_params(sc, mu)
            q = sign * (y_hat[0, ch][:, rows, cols].T - rounded)
            symbols.extend(q.to(torch.int32).reshape(-1).tolist())
            indexes.extend(idx.reshape(-1).tolist())
            scales[0, ch][:, rows, cols], means[0, ch][:, rows, cols] = sc.T, mu.T
    encoder = BufferedRansEncoder()
    encoder.encode_with_indexes(symbols, indexes, tables.cdf, tables.lengths, tables.offsets)
    y_string = encoder.flush()
    _, z_lik = model.entropy_bottleneck(z, training=False)
    y_lik = model.y_likelihoods(y_hat[:, :s_dim], scales, means)
    bits = sum(float(-torch.log2(p.double()).sum()) for p in (z_lik, y_lik))
    x_hat = None if sampling == "official" else _reconstruct(model, y_hat, hyper, level, sampling, seed)
    return {"strings": [z_strings, [y_string]], "z_shape": tuple(z.shape[-2:]), "y": y, "z": z, "y_hat": y_hat,
            "hyper": hyper, "scales": scales, "means": means, "bits": bits, "x_hat": x_hat}


class GuardedDecoder:
    """CompressAI's ``RansDecoder`` over one string, kept inside its buffer.

    The C++ decoder never checks the end of its input, so a corrupt string could make it read
    past the buffer. It is handed the string followed by zero bytes, enough for the most it can
    read: 8 bytes of initial state; one 32-bit word per symbol; per escape (bypass) symbol, once
    past the string's own bytes, at most 17 four-bit length fields (a zero word ends a run of
    them) and 255 four-bit value fields, about 37 words; and the value fields a run of length
    fields inside the string can announce (2 per byte, 15 values each). The escapes are
    counted after every call: a correct string holds at most ``8 · len / escape_bits`` of them
    (each costs the escape symbol's own bits, at least ``escape_bits``, plus a 4-bit length), so
    more means corruption and decoding stops (``CodecError``) before the padding can run out.
    ``n_symbols``: the symbols the header implies; ``max_call``: the most one call decodes.
    """

    WORDS_PER_ESCAPE = 1 + (17 + 255) // 8 + 2

    def __init__(self, string: bytes, n_symbols: int, max_call: int, escape_bits: float, name: str) -> None:
        from compressai.ans import RansDecoder

        self.name = name
        self.budget = int(8 * len(string) / (escape_bits + 4)) + 16
        extra = 8 + 4 * n_symbols + 4 * self.WORDS_PER_ESCAPE * (self.budget + max_call) + 16 * len(string) + 64
        self.escapes = 0
        self.decoder = RansDecoder()
        self.decoder.set_stream(bytes(string) + bytes(extra))

    def decode(self, indexes: Sequence[int], cdf, lengths: Sequence[int], offsets: Sequence[int]) -> List[int]:
        """One ``decode_stream`` call; raises ``CodecError`` once the escapes exceed the budget."""
        values = self.decoder.decode_stream(list(indexes), cdf, list(lengths), list(offsets))
        v = np.asarray(values, dtype=np.int64) - np.asarray(offsets, dtype=np.int64)[indexes]
        self.escapes += int(((v < 0) | (v >= np.asarray(lengths, dtype=np.int64)[indexes] - 2)).sum())
        if self.escapes > self.budget:
            raise DecodeError("sic", f"corrupt bitstream: the {self.name} string decodes to more escape codes than its bytes can hold")
        return values


def _escape_bits(cdf_rows: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """The fewest bits the escape (last) symbol of any row costs."""
    most = max(row[n - 1] - row[n - 2] for row, n in zip(cdf_rows, lengths))
    return -math.log2(most / (1 << PRECISION))


def _z_tables(model) -> Tuple[List[List[int]], List[int], List[int]]:
    eb = model.entropy_bottleneck
    lengths = eb._cdf_length.reshape(-1).tolist()
    return [row[:n] for row, n in zip(eb._quantized_cdf.tolist(), lengths)], lengths, eb._offset.reshape(-1).tolist()


def decode_z(model, z_string: bytes, z_shape: Tuple[int, int]):
    """ẑ (1, hyper_dim, zh, zw) from the EntropyBottleneck's string (CompressAI's ``compress``
    bytes), one channel per rANS call through :class:`GuardedDecoder`; what CompressAI's
    ``EntropyBottleneck.decompress`` computes (symbols + medians). The encoder uses it too."""
    torch, _ = _torch()
    coder = _coder(model)
    zh, zw = z_shape
    channels = model.hyper_dim
    cdf, lengths, offsets = coder.z_tables
    decoder = GuardedDecoder(z_string, channels * zh * zw, zh * zw, coder.z_escape_bits, "z")
    values = []
    for c in range(channels):
        values.extend(decoder.decode([0] * (zh * zw), [cdf[c]], [lengths[c]], [offsets[c]]))
    symbols = torch.tensor(values, dtype=torch.float32).reshape(1, channels, zh, zw).clamp(-MAX_MEAN, MAX_MEAN)
    medians = model.entropy_bottleneck._get_medians().detach().to("cpu")
    return (symbols + medians.reshape(1, channels, 1, 1)).to(model.entropy_bottleneck.quantiles.device)


def decompress(model, z_string: bytes, y_string: bytes, z_shape: Tuple[int, int], level: int,
               sampling: str, seed: Optional[int]) -> Dict[str, Any]:
    """Decode the strings of :func:`compress`: ``{"y_hat" (1, ℓ·d, h, w), the transmitted
    slices, "hyper", "x_hat" (1, 3, Hp, Wp) in [0, 1]}``. Reads only the strings and the model;
    the untransmitted channels are drawn as ``sampling``/``seed`` say."""
    torch, _ = _torch()
    coder = _coder(model)
    tables = coder.tables
    zh, zw = z_shape
    h, w = 4 * zh, 4 * zw
    hyper = model.hyper_synthesis(decode_z(model, z_string, z_shape))
    device = hyper.device
    y_hat = torch.zeros((1, model.dim, h, w), device=device)
    steps = coder.steps(h, w, device)
    max_call = coder.d * max(int(st[0].numel()) for st in steps)
    decoder = GuardedDecoder(y_string, level * coder.d * h * w, max_call, tables.escape_bits, "y")
    for s in range(level):
        ch = slice(coder.d * s, coder.d * (s + 1))
        pre = coder.slice_start(s, y_hat, hyper)
        plane = torch.zeros((coder.d, h + 2 * PAD, w + 2 * PAD), device=device)
        for rows, cols, flat, gr, gc in steps:
            sc, mu = coder.step_params(s, pre, plane, (flat, gr, gc))
            idx, sign, rounded = tables.coding_params(sc, mu)
            q = decoder.decode(*tables.subset(idx.reshape(-1).tolist()))
            q = torch.tensor(q, dtype=torch.float32, device=device).reshape(sign.shape)
            values = (rounded + sign * q).clamp(-MAX_LATENT, MAX_LATENT)
            plane[:, rows + PAD, cols + PAD] = values.T
        y_hat[0, ch] = plane[:, PAD:-PAD, PAD:-PAD]
    x_hat = _reconstruct(model, y_hat, hyper, level, sampling, seed)
    return {"y_hat": y_hat[:, : model.sem_dim(level)], "hyper": hyper, "x_hat": x_hat}


# ---- the codec ---------------------------------------------------------------------------------


@CODECS.register("sic")
class SICCodec(LearnedCodec):
    """Progressive SIC: ONE checkpoint, rate points = the levels 1..16 (``rate_param`` ``level``:
    level ℓ transmits z and the first ℓ of the 16 latent slices; the decoder samples the rest).
    Coding as the module docstring says; the container is ``benchmark.codecs.container``'s
    version 3 (every byte counts in bpp).

    ``checkpoints``: the path of the one checkpoint (``benchmark.models.checkpoint`` format, arch
    ``sic`` or ``sic-official``, ``coder_ready``), given by the evaluate stage from dvc.yaml; a
    ``{model}`` field is filled with the option ``model``; a ``{rate_point}`` field is refused
    (one checkpoint serves every level). Options: ``model`` (required: the model's name),
    ``device`` (cpu | cuda), ``sampling`` (``seeded``, the default: the decoder's draw of the
    untransmitted channels is seeded by ``seed``, stored in the bitstream, so the same bytes
    always decode to the same image; ``official``: the authors' unseeded draw from numpy's
    global RNG, **non-deterministic**: the same bytes decode to another image each time, and
    ``encode_verbose`` reports no decode-check hash), ``seed`` (int in [0, 2**63), default 0),
    ``decode_check`` (default True).

    Encode pads zeros at the bottom and right to multiples of 64 (the authors' ``main.py``);
    decode crops them. ``encode_verbose`` gives the model's estimated bits (z and the transmitted
    slices, the padded image's) and the SHA-256 of the reconstruction a correct decoder produces.
    ``library_version`` names CompressAI and torch and the checkpoint: file, architecture and
    size, source, M (meta ``num_samples``) and the perceptual term it was trained with (meta
    ``perceptual``), so every result row says which SIC it is.
    """

    rate_param = "level"
    progressive = True
    levels = range(1, 17)
    defaults: Dict[str, Any] = {"model": None, "device": "cpu", "sampling": "seeded", "seed": 0, "decode_check": True}
    choices = {"device": ("cpu", "cuda"), "sampling": SAMPLINGS, "decode_check": (False, True)}

    def __init__(self, *, checkpoints: str = "models/{model}/model.pt", **options: Any) -> None:
        Codec.__init__(self, **options)
        if "{rate_point}" in checkpoints:
            raise CodecError(f"sic: one checkpoint serves every level; the checkpoints path {checkpoints!r} has a {{rate_point}} field")
        self.checkpoints = checkpoints
        if not isinstance(self.options["model"], str) or not self.options["model"]:
            raise CodecError(f"sic: option model (the model name under the models directory) is required, got {self.options['model']!r}")
        seed = self.options["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise CodecError(f"sic: option seed must be an int in [0, 2**63), got {seed!r}")
        if self.options["device"] == "cuda":
            torch, _ = _torch()
            if not torch.cuda.is_available():
                raise CodecError("sic: device 'cuda' was requested but CUDA is not available to torch")
        self._models: Dict[int, Tuple[Any, Dict[str, Any]]] = {}

    # ---- the checkpoint --------------------------------------------------------------------

    def _level(self, rate_point: float) -> int:
        q = int(rate_point) if float(rate_point).is_integer() else None
        if q not in self.levels:
            raise CodecError(f"sic: level must be an integer in [{self.levels[0]}, {self.levels[-1]}], got {rate_point}")
        return q

    _quality = _level  # LearnedCodec's name for the rate point check

    def checkpoint_path(self, rate_point: Optional[float] = None) -> Path:
        """The one checkpoint (every level); ``rate_point`` is checked if given."""
        if rate_point is not None:
            self._level(rate_point)
        return Path(self.checkpoints.format(model=self.options["model"]))

    def load(self, rate_point: Optional[float] = None) -> Tuple[Any, Dict[str, Any]]:
        """Load the checkpoint once (cached per instance): (model in eval mode on the device,
        metadata). Raises ``CodecError`` naming the file if it is missing, unreadable,
        unfinished, not a SIC model, or the model's levels are not 1..16."""
        if 0 not in self._models:
            from benchmark.models.checkpoint import CheckpointError, load_model

            _import_torch()
            path = self.checkpoint_path(rate_point)
            if not path.is_file():
                raise CodecError(
                    f"{path}: checkpoint of model {self.options['model']!r} (every level) not found; it is an output "
                    f"of a model stage of dvc.yaml (`dvc repro`, or `dvc stage list` to find the stage)"
                )
            try:
                model, meta = load_model(path, device=self.options["device"])
            except CheckpointError as e:
                raise CodecError(str(e)) from e
            try:
                coder = _coder(model)
            except CodecError as e:
                raise CodecError(f"{path}: {e}") from e
            if coder.num_slices != len(self.levels):
                raise CodecError(f"{path}: a SIC model of {coder.num_slices} slices; the codec's levels are 1..{len(self.levels)}")
            self._models[0] = (model, meta)
        return self._models[0]

    # ---- coding ---------------------------------------------------------------------------

    def _sampling(self, level: int) -> Tuple[str, Optional[int]]:
        if level == len(self.levels):
            return "none", None
        if self.options["sampling"] == "official":
            return "official", None
        return "seeded", int(self.options["seed"])

    def _compress(self, image: np.ndarray, rate_point: float, verbose: bool = True) -> Tuple[bytes, Optional[float], Any]:
        """(container bytes, estimated bits, expected reconstruction (1, 3, Hp, Wp) or None)."""
        torch, _ = _torch()
        from benchmark.models.checkpoint import model_id

        level = self._level(rate_point)
        model, meta = self.load()
        h, w, _ = image.shape if isinstance(image, np.ndarray) and image.ndim == 3 else (0, 0, 0)
        _check_size(h, w)
        x = self._padded(image, "zeros-bottom-right")
        sampling, seed = self._sampling(level)
        with torch.no_grad(), _coding_threads():
            out = compress(model, x, level, sampling, seed)
        c = Container(
            model_id=model_id(meta), quality=level, height=h, width=w, shape=(),
            strings=tuple(tuple(bytes(s) for s in g) for g in out["strings"]), order=PROGRESSIVE_ORDER,
            sampling=sampling, seed=seed,
        )
        try:
            return pack(c), out["bits"], out["x_hat"]
        except ContainerError as e:
            raise CodecError(f"sic: cannot pack the bitstream: {e}") from e

    def encode(self, image: np.ndarray, rate_point: float) -> bytes:
        """Code a uint8 (H, W, 3) image at level ``rate_point`` (1..16) into a container."""
        return self._compress(image, rate_point)[0]

    def encode_verbose(self, image: np.ndarray, rate_point: float) -> Encoded:
        """``encode``, its time, the model's estimated bits and (``decode_check``, seeded or top
        level) the SHA-256 of the reconstruction the decoder will produce."""
        from benchmark.data.images import pixel_sha256

        t0 = time.perf_counter()
        data, bits, expected = self._compress(image, rate_point)
        encode_s = time.perf_counter() - t0
        rec_sha = None
        if self.options["decode_check"] and expected is not None:
            rec_sha = pixel_sha256(self._to_image(expected, image.shape[0], image.shape[1], "zeros-bottom-right"))
        return Encoded(data, reconstruction_sha256=rec_sha, estimated_bits=bits, encode_s=encode_s)

    def parse(self, data: bytes) -> Container:
        """The container of ``data``, checked against the model before anything is allocated:
        a progressive container of this model, level 1..16, sampling ``none`` exactly at the top
        level, no latent shape, a z and a y string, a padded size of at most ``MAX_PIXELS`` and
        within ``limits`` (pixels and the memory ``decode_bytes_per_pixel`` estimates), and
        strings long enough for the symbols the header implies. Raises ``DecodeError`` naming
        the problem."""
        from benchmark.models.checkpoint import model_id

        try:
            c = unpack(data)
        except ContainerError as e:
            raise DecodeError(self.name, f"corrupt bitstream: {e}") from e
        if c.sampling is None:
            raise DecodeError(
                self.name, f"corrupt bitstream: container version for symbol order {c.order!r}, not a progressive (version 3) one"
            )
        try:
            model, meta = self.load()
        except CodecError as e:
            raise DecodeError(self.name, f"no usable checkpoint: {e}") from e
        coder = _coder(model)
        expected = model_id(meta)
        if c.model_id != expected:
            raise DecodeError(
                self.name, f"bitstream was made by model {c.model_id!r}, but {self.checkpoint_path()} is {expected!r}"
            )
        if c.quality not in self.levels:
            raise DecodeError(self.name, f"corrupt bitstream: level {c.quality} is outside 1..{len(self.levels)}")
        if (c.sampling == "none") != (c.quality == len(self.levels)):
            raise DecodeError(
                self.name,
                f"corrupt bitstream: sampling {c.sampling!r} at level {c.quality} "
                f"(nothing is sampled exactly at level {len(self.levels)})",
            )
        if c.shape != ():
            raise DecodeError(self.name, f"corrupt bitstream: a latent shape {c.shape}; the grid follows from the image size")
        if [len(g) for g in c.strings] != [1, 1]:
            raise DecodeError(
                self.name, f"corrupt bitstream: {[len(g) for g in c.strings]} strings per group, expected a z and a y string"
            )
        _check_size(c.height, c.width, decode=True)
        hp, wp = _padded_size(c.height, c.width)
        self.check_decode_size(hp, wp, decode_bytes_per_pixel(model), what=f"image size {c.height}x{c.width}, padded")
        h, w = hp // LATENT_STRIDE, wp // LATENT_STRIDE
        n_z, n_y = model.hyper_dim * (h // 4) * (w // 4), c.quality * coder.d * h * w
        for name, n, bits, string in (("z", n_z, coder.z_min_bits, c.strings[0][0]), ("y", n_y, coder.tables.min_bits, c.strings[1][0])):
            if n * bits > 8 * len(string) + 64:
                raise DecodeError(
                    self.name, f"corrupt bitstream: a {c.height}x{c.width} image at level {c.quality} needs at least "
                    f"{n * bits / 8:.0f} bytes for its {n} {name} symbols, the {name} string has {len(string)}",
                )
        return c

    def decode_verbose(self, data: bytes) -> Dict[str, Any]:
        """Decode a container: ``{"image": uint8 (H, W, 3), "y_hat": the transmitted slices
        (1, ℓ·d, h, w), "level", "sampling", "seed"}``. Raises ``DecodeError`` (see :meth:`parse`)."""
        torch, _ = _torch()
        c = self.parse(data)
        model, _ = self.load()
        hp, wp = _padded_size(c.height, c.width)
        try:
            with torch.no_grad(), _coding_threads():
                out = decompress(model, c.strings[0][0], c.strings[1][0], (hp // PAD_MULTIPLE, wp // PAD_MULTIPLE),
                                 c.quality, c.sampling, c.seed)
            x_hat = torch.nan_to_num(out["x_hat"], nan=0.0)
            image = self._to_image(x_hat, c.height, c.width, "zeros-bottom-right")
        except DecodeError:
            raise
        except Exception as e:  # noqa: BLE001 - the model and coder raise many types on corrupt strings
            raise DecodeError(self.name, f"decompress failed: {type(e).__name__}: {e}") from e
        return {"image": image, "y_hat": out["y_hat"], "level": c.quality, "sampling": c.sampling, "seed": c.seed}

    def decode(self, data: bytes) -> np.ndarray:
        """Decode a container into a uint8 (H, W, 3) image (see :meth:`decode_verbose`)."""
        return self.decode_verbose(data)["image"]

    def training_image_hashes(self, rate_point: float) -> FrozenSet[str]:
        """The checkpoint's training images (meta ``train_images_sha256``), the same at every level."""
        self._level(rate_point)
        _, meta = self.load()
        return frozenset(meta.get("train_images_sha256") or ())

    def library_version(self) -> str:
        """``compressai 1.2.8, torch 2.13.0; SIC checkpoint model.pt (sic dim=96 heads=4, source
        train, M=1, perceptual lpips)``: the packages that code, and which SIC it is: the
        checkpoint's file name, architecture and size, source (meta ``source``, or ``weights_file``
        and ``weights_sha256`` for published weights), M (meta ``num_samples``) and the
        perceptual term of its training (meta ``perceptual``); ``unknown`` where the checkpoint
        does not say."""
        from importlib import metadata

        torch, _ = _torch()
        versions = f"compressai {metadata.version('compressai')}, torch {torch.__version__}"
        try:
            _, meta = self.load()
        except CodecError:
            return f"{versions}; SIC checkpoint {self.checkpoint_path().name} (not loaded)"
        size = " ".join(f"{k}={v}" for k, v in sorted((meta.get("size") or {}).items()))
        parts = [f"{meta.get('arch')}{' ' + size if size else ''}", f"source {meta.get('source', 'unknown')}"]
        if meta.get("weights_sha256"):
            parts.append(f"weights {meta.get('weights_file', '?')} sha256 {meta['weights_sha256']}")
        parts += [f"M={meta.get('num_samples', 'unknown')}", f"perceptual {meta.get('perceptual', 'unknown')}"]
        return f"{versions}; SIC checkpoint {self.checkpoint_path().name} ({', '.join(parts)})"


def _padded_size(height: int, width: int) -> Tuple[int, int]:
    return -(-height // PAD_MULTIPLE) * PAD_MULTIPLE, -(-width // PAD_MULTIPLE) * PAD_MULTIPLE


def _check_size(height: int, width: int, decode: bool = False) -> None:
    """Refuse an image whose padded area is above ``MAX_PIXELS`` (the coder's own limit):
    ``CodecError``, or ``DecodeError`` for a header (``decode``)."""
    hp, wp = _padded_size(height, width)
    if hp * wp > MAX_PIXELS:
        reason = f"a {height}x{width} image ({hp}x{wp} padded) is larger than the codec's limit of {MAX_PIXELS} pixels"
        raise DecodeError("sic", f"corrupt bitstream: {reason}") if decode else CodecError(f"sic: {reason}")
