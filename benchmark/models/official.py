"""``models.<name>.source: file``: a weight file its authors published, already on this machine
(SIC's checkpoints: they sit in a Google Drive folder that cannot be fetched by URL and hash),
turned into a benchmark checkpoint. Never trained instead.

The architecture says how its authors' files load (``ModelSpec.file_loader``: for
``sic-official``, :func:`benchmark.models.sic.load_official_checkpoint`, which strips DDP's
``module.``, maps compressai 1.2.4's EntropyBottleneck names, drops the loss networks and the
Swin attention masks, and loads strictly). The coder tables are then computed once on the CPU
(``update(force=True)``), as for a trained model, and the checkpoint records where the weights
came from: the file's name, its SHA-256 and the path it was read from (``weights_file``,
``weights_sha256``, ``weights_path``), whether the SHA-256 was pinned in params.yaml and matched
(``weights_verified``), and what the user says the file is (``num_samples``, ``gan``), which
the file itself does not carry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

from benchmark.data.download import sha256_file
from benchmark.errors import BenchmarkError
from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
from benchmark.models.specs import ARCHITECTURES, build_model

PathLike = Union[str, "os.PathLike[str]"]


class WeightFileError(BenchmarkError, ValueError):
    """A ``source: file`` weight file is missing, has another SHA-256 than the pinned one, or the
    architecture reads no such files; the message names the file and where to get it."""


def file_checkpoint(
    arch: str,
    path: PathLike,
    out: PathLike,
    *,
    sha256: Optional[str] = None,
    meta: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write a benchmark checkpoint of the authors' weight file ``path`` for architecture
    ``arch`` to ``out`` (atomically); returns ``out``.

    ``sha256``: the expected hex SHA-256 (None: not checked; the computed one is recorded either
    way). ``meta``: extra metadata stored with the checkpoint (the model stage's ``model``,
    ``num_samples``, ...). The checkpoint has ``arch``, ``size`` (``{}``: a fixed architecture),
    ``step`` None, ``coder_ready`` True, ``source`` ``file``, ``weights_file``,
    ``weights_sha256``, ``weights_path``, ``weights_verified``, ``train_images_sha256`` ``[]``
    (the authors' training set is not known here) and the architecture's ``file_meta``.

    Raises :class:`WeightFileError` for an architecture without a file loader or with size
    arguments, a missing file (naming it and ``ModelSpec.file_source``) or a SHA-256 mismatch,
    and what the loader raises for a file that does not fit (SIC: ``SICCheckpointError``, naming
    the file and the keys).
    """
    spec = ARCHITECTURES.get(arch)
    if spec.file_loader is None:
        with_files = sorted(n for n in ARCHITECTURES if ARCHITECTURES.get(n).file_loader is not None)
        raise WeightFileError(
            f"architecture {arch!r} reads no authors' weight files (source: file); those that do: {', '.join(with_files) or 'none'}"
        )
    if spec.size_args:
        raise WeightFileError(f"source: file needs a fixed architecture; {arch!r} takes sizes {list(spec.size_args)}")
    p = Path(path).expanduser()
    if not p.is_file():
        where = f" Get it from {spec.file_source}, and give its path as models.<name>.path in params.yaml." if spec.file_source else ""
        raise WeightFileError(f"{p}: weight file not found ({arch}, source: file).{where}")
    actual = sha256_file(p)
    if sha256 is not None and actual.lower() != sha256.lower():
        raise WeightFileError(f"{p}: SHA-256 is {actual}, but models.<name>.sha256 pins {sha256.lower()}")
    model = spec.file_loader()(build_model(arch, {}), p)
    model = finalize_for_coding(model)
    record = {
        "arch": arch,
        "size": {},
        "step": None,
        "state_dict": model.state_dict(),
        "coder_ready": True,
        "source": "file",
        "weights_file": p.name,
        "weights_sha256": actual,
        "weights_path": str(p.resolve()),
        "weights_verified": sha256 is not None,
        "train_images_sha256": [],
        **spec.file_meta,
    }
    return save_checkpoint(out, {**record, **(meta or {})})
