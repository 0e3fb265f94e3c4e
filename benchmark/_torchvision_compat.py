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

Every process of the environment, not only this package's: the project's install also puts this
file into site-packages as the top-level module ``_compression_benchmark_torchvision`` plus
``compression_benchmark_torchvision.pth`` (pyproject.toml: ``force-include``), whose line
Python's :mod:`site` runs at start-up: it calls :func:`install_import_hook`, which puts
:class:`TorchvisionImportHook` first on :data:`sys.meta_path`. The hook does nothing until the
top-level ``torchvision`` is first imported (CompressAI's CLIs, lpips, piq, torch-fidelity, ...);
then it removes itself, calls :func:`ensure_torchvision_importable` and lets the regular import
machinery import torchvision. Start-up cost: importing this module (``sys`` only; torch and the
``benchmark`` package are not imported). The top-level copy is self-contained on purpose, so that
it never resolves ``benchmark`` by name (which could pick up another directory of that name).
An editable install keeps a *copy*: rerun ``make install`` after editing this file.
"""

from __future__ import annotations

import sys

_LIB = None  # keeps the torch.library.Library alive (dropping it removes the definitions)


def _extension_loads() -> bool:
    """True if torchvision's compiled ops can be loaded into this torch."""
    import importlib.util

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


class TorchvisionImportHook:
    """A one-shot :data:`sys.meta_path` entry: runs the fix when ``torchvision`` is first looked up.

    Then it leaves :data:`sys.meta_path` and answers with the spec the remaining finders give (the
    import system iterates the live list, so it is not left to carry on past a removed entry).
    """

    MARK = "compression-benchmark torchvision hook"  # recognises copies of this class

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        uninstall_import_hook()  # step aside first: the fix imports torch and looks torchvision up
        try:
            ensure_torchvision_importable()
        except Exception:  # noqa: BLE001 - never break the import; torchvision reports its own error
            install_import_hook()  # e.g. torch missing or broken: try again at the next import
        for finder in [f for f in sys.meta_path if not _is_hook(f)]:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                return spec
        return None

    @classmethod
    def invalidate_caches(cls) -> None:
        pass


def _is_hook(finder) -> bool:
    return getattr(finder, "MARK", None) == TorchvisionImportHook.MARK


def install_import_hook() -> None:
    """Run :func:`ensure_torchvision_importable` just before torchvision's first import.

    Idempotent; a no-op once torchvision is imported. Called at start-up by the installed .pth.
    """
    if "torchvision" in sys.modules or any(_is_hook(f) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, TorchvisionImportHook)


def uninstall_import_hook() -> None:
    """Take the hook (any copy of it) off :data:`sys.meta_path`; idempotent."""
    sys.meta_path[:] = [f for f in sys.meta_path if not _is_hook(f)]
