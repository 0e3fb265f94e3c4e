"""CompressAI's pretrained ("zoo") weights: fetched, hash-checked and turned into checkpoints.

The weight files are the ones ``compressai.zoo`` downloads (``compressai.zoo.image.model_urls``),
kept in the standard torch hub cache (``$TORCH_HOME/hub/checkpoints/<file name>``, where
``torch.hub.load_state_dict_from_url`` puts them too). Their names end in
``-<first 8 hex digits of the file's SHA-256>.pth.tar`` (torch.hub's ``check_hash``
convention); every file is checked against that prefix before use. When the weights cannot be
had, :class:`WeightsUnavailableError` says where to put them: nothing is ever trained instead
(cache, mirror and messages: ``benchmark.models.weights``, shared with QRes-VAE's weights).

    path = fetch_zoo_weights("bmshj2018-hyperprior", 3, mirror=resolve_mirror(params))
    zoo_checkpoint("bmshj2018-hyperprior", 3, "models/zoo-hyperprior-q3.pt", mirror=...)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.data.download import sha256_file
from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
from benchmark.models.specs import ARCHITECTURES
from benchmark.models.weights import WeightsHashError, WeightsUnavailableError, fetch_weight_file, url_file_name

__all__ = [
    "METRICS",
    "ZOO_LAMBDAS",
    "WeightsHashError",
    "WeightsUnavailableError",
    "fetch_zoo_weights",
    "weights_hash_prefix",
    "zoo_checkpoint",
    "zoo_url",
]

PathLike = Union[str, "os.PathLike[str]"]

METRICS = ("mse", "ms-ssim")

# λ per quality 1..8 that CompressAI trained its zoo models with (docs/source/zoo.rst; the
# cheng2020 models use the first 6). mse: L = λ·255²·MSE + bpp; ms-ssim: L = λ·(1 - MS-SSIM) + bpp.
ZOO_LAMBDAS: Dict[str, Tuple[float, ...]] = {
    "mse": (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800),
    "ms-ssim": (2.40, 4.58, 8.73, 16.64, 31.73, 60.50, 115.37, 220.00),
}


def _zoo_table():
    ensure_torchvision_importable()
    import compressai.zoo.image

    return compressai.zoo.image


def zoo_url(arch: str, quality: int, metric: str = "mse") -> str:
    """URL of CompressAI's pretrained weights for ``arch`` (a name in ``ARCHITECTURES`` with a
    ``zoo`` entry, e.g. ``bmshj2018-hyperprior``), ``quality`` (1..8; 1..6 for cheng2020-*) and
    ``metric`` (``mse`` or ``ms-ssim``), from ``compressai.zoo.image.model_urls``.

    Raises ``ValueError`` listing the architectures, metrics or qualities that exist.
    """
    urls = _zoo_table().model_urls
    with_zoo = sorted(n for n in ARCHITECTURES if ARCHITECTURES.get(n).zoo in urls)
    if arch not in ARCHITECTURES or ARCHITECTURES.get(arch).zoo not in urls:
        raise ValueError(f"no CompressAI pretrained weights for architecture {arch!r}; available: {', '.join(with_zoo)}")
    table = urls[ARCHITECTURES.get(arch).zoo]
    if metric not in table:
        raise ValueError(f"{arch}: no pretrained weights for metric {metric!r}; available: {', '.join(sorted(table))}")
    if isinstance(quality, bool) or quality not in table[metric]:
        raise ValueError(
            f"{arch} ({metric}): no pretrained weights for quality {quality!r}; "
            f"available: {', '.join(str(q) for q in sorted(table[metric]))}"
        )
    return table[metric][quality]


def weights_hash_prefix(url: str) -> str:
    """The SHA-256 prefix in a weight file's name: ``...-446d5c7f.pth.tar`` -> ``446d5c7f``
    (``torch.hub.HASH_REGEX``). Raises ``ValueError`` if the name carries no prefix of at least 8
    hex digits (then the file could not be verified)."""
    name = url_file_name(url)
    m = torch.hub.HASH_REGEX.search(name)
    if m is None or len(m.group(1)) < 8:
        raise ValueError(f"{url}: the file name {name!r} has no '-<8+ hex digits of its SHA-256>.' part to verify it by")
    return m.group(1)


def _check_hash(path: Path, prefix: str) -> None:
    actual = sha256_file(path)
    if not actual.startswith(prefix):
        raise ValueError(f"{path.name}: SHA-256 is {actual}, expected one starting with {prefix} (from its name)")


def fetch_zoo_weights(
    arch: str,
    quality: int,
    *,
    metric: str = "mse",
    mirror: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
) -> Path:
    """Path of CompressAI's pretrained weight file for ``(arch, quality, metric)`` (``zoo_url``),
    hash-verified, in the torch hub cache.

    The file is ``cache_dir/<URL basename>`` (``cache_dir`` default
    ``Path(torch.hub.get_dir()) / "checkpoints"``, i.e. ``$TORCH_HOME/hub/checkpoints``, read at
    call time). If it is there and its SHA-256 starts with the prefix in its name, it is used
    without any network access. Otherwise it is fetched with ``fetch_url``: from
    ``mirror/<host>/<path>`` if ``mirror`` holds it (callers pass ``config.resolve_mirror(...)``;
    None: no mirror), else from the URL; only verified bytes land in the cache.

    Raises:
        ValueError: unknown arch/metric/quality (``zoo_url``).
        WeightsHashError: the cached file has a wrong hash; it is left as it is (delete it to
            fetch again).
        DownloadError: bytes were obtained (mirror or network) but fail the hash check; nothing is
            written to the cache.
        WeightsUnavailableError: not cached and not fetchable (offline, no mirror copy, HTTP
            error); the message names the file, the URL and the path to put it at.
    """
    url = zoo_url(arch, quality, metric)
    prefix = weights_hash_prefix(url)
    return fetch_weight_file(
        url,
        what=f"CompressAI pretrained weights {url_file_name(url)} ({arch}, quality {quality}, {metric})",
        check=lambda path: _check_hash(path, prefix),
        mirror=mirror,
        cache_dir=cache_dir,
    )


def zoo_checkpoint(
    arch: str,
    quality: int,
    out: PathLike,
    *,
    metric: str = "mse",
    mirror: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
) -> Path:
    """Write a benchmark checkpoint (``benchmark.models.checkpoint`` format) of CompressAI's
    pretrained ``(arch, quality, metric)`` model to ``out`` (atomically) and return ``out``.

    The weights come from ``fetch_zoo_weights`` (same arguments and errors) and are loaded as
    ``compressai.zoo`` does (``load_pretrained`` renames old keys, ``from_state_dict`` infers the
    channel counts); the CDF tables are then computed once on the CPU (``finalize_for_coding``).
    The checkpoint has ``arch``, ``size`` (the ``ARCHITECTURES[arch].size_args`` channel counts
    of the loaded model), ``lmbda`` (``ZOO_LAMBDAS[metric][quality - 1]``), ``metric``,
    ``rate_point`` (= quality, an int), ``step`` None, ``coder_ready`` True, ``source`` (the URL),
    ``weights_sha256`` (of the weight file) and ``train_images_sha256`` ``[]``.

    Raises ``RuntimeError`` naming the weight file if it does not load into the architecture.
    """
    url = zoo_url(arch, quality, metric)
    path = fetch_zoo_weights(arch, quality, metric=metric, mirror=mirror, cache_dir=cache_dir)
    spec = ARCHITECTURES.get(arch)
    zoo = _zoo_table()
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        state_dict = zoo.load_pretrained(state_dict)
        model = zoo.model_architectures[spec.zoo].from_state_dict(state_dict)
    except Exception as e:  # torch.load, key errors and shape mismatches raise many types
        raise RuntimeError(f"{path}: cannot load as CompressAI {arch} weights ({type(e).__name__}: {e})") from None
    model = finalize_for_coding(model)
    size = {}
    for k in spec.size_args:
        v = getattr(model, k, None)
        if isinstance(v, bool) or not isinstance(v, int):
            raise RuntimeError(f"{path}: the loaded {arch} model has no integer channel count {k!r}")
        size[k] = int(v)
    return save_checkpoint(
        out,
        {
            "arch": arch,
            "size": size,
            "lmbda": ZOO_LAMBDAS[metric][quality - 1],
            "metric": metric,
            "rate_point": quality,
            "step": None,
            "state_dict": model.state_dict(),
            "coder_ready": True,
            "source": url,
            "weights_sha256": sha256_file(path),
            "train_images_sha256": [],
        },
    )
