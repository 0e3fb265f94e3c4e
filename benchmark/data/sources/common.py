"""What every data set source shares: the registry, the ``Source`` record, and the helpers that
select names, fetch and verify files and make manifest rows.

A source is a function ``fetch(cfg, options, images_dir, *, mirror) -> (rows, skipped)``
registered with :func:`register_source` together with its options class, the frozen pydantic
dataclass of its own keys under ``datasets.<name>`` (defaults live there). It writes
``images_dir/<name>.png`` (8-bit RGB) and returns the manifest rows and a list of
``(file, reason)`` for inputs it skipped.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple
from urllib.parse import unquote, urlsplit

import numpy as np
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as options_dataclass

from benchmark.config import DATASET_KEYS, ConfigError, DatasetConfig, parse_options
from benchmark.data.download import fetch_url, sha256_file
from benchmark.data.images import ManifestRow, load_rgb8, pixel_sha256, save_png_atomic
from benchmark.registry import Registry, unknown_name

Skipped = List[Tuple[str, str]]
SourceResult = Tuple[List[ManifestRow], Skipped]

STRICT = ConfigDict(extra="forbid")
"""The pydantic config of every options class: an unknown key is an error."""


class SourceFn(Protocol):
    """The signature of a source function (see the module docstring)."""

    def __call__(self, cfg: DatasetConfig, options: Any, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
        ...


@options_dataclass(frozen=True, config=STRICT)
class NoOptions:
    """The options of a source without keys of its own (``kodak``, ``builtin``,
    ``wikipedia-photos``): any key besides the common ones is refused."""


@dataclass(frozen=True)
class Source:
    """A registered data set source: its ``fetch`` function and its ``options`` class (a frozen
    pydantic dataclass with ``extra="forbid"``)."""

    fetch: SourceFn
    options: type = NoOptions

    def parse_options(self, cfg: DatasetConfig) -> Any:
        """``cfg.options`` (the entry's source-specific keys) as an instance of ``self.options``.

        Raises ``ConfigError`` naming ``datasets.<name>`` and the key: an unknown key (listing
        the valid names, the common keys ``source, images, max_images, references`` included,
        and the closest one), a missing required one, or a value of the wrong type or range.
        """
        where = f"datasets.{cfg.name}"
        fields = dataclasses.fields(self.options)
        own = [f.name for f in fields]
        unknown = [str(k) for k in cfg.options if k not in own]
        if unknown:
            raise ConfigError(str(unknown_name("key", unknown[0], [*DATASET_KEYS, *own], where)))
        for f in fields:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in cfg.options:
                raise ConfigError(f"{where}.{f.name}: missing; the {cfg.source!r} source requires it")
        return parse_options(self.options, cfg.options, where)


DATASET_SOURCES: Registry[Source] = Registry("dataset source")


def register_source(name: str, options: type = NoOptions) -> Callable[[SourceFn], SourceFn]:
    """Decorator: register the decorated source function as ``name`` with its ``options`` class
    in ``DATASET_SOURCES``; returns the function unchanged. ``ValueError`` if ``name`` is taken."""

    def deco(fn: SourceFn) -> SourceFn:
        DATASET_SOURCES.add(name, Source(fetch=fn, options=options))
        return fn

    return deco


def source_for(cfg: DatasetConfig) -> Source:
    """The ``Source`` registered as ``cfg.source``. Raises ``ConfigError`` naming
    ``datasets.<name>.source`` with the known sources and the closest one."""
    if cfg.source not in DATASET_SOURCES:
        e = unknown_name("source", cfg.source, DATASET_SOURCES.names(), f"datasets.{cfg.name}.source")
        raise ConfigError(str(e))
    return DATASET_SOURCES.get(cfg.source)


def _select(
    cfg: DatasetConfig, known: Sequence[str], default: Optional[Sequence[str]] = None, *, apply_max: bool = True
) -> List[str]:
    """Names to use, sorted: ``cfg.images`` (else ``default``, else all ``known``), then the first
    ``cfg.max_images`` if ``apply_max``. Raises ``ConfigError`` for names not in ``known``."""
    wanted = cfg.images if cfg.images is not None else default
    if wanted is None:
        chosen = sorted(known)
    else:
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ConfigError(
                f"datasets.{cfg.name}.images: unknown image(s) {unknown} for source {cfg.source!r}; "
                f"known: {', '.join(sorted(known))}"
            )
        chosen = sorted(set(wanted))
    return chosen[: cfg.max_images] if apply_max and cfg.max_images is not None else chosen


def _row(name: str, images_dir: Path, arr: np.ndarray, origin: str) -> ManifestRow:
    """The manifest row of ``images_dir/<name>.png`` holding the ``(H, W, 3) uint8`` pixels ``arr``."""
    return ManifestRow(
        name=name,
        file=f"{images_dir.name}/{name}.png",
        height=int(arr.shape[0]),
        width=int(arr.shape[1]),
        pixel_sha256=pixel_sha256(arr),
        origin=origin,
    )


def store_image(name: str, arr: np.ndarray, images_dir: Path, origin: str) -> ManifestRow:
    """Write the ``(H, W, 3) uint8`` pixels ``arr`` as ``images_dir/<name>.png`` (lossless,
    atomically) and return its manifest row (``origin``: where the image came from). For
    sources that make or convert images, plugins included. Raises ``ImageError`` for an array
    that is not uint8 (H, W, 3)."""
    save_png_atomic(arr, images_dir / f"{name}.png")
    return _row(name, images_dir, arr, origin)


def _fetch_pixel_verified(url: str, name: str, label: str, expected: str, images_dir: Path, mirror: Optional[Path]) -> ManifestRow:
    """Fetch ``url`` (mirror first) to ``images_dir/<name>.png``, kept only if its decoded pixels
    have SHA-256 ``expected``; the manifest row. Raises ``DownloadError`` naming the URL, and
    ``label`` (the upstream file name) with both hashes when the pixels differ."""
    decoded: List[np.ndarray] = []

    def verify(tmp: Path) -> None:
        arr = load_rgb8(tmp)  # an ImageError is a ValueError: fetch_url reports it
        actual = pixel_sha256(arr)
        if actual != expected:
            raise ValueError(f"{label}: pixel SHA-256 is {actual}, expected {expected}")
        decoded.append(arr)

    fetch_url(url, images_dir / f"{name}.png", mirror=mirror, verify=verify)
    return _row(name, images_dir, decoded[-1], url)


def _fetch_decoded(
    url: str, scratch: Path, *, mirror: Optional[Path], sha256: Optional[str], what: str
) -> np.ndarray:
    """Fetch ``url`` (mirror first) into the directory ``scratch``, check the SHA-256 of its file
    bytes against ``sha256`` (if given) and decode it with ``load_rgb8`` (default minimum side).
    Returns the ``(H, W, 3) uint8`` pixels; the downloaded file is deleted again.

    Raises ``DownloadError`` naming the URL if it cannot be fetched (after ``fetch_url``'s retries),
    its hash differs (message names ``what`` and both hashes) or it does not decode.
    """
    decoded: List[np.ndarray] = []

    def verify(tmp: Path) -> None:
        if sha256 is not None:
            actual = sha256_file(tmp)
            if actual != sha256:
                raise ValueError(f"{what}: file SHA-256 is {actual}, expected {sha256}")
        decoded.append(load_rgb8(tmp))  # an ImageError is a ValueError: fetch_url reports it

    dest = fetch_url(url, scratch / unquote(urlsplit(url).path).rsplit("/", 1)[-1], mirror=mirror, verify=verify)
    dest.unlink()
    return decoded[-1]


def _hash_table(file_name: str, pattern: "re.Pattern[str]", key: Callable[["re.Match[str]"], str], form: str) -> Dict[str, str]:
    """Image name -> SHA-256 from the package data file ``benchmark/data/<file_name>``: one
    ``pattern`` match per line (group 1 the hash, ``key(match)`` the name), ``#`` comments and
    blank lines skipped. Raises ``RuntimeError`` naming the file and line for a line that does
    not match ``form`` or repeats a name."""
    res = importlib.resources.files("benchmark.data").joinpath(file_name)
    table: Dict[str, str] = {}
    for line_no, line in enumerate(res.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        m = pattern.match(line)
        if m is None or key(m) in table:
            raise RuntimeError(f"{res}: line {line_no}: expected '{form}' (once), got {line!r}")
        table[key(m)] = m[1]
    return table
