"""The evaluate, report and check stages on real (small) data, and the CLI around them."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import benchmark.codecs.classical  # noqa: F401  (registers the classical codecs)
from benchmark.analysis.references import read_curve, write_compressai_json
from benchmark.check import compare
from benchmark.cli import main as cli_main
from benchmark.codecs.base import build_codec
from benchmark.config import CheckConfig, ConfigError, DatasetConfig, build_config, load_config, read_params
from benchmark.data.dataset import fetch_dataset
from benchmark.data.images import load_rgb8, read_manifest
from benchmark.evaluation import evaluate
from benchmark.metrics import distortion_metrics
from benchmark.report import report
from benchmark.results import read_results, result_columns, write_csv_atomic
from test_results_files import assert_links_exist

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "small"
    fetch_dataset(DatasetConfig(name="small", source="builtin", images=("chelsea", "coffee")), out, mirror=None)
    return out


@pytest.fixture(scope="module")
def results_dir(small_set, tmp_path_factory):
    d = tmp_path_factory.mktemp("results")
    manifest = read_manifest(small_set)
    for name, rps in (("jpeg", [10, 30, 50, 70, 90]), ("webp", [10, 30, 50, 70, 90])):
        df = evaluate(name, build_codec(name, {}), rps, manifest, small_set, "small", "hash", workers=2, progress=False)
        write_csv_atomic(df, d / f"{name}.csv")
    return d


def test_evaluate_rows_are_real_measurements(small_set, results_dir):
    df = read_results(results_dir / "jpeg.csv")
    assert list(df.columns) == result_columns()
    assert len(df) == 2 * 5 and set(df.image) == {"chelsea", "coffee"}
    assert np.allclose(df.bpp, 8 * df["bytes"] / (df.height * df.width))
    # Re-encode one row directly and compare bytes and PSNR.
    row = df[(df.image == "coffee") & (df.rate_point == 50)].iloc[0]
    img = load_rgb8(small_set / "images" / "coffee.png")
    codec = build_codec("jpeg", {})
    data = codec.encode(img, 50)
    assert row["bytes"] == len(data)
    # CSVs keep 10 significant digits (write_csv_atomic): 1e-7 dB is well inside that.
    assert row.psnr == pytest.approx(distortion_metrics(img, codec.decode(data))["psnr"], abs=1e-7)
    assert (df.encode_s > 0).all() and (df.decode_s > 0).all()
    assert df.git_rev.notna().all() and df.codec_library.str.contains("libjpeg").all()


def test_evaluate_serial_equals_parallel(small_set, results_dir):
    manifest = read_manifest(small_set)
    serial = evaluate("webp", build_codec("webp", {}), [10, 30, 50, 70, 90], manifest, small_set, "small", "hash", workers=1, progress=False)
    parallel = read_results(results_dir / "webp.csv")
    cols = ["image", "rate_point", "bytes", "psnr", "ms_ssim"]
    pd.testing.assert_frame_equal(serial[cols].reset_index(drop=True), parallel[cols].reset_index(drop=True), check_dtype=False)


def test_evaluate_refuses_changed_images(small_set, tmp_path):
    import shutil

    copy = tmp_path / "small"
    shutil.copytree(small_set, copy)
    img = load_rgb8(copy / "images" / "coffee.png").copy()
    img[0, 0] ^= 1
    from benchmark.data.images import save_png_atomic

    save_png_atomic(img, copy / "images" / "coffee.png")
    with pytest.raises(ValueError, match="coffee.png: pixels differ from the manifest"):
        evaluate("jpeg", build_codec("jpeg", {}), [50], read_manifest(copy), copy, "small", "h", workers=1, progress=False)


def _params(tmp_path):
    """The project's params.yaml with the run of these tests: JPEG and WebP, a published "Ref"
    curve as reference anchor and WebP's counterpart."""
    from ruamel.yaml import YAML

    p = read_params(ROOT / "params.yaml")
    p["evaluate"].update(codecs=["jpeg", "webp"], learned=[], variants=[])
    p["report"].update(anchor="jpeg", reference_anchor="Ref", bd_methods=["pchip", "cubic"], published_counterparts={"webp": "Ref"})
    path = tmp_path / "params.yaml"
    with open(path, "w") as f:
        YAML(typ="safe", pure=True).dump(p, f)
    return path


def test_report_outputs(small_set, results_dir, tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "references").mkdir(parents=True)
    jpeg = pd.read_csv(results_dir / "jpeg.csv").groupby("rate_point")[["bpp", "psnr", "ms_ssim"]].mean()
    # A published "Ref" curve: our JPEG with 20 % fewer bits at the same quality.
    write_compressai_json(
        data_dir / "references" / "ref.json", "Ref", "test", (jpeg.bpp * 0.8).tolist(), jpeg.psnr.tolist(), jpeg.ms_ssim.tolist()
    )
    cfg = load_config(_params(tmp_path)).report
    out = tmp_path / "out"
    report("small", ["jpeg", "webp"], results_dir, data_dir, out, cfg)

    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.codec) == {"jpeg", "webp"} and (summary.n_images == 2).all()
    bd = pd.read_csv(out / "bd_rate.csv")
    self_bd = bd[(bd.codec == "jpeg") & (bd.anchor == "jpeg")]
    assert np.allclose(self_bd.bd_rate_pct, 0, atol=1e-9)
    vs_ref = bd[(bd.codec == "jpeg") & (bd.anchor == "Ref") & (bd.metric == "psnr") & (bd.anchor_kind == "published")]
    assert np.allclose(vs_ref.bd_rate_pct, 25.0, atol=1e-6)  # 1/0.8 - 1
    assert set(bd[bd.anchor_kind == "counterpart"].codec) == {"webp"}
    md = (out / "bd_rate.md").read_text()
    assert "## Anchor: jpeg (our run)" in md and "## Anchor: Ref (published curve)" in md and "same codec" in md
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["jpeg"]["pchip"]["vs_published_ref"]["psnr"]["bd_rate_pct"] == pytest.approx(25.0, abs=1e-3)
    webp = metrics["webp"]["pchip"]["vs_jpeg"]["psnr"]
    assert webp["bd_rate_ci_low_pct"] <= webp["bd_rate_pct"] <= webp["bd_rate_ci_high_pct"] and 0 <= webp["win_fraction"] <= 1
    assert not any(" " in k for k in _keys(metrics)) and "mean_bpp" not in metrics["jpeg"]
    exported = read_curve(out / "compressai" / "webp.json")
    s = summary[summary.codec == "webp"].sort_values("bpp")
    assert np.allclose(exported.bpp, s.bpp) and np.allclose(exported.get("psnr"), s.psnr)
    for stem in ("rd-psnr", "rd-ms-ssim"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 10_000
        assert (out / "figures-pdf" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    assert {p.suffix for p in (out / "figures").iterdir()} == {".png"}  # the folder DVC renders: images only
    # The data set's README: figures embedded, the main tables, links only to files beside it, no machine path.
    readme = (out / "README.md").read_text()
    assert "![Rate-distortion: PSNR (RGB)](figures/rd-psnr.png)" in readme and "## BD-rate (pchip)" in readme
    assert "| webp |" in readme and "## Codecs" in readme and "## Provenance" in readme
    assert_links_exist(out / "README.md")
    assert str(tmp_path) not in readme and str(results_dir) not in readme
    per_image = pd.read_csv(out / "bd_rate_per_image.csv")
    assert set(per_image.image) == {"chelsea", "coffee"} and set(per_image.codec) == {"webp"}


def _keys(d):
    for k, v in d.items():
        yield k
        if isinstance(v, dict):
            yield from _keys(v)


def test_report_pairs_compare_two_of_our_codecs(results_dir, tmp_path):
    import dataclasses

    cfg = dataclasses.replace(load_config(_params(tmp_path)).report, pairs=(("jpeg", "webp"), ("jpeg", "avif")))
    report("small", ["jpeg", "webp"], results_dir, tmp_path, tmp_path / "out", cfg)
    bd = pd.read_csv(tmp_path / "out" / "bd_rate.csv")
    pair = bd[bd.anchor_kind == "pair"]
    assert set(zip(pair.codec, pair.anchor)) == {("jpeg", "webp")}  # avif is not in the run: skipped
    # jpeg against webp is the inverse comparison of webp against jpeg: positive where that is negative.
    ours = bd[(bd.anchor_kind == "ours") & (bd.codec == "webp") & (bd.metric == "psnr") & (bd.method == "pchip")]
    inverse = pair[(pair.metric == "psnr") & (pair.method == "pchip")]
    assert ours.bd_rate_pct.iloc[0] < 0 < inverse.bd_rate_pct.iloc[0]
    assert "## Pairwise: against webp (our run, report.pairs)" in (tmp_path / "out" / "bd_rate.md").read_text()
    params = read_params(ROOT / "params.yaml")
    params["report"]["pairs"] = [["jpeg"]]
    with pytest.raises(ConfigError, match=r"report\.pairs\[0\]"):
        build_config(params)


def test_report_missing_codec_results(results_dir, tmp_path):
    from benchmark.results import ResultsError

    cfg = load_config(_params(tmp_path)).report
    with pytest.raises(ResultsError, match="avif.csv: results file not found"):
        report("small", ["jpeg", "avif"], results_dir, tmp_path, tmp_path / "out", cfg)


# ---- check ---------------------------------------------------------------------------------


@pytest.fixture()
def baseline(results_dir, tmp_path):
    d = tmp_path / "baseline"
    d.mkdir()
    for f in results_dir.glob("*.csv"):
        (d / f.name).write_bytes(f.read_bytes())
    return d


def _fresh(results_dir, tmp_path, mutate=None):
    d = tmp_path / "fresh"
    d.mkdir(exist_ok=True)
    for f in results_dir.glob("*.csv"):
        df = pd.read_csv(f)
        if mutate and f.stem == "jpeg":
            mutate(df)
        df.to_csv(d / f.name, index=False)
    return d


def _run_check(fresh, baseline, tmp_path, capsys):
    rc = cli_main(["check", "--fresh", str(fresh), "--baseline", str(baseline), "--params", str(_params(tmp_path))])
    return rc, capsys.readouterr()


def test_check_passes_on_identical_results(results_dir, baseline, tmp_path, capsys):
    rc, out = _run_check(_fresh(results_dir, tmp_path), baseline, tmp_path, capsys)
    assert rc == 0 and "check passed" in out.out and "0 regression" in out.out


def _worse_psnr(df):
    df.loc[(df.image == "coffee") & (df.rate_point == 30), "psnr"] -= 0.1


def _more_bits(df):
    df.loc[(df.image == "chelsea") & (df.rate_point == 70), "bpp"] *= 1.01


def _better_ms_ssim(df):
    df.loc[df.rate_point == 10, "ms_ssim_db"] += 0.5


def test_check_fails_on_psnr_regression(results_dir, baseline, tmp_path, capsys):
    rc, out = _run_check(_fresh(results_dir, tmp_path, _worse_psnr), baseline, tmp_path, capsys)
    assert rc == 1
    assert "REGRESSION: codec=jpeg rate_point=30 image=coffee psnr" in out.out
    assert "1 regression(s)" in out.out


def test_check_fails_on_rate_regression(results_dir, baseline, tmp_path, capsys):
    rc, out = _run_check(_fresh(results_dir, tmp_path, _more_bits), baseline, tmp_path, capsys)
    assert rc == 1 and "codec=jpeg rate_point=70 image=chelsea bpp" in out.out


def test_check_reports_improvements_without_failing(results_dir, baseline, tmp_path, capsys):
    rc, out = _run_check(_fresh(results_dir, tmp_path, _better_ms_ssim), baseline, tmp_path, capsys)
    assert rc == 0 and out.out.count("improved: codec=jpeg rate_point=10") == 2


def test_check_within_tolerance_passes(results_dir, baseline, tmp_path, capsys):
    def tiny(df):
        df["psnr"] -= 0.01  # tolerance is 0.02 dB

    rc, _ = _run_check(_fresh(results_dir, tmp_path, tiny), baseline, tmp_path, capsys)
    assert rc == 0


def test_check_errors_without_baseline_rows(results_dir, baseline, tmp_path, capsys):
    def extra(df):
        df.loc[0, "rate_point"] = 99

    rc, out = _run_check(_fresh(results_dir, tmp_path, extra), baseline, tmp_path, capsys)
    assert rc == 2 and "no baseline row" in out.err and "rate_point=99" in out.err


def test_check_errors_on_missing_baseline_file(results_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out = _run_check(_fresh(results_dir, tmp_path), empty, tmp_path, capsys)
    assert rc == 2 and "results file not found" in out.err


def test_check_fails_on_decode_mismatch(results_dir, baseline, tmp_path, capsys):
    def mismatch(df):
        df["decode_check"] = df["decode_check"].astype(object)  # "n/a" is read back as NaN
        df.loc[(df.image == "coffee") & (df.rate_point == 50), "decode_check"] = "mismatch"

    rc, out = _run_check(_fresh(results_dir, tmp_path, mismatch), baseline, tmp_path, capsys)
    assert rc == 1 and "codec=jpeg rate_point=50 image=coffee decode_check" in out.out


def test_check_tolerance_edges():
    tol = CheckConfig(bpp_rel=0.01, metrics={"psnr": 0.05, "ms_ssim_db": 0.05})
    base = pd.DataFrame({"codec": ["c"], "rate_point": [1], "image": ["i"], "bpp": [1.0], "psnr": [30.0], "ms_ssim_db": [15.0]})
    fresh = base.copy()
    fresh["psnr"] = np.inf  # an exact reconstruction is never a regression
    regressions, improvements = compare(fresh, base, tol)
    assert regressions == [] and len(improvements) == 1 and " psnr:" in improvements[0]
    fresh["psnr"] = np.nan
    assert len(compare(fresh, base, tol)[0]) == 1


# ---- CLI -----------------------------------------------------------------------------------


def test_cli_lists_stages_and_each_has_help():
    out = subprocess.run([sys.executable, "-m", "benchmark", "--help"], capture_output=True, text=True, check=True).stdout
    for stage in ("fetch", "evaluate", "report", "check"):
        assert stage in out
        h = subprocess.run([sys.executable, "-m", "benchmark", stage, "--help"], capture_output=True, text=True)
        assert h.returncode == 0 and "usage:" in h.stdout


def test_cli_unknown_stage_and_bad_params(tmp_path, capsys):
    assert cli_main(["frobnicate"]) == 2
    assert "unknown stage 'frobnicate'" in capsys.readouterr().err
    p = _params(tmp_path)
    rc = cli_main(["evaluate", "--params", str(p), "--dataset", "x", "--codec", "jepg", "--data", str(tmp_path), "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "codecs: unknown codec 'jepg'" in err and "did you mean 'jpeg'" in err and str(p) in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


def test_console_script_installed():
    import shutil

    exe = shutil.which("compression-benchmark") or str(Path(sys.executable).parent / "compression-benchmark")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "evaluate" in out.stdout


def test_torchvision_compat_makes_import_work():
    code = (
        "from benchmark._torchvision_compat import ensure_torchvision_importable as f; f(); "
        "import torchvision, torchvision.transforms as T, torch; "
        "print(T.functional.resize(torch.zeros(3, 8, 8), [4, 4]).shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "torch.Size([3, 4, 4])" in out.stdout


def test_cli_keeps_the_traceback_of_a_bug(monkeypatch):
    """Only BenchmarkError becomes a one-line message; anything else is a bug and propagates."""
    import benchmark.stages.check as stage

    monkeypatch.setattr(stage, "main", lambda argv: {}["no such key"])
    with pytest.raises(KeyError, match="no such key"):
        cli_main(["check"])
