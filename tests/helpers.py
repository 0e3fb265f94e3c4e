"""Helpers shared by the learned-codec tests (imported as ``helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[1]


def reference_fixtures(name: str, marker: str, label: str) -> Path:
    """The directory ``<fixtures>/<name>`` of a published model's reference fixtures, <fixtures>
    being ``$BENCHMARK_FIXTURES`` or ``../shared/fixtures`` from the repository root. Skips the
    calling test (``pytest.skip``, naming ``label`` and the directory) when the file ``marker``
    is not there."""
    base = os.environ.get("BENCHMARK_FIXTURES") or str(ROOT.parent / "shared" / "fixtures")
    path = Path(base) / name
    if not (path / marker).is_file():
        pytest.skip(f"{label} reference fixtures not found in {path} (set BENCHMARK_FIXTURES to shared/fixtures)")
    return path


def read_tsv(path: Path) -> List[Dict[str, str]]:
    """The rows of a tab-separated file with a header line, as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def decode_in_another_process(model: str, checkpoints: str, data: bytes, tmp_path: Path, threads: int = 1) -> str:
    """Decode ``data`` with a fresh ``learned`` codec over ``model`` (``checkpoints``: the
    codec's path template) in a new Python process with ``threads`` torch threads, as a decoder
    that has only the bytes and the checkpoint would; returns what it prints:
    ``"<(H, W, 3)> <pixel SHA-256>"``. Fails the test with the process's stderr if it fails."""
    path = tmp_path / "bitstream.bin"
    path.write_bytes(data)
    code = (
        f"import torch; torch.set_num_threads({threads}); import benchmark.codecs.learned; "
        "from pathlib import Path; from benchmark.codecs.base import build_codec; from benchmark.data.images import pixel_sha256; "
        f"c = build_codec('learned', {{'model': {model!r}}}, checkpoints={checkpoints!r}); "
        f"rec = c.decode(Path({str(path)!r}).read_bytes()); print(rec.shape, pixel_sha256(rec))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def build_with(params, mutate):
    """``build_config`` of a deep copy of ``params`` after ``mutate(copy)`` (source "p.yaml")."""
    import copy

    from benchmark.config import build_config

    p = copy.deepcopy(params)
    mutate(p)
    return build_config(p, source="p.yaml")
