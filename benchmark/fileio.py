"""Atomic file writes: a file appears complete or not at all.

Every output of the benchmark goes through :func:`atomic_write`: the content is written to a
unique temporary name in the destination directory (so parallel writers never collide), then
moved over the destination with ``os.replace``. On any error the temporary file is removed and
an existing destination is left as it was.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable, Union

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write(path: PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a unique temp name beside ``path``, then ``os.replace`` it.

    Creates ``path``'s parent directory. Returns ``path`` as a ``Path``. Re-raises whatever
    ``write`` raises, after removing the temp file.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(p.parent / f".{p.name}.{secrets.token_hex(6)}.tmp")
    open(tmp, "xb").close()  # unique name, created with the umask's permissions (unlike mkstemp)
    try:
        write(tmp)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return p


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
