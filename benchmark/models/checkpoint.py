"""Checkpoints: a trained model with what is needed to rebuild and code with it.

A checkpoint is a ``torch.save`` dict::

    {
      "format": "compression-benchmark/checkpoint-v1",
      "arch": "bmshj2018-hyperprior",   # a name in ARCHITECTURES
      "size": {"N": 64, "M": 96},        # channel counts
      "lmbda": 0.0067,                   # λ of the rate point (CompressAI scale: λ·255²·MSE + bpp)
      "rate_point": "q3",                # the rate point's name in params.yaml
      "step": 2000,                      # optimizer steps taken
      "state_dict": {...},               # model weights, entropy-model CDF tables included
      "coder_ready": True,               # CDF tables computed (model.update) and stored
      # training state, only in resumable checkpoints: "optimizer", "aux_optimizer",
      # "scheduler", "rng", "epoch", "log_rows", ...
    }

The entropy coder's CDF tables are computed once, on the CPU, when training ends (``update``),
and stored in the state dict; loading never recomputes them, so encoder and decoder use the same
tables on every machine and device (the failure in CompressAI issues #279 and #320 comes from
tables recomputed on different devices).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, Tuple

import torch

from benchmark.errors import BenchmarkError
from benchmark.fileio import write_bytes_atomic
from benchmark.models.specs import build_model

FORMAT = "compression-benchmark/checkpoint-v1"


class CheckpointError(BenchmarkError, RuntimeError):
    """A checkpoint is missing, unreadable or of another format; the message names the file."""


def save_checkpoint(path: "str | Path", payload: Dict[str, Any]) -> Path:
    """Write ``payload`` (with ``format`` set) atomically to ``path``."""
    buf = io.BytesIO()
    torch.save({**payload, "format": FORMAT}, buf)
    return write_bytes_atomic(path, buf.getvalue())


def read_checkpoint(path: "str | Path") -> Dict[str, Any]:
    """Load a checkpoint dict on the CPU. Raises ``CheckpointError`` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint not found")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for corrupt files
        raise CheckpointError(f"{p}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a {FORMAT} checkpoint")
    return ckpt


def load_model(path: "str | Path", device: str = "cpu") -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """Rebuild the model of a checkpoint, in eval mode on ``device``; returns (model, metadata).

    Raises ``CheckpointError`` if the file is missing/corrupt, or its CDF tables were never
    computed (``coder_ready`` false: a training checkpoint, not a final one).
    """
    ckpt = read_checkpoint(path)
    if not ckpt.get("coder_ready"):
        raise CheckpointError(f"{path}: entropy-coder tables were not computed (an unfinished training checkpoint?)")
    model = build_model(ckpt["arch"], ckpt["size"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit {ckpt['arch']} {ckpt['size']}: {e}") from None
    model.eval().to(device)
    meta = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "aux_optimizer", "scheduler", "rng")}
    return model, meta


def model_id(meta: Dict[str, Any]) -> str:
    """A short id of a trained model for the bitstream container: ``arch/size/rate_point``."""
    size = ",".join(f"{k}{v}" for k, v in sorted(meta["size"].items()))
    return f"{meta['arch']}/{size}/{meta.get('rate_point', '')}"


def finalize_for_coding(model: torch.nn.Module) -> torch.nn.Module:
    """Compute the entropy-coder CDF tables on the CPU (``model.update(force=True)``) and return
    the model on the CPU in eval mode. Call once, when training ends, before the final save."""
    model = model.cpu().eval()
    model.update(force=True)
    return model
