"""Data sets: reading images as 8-bit RGB, fetching them (mirror first, verified), and the manifest.

``fetch_dataset`` builds a data directory (``images/``, ``manifest.csv``, ``skipped.csv``,
``references/``) from a ``datasets.<name>`` entry; ``python -m benchmark.data.fetch`` is the DVC stage.
"""

from benchmark.data.download import DownloadError, fetch_url, mirror_path, sha256_file
from benchmark.data.images import (
    IMAGE_SUFFIXES,
    MIN_SIDE,
    ImageError,
    ManifestError,
    ManifestRow,
    load_rgb8,
    pixel_sha256,
    read_manifest,
    save_png_atomic,
    write_manifest,
)
from benchmark.data.sources import (
    BUILTIN_IMAGES,
    DATASET_SOURCES,
    builtin_image_path,
    fetch_dataset,
    fetch_references,
)

__all__ = [
    "BUILTIN_IMAGES",
    "DATASET_SOURCES",
    "DownloadError",
    "IMAGE_SUFFIXES",
    "ImageError",
    "MIN_SIDE",
    "ManifestError",
    "ManifestRow",
    "builtin_image_path",
    "fetch_dataset",
    "fetch_references",
    "fetch_url",
    "load_rgb8",
    "mirror_path",
    "pixel_sha256",
    "read_manifest",
    "save_png_atomic",
    "sha256_file",
    "write_manifest",
]
