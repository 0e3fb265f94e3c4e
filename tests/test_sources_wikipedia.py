"""The wikipedia-photos source: 49 high-resolution photos verified by pixel SHA-256."""

import os

import numpy as np
import pytest
from PIL import Image

from benchmark.config import ConfigError, DatasetConfig
from benchmark.data.download import DownloadError, mirror_path
from benchmark.data.images import pixel_sha256, read_manifest
from benchmark.data.dataset import fetch_dataset
from benchmark.data.sources.wikipedia_photos import WIKIPEDIA_PHOTOS_URL, wikipedia_photos_sha256
from benchmark.metrics.fid import patch_origins

MIRROR = os.environ.get("BENCHMARK_MIRROR")
needs_mirror = pytest.mark.skipif(
    not (MIRROR and mirror_path(WIKIPEDIA_PHOTOS_URL.format(number="001"), MIRROR).is_file()),
    reason="set BENCHMARK_MIRROR to a mirror holding raw.githubusercontent.com/Zelex/images/ to run",
)


def _cfg(**kw):
    return DatasetConfig(name="wp", source="wikipedia-photos", **kw)


def test_hash_table_has_the_49_photos_and_enough_fid_patches():
    table = wikipedia_photos_sha256()
    assert list(table) == [f"wiki{i:03d}" for i in range(1, 50)]
    assert all(len(h) == 64 for h in table.values())
    # The sizes recorded beside the hashes give the HiFiC patch count the README quotes.
    from importlib.resources import files

    sizes = [line.split()[2] for line in files("benchmark.data").joinpath("wikipedia_photos_sha256.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    total = sum(len(patch_origins(int(s.split("x")[1]), int(s.split("x")[0]))) for s in sizes)
    assert total == 1087


@needs_mirror
def test_fetch_from_mirror_verifies_pixels(tmp_path):
    rows, skipped = fetch_dataset(_cfg(max_images=2), tmp_path / "wp", mirror=MIRROR)
    assert [r.name for r in rows] == ["wiki001", "wiki002"] and skipped == []
    m = read_manifest(tmp_path / "wp")
    assert m[0].pixel_sha256 == wikipedia_photos_sha256()["wiki001"] and (m[0].width, m[0].height) == (1276, 850)
    assert m[0].origin == WIKIPEDIA_PHOTOS_URL.format(number="001")


def test_wrong_pixels_are_refused(tmp_path):
    fake = mirror_path(WIKIPEDIA_PHOTOS_URL.format(number="003"), tmp_path / "mirror")
    fake.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(fake)
    with pytest.raises(DownloadError, match="003.png: pixel SHA-256 is .* expected " + wikipedia_photos_sha256()["wiki003"]):
        fetch_dataset(_cfg(images=("wiki003",)), tmp_path / "wp", mirror=tmp_path / "mirror")
    assert not (tmp_path / "wp").exists()
    assert pixel_sha256(np.zeros((200, 300, 3), np.uint8)) != wikipedia_photos_sha256()["wiki003"]


def test_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="unknown image.*wiki050"):
        fetch_dataset(_cfg(images=("wiki050",)), tmp_path / "wp", mirror=None)
