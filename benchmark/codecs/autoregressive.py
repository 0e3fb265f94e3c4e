"""Fast, exact entropy coding of the autoregressive context models: Minnen et al. 2018
(``mbt2018``, CompressAI's ``JointAutoregressiveHierarchicalPriors``) and Cheng et al. 2020
(``cheng2020-anchor``, ``cheng2020-attn``), whose latent ``y`` is coded position by position
with Gaussian parameters predicted from the hyperprior and a 5x5 masked ("type A") context of
the positions already decoded. Two symbol orders, one trained model:

- **raster** (CompressAI's order, its exact bitstreams): position (i, j) of the H x W latent
  grid in row-major order, the M channels of a position together. ``compress_raster`` writes the
  bytes CompressAI's ``compress`` writes and ``decompress_raster`` reads them into the
  reconstruction CompressAI's ``decompress`` gives, bit for bit. It is faster than CompressAI
  because its rANS decoder is handed, per position, only the CDF rows that position uses (CompressAI
  passes the whole table, 64 rows, converted from Python lists at every call) and the scale
  indexes come from one ``searchsorted`` instead of a loop over the scale table.
- **wavefront**: the 5x5 type-A context of (i, j) holds (i-2, j-2..j+2), (i-1, j-2..j+2) and
  (i, j-2..j-1), all on earlier steps of ``t = 3 i + j``. Every position of a step ``t`` is
  therefore coded at once: one batched context convolution, one batched entropy-parameter
  network and one ``decode_stream`` call per step, ``3 H + W - 3`` sequential steps instead of
  ``H W`` (141 instead of 1536 for a 32 x 48 latent). Symbols are written step by step, positions
  of a step by increasing ``i``, channels in order: a different bitstream, from the same weights.
  The means and scales come from batched instead of single-position convolutions, so they differ
  from raster coding by float rounding: the symbols and rates are those of raster coding up to
  rare index flips at scale-table boundaries, and the reconstruction differs from raster decoding
  by at most a few 8-bit levels in a few pixels (``y_hat = symbol + mean`` carries the mean's
  rounding). Encoder and decoder run the same batches, so they agree bit for bit with each other.

Both orders need the same torch thread count on both sides (the learned codec pins it to 1) and
the entropy coder's tables of the checkpoint (``model.update`` is never called here).
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

RASTER = "raster"
WAVEFRONT = "wavefront"
ORDERS = (RASTER, WAVEFRONT)
KERNEL = 5  # the context model's kernel size
PAD = (KERNEL - 1) // 2
SCALE = 4  # the latent y has 4x the resolution of the hyper-latent z


def is_autoregressive(model: torch.nn.Module) -> bool:
    """True for CompressAI's context models (``JointAutoregressiveHierarchicalPriors`` and its
    subclasses ``Cheng2020Anchor``, ``Cheng2020Attention``)."""
    from benchmark._torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # before compressai imports torchvision
    from compressai.models import JointAutoregressiveHierarchicalPriors

    return isinstance(model, JointAutoregressiveHierarchicalPriors)


class CdfTables:
    """The Gaussian conditional's quantized CDFs, lengths and offsets as Python lists, converted
    once per model (CompressAI converts them at every call). Each CDF row is cut to its length
    (the table pads every row to the longest; the rANS coder never reads past ``cdf_length``),
    which makes the per-call conversion into the coder several times cheaper."""

    def __init__(self, gaussian_conditional) -> None:
        gc = gaussian_conditional
        self.lengths: List[int] = gc.cdf_length.tolist()
        self.cdf: List[List[int]] = [row[:n] for row, n in zip(gc.quantized_cdf.tolist(), self.lengths)]
        self.offsets: List[int] = gc.offset.tolist()
        self.bounds = gc.scale_table[:-1].to(torch.float32).contiguous()
        self.lower_bound = gc.lower_bound_scale

    def indexes(self, scales: torch.Tensor) -> torch.Tensor:
        """The scale-table index of each scale, int32 of ``scales``' shape: what
        ``GaussianConditional.build_indexes`` computes (the number of table entries below the
        lower-bounded scale), with one ``searchsorted`` instead of a loop over the table."""
        s = self.lower_bound(scales)
        return torch.searchsorted(self.bounds, s.to(torch.float32).contiguous(), right=False).to(torch.int32)

    def subset(self, indexes: Sequence[int]) -> Tuple[List[int], List[List[int]], List[int], List[int]]:
        """(indexes renumbered 0..k-1, and the k CDF rows, lengths and offsets they use): the
        arguments of one rANS call, holding only the table rows that call needs."""
        used = sorted(set(indexes))
        where = {u: k for k, u in enumerate(used)}
        return [where[i] for i in indexes], [self.cdf[u] for u in used], [self.lengths[u] for u in used], [self.offsets[u] for u in used]


def _tables(model) -> CdfTables:
    tables = getattr(model, "_benchmark_cdf_tables", None)
    if tables is None:
        tables = CdfTables(model.gaussian_conditional)
        model._benchmark_cdf_tables = tables  # the tables never change after update()
    return tables


def _hyper(model, z_strings, shape) -> Tuple[torch.Tensor, torch.Tensor]:
    z_hat = model.entropy_bottleneck.decompress(z_strings, shape)
    return z_hat, model.h_s(z_hat)


def _analyse(model, x: torch.Tensor):
    """The encoder's part shared by both orders: the latent ``y`` = g_a(x), the hyper-latent
    ``z`` = h_a(y), z's string (CompressAI's factorized entropy bottleneck) and the hyper
    decoder's parameters h_s(z_hat) that condition every position of ``y``."""
    y = model.g_a(x)
    z = model.h_a(y)
    z_strings = model.entropy_bottleneck.compress(z)
    _, params = _hyper(model, z_strings, z.size()[-2:])
    return y, z, z_strings, params


# --- raster (CompressAI's bitstreams) ------------------------------------------------------


def compress_raster(model, x: torch.Tensor) -> Dict[str, object]:
    """CompressAI's ``compress`` of a context model, with its exact bytes: ``{"strings":
    [[y string], [z string]], "shape": z's (h, w)}`` for a (1, 3, H, W) input in [0, 1] (H, W
    multiples of 64), plus what the encoder knows (``_encoder_side``: ``y_hat``, ``z``,
    ``scales``, ``means``). The per-position operations are CompressAI's, with the scale indexes
    from ``CdfTables.indexes``."""
    from compressai.ans import BufferedRansEncoder

    y, z, z_strings, params = _analyse(model, x)
    tables = _tables(model)
    height, width = y.shape[2], y.shape[3]
    y_hat = F.pad(y, (PAD, PAD, PAD, PAD))
    weight = model.context_prediction.weight * model.context_prediction.mask
    scales, means = torch.empty_like(y), torch.empty_like(y)
    symbols: List[int] = []
    indexes: List[int] = []
    for h in range(height):
        for w in range(width):
            y_crop = y_hat[:, :, h : h + KERNEL, w : w + KERNEL]
            ctx_p = F.conv2d(y_crop, weight, bias=model.context_prediction.bias)
            p = params[:, :, h : h + 1, w : w + 1]
            gaussian_params = model.entropy_parameters(torch.cat((p, ctx_p), dim=1)).squeeze(3).squeeze(2)
            scales_hat, means_hat = gaussian_params.chunk(2, 1)
            y_q = model.gaussian_conditional.quantize(y_crop[:, :, PAD, PAD], "symbols", means_hat)
            y_hat[:, :, h + PAD, w + PAD] = y_q + means_hat
            scales[:, :, h, w], means[:, :, h, w] = scales_hat, means_hat
            symbols.extend(y_q.squeeze().tolist())
            indexes.extend(tables.indexes(scales_hat).squeeze().tolist())
    encoder = BufferedRansEncoder()
    encoder.encode_with_indexes(symbols, indexes, tables.cdf, tables.lengths, tables.offsets)
    return _encoded(encoder.flush(), z_strings, z, y, y_hat, scales, means)


def _encoded(y_string, z_strings, z, y, y_hat_padded, scales, means) -> Dict[str, object]:
    """The result of a compress: the strings and shape CompressAI's ``compress`` returns, and
    ``_encoder_side``: the padded-off ``y_hat`` (what the decoder will rebuild), ``y``, ``z``
    and the Gaussian ``scales`` and ``means`` of every position (1, M, H, W)."""
    y_hat = y_hat_padded[:, :, PAD:-PAD, PAD:-PAD]
    side = {"y": y, "y_hat": y_hat, "z": z, "scales": scales, "means": means}
    return {"strings": [[y_string], z_strings], "shape": z.size()[-2:], "_encoder_side": side}


def encoder_estimate(model, side: Dict[str, torch.Tensor]) -> Tuple[float, torch.Tensor]:
    """(estimated bits, expected reconstruction) from what a context model's encoder knows
    (``_encoder_side`` of a compress): ``-sum(log2 likelihoods)`` of y under the Gaussians the
    context model predicted and of z under the factorized prior (the likelihoods the model's
    forward pass computes, with its lower bound), and ``g_s(y_hat)`` clamped to [0, 1], the image
    a correct decoder must produce, (1, 3, H', W')."""
    _, y_lik = model.gaussian_conditional(side["y"], side["scales"], side["means"])
    _, z_lik = model.entropy_bottleneck(side["z"])
    bits = sum(float(-torch.log2(v.double()).sum()) for v in (y_lik, z_lik))
    return bits, model.g_s(side["y_hat"]).clamp_(0, 1)


def decompress_raster(model, strings: Sequence[Sequence[bytes]], shape) -> Dict[str, torch.Tensor]:
    """CompressAI's ``decompress`` of a context model, bit for bit: ``{"x_hat": (1, 3, H, W)}``
    in [0, 1] from ``strings = [[y string], [z string]]`` and z's ``shape``. Each position's rANS
    call gets only the CDF rows it uses."""
    from compressai.ans import RansDecoder

    z_hat, params = _hyper(model, strings[1], shape)
    tables = _tables(model)
    height, width = z_hat.size(2) * SCALE, z_hat.size(3) * SCALE
    y_hat = torch.zeros((1, model.M, height + 2 * PAD, width + 2 * PAD), device=z_hat.device)
    decoder = RansDecoder()
    decoder.set_stream(strings[0][0])
    for h in range(height):
        for w in range(width):
            y_crop = y_hat[:, :, h : h + KERNEL, w : w + KERNEL]
            ctx_p = F.conv2d(y_crop, model.context_prediction.weight, bias=model.context_prediction.bias)
            p = params[:, :, h : h + 1, w : w + 1]
            gaussian_params = model.entropy_parameters(torch.cat((p, ctx_p), dim=1))
            scales_hat, means_hat = gaussian_params.chunk(2, 1)
            rv = decoder.decode_stream(*tables.subset(tables.indexes(scales_hat).squeeze().tolist()))
            rv = model.gaussian_conditional.dequantize(torch.Tensor(rv).reshape(1, -1, 1, 1), means_hat)
            y_hat[:, :, h + PAD : h + PAD + 1, w + PAD : w + PAD + 1] = rv
    y_hat = F.pad(y_hat, (-PAD, -PAD, -PAD, -PAD))
    return {"x_hat": model.g_s(y_hat).clamp_(0, 1)}


# --- wavefront ----------------------------------------------------------------------------


def wavefront_steps(height: int, width: int) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """The positions of each step ``t = 3 i + j`` of an ``height`` x ``width`` grid, as (rows,
    columns) int64 tensors, rows increasing; ``3 (height - 1) + width`` steps, none empty."""
    steps = []
    for t in range(3 * (height - 1) + width):
        rows = torch.arange(max(0, -(-(t - width + 1) // 3)), min(height - 1, t // 3) + 1)
        steps.append((rows, t - 3 * rows))
    return steps


def _step_params(model, y_hat: torch.Tensor, params: torch.Tensor, weight, rows, cols) -> Tuple[torch.Tensor, torch.Tensor]:
    """Scales and means (n, M) of the n positions (rows, cols) of one step, from their 5x5
    contexts in the padded ``y_hat`` (1, M, H + 4, W + 4), batched."""
    di, dj = torch.meshgrid(torch.arange(KERNEL), torch.arange(KERNEL), indexing="ij")
    crops = y_hat[0][:, rows[:, None, None] + di, cols[:, None, None] + dj]  # (M, n, 5, 5)
    ctx = F.conv2d(crops.permute(1, 0, 2, 3), weight, bias=model.context_prediction.bias)  # (n, 2M, 1, 1)
    p = params[0][:, rows, cols].T[:, :, None, None]  # (n, P, 1, 1)
    gaussian_params = model.entropy_parameters(torch.cat((p, ctx), dim=1))[:, :, 0, 0]
    scales, means = gaussian_params.chunk(2, 1)
    return scales, means


def compress_wavefront(model, x: torch.Tensor) -> Dict[str, object]:
    """A context model's ``compress`` in wavefront order (module docstring): ``{"strings":
    [[y string], [z string]], "shape": z's (h, w)}`` for a (1, 3, H, W) input in [0, 1]. The z
    string is CompressAI's; the y string holds the same kind of symbols in another order. Plus
    ``_encoder_side`` as ``compress_raster``."""
    from compressai.ans import BufferedRansEncoder

    y, z, z_strings, params = _analyse(model, x)
    tables = _tables(model)
    height, width = y.shape[2], y.shape[3]
    y_hat = torch.zeros((1, y.shape[1], height + 2 * PAD, width + 2 * PAD), device=y.device)
    weight = model.context_prediction.weight * model.context_prediction.mask
    all_scales, all_means = torch.empty_like(y), torch.empty_like(y)
    symbols: List[int] = []
    indexes: List[int] = []
    for rows, cols in wavefront_steps(height, width):
        scales, means = _step_params(model, y_hat, params, weight, rows, cols)
        y_q = torch.round(y[0][:, rows, cols].T - means)
        y_hat[0][:, rows + PAD, cols + PAD] = (y_q + means).T
        all_scales[0][:, rows, cols], all_means[0][:, rows, cols] = scales.T, means.T
        symbols.extend(y_q.to(torch.int32).reshape(-1).tolist())
        indexes.extend(tables.indexes(scales).reshape(-1).tolist())
    encoder = BufferedRansEncoder()
    encoder.encode_with_indexes(symbols, indexes, tables.cdf, tables.lengths, tables.offsets)
    return _encoded(encoder.flush(), z_strings, z, y, y_hat, all_scales, all_means)


def decompress_wavefront(model, strings: Sequence[Sequence[bytes]], shape) -> Dict[str, torch.Tensor]:
    """Decode a ``compress_wavefront`` bitstream: ``{"x_hat": (1, 3, H, W)}`` in [0, 1], one
    batched step and one rANS call per wavefront."""
    from compressai.ans import RansDecoder

    z_hat, params = _hyper(model, strings[1], shape)
    tables = _tables(model)
    height, width = z_hat.size(2) * SCALE, z_hat.size(3) * SCALE
    y_hat = torch.zeros((1, model.M, height + 2 * PAD, width + 2 * PAD), device=z_hat.device)
    weight = model.context_prediction.weight * model.context_prediction.mask
    decoder = RansDecoder()
    decoder.set_stream(strings[0][0])
    for rows, cols in wavefront_steps(height, width):
        scales, means = _step_params(model, y_hat, params, weight, rows, cols)
        rv = decoder.decode_stream(*tables.subset(tables.indexes(scales).reshape(-1).tolist()))
        y_q = torch.tensor(rv, dtype=torch.float32, device=means.device).reshape(means.shape)
        y_hat[0][:, rows + PAD, cols + PAD] = (y_q + means).T
    y_hat = F.pad(y_hat, (-PAD, -PAD, -PAD, -PAD))
    return {"x_hat": model.g_s(y_hat).clamp_(0, 1)}


def compress(model, x: torch.Tensor, order: str) -> Dict[str, object]:
    """``compress_raster`` or ``compress_wavefront``. Raises ``ValueError`` for another order."""
    if order not in ORDERS:
        raise ValueError(f"unknown symbol order {order!r}; use one of {ORDERS}")
    return (compress_raster if order == RASTER else compress_wavefront)(model, x)


def decompress(model, strings, shape, order: str) -> Dict[str, torch.Tensor]:
    """``decompress_raster`` or ``decompress_wavefront``. Raises ``ValueError`` for another
    order, and whatever the rANS decoder or torch raise for corrupt strings."""
    if order not in ORDERS:
        raise ValueError(f"unknown symbol order {order!r}; use one of {ORDERS}")
    return (decompress_raster if order == RASTER else decompress_wavefront)(model, strings, shape)
