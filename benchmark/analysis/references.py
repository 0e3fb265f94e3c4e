"""Rate-distortion curves: our results and published reference results, read from and written to
CompressAI's results-JSON format.

Formats read by ``read_curve``:

* CompressAI (``python -m compressai.utils.eval_model`` and the files under
  ``results/image/kodak`` of https://github.com/InterDigitalInc/CompressAI):
  ``{"name", "description", "results": {"bpp", "psnr-rgb", "ms-ssim-rgb", ...}}``; older files
  use ``"psnr"`` / ``"ms-ssim"``; the published ``paper-*.json`` files may give MS-SSIM in dB as
  ``"ms-ssim-db-rgb"`` and may lack PSNR or MS-SSIM.
* lossy-vae (https://github.com/duanzhiihao/lossy-vae, ``results/kodak``):
  ``{"name", "results": {"bpp", "psnr", ...}}`` or top-level ``"bpp"`` / ``"psnr"`` lists.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from benchmark.fileio import write_bytes_atomic
from benchmark.metrics.base import METRICS

PathLike = Union[str, "os.PathLike[str]"]

_PSNR_KEYS = ("psnr-rgb", "psnr")
_MSSSIM_KEYS = ("ms-ssim-rgb", "ms-ssim")
_MSSSIM_DB_KEYS = ("ms-ssim-db-rgb", "ms-ssim-db")


def _readonly(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if a is not None:
        a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Curve:
    """One rate-distortion curve, its points sorted by rate.

    Attributes:
        name: legend / table name.
        bpp: rates in bits per pixel, float64, shape (N,), ascending.
        values: registered metric name -> float64 (N,): the curve's value of that metric at
            each point (means over images per rate point; published curves give what their file
            has, e.g. ``psnr`` in dB and ``ms_ssim`` linear in [0, 1]).
        source: file path or URL the points come from.
        description: free text (codec version, settings).

    Arrays are converted to float64, sorted together by ``bpp`` and made read-only.
    Equality is identity (``eq=False``), as arrays have no single truth value.

    Raises:
        ValueError: N == 0, arrays not 1-D or of different lengths, non-finite values, or no
            values at all.
    """

    name: str
    bpp: np.ndarray
    values: Mapping[str, np.ndarray]
    source: str
    description: str = ""

    def __post_init__(self) -> None:
        where = f"curve {self.name!r} ({self.source})"
        arrays = {"bpp": self.bpp, **{k: v for k, v in self.values.items() if v is not None}}
        conv = {}
        for key, val in arrays.items():
            a = np.array(val, dtype=np.float64)  # copy: the caller's array stays untouched
            if a.ndim != 1 or a.size == 0:
                raise ValueError(f"{where}: {key} must be a non-empty 1-D sequence")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{where}: {key} has NaN or infinite values")
            if a.size != conv.get("bpp", a).size:
                raise ValueError(f"{where}: {conv['bpp'].size} bpp values but {a.size} {key} values")
            conv[key] = a
        if len(conv) < 2:
            raise ValueError(f"{where}: needs the values of at least one metric")
        order = np.argsort(conv["bpp"], kind="stable")
        sorted_ = {k: _readonly(a[order]) for k, a in conv.items()}
        object.__setattr__(self, "bpp", sorted_.pop("bpp"))
        object.__setattr__(self, "values", MappingProxyType(sorted_))

    def get(self, metric: str) -> Optional[np.ndarray]:
        """The curve's values of a registered metric, float64 (N,), or None if it has none.
        A ``curve_of_mean`` derived metric (MS-SSIM dB) is derived from its base's values
        (``-10 log10(1 - MS-SSIM)`` of the mean MS-SSIM; inf where MS-SSIM == 1)."""
        if metric in self.values:
            return self.values[metric]
        m = METRICS.get(metric)
        if m.curve_of_mean and m.derive is not None and m.base in self.values:
            return m.derive(self.values[m.base])
        return None


def _numbers(values, key: str, path: Path) -> np.ndarray:
    if not isinstance(values, list):
        raise ValueError(f"{path}: {key!r} must be a list of numbers")
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {key!r} has non-numeric entries") from None


def _first(results: dict, keys: Sequence[str]) -> Optional[str]:
    return next((k for k in keys if k in results), None)


def read_curve(path: PathLike) -> Curve:
    """Read a CompressAI or lossy-vae results JSON file (formats: see module docstring).

    The name is the file's ``"name"`` (else the file stem); PSNR comes from ``"psnr-rgb"`` or
    ``"psnr"`` (dB); MS-SSIM from ``"ms-ssim-rgb"`` / ``"ms-ssim"`` (linear) or, converted to
    linear as 1 - 10^(-dB/10), from ``"ms-ssim-db-rgb"`` / ``"ms-ssim-db"``.

    Returns:
        A ``Curve`` with ``source`` = the path, points sorted by bpp, and ``values`` ``psnr``
        and/or ``ms_ssim`` (the registered metrics these files carry).

    Raises:
        ValueError (message names the file): not JSON / not an object, no ``"bpp"`` list,
            neither PSNR nor MS-SSIM, lists of unequal length, non-numeric or non-finite values.
        OSError: the file cannot be read.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a JSON object at the top level")
    results = data.get("results", data)
    if not isinstance(results, dict):
        raise ValueError(f"{p}: 'results' must be an object")
    if "bpp" not in results:
        raise ValueError(f"{p}: no 'bpp' list")
    bpp = _numbers(results["bpp"], "bpp", p)

    psnr_key = _first(results, _PSNR_KEYS)
    psnr = _numbers(results[psnr_key], psnr_key, p) if psnr_key else None
    ms_ssim = None
    ms_key = _first(results, _MSSSIM_KEYS)
    if ms_key:
        ms_ssim = _numbers(results[ms_key], ms_key, p)
    else:
        ms_key = _first(results, _MSSSIM_DB_KEYS)
        if ms_key:
            ms_ssim = 1.0 - 10.0 ** (-_numbers(results[ms_key], ms_key, p) / 10.0)
    if psnr is None and ms_ssim is None:
        raise ValueError(f"{p}: no PSNR ({' / '.join(_PSNR_KEYS)}) or MS-SSIM values")
    for key, arr in ((psnr_key, psnr), (ms_key, ms_ssim)):
        if arr is not None and arr.size != bpp.size:
            raise ValueError(f"{p}: {bpp.size} 'bpp' values but {arr.size} {key!r} values")

    if ms_ssim is not None and (ms_ssim.min() < 0 or ms_ssim.max() > 1):
        raise ValueError(f"{p}: MS-SSIM must be linear values in [0, 1]")
    name = data.get("name") or p.stem
    values = {k: v for k, v in (("psnr", psnr), ("ms_ssim", ms_ssim)) if v is not None}
    try:
        return Curve(str(name), bpp, values, str(p), str(data.get("description", "")))
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from None


def _float_list(values, key: str, n: Optional[int]) -> list:
    out = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    if n is not None and len(out) != n:
        raise ValueError(f"{key}: {len(out)} values, expected {n}")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{key}: NaN or infinite values cannot be written to JSON")
    return out


def write_compressai_json(
    path: PathLike,
    name: str,
    description: str,
    bpp: Sequence[float],
    psnr: Sequence[float],
    ms_ssim: Optional[Sequence[float]],
    encoding_time: Optional[Sequence[float]] = None,
    decoding_time: Optional[Sequence[float]] = None,
) -> Path:
    """Write one curve in CompressAI's results-JSON layout, atomically.

    Layout and formatting are those of ``python -m compressai.utils.eval_model`` (compressai
    1.2.8): ``json.dumps({"name", "description", "results": {"psnr-rgb", "ms-ssim-rgb", "bpp",
    "encoding_time", "decoding_time"}}, indent=2)``, no trailing newline. Points are written in
    the order given (one per quality setting). ``ms_ssim``, ``encoding_time`` and
    ``decoding_time`` are left out of ``results`` when None.

    Args:
        bpp: bits per pixel, shape (N,). psnr: PSNR on RGB in dB, shape (N,).
        ms_ssim: MS-SSIM on RGB, linear in [0, 1], shape (N,), or None.
        encoding_time, decoding_time: seconds per image, shape (N,), or None.

    Returns:
        The path written.

    Raises:
        ValueError: lengths differ from len(bpp), or NaN/inf values (not valid JSON).
    """
    bpp_l = _float_list(bpp, "bpp", None)
    n = len(bpp_l)
    results = {"psnr-rgb": _float_list(psnr, "psnr", n)}
    if ms_ssim is not None:
        results["ms-ssim-rgb"] = _float_list(ms_ssim, "ms_ssim", n)
    results["bpp"] = bpp_l
    if encoding_time is not None:
        results["encoding_time"] = _float_list(encoding_time, "encoding_time", n)
    if decoding_time is not None:
        results["decoding_time"] = _float_list(decoding_time, "decoding_time", n)
    output = {"name": name, "description": description, "results": results}
    return write_bytes_atomic(path, json.dumps(output, indent=2).encode())
