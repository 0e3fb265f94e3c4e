"""The data directory of one ``datasets.<name>`` entry, built by :func:`fetch_dataset`::

    images/<name>.png   8-bit RGB PNGs, the pixels every codec compresses
    manifest.csv        name,file,height,width,pixel_sha256,origin (see ``images.ManifestRow``)
    skipped.csv         file,reason for input files that were left out (folder source)
    references/         published RD curves (results JSON) listed in ``datasets.<name>.references``

The images come from the entry's source (``benchmark.data.sources``); the whole directory is
replaced at once, only when everything has been fetched and verified.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, List, Optional, Sequence
from urllib.parse import unquote, urlsplit

from benchmark.config import ConfigError, DatasetConfig
from benchmark.data.download import fetch_url
from benchmark.data.images import write_manifest
from benchmark.data.sources import Skipped, Source, SourceResult, source_for
from benchmark.fileio import replace_dir_atomic


def _verify_results_json(path: Path) -> None:
    """``ValueError`` unless ``path`` is an RD results JSON (``fetch_url``'s ``verify``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise ValueError(f"not valid JSON ({e})") from None
    ok = isinstance(data, dict) and (
        (isinstance(data.get("results"), dict) and "bpp" in data["results"]) or isinstance(data.get("bpp"), list)
    )
    if not ok:
        raise ValueError("not an RD results JSON: expected a 'results' mapping with 'bpp' or a top-level 'bpp' list")


def fetch_references(urls: Sequence[str], out_dir: Path, *, mirror: Optional[Path]) -> List[Path]:
    """Fetch each results-JSON URL to ``out_dir/<basename>``, checking it is an RD results JSON.

    Raises ``ConfigError`` if two URLs share a basename, ``DownloadError`` if one cannot be
    fetched or is not a results JSON (a ``results`` mapping with ``bpp``, or a top-level ``bpp`` list).
    """
    out_dir = Path(out_dir)
    names = [unquote(urlsplit(u).path).rsplit("/", 1)[-1] for u in urls]
    for u, n in zip(urls, names):
        if not n or names.count(n) > 1:
            raise ConfigError(f"references: URL {u} has an empty or duplicate file name {n!r}")
    return [fetch_url(u, out_dir / n, mirror=mirror, verify=_verify_results_json) for u, n in zip(urls, names)]


def _write_skipped(data_dir: Path, skipped: Skipped) -> None:
    """``data_dir/skipped.csv``: a ``file,reason`` header and one row per skipped input."""
    with open(data_dir / "skipped.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("file", "reason"))
        w.writerows(skipped)


def _fill(data_dir: Path, cfg: DatasetConfig, source: Source, options: Any, mirror: Optional[Path]) -> SourceResult:
    """Fill the empty directory ``data_dir`` (layout in the module docstring)."""
    images_dir = data_dir / "images"
    images_dir.mkdir()
    rows, skipped = source.fetch(cfg, options, images_dir, mirror=mirror)
    write_manifest(data_dir, rows)
    _write_skipped(data_dir, skipped)
    (data_dir / "references").mkdir()
    fetch_references(cfg.references, data_dir / "references", mirror=mirror)
    return rows, skipped


def fetch_dataset(cfg: DatasetConfig, out_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """Build the data directory ``out_dir`` for ``cfg`` (layout in the module docstring).

    The source ``cfg.source`` is looked up in ``DATASET_SOURCES`` and ``cfg.options`` parsed
    strictly as its options class before anything is written. Everything is then built in a
    fresh sibling directory that replaces ``out_dir`` (``fileio.replace_dir_atomic``); on any
    error it is removed and an existing ``out_dir`` is left untouched. ``mirror``: a directory
    laid out as ``<host>/<url path>``, tried before the network (None: network only).
    Returns the manifest rows and the skipped ``(file, reason)`` list.

    Raises ``ConfigError`` (unknown source, unknown or bad option, bad selection, ...) naming
    ``datasets.<name>`` and the key, ``DownloadError`` or ``ImageError`` naming the file.
    """
    source = source_for(cfg)
    options = source.parse_options(cfg)
    return replace_dir_atomic(Path(out_dir), lambda tmp: _fill(tmp, cfg, source, options, mirror))
