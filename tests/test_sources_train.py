"""Training-image sources: bsds500 (pinned file hashes, real mirror) and coco (local HTTP server)."""

import io
import os
import random
from pathlib import Path

import numpy as np
import pytest
from localserver import LocalServer
from PIL import Image

from benchmark.config import ConfigError, DatasetConfig, build_config
from benchmark.data.dataset import fetch_dataset
from benchmark.data.download import DownloadError, mirror_path
from benchmark.data.images import ImageError, load_rgb8, pixel_sha256, read_manifest
from benchmark.data.sources import DATASET_SOURCES
from benchmark.data.sources.bsds500 import BSDS500_URL, bsds500_sha256
from benchmark.data.sources.coco import COCO_BASE_URL, COCO_URL, coco_select

MIRROR = os.environ.get("BENCHMARK_MIRROR")
_FIRST_TRAIN = min(n for n in bsds500_sha256() if n.startswith("train-")).split("-")[1]
needs_bsds_mirror = pytest.mark.skipif(
    not (MIRROR and mirror_path(BSDS500_URL.format(split="train", id=_FIRST_TRAIN), MIRROR).is_file()),
    reason="set BENCHMARK_MIRROR to a mirror holding raw.githubusercontent.com/BIDS/BSDS500/<commit>/ to run",
)


def _cfg(source, **kw):
    """A ``DatasetConfig``; ``options``: the source's own keys."""
    return DatasetConfig(name="t", source=source, options=dict(kw.pop("options", {})), **kw)


def _files(d: Path):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def _decode(data: bytes, tmp_path: Path) -> np.ndarray:
    """``load_rgb8`` of JPEG bytes (through a file outside the data directories)."""
    p = tmp_path.parent / f"{tmp_path.name}-decode.jpg"
    p.write_bytes(data)
    return load_rgb8(p)


# --- bsds500 -----------------------------------------------------------------------------------


def test_bsds500_table_is_shipped_with_the_package():
    table = bsds500_sha256()
    counts = {s: sum(n.startswith(f"{s}-") for n in table) for s in ("train", "val", "test")}
    assert counts == {"train": 200, "val": 100, "test": 200}
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())
    assert len(set(table.values())) == 500  # 500 different files


def test_bsds500_table_matches_the_mirror_sums():
    images_url = BSDS500_URL.format(split="train", id=_FIRST_TRAIN)
    sums = mirror_path(images_url, MIRROR or "/nonexistent").parent.parent / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("set BENCHMARK_MIRROR to a mirror holding BSDS500's SHA256SUMS to compare the shipped table")
    mirror_table = {}
    for line in sums.read_text().splitlines():
        h, rel = line.split()
        mirror_table[rel.removesuffix(".jpg").replace("/", "-")] = h
    assert mirror_table == bsds500_sha256()


@needs_bsds_mirror
def test_bsds500_from_the_real_mirror(tmp_path):
    out = tmp_path / "bsds"
    rows, skipped = fetch_dataset(_cfg("bsds500", max_images=3, options={"splits": ["train", "val"]}), out, mirror=Path(MIRROR))
    train = sorted(n for n in bsds500_sha256() if n.startswith("train-"))
    assert [r.name for r in rows] == train[:3] and skipped == []
    assert read_manifest(out) == rows
    for r in rows:
        split, image_id = r.name.split("-")
        url = BSDS500_URL.format(split=split, id=image_id)
        original = load_rgb8(mirror_path(url, MIRROR))
        stored = load_rgb8(out / r.file)
        assert np.array_equal(stored, original)  # decoded once, stored losslessly
        assert r.pixel_sha256 == pixel_sha256(original)
        assert (r.height, r.width) in ((321, 481), (481, 321)) and r.origin == url
    assert _files(out) == ["images", *[f"images/{n}.png" for n in train[:3]], "manifest.csv", "references", "skipped.csv"]

    val = sorted(n for n in bsds500_sha256() if n.startswith("val-"))[5]
    rows, _ = fetch_dataset(_cfg("bsds500", images=(val,)), out, mirror=Path(MIRROR))
    assert [r.name for r in rows] == [val]


@needs_bsds_mirror
def test_bsds500_corrupted_mirror_file_is_refused(tmp_path):
    mirror = tmp_path / "m"
    name = f"train-{_FIRST_TRAIN}"
    url = BSDS500_URL.format(split="train", id=_FIRST_TRAIN)
    data = bytearray(mirror_path(url, MIRROR).read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the entropy-coded data: still a decodable JPEG
    mirror_path(url, mirror).parent.mkdir(parents=True)
    mirror_path(url, mirror).write_bytes(bytes(data))
    with pytest.raises(DownloadError) as e:
        fetch_dataset(_cfg("bsds500", images=(name,)), tmp_path / "b", mirror=mirror)
    msg = str(e.value)
    assert f"train/{_FIRST_TRAIN}.jpg" in msg and bsds500_sha256()[name] in msg and "mirror file" in msg
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no data dir, no temp files


def test_bsds500_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.t\.splits.*'trian'"):
        fetch_dataset(_cfg("bsds500", options={"splits": ["trian"]}), tmp_path / "b", mirror=None)
    with pytest.raises(ConfigError, match=r"datasets\.t\.splits must be a non-empty list"):
        fetch_dataset(_cfg("bsds500", options={"splits": []}), tmp_path / "b", mirror=None)
    with pytest.raises(ConfigError, match=r"datasets\.t\.splits must be .*distinct.*\['train', 'train'\]"):
        fetch_dataset(_cfg("bsds500", options={"splits": ["train", "train"]}), tmp_path / "b", mirror=None)
    with pytest.raises(ConfigError, match=r"datasets\.t: unknown key 'split'.*did you mean 'splits'"):
        fetch_dataset(_cfg("bsds500", options={"split": "train"}), tmp_path / "b", mirror=None)
    val = min(n for n in bsds500_sha256() if n.startswith("val-"))
    with pytest.raises(ConfigError, match=rf"unknown image\(s\) \['{val}'\].*\['train'\]"):
        fetch_dataset(_cfg("bsds500", images=(val,), options={"splits": ["train"]}), tmp_path / "b", mirror=None)
    assert not (tmp_path / "b").exists()


# --- coco --------------------------------------------------------------------------------------


def _jpeg(seed, h=180, w=240, grey=False) -> bytes:
    """A smooth random image as JPEG bytes (what a photo looks like to the decoder, at small size)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(yy * rng.uniform(0.5, 1.5) + xx * rng.uniform(0.2, 1) + rng.integers(0, 255)) % 256] * 3, -1)
    arr = (arr + rng.integers(-20, 20, arr.shape)).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if grey else arr).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


COCO_IDS = [7, 42, 139, 285, 632, 724, 776, 785, 802, 872, 885, 1000]
GREY_ID = 632


@pytest.fixture(scope="module")
def coco_files():
    return {i: _jpeg(i, grey=i == GREY_ID) for i in COCO_IDS}


@pytest.fixture
def coco_server(coco_files):
    s = LocalServer({f"/train2017/{i:012d}.jpg": b for i, b in coco_files.items()})
    s.files["/train2017/000000000013.jpg"] = b"<html>not an image</html>"
    yield s
    s.close()


def _coco(server=None, **options):
    if server is not None:
        options.setdefault("base_url", server.url + "/")
    images = options.pop("images", None)
    max_images = options.pop("max_images", None)
    return _cfg("coco", images=images, max_images=max_images, options=options)


def _select(cfg):
    """``coco_select`` with the options parsed as ``fetch_dataset`` parses them."""
    return coco_select(cfg, DATASET_SOURCES.get("coco").parse_options(cfg))


def test_coco_explicit_ids_from_http(coco_server, coco_files, tmp_path):
    out = tmp_path / "coco"
    rows, skipped = fetch_dataset(_coco(coco_server, ids=[42, 7, 632, 7]), out, mirror=None)
    assert [r.name for r in rows] == ["train2017-000000000007", "train2017-000000000042", "train2017-000000000632"]
    assert skipped == [] and read_manifest(out) == rows
    for r, i in zip(rows, (7, 42, 632), strict=True):
        original = _decode(coco_files[i], tmp_path)
        assert r.pixel_sha256 == pixel_sha256(original) == pixel_sha256(load_rgb8(out / r.file))
        assert (r.height, r.width) == (180, 240)
        assert r.origin == f"{coco_server.url}/train2017/{i:012d}.jpg"
    assert np.array_equal(load_rgb8(out / rows[2].file)[..., 0], load_rgb8(out / rows[2].file)[..., 2])  # grey -> RGB
    assert sorted(coco_server.hits) == [f"/train2017/{i:012d}.jpg" for i in (7, 42, 632)]  # each fetched once
    assert _files(out) == ["images", *[f"images/{r.name}.png" for r in rows], "manifest.csv", "references", "skipped.csv"]


def test_coco_count_and_seed_are_deterministic(coco_server, tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# COCO ids\n" + "\n".join(str(i) for i in reversed(COCO_IDS)) + "\n\n785  # again\n")
    a = _select(_coco(ids=COCO_IDS, count=4, seed=0))
    assert a == sorted(random.Random(0).sample(sorted(COCO_IDS), 4))
    assert _select(_coco(ids=list(reversed(COCO_IDS)), count=4, seed=0)) == a  # input order does not matter
    assert _select(_coco(ids_file=str(ids_file), count=4, seed=0)) == a
    b = _select(_coco(ids=COCO_IDS, count=4, seed=1))
    assert b == sorted(random.Random(1).sample(sorted(COCO_IDS), 4)) and b != a
    assert _select(_coco(ids=COCO_IDS, count=4, seed=0, max_images=2)) == a[:2]

    rows1, _ = fetch_dataset(_coco(coco_server, ids_file=str(ids_file), count=3, seed=5), tmp_path / "c1", mirror=None)
    rows2, _ = fetch_dataset(_coco(coco_server, ids=COCO_IDS, count=3, seed=5), tmp_path / "c2", mirror=None)
    assert rows1 == rows2
    assert [r.name for r in rows1] == [f"train2017-{i:012d}" for i in sorted(random.Random(5).sample(COCO_IDS, 3))]


def test_coco_missing_image_is_an_error_naming_the_id(coco_server, tmp_path):
    with pytest.raises(DownloadError) as e:
        fetch_dataset(_coco(coco_server, ids=[7, 999]), tmp_path / "c", mirror=None)
    msg = str(e.value)
    assert "COCO image 999" in msg and f"{coco_server.url}/train2017/000000000999.jpg" in msg and "HTTP 404" in msg
    assert coco_server.hits.count("/train2017/000000000999.jpg") == 1  # a 404 is not retried

    with pytest.raises(DownloadError, match=r"COCO image 13 \(train2017\).*000000000013\.jpg.*cannot be read as an image"):
        fetch_dataset(_coco(coco_server, ids=[13]), tmp_path / "c", mirror=None)
    assert not (tmp_path / "c").exists() and os.listdir(tmp_path) == []  # no partial data dir, no temp files


def test_coco_sha256_param(coco_server, coco_files, tmp_path):
    import hashlib

    good = hashlib.sha256(coco_files[42]).hexdigest()
    rows, _ = fetch_dataset(_coco(coco_server, ids=[42, 7], sha256={42: good}), tmp_path / "c", mirror=None)
    assert len(rows) == 2
    with pytest.raises(DownloadError, match=rf"COCO image 42 .*000000000042\.jpg: file SHA-256 is {good}, expected 0+"):
        fetch_dataset(_coco(coco_server, ids=[42], sha256={"42": "0" * 64}), tmp_path / "c2", mirror=None)


def test_coco_from_a_mirror_without_network(coco_files, tmp_path):
    mirror = tmp_path / "m"
    url = COCO_URL.format(base_url=COCO_BASE_URL, split="val2017", id=139)
    mirror_path(url, mirror).parent.mkdir(parents=True)
    mirror_path(url, mirror).write_bytes(coco_files[139])
    rows, _ = fetch_dataset(_coco(ids=[139], split="val2017"), tmp_path / "c", mirror=mirror)
    assert [(r.name, r.origin) for r in rows] == [("val2017-000000000139", "http://images.cocodataset.org/val2017/000000000139.jpg")]
    assert rows[0].pixel_sha256 == pixel_sha256(_decode(coco_files[139], tmp_path))


def test_coco_local_path(coco_files, tmp_path):
    local = tmp_path / "train2017"
    local.mkdir()
    for i, data in coco_files.items():
        (local / f"{i:012d}.jpg").write_bytes(data)
    (local / "README.txt").write_text("not an image")
    (local / "1234.jpg").write_bytes(coco_files[7])  # not a 12-digit COCO name: not a candidate

    cfg = _coco(local_path=str(local), count=5, seed=3)
    chosen = _select(cfg)
    assert chosen == sorted(random.Random(3).sample(sorted(COCO_IDS), 5))
    rows, _ = fetch_dataset(cfg, tmp_path / "c", mirror=None)
    assert [r.name for r in rows] == [f"train2017-{i:012d}" for i in chosen]
    assert [r.origin for r in rows] == [str(local / f"{i:012d}.jpg") for i in chosen]
    assert [r.pixel_sha256 for r in rows] == [pixel_sha256(_decode(coco_files[i], tmp_path)) for i in chosen]

    with pytest.raises(ImageError, match=r"000000000999\.jpg: COCO image 999 is not in datasets\.t\.local_path"):
        fetch_dataset(_coco(local_path=str(local), ids=[7, 999]), tmp_path / "c2", mirror=None)
    (local / "000000000042.jpg").write_bytes(coco_files[42][:300])  # truncated
    with pytest.raises(ImageError, match=r"000000000042\.jpg: cannot be read.*COCO image 42"):
        fetch_dataset(_coco(local_path=str(local), ids=[42]), tmp_path / "c2", mirror=None)
    assert not (tmp_path / "c2").exists()


def test_coco_config_errors(tmp_path):
    for raw, pattern in [
        ({}, "needs `ids`, `ids_file` or `local_path`"),
        ({"ids": [1], "ids_file": "x.txt"}, "not both"),
        ({"ids": [1, -2]}, r"datasets\.t\.ids\[1\]: .*-2"),
        ({"ids": "1,2"}, r"datasets\.t\.ids: .*, got '1,2'"),
        ({"ids": [1, 2], "count": 0}, r"datasets\.t\.count: .*greater than 0"),
        ({"ids": [1, 2], "count": 3}, r"datasets\.t\.count: 3 images asked for, only 2"),
        ({"ids": [1, 2], "count": 1, "seed": "abc"}, r"datasets\.t\.seed"),
        ({"ids_file": str(tmp_path / "nope.txt")}, r"datasets\.t\.ids_file: cannot read"),
        ({"local_path": str(tmp_path / "nope")}, r"datasets\.t\.local_path: .* is not a directory"),
        ({"local_path": str(tmp_path / "nope"), "ids": [1]}, r"datasets\.t\.local_path: .* is not a directory"),
        ({"ids": [1], "split": "../x"}, r"datasets\.t\.split"),
        ({"ids": [1], "sha256": {1: "abc"}}, r"datasets\.t\.sha256\[1\]: .*'abc'"),
        ({"ids": [1], "splits": "val2017"}, r"datasets\.t: unknown key 'splits'.*did you mean 'split'"),
        ({"ids": [1], "images": ["000000000001"]}, r"datasets\.t\.images"),
    ]:
        with pytest.raises(ConfigError, match=pattern):
            fetch_dataset(_coco(**raw), tmp_path / "c", mirror=None)
    bad = tmp_path / "ids.txt"
    bad.write_text("1\n2x\n")
    with pytest.raises(ConfigError, match=r"ids\.txt: line 2: .*'2x'"):
        _select(_coco(ids_file=str(bad)))
    assert not (tmp_path / "c").exists()


def test_coco_through_params(coco_server, tmp_path):
    entry = {"source": "coco", "base_url": coco_server.url, "ids": [885, 872], "max_images": 1}
    budgets = {"x": {"defaults": {}, "models": {}}}
    train = {"data": "train", "models": [], "qualities": [], "budget": "x", "lambdas": {}, "budgets": budgets}
    cfg = build_config({"data": {"eval": ["train"]}, "datasets": {"train": entry}, "train": train}).dataset("train")
    assert cfg.max_images == 1 and cfg.options == {"base_url": coco_server.url, "ids": [885, 872]}
    rows, _ = fetch_dataset(cfg, tmp_path / "c", mirror=None)
    assert [r.name for r in rows] == ["train2017-000000000872"]
