"""``python -m benchmark own``: a CompressAI checkpoint of yours (trained here for a few steps and
saved as CompressAI's examples/train.py saves it) coded into real bitstreams and reported against
the committed results of the default run; your images against the run's codecs; bad
checkpoints and output folders refused with messages naming the file."""

import filecmp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = ROOT / "results" / "builtin"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _compressai_models():
    from benchmark._torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import compressai.models

    return compressai.models


def train_tiny(cls, lmbda, steps=3, seed=0):
    """A CompressAI model with 8 channels trained for ``steps`` Adam steps on random 64 px crops
    of a photo (loss λ·255²·MSE + bpp), as a train.py checkpoint dict (no ``update()``)."""
    from skimage import data

    torch.manual_seed(seed)
    net = cls(8, 8)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    photo = torch.from_numpy(data.camera().astype(np.float32) / 255)
    for _ in range(steps):
        i, j = torch.randint(0, photo.shape[0] - 64, (2,)).tolist()
        x = photo[i:i + 64, j:j + 64].expand(1, 3, 64, 64).contiguous()
        out = net(x)
        bpp = sum(-torch.log2(v).sum() for v in out["likelihoods"].values()) / (64 * 64)
        loss = lmbda * 255**2 * torch.mean((out["x_hat"] - x) ** 2) + bpp
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"epoch": steps, "state_dict": net.state_dict(), "loss": float(loss.detach()), "optimizer": opt.state_dict()}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two rate points of a tiny bmshj2018-hyperprior in CompressAI's format: one as train.py
    saves it ({"epoch", "state_dict", ...}), one a raw state_dict after ``update()``."""
    models = _compressai_models()
    d = tmp_path_factory.mktemp("yours")
    low = train_tiny(models.ScaleHyperprior, 0.0018)
    torch.save(low, d / "low.pth.tar")
    high = models.ScaleHyperprior(8, 8)
    high.load_state_dict(train_tiny(models.ScaleHyperprior, 0.05, seed=1)["state_dict"])
    high.update(force=True)
    torch.save(high.state_dict(), d / "high.pth.tar")
    return [d / "low.pth.tar", d / "high.pth.tar"]


@pytest.fixture
def fast_params(params_file):
    """The project's params with a 20-resample bootstrap and HaarPSI as the only perceptual metric."""

    def mutate(p):
        p["report"]["bootstrap_resamples"] = 20
        p["metrics"]["perceptual"] = ["haarpsi"]
        p["metrics"]["figures"]["dp"] = ["haarpsi"]

    return params_file(mutate)


def _run(*argv):
    return cli_main(["own", *[str(a) for a in argv]])


def test_own_checkpoints_against_the_committed_default_run(tmp_path, checkpoints, fast_params):
    from benchmark.config import load_config
    from benchmark.data.images import load_rgb8, read_manifest

    data = tmp_path / "data" / "builtin"
    assert cli_main(["fetch", "--params", str(fast_params), "--dataset", "builtin", "--out", str(data)]) == 0
    out = tmp_path / "own"
    rc = _run("--params", fast_params, "--data", data, "--baseline", BUILTIN / "per_image",
              "--baseline-perception", BUILTIN / "perception", "--arch", "bmshj2018-hyperprior",
              "--checkpoint", *checkpoints, "--name", "mine", "--out", out, "--workers", 1)
    assert rc == 0

    # your rows: every image at both rate points, real bytes, decoded and checked
    rows = pd.read_csv(out / "per_image" / "mine.csv")
    manifest = read_manifest(data)
    assert sorted(rows.image.unique()) == sorted(r.name for r in manifest)
    assert sorted(rows.rate_point.unique()) == [1, 2] and len(rows) == 2 * len(manifest)
    assert (rows.decode_check == "ok").all()
    assert np.allclose(rows.bpp, 8 * rows.bytes / (rows.height * rows.width))
    assert (rows.dataset == "builtin").all() and (rows.codec == "mine").all()
    assert rows.codec_library.str.contains("low.pth.tar").all() and rows.codec_library.str.contains("high.pth.tar").all()

    # the same weights through CompressAI's own coder: the same PSNR, and our bytes are its
    # strings plus the container's header
    models = _compressai_models()
    net = models.ScaleHyperprior.from_state_dict(torch.load(checkpoints[0], weights_only=True)["state_dict"])
    net.update(force=True)
    first = manifest[0]
    image = load_rgb8(data / first.file)
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255  # 512x512: no padding
    with torch.no_grad():
        enc = net.compress(x)
        rec = net.decompress(enc["strings"], enc["shape"])["x_hat"].clamp(0, 1)
    rec8 = rec[0].mul(255).round().byte().permute(1, 2, 0).numpy()
    psnr = 10 * np.log10(255**2 / np.mean((rec8.astype(float) - image) ** 2))
    ours = rows[(rows.image == first.name) & (rows.rate_point == 1)].iloc[0]
    assert ours.psnr == pytest.approx(psnr, abs=1e-6)
    strings = sum(len(s[0]) for s in enc["strings"])
    assert strings < ours.bytes <= strings + 64

    # the committed rows, copied unchanged beside yours, and the report over both
    codecs = load_config(fast_params).evaluated_codecs()
    for c in codecs:
        assert filecmp.cmp(BUILTIN / "per_image" / f"{c}.csv", out / "per_image" / f"{c}.csv", shallow=False)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.codec) == {*codecs, "mine"}
    bd = pd.read_csv(out / "bd_rate.csv")
    mine = bd[(bd.codec == "mine") & (bd.anchor == "jpeg") & (bd.method == "pchip")]
    assert set(mine.metric) == {"psnr", "ms_ssim_db"}
    assert set(bd[bd.codec == "mine"].anchor) >= {"jpeg", "bmshj2018-hyperprior"}  # the run's codec of the same architecture
    png = out / "figures" / "rd-psnr.png"
    assert png.stat().st_size > 10_000 and (out / "figures-pdf" / "rd-psnr.pdf").is_file()
    readme = (out / "README.md").read_text()
    assert "mine" in readme and "your checkpoints" in readme and "low.pth.tar" in readme
    # nothing written into the committed results
    assert not (BUILTIN / "per_image" / "mine.csv").exists()


def test_own_images_against_the_run_codecs(tmp_path, checkpoints, fast_params):
    from skimage import data

    from benchmark.data.images import save_png_atomic

    images = tmp_path / "photos"
    images.mkdir()
    save_png_atomic(np.ascontiguousarray(data.astronaut()[:192, :176]), images / "a.png")
    save_png_atomic(np.ascontiguousarray(data.chelsea()[:176, :192]), images / "b.png")
    (images / "notes.png").write_bytes(b"not an image")
    out = tmp_path / "own"
    rc = _run("--params", fast_params, "--images", images, "--codecs", "jpeg", "webp", "--arch", "bmshj2018-hyperprior",
              "--checkpoint", *checkpoints, "--out", out, "--workers", 1)
    assert rc == 0
    for c in ("jpeg", "webp", "bmshj2018-hyperprior-yours"):
        rows = pd.read_csv(out / "per_image" / f"{c}.csv")
        assert sorted(rows.image.unique()) == ["a", "b"] and (rows.dataset == "photos").all()
        assert np.allclose(rows.bpp, 8 * rows.bytes / (rows.height * rows.width))
    bd = pd.read_csv(out / "bd_rate.csv")
    assert {"webp", "bmshj2018-hyperprior-yours"} <= set(bd[bd.anchor == "jpeg"].codec)
    assert (out / "figures" / "rd-psnr.png").is_file() and (out / "README.md").is_file()


def test_out_that_is_not_empty_is_refused(tmp_path, checkpoints, fast_params, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "README.md").write_text("committed\n")
    rc = _run("--params", fast_params, "--images", tmp_path, "--out", out)
    assert rc == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--overwrite" in err
    assert (out / "README.md").read_text() == "committed\n"


def test_bad_checkpoints_name_the_file(tmp_path, checkpoints, capsys):
    from benchmark.models.zoo import CompressAIWeightsError, compressai_file_checkpoint

    models = _compressai_models()
    # another architecture's weights
    mean = tmp_path / "mean.pth.tar"
    torch.save({"state_dict": models.MeanScaleHyperprior(8, 8).state_dict()}, mean)
    with pytest.raises(CompressAIWeightsError, match=r"mean\.pth\.tar: does not load into CompressAI bmshj2018-hyperprior"):
        compressai_file_checkpoint("bmshj2018-hyperprior", mean, tmp_path / "a.pt", 1)
    # a state_dict missing a key
    sd = torch.load(checkpoints[1], weights_only=True)
    sd.pop("h_s.0.weight")
    short = tmp_path / "short.pth.tar"
    torch.save(sd, short)
    with pytest.raises(CompressAIWeightsError, match=r"short\.pth\.tar: does not load .*h_s\.0\.weight"):
        compressai_file_checkpoint("bmshj2018-hyperprior", short, tmp_path / "b.pt", 1)
    # not a checkpoint at all, and a missing file
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CompressAIWeightsError, match=r"junk\.pth\.tar: cannot read"):
        compressai_file_checkpoint("bmshj2018-hyperprior", junk, tmp_path / "c.pt", 1)
    with pytest.raises(CompressAIWeightsError, match=r"absent\.pth\.tar: checkpoint file not found"):
        compressai_file_checkpoint("bmshj2018-hyperprior", tmp_path / "absent.pth.tar", tmp_path / "d.pt", 1)
    # through the command: one line naming the file, exit status 2, and an unknown architecture
    rc = _run("--images", tmp_path, "--codecs", "jpeg", "--arch", "bmshj2018-hyperprior", "--checkpoint", mean,
              "--out", tmp_path / "o1")
    err = capsys.readouterr().err
    assert rc == 2 and str(mean) in err and len(err.strip().splitlines()) == 1
    rc = _run("--images", tmp_path, "--arch", "mbt2019", "--checkpoint", mean, "--out", tmp_path / "o2")
    err = capsys.readouterr().err
    assert rc == 2 and "'mbt2019'" in err and "mbt2018-mean" in err
