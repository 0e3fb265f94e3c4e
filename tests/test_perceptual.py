"""Per-image perceptual metrics (LPIPS, DISTS, HaarPSI) and the weight-file resolution.

The published weights cannot be downloaded here: the tests build the real networks with weights
they create (random init, saved under the published file names in a fake torch hub cache, see
``weights_factory``), load them through our resolution path, and compare our metric with a
direct call of the package that loads the same files by itself from that cache.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.config import ConfigError, MetricsConfig, build_config, read_params
from benchmark.data.download import mirror_path, sha256_file
from benchmark.metrics import METRICS, perceptual
from benchmark.metrics import weights as W
from benchmark.metrics.suite import PerceptualSuite, missing_summary
from weights_factory import fake_hub, make_alexnet

ensure_torchvision_importable()


def _noisy(img, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


def _nchw(*imgs):
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def small(astronaut):
    """A 96x128 crop of the astronaut and three noisier copies (sigma 4, 16, 48)."""
    ref = np.ascontiguousarray(astronaut[40:136, 180:308])
    return ref, [_noisy(ref, s, seed=i) for i, s in enumerate((4, 16, 48))]


# ---- weight resolution ------------------------------------------------------------------------


def test_missing_weights_record_names_file_url_and_place(tmp_path):
    with pytest.raises(W.WeightsMissing) as e:
        W.resolve_weights("alexnet", cache_dir=tmp_path / "hub", mirror=tmp_path / "mirror", download=False)
    rec = e.value.record()
    assert rec["file"] == "alexnet-owt-7be5be79.pth"
    assert rec["url"] == "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert rec["put_at"] == "$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth"
    assert str(tmp_path) not in json.dumps(rec)  # committed with the results: no machine paths
    assert rec["param"] == "metrics.weights.alexnet"
    assert rec["mirror_path"] == "download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert "not in the hub cache" in rec["reason"] and "not in the mirror" in rec["reason"]
    assert "alexnet-owt-7be5be79.pth" in str(e.value) and "TORCH_HOME" in str(e.value)
    assert str(tmp_path / "hub" / "alexnet-owt-7be5be79.pth") in str(e.value)  # the message names this machine's cache


def test_cached_file_with_wrong_hash_is_not_used(tmp_path):
    make_alexnet(tmp_path / "alexnet-owt-7be5be79.pth")
    with pytest.raises(W.WeightsMissing, match="SHA-256 .* not the published file's \\(7be5be79"):
        W.resolve_weights("alexnet", cache_dir=tmp_path)


def test_explicit_path_is_used_and_marked_unverified(tmp_path):
    p = make_alexnet(tmp_path / "mine.pth")
    r = W.resolve_weights("alexnet", explicit=p, cache_dir=tmp_path / "empty")
    assert (r.path, r.origin, r.verified, r.sha256) == (p, "explicit", False, sha256_file(p))
    with pytest.raises(W.WeightsMissing, match=r"metrics.weights.alexnet \(nope.pth\) is not a file"):
        W.resolve_weights("alexnet", explicit=tmp_path / "nope.pth", cache_dir=tmp_path)


def test_lpips_linear_layers_come_from_the_package():
    r = W.resolve_weights("lpips_linear")
    assert r.origin == "package" and r.verified and r.path.name == "alex.pth"


def test_mirror_copy_is_verified_then_cached(tmp_path, monkeypatch):
    created = make_alexnet(tmp_path / "made.pth")
    spec = W.WEIGHT_FILES["alexnet"]
    src = mirror_path(spec.url, tmp_path / "mirror")
    src.parent.mkdir(parents=True)
    src.write_bytes(created.read_bytes())
    # Not the published file: refused, and nothing lands in the cache.
    with pytest.raises(W.WeightsMissing, match="mirror copy .* is not usable.*SHA-256"):
        W.resolve_weights("alexnet", cache_dir=tmp_path / "hub", mirror=tmp_path / "mirror")
    assert not (tmp_path / "hub" / spec.file).exists()
    # With the expectation pointed at it (as for the real file), it is copied into the cache.
    monkeypatch.setitem(W.WEIGHT_FILES, "alexnet", dataclasses.replace(spec, sha256=sha256_file(created)))
    r = W.resolve_weights("alexnet", cache_dir=tmp_path / "hub", mirror=tmp_path / "mirror")
    assert r.origin == "mirror" and r.verified and r.path == tmp_path / "hub" / spec.file and r.path.is_file()
    assert W.resolve_weights("alexnet", cache_dir=tmp_path / "hub").origin == "cache"


# ---- LPIPS ------------------------------------------------------------------------------------


@pytest.fixture()
def hub_alexnet(tmp_path, monkeypatch):
    return fake_hub(tmp_path, monkeypatch, ["alexnet"])


def test_lpips_equals_the_package_on_created_weights(hub_alexnet, small):
    import lpips

    ref, recs = small
    ours = perceptual.load_lpips(W.resolve_weights("alexnet").path, W.resolve_weights("lpips_linear").path)
    # The package on its own: AlexNet from torchvision (the fake hub cache), its own v0.1 layers.
    direct = lpips.LPIPS(net="alex", version="0.1", verbose=False)
    a, b = _nchw(ref, ref, ref), _nchw(*recs)
    with torch.no_grad():
        expected = direct(a.float() / 127.5 - 1, b.float() / 127.5 - 1).reshape(-1).double().numpy()
        also = direct(a.float() / 255, b.float() / 255, normalize=True).reshape(-1).double().numpy()
    got = perceptual.lpips_distance(_nchw(ref), b, ours, batch_size=2)
    # Same network, same float32 operations: equal up to float32 rounding.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got, also, rtol=1e-5, atol=1e-7)  # our [-1, 1] mapping = its normalize=True


def test_lpips_properties(hub_alexnet, small):
    ref, recs = small
    model = perceptual.load_lpips(W.resolve_weights("alexnet").path, W.resolve_weights("lpips_linear").path)
    assert perceptual.lpips_distance(_nchw(ref), _nchw(ref), model)[0] == pytest.approx(0.0, abs=1e-7)
    d = perceptual.lpips_distance(_nchw(ref), _nchw(*recs), model)
    assert d.dtype == np.float64 and d.shape == (3,)
    assert 0 < d[0] < d[1] < d[2]  # grows with the noise


def test_lpips_refuses_wrong_files(tmp_path, hub_alexnet):
    torch.save({"nothing": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(perceptual.WeightsLoadError, match="bad.pth: not torchvision AlexNet"):
        perceptual.load_lpips(tmp_path / "bad.pth", W.resolve_weights("lpips_linear").path)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(perceptual.WeightsLoadError, match="junk.pth: cannot be read"):
        perceptual.load_lpips(tmp_path / "junk.pth", W.resolve_weights("lpips_linear").path)
    with pytest.raises(perceptual.WeightsLoadError, match="bad.pth: does not fit the LPIPS v0.1"):
        perceptual.load_lpips(hub_alexnet["alexnet"], tmp_path / "bad.pth")


# ---- DISTS ------------------------------------------------------------------------------------


def test_dists_equals_piq_on_created_weights(tmp_path, monkeypatch, small):
    import piq

    fake_hub(tmp_path, monkeypatch, ["vgg16", "dists"])
    ref, recs = small
    ours = perceptual.load_dists(W.resolve_weights("vgg16").path, W.resolve_weights("dists").path)
    direct = piq.DISTS(reduction="none")  # loads both files itself from the fake hub cache
    b = _nchw(*recs)
    with torch.no_grad():
        expected = direct(b.float() / 255, _nchw(ref, ref, ref).float() / 255).double().numpy()
    got = perceptual.dists_distance(_nchw(ref), b, ours, batch_size=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert perceptual.dists_distance(_nchw(ref), _nchw(ref), ours)[0] == pytest.approx(0.0, abs=1e-5)
    assert got[0] < got[2]


# ---- HaarPSI ----------------------------------------------------------------------------------


def test_haarpsi_equals_piq_and_properties(small):
    import piq

    ref, recs = small
    got = perceptual.haarpsi(_nchw(ref), _nchw(*recs), batch_size=2)
    expected = piq.haarpsi(_nchw(*recs).float(), _nchw(ref, ref, ref).float(), data_range=255.0, reduction="none")
    np.testing.assert_allclose(got, expected.double().numpy(), rtol=1e-5)  # float32, other batch split
    assert perceptual.haarpsi(_nchw(ref), _nchw(ref))[0] == pytest.approx(1.0, abs=1e-6)
    assert 1 > got[0] > got[1] > got[2] > 0
    with pytest.raises(ValueError, match="16 px"):
        perceptual.haarpsi(np.zeros((1, 3, 8, 64)), np.zeros((1, 3, 8, 64)))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        perceptual.haarpsi(np.zeros((3, 32, 32)), np.zeros((3, 32, 32)))


def test_haarpsi_large_images_go_one_pair_per_call(small, monkeypatch):
    """Over ``BATCH_PIXELS`` pixels per call the pairs are scored one by one (memory), with the
    same values as one batched call of piq."""
    import piq

    ref, recs = small
    calls = []
    real = piq.haarpsi
    monkeypatch.setattr(piq, "haarpsi", lambda x, y, **kw: calls.append(x.shape[0]) or real(x, y, **kw))
    monkeypatch.setattr(perceptual, "BATCH_PIXELS", 2 * ref.shape[0] * ref.shape[1] - 1)
    got = perceptual.haarpsi(_nchw(ref), _nchw(*recs), batch_size=8)
    assert calls == [1, 1, 1]
    expected = real(_nchw(*recs).float(), _nchw(ref, ref, ref).float(), data_range=255.0, reduction="none")
    np.testing.assert_allclose(got, expected.double().numpy(), rtol=1e-5)


def _jpeg(img, quality):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.array(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def degraded(astronaut):
    """The astronaut (512 x 512) and JPEG copies at quality 10 and 40."""
    return astronaut, [_jpeg(astronaut, q) for q in (10, 40)]


@pytest.mark.parametrize(
    "h, w, strip_rows", [(512, 512, 7), (301, 203, 1), (300, 203, 5), (301, 200, 16), (17, 16, 3), (200, 161, 1000)]
)
def test_haarpsi_strips_equal_piq(degraded, monkeypatch, h, w, strip_rows):
    """The strip path (forced: threshold 0, strips of a few rows, so many strip boundaries, halos
    reaching over several strips and the image borders inside a strip's halo), on even and odd
    sides, equals piq on the whole image: float32 within 1e-5 of piq's float32 (measured: up to
    3.1e-6 on these crops, which is piq's own float32 error: piq's float32 is up to 3.1e-6 from
    its float64) and within 1e-6 of piq's float64 (measured: up to 9e-8); our float64 mode within
    1e-10 of piq's float64 (measured: up to 1.6e-14)."""
    import piq

    ref, recs = degraded
    ref = np.ascontiguousarray(ref[:h, 512 - w :])
    recs = [np.ascontiguousarray(r[:h, 512 - w :]) for r in recs]
    monkeypatch.setattr(perceptual, "BATCH_PIXELS", 0)
    monkeypatch.setattr(perceptual, "HAARPSI_STRIP_PIXELS", strip_rows * ((w + 1) // 2))
    got = perceptual.haarpsi(_nchw(ref), _nchw(*recs))
    x, y = _nchw(*recs), _nchw(ref, ref)
    p32 = piq.haarpsi(x.float(), y.float(), data_range=255.0, reduction="none").double().numpy()
    p64 = piq.haarpsi(x.double(), y.double(), data_range=255.0, reduction="none").numpy()
    np.testing.assert_allclose(got, p32, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got, p64, rtol=0, atol=1e-6)
    ours64 = [perceptual._haarpsi_strips(x[i : i + 1], y[i : i + 1], np.float64) for i in range(len(recs))]
    np.testing.assert_allclose(ours64, p64, rtol=0, atol=1e-10)


def test_haarpsi_strip_path_inputs(degraded, monkeypatch):
    """Over the threshold, on the CPU, the strip path scores every pair without calling piq: the
    same value for uint8, float32 and float64 inputs, an HWC array seen as NCHW, a broadcast
    reference, a swapped pair (HaarPSI is symmetric); 1 for identical images; out-of-range float
    values raise ValueError."""
    import piq

    ref, recs = degraded
    monkeypatch.setattr(perceptual, "BATCH_PIXELS", 100 * 100)
    monkeypatch.setattr(perceptual, "HAARPSI_STRIP_PIXELS", 3 * 256)
    monkeypatch.setattr(piq, "haarpsi", lambda *a, **k: pytest.fail("piq called"))
    got = perceptual.haarpsi(_nchw(ref), _nchw(*recs))
    assert 1 > got[1] > got[0] > 0
    hwc = torch.from_numpy(recs[0]).permute(2, 0, 1)[None]  # not contiguous
    for x, y in [(_nchw(ref).float(), _nchw(recs[0]).double()), (_nchw(ref), hwc), (_nchw(recs[0]), _nchw(ref))]:
        assert perceptual.haarpsi(x, y)[0] == pytest.approx(got[0], abs=1e-12)
    assert perceptual.haarpsi(_nchw(ref), _nchw(ref))[0] == pytest.approx(1.0, abs=1e-6)  # float32 sigmoid: 1 + 6e-8
    bad = _nchw(ref).float()
    bad[0, 1, 300, 7] = 255.5
    with pytest.raises(ValueError, match=r"outside \[0, 255\] in rows") as e:
        perceptual.haarpsi(bad, _nchw(ref))
    lo, hi = map(int, str(e.value).split()[-1].split("-"))
    assert lo <= 300 <= hi  # the strip's input rows


def test_haarpsi_memory_grows_by_a_few_bytes_per_pixel():
    """Peak RSS of a fresh process making and scoring a 1 MP pair, then a 4 MP pair, by the strip
    path (forced: it is the path above 4 MP; the peak reset before each where Linux allows, so
    that the import's peak hides nothing): the growth per added pixel (the test's own uint8
    arrays, 6 bytes/px, included) stays under 15 bytes. Measured: 6.1 (so about 0 for the strips); piq on the whole
    images (the small-image path) took 104 in this same test."""
    from helpers import memory_growth_per_pixel

    per_pixel = memory_growth_per_pixel(
        "from benchmark.metrics import perceptual\nperceptual.BATCH_PIXELS = 0",
        "rng.integers(0, 256, (1, 3, h, w), dtype=np.uint8)",
        "perceptual.haarpsi(a, a // 2 + 60)",
    )
    assert per_pixel < 15.0, per_pixel


# ---- the suite and its record -----------------------------------------------------------------


def test_suite_offline_records_missing_metrics_and_goes_on(tmp_path, monkeypatch, small):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    suite = PerceptualSuite(MetricsConfig(download=False), mirror=None)
    rec = suite.status_record()
    assert rec["metrics"]["haarpsi"]["status"] == "computed"
    for m in ("lpips", "dists", "fid", "kid"):
        assert rec["metrics"][m]["status"] == "missing", m
    assert [n["file"] for n in rec["metrics"]["lpips"]["needs"]] == ["alexnet-owt-7be5be79.pth"]
    assert rec["metrics"]["lpips"]["weights"][0]["file"] == "alex.pth"  # the linear layers were found
    assert {n["file"] for n in rec["metrics"]["dists"]["needs"]} == {"vgg16-397923af.pth", "dists_weights.pt"}
    assert rec["metrics"]["fid"]["needs"][0]["put_at"] == "$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth"
    assert rec["metrics"]["lpips"]["weights"][0]["path"] == "lpips/weights/v0.1/alex.pth"
    assert str(tmp_path) not in json.dumps(rec) and "site-packages" not in json.dumps(rec)  # no machine paths
    lines = missing_summary(rec)
    assert len(lines) == 4 and lines[0].startswith("lpips: ") and "alexnet-owt-7be5be79.pth at " in lines[0]
    ref, recs = small
    scores = suite.score_image(ref, recs)
    assert np.isnan(scores["lpips"]).all() and np.isnan(scores["dists"]).all()
    assert np.all(np.diff(scores["haarpsi"]) < 0)


def test_suite_with_created_weights_scores_lpips(hub_alexnet, small):
    suite = PerceptualSuite(MetricsConfig(perceptual=("lpips",), download=False, batch_size=2), set_level=False)
    assert suite.status["lpips"].status == "computed"
    assert suite.status_record()["metrics"]["lpips"]["weights"][0]["origin"] == "cache"
    ref, recs = small
    s = suite.score_image(ref, recs)
    model = perceptual.load_lpips(W.hub_cache_dir() / "alexnet-owt-7be5be79.pth", W.resolve_weights("lpips_linear").path)
    direct = perceptual.lpips_distance(_nchw(ref), _nchw(*recs), model, batch_size=8)
    np.testing.assert_allclose(s["lpips"], direct, rtol=1e-5)  # other batch sizes: float32 rounding only
    assert np.isnan(s["haarpsi"]).all()  # not requested


def test_suite_records_weights_that_do_not_load(tmp_path):
    torch.save({"x": torch.zeros(1)}, tmp_path / "alexnet.pth")
    cfg = MetricsConfig(perceptual=("lpips",), weights={"alexnet": str(tmp_path / "alexnet.pth")}, download=False)
    st = PerceptualSuite(cfg, set_level=False).status["lpips"]
    assert st.status == "missing" and "do not load" in st.reason and "alexnet.pth" in st.reason


def test_registry_lists_perceptual_metrics_and_their_weights():
    assert METRICS.get("lpips").weights == ("alexnet", "lpips_linear")
    assert [W.WEIGHT_FILES[k].file for k in METRICS.get("lpips").weights] == ["alexnet-owt-7be5be79.pth", "alex.pth"]
    assert METRICS.get("haarpsi").weights == () and METRICS.get("haarpsi").higher_is_better
    assert not METRICS.get("fid").per_image and "6726825d" in W.WEIGHT_FILES[METRICS.get("fid").weights[0]].file
    for m in METRICS.values():  # every weight key a metric names is a known file
        assert set(m.weights) <= set(W.WEIGHT_FILES), m.name


# ---- params ----------------------------------------------------------------------------------


def test_metrics_params_defaults_and_errors():
    base = read_params(Path(__file__).resolve().parents[1] / "params.yaml")
    cfg = build_config(base).metrics
    assert cfg.perceptual == ("lpips", "dists", "haarpsi", "fid", "kid") and cfg.patches.size == 256
    assert set(cfg.weights) == set(W.WEIGHT_FILES)
    for bad, match in [
        ({"patches": {"size": 0}}, r"metrics\.patches\.size"),
        ({"patches": {"bogus": 1}}, "metrics.patches: unknown key 'bogus'"),
        ({"figures": {"dp_rates": [-1]}}, r"dp_rates\[0\]"),
        ({"device": "tpu"}, "metrics.device"),
        ({"colour": 1}, "metrics: unknown key 'colour'"),
    ]:
        params = {**base, "metrics": {**base["metrics"], **bad}}
        with pytest.raises(ConfigError, match=match):
            build_config(params, source="p.yaml")
    # Names are checked against the registries when the suite is set up.
    with pytest.raises(ConfigError, match=r"metrics.perceptual: unknown perceptual metric 'ssim'"):
        PerceptualSuite(MetricsConfig(perceptual=("ssim",), download=False))
    with pytest.raises(ConfigError, match=r"metrics.weights: unknown weight file 'resnet'"):
        PerceptualSuite(MetricsConfig(perceptual=("haarpsi",), weights={"resnet": None}, download=False))


def test_suite_tries_the_network_once_when_offline(tmp_path, monkeypatch):
    from benchmark.data.download import DownloadError

    calls = []

    def offline(url, dest, **kw):
        calls.append(url)
        raise DownloadError(f"{url}: download from the network failed after 2 attempt(s): URLError('no network')")

    monkeypatch.setattr(W, "fetch_url", offline)
    suite = PerceptualSuite(MetricsConfig(download=True), cache_dir=tmp_path / "hub")
    assert len(calls) == 1  # alexnet failed; vgg16, dists and inception were not tried
    needs = {n["file"]: n["reason"] for m in ("lpips", "dists", "fid") for n in suite.status[m].needs}
    assert "the download failed" in needs["alexnet-owt-7be5be79.pth"]
    assert "no download was tried (an earlier one in this run failed)" in needs["weights-inception-2015-12-05-6726825d.pth"]
