"""benchmark.data.sources, benchmark.data.dataset and the fetch stage: folder, builtin and kodak
sources, strict source options, atomic data dirs."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.config import ConfigError, DatasetConfig, build_config
from benchmark.data.dataset import fetch_dataset, fetch_references
from benchmark.data.download import DownloadError, mirror_path
from benchmark.data.images import load_rgb8, pixel_sha256, read_manifest
from benchmark.data.sources import DATASET_SOURCES
from benchmark.data.sources.builtin import BUILTIN_IMAGES, builtin_image_path
from benchmark.data.sources.kodak import KODAK_PIXEL_SHA256, KODAK_URL
from benchmark.stages import fetch

MIRROR = os.environ.get("BENCHMARK_MIRROR")
needs_mirror = pytest.mark.skipif(
    not (MIRROR and mirror_path(KODAK_URL.format(name="kodim01"), MIRROR).is_file()),
    reason="set BENCHMARK_MIRROR to a mirror holding r0k.us/graphics/kodak/kodak/ to run",
)


def _cfg(source, **kw):
    """A ``DatasetConfig``: the common keys as fields, every other keyword a source option."""
    common = {k: kw.pop(k) for k in ("name", "images", "max_images", "references") if k in kw}
    return DatasetConfig(**{"name": "t", **common}, source=source, options=kw)


def _rgb(h=180, w=200, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _folder_with_mix(d: Path):
    d.mkdir()
    Image.fromarray(_rgb(seed=1)).save(d / "a_good.png")
    Image.fromarray(_rgb(seed=2)).save(d / "b_photo.JPG", quality=90)
    Image.fromarray(_rgb(seed=3)[..., 0]).save(d / "c_gray.bmp")
    (d / "d_broken.png").write_bytes((d / "a_good.png").read_bytes()[:500])
    (d / "e_text.jpg").write_text("not a jpeg")
    Image.fromarray(_rgb(100, 300)).save(d / "f_small.png")
    rgba = np.dstack([_rgb(seed=4), np.full((180, 200), 7, np.uint8)])
    Image.fromarray(rgba).save(d / "g_alpha.png")
    (d / "notes.txt").write_text("ignored: not an image suffix")
    (d / "sub").mkdir()
    Image.fromarray(_rgb()).save(d / "sub" / "nested.png")  # not recursive


def test_folder_mix_of_good_and_bad_files(tmp_path, capsys):
    src = tmp_path / "src"
    _folder_with_mix(src)
    out = tmp_path / "data" / "mine"
    rows, skipped = fetch_dataset(_cfg("folder", path=str(src)), out, mirror=None)

    assert [r.name for r in rows] == ["a_good", "b_photo", "c_gray"]
    assert read_manifest(out) == rows
    for r in rows:
        written = load_rgb8(out / r.file)
        assert r.file == f"images/{r.name}.png"
        assert (r.height, r.width) == written.shape[:2] == (180, 200)
        assert r.pixel_sha256 == pixel_sha256(written)
    original = next(p for p in src.iterdir() if p.stem == "b_photo")
    assert rows[1].pixel_sha256 == pixel_sha256(load_rgb8(original))  # JPEG decoded once, stored losslessly
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a_good.png", "b_photo.png", "c_gray.png"]

    table = _read_csv(out / "skipped.csv")
    assert table[0] == ["file", "reason"]
    reasons = dict(table[1:])
    assert sorted(reasons) == ["d_broken.png", "e_text.jpg", "f_small.png", "g_alpha.png", "notes.txt", "sub"]
    assert reasons == dict(skipped)
    assert "cannot be read" in reasons["d_broken.png"] and "cannot be read" in reasons["e_text.jpg"]
    assert "300x100" in reasons["f_small.png"] and "alpha channel" in reasons["g_alpha.png"]
    assert "not an image file name (suffix '.txt'" in reasons["notes.txt"] and "a directory" in reasons["sub"]
    err = capsys.readouterr().err
    assert f"skipping {src / 'g_alpha.png'}: " in err and err.count("warning:") == 6
    assert (out / "references").is_dir() and not any((out / "references").iterdir())


def test_folder_alpha_flatten_and_max_images_counts_usable(tmp_path):
    src = tmp_path / "src"
    _folder_with_mix(src)
    rows, skipped = fetch_dataset(_cfg("folder", path=str(src), alpha="flatten"), tmp_path / "o", mirror=None)
    assert "g_alpha" in [r.name for r in rows] and "g_alpha.png" not in dict(skipped)

    rows, skipped = fetch_dataset(_cfg("folder", path=str(src), max_images=4, alpha="flatten"), tmp_path / "o", mirror=None)
    assert [r.name for r in rows] == ["a_good", "b_photo", "c_gray", "g_alpha"]
    assert [f for f, _ in skipped] == ["notes.txt", "sub", "d_broken.png", "e_text.jpg", "f_small.png"]

    rows, _ = fetch_dataset(_cfg("folder", path=str(src), images=("c_gray", "a_good")), tmp_path / "o", mirror=None)
    assert [r.name for r in rows] == ["a_good", "c_gray"]
    with pytest.raises(ConfigError, match=r"unknown image\(s\) \['zzz'\]"):
        fetch_dataset(_cfg("folder", path=str(src), images=("zzz",)), tmp_path / "o", mirror=None)


def test_folder_lists_every_unused_entry_and_scores_duplicates_once(tmp_path, capsys):
    """Dangling symlinks, directories named like images, other files and identical pixels (a
    symlink to an image, a lossless copy in another format) are all skipped with their reason,
    printed and in skipped.csv; of identical images the first in name order is kept."""
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(_rgb(seed=1)).save(src / "a.png")
    Image.fromarray(_rgb(seed=2)).save(src / "b.png")
    (src / "c_link.png").symlink_to(src / "a.png")  # the same image again
    Image.fromarray(_rgb(seed=2)).save(src / "d_copy.bmp")  # b's pixels, another format
    (src / "e_dangling.png").symlink_to(tmp_path / "gone.png")
    (src / "f_dir.jpg").mkdir()
    (src / "g_link_to_dir.png").symlink_to(src / "f_dir.jpg")
    (src / "h.txt").write_text("x")
    out = tmp_path / "o"
    rows, skipped = fetch_dataset(_cfg("folder", path=str(src)), out, mirror=None)
    assert [r.name for r in rows] == ["a", "b"]
    reasons = dict(skipped)
    assert sorted(reasons) == ["c_link.png", "d_copy.bmp", "e_dangling.png", "f_dir.jpg", "g_link_to_dir.png", "h.txt"]
    assert reasons["c_link.png"].startswith("duplicate: the same pixels as a.png") and "b.png" in reasons["d_copy.bmp"]
    assert reasons["e_dangling.png"] == f"a symlink to {tmp_path / 'gone.png'}, which does not exist"
    assert "a directory" in reasons["f_dir.jpg"] and "a directory" in reasons["g_link_to_dir.png"]
    assert dict(_read_csv(out / "skipped.csv")[1:]) == reasons
    err = capsys.readouterr().err
    assert all(f"skipping {src / name}: {why}" in err for name, why in reasons.items())

    rows, skipped = fetch_dataset(_cfg("folder", path=str(src), images=("b",)), out, mirror=None)
    assert [r.name for r in rows] == ["b"] and dict(skipped)["a.png"] == "not in datasets.t.images"
    rows, skipped = fetch_dataset(_cfg("folder", path=str(src), max_images=1), out, mirror=None)
    assert dict(skipped)["b.png"] == "beyond datasets.t.max_images (1)"


def test_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="is not a directory"):
        fetch_dataset(_cfg("folder", path=str(tmp_path / "nope")), tmp_path / "o", mirror=None)

    dup = tmp_path / "dup"
    dup.mkdir()
    Image.fromarray(_rgb()).save(dup / "x.png")
    Image.fromarray(_rgb()).save(dup / "X.jpg")
    with pytest.raises(ConfigError, match="same name"):
        fetch_dataset(_cfg("folder", path=str(dup)), tmp_path / "o", mirror=None)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_text("nope")
    with pytest.raises(ConfigError, match="no usable image"):
        fetch_dataset(_cfg("folder", path=str(bad)), tmp_path / "o", mirror=None)
    assert not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_builtin_default_and_selection(tmp_path):
    rows, skipped = fetch_dataset(_cfg("builtin"), tmp_path / "b", mirror=None)
    assert [r.name for r in rows] == ["astronaut", "chelsea", "coffee", "rocket"] and skipped == []
    assert (rows[0].height, rows[0].width) == (512, 512)
    assert rows[0].pixel_sha256 == pixel_sha256(load_rgb8(builtin_image_path("astronaut")))
    assert rows[0].origin.startswith("scikit-image ")

    rows, _ = fetch_dataset(_cfg("builtin", images=("grace_hopper", "coffee"), max_images=1), tmp_path / "b", mirror=None)
    assert [r.name for r in rows] == ["coffee"]
    assert sorted(p.name for p in (tmp_path / "b" / "images").iterdir()) == ["coffee.png"]  # old dir replaced


def test_builtin_unknown_name_lists_known(tmp_path):
    with pytest.raises(ConfigError) as e:
        fetch_dataset(_cfg("builtin", images=("camera_man",)), tmp_path / "b", mirror=None)
    assert "camera_man" in str(e.value) and "astronaut" in str(e.value) and "grace_hopper" in str(e.value)


def test_every_builtin_image_is_a_usable_colour_photo():
    for name, info in BUILTIN_IMAGES.items():
        arr = load_rgb8(builtin_image_path(name))
        assert arr.shape[2] == 3 and min(arr.shape[:2]) >= 161, name
        assert np.abs(arr[..., 0].astype(int) - arr[..., 2]).mean() > 1, f"{name} looks grey"
        assert info.package in ("scikit-image", "matplotlib")


def test_unknown_source(tmp_path):
    assert {"builtin", "kodak", "folder", "bsds500", "wikipedia-photos", "coco"} <= set(DATASET_SOURCES)
    with pytest.raises(ConfigError, match="unknown source 'flickr'"):
        fetch_dataset(_cfg("flickr"), tmp_path / "x", mirror=None)
    with pytest.raises(ConfigError, match=r"^datasets\.t\.source: unknown source 'kodac'; known: .*\(did you mean 'kodak'\?\)"):
        fetch_dataset(_cfg("kodac"), tmp_path / "x", mirror=None)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "source,options,key,closest",
    [
        ("kodak", {"max_image": 3}, "max_image", "max_images"),
        ("builtin", {"image": ["coffee"]}, "image", "images"),
        ("wikipedia-photos", {"referencs": []}, "referencs", "references"),
        ("bsds500", {"splitz": ["train"]}, "splitz", "splits"),
        ("folder", {"path": "x", "alhpa": "flatten"}, "alhpa", "alpha"),
        ("coco", {"ids": [1], "sed": 3}, "sed", "seed"),
    ],
)
def test_unknown_source_option_names_key_and_closest(tmp_path, source, options, key, closest):
    with pytest.raises(ConfigError) as e:
        fetch_dataset(_cfg(source, **options), tmp_path / "x", mirror=None)
    msg = str(e.value)
    assert msg.startswith(f"datasets.t: unknown key {key!r}; known: ") and f"(did you mean {closest!r}?)" in msg
    known = msg.split("known: ")[1].split(" (")[0].split(", ")
    assert {"source", "images", "max_images", "references"} <= set(known)  # the common keys are valid names too
    assert not (tmp_path / "x").exists() and os.listdir(tmp_path) == []


def test_unknown_source_option_through_params():
    params = _params({"source": "kodak", "max_image": 3})
    with pytest.raises(ConfigError, match=r"datasets\.b: unknown key 'max_image'.*did you mean 'max_images'"):
        fetch_dataset(build_config(params).dataset("b"), Path("unused"), mirror=None)


def test_folder_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"^datasets\.t\.path: missing; the 'folder' source requires it$"):
        fetch_dataset(_cfg("folder"), tmp_path / "o", mirror=None)
    with pytest.raises(ConfigError, match=r"datasets\.t\.path: missing"):
        fetch_dataset(_cfg("folder", alpha="flatten"), tmp_path / "o", mirror=None)
    with pytest.raises(ConfigError, match=r"datasets\.t\.alpha: Input should be 'refuse' or 'flatten', got 'blend'"):
        fetch_dataset(_cfg("folder", path=str(tmp_path), alpha="blend"), tmp_path / "o", mirror=None)
    assert not (tmp_path / "o").exists()


def test_sources_declare_their_options():
    opts = {name: DATASET_SOURCES.get(name).parse_options(_cfg(name, **o)) for name, o in [
        ("kodak", {}), ("builtin", {}), ("wikipedia-photos", {}), ("folder", {"path": "p"}), ("bsds500", {}), ("coco", {}),
    ]}
    assert opts["folder"].alpha == "refuse" and opts["bsds500"].splits == ("train", "val")
    assert (opts["coco"].split, opts["coco"].seed, opts["coco"].count) == ("train2017", 0, None)
    with pytest.raises(Exception):  # frozen
        opts["folder"].alpha = "flatten"


def _put(mirror, url, data: bytes):
    p = mirror_path(url, mirror)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


REF_OK = "http://127.0.0.1:9/results/ok.json"
REF_FLAT = "http://127.0.0.1:9/results/flat.json"
REF_BAD = "http://127.0.0.1:9/results/bad.json"


def test_fetch_references(tmp_path):
    mirror = tmp_path / "m"
    _put(mirror, REF_OK, json.dumps({"name": "X", "results": {"bpp": [0.1], "psnr": [30]}}).encode())
    _put(mirror, REF_FLAT, json.dumps({"bpp": [0.1, 0.2]}).encode())
    _put(mirror, REF_BAD, json.dumps({"name": "no curves"}).encode())
    got = fetch_references([REF_OK, REF_FLAT], tmp_path / "refs", mirror=mirror)
    assert [p.name for p in got] == ["ok.json", "flat.json"]
    assert json.loads(got[0].read_text())["name"] == "X"
    with pytest.raises(DownloadError, match="bad.json.*not an RD results JSON"):
        fetch_references([REF_BAD], tmp_path / "refs", mirror=mirror)
    with pytest.raises(ConfigError, match="duplicate"):
        fetch_references([REF_OK, REF_OK], tmp_path / "refs", mirror=mirror)


def test_failure_midway_leaves_old_dir_untouched(tmp_path):
    out = tmp_path / "data" / "b"
    fetch_dataset(_cfg("builtin", images=("chelsea",)), out, mirror=None)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    mirror = tmp_path / "m"
    _put(mirror, REF_OK, b"{}")  # images succeed, then the reference fails verification
    cfg = _cfg("builtin", images=("coffee",), references=(REF_OK,))
    with pytest.raises(DownloadError, match="ok.json"):
        fetch_dataset(cfg, out, mirror=mirror)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["b"]  # no temp or old dirs left


def test_references_land_in_data_dir(tmp_path):
    mirror = tmp_path / "m"
    _put(mirror, REF_OK, json.dumps({"results": {"bpp": [1.0]}}).encode())
    fetch_dataset(_cfg("builtin", images=("chelsea",), references=(REF_OK,)), tmp_path / "d", mirror=mirror)
    assert [p.name for p in (tmp_path / "d" / "references").iterdir()] == ["ok.json"]


def test_kodak_wrong_mirror_file_is_refused(tmp_path):
    mirror = tmp_path / "m"
    wrong = tmp_path / "wrong.png"
    Image.fromarray(_rgb(512, 768)).save(wrong)
    _put(mirror, KODAK_URL.format(name="kodim01"), wrong.read_bytes())
    with pytest.raises(DownloadError) as e:
        fetch_dataset(_cfg("kodak", max_images=1), tmp_path / "k", mirror=mirror)
    msg = str(e.value)
    assert "kodim01.png" in msg and KODAK_PIXEL_SHA256["kodim01"] in msg and "mirror file" in msg
    assert not (tmp_path / "k").exists()


def test_kodak_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="kodim99"):
        fetch_dataset(_cfg("kodak", images=("kodim99",)), tmp_path / "k", mirror=tmp_path)


@needs_mirror
def test_kodak_from_real_mirror(tmp_path):
    rows, skipped = fetch_dataset(_cfg("kodak", max_images=2), tmp_path / "k", mirror=Path(MIRROR))
    assert [r.name for r in rows] == ["kodim01", "kodim02"] and skipped == []
    for r in rows:
        assert (r.height, r.width) == (512, 768)
        assert r.pixel_sha256 == KODAK_PIXEL_SHA256[r.name] == pixel_sha256(load_rgb8(tmp_path / "k" / r.file))
        assert r.origin == KODAK_URL.format(name=r.name)
    rows, _ = fetch_dataset(_cfg("kodak", images=("kodim04",)), tmp_path / "k", mirror=Path(MIRROR))
    assert [(r.name, r.height, r.width) for r in rows] == [("kodim04", 768, 512)]


@needs_mirror
def test_kodak_one_good_one_wrong_file(tmp_path):
    mirror = tmp_path / "m"
    good = mirror_path(KODAK_URL.format(name="kodim01"), MIRROR)
    _put(mirror, KODAK_URL.format(name="kodim01"), good.read_bytes())
    _put(mirror, KODAK_URL.format(name="kodim02"), good.read_bytes())  # kodim01's pixels under kodim02's name
    with pytest.raises(DownloadError, match=r"kodim02\.png") as e:
        fetch_dataset(_cfg("kodak", max_images=2), tmp_path / "k", mirror=mirror)
    assert "kodim01.png:" not in str(e.value)
    assert not (tmp_path / "k").exists()


def test_pixel_hashes_match_the_mirror_file():
    if not MIRROR or not (Path(MIRROR) / "r0k.us/graphics/kodak/kodak/PIXEL_SHA256").is_file():
        pytest.skip("set BENCHMARK_MIRROR to check KODAK_PIXEL_SHA256 against the mirror's PIXEL_SHA256")
    lines = (Path(MIRROR) / "r0k.us/graphics/kodak/kodak/PIXEL_SHA256").read_text().splitlines()
    table = {ln.split()[1].removesuffix(".png"): ln.split()[0] for ln in lines if ln.strip()}
    assert table == KODAK_PIXEL_SHA256


def _params(entry):
    """The smallest complete params mapping with one data set ``b`` (``entry``)."""
    budgets = {"x": {"defaults": {}, "models": {}}}
    train = {"data": "b", "models": [], "qualities": [], "budget": "x", "lambdas": {}, "budgets": budgets}
    return {"data": {"eval": ["b"], "mirror": None}, "datasets": {"b": entry}, "train": train}


def test_fetch_stage_cli(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(_params({"source": "builtin", "images": ["rocket", "chelsea"]})))  # JSON is YAML
    assert fetch.main(["--params", str(params), "--dataset", "b", "--out", str(tmp_path / "out"), "--mirror", str(tmp_path)]) == 0
    assert "2 images" in capsys.readouterr().out
    assert [r.name for r in read_manifest(tmp_path / "out")] == ["chelsea", "rocket"]
    with pytest.raises(ConfigError, match="mirror directory"):
        fetch.main(["--params", str(params), "--dataset", "b", "--out", str(tmp_path / "o2"), "--mirror", str(tmp_path / "nope")])
    with pytest.raises(ConfigError, match="datasets: unknown data set 'zzz'"):
        fetch.main(["--params", str(params), "--dataset", "zzz", "--out", str(tmp_path / "o3")])
