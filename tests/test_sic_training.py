"""SIC training (benchmark.training.sic) and the authors' checkpoints as a model source
(benchmark.models.official): the paper's loss on a hand-checkable case, the MS-SSIM stand-in,
the perceptual term resolved as the LPIPS metric's, the phases through the model stage with an
interrupted and resumed run, the GAN fine-tune, an official-format file, and the config keys.

A tiny SIC (dim 32, 4 heads: 0.36M parameters) on 64x64 crops; every test runs on one thread in
seconds."""

import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.cli import main
from benchmark.config import ConfigError, ProgressiveSettings, TrainSettings, parse_options
from benchmark.data.download import sha256_file
from benchmark.models import sic
from benchmark.models.checkpoint import load_model, read_checkpoint
from benchmark.models.specs import ARCHITECTURES, ModelSpec
from benchmark.training import sic as sic_training
from benchmark.training.sic import (
    STAND_IN_LABEL,
    ConditionalDiscriminator,
    PerceptualStandInWarning,
    PerceptualTerm,
    ProgressiveTrainConfig,
    SICRun,
    discriminator_loss,
    generator_loss,
    level_at,
    ms_ssim,
    ms_ssim_scales,
    resolve_perceptual,
    train_progressive,
    warmup_loss,
)

from helpers import build_with

ROOT = Path(__file__).resolve().parents[1]
TINY = {"dim": 32, "heads": 4}
SCHEDULE = {"warmup_steps": 2, "balance_steps": 2, "gan_steps": 3, "num_samples": 2, "perceptual": "ms-ssim", "disc_width": 8}
SETTINGS = {"steps": 3, "batch_size": 2, "patch_size": 64, "lr": 1e-3, "checkpoint_every": 3, "log_every": 1}


@pytest.fixture(scope="module")
def images():
    from skimage import data

    return [data.coffee(), data.chelsea()]


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch):
    """An empty torch hub cache and no network: LPIPS' weights never resolve unless a test gives them."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("benchmark.data.download.urllib.request.urlopen", _no_network)


def _no_network(*args, **kwargs):
    import urllib.error

    raise urllib.error.URLError("no network in this test")


def _cfg(schedule=None, **settings):
    return ProgressiveTrainConfig(
        "sic", dict(TINY), parse_options(TrainSettings, {**SETTINGS, **settings}, "t"),
        parse_options(ProgressiveSettings, {**SCHEDULE, **(schedule or {})}, "t"), PerceptualTerm("ms-ssim"), seed=3, device="cpu",
    )


# ---- the loss ---------------------------------------------------------------------------------


def _fake_out(level=4, m=2):
    """Forward outputs with round numbers: B=1, 4x4 px (16 pixels), dim 32 (16 slices of 2)."""
    s = level * 2
    y_noisy = torch.full((1, 32, 1, 1), 0.5)  # 1 bit per element: bpp_y = 32/16 = 2, bpp_ys = s/16
    y_q = torch.full((1, 32, 1, 1), 0.5)
    y_q[:, :2] = 0.25  # slice 1 costs 2 bits per element: per-slice bpp 0.25, the others 0.125
    z = torch.full((1, 8, 1, 1), 0.5)  # bpp_z = 8/16
    x = torch.zeros(1, 3, 4, 4)
    samples = torch.cat([torch.full((1, 3, 4, 4), 0.2), torch.full((1, 3, 4, 4), 0.3)])[:m]
    y_dis = torch.cat([torch.full((1, 32, 1, 1), v) for v in (0.1, 0.2, 0.3)[: m + 1]])
    out = {
        "likelihoods": {"y": y_noisy, "z": z}, "y_likelihoods_quantized": y_q, "x_hat": torch.full((1, 3, 4, 4), 0.1),
        "x_hat_samples": samples, "y_hat": torch.zeros(1, 32, 1, 1), "y_hat_samples": torch.zeros(m, 32 - s, 1, 1),
        "y_dis": y_dis, "level": level, "sem_dim": s, "num_samples": m,
    }
    return SimpleNamespace(num_slices=16, dim=32), out, x


def test_paper_loss_on_a_hand_checkable_case():
    """official_loss at level 4 with M = 2 against the formula with the config.py weights
    λℓ = 128ℓ, γℓ = 2^(5-ℓ/8), βℓ = 2^(6-3ℓ/8), term by term."""
    model, out, x = _fake_out(level=4, m=2)
    perceptual = lambda a, b: (b - a).mean((1, 2, 3))  # noqa: E731  (0.1 for x̂, 0.2 and 0.3 for the samples)
    t = sic.official_loss(model, out, x, perceptual)
    assert sic.official_loss_weights(4) == (512.0, 2**4.5, 2**4.5) and sic.official_loss_weights(16) == (2048.0, 8.0, 1.0)
    assert t["bpp_y"].item() == 2.0 and t["bpp_ys"].item() == 0.5 and t["bpp_z"].item() == 0.5
    assert t["mse_syn"].item() == pytest.approx(0.01) and t["mse_samples"].item() == pytest.approx((0.04 + 0.09) / 2)
    assert t["perceptual_syn"].item() == pytest.approx(0.1) and t["perceptual_samples"].item() == pytest.approx(0.25)
    # synonym distance: mean of MSE(ŷ, ga(x̂)) and, per sample, MSE over the 8 transmitted channels;
    # sample distance: mean of 0 and, per sample, MSE(samples, ga(x̂_m)[:, 8:])
    assert t["synonym_distance"].item() == pytest.approx((0.01 + 0.04 + 0.09) / 3)
    assert t["sample_distance"].item() == pytest.approx((0 + 0.04 + 0.09) / 3)
    full = 0.5 * (2048 * 0.01 + 8 * 0.1 + 1 * (2.0 + 0.5))
    level4 = 0.5 * (512 * 0.065 + 2**4.5 * 0.25 + 2**4.5 * (0.5 + 0.5))
    expected = full + level4 + 0.14 / 3 + 0.13 / 3
    assert t["loss"].item() == pytest.approx(expected, rel=1e-6)
    splits = np.array([0.25] + [0.125] * 15)
    np.testing.assert_allclose(t["bpp_y_splits"].numpy(), splits, rtol=1e-6)
    balanced = sic.official_loss(model, out, x, perceptual, warmup=True)  # the first-epochs terms
    assert balanced["loss"].item() == pytest.approx(expected + 64 * splits.std(ddof=1) - 4 * 0.125, rel=1e-6)


def test_warmup_loss_and_gan_losses_by_hand():
    model, out, x = _fake_out(level=16, m=1)
    out["likelihoods"]["y"] = out["y_likelihoods_quantized"]  # the warm-up's slice rates come from these
    t = warmup_loss(model, out, x, lambda a, b: (b - a).mean((1, 2, 3)))
    splits = np.array([0.25] + [0.125] * 15)
    bpp_y = splits.sum()
    expected = 2048 * 0.01 + 8 * 0.1 + 1 * (bpp_y + 0.5) + splits.std(ddof=1) - 0.125
    assert t["loss"].item() == pytest.approx(expected, rel=1e-6) and t["bpp_y"].item() == pytest.approx(bpp_y)
    zero = torch.zeros(2, 1, 4, 4)  # logits 0: every cross-entropy is ln 2
    assert discriminator_loss(zero, zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zero).item() == pytest.approx(math.log(2))
    assert generator_loss(torch.full((1, 1, 2, 2), 3.0)).item() == pytest.approx(math.log1p(math.exp(-3.0)))
    assert [level_at(i) for i in range(18)] == list(range(16, 0, -1)) + [16, 15]


# ---- the perceptual term ----------------------------------------------------------------------


def test_ms_ssim_stand_in_matches_piq_and_keeps_finite_gradients():
    import piq

    g = torch.Generator().manual_seed(0)
    for side, k in ((64, 3), (128, 4), (176, 5)):
        assert ms_ssim_scales(side) == k
        x = torch.rand(2, 3, side, side, generator=g)
        y = (x + 0.1 * torch.randn(2, 3, side, side, generator=g)).clamp(0, 1)
        ref = piq.multi_scale_ssim(y, x, data_range=1.0, reduction="none",
                                   scale_weights=torch.tensor(sic_training.MS_SSIM_WEIGHTS[:k]))
        torch.testing.assert_close(ms_ssim(y, x), ref, rtol=1e-5, atol=1e-6)
    assert ms_ssim_scales(256) == 5 and ms_ssim_scales(21) == 2
    x_hat = torch.zeros(1, 3, 64, 64, requires_grad=True)  # a flat reconstruction: contrast terms near 0
    (1 - ms_ssim(torch.rand(1, 3, 64, 64, generator=g), x_hat)).sum().backward()
    assert torch.isfinite(x_hat.grad).all()
    with pytest.raises(ValueError, match="at least"):
        ms_ssim(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 40), scales=3)


def _params(p, **schedule):
    """A tiny budget with the model `sic-t` (and the others left alone)."""
    p["models"]["sic-t"] = {"arch": "sic", "source": "train"}
    p["train"].update(budget="tiny", device="cpu", progressive=["sic-t"])
    p["train"]["budgets"]["tiny"] = {
        "defaults": dict(SETTINGS),
        "models": {"sic-t": {"size": dict(TINY), "progressive": {**SCHEDULE, **schedule}}},
    }
    p["train"]["models"] = []
    p["samples"]["models"] = []
    p["evaluate"]["learned"] = []
    p["metrics"]["download"] = False


def test_perceptual_term_resolves_as_the_lpips_metric(tmp_path, params_file):
    from benchmark.config import load_config

    cfg = load_config(params_file(lambda p: _params(p, perceptual="lpips")))
    where = "train.budgets.tiny.models.sic-t.progressive.perceptual"
    with pytest.raises(ConfigError, match=r"progressive\.perceptual: lpips .*alexnet-owt-7be5be79\.pth.*ms-ssim"):
        ProgressiveTrainConfig.from_params(cfg, "sic-t")
    with pytest.warns(PerceptualStandInWarning, match="alexnet-owt-7be5be79.pth"):
        term = resolve_perceptual("auto", cfg, where=where)
    assert term.name == "ms-ssim" and term.label == STAND_IN_LABEL and term.files == ()
    # an explicit AlexNet file (metrics.weights.alexnet, random weights here) and the lpips package's
    # linear layers: the same files the LPIPS metric would use
    from torchvision.models import alexnet

    features = {k: v for k, v in alexnet(weights=None).state_dict().items() if k.startswith("features.")}
    torch.save(features, tmp_path / "alexnet.pth")
    cfg = load_config(params_file(lambda p: (_params(p, perceptual="auto"), p["metrics"]["weights"].update(alexnet=str(tmp_path / "alexnet.pth")))))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerceptualStandInWarning)
        tcfg = ProgressiveTrainConfig.from_params(cfg, "sic-t")
    files = {f["key"]: f for f in tcfg.perceptual.record()["files"]}
    assert tcfg.perceptual.label == "lpips" and files["alexnet"]["origin"] == "explicit"
    assert files["alexnet"]["sha256"] == sha256_file(tmp_path / "alexnet.pth") and files["lpips_linear"]["origin"] == "package"
    fn = tcfg.perceptual.build(torch.device("cpu"), 64)
    x = torch.rand(2, 3, 64, 64)
    x_hat = torch.rand(2, 3, 64, 64, requires_grad=True)
    d = fn(x, x_hat)
    d.sum().backward()
    assert d.shape == (2,) and float(fn(x, x).abs().max()) < 1e-6 and x_hat.grad.abs().sum() > 0
    assert tcfg.fingerprint() != ProgressiveTrainConfig.from_params(load_config(params_file(lambda p: _params(p))), "sic-t").fingerprint()


# ---- the phases through the model stage -------------------------------------------------------


def test_model_stage_trains_the_phases_and_resumes_to_identical_weights(images, tmp_path, params_file):
    """warm-up 2 + progressive 3 (2 with the balance terms) + GAN 3 steps through
    ``python -m benchmark model`` without --quality; a run interrupted in the GAN phase (state at
    step 6) and resumed by the stage ends with the same weights and log as the uninterrupted one."""
    from benchmark.config import DatasetConfig, load_config
    from benchmark.data.dataset import fetch_dataset
    from benchmark.data.images import load_rgb8, read_manifest

    fetch_dataset(DatasetConfig(name="t", source="builtin", images=("coffee", "chelsea")), tmp_path / "train", mirror=None)
    params = params_file(_params)
    full = tmp_path / "full" / "model.pt"
    args = ["model", "--params", str(params), "--model", "sic-t", "--train-data", str(tmp_path / "train"), "--no-progress"]
    assert main(args + ["--out", str(full)]) == 0

    class Stop(Exception):
        pass

    def interrupt(step):
        if step == 7:
            raise Stop

    cut = tmp_path / "cut" / "model.pt"
    tcfg = ProgressiveTrainConfig.from_params(load_config(params), "sic-t")
    train_images = [load_rgb8(tmp_path / "train" / r.file) for r in read_manifest(tmp_path / "train")]
    with pytest.raises(Stop):
        train_progressive(tcfg, train_images, cut, cut.with_suffix(".state"), cut.with_suffix(".log.csv"), progress=False,
                          on_step=interrupt)
    state = torch.load(cut.with_suffix(".state"), weights_only=False)
    assert state["step"] == 6 and state["phase"] == "gan" and state["discriminator"] is not None and not cut.exists()
    assert main(args + ["--out", str(cut)]) == 0  # the stage resumes from model.state

    a, b = read_checkpoint(full), read_checkpoint(cut)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    log_a, log_b = pd.read_csv(full.with_suffix(".log.csv")), pd.read_csv(cut.with_suffix(".log.csv"))
    assert list(log_a.columns) == sic_training.LOG_COLUMNS
    np.testing.assert_allclose(log_a.loss, log_b.loss, rtol=0, atol=0)
    assert list(log_a.phase) == ["warmup"] * 2 + ["progressive"] * 3 + ["gan"] * 3
    assert list(log_a.level) == [16, 16, 16, 15, 14, 16, 15, 14]  # rolled per batch, from 16 in each phase
    assert log_a.d_loss.isna().sum() == 5 and np.isfinite(log_a.d_loss[5:]).all()
    assert np.isfinite(log_a.bpp_level[2:]).all() and (log_a.bpp_level <= log_a.bpp_estimated).all()

    assert a["arch"] == "sic" and a["size"] == TINY and a["source"] == "train" and a["model"] == "sic-t"
    assert a["levels"] == 16 and a["num_samples"] == 2 and a["gan"] is True and a["step"] == 8
    assert a["perceptual"] == "ms-ssim (stand-in for LPIPS)" and a["perceptual_scales"] == 3 and a["perceptual_weights"] == []
    assert a["phases"] == {"warmup": 2, "progressive": 3, "balance": 2, "gan": 3}
    assert a["description"] == "sic(dim=32,heads=4), trained here: M=2, perceptual ms-ssim (stand-in for LPIPS), warm-up 2 + progressive 3 + GAN 3 steps"
    assert len(a["train_images_sha256"]) == 2 and a["train_config"]["progressive"]["num_samples"] == 2
    model, meta = load_model(full)  # coder-ready: tables computed, loads into a fresh model
    assert meta["coder_ready"] and model.gaussian_conditional._quantized_cdf.numel() > 0
    assert model.entropy_bottleneck._quantized_cdf.numel() > 0
    out = model.test_level(torch.rand(1, 3, 64, 64), 8, rng=torch.Generator().manual_seed(0))
    assert out["x_hat"].shape == (1, 3, 64, 64) and math.isfinite(float(out["bpp"]))


def test_gan_fine_tune_two_steps(images, tmp_path):
    """Two GAN steps on the CPU: the model and the discriminator change; the discriminator is
    conditioned on the transmitted latent of the batch's level (only that level's context
    convolution is trained, its output depends on the latent, no gradient reaches the latent)."""
    cfg = _cfg({"warmup_steps": 0, "gan_steps": 2, "num_samples": 1}, steps=1)
    run = SICRun(cfg, images, tmp_path / "s.state", tmp_path / "s.csv")
    run.one_step()  # the progressive step (level 16)
    model0 = {k: v.clone() for k, v in run.model.state_dict().items()}
    disc0 = {k: v.clone() for k, v in run.disc.state_dict().items()}
    rows = [run.log(run.one_step()) for _ in range(2)]  # GAN at levels 16 and 15
    assert [r["phase"] for r in rows] == ["gan", "gan"] and [r["level"] for r in rows] == [16, 15]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
    changed = [k for k, v in run.model.state_dict().items() if not torch.equal(v, model0[k])]
    assert "gs.outconv.weight" in changed and "ga.patch_embed.proj.weight" in changed
    d = run.disc.state_dict()
    trained = {i for i in range(16) if not torch.equal(d[f"context.{i}.weight"], disc0[f"context.{i}.weight"])}
    assert trained == {15, 14}  # levels 16 and 15: the convolutions over 32 and 30 transmitted channels
    assert not torch.equal(d["body.0.weight_orig"], disc0["body.0.weight_orig"])
    disc = ConditionalDiscriminator(32, width=8).eval()
    x = torch.rand(1, 3, 64, 64)
    latent = torch.zeros(1, 6, 4, 4, requires_grad=True)  # level 3: 3 slices of 2 channels
    logits = disc(x, latent, 3)
    assert logits.shape == (1, 1, 4, 4) and not torch.allclose(logits, disc(x, latent + 3, 3))
    logits.sum().backward()
    assert latent.grad is None
    with pytest.raises(ValueError, match="level"):
        disc(x, latent, 0)


def test_state_of_another_schedule_is_not_resumed(images, tmp_path, capsys):
    cfg = _cfg({"gan_steps": 0, "warmup_steps": 1}, steps=1)
    train_progressive(cfg, images, tmp_path / "a.pt", tmp_path / "s.state", tmp_path / "a.csv", progress=False)
    other = _cfg({"gan_steps": 0, "warmup_steps": 1, "num_samples": 1}, steps=1)
    train_progressive(other, images, tmp_path / "b.pt", tmp_path / "s.state", tmp_path / "b.csv", progress=False)
    assert "another configuration" in capsys.readouterr().err
    assert read_checkpoint(tmp_path / "b.pt")["num_samples"] == 1


# ---- the authors' checkpoints -----------------------------------------------------------------


OFFICIAL = "sic-official-test"


@pytest.fixture
def official_arch():
    """A fixed tiny architecture that reads the authors' file format, as ``sic-official`` does."""
    spec = ARCHITECTURES.get("sic-official")
    ARCHITECTURES.add(OFFICIAL, ModelSpec(OFFICIAL, lambda: (lambda: sic.sic(32, 4)), (), "test", progressive=True,
                                          padding=spec.padding, file_loader=spec.file_loader, file_source=spec.file_source,
                                          file_meta=spec.file_meta))
    yield
    ARCHITECTURES.remove(OFFICIAL)


def _official_file(model: sic.SIC, path: Path) -> None:
    """``model`` saved as the authors' DDP training saves it: ``module.`` prefix, compressai
    1.2.4's EntropyBottleneck names, the lpips and dists loss networks, Swin attention masks,
    empty coder tables."""
    names = {"matrices": "_matrix", "biases": "_bias", "factors": "_factor"}
    ckpt = {}
    for k, v in model.state_dict().items():
        parts = k.split(".")
        if parts[0] == "entropy_bottleneck" and parts[1] in names:
            k = f"entropy_bottleneck.{names[parts[1]]}{parts[2]}"
        ckpt[f"module.{k}"] = v
    ckpt["module.lpips.net.slice1.0.weight"] = torch.randn(64, 3, 11, 11)
    ckpt["module.lpips.lins.0.model.1.weight"] = torch.randn(1, 64, 1, 1)
    ckpt["module.dists.alpha"] = torch.randn(1, 1475, 1, 1)
    ckpt["module.ga.layers.1.blocks.1.attn_mask"] = torch.zeros(256, 64, 64)
    ckpt["module.gs.layers.0.blocks.1.attn_mask"] = torch.zeros(4, 64, 64)
    assert "module.entropy_bottleneck._matrix0" in ckpt and ckpt["module.entropy_bottleneck._quantized_cdf"].numel() == 0
    torch.save(ckpt, path)


def _file_params(p, path, **entry):
    p["models"]["off"] = {"arch": OFFICIAL, "source": "file", "path": str(path), **entry}
    p["train"]["progressive"] = ["off"]


def test_official_checkpoint_becomes_our_checkpoint(official_arch, tmp_path, params_file, capsys):
    torch.manual_seed(5)
    source = sic.sic(32, 4)
    with torch.no_grad():
        source.entropy_bottleneck.quantiles.add_(0.3)  # not the initial values
    path = tmp_path / "EP1234.model"
    _official_file(source, path)
    sha = sha256_file(path)
    params = params_file(lambda p: _file_params(p, path, sha256=sha, num_samples=5, gan=True))
    out = tmp_path / "models" / "off" / "model.pt"
    assert main(["model", "--params", str(params), "--model", "off", "--out", str(out)]) == 0
    model, meta = load_model(out)
    theirs = source.state_dict()
    for k, v in model.state_dict().items():
        if k.rpartition(".")[2] not in ("_quantized_cdf", "_offset", "_cdf_length", "scale_table"):
            assert torch.equal(v, theirs[k]), k
    assert model.entropy_bottleneck._quantized_cdf.numel() > 0 and model.gaussian_conditional._quantized_cdf.numel() > 0
    assert meta["coder_ready"] and meta["source"] == "file" and meta["model"] == "off" and meta["arch"] == OFFICIAL
    assert meta["weights_file"] == "EP1234.model" and meta["weights_sha256"] == sha and meta["weights_verified"] is True
    assert meta["weights_path"] == str(path.resolve()) and meta["num_samples"] == 5 and meta["gan"] is True
    assert meta["perceptual"] == "lpips" and meta["levels"] == 16 and meta["train_images_sha256"] == []

    # M and GAN unknown, no hash pinned: recorded as such
    params = params_file(lambda p: _file_params(p, path))
    assert main(["model", "--params", str(params), "--model", "off", "--out", str(out)]) == 0
    meta = read_checkpoint(out)
    assert meta["num_samples"] is None and meta["gan"] is None and meta["weights_verified"] is False
    capsys.readouterr()


def test_official_checkpoint_errors(official_arch, tmp_path, params_file, capsys):
    out = tmp_path / "m.pt"
    run = lambda params: main(["model", "--params", str(params), "--model", "off", "--out", str(out)])  # noqa: E731
    absent = tmp_path / "nowhere" / "sic.model"
    assert run(params_file(lambda p: _file_params(p, absent))) == 2
    err = capsys.readouterr().err
    assert str(absent) in err and "not found" in err and "drive.google.com/drive/folders/1o9_tEeSFcmlcF8UaZuCWISWR8ZY91X8o" in err
    model = sic.sic(32, 4)
    path = tmp_path / "EP1.model"
    _official_file(model, path)
    assert run(params_file(lambda p: _file_params(p, path, sha256="0" * 64))) == 2
    assert "SHA-256 is" in capsys.readouterr().err
    bad = torch.load(path, weights_only=True)
    del bad["module.hs.4.bias"]
    torch.save(bad, path)
    assert run(params_file(lambda p: _file_params(p, path))) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "missing 1 keys: hs.4.bias" in err
    other = tmp_path / "other.model"
    _official_file(sic.sic(64, 4), other)  # another width
    assert run(params_file(lambda p: _file_params(p, other))) == 2
    assert "shapes differ" in capsys.readouterr().err
    assert not out.exists()


# ---- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda p: p["train"].update(progressive=["nope"]), r"train\.progressive: unknown model 'nope'"),
        (lambda p: p["train"].update(progressive=["sic", "sic"]), r"train\.progressive has duplicates"),
        (lambda p: p["train"].update(progressive=["dvae"]), r"train\.progressive: 'dvae' is also in train\.models"),
        (lambda p: (p["train"].update(progressive=["sic"]), p["train"]["budgets"]["quick"]["models"].pop("sic")),
         r"train\.budgets\.quick\.models \(train\.progressive\): unknown model 'sic'"),
        (lambda p: (p["train"].update(progressive=["qres34m"]), p["train"].update(models=["dvae"])),
         r"train\.progressive: 'qres34m' has source pretrained"),
        (lambda p: p["models"].update(f={"arch": "sic-official", "source": "file"}), r"models\.f\.path: missing"),
        (lambda p: p["models"]["sic"].update(num_samples=5), r"models\.sic\.num_samples: only for source: file"),
        (lambda p: p["models"].update(f={"arch": "sic-official", "source": "file", "path": "x", "sha256": "abc"}),
         r"models\.f\.sha256: String should match pattern"),
        (lambda p: (p["models"].update(f={"arch": "sic-official", "source": "file", "path": "x"}),
                    p["train"].update(models=["dvae", "f"])), r"train\.models: 'f' has source file"),
        (lambda p: p["train"]["budgets"]["quick"]["models"]["sic"]["progressive"].update(gan_stepz=1),
         r"models\.sic\.progressive: unknown key 'gan_stepz'.*'gan_steps'"),
        (lambda p: p["train"]["budgets"]["quick"]["models"]["sic"]["progressive"].update(perceptual="lpipz"),
         r"models\.sic\.progressive\.perceptual: Input should be 'auto', 'lpips' or 'ms-ssim'"),
        (lambda p: p["train"]["budgets"]["quick"]["models"]["sic"]["progressive"].update(num_samples=0),
         r"models\.sic\.progressive\.num_samples: .*greater than 0"),
    ],
)
def test_progressive_config_errors_name_the_key(base, mutate, match):
    with pytest.raises(ConfigError, match=match) as e:
        build_with(base, mutate)
    assert str(e.value).startswith("p.yaml: ")


def test_committed_budgets_and_the_architecture_check(base, params_file, capsys):
    cfg = build_with(base, lambda p: p["train"].update(progressive=["sic"]))
    quick = ProgressiveTrainConfig.from_params(cfg, "sic")
    assert quick.size == {"dim": 96, "heads": 4} and quick.perceptual.label == STAND_IN_LABEL and quick.schedule.gan_steps == 0
    cpu = ProgressiveTrainConfig.from_params(build_with(base, lambda p: p["train"].update(progressive=["sic"], budget="cpu")), "sic")
    assert cpu.schedule.gan_steps == 0 and cpu.steps == cpu.schedule.warmup_steps + cpu.settings.steps
    paper = build_with(base, lambda p: p["train"].update(progressive=["sic"], budget="paper")).budget().models["sic"]
    assert paper.size == "paper" and paper.progressive.perceptual == "lpips" and paper.progressive.gan_steps > 0
    assert cfg.train.progressive == ("sic",) and build_with(base, lambda p: p["train"].pop("progressive")).train.progressive == ()
    # a non-progressive architecture under train.progressive, a progressive one with --quality
    bad = build_with(base, lambda p: (p["models"].update(hp={"arch": "bmshj2018-hyperprior"}), p["train"].update(progressive=["hp"]),
                                  p["train"]["budgets"]["quick"]["models"].update(hp={"size": {"N": 8, "M": 8}})))
    with pytest.raises(ConfigError, match=r"train\.progressive: model 'hp' is architecture 'bmshj2018-hyperprior', which is not progressive"):
        ProgressiveTrainConfig.from_params(bad, "hp")
    params = params_file()
    assert main(["model", "--params", str(params), "--model", "sic", "--quality", "2", "--out", "x.pt"]) == 2
    assert "is progressive" in capsys.readouterr().err
    assert main(["model", "--params", str(params), "--model", "dvae", "--out", "x.pt"]) == 2
    assert "is not progressive" in capsys.readouterr().err
