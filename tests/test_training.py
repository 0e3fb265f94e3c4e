"""Training: RD loss scale, deterministic resume after an interruption, NaN stop, the stage CLI."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.models.checkpoint import load_model, read_checkpoint
from benchmark.training.loop import LOG_COLUMNS, PatchSampler, TrainConfig, TrainingError, rd_loss, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images():
    from skimage import data

    return [data.coffee(), data.chelsea()]


def _cfg(**kw):
    base = dict(arch="bmshj2018-hyperprior", size={"N": 16, "M": 24}, lmbda=0.0130, steps=12, batch_size=2,
                patch_size=64, lr=1e-3, checkpoint_every=4, log_every=2, seed=3, device="cpu")
    return TrainConfig.make(**{**base, **kw})


def test_rd_loss_matches_compressai_scale():
    x = torch.rand(2, 3, 8, 8)
    x_hat = x + 0.1
    lk = {"y": torch.full((2, 4, 2, 2), 0.5)}  # 1 bit per element
    out = rd_loss({"x_hat": x_hat, "likelihoods": lk}, x, lmbda=0.01)
    assert out["bpp"].item() == pytest.approx(2 * 4 * 2 * 2 / (2 * 8 * 8))
    assert out["mse"].item() == pytest.approx(0.01, rel=1e-5)
    assert out["loss"].item() == pytest.approx(0.01 * 255**2 * 0.01 + out["bpp"].item(), rel=1e-5)


def test_patch_sampler_deterministic_and_in_range(images):
    a = PatchSampler(images, 64, seed=1).sample(4)
    b = PatchSampler(images, 64, seed=1).sample(4)
    c = PatchSampler(images, 64, seed=2).sample(4)
    assert a.shape == (4, 3, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.0 <= a.min() and a.max() <= 1.0
    with pytest.raises(TrainingError, match="smaller than patch_size"):
        PatchSampler(images, 1000, seed=0)


def test_interrupted_training_resumes_to_identical_weights(images, tmp_path):
    full = train(_cfg(), images, tmp_path / "full.pt", tmp_path / "full.state", tmp_path / "full.csv", progress=False)

    class Stop(Exception):
        pass

    def interrupt(step):
        if step == 6:  # state saved at step 4; steps 5-6 are lost and redone
            raise Stop

    with pytest.raises(Stop):
        train(_cfg(), images, tmp_path / "r.pt", tmp_path / "r.state", tmp_path / "r.csv", progress=False, on_step=interrupt)
    assert not (tmp_path / "r.pt").exists() and (tmp_path / "r.state").exists()
    assert torch.load(tmp_path / "r.state", weights_only=False)["step"] == 4
    resumed = train(_cfg(), images, tmp_path / "r.pt", tmp_path / "r.state", tmp_path / "r.csv", progress=False)

    a, b = read_checkpoint(full)["state_dict"], read_checkpoint(resumed)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log_full, log_resumed = pd.read_csv(tmp_path / "full.csv"), pd.read_csv(tmp_path / "r.csv")
    assert list(log_full.columns) == LOG_COLUMNS and list(log_full.step) == list(range(2, 13, 2))
    np.testing.assert_allclose(log_full.loss, log_resumed.loss, rtol=0, atol=0)


def test_state_of_other_config_is_not_resumed(images, tmp_path, capsys):
    train(_cfg(steps=4), images, tmp_path / "a.pt", tmp_path / "s.state", tmp_path / "a.csv", progress=False)
    train(_cfg(steps=4, lmbda=0.05), images, tmp_path / "b.pt", tmp_path / "s.state", tmp_path / "b.csv", progress=False)
    assert "another configuration" in capsys.readouterr().err
    assert read_checkpoint(tmp_path / "b.pt")["lmbda"] == 0.05


def test_final_checkpoint_codes_and_records_training_set(images, tmp_path):
    p = train(_cfg(steps=2), images, tmp_path / "m.pt", tmp_path / "m.state", tmp_path / "m.csv",
              train_image_hashes=["ab" * 32], meta={"rate_point": 4}, progress=False)
    model, meta = load_model(p)
    assert meta["coder_ready"] and meta["train_images_sha256"] == ["ab" * 32] and meta["rate_point"] == 4
    with torch.no_grad():
        enc = model.compress(torch.rand(1, 3, 64, 64))
        rec = model.decompress(enc["strings"], enc["shape"])["x_hat"]
    assert rec.shape == (1, 3, 64, 64)


def test_nan_loss_stops_with_clear_error(images, tmp_path):
    with pytest.raises(TrainingError, match=r"loss became nan at step 1"):
        train(_cfg(lmbda=float("nan"), steps=3), images, tmp_path / "n.pt", tmp_path / "n.state", tmp_path / "n.csv", progress=False)
    assert not (tmp_path / "n.pt").exists()


def _tiny_budget(p):
    p["models"]["hp"] = {"arch": "bmshj2018-hyperprior", "source": "train"}
    p["train"].update(budget="tiny", device="cpu", models=["hp"], qualities=[3], progressive=[])
    p["evaluate"]["progressive"] = []
    p["train"]["budgets"]["tiny"] = {
        "defaults": {"steps": 3, "batch_size": 2, "patch_size": 64, "checkpoint_every": 2},
        "models": {"hp": {"size": {"N": 16, "M": 24}}},
    }
    p["samples"]["models"] = []


def test_model_stage_cli(tmp_path, capsys, params_file):
    from benchmark.cli import main
    from benchmark.config import DatasetConfig
    from benchmark.data.dataset import fetch_dataset

    fetch_dataset(DatasetConfig(name="t", source="builtin", images=("coffee",)), tmp_path / "train", mirror=None)
    params = params_file(_tiny_budget)
    args = ["model", "--params", str(params), "--model", "hp", "--quality", "3",
            "--train-data", str(tmp_path / "train"), "--out", str(tmp_path / "m" / "q3.pt"), "--no-progress"]
    assert main(args) == 0
    meta = read_checkpoint(tmp_path / "m" / "q3.pt")
    assert meta["lmbda"] == 0.0067 and meta["step"] == 3 and len(meta["train_images_sha256"]) == 1
    assert (tmp_path / "m" / "q3.log.csv").is_file()
    assert main(args[:5] + ["--quality", "9"] + args[7:]) == 2
    assert "no λ for quality 9" in capsys.readouterr().err
    assert not math.isnan(meta["train_seconds"])


def test_model_stage_zoo_offline_names_the_file(tmp_path, monkeypatch, capsys, params_file):
    """source: zoo with no cache, an empty mirror and no network: one clear error, no training."""
    from benchmark.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("benchmark.data.download.urllib.request.urlopen", _no_network)
    (tmp_path / "mirror").mkdir()
    params = params_file(lambda p: p["models"].update(hp={"arch": "bmshj2018-hyperprior", "source": "zoo"}))
    rc = main(["model", "--params", str(params), "--model", "hp", "--quality", "3",
               "--out", str(tmp_path / "m" / "q3.pt"), "--mirror", str(tmp_path / "mirror")])
    err = capsys.readouterr().err
    assert rc == 2 and "bmshj2018-hyperprior-3-" in err and str(tmp_path / "torch" / "hub" / "checkpoints") in err
    assert "does not train a replacement" in err and not (tmp_path / "m" / "q3.pt").exists()


def _no_network(*args, **kwargs):
    import urllib.error

    raise urllib.error.URLError("no network in this test")


def test_budget_entry_overrides_one_model():
    from benchmark.config import ConfigError, build_config, read_params

    params = read_params(ROOT / "params.yaml")
    params["train"]["budget"] = "cpu"
    params["train"]["budgets"]["cpu"]["defaults"]["steps"] = 2000
    params["train"]["budgets"]["cpu"]["models"]["bmshj2018-hyperprior"]["steps"] = 8000
    cfg = build_config(params)
    hp, mm = TrainConfig.from_params(cfg, "bmshj2018-hyperprior", 1), TrainConfig.from_params(cfg, "mbt2018-mean", 1)
    assert hp.steps == 8000 and mm.steps == 2000 and hp.settings.lr == mm.settings.lr == 1e-3
    assert hp.lmbda == 0.0018 and hp.size == {"N": 64, "M": 96} and hp.arch == "bmshj2018-hyperprior"
    params["train"]["budget"] = "paper"
    paper = TrainConfig.from_params(build_config(params), "mbt2018-mean", 6)
    assert paper.size == {"N": 192, "M": 320} and paper.steps == 1_000_000
    with pytest.raises(ConfigError, match=r"train\.lambdas has no λ for quality 9"):
        TrainConfig.from_params(cfg, "dvae", 9)
    with pytest.raises(ConfigError, match="train settings: unknown key 'stepz'"):
        TrainConfig.make("dvae", {"N": 8, "M": 8}, 0.01, stepz=3)
