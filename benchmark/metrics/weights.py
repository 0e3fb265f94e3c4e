"""Pretrained weight files of the perceptual metrics: where they are looked for, how they are
checked, and what is recorded when one is missing.

A file is resolved in this order (the first that exists wins):

1. an explicit path (``metrics.weights.<key>`` in params.yaml), used as given: its SHA-256 is
   recorded, and ``verified`` says whether it is the published file;
2. the copy shipped inside a Python package (only the LPIPS v0.1 linear layers, in ``lpips``),
   used as the package itself would use it (``verified`` records whether it is the pinned file);
3. the standard torch hub cache, ``$TORCH_HOME/hub/checkpoints/<file>`` (``torch.hub.get_dir()``
   at call time), where ``torch.hub``, torchvision, lpips, piq and torch-fidelity all look;
4. the mirror directory (``<mirror>/<host>/<url path>``, as ``benchmark.data.download``), copied
   into the hub cache once verified;
5. the network (when ``download`` is true), into the hub cache once verified.

Files from 3-5 must match the published SHA-256 (the full hash where it is known, else the
8-hex-digit prefix in the file name, torch.hub's ``check_hash`` convention); a file that does
not is not used. When no usable file is found, :func:`resolve_weights` raises
:class:`WeightsMissing`, whose ``record()`` names the file, its URL, where to put it and why it
was not usable; the evaluate stage stores that record and goes on without the metric.

The records are committed with the results, so they name no path of the machine that made
them: a file in the hub cache is shown as ``$TORCH_HOME/hub/checkpoints/<file>``, the package's
copy as ``<package>/<path inside it>``, an explicit file by its params key, the mirror by the
path inside it (``<host>/<url path>``). The exception's message (printed when evaluate runs)
also gives the paths of this machine.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from benchmark.data.download import DownloadError, fetch_url, mirror_path, sha256_file
from benchmark.errors import BenchmarkError
from benchmark.registry import unknown_name

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class WeightFile:
    """One published weight file a metric needs.

    ``key``: its name under ``metrics.weights`` in params.yaml. ``file``: the file name in the
    torch hub cache (the URL's basename). ``sha256``: the full hex SHA-256 of the published file,
    or the hex prefix its name carries (>= 8 digits), or None when nothing is published (the hash
    is then only recorded). ``packaged``: (package, path inside it) for a copy shipped in a pip
    package. (Which metrics need it: their ``Metric.weights``.)
    """

    key: str
    file: str
    url: str
    sha256: Optional[str]
    description: str
    packaged: Optional[Tuple[str, str]] = None


WEIGHT_FILES: Dict[str, WeightFile] = {
    w.key: w
    for w in (
        WeightFile(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "7be5be79",
            "torchvision AlexNet (ImageNet-1k), the LPIPS backbone",
        ),
        WeightFile(
            "lpips_linear",
            "alex.pth",
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
            # SHA-256 of lpips 0.1.4's lpips/weights/v0.1/alex.pth (the v0.1 linear layers).
            "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            "LPIPS v0.1 linear layers for the AlexNet backbone (shipped in the lpips package)",
            packaged=("lpips", "weights/v0.1/alex.pth"),
        ),
        WeightFile(
            "vgg16",
            "vgg16-397923af.pth",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            "397923af",
            "torchvision VGG16 (ImageNet-1k), the DISTS backbone",
        ),
        WeightFile(
            "dists",
            "dists_weights.pt",
            "https://github.com/photosynthesis-team/piq/releases/download/v0.4.1/dists_weights.pt",
            None,
            "DISTS alpha/beta layer weights (piq's release of Ding et al.'s weights)",
        ),
        WeightFile(
            "inception",
            "weights-inception-2015-12-05-6726825d.pth",
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
            "6726825d",
            "InceptionV3 of the TensorFlow FID reference (torch-fidelity's conversion), for FID and KID",
        ),
    )
}
"""Every weight file a perceptual metric can need, by ``metrics.weights`` key."""


@dataclass(frozen=True)
class ResolvedWeights:
    """A weight file found for ``key``: its ``path``, ``origin`` (explicit, package, cache,
    mirror, network), ``sha256`` (hex, of the file used) and ``verified`` (True: it is the
    published file by its full hash or name prefix; False: it is not, or could not be checked)."""

    key: str
    path: Path
    origin: str
    sha256: str
    verified: bool

    def record(self) -> Dict[str, Any]:
        """A JSON-ready description for the metric status record (``path`` without machine
        paths: see the module docstring)."""
        spec = WEIGHT_FILES[self.key]
        if self.origin == "explicit":
            shown = f"metrics.weights.{self.key} ({self.path.name})"
        elif self.origin == "package" and spec.packaged is not None:
            shown = "/".join(spec.packaged)
        else:
            shown = cache_shown(spec.file)
        return {
            "key": self.key,
            "file": spec.file,
            "path": shown,
            "origin": self.origin,
            "sha256": self.sha256,
            "verified": self.verified,
            "url": spec.url,
        }


def cache_shown(file: str) -> str:
    """Where a file of the hub cache is, as records show it: ``$TORCH_HOME/hub/checkpoints/<file>``
    (``TORCH_HOME`` defaults to ``~/.cache/torch``)."""
    return f"$TORCH_HOME/hub/checkpoints/{file}"


class WeightsMissing(BenchmarkError, RuntimeError):
    """No usable file for a weight key. ``reason`` says why (without machine paths); ``record()``
    is what evaluate stores: the file name, its URL, where in the hub cache to put it, the mirror
    path and the params key. The message also names this machine's hub cache directory."""

    def __init__(self, key: str, reason: str, cache_dir: Path) -> None:
        self.key = key
        self.reason = reason
        self.cache_dir = Path(cache_dir)
        spec = WEIGHT_FILES[key]
        self.file = spec.file
        super().__init__(
            f"{spec.file} ({spec.description}) is not available: {reason}. Put {spec.url} at "
            f"{self.cache_dir / spec.file} (the torch hub cache; TORCH_HOME moves it), or give its path as "
            f"metrics.weights.{key} in params.yaml, or place it in the mirror as {mirror_path(spec.url, '').as_posix()}"
        )

    def record(self) -> Dict[str, Any]:
        spec = WEIGHT_FILES[self.key]
        return {
            "key": self.key,
            "file": spec.file,
            "description": spec.description,
            "url": spec.url,
            "reason": self.reason,
            "put_at": cache_shown(spec.file),
            "param": f"metrics.weights.{self.key}",
            "mirror_path": mirror_path(spec.url, "").as_posix(),
        }


def hub_cache_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` as torch resolves it now (``torch.hub.get_dir()``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _matches(spec: WeightFile, sha: str) -> bool:
    return spec.sha256 is not None and sha.startswith(spec.sha256.lower())


def _packaged(spec: WeightFile) -> Optional[Path]:
    if spec.packaged is None:
        return None
    package, rel = spec.packaged
    found = importlib.util.find_spec(package)  # locates the package without importing it
    if found is None or not found.submodule_search_locations:
        return None
    p = Path(list(found.submodule_search_locations)[0]) / rel
    return p if p.is_file() else None


def _local_copy(key: str, spec, explicit: Optional[PathLike], cache: Path) -> Optional[ResolvedWeights]:
    """The weight file already on this machine, in :func:`resolve_weights`' order (an explicit
    path, the package's own copy, the hub cache), or None; raises ``WeightsMissing`` for an
    explicit path that is not a file or a cached file with the wrong SHA-256."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsMissing(key, f"metrics.weights.{key} ({p.name}) is not a file", cache)
        sha = sha256_file(p)
        return ResolvedWeights(key, p, "explicit", sha, _matches(spec, sha))

    packaged = _packaged(spec)
    if packaged is not None:  # the package's own copy is what the package itself would use
        sha = sha256_file(packaged)
        return ResolvedWeights(key, packaged, "package", sha, _matches(spec, sha))

    cached = cache / spec.file
    if not cached.is_file():
        return None
    sha = sha256_file(cached)
    if spec.sha256 is None or _matches(spec, sha):
        return ResolvedWeights(key, cached, "cache", sha, spec.sha256 is not None)
    raise WeightsMissing(
        key,
        f"the cached file {cache_shown(spec.file)} has SHA-256 {sha}, not the published file's ({spec.sha256}...); "
        "delete it (or give a path as metrics.weights." + key + " to use it anyway)",
        cache,
    )


def resolve_weights(
    key: str,
    *,
    explicit: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    mirror: Optional[PathLike] = None,
    download: bool = False,
) -> ResolvedWeights:
    """Find the weight file ``WEIGHT_FILES[key]`` (order and checks: module docstring).

    Args:
        key: a key of ``WEIGHT_FILES`` (``alexnet``, ``lpips_linear``, ``vgg16``, ``dists``,
            ``inception``).
        explicit: a path given by the user (params ``metrics.weights.<key>``); used if it is a
            file, whatever its hash (recorded as ``verified`` False when it differs).
        cache_dir: the hub cache directory (default :func:`hub_cache_dir`, read at call time).
        mirror: a mirror directory laid out as ``<host>/<url path>``, or None.
        download: try the URL when nothing else has the file.

    Returns:
        ResolvedWeights.

    Raises:
        UnknownNameError: unknown ``key`` (a ``LookupError``).
        WeightsMissing: no usable file; the reason names what was tried (an explicit path that
            does not exist, a cached file whose SHA-256 differs from the published one, a mirror
            or network copy that fails the check, or simply no copy anywhere).
    """
    if key not in WEIGHT_FILES:
        raise unknown_name("weight file", key, WEIGHT_FILES, "metrics.weights")
    spec = WEIGHT_FILES[key]
    cache = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    local = _local_copy(key, spec, explicit, cache)
    if local is not None:
        return local

    src = mirror_path(spec.url, mirror) if mirror is not None else None
    in_mirror = src is not None and src.is_file()
    where = "not in the mirror" if mirror is not None else "no mirror is set"
    if not in_mirror and not download:
        raise WeightsMissing(key, f"not in the hub cache, {where}, and downloading is off (metrics.download)", cache)

    def verify(tmp: Path) -> None:
        sha = sha256_file(tmp)
        if spec.sha256 is not None and not _matches(spec, sha):
            raise ValueError(f"{spec.file}: SHA-256 is {sha}, expected {spec.sha256}...")

    origin = "mirror" if in_mirror else "network"
    try:
        path = fetch_url(spec.url, cache / spec.file, mirror=mirror, verify=verify, retries=1, timeout=30.0)
    except DownloadError as e:
        why = str(e).removeprefix(f"{spec.url}: ").replace(str(cache), "$TORCH_HOME/hub/checkpoints")
        why = why.replace(str(mirror), "<mirror>") if mirror is not None else why
        if in_mirror:
            raise WeightsMissing(key, f"the mirror copy <mirror>/{mirror_path(spec.url, '').as_posix()} is not usable: {why}", cache) from None
        raise WeightsMissing(key, f"not in the hub cache, {where}, and the download failed: {why}", cache) from None
    sha = sha256_file(path)
    return ResolvedWeights(key, path, origin, sha, spec.sha256 is not None)
