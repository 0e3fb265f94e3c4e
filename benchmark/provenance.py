"""Provenance recorded with every result row: versions, git revision, params hash, device."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterable

CORE_PACKAGES = ("compression-benchmark", "numpy", "pillow", "torch", "pytorch-msssim")


def package_versions(names: Iterable[str] = CORE_PACKAGES) -> str:
    """``"name=version;..."`` for the installed distributions (``missing`` when absent)."""
    out = []
    for n in names:
        try:
            out.append(f"{n}={metadata.version(n)}")
        except metadata.PackageNotFoundError:
            out.append(f"{n}=missing")
    return ";".join(out)


@functools.lru_cache(maxsize=None)
def git_revision(cwd: str = ".") -> str:
    """The checked-out commit (``+dirty`` when tracked files are modified), or ``unknown``."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=None)
def device_description() -> str:
    """``cpu: <model>`` (or the CUDA device name when one is used), for the ``device`` column."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {model}"


def provenance(params_hash: str, codec_library: str) -> Dict[str, str]:
    """The provenance columns of a result row."""
    return {
        "codec_library": codec_library,
        "packages": package_versions(),
        "git_rev": git_revision(),
        "params_hash": params_hash,
        "device": device_description(),
    }
