"""The project's params.yaml with a benchmark's changes, written where a stage can read it."""

from pathlib import Path
from typing import Callable, Dict

ROOT = Path(__file__).resolve().parents[1]


def write_params(tmp: Path, change: Callable[[Dict], None]) -> Path:
    """``tmp/params.yaml``: the project's params.yaml after ``change(params)`` (in place), with
    no perceptual metric (the peer tools compute PSNR and MS-SSIM only)."""
    from ruamel.yaml import YAML

    from benchmark.config import read_params

    p = read_params(ROOT / "params.yaml")
    change(p)
    p["metrics"]["perceptual"] = []
    path = tmp / "params.yaml"
    with open(path, "w") as f:
        YAML(typ="safe", pure=True).dump(p, f)
    return path
