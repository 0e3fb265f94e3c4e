"""Perceptual metrics through the evaluate and report stages, offline (weights missing) and with
weights present in the torch hub cache (created by the test, see ``weights_factory``): the same
code and params, only the cache differs. Also the RDP figures and the per-image schema."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from weights_factory import fake_hub

from benchmark.analysis.perception import at_matched_rates, attach_set_metrics, missing_note, perception_markdown
from benchmark.cli import main as cli_main
from benchmark.config import DatasetConfig
from benchmark.data.dataset import fetch_dataset
from benchmark.metrics.base import per_image_metrics
from benchmark.plots.rdp import build_dp_figure, build_rdp_figure
from benchmark.results import read_results, result_columns


def _params(p):
    """The project's params with one codec (JPEG at 3 rate points) and LPIPS, HaarPSI, FID, KID."""
    p["codecs"]["jpeg"]["rate_points"] = [10, 40, 90]
    p["evaluate"].update(codecs=["jpeg"], learned=[], variants=[], progressive=[], workers=1)
    p["report"].update(anchor="jpeg", reference_anchor=None, bd_methods=["pchip"], max_bpp=3.0)
    p["metrics"].update(perceptual=["lpips", "haarpsi", "fid", "kid"], download=False, batch_size=4)
    p["metrics"]["figures"].update(fid_indicative_below=1000, dp_rates=[0.5, 1.0])


PERCEPTUAL = [m.name for m in per_image_metrics("perception")]
ALL_METRICS = ("lpips", "dists", "haarpsi", "fid", "kid")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    # coffee (400x600: 3 patches) and chelsea (300x451: 1 patch): 4 FID patches per rate point.
    out = tmp_path_factory.mktemp("data") / "small"
    fetch_dataset(DatasetConfig(name="small", source="builtin", images=("chelsea", "coffee")), out, mirror=None)
    return out


def _run(tmp_path, data_dir, capsys, params_file):
    params = params_file(_params)
    res = tmp_path / "results"
    rc = cli_main([
        "evaluate", "--params", str(params), "--dataset", "small", "--codec", "jpeg", "--data", str(data_dir),
        "--out", str(res / "per_image" / "jpeg.csv"), "--set-out", str(res / "perception" / "jpeg.csv"),
        "--status-out", str(res / "perception" / "jpeg.json"),
    ])
    assert rc == 0, capsys.readouterr().err
    rc = cli_main([
        "report", "--params", str(params), "--dataset", "small", "--results", str(res / "per_image"),
        "--data", str(data_dir), "--out", str(res), "--perception", str(res / "perception"),
    ])
    assert rc == 0, capsys.readouterr().err
    return res, capsys.readouterr()


def test_offline_run_records_missing_metrics_and_draws_no_figure_without_data(tmp_path, monkeypatch, data_dir, capsys, params_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.delenv("BENCHMARK_MIRROR", raising=False)
    res, out = _run(tmp_path, data_dir, capsys, params_file)
    assert "perceptual metric missing, left out: lpips" in out.err and "alexnet-owt-7be5be79.pth" in out.err

    df = read_results(res / "per_image" / "jpeg.csv")
    assert list(df.columns) == result_columns()
    assert df.lpips.isna().all() and df.haarpsi.between(0, 1).all()
    status = json.loads((res / "perception" / "jpeg.json").read_text())
    assert status["metrics"]["lpips"]["status"] == "missing" and status["metrics"]["haarpsi"]["status"] == "computed"
    sets = pd.read_csv(res / "perception" / "jpeg.csv")
    assert list(sets.rate_point) == [10, 40, 90] and (sets.n_patches == 4).all() and sets.fid.isna().all()

    md = (res / "perception.md").read_text()
    computed, missing = md.split("## Missing")[0], md.split("## Missing")[1].split("## FID")[0]
    assert "HaarPSI" in computed and "LPIPS" not in computed
    for name in ("LPIPS", "FID", "KID", "alexnet-owt-7be5be79.pth", "weights-inception-2015-12-05-6726825d.pth"):
        assert name in missing, name
    assert "$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth" in missing and str(tmp_path) not in md
    fid = md.split("## FID")[1]
    assert "Not computed: FID" in fid and "weights-inception-2015-12-05-6726825d.pth" in fid  # the real reason
    assert "The run has 4 patches per rate point" in fid
    summary = pd.read_csv(res / "summary.csv")
    assert summary.haarpsi.notna().all() and summary.fid.isna().all() and (summary.n_patches == 4).all()
    metrics = json.loads((res / "metrics.json").read_text())["jpeg"]
    assert metrics == {"n_images": 2, "n_rate_points": 3}  # one codec, the anchor: no BD-rate; no means over rate points
    for stem in ("rdp-haarpsi", "dp-psnr-haarpsi"):
        assert (res / "figures" / f"{stem}.png").stat().st_size > 5_000, stem
        assert (res / "figures-pdf" / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    # No figure without data: LPIPS, FID and KID have no values, DISTS was not requested.
    assert sorted(p.name for p in (res / "figures").iterdir()) == [
        "dp-psnr-haarpsi.png", "rd-ms-ssim.png", "rd-psnr.png", "rdp-haarpsi.png"]
    assert sorted(p.stem for p in (res / "figures-pdf").iterdir()) == ["dp-psnr-haarpsi", "rd-ms-ssim", "rd-psnr", "rdp-haarpsi"]
    # ... and the report names each missing metric and why, where the figure would have been.
    readme = (res / "README.md").read_text()
    perception = readme.split("## Perception")[1].split("## Codecs")[0]
    for label, file in (("LPIPS", "alexnet-owt-7be5be79.pth"), ("FID", "weights-inception-2015-12-05-6726825d.pth"),
                        ("KID", "weights-inception-2015-12-05-6726825d.pth")):
        line = next(ln for ln in perception.splitlines() if ln.startswith(f"- {label}"))
        assert "not available" in line and file in line, line
    assert "DISTS" not in perception and "rdp-lpips" not in readme and "![Rate-perception: HaarPSI]" in perception
    assert "missing for every codec has no figure" in md
    # A stale figure of an earlier run (a metric that had values then) does not survive a rerun.
    (res / "figures" / "rdp-lpips.png").write_bytes(b"stale")
    (res / "figures-pdf" / "rdp-lpips.pdf").write_bytes(b"stale")
    _run(tmp_path, data_dir, capsys, params_file)
    assert not (res / "figures" / "rdp-lpips.png").exists() and not (res / "figures-pdf" / "rdp-lpips.pdf").exists()


def test_weights_in_the_cache_put_lpips_and_fid_in_tables_and_figures(tmp_path, monkeypatch, data_dir, capsys, params_file):
    fake_hub(tmp_path, monkeypatch, ["alexnet", "inception"])
    monkeypatch.delenv("BENCHMARK_MIRROR", raising=False)
    res, out = _run(tmp_path, data_dir, capsys, params_file)
    assert "missing" not in out.err

    df = read_results(res / "per_image" / "jpeg.csv")
    assert df.lpips.notna().all() and df.haarpsi.notna().all() and df.dists.isna().all()
    for image, rows in df.groupby("image"):
        lp = rows.sort_values("rate_point").lpips.to_numpy()
        assert lp[0] > lp[-1] > 0, image  # quality 10 is further from the original than 90
    sets = pd.read_csv(res / "perception" / "jpeg.csv").set_index("rate_point")
    assert sets.fid.notna().all() and sets.kid.notna().all() and (sets.n_patches == 4).all()
    assert sets.fid[10] > sets.fid[90]

    status = json.loads((res / "perception" / "jpeg.json").read_text())
    w = status["metrics"]["fid"]["weights"][0]
    assert (w["file"], w["origin"], w["verified"]) == ("weights-inception-2015-12-05-6726825d.pth", "cache", True)

    summary = pd.read_csv(res / "summary.csv")
    assert summary.lpips.notna().all() and summary.fid.notna().all() and summary.kid.notna().all()
    md = (res / "perception.md").read_text()
    computed = md.split("## Missing")[0]
    assert "LPIPS" in computed and "FID" in computed and "`alexnet-owt-7be5be79.pth` (cache" in computed
    assert "| jpeg | 10 |" in md and "| 4 | indicative |" in md  # 4 patches < 1000: indicative
    fig = build_rdp_figure(summary, "lpips", codecs=["jpeg"], title="t")
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), summary.sort_values("bpp").lpips)
    assert "indicative" in build_rdp_figure(summary, "fid", codecs=["jpeg"], title="t", indicative_below=1000).axes[0].get_title()


# ---- figures and helpers on synthetic summaries --------------------------------------------------


def _summary():
    rows = []
    for codec, shift in (("a", 0.0), ("b", 0.05)):
        for i, bpp in enumerate([0.2, 0.4, 0.8, 1.6]):
            rows.append({"codec": codec, "rate_point": i, "bpp": bpp, "psnr": 26 + 3 * i, "lpips": 0.4 - 0.1 * i + shift,
                         "haarpsi": 0.6 + 0.1 * i - shift})
    return pd.DataFrame(rows)


def test_rdp_figure_plots_every_codec_and_notes_missing_ones():
    s = _summary()
    s.loc[s.codec == "b", "lpips"] = np.nan
    fig = build_rdp_figure(s, "lpips", codecs=["a", "b"], title="t", note="Missing for b: weights")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 1 and [t.get_text() for leg in fig.legends for t in leg.get_texts()] == ["a"]
    assert ax.get_ylabel() == "LPIPS (AlexNet, v0.1), lower is better"
    assert any("Missing for b" in t.get_text() for t in fig.texts)  # the note, below the legend
    # No figure without data: a metric without a value for any codec, or absent, is an error to draw.
    with pytest.raises(ValueError, match="no codec has lpips values"):
        build_rdp_figure(s.assign(lpips=np.nan), "lpips", codecs=["a", "b"], title="t", note="why")
    with pytest.raises(ValueError, match="no codec has lpips values"):
        build_rdp_figure(s.drop(columns=["lpips"]), "lpips", codecs=["a"], title="t")
    with pytest.raises(KeyError, match="unknown metric 'ssim'"):
        build_rdp_figure(s, "ssim", codecs=["a"], title="t")


def test_matched_rates_interpolate_in_log_rate_without_extrapolating():
    s = _summary()
    m = at_matched_rates(s, "a", ["psnr", "lpips"], [0.1, 0.4, 0.5656854, 3.0])
    assert list(m.bpp) == pytest.approx([0.4, 0.5656854])  # 0.1 and 3.0 are outside a's rates
    assert m.psnr.iloc[0] == pytest.approx(29.0) and m.psnr.iloc[1] == pytest.approx(30.5, abs=1e-6)  # halfway in log
    fig = build_dp_figure(s, codecs=["a", "b"], rates=[0.4, 0.8], title="t", perception="lpips")
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("PSNR") and ax.get_ylabel().startswith("LPIPS")
    markers = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None" and len(ln.get_xdata()) == 1]
    points = sorted((float(ln.get_xdata()[0]), float(ln.get_ydata()[0])) for ln in markers)
    assert len(points) == 4 and np.allclose(points[:2], [(29.0, 0.3), (29.0, 0.35)])
    legends = {leg.get_title().get_text(): [t.get_text() for t in leg.get_texts()] for leg in fig.legends}
    assert legends["matched rate"] == ["0.4 bpp", "0.8 bpp"] and ["a", "b"] in legends.values()
    with pytest.raises(ValueError, match="no codec has both psnr and lpips"):
        build_dp_figure(s.assign(lpips=np.nan), codecs=["a"], rates=[0.5], title="t")


def test_missing_note_and_markdown_without_records():
    s = attach_set_metrics(_summary(), pd.DataFrame())
    assert s.fid.isna().all() and list(s.codec) == list(_summary().codec)
    statuses = {"a": None, "b": {"metrics": {"lpips": {"status": "missing", "needs": [{"file": "alexnet-owt-7be5be79.pth"}]}}}}
    note = missing_note(statuses, "lpips")
    assert "Missing for b" in note and "alexnet-owt-7be5be79.pth" in note and "No record for a" in note
    md = perception_markdown("x", {"a": None}, s, indicative_below=1000, metrics=ALL_METRICS)
    assert "No perceptual metric was computed" in md and "No perceptual record for: a" in md


def test_old_results_without_perceptual_columns_still_read(tmp_path):
    old = tmp_path / "old.csv"
    cols = [c for c in result_columns() if c not in PERCEPTUAL]
    pd.DataFrame([{c: 1 for c in cols} | {"dataset": "d", "codec": "c", "rate_param": "q", "image": "i", "decode_check": "ok"}]).to_csv(old, index=False)
    df = read_results(old)
    assert list(df.columns) == result_columns() and df[PERCEPTUAL].isna().all().all()


# ---- the evaluate loop: decoded images reach the perceptual metrics on every path ---------------


def _haarpsi_suite():
    from benchmark.config import MetricsConfig
    from benchmark.metrics.suite import PerceptualSuite

    return PerceptualSuite(MetricsConfig(perceptual=("haarpsi", "fid"), download=False), set_level=True)


def test_evaluate_scores_perception_alike_in_serial_parallel_and_in_process(data_dir, tmp_path, monkeypatch):
    import benchmark.codecs.classical  # noqa: F401  (registers the classical codecs)
    from benchmark.codecs.base import Codec, build_codec
    from benchmark.data.images import load_rgb8, read_manifest
    from benchmark.evaluation import evaluate
    from benchmark.metrics.perceptual import haarpsi

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    manifest = read_manifest(data_dir)
    cols = ["image", "rate_point", "bytes", "haarpsi"]
    suites, frames = [], []
    for workers in (1, 2):
        suites.append(_haarpsi_suite())
        df = evaluate("jpeg", build_codec("jpeg", {}), [20, 70], manifest, data_dir, "small", "h", workers=workers,
                      progress=False, perception=suites[-1])
        frames.append(df[cols].reset_index(drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert frames[0].haarpsi.notna().all() and suites[0].set_rows()[0]["n_patches"] == 4
    # The score is that of the decoded image: recompute one directly.
    jpeg = build_codec("jpeg", {})
    img = load_rgb8(data_dir / "images" / "coffee.png")
    rec = jpeg.decode(jpeg.encode(img, 20))
    t = lambda a: torch.from_numpy(np.array(a)).permute(2, 0, 1)[None]  # noqa: E731
    row = frames[0][(frames[0].image == "coffee") & (frames[0].rate_point == 20)]
    assert row.haarpsi.iloc[0] == pytest.approx(haarpsi(t(img), t(rec))[0], rel=1e-9)

    class InProcessJPEG(type(jpeg)):  # the learned codecs' path: coded in the main process
        in_process = True

    df = evaluate("jpeg", InProcessJPEG(), [20, 70], manifest, data_dir, "small", "h", workers=1, progress=False,
                  perception=_haarpsi_suite())
    pd.testing.assert_frame_equal(df[cols].reset_index(drop=True), frames[0])
    assert issubclass(InProcessJPEG, Codec)
