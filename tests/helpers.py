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


def memory_growth_per_pixel(setup: str, pair: str, score: str) -> float:
    """Bytes of peak resident memory per added pixel when a fresh process scores an 800x1200
    pair, then a 1600x2400 pair: ``setup`` runs once (imports), ``pair`` is an expression of
    ``h``, ``w`` and ``rng`` giving the reference ``a`` (uint8), and ``score`` a statement on
    ``a``. The peak is reset before each pair where Linux allows (``/proc/self/clear_refs``, then
    ``VmHWM``; else ``ru_maxrss``), so what the imports took hides nothing; the test's own arrays
    count."""
    code = "\n".join([
        "import resource, numpy as np",
        setup,
        "rng = np.random.default_rng(0)",
        "def peak():",
        "    try:",
        "        return next(int(s.split()[1]) * 1024 for s in open('/proc/self/status') if s.startswith('VmHWM:'))",
        "    except (OSError, StopIteration):",
        "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024",
        "def peak_after(h, w):",
        "    try:",
        "        open('/proc/self/clear_refs', 'w').write('5')",
        "    except OSError:",
        "        pass",
        f"    a = {pair}",
        f"    {score}",
        "    return peak()",
        "small, large = peak_after(800, 1200), peak_after(1600, 2400)",
        "print((large - small) / (1600 * 2400 - 800 * 1200))",
    ])
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])
