"""The ``builtin`` source: photographs shipped inside installed packages (no download)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Optional

from benchmark.config import ConfigError, DatasetConfig
from benchmark.data.images import ManifestRow, load_rgb8, save_png_atomic
from benchmark.data.sources.common import NoOptions, SourceResult, _row, _select, register_source


@dataclasses.dataclass(frozen=True)
class BuiltinImage:
    """A photograph shipped inside an installed package: ``package`` (distribution name),
    ``file`` (name in its data directory) and a short ``description``."""

    package: str
    file: str
    description: str


# Sizes are height x width. Descriptions follow the packages' own docstrings.
BUILTIN_IMAGES: Dict[str, BuiltinImage] = {
    "astronaut": BuiltinImage("scikit-image", "astronaut.png", "astronaut Eileen Collins, NASA portrait, 512x512"),
    "coffee": BuiltinImage("scikit-image", "coffee.png", "coffee cup, Pikolo Espresso Bar, CC0, 400x600"),
    "chelsea": BuiltinImage("scikit-image", "chelsea.png", "Chelsea the cat, 300x451"),
    "rocket": BuiltinImage("scikit-image", "rocket.jpg", "launch of DSCOVR on a SpaceX Falcon 9, JPEG, 427x640"),
    "hubble_deep_field": BuiltinImage(
        "scikit-image", "hubble_deep_field.jpg", "Hubble eXtreme Deep Field, JPEG, 872x1000"
    ),
    "ihc": BuiltinImage("scikit-image", "ihc.png", "immunohistochemistry-stained tissue micrograph, 512x512"),
    "motorcycle_left": BuiltinImage("scikit-image", "motorcycle_left.png", "Middlebury stereo pair, left view, 500x741"),
    "motorcycle_right": BuiltinImage(
        "scikit-image", "motorcycle_right.png", "Middlebury stereo pair, right view, 500x741"
    ),
    "retina": BuiltinImage("scikit-image", "retina.jpg", "human retina fundus photograph, JPEG, 1411x1411"),
    "grace_hopper": BuiltinImage("matplotlib", "grace_hopper.jpg", "Rear Admiral Grace Hopper portrait, JPEG, 600x512"),
}

BUILTIN_DEFAULT = ("astronaut", "coffee", "chelsea", "rocket")


def builtin_image_path(name: str) -> Path:
    """Path of a ``BUILTIN_IMAGES`` file inside its installed package (no download is ever made).

    Raises ``ConfigError`` for an unknown name (listing the known ones) or a file the installed
    package does not ship.
    """
    if name not in BUILTIN_IMAGES:
        raise ConfigError(f"unknown builtin image {name!r}; known: {', '.join(sorted(BUILTIN_IMAGES))}")
    info = BUILTIN_IMAGES[name]
    if info.package == "scikit-image":
        import skimage.data

        path = Path(skimage.data.data_dir) / info.file
    else:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / info.file
    if not path.is_file():
        raise ConfigError(f"builtin image {name!r}: {path} is not shipped by the installed {info.package}")
    return path


def _package_version(package: str) -> str:
    """The installed version of the distribution ``package``, or ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


@register_source("builtin", NoOptions)
def builtin(cfg: DatasetConfig, options: NoOptions, images_dir: Path, *, mirror: Optional[Path]) -> SourceResult:
    """Photographs shipped by scikit-image and matplotlib (``BUILTIN_IMAGES``), read from the
    installed packages; ``cfg.images`` selects them (default ``BUILTIN_DEFAULT``). JPEG files are
    decoded by the installed Pillow, so the manifest's pixel hashes pin the exact pixels. No
    options of its own. Raises ``ConfigError`` for unknown names."""
    rows: List[ManifestRow] = []
    for name in _select(cfg, list(BUILTIN_IMAGES), BUILTIN_DEFAULT):
        path = builtin_image_path(name)
        info = BUILTIN_IMAGES[name]
        arr = load_rgb8(path)
        save_png_atomic(arr, images_dir / f"{name}.png")
        rows.append(_row(name, images_dir, arr, f"{info.package} {_package_version(info.package)}: {info.file}"))
    return rows, []
