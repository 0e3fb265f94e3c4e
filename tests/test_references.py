"""Tests for benchmark.analysis.references (Curve, read_curve, write_compressai_json)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from benchmark.analysis.references import Curve, read_curve, write_compressai_json

# Published result files mirrored under $BENCHMARK_MIRROR (same layout as the URLs).
COMPRESSAI = ("raw.githubusercontent.com/InterDigitalInc/CompressAI/"
              "869a9f5d4126d015b7de8f203fe60ee9e1608193/results")
LOSSY_VAE = ("raw.githubusercontent.com/duanzhiihao/lossy-vae/"
             "005c3c22e0087c4dc1c65916e27831411b9c41cd/results")


def _mirror() -> Path:
    root = os.environ.get("BENCHMARK_MIRROR")
    if not root:
        pytest.skip("BENCHMARK_MIRROR not set")
    return Path(root)


def _json_files(sub: str):
    files = sorted((_mirror() / sub).rglob("*.json"))
    if not files:
        pytest.skip(f"no result files under $BENCHMARK_MIRROR/{sub}")
    return files


def _lists(path: Path) -> dict:
    data = json.loads(path.read_text())
    return data.get("results", data)


@pytest.mark.parametrize("sub", [COMPRESSAI, LOSSY_VAE])
def test_read_all_published_result_files(sub):
    files = _json_files(sub)
    assert any(f.parent.name == "kodak" for f in files)
    for f in files:
        c = read_curve(f)
        raw = _lists(f)
        n = len(raw["bpp"])
        assert c.bpp.shape == (n,) and c.bpp.dtype == np.float64, f
        assert np.all(np.diff(c.bpp) >= 0) and c.bpp[0] > 0, f
        assert np.array_equal(np.sort(raw["bpp"]), c.bpp), f
        assert c.get("psnr") is not None or c.get("ms_ssim") is not None, f
        if c.get("psnr") is not None:
            assert c.get("psnr").shape == (n,) and np.all((c.get("psnr") > 15) & (c.get("psnr") < 60)), f
        if c.get("ms_ssim") is not None:
            assert c.get("ms_ssim").shape == (n,) and np.all((c.get("ms_ssim") > 0.5) & (c.get("ms_ssim") < 1)), f
        assert c.name and c.source == str(f)


def test_values_stay_paired_with_their_rate():
    # jpeg2000.json lists its points from high to low rate; after sorting each PSNR must still
    # belong to its bpp.
    f = _mirror() / COMPRESSAI / "image/kodak/jpeg2000.json"
    if not f.exists():
        pytest.skip(f"{f} not in mirror")
    raw = _lists(f)
    c = read_curve(f)
    assert raw["bpp"][0] > raw["bpp"][-1]  # stored descending
    for b, p, m in zip(raw["bpp"], raw["psnr-rgb"], raw["ms-ssim-rgb"]):
        i = int(np.flatnonzero(c.bpp == b)[0])
        assert (c.get("psnr")[i], c.get("ms_ssim")[i]) == (p, m)


def test_old_and_new_compressai_keys_read_the_same():
    # lossy-vae ships CompressAI's VTM curve with the older "psnr"/"ms-ssim" keys.
    new = _mirror() / COMPRESSAI / "image/kodak/vtm.json"
    old = _mirror() / LOSSY_VAE / "kodak/kodak-vtm-compressai.json"
    if not (new.exists() and old.exists()):
        pytest.skip("VTM result files not in mirror")
    a, b = read_curve(new), read_curve(old)
    assert a.name == b.name == "VTM"
    np.testing.assert_array_equal(a.bpp, b.bpp)
    np.testing.assert_array_equal(a.get("psnr"), b.get("psnr"))
    np.testing.assert_array_equal(a.get("ms_ssim"), b.get("ms_ssim"))


def test_ms_ssim_db_files_convert_to_linear():
    f = _mirror() / COMPRESSAI / "image/kodak/paper-elic2022_ms-ssim.json"
    if not f.exists():
        pytest.skip(f"{f} not in mirror")
    raw = _lists(f)
    c = read_curve(f)
    assert c.get("psnr") is None
    order = np.argsort(raw["bpp"])
    np.testing.assert_allclose(c.get("ms_ssim_db"), np.asarray(raw["ms-ssim-db-rgb"])[order], atol=1e-9)


def test_lossy_vae_top_level_lists_and_stem_name(tmp_path):
    f = tmp_path / "kodak-foo.json"
    f.write_text(json.dumps({"bpp": [0.5, 0.2], "psnr": [33.0, 29.0]}))
    c = read_curve(f)
    assert c.name == "kodak-foo" and c.get("ms_ssim") is None and c.get("ms_ssim_db") is None
    np.testing.assert_array_equal(c.bpp, [0.2, 0.5])
    np.testing.assert_array_equal(c.get("psnr"), [29.0, 33.0])


@pytest.mark.parametrize(
    "content, match",
    [
        ({"name": "x", "results": {"psnr": [30.0]}}, "no 'bpp'"),
        ({"name": "x", "results": {"bpp": [0.1], "mse": [0.01]}}, "no PSNR"),
        ({"name": "x", "results": {"bpp": [0.1, 0.2], "psnr": [30.0]}}, "2 'bpp' values but 1"),
        ({"name": "x", "results": {"bpp": [0.1], "psnr": ["a"]}}, "non-numeric"),
        ({"name": "x", "results": {"bpp": [0.1], "psnr": [float("nan")]}}, "NaN"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path, content, match):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match) as e:
        read_curve(f)
    assert str(f) in str(e.value)


def test_curve_sorts_and_freezes():
    c = Curve("c", [0.4, 0.1, 0.2], {"psnr": [33.0, 28.0, 30.0], "ms_ssim": [0.99, 0.9, 0.95]}, "mem")
    np.testing.assert_array_equal(c.bpp, [0.1, 0.2, 0.4])
    np.testing.assert_array_equal(c.get("psnr"), [28.0, 30.0, 33.0])
    np.testing.assert_allclose(c.get("ms_ssim_db"), [10.0, -10 * np.log10(0.05), 20.0])  # dB of the mean MS-SSIM
    assert c.get("lpips") is None
    with pytest.raises(ValueError):
        c.bpp[0] = 1.0  # read-only
    with pytest.raises(TypeError):
        c.values["psnr"] = c.bpp  # the mapping is read-only too
    with pytest.raises(ValueError, match="2 psnr values"):
        Curve("c", [0.1], {"psnr": [30.0, 31.0]}, "mem")
    with pytest.raises(ValueError, match="at least one metric"):
        Curve("c", [0.1], {}, "mem")


def test_write_matches_compressai_layout_and_round_trips(tmp_path):
    out = tmp_path / "ours.json"
    bpp, psnr, ms = [0.3, 0.1], [31.5, 27.25], [0.97, 0.91]
    enc, dec = [0.02, 0.01], [0.005, 0.004]
    assert write_compressai_json(out, "ours-q", "Inference (ans)", bpp, psnr, ms, enc, dec) == out
    # Byte layout of compressai 1.2.8 utils/eval_model/__main__.py: json.dumps(output, indent=2).
    expected = {"name": "ours-q", "description": "Inference (ans)",
                "results": {"psnr-rgb": psnr, "ms-ssim-rgb": ms, "bpp": bpp,
                            "encoding_time": enc, "decoding_time": dec}}
    assert out.read_text() == json.dumps(expected, indent=2)
    assert [p.name for p in tmp_path.iterdir()] == ["ours.json"]  # no temp file left behind
    c = read_curve(out)
    assert (c.name, c.description) == ("ours-q", "Inference (ans)")
    np.testing.assert_array_equal(c.bpp, sorted(bpp))
    np.testing.assert_array_equal(c.get("psnr"), [27.25, 31.5])
    np.testing.assert_array_equal(c.get("ms_ssim"), [0.91, 0.97])


def test_write_without_optional_lists_and_rejects_bad_input(tmp_path):
    out = tmp_path / "r.json"
    write_compressai_json(out, "n", "d", np.array([0.1, 0.2]), np.array([28.0, 30.0]), None)
    assert list(json.loads(out.read_text())["results"]) == ["psnr-rgb", "bpp"]
    with pytest.raises(ValueError, match="psnr: 1 values, expected 2"):
        write_compressai_json(out, "n", "d", [0.1, 0.2], [28.0], None)
    with pytest.raises(ValueError, match="NaN"):
        write_compressai_json(out, "n", "d", [0.1, 0.2], [28.0, float("nan")], None)
