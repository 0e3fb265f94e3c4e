"""Atomic file writes: a file (or a whole directory) appears complete or not at all.

Every output file of the benchmark goes through :func:`atomic_write`: the content is written to
a unique temporary name in the destination directory (so parallel writers never collide), then
moved over the destination with ``os.replace``. On any error the temporary file is removed and
an existing destination is left as it was. A directory built from many files (a data set) goes
through :func:`replace_dir_atomic` in the same way.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, TypeVar, Union

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


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


def replace_dir_atomic(path: PathLike, build: Callable[[Path], T]) -> T:
    """Call ``build(tmp_dir)`` on a fresh, empty sibling directory of ``path``, then swap it in.

    ``tmp_dir`` is ``.<name>.tmp-<random>`` beside ``path`` (same file system, so the swap is a
    rename). Once ``build`` returns, an existing ``path`` (directory, file or link) is moved aside
    to ``.<name>.old-<random>``, ``tmp_dir`` is renamed to ``path`` and the old one is removed; if
    that rename fails the old one is moved back. Creates ``path``'s parent. Returns what ``build``
    returns. Re-raises whatever ``build`` (or the swap) raises, after removing ``tmp_dir``; an
    existing ``path`` is then left as it was.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.parent / f".{p.name}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        result = build(tmp)
        _swap_in(tmp, p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _swap_in(new: Path, path: Path) -> None:
    """Rename the directory ``new`` to ``path``, replacing (and then deleting) what was there."""
    if not os.path.lexists(path):
        os.replace(new, path)
        return
    old = path.parent / f".{path.name}.old-{secrets.token_hex(6)}"
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()
