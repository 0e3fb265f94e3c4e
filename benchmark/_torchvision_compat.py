"""Make PyPI's CUDA torchvision importable on a CPU-only torch.

PyPI ships torchvision built against CUDA torch. On the CPU torch wheel its C++ extension
does not load, and ``torchvision/_meta_registrations.py`` then fails at import with
``operator torchvision::nms does not exist`` because it registers fake (meta) kernels for
operators whose schema was never defined. lpips, torch-fidelity, piq and compressai all
import torchvision, so they fail too.

:func:`ensure_torchvision_importable` defines the schemas of the two operators that module
needs (``torchvision::nms`` and ``torchvision::qnms``) *only* when torchvision's extension
cannot provide them, before torchvision is first imported. Nothing else is patched: models and
transforms work; calling ``torchvision.ops.nms`` itself raises (no kernel), which this project
never does.
"""

from __future__ import annotations

import importlib.util
import sys

_LIB = None  # keeps the torch.library.Library alive (dropping it removes the definitions)


def _extension_loads() -> bool:
    """True if torchvision's compiled ops can be loaded into this torch."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # no torchvision: nothing to fix
    import glob
    import os

    for root in spec.submodule_search_locations:
        for lib in glob.glob(os.path.join(root, "_C*.so")):
            try:
                torch.ops.load_library(lib)
                return True
            except (OSError, RuntimeError):
                return False
    return False


def ensure_torchvision_importable() -> None:
    """Define ``torchvision::nms``/``qnms`` schemas if torchvision's extension cannot load.

    Idempotent; a no-op when torchvision is already imported, absent, or its ops load.
    """
    global _LIB
    if _LIB is not None or "torchvision" in sys.modules:
        return
    import torch

    if _extension_loads():
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - already defined by someone else
        return
    except (AttributeError, RuntimeError):
        pass
    _LIB = torch.library.Library("torchvision", "DEF")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
