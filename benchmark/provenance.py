"""Provenance recorded with every result row: versions, git revision, params hash, device."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence

CORE_PACKAGES = ("compression-benchmark", "numpy", "pillow", "torch", "pytorch-msssim", "scipy")
PACKAGE_DIR = Path(__file__).resolve().parent


def package_versions(names: Iterable[str] = CORE_PACKAGES) -> str:
    """``"name=version;..."`` for the installed distributions (``missing`` when absent)."""
    out = []
    for n in names:
        try:
            out.append(f"{n}={metadata.version(n)}")
        except metadata.PackageNotFoundError:
            out.append(f"{n}=missing")
    return ";".join(out)


def _git(args: Sequence[str], cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)


@functools.lru_cache(maxsize=None)
def git_revision(paths: Sequence[str] = (), cwd: str = ".") -> str:
    """The checked-out commit, with ``+dirty`` when the sources of the results differ from it:
    tracked files modified under the installed package's directory or among ``paths`` (the
    params files read). Files the pipeline itself writes (results, dvc.lock) do not count, so a
    run from a clean checkout records a clean revision. ``unknown`` outside a git work tree."""
    try:
        rev = _git(["rev-parse", "HEAD"], cwd)
        top = _git(["rev-parse", "--show-toplevel"], cwd)
        if rev.returncode != 0 or top.returncode != 0:
            return "unknown"
        root = Path(top.stdout.strip()).resolve()
        inside = [str(p) for p in (PACKAGE_DIR, *(Path(p).resolve() for p in paths)) if p == root or root in p.parents]
        if not inside:
            return rev.stdout.strip()
        dirty = _git(["status", "--porcelain", "--untracked-files=no", "--", *inside], cwd)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=None)
def _cpu_model() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


@functools.lru_cache(maxsize=None)
def _nvidia_driver() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


@functools.lru_cache(maxsize=None)
def device_description(device: str = "cpu") -> str:
    """``cpu: <CPU model>``, or for a CUDA device ``cuda:<i>: <GPU name> (driver <version>,
    CUDA <version>)``, for the ``device`` column."""
    if not str(device).startswith("cuda"):
        return f"cpu: {_cpu_model()}"
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    name = torch.cuda.get_device_name(index)
    return f"cuda:{index}: {name} (driver {_nvidia_driver()}, CUDA {torch.version.cuda})"


def devices_column(devices: Sequence[str], coding: Optional[str] = None) -> str:
    """The ``device`` column: the description of the device that coded the images and scored
    them (``devices``: the codec's device, then the metrics' device), or, when they differ,
    ``coding: <...>; metrics: <...>``. ``coding``: the coding device's description when it was
    made elsewhere (a Ray worker: ``cpu: <CPU> on ray node <host>``), used instead of this
    machine's."""
    described = [device_description(str(d)) for d in devices] or [device_description("cpu")]
    if coding is not None:
        described[0] = coding
    if len(set(described)) == 1:
        return described[0]
    return f"coding: {described[0]}; metrics: {described[1]}"


def provenance(params_hash: str, codec_library: str, devices: Sequence[str] = ("cpu",), params_files: Sequence[Path] = ()) -> Dict[str, str]:
    """The provenance columns of a result row: the libraries that coded the bytes, the package
    versions, the git revision (see ``git_revision``), the params hash of the codec entry and
    the device(s) (``devices_column``)."""
    return {
        "codec_library": codec_library,
        "packages": package_versions(),
        "git_rev": git_revision(tuple(str(p) for p in params_files)),
        "params_hash": params_hash,
        "device": devices_column(devices),
    }
