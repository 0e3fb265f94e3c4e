"""Data set sources, one module each: ``kodak``, ``folder``, ``builtin``, ``bsds500``,
``wikipedia-photos`` (``wikipedia_photos``) and ``coco``; ``common`` holds what they share.

A source is a function ``fetch(cfg, options, images_dir, *, mirror) -> (rows, skipped)``
registered in ``DATASET_SOURCES`` with :func:`register_source` together with its options class,
the frozen pydantic dataclass of its own keys under ``datasets.<name>`` (``FolderOptions``,
``Bsds500Options``, ``CocoOptions``; ``NoOptions`` for a source without keys). It writes
``images_dir/<name>.png`` and returns the manifest rows and the ``(file, reason)`` of inputs it
skipped. Importing this package registers every built-in source; a plugin (``plugins`` in
params.yaml) registers its own the same way. ``benchmark.data.dataset.fetch_dataset`` builds a
data directory from one of them.
"""

from benchmark.data.sources.common import (
    DATASET_SOURCES,
    NoOptions,
    Skipped,
    Source,
    SourceFn,
    SourceResult,
    register_source,
    source_for,
    store_image,
)

# Registration order is the order DATASET_SOURCES.names() lists them in.
from benchmark.data.sources import kodak, folder, builtin, bsds500, wikipedia_photos, coco  # noqa: F401,I001

__all__ = [
    "DATASET_SOURCES",
    "NoOptions",
    "Skipped",
    "Source",
    "SourceFn",
    "SourceResult",
    "register_source",
    "source_for",
    "store_image",
]
