"""Published weight files: where they are kept, how they are fetched and checked.

One policy for every source of pretrained weights (CompressAI's zoo, ``benchmark.models.zoo``;
QRes-VAE's, ``benchmark.models.published``): a file is kept in the standard torch hub cache,
``$TORCH_HOME/hub/checkpoints/<URL basename>`` (where ``torch.hub.load_state_dict_from_url``
puts it too); a cached file is used without the network; otherwise it is copied from the mirror
(``<mirror>/<host>/<url path>``) or downloaded, with ``benchmark.data.download.fetch_url``; a
hash check, where one is given, runs before anything lands in the cache. When the file cannot be
had, :class:`WeightsUnavailableError` names it, its URL and where to put it; nothing is ever
trained instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union
from urllib.parse import unquote, urlsplit

import torch

from benchmark.data.download import DownloadError, fetch_url, mirror_path
from benchmark.errors import BenchmarkError

PathLike = Union[str, "os.PathLike[str]"]
Check = Callable[[Path], None]  # raises ValueError with the reason when a file is not the published one


class WeightsUnavailableError(BenchmarkError, RuntimeError):
    """Pretrained weights are neither in the cache nor fetchable; the message names the file, its
    URL and the path to put it at."""


class WeightsHashError(BenchmarkError, RuntimeError):
    """A weight file in the cache does not match its published hash; the message names the file."""


def url_file_name(url: str) -> str:
    """The file name a URL's path ends in (percent-decoded): ``.../qres34m-lmb32.pt`` -> ``qres34m-lmb32.pt``."""
    return unquote(urlsplit(url).path).rsplit("/", 1)[-1]


def hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (``torch.hub.get_dir()``, read at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def fetch_weight_file(
    url: str,
    *,
    what: str,
    check: Optional[Check] = None,
    mirror: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
) -> Path:
    """Path of the weight file of ``url`` in the cache, fetched there if absent.

    The file is ``cache_dir/<URL basename>`` (default :func:`hub_checkpoints_dir`). If it is there
    and passes ``check`` (None: no check), it is used as it is, without the network. Otherwise it
    is fetched with ``fetch_url``: from ``mirror/<host>/<path>`` if ``mirror`` holds it (None: no
    mirror), else from the URL; ``check`` runs on the fetched bytes before they are moved into the
    cache. ``what`` names the weights in messages, e.g. ``"CompressAI pretrained weights
    bmshj2018-hyperprior-3-6d87be32.pth.tar (bmshj2018-hyperprior, quality 3, mse)"``.

    Raises:
        WeightsHashError: the cached file fails ``check``; it is left as it is (delete it to fetch again).
        DownloadError: bytes were obtained (mirror or network) but fail ``check``; nothing is
            written to the cache, and a failing mirror file is not replaced by a download.
        WeightsUnavailableError: not cached and not fetchable (offline, no mirror copy, HTTP
            error); the message names the file, the URL and the path to put it at.
    """
    cache = Path(cache_dir) if cache_dir is not None else hub_checkpoints_dir()
    dest = cache / url_file_name(url)
    if dest.is_file():
        if check is not None:
            try:
                check(dest)
            except ValueError as e:
                raise WeightsHashError(
                    f"{dest}: cached {what} are corrupt or not the published file ({e}); delete it to fetch {url} again"
                ) from None
        return dest

    got_bytes = []

    def verify(tmp: Path) -> None:
        got_bytes.append(True)
        if check is not None:
            check(tmp)

    try:
        return fetch_url(url, dest, mirror=mirror, verify=verify)
    except DownloadError as e:
        if got_bytes:  # the file was had, but it is the wrong one: not a matter of availability
            raise
        where = f"the mirror {mirror} has no {mirror_path(url, mirror)}" if mirror is not None else "no mirror was given"
        raise WeightsUnavailableError(
            f"{what} are not available: not in the cache {cache}, {where}, and the download failed ({e}). "
            f"Download {url} and save it as {dest} (the torch hub cache; TORCH_HOME moves it), "
            f"or point the mirror (--mirror, data.mirror or BENCHMARK_MIRROR) at a directory holding "
            f"{mirror_path(url, '').as_posix()}. The benchmark does not train a replacement."
        ) from None
