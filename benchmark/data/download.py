"""Fetching files by URL: a local mirror first, then the network, always verified, always atomic."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional, Tuple, Union
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


class _ShortBody(Exception):
    """Fewer bytes arrived than announced or expected (retryable): ``have`` bytes are in the temp
    file, and whether the server accepts ranges (``resumable``)."""

    def __init__(self, message: str, have: int, resumable: bool) -> None:
        super().__init__(message)
        self.have, self.resumable = have, resumable


def _retryable(e: BaseException) -> bool:
    if isinstance(e, urllib.error.HTTPError):
        return e.code >= 500 or e.code == 429
    # URLError (connection refused, DNS), timeouts, resets and short reads.
    return isinstance(e, (urllib.error.URLError, OSError, http.client.HTTPException, _ShortBody))


def _content_range(value: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    """(first byte, total length) of a ``Content-Range: bytes first-last/total`` header; None
    for what it does not say (``*`` total, or no header)."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    return int(m.group(1)), (None if m.group(3) == "*" else int(m.group(3)))


def _attempt(url: str, tmp: str, have: int, resumable: bool, timeout: float) -> Tuple[int, Optional[int], bool]:
    """One request: ``Range: bytes=<have>-`` when ``have`` bytes are in ``tmp`` and the server
    said it accepts ranges, else the whole file. Appends a 206 reply that starts at ``have``;
    otherwise rewrites ``tmp``. Returns (bytes now in ``tmp``, the full length the server
    announced or None, whether it accepts ranges); raises ``_ShortBody`` if fewer bytes came
    than it announced."""
    headers = {"User-Agent": USER_AGENT}
    if have and resumable:
        headers["Range"] = f"bytes={have}-"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
        if resp.status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != have:
                got = resp.headers.get("Content-Range")
                raise http.client.HTTPException(f"asked for bytes from {have}, got Content-Range {got!r}")
        else:  # the whole file: start over
            have, start, total = 0, 0, None
        length = resp.headers.get("Content-Length")
        body = int(length) if length is not None and length.isdigit() else None
        if total is None and body is not None:
            total = start + body
        resumable = resumable or resp.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        # Read to the end of the connection, not only the announced length (urllib asks the
        # server to close it after the reply), so that a body longer than its Content-Length is
        # seen rather than silently cut there by http.client.
        if body is not None and not resp.chunked:
            resp.length = None
        received = 0
        try:
            with open(tmp, "ab" if have else "wb") as f:
                f.truncate(have)
                while True:
                    if body is not None and received >= body:
                        _shorten_timeout(resp, OVERRUN_GRACE_S)  # a server that keeps the connection open
                    try:
                        chunk = resp.read1(1 << 20)  # what has arrived: a stall keeps it
                    except (TimeoutError, socket.timeout):
                        if body is not None and received >= body:
                            break  # all announced bytes are here and no more came
                        raise
                    if not chunk:
                        break
                    received += len(chunk)
                    if body is not None and received > body:
                        raise DownloadError(
                            f"{url}: the server sent more than the {body} bytes its Content-Length announced"
                        )
                    f.write(chunk)
                have = f.tell()
        except (OSError, http.client.HTTPException) as e:  # a stalled (timeout) or reset body
            got = os.path.getsize(tmp)
            of = f" of {total}" if total else ""
            raise _ShortBody(f"the body broke off after {got}{of} bytes: {e!r}", got, resumable) from e
    if total is not None and have < total:
        raise _ShortBody(f"the connection ended after {have} of the {total} bytes announced", have, resumable)
    return have, total, resumable


OVERRUN_GRACE_S = 2.0  # after the announced bytes, how long to wait for the server to close


def _shorten_timeout(resp, seconds: float) -> None:
    """Lower the read timeout of ``resp``'s socket to ``seconds`` (where it can be reached)."""
    sock = getattr(getattr(resp.fp, "raw", None), "_sock", None)
    if sock is not None and (sock.gettimeout() is None or sock.gettimeout() > seconds):
        sock.settimeout(seconds)


def _download(url: str, tmp: str, retries: int, timeout: float, backoff: float, size: Optional[int] = None) -> None:
    """Download ``url`` into the file ``tmp``; 1 + ``retries`` attempts. A body shorter than
    its ``Content-Length`` (or than ``size``, the expected length, when known) is retried,
    resumed with an HTTP ``Range`` request where the server sent ``Accept-Ranges: bytes``, from
    scratch otherwise. Raises DownloadError naming the URL and the bytes received."""
    have, resumable = 0, False
    for attempt in range(retries + 1):
        try:
            have, total, resumable = _attempt(url, tmp, have, resumable, timeout)
            if size is not None and have != size:
                if have > size:
                    raise DownloadError(f"{url}: the network sent {have} bytes, {size} were expected")
                raise _ShortBody(f"the body ended after {have} of the {size} bytes expected", have, resumable)
            return
        except DownloadError:
            raise
        except Exception as e:
            if isinstance(e, _ShortBody):
                have, resumable = e.have, e.resumable
            else:
                have = os.path.getsize(tmp) if resumable and os.path.exists(tmp) else 0
            if not _retryable(e) or attempt == retries:
                why = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else (
                    str(e) if isinstance(e, _ShortBody) else repr(e))
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
    size: Optional[int] = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 0.5,
) -> Path:
    """Fetch ``url`` to ``dest`` and return ``dest`` as a ``Path``.

    If ``mirror`` is given and ``mirror_path(url, mirror)`` is a file, it is copied; otherwise the
    URL is downloaded (``urllib``; ``timeout`` seconds per attempt; retried up to ``retries``
    times on connection errors, timeouts and HTTP 5xx/429, sleeping ``backoff * 2**k`` seconds;
    other HTTP 4xx fail at once). A download is complete only when the bytes received equal the
    ``Content-Length`` the server announced (a 206 reply: its ``Content-Range`` total) and
    ``size`` (bytes), where given: a body cut short (the connection closed, or stalled past
    ``timeout``) is retried, resumed with an HTTP ``Range`` request where the server accepts
    ranges (``Accept-Ranges: bytes``), and never kept. A body longer than its
    ``Content-Length`` (more bytes before the server closes the connection, as urllib asks it
    to; a server that keeps it open is given ``OVERRUN_GRACE_S``) is an error, not retried.
    A mirror file must have ``size`` bytes too. The bytes go to a unique temp file beside ``dest``;
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
            if size is not None and os.path.getsize(tmp) != size:
                raise DownloadError(f"{url}: the {origin} has {os.path.getsize(tmp)} bytes, {size} were expected")
        else:
            origin = "network"
            _download(url, tmp, retries, timeout, backoff, size)
        if verify is not None:
            try:
                verify(Path(tmp))
            except ValueError as e:
                raise DownloadError(f"{url}: the file from the {origin} failed verification: {e}") from None

    atomic_write(dest, fill)
    return dest
