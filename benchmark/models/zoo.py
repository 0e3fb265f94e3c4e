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
from benchmark.errors import BenchmarkError
from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
from benchmark.models.specs import ARCHITECTURES
from benchmark.models.weights import WeightsHashError, WeightsUnavailableError, fetch_weight_file, url_file_name

__all__ = [
    "METRICS",
    "CompressAIWeightsError",
    "compressai_architectures",
    "compressai_file_checkpoint",
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


class CompressAIWeightsError(BenchmarkError, RuntimeError):
    """CompressAI weights (the zoo's, or a checkpoint file of yours) that cannot be read or do not
    load into the architecture named; the message names the file and what is wrong."""


def _zoo_table():
    ensure_torchvision_importable()
    import compressai.zoo.image

    return compressai.zoo.image


def compressai_architectures() -> Tuple[str, ...]:
    """The names in ``ARCHITECTURES`` that are CompressAI zoo architectures (``ModelSpec.zoo`` a
    key of ``compressai.zoo.image.model_architectures``), sorted: the ``-a`` names of
    ``python -m compressai.utils.eval_model checkpoint`` that the benchmark codes."""
    table = _zoo_table().model_architectures
    return tuple(sorted(n for n in ARCHITECTURES if ARCHITECTURES.get(n).zoo in table))


def _short(e: BaseException, limit: int = 400) -> str:
    """``Type: message`` on one line (whitespace collapsed), cut to about ``limit`` characters."""
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _model_from_state_dict(arch: str, state_dict: object, path: Path) -> Tuple[torch.nn.Module, Dict[str, int]]:
    """(model ready for coding, its channel counts) from a CompressAI state_dict, loaded as
    ``compressai.zoo`` does (``load_pretrained`` renames old keys, ``from_state_dict`` infers the
    channel counts and loads strictly); the CDF tables then computed once on the CPU
    (``finalize_for_coding``, i.e. ``update(force=True)``). Raises :class:`CompressAIWeightsError`
    naming ``path`` (the file the weights came from) when they do not load into ``arch``."""
    spec = ARCHITECTURES.get(arch)
    zoo = _zoo_table()
    if spec.zoo not in zoo.model_architectures:
        raise CompressAIWeightsError(
            f"{path}: {arch!r} is not a CompressAI architecture; CompressAI's: {', '.join(compressai_architectures())}"
        )
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        what = type(state_dict).__name__ if not isinstance(state_dict, dict) else "a dict with non-tensor values"
        raise CompressAIWeightsError(f"{path}: expected a state_dict (parameter name -> tensor), got {what}")
    try:
        model = zoo.model_architectures[spec.zoo].from_state_dict(zoo.load_pretrained(state_dict))
    except Exception as e:  # missing keys (KeyError), shape mismatches and unexpected keys (RuntimeError), ...
        raise CompressAIWeightsError(f"{path}: does not load into CompressAI {arch} ({_short(e)})") from None
    model = finalize_for_coding(model)
    size = {}
    for k in spec.size_args:
        v = getattr(model, k, None)
        if isinstance(v, bool) or not isinstance(v, int):
            raise CompressAIWeightsError(f"{path}: the loaded {arch} model has no integer channel count {k!r}")
        size[k] = int(v)
    return model, size


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

    Raises :class:`CompressAIWeightsError` (a ``RuntimeError``) naming the weight file if it
    does not load into the architecture.
    """
    url = zoo_url(arch, quality, metric)
    path = fetch_zoo_weights(arch, quality, metric=metric, mirror=mirror, cache_dir=cache_dir)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt or non-tensor pickles
        raise CompressAIWeightsError(f"{path}: cannot load as CompressAI {arch} weights ({type(e).__name__}: {e})") from None
    model, size = _model_from_state_dict(arch, state_dict, path)
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


# The keys under which ``compressai.utils.eval_model`` looks for the state_dict in a checkpoint
# file (``load_checkpoint``; the last one present wins); a file without any is the state_dict itself.
STATE_DICT_KEYS = ("network", "state_dict", "model_state_dict")


def compressai_file_checkpoint(arch: str, path: PathLike, out: PathLike, rate_point: int) -> Path:
    """Write a benchmark checkpoint of a CompressAI checkpoint file of yours to ``out``
    (atomically); returns ``out``.

    ``path`` is a file as ``python -m compressai.utils.eval_model checkpoint -a ARCH -p PATH``
    reads it: ``torch.save`` of a state_dict, or of a dict holding it under ``network``,
    ``state_dict`` or ``model_state_dict`` (CompressAI's ``examples/train.py`` saves
    ``{"epoch", "state_dict", "optimizer", ...}``); read weights-only (tensors and plain
    containers, no arbitrary objects). ``arch``: a name of :func:`compressai_architectures`.
    The weights load as CompressAI's zoo weights do, and the entropy coder's CDF tables are
    recomputed (``update(force=True)``, as ``eval_model`` does unless ``--no-update``), whether
    or not the file holds them. ``rate_point``: the quality index (1..8) the codec names this
    checkpoint by. The checkpoint records ``source`` ``file``, ``weights_file`` (the file name),
    ``weights_sha256``, ``epoch`` (the file's, where it has an integer one; CompressAI's
    training script counts epochs, not steps), ``step`` None and ``lmbda`` None (the file does
    not say).

    Raises :class:`CompressAIWeightsError` naming ``path``: missing, unreadable weights-only,
    not a state_dict, or weights that do not fit ``arch`` (missing, unexpected or misshapen keys).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise CompressAIWeightsError(f"{p}: checkpoint file not found")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for corrupt files and pickled objects
        raise CompressAIWeightsError(
            f"{p}: cannot read as a torch checkpoint of tensors (weights-only load: {_short(e)})"
        ) from None
    state_dict, epoch = obj, None
    if isinstance(obj, dict):
        for key in STATE_DICT_KEYS:
            if key in obj:
                state_dict = obj[key]
        epoch = obj.get("epoch") if isinstance(obj.get("epoch"), int) else None
    model, size = _model_from_state_dict(arch, state_dict, p)
    return save_checkpoint(
        out,
        {
            "arch": arch,
            "size": size,
            "lmbda": None,
            "rate_point": rate_point,
            "step": None,
            "epoch": epoch,
            "state_dict": model.state_dict(),
            "coder_ready": True,
            "source": "file",
            "weights_file": p.name,
            "weights_sha256": sha256_file(p),
            "train_images_sha256": [],
        },
    )
