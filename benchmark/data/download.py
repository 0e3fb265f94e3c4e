"""Fetching files by URL: a local mirror first, then the network, always verified, always atomic."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional, Union
from urllib.parse import unquote, urlsplit

from benchmark.errors import BenchmarkError
from benchmark.fileio import atomic_write

PathLike = Union[str, "os.PathLike[str]"]

USER_AGENT = "compression-benchmark/0.1 (+python urllib)"


class DownloadError(BenchmarkError, RuntimeError):
    """A file could not be fetched or failed verification; names the URL, where it came from and why."""


def mirror_path(url: str, mirror: PathLike) -> Path:
    """Where ``url`` lives in a mirror directory laid out like ``wget -x``: ``mirror/<host>/<path>``.

    ``http://r0k.us/graphics/kodak/kodak/kodim01.png`` -> ``mirror/r0k.us/graphics/kodak/kodak/kodim01.png``.
    The host is lower-cased without port; the path is percent-decoded; a query string is kept as
    ``?query`` on the file name (as wget does). Raises ``ValueError`` for a URL without host or
    file name, or with ``.``/``..`` path segments.
    """
    parts = urlsplit(url)
    segments = unquote(parts.path).split("/")
    if not parts.hostname or not segments[-1] or any(s in (".", "..") for s in segments):
        raise ValueError(f"{url}: cannot map this URL into a mirror (needs a host and a file name, no '..')")
    rel = "/".join(s for s in segments if s) + (f"?{parts.query}" if parts.query else "")
    return Path(mirror) / parts.hostname.lower() / rel


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes. Raises ``OSError`` if it cannot be read."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _retryable(e: BaseException) -> bool:
    if isinstance(e, urllib.error.HTTPError):
        return e.code >= 500 or e.code == 429
    # URLError (connection refused, DNS), timeouts, resets and short reads.
    return isinstance(e, (urllib.error.URLError, OSError, http.client.HTTPException))


def _download(url: str, tmp: str, retries: int, timeout: float, backoff: float) -> None:
    """Download ``url`` into the file ``tmp``; 1 + ``retries`` attempts. Raises DownloadError."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp, open(tmp, "wb") as f:
                shutil.copyfileobj(resp, f, 1 << 20)
            return
        except Exception as e:
            if not _retryable(e) or attempt == retries:
                why = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else repr(e)
                raise DownloadError(
                    f"{url}: download from the network failed after {attempt + 1} attempt(s): {why}"
                ) from None
            time.sleep(backoff * 2**attempt)


def fetch_url(
    url: str,
    dest: PathLike,
    *,
    mirror: Optional[PathLike] = None,
    verify: Optional[Callable[[Path], None]] = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 0.5,
) -> Path:
    """Fetch ``url`` to ``dest`` and return ``dest`` as a ``Path``.

    If ``mirror`` is given and ``mirror_path(url, mirror)`` is a file, it is copied; otherwise the
    URL is downloaded (``urllib``; ``timeout`` seconds per attempt; retried up to ``retries``
    times on connection errors, timeouts and HTTP 5xx/429, sleeping ``backoff * 2**k`` seconds;
    other HTTP 4xx fail at once). The bytes go to a unique temp file beside ``dest``;
    ``verify(temp_path)`` (if given) raises ``ValueError`` with a reason to reject them. Only a
    verified file is moved to ``dest`` (``os.replace``); ``dest.parent`` is created.

    Raises ``DownloadError`` naming the URL, the origin (mirror file or network) and the reason;
    then ``dest`` is neither created nor changed and no temp file is left. A mirror file that
    fails verification is an error: there is no fallback to the network.
    """
    dest = Path(dest)

    def fill(tmp: str) -> None:
        src = mirror_path(url, mirror) if mirror is not None else None
        if src is not None and src.is_file():
            origin = f"mirror file {src}"
            try:
                shutil.copyfile(src, tmp)
            except OSError as e:
                raise DownloadError(f"{url}: cannot copy {origin}: {e}") from None
        else:
            origin = "network"
            _download(url, tmp, retries, timeout, backoff)
        if verify is not None:
            try:
                verify(Path(tmp))
            except ValueError as e:
                raise DownloadError(f"{url}: the file from the {origin} failed verification: {e}") from None

    atomic_write(dest, fill)
    return dest
