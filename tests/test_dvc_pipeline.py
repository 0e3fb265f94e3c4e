"""The DVC pipeline itself: a rerun with nothing changed does no work; changing one codec's rate
points reruns only that codec's evaluate stage and the report; changing the learned codec's code
reruns the learned evaluations and not the classical ones; changing one model's training steps
retrains that model alone."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd, cwd, env):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def _ran(log):
    return sorted(re.findall(r"Running stage '([^']+)'", log))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    dvc = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
    if dvc is None:
        pytest.skip("dvc is not installed")
    work = tmp_path_factory.mktemp("proj")
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for f in files:
        if f.startswith(("results/", "tests/", "models/")) or f == "dvc.lock" or not (ROOT / f).exists():
            continue
        (work / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, work / f)
    yaml = YAML()
    p = yaml.load((work / "params.yaml").read_text())
    p["data"]["eval"] = ["builtin"]
    p["datasets"]["builtin"]["images"] = ["chelsea"]
    p["evaluate"]["codecs"] = ["jpeg", "webp"]
    p["codecs"]["jpeg"]["rate_points"] = [20, 50, 80]
    p["codecs"]["webp"]["rate_points"] = [20, 50, 80]
    # One learned codec through the real model stage, with a tiny budget.
    p["datasets"]["builtin-train"]["images"] = ["ihc"]
    # And the hierarchical VAE, for its samples stage.
    p["train"]["models"] = ["bmshj2018-hyperprior", "qres-vae"]
    p["train"]["qualities"] = [2, 6]
    quick = p["train"]["budgets"]["quick"]
    quick["models"]["bmshj2018-hyperprior"]["size"] = {"N": 16, "M": 24}
    quick["models"]["qres-vae"]["size"] = {"ch": 4}
    quick["defaults"].update(steps=4, batch_size=2, patch_size=64, checkpoint_every=2)
    p["evaluate"]["learned"] = ["bmshj2018-hyperprior", "qres-vae"]
    # And SIC, one checkpoint for its levels (model-progressive, evaluate-progressive), tiny.
    quick["models"]["sic"].update(size={"dim": 32, "heads": 4}, steps=2, batch_size=2, patch_size=64)
    quick["models"]["sic"]["progressive"].update(warmup_steps=1, balance_steps=1)
    p["codecs"]["sic"]["rate_points"] = [1, 8, 16]
    p["samples"].update(models=["qres-vae"], quality=2, n=4)
    p["metrics"]["download"] = False
    with open(work / "params.yaml", "w") as f:
        yaml.dump(p, f)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    git = ["git", "-c", "user.email=t@localhost", "-c", "user.name=t"]
    _run(["git", "init", "-q"], work, env)
    _run(git + ["add", "-A"], work, env)
    _run(git + ["commit", "-qm", "t"], work, env)
    return work, dvc, env


def test_repro_then_noop_then_one_codec(project):
    work, dvc, env = project
    first = _run([dvc, "repro"], work, env)
    assert _ran(first) == [
        "evaluate-learned@builtin-bmshj2018-hyperprior",
        "evaluate-learned@builtin-qres-vae",
        "evaluate-progressive@builtin-sic",
        "evaluate@builtin-jpeg",
        "evaluate@builtin-webp",
        "fetch-train",
        "fetch@builtin",
        "model-progressive@sic-quick",
        "model@bmshj2018-hyperprior-2-quick",
        "model@bmshj2018-hyperprior-6-quick",
        "model@qres-vae-2-quick",
        "model@qres-vae-6-quick",
        "report@builtin",
        "samples@qres-vae-quick",
    ]
    for f in ("per_image/jpeg.csv", "per_image/webp.csv", "per_image/bmshj2018-hyperprior.csv", "bd_rate.md", "metrics.json", "figures/rd-psnr.png"):
        assert (work / "results" / "builtin" / f).is_file(), f
    import pandas as pd

    for name in ("bmshj2018-hyperprior", "qres-vae"):
        learned = pd.read_csv(work / f"results/builtin/per_image/{name}.csv")
        assert sorted(learned.rate_point.unique()) == [2, 6] and (learned.decode_check == "ok").all()
    sic = pd.read_csv(work / "results/builtin/per_image/sic.csv")
    assert sorted(sic.rate_point.unique()) == [1, 8, 16] and (sic.decode_check == "ok").all()
    assert sic.sort_values("rate_point").bpp.is_monotonic_increasing  # one image: more slices, more bytes
    assert (work / "results/samples/quick/qres-vae.png").is_file() and (work / "results/samples/quick/qres-vae.pdf").is_file()
    assert (work / "models/quick/bmshj2018-hyperprior/q2.log.csv").is_file()

    again = _run([dvc, "repro"], work, env)
    assert _ran(again) == [] and "Data and pipelines are up to date" in again

    yaml = YAML()
    p = yaml.load((work / "params.yaml").read_text())
    p["codecs"]["webp"]["rate_points"] = [20, 50, 80, 90]
    with open(work / "params.yaml", "w") as f:
        yaml.dump(p, f)
    third = _run([dvc, "repro"], work, env)
    assert _ran(third) == ["evaluate@builtin-webp", "report@builtin"]

    assert sorted(pd.read_csv(work / "results/builtin/per_image/webp.csv").rate_point.unique()) == [20, 50, 80, 90]

    # The learned codec's code: the learned evaluations rerun, the classical ones do not.
    with open(work / "benchmark" / "codecs" / "learned.py", "a") as f:
        f.write("\n# an edit\n")
    fourth = _run([dvc, "repro"], work, env)
    assert _ran(fourth) == ["evaluate-learned@builtin-bmshj2018-hyperprior", "evaluate-learned@builtin-qres-vae",
                            "evaluate-progressive@builtin-sic", "report@builtin"]  # the sic codec subclasses learned

    # One model's training steps: that model is retrained (and its consumers rerun), no other.
    p = yaml.load((work / "params.yaml").read_text())
    p["train"]["budgets"]["quick"]["models"]["qres-vae"]["steps"] = 6
    with open(work / "params.yaml", "w") as f:
        yaml.dump(p, f)
    fifth = _run([dvc, "repro"], work, env)
    assert _ran(fifth) == [
        "evaluate-learned@builtin-qres-vae", "model@qres-vae-2-quick", "model@qres-vae-6-quick", "report@builtin",
        "samples@qres-vae-quick",
    ]
    assert torch_checkpoint_steps(work / "models/quick/qres-vae/q2.pt") == 6
    assert torch_checkpoint_steps(work / "models/quick/bmshj2018-hyperprior/q2.pt") == 4


def torch_checkpoint_steps(path):
    from benchmark.models.checkpoint import read_checkpoint

    return read_checkpoint(path)["step"]
