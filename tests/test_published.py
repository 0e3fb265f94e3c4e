"""benchmark.models.published: QRes-VAE's published weights from a local HTTP server, a mirror and
the torch hub cache; hash known and matching, known and not matching, not known; offline.

The published files are 67-136 MB; the tests publish their own: a narrow model of the qres34m
structure (architecture ``qres-test``, registered for the test) saved as the authors do,
``torch.save({"model": state_dict})``, under a table entry put into ``PUBLISHED``.
"""

import hashlib
import io
import math
import os
import warnings

import numpy as np
import pytest
import torch
from localserver import LocalServer

import benchmark.codecs.learned  # noqa: F401  (registers the learned codec)
import benchmark.data.download
from benchmark.codecs.base import build_codec
from benchmark.data.download import DownloadError, mirror_path
from benchmark.models import published
from benchmark.models.checkpoint import load_model
from benchmark.models.published import (
    PUBLISHED,
    PublishedWeights,
    PublishedWeightsError,
    UnverifiedWeightsWarning,
    fetch_published_weights,
    pretrained_checkpoint,
    published_weights,
)
from benchmark.models.qres import build_qres34m_structure
from benchmark.models.specs import ARCHITECTURES, ModelSpec
from benchmark.models.weights import WeightsHashError, WeightsUnavailableError
from benchmark.training.loop import LOG_COLUMNS

ARCH = "qres-test"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens
HF = "https://huggingface.co/duanzh0/my-model-weights/resolve/main"


def _tiny(seed=0):
    torch.manual_seed(seed)
    return build_qres34m_structure(ch=4, z_dims=[3, 3, 2, 2, 2], enc_nums=[1, 1, 1, 1, 1])


@pytest.fixture(autouse=True)
def test_architecture():
    """``qres-test``: a fixed narrow qres34m-structure model, like qres34m a size-less architecture."""
    ARCHITECTURES.add(ARCH, ModelSpec(ARCH, lambda: _tiny, (), "test", paper_sizes={q: {} for q in range(1, 9)},
                                      padding="replicate-bottom-right"))
    yield
    ARCHITECTURES.remove(ARCH)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(benchmark.data.download.time, "sleep", lambda s: None)


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


def _file(seed=0, wrap=True):
    """Bytes of a weight file in the authors' format (``{"model": state_dict}``), with untouched
    (empty) coder buffers as in a training checkpoint; and the model's state_dict."""
    sd = _tiny(seed).state_dict()
    buf = io.BytesIO()
    torch.save({"model": sd} if wrap else sd, buf)
    return buf.getvalue(), sd


def _publish(monkeypatch, base, sha256, quality=2, lmb=32):
    """Put ``qres-test`` quality ``quality`` at ``<base>/qres-test/qres-test-lmb<lmb>.pt`` into the table."""
    lmbda = 12 * lmb / (math.log(2) * 255**2)
    w = PublishedWeights(ARCH, quality, float(lmb), lmbda, f"{base}/{ARCH}/{ARCH}-lmb{lmb}.pt", sha256)
    monkeypatch.setitem(PUBLISHED, ARCH, {quality: w})
    return w


def test_the_published_tables():
    """Quality k is the k-th published λ; URLs as on the Hub; the five hashes read from the Hub;
    λ on our scale 12·lmb/(ln2·255²) ≈ 2.6624e-4·lmb."""
    assert [w.lmb for _, w in sorted(PUBLISHED["qres34m"].items())] == [16, 32, 64, 128, 256, 512, 1024, 2048]
    assert [w.lmb for _, w in sorted(PUBLISHED["qres17m"].items())] == [1, 2, 4, 8, 16, 32, 64, 1024]
    assert published_weights("qres34m", 2).url == f"{HF}/qres34m/qres34m-lmb32.pt"
    assert published_weights("qres17m", 8).url == f"{HF}/qres17m/qres17m-lmb1024.pt"
    hashed = {(a, w.lmb) for a in ("qres34m", "qres17m") for w in PUBLISHED[a].values() if w.sha256}
    assert hashed == {("qres34m", 32), ("qres34m", 256), ("qres17m", 1), ("qres17m", 2), ("qres17m", 64)}
    assert published_weights("qres34m", 2).sha256 == "cfd4764f859a98bb865a46d7ebfd942f9e9f4c0dfb59f714efd3e529e438343a"
    for arch in ("qres34m", "qres17m"):
        for w in PUBLISHED[arch].values():
            assert w.lmbda == pytest.approx(2.6624e-4 * w.lmb, rel=1e-4) and w.file_name == f"{arch}-lmb{w.lmb:g}.pt"
    assert published_weights("qres34m", 8).lmbda == pytest.approx(0.5453, abs=5e-5)
    with pytest.raises(PublishedWeightsError, match=r"architecture 'mbt2018'; available: qres17m, qres34m"):
        published_weights("mbt2018", 1)
    with pytest.raises(PublishedWeightsError, match=r"quality 9; available: 1 \(lmb 16\), 2 \(lmb 32\)"):
        published_weights("qres34m", 9)


def test_hash_match_makes_a_checkpoint_that_codes_like_the_original(server, monkeypatch, tmp_path):
    data, sd = _file()
    w = _publish(monkeypatch, server.url, hashlib.sha256(data).hexdigest())
    server.files[f"/{ARCH}/{w.file_name}"] = data
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnverifiedWeightsWarning)
        out = pretrained_checkpoint(ARCH, 2, tmp_path / "m" / ARCH / "q2.pt", cache_dir=cache)
    assert os.listdir(cache) == [w.file_name] and (cache / w.file_name).read_bytes() == data
    model, meta = load_model(out)
    assert meta["arch"] == ARCH and meta["size"] == {} and meta["rate_point"] == 2 and meta["step"] is None
    assert meta["lmb"] == 32 and meta["lmbda"] == pytest.approx(0.008519, abs=1e-6) and meta["metric"] == "mse"
    assert meta["source"] == w.url and meta["weights_file"] == "qres-test-lmb32.pt" and meta["train_images_sha256"] == []
    assert meta["weights_sha256"] == hashlib.sha256(data).hexdigest() and meta["weights_verified"] is True
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in sd.items() if v.numel())  # weights as published
    original = _tiny()
    original.load_state_dict(sd)
    original.update()
    x = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert model.compress(x)["strings"] == original.eval().compress(x)["strings"]
    assert server.hits == [f"/{ARCH}/{w.file_name}"]
    # cached: no network the second time; the codec's rows name the file and its hash
    pretrained_checkpoint(ARCH, 2, tmp_path / "again.pt", cache_dir=cache)
    assert len(server.hits) == 1
    codec = build_codec("learned", {"model": ARCH}, checkpoints=str(tmp_path / "m" / "{model}" / "q{rate_point}.pt"))
    image = np.zeros((64, 70, 3), np.uint8)
    assert codec.decode(codec.encode(image, 2)).shape == image.shape
    assert codec.library_version().endswith(f"; weights q2 qres-test-lmb32.pt sha256 {meta['weights_sha256']}")


def test_hash_mismatch_is_refused_and_not_cached(server, monkeypatch, tmp_path):
    data, _ = _file()
    other, _ = _file(seed=1)
    expected = hashlib.sha256(data).hexdigest()
    w = _publish(monkeypatch, server.url, expected)
    server.files[f"/{ARCH}/{w.file_name}"] = other  # other bytes under the published name
    with pytest.raises(DownloadError) as e:
        pretrained_checkpoint(ARCH, 2, tmp_path / "c.pt", cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert w.url in msg and hashlib.sha256(other).hexdigest() in msg and f"expected the published {expected}" in msg
    assert not (tmp_path / "cache").exists() or os.listdir(tmp_path / "cache") == []
    assert not (tmp_path / "c.pt").exists()

    (tmp_path / "cache").mkdir(exist_ok=True)
    (tmp_path / "cache" / w.file_name).write_bytes(other)  # a wrong file in the cache: an error, left alone
    with pytest.raises(WeightsHashError, match=rf"{tmp_path / 'cache' / w.file_name}: cached QRes-VAE .*delete it"):
        fetch_published_weights(ARCH, 2, cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / w.file_name).read_bytes() == other


def test_unknown_hash_is_used_with_a_warning_and_recorded(server, monkeypatch, tmp_path):
    data, _ = _file()
    sha = hashlib.sha256(data).hexdigest()
    w = _publish(monkeypatch, server.url, None)
    server.files[f"/{ARCH}/{w.file_name}"] = data
    with pytest.warns(UnverifiedWeightsWarning, match=rf"no published SHA-256 is known for {w.url}.*{sha} is recorded"):
        pretrained_checkpoint(ARCH, 2, tmp_path / "m" / ARCH / "q2.pt", cache_dir=tmp_path / "cache")
    meta = load_model(tmp_path / "m" / ARCH / "q2.pt")[1]
    assert meta["weights_sha256"] == sha and meta["weights_verified"] is False
    codec = build_codec("learned", {"model": ARCH}, checkpoints=str(tmp_path / "m" / "{model}" / "q{rate_point}.pt"))
    codec.load(2)
    assert codec.library_version().endswith(f"weights q2 qres-test-lmb32.pt sha256 {sha} (hash not published: computed here)")


def test_unknown_hash_files_are_loaded_weights_only(server, monkeypatch, tmp_path):
    """Not the authors' format, or objects beside tensors in an unchecked file: refused, clearly."""
    bare, _ = _file(wrap=False)
    w = _publish(monkeypatch, server.url, None)
    server.files[f"/{ARCH}/{w.file_name}"] = bare
    with pytest.warns(UnverifiedWeightsWarning), pytest.raises(PublishedWeightsError, match="state_dict under 'model'"):
        pretrained_checkpoint(ARCH, 2, tmp_path / "c.pt", cache_dir=tmp_path / "a")
    buf = io.BytesIO()
    torch.save({"model": _tiny().state_dict(), "args": published.PublishedWeights}, buf)  # a class: not weights-only
    server.files[f"/{ARCH}/{w.file_name}"] = buf.getvalue()
    with pytest.warns(UnverifiedWeightsWarning), pytest.raises(PublishedWeightsError, match="not unpickled further"):
        pretrained_checkpoint(ARCH, 2, tmp_path / "c.pt", cache_dir=tmp_path / "b")
    other = build_qres34m_structure(ch=8, z_dims=[3, 3, 2, 2, 2], enc_nums=[1, 1, 1, 1, 1]).state_dict()
    buf = io.BytesIO()
    torch.save({"model": other}, buf)
    server.files[f"/{ARCH}/{w.file_name}"] = buf.getvalue()
    with pytest.warns(UnverifiedWeightsWarning), pytest.raises(PublishedWeightsError, match="does not load into qres-test"):
        pretrained_checkpoint(ARCH, 2, tmp_path / "c.pt", cache_dir=tmp_path / "c")
    assert not (tmp_path / "c.pt").exists()


def test_mirror_copy_into_the_torch_hub_cache(monkeypatch, tmp_path):
    data, _ = _file()
    w = _publish(monkeypatch, HF, hashlib.sha256(data).hexdigest())
    mirror = tmp_path / "mirror"
    src = mirror / "huggingface.co/duanzh0/my-model-weights/resolve/main" / ARCH / w.file_name
    assert mirror_path(w.url, mirror) == src
    src.parent.mkdir(parents=True)
    src.write_bytes(data)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("benchmark.data.download.urllib.request.urlopen", _no_network)
    path, sha, verified = fetch_published_weights(ARCH, 2, mirror=mirror)
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / w.file_name and path.read_bytes() == data
    assert sha == hashlib.sha256(data).hexdigest() and verified
    pretrained_checkpoint(ARCH, 2, tmp_path / "c.pt", mirror=tmp_path / "empty")  # cached now
    assert load_model(tmp_path / "c.pt")[1]["weights_verified"] is True


def test_offline_without_a_copy_says_where_to_put_it(monkeypatch, tmp_path):
    w = _publish(monkeypatch, UNREACHABLE, "0" * 64)
    with pytest.raises(WeightsUnavailableError) as e:
        pretrained_checkpoint(ARCH, 2, tmp_path / "c.pt", cache_dir=tmp_path / "cache", mirror=tmp_path / "mirror")
    msg = str(e.value)
    assert msg.startswith(f"QRes-VAE pretrained weights {w.file_name} ({ARCH}, quality 2, lmb 32) are not available")
    assert w.url in msg and f"save it as {tmp_path / 'cache' / w.file_name}" in msg
    assert str(mirror_path(w.url, tmp_path / "mirror")) in msg and f"127.0.0.1/{ARCH}/{w.file_name}" in msg
    assert "BENCHMARK_MIRROR" in msg and "does not train a replacement" in msg
    assert not (tmp_path / "c.pt").exists() and os.listdir(tmp_path / "cache") == []


def test_model_stage_source_pretrained_offline(monkeypatch, tmp_path, capsys, params_file):
    """``models.<name>: {arch: qres34m, source: pretrained}``: the stage fetches, never trains;
    offline and absent it fails with one line naming the file (quality 3 = lmb 64) and the cache."""
    from benchmark.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("benchmark.data.download.urllib.request.urlopen", _no_network)
    (tmp_path / "mirror").mkdir()
    params = params_file(lambda p: p["models"].update(q34={"arch": "qres34m", "source": "pretrained"}))
    rc = main(["model", "--params", str(params), "--model", "q34", "--quality", "3",
               "--out", str(tmp_path / "m" / "q3.pt"), "--mirror", str(tmp_path / "mirror")])
    err = capsys.readouterr().err
    assert rc == 2 and "qres34m-lmb64.pt" in err and f"{HF}/qres34m/qres34m-lmb64.pt" in err
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "qres34m-lmb64.pt") in err
    assert "does not train a replacement" in err and not (tmp_path / "m" / "q3.pt").exists()


def test_model_stage_source_pretrained_from_the_mirror(monkeypatch, tmp_path, capsys, params_file):
    from benchmark.cli import main

    data, _ = _file()
    w = _publish(monkeypatch, HF, hashlib.sha256(data).hexdigest(), quality=3, lmb=64)
    mirror_path(w.url, tmp_path / "mirror").parent.mkdir(parents=True)
    mirror_path(w.url, tmp_path / "mirror").write_bytes(data)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("benchmark.data.download.urllib.request.urlopen", _no_network)
    params = params_file(lambda p: p["models"].update(t={"arch": ARCH, "source": "pretrained"}))
    rc = main(["model", "--params", str(params), "--model", "t", "--quality", "3",
               "--out", str(tmp_path / "m" / "q3.pt"), "--mirror", str(tmp_path / "mirror")])
    assert rc == 0, capsys.readouterr().err
    assert load_model(tmp_path / "m" / "q3.pt")[1]["lmb"] == 64
    # the stage's other declared outputs exist: an empty training log and a state that no training resumes from
    assert (tmp_path / "m" / "q3.log.csv").read_text().splitlines() == [",".join(LOG_COLUMNS)]
    assert torch.load(tmp_path / "m" / "q3.state", weights_only=True) == {"fingerprint": None, "source": "pretrained"}


def _no_network(*args, **kwargs):
    import urllib.error

    raise urllib.error.URLError("no network in this test")
