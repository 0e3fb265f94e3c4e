"""benchmark.models.zoo: CompressAI zoo weights from a local HTTP server, a mirror and the cache."""

import hashlib
import io
import os

import pytest
import torch
from localserver import LocalServer

import benchmark.data.download
from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.data.download import DownloadError, mirror_path
from benchmark.models.checkpoint import load_model
from benchmark.models.specs import ARCHITECTURES, build_model
from benchmark.models.zoo import (
    ZOO_LAMBDAS,
    WeightsHashError,
    WeightsUnavailableError,
    fetch_zoo_weights,
    weights_hash_prefix,
    zoo_checkpoint,
    zoo_url,
)

ensure_torchvision_importable()
import compressai.zoo.image  # after ensure_torchvision_importable

UNREACHABLE = "http://127.0.0.1:9"  # discard port: nothing listens
# Architectures with CompressAI zoo weights (the project's own discretized VAEs have none).
ZOO_ARCHITECTURES = sorted(n for n in ARCHITECTURES if ARCHITECTURES.get(n).zoo)


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """fetch_url's retry sleeps would only slow the offline tests down."""
    monkeypatch.setattr(benchmark.data.download.time, "sleep", lambda s: None)


def _tiny_model(arch, seed=0):
    torch.manual_seed(seed)
    size = {"N": 16} if arch.startswith("cheng2020") else {"N": 8, "M": 12}  # attention blocks halve N
    model = build_model(arch, size).eval()
    model.update(force=True)
    return model, size


def _weights(arch, quality, model, *, prefix_keys=""):
    """(file name in CompressAI's convention, bytes) of ``model``'s state dict saved with torch.save."""
    buf = io.BytesIO()
    torch.save({prefix_keys + k: v for k, v in model.state_dict().items()}, buf)
    data = buf.getvalue()
    return f"{arch}-{quality}-{hashlib.sha256(data).hexdigest()[:8]}.pth.tar", data


def _publish(monkeypatch, arch, quality, base_url, name, metric="mse"):
    """Point CompressAI's URL table entry at ``base_url/models/v1/name``; returns the URL."""
    url = f"{base_url}/models/v1/{name}"
    monkeypatch.setitem(compressai.zoo.image.model_urls[arch][metric], quality, url)
    return url


def _image():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 64, 64, generator=g)


def test_zoo_url_table_and_hash_prefixes():
    assert zoo_url("bmshj2018-hyperprior", 3).endswith("/bmshj2018-hyperprior-3-6d87be32.pth.tar")
    assert weights_hash_prefix(zoo_url("bmshj2018-hyperprior", 3)) == "6d87be32"
    assert zoo_url("mbt2018-mean", 1, "ms-ssim").endswith("/mbt2018-mean-ms-ssim-1-5bf9c0b6.pth.tar")
    assert {"dvae", "qres-vae"}.isdisjoint(ZOO_ARCHITECTURES) and len(ZOO_ARCHITECTURES) == 6
    for arch in ZOO_ARCHITECTURES:
        for metric in ("mse", "ms-ssim"):
            qualities = range(1, 7) if arch.startswith("cheng2020") else range(1, 9)
            for q in qualities:
                assert len(weights_hash_prefix(zoo_url(arch, q, metric))) == 8
            assert len(ZOO_LAMBDAS[metric]) >= len(qualities)
    with pytest.raises(ValueError, match=r"'vae'.*available: bmshj2018-factorized, .*mbt2018-mean"):
        zoo_url("vae", 1)
    with pytest.raises(ValueError, match=r"for architecture 'dvae'; available: bmshj2018-factorized"):
        zoo_url("dvae", 1)  # registered, but no published weights
    with pytest.raises(ValueError, match=r"quality 7; available: 1, 2, 3, 4, 5, 6"):
        zoo_url("cheng2020-attn", 7)
    with pytest.raises(ValueError, match=r"metric 'lpips'; available: ms-ssim, mse"):
        zoo_url("mbt2018", 1, "lpips")
    with pytest.raises(ValueError, match="no '-<8\\+ hex digits"):
        weights_hash_prefix("https://example.org/model.pth.tar")


@pytest.mark.parametrize("arch", ZOO_ARCHITECTURES)
def test_zoo_checkpoint_codes_like_the_original(arch, server, monkeypatch, tmp_path):
    original, size = _tiny_model(arch)
    # DataParallel-style "module." keys, which compressai's load_pretrained strips, for one of them
    name, data = _weights(arch, 2, original, prefix_keys="module." if arch == "bmshj2018-hyperprior" else "")
    server.files[f"/models/v1/{name}"] = data
    url = _publish(monkeypatch, arch, 2, server.url, name)
    cache = tmp_path / "cache"

    out = zoo_checkpoint(arch, 2, tmp_path / "ckpt" / "zoo.pt", cache_dir=cache)
    assert out == tmp_path / "ckpt" / "zoo.pt"
    assert sorted(os.listdir(cache)) == [name] and (cache / name).read_bytes() == data
    model, meta = load_model(out)
    assert meta["arch"] == arch and meta["size"] == size
    assert meta["lmbda"] == 0.0035 and meta["metric"] == "mse" and meta["rate_point"] == 2 and meta["step"] is None
    assert meta["coder_ready"] is True and meta["source"] == url and meta["train_images_sha256"] == []
    assert meta["weights_sha256"] == hashlib.sha256(data).hexdigest()

    ours, theirs = model.state_dict(), original.state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)  # CDF tables too
    with torch.no_grad():
        a, b = original.compress(_image()), model.compress(_image())
    assert a["strings"] == b["strings"] and a["shape"] == b["shape"]
    assert server.hits == [f"/models/v1/{name}"]


def test_cached_file_is_used_without_the_network(monkeypatch, tmp_path):
    arch = "bmshj2018-factorized"
    name, data = _weights(arch, 1, _tiny_model(arch)[0])
    server = LocalServer()
    server.files[f"/models/v1/{name}"] = data
    _publish(monkeypatch, arch, 1, server.url, name)
    try:
        first = fetch_zoo_weights(arch, 1, cache_dir=tmp_path)
    finally:
        server.close()
    assert server.hits == [f"/models/v1/{name}"]
    assert fetch_zoo_weights(arch, 1, cache_dir=tmp_path) == first == tmp_path / name
    zoo_checkpoint(arch, 1, tmp_path / "ckpt.pt", cache_dir=tmp_path)
    assert load_model(tmp_path / "ckpt.pt")[1]["lmbda"] == 0.0018


def test_default_cache_is_torch_hub_and_mirror_is_used(monkeypatch, tmp_path):
    arch = "mbt2018-mean"
    name, data = _weights(arch, 4, _tiny_model(arch)[0])
    url = _publish(monkeypatch, arch, 4, "https://compressai.s3.amazonaws.com", name, metric="ms-ssim")
    mirror = tmp_path / "mirror"
    mirror_path(url, mirror).parent.mkdir(parents=True)
    mirror_path(url, mirror).write_bytes(data)
    assert mirror_path(url, mirror) == mirror / "compressai.s3.amazonaws.com/models/v1" / name
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    path = fetch_zoo_weights(arch, 4, metric="ms-ssim", mirror=mirror)
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / name and path.read_bytes() == data
    zoo_checkpoint(arch, 4, tmp_path / "c.pt", metric="ms-ssim", mirror=tmp_path / "empty")  # cached now
    assert load_model(tmp_path / "c.pt")[1]["lmbda"] == 16.64


def test_wrong_bytes_are_refused_and_not_cached(server, monkeypatch, tmp_path):
    arch = "bmshj2018-hyperprior"
    name, _ = _weights(arch, 3, _tiny_model(arch)[0])
    other_name, other = _weights(arch, 3, _tiny_model(arch, seed=1)[0])
    assert other_name != name
    server.files[f"/models/v1/{name}"] = other  # different bytes under the published name
    _publish(monkeypatch, arch, 3, server.url, name)
    with pytest.raises(DownloadError) as e:
        fetch_zoo_weights(arch, 3, cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert name in msg and f"expected one starting with {name.rsplit('-', 1)[1][:8]}" in msg
    assert hashlib.sha256(other).hexdigest() in msg
    assert not (tmp_path / "cache").exists() or os.listdir(tmp_path / "cache") == []

    mirror = tmp_path / "mirror"  # the same from a mirror: an error, no fallback to the server's
    mirror_path(f"{server.url}/models/v1/{name}", mirror).parent.mkdir(parents=True)
    mirror_path(f"{server.url}/models/v1/{name}", mirror).write_bytes(other)
    with pytest.raises(DownloadError, match="mirror file"):
        fetch_zoo_weights(arch, 3, cache_dir=tmp_path / "cache", mirror=mirror)
    assert os.listdir(tmp_path / "cache") == []


def test_cached_file_with_a_wrong_hash_is_an_error(monkeypatch, tmp_path):
    arch = "mbt2018"
    name, data = _weights(arch, 5, _tiny_model(arch)[0])
    _publish(monkeypatch, arch, 5, UNREACHABLE, name)
    (tmp_path / name).write_bytes(data[:-1] + b"x")
    with pytest.raises(WeightsHashError, match=rf"{tmp_path / name}: cached .*delete it"):
        fetch_zoo_weights(arch, 5, cache_dir=tmp_path)
    assert (tmp_path / name).read_bytes() == data[:-1] + b"x"  # left as it was


def test_offline_without_a_copy_says_where_to_put_it(monkeypatch, tmp_path):
    arch = "cheng2020-anchor"
    name = "cheng2020-anchor-1-0123abcd.pth.tar"
    url = _publish(monkeypatch, arch, 1, UNREACHABLE, name)
    with pytest.raises(WeightsUnavailableError) as e:
        zoo_checkpoint(arch, 1, tmp_path / "c.pt", cache_dir=tmp_path / "cache", mirror=tmp_path / "mirror")
    msg = str(e.value)
    assert isinstance(e.value, RuntimeError)
    assert url in msg and f"save it as {tmp_path / 'cache' / name}" in msg
    assert f"{mirror_path(url, tmp_path / 'mirror')}" in msg and f"127.0.0.1/models/v1/{name}" in msg
    assert "BENCHMARK_MIRROR" in msg and "does not train" in msg
    assert not (tmp_path / "c.pt").exists() and os.listdir(tmp_path / "cache") == []
