"""``python -m benchmark train-ray``: two model stages of one budget as parallel Ray tasks (a local
Ray instance of 2 CPUs) give the checkpoints of a sequential ``dvc repro`` at the same thread
count, also when the worker of one of them is killed mid-training (Ray reruns the stage, which
resumes from its state); ``--commit`` leaves DVC with nothing to do."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ruamel.yaml import YAML

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["model@bmshj2018-hyperprior-2-quick", "model@bmshj2018-hyperprior-6-quick"]


def _run(cmd, cwd, env, timeout=600):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def _project(dest: Path, env) -> Path:
    """A scratch copy of the project training one tiny model at two rate points, its data fetched."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for f in files:
        if f.startswith(("results/", "tests/", "models/", "runs/", "benchmarks/")) or f == "dvc.lock" or not (ROOT / f).exists():
            continue
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    yaml = YAML()
    p = yaml.load((dest / "params.yaml").read_text())
    p["datasets"]["builtin-train"]["images"] = ["ihc"]
    p["train"].update(models=["bmshj2018-hyperprior"], qualities=[2, 6], progressive=[])
    p["evaluate"].update(learned=[], variants=[], progressive=[])
    p["samples"]["models"] = []
    quick = p["train"]["budgets"]["quick"]
    quick["models"]["bmshj2018-hyperprior"]["size"] = {"N": 16, "M": 24}
    quick["defaults"].update(steps=100, batch_size=2, patch_size=64, checkpoint_every=10)
    p["ray"].update(address="local", local_cpus=2)
    with open(dest / "params.yaml", "w") as f:
        yaml.dump(p, f)
    git = ["git", "-c", "user.email=t@localhost", "-c", "user.name=t"]
    _run(["git", "init", "-q"], dest, env)
    _run(git + ["add", "-A"], dest, env)
    _run(git + ["commit", "-qm", "t"], dest, env)
    _run([sys.executable, "-m", "dvc", "repro", "fetch-train"], dest, env)
    return dest


def _weights(path: Path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def _stage_pid(quality: int):
    """The pid of the running model stage of ``quality`` and of its parent (the Ray worker), or None."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"benchmark" in cmd and b"model" in cmd and str(quality).encode() in cmd and b"--quality" in cmd:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            assert b"ray" in Path(f"/proc/{parent}/cmdline").read_bytes(), "the stage is not the Ray worker's child"
            return int(proc.name), parent
    return None


def test_parallel_stages_give_the_sequential_checkpoints_and_resume(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    env.pop("RAY_ADDRESS", None)
    seq = _project(tmp_path / "seq", env)
    _run([sys.executable, "-m", "dvc", "repro", "--single-item", *STAGES], seq, env)

    par = _project(tmp_path / "par", env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark", "train-ray", "--commit", "--no-progress"], cwd=par, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    state = par / "models/quick/bmshj2018-hyperprior/q2.state"
    killed = None
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and killed is None:
        pids = _stage_pid(2)
        if pids and state.is_file():
            os.kill(pids[1], signal.SIGKILL)  # the Ray worker running the stage; the stage dies with it
            killed = pids
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert killed is not None, f"the stage finished before it could be killed:\n{out}"
    for pid in killed:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "committed 2 stage(s)" in out
    for q in (2, 6):
        a, b = (_weights(d / f"models/quick/bmshj2018-hyperprior/q{q}.pt") for d in (seq, par))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"q{q}: checkpoints differ"
    status = _run([sys.executable, "-m", "dvc", "status", *STAGES], par, env)
    assert "changed" not in status and "up to date" in status.lower()
