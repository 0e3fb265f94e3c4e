"""QRes-VAE's published weights (Duan et al., WACV 2023): fetched, hash-checked where the hash is
known, and turned into checkpoints. Never trained instead.

The authors publish one file per training λ (their ``lmb``) on Hugging Face
(``duanzh0/my-model-weights``, facts in ``shared/fixtures/qres-vae/README.md``)::

    https://huggingface.co/duanzh0/my-model-weights/resolve/main/qres34m/qres34m-lmb{lmb}.pt
    https://huggingface.co/duanzh0/my-model-weights/resolve/main/qres17m/qres17m-lmb{lmb}.pt

A file is ``torch.load(f)["model"]``, the state_dict of ``benchmark.models.qres.qres34m()`` /
``qres17m()``, loaded strictly.

**Rate points.** As CompressAI's zoo numbers its files by quality 1..8 (``zoo_url(arch, q)``,
the q-th λ of ``ZOO_LAMBDAS``), the q-th published λ in increasing order is quality q:

=======  ====================================================================
quality  1     2     3     4     5     6     7     8
qres34m  16    32    64    128   256   512   1024  2048   (lmb)
qres17m  1     2     4     8     16    32    64    1024   (lmb)
=======  ====================================================================

On our λ scale (CompressAI's, loss ``λ·255²·MSE + bpp`` with x in [0, 1]), the authors' loss
``R + lmb·MSE_pm1`` (nats per sub-pixel, MSE on [-1, 1]) is the same objective for
``λ = 12·lmb / (ln 2·255²) ≈ 2.6624e-4·lmb`` (``benchmark.models.qres.lmb_to_compressai_lambda``):
qres34m q1..q8 λ ≈ 0.00426, 0.00852, 0.01704, 0.03408, 0.06816, 0.1363, 0.2726, 0.5453;
qres17m q1..q8 λ ≈ 0.000266, 0.000532, 0.001065, 0.00213, 0.00426, 0.00852, 0.01704, 0.2726.
These are not ``train.lambdas`` of the same quality (CompressAI's λ for its own models): a
checkpoint records the λ of its weights (``lmbda``) and the authors' ``lmb``.

**Hashes.** The SHA-256 of five of these files could be read from the Hub (``KNOWN_SHA256``); those are
checked, in the cache and before anything enters it, and a mismatching file is refused. The
others are used as they are, with a warning (:class:`UnverifiedWeightsWarning`); their SHA-256
is computed and recorded in the checkpoint (``weights_sha256``, ``weights_verified`` False) and
so in every result row (the ``codec_library`` column, ``LearnedCodec.library_version``).

Files live in the torch hub cache (``$TORCH_HOME/hub/checkpoints/qres34m-lmb32.pt``), come from
the mirror (``<mirror>/huggingface.co/duanzh0/my-model-weights/resolve/main/qres34m/...``) or the
network (``benchmark.models.weights.fetch_weight_file``, the same policy as CompressAI's zoo).

``PUBLISHED`` maps an architecture name to its table (quality -> :class:`PublishedWeights`);
tests put their own architecture and files in it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import torch

from benchmark.data.download import sha256_file
from benchmark.errors import BenchmarkError
from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
from benchmark.models.qres import QRES17M_LMBS, QRES34M_LMBS, lmb_to_compressai_lambda
from benchmark.models.specs import ARCHITECTURES, build_model
from benchmark.models.weights import fetch_weight_file, url_file_name

PathLike = Union[str, "os.PathLike[str]"]

QRES_WEIGHTS_BASE = "https://huggingface.co/duanzh0/my-model-weights/resolve/main"

# SHA-256 of the published files, from the Hugging Face blob pages (Git LFS objects, uploaded
# February 2023; shared/fixtures/qres-vae/README.md). Path under QRES_WEIGHTS_BASE -> hex digest.
KNOWN_SHA256: Dict[str, str] = {
    "qres34m/qres34m-lmb32.pt": "cfd4764f859a98bb865a46d7ebfd942f9e9f4c0dfb59f714efd3e529e438343a",
    "qres34m/qres34m-lmb256.pt": "e300005273dbda61176be0f10feb733aaa5c2b7442b448e522c8f9a054ee7be1",
    "qres17m/qres17m-lmb1.pt": "ce062a52d219b95742a8b0fe67166b6152ef5b525c01e627af4e639896c51757",
    "qres17m/qres17m-lmb2.pt": "cd5d21a09e0d8a2335a5d0abeafb5fbbc85946b90b507ca62cfcb38725c6a68d",
    "qres17m/qres17m-lmb64.pt": "51963f1d804676b1ef67116998553e7da868550d3a1cbd3a75bb1fce5313b3f3",
}


@dataclass(frozen=True)
class PublishedWeights:
    """One published weight file: architecture ``arch`` (a name in ``ARCHITECTURES``) at
    ``quality`` (1..8), trained with the authors' ``lmb`` (λ on our scale: ``lmbda``), at ``url``;
    ``sha256`` the published hex digest, or None where it is not known."""

    arch: str
    quality: int
    lmb: float
    lmbda: float
    url: str
    sha256: Optional[str] = None

    @property
    def file_name(self) -> str:
        return url_file_name(self.url)


def qres_table(arch: str, lmbs: Sequence[int], base: str = QRES_WEIGHTS_BASE) -> Dict[int, PublishedWeights]:
    """quality -> :class:`PublishedWeights` for the authors' files ``<base>/<arch>/<arch>-lmb<lmb>.pt``,
    quality q the q-th of ``lmbs`` (increasing), hashes from ``KNOWN_SHA256``."""
    table = {}
    for q, lmb in enumerate(sorted(lmbs), start=1):
        path = f"{arch}/{arch}-lmb{lmb}.pt"
        table[q] = PublishedWeights(arch, q, float(lmb), lmb_to_compressai_lambda(lmb), f"{base}/{path}", KNOWN_SHA256.get(path))
    return table


PUBLISHED: Dict[str, Dict[int, PublishedWeights]] = {
    "qres34m": qres_table("qres34m", QRES34M_LMBS),
    "qres17m": qres_table("qres17m", QRES17M_LMBS),
}


class PublishedWeightsError(BenchmarkError, ValueError):
    """No published weights for an architecture or quality, or a file that is not the
    architecture's state_dict; the message names what exists, or the file."""


class UnverifiedWeightsWarning(UserWarning):
    """A published weight file was used whose SHA-256 is not known (so not checked); its computed
    SHA-256 is recorded."""


def published_weights(arch: str, quality: int) -> PublishedWeights:
    """The entry of ``PUBLISHED`` for ``arch`` at ``quality``. Raises :class:`PublishedWeightsError`
    listing the architectures or qualities that exist."""
    if arch not in PUBLISHED:
        raise PublishedWeightsError(
            f"no published (pretrained) weights for architecture {arch!r}; available: {', '.join(sorted(PUBLISHED))} "
            f"(CompressAI's architectures: source zoo)"
        )
    table = PUBLISHED[arch]
    if isinstance(quality, bool) or quality not in table:
        listed = ", ".join(f"{q} (lmb {w.lmb:g})" for q, w in sorted(table.items()))
        raise PublishedWeightsError(f"{arch}: no published weights for quality {quality!r}; available: {listed}")
    return table[quality]


def _check_sha256(expected: str):
    def check(path: Path) -> None:
        actual = sha256_file(path)
        if actual != expected:
            raise ValueError(f"{path.name}: SHA-256 is {actual}, expected the published {expected}")

    return check


def fetch_published_weights(
    arch: str,
    quality: int,
    *,
    mirror: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
) -> Tuple[Path, str, bool]:
    """The weight file of ``(arch, quality)`` in the cache (``cache_dir``, default
    ``$TORCH_HOME/hub/checkpoints``), fetched from ``mirror`` or the URL if absent
    (``fetch_weight_file``): ``(path, its SHA-256, verified)``; ``verified`` is True when the
    published hash is known and matched. A file without a known hash is used as it is, with an
    :class:`UnverifiedWeightsWarning` naming it and its computed SHA-256.

    Raises :class:`PublishedWeightsError` (unknown arch or quality) and, from
    ``fetch_weight_file``, ``WeightsHashError`` (cached file with the wrong hash: left, to be
    deleted), ``DownloadError`` (fetched bytes with the wrong hash: refused, not cached) and
    ``WeightsUnavailableError`` (offline and absent: names the file, the URL and where to put it).
    """
    w = published_weights(arch, quality)
    path = fetch_weight_file(
        w.url,
        what=f"QRes-VAE pretrained weights {w.file_name} ({arch}, quality {quality}, lmb {w.lmb:g})",
        check=_check_sha256(w.sha256) if w.sha256 else None,
        mirror=mirror,
        cache_dir=cache_dir,
    )
    actual = sha256_file(path)
    if not w.sha256:
        warnings.warn(
            UnverifiedWeightsWarning(
                f"{path}: no published SHA-256 is known for {w.url}, so the file is used unchecked; its SHA-256 "
                f"{actual} is recorded in the checkpoint (weights_sha256) and in the results' codec_library column"
            ),
            stacklevel=2,
        )
    return path, actual, bool(w.sha256)


def _state_dict(path: Path, trusted: bool) -> dict:
    """``torch.load(path)["model"]`` on the CPU. Tensors only (``weights_only``); a file whose
    published hash matched (``trusted``) may hold other objects, and is then unpickled fully."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or non-tensor pickles
        if not trusted:
            raise PublishedWeightsError(
                f"{path}: cannot load as a weights-only checkpoint ({type(e).__name__}: {e}); "
                f"its hash is not published, so it is not unpickled further"
            ) from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:
            raise PublishedWeightsError(f"{path}: cannot load ({type(e2).__name__}: {e2})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise PublishedWeightsError(
            f"{path}: expected a dict with the state_dict under 'model' (the authors' format), got {keys}"
        )
    return obj["model"]


def pretrained_checkpoint(
    arch: str,
    quality: int,
    out: PathLike,
    *,
    mirror: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
) -> Path:
    """Write a benchmark checkpoint (``benchmark.models.checkpoint`` format) of the published
    ``(arch, quality)`` weights to ``out`` (atomically) and return ``out``.

    The file comes from :func:`fetch_published_weights` (same arguments, warnings and errors);
    its ``["model"]`` state_dict is loaded strictly into ``build_model(arch, size)`` (``size``:
    the architecture's ``paper_sizes[quality]``, empty for qres34m/qres17m), and the coder tables
    are computed once on the CPU (``finalize_for_coding``). The checkpoint has ``arch``, ``size``,
    ``lmbda`` (our λ scale), ``lmb`` (the authors'), ``metric`` ``mse``, ``rate_point`` (=
    quality), ``step`` None, ``coder_ready`` True, ``source`` (the URL), ``weights_file``,
    ``weights_sha256`` (computed), ``weights_verified`` (the published hash matched) and
    ``train_images_sha256`` ``[]``.

    Raises :class:`PublishedWeightsError` naming the file if it does not load into the architecture.
    """
    w = published_weights(arch, quality)
    path, sha, verified = fetch_published_weights(arch, quality, mirror=mirror, cache_dir=cache_dir)
    spec = ARCHITECTURES.get(arch)
    size = dict(spec.paper_sizes[quality]) if spec.paper_sizes else {}
    state_dict = _state_dict(path, verified)
    model = build_model(arch, size)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise PublishedWeightsError(f"{path}: does not load into {arch} {size or ''}: {e}") from None
    model = finalize_for_coding(model)
    return save_checkpoint(
        out,
        {
            "arch": arch,
            "size": size,
            "lmbda": w.lmbda,
            "lmb": w.lmb,
            "metric": "mse",
            "rate_point": quality,
            "step": None,
            "state_dict": model.state_dict(),
            "coder_ready": True,
            "source": w.url,
            "weights_file": w.file_name,
            "weights_sha256": sha,
            "weights_verified": verified,
            "train_images_sha256": [],
        },
    )
