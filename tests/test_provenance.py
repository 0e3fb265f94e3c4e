"""Provenance columns: a clean git revision unless the sources of the results changed, and the
device that coded and scored each row."""

import subprocess

import pytest

from benchmark import provenance as P


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.email=t@localhost", "-c", "user.name=t", *args], cwd=repo, check=True, capture_output=True)


def test_git_revision_is_dirty_only_when_sources_change(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text("a: 1\n")
    (repo / "dvc.lock").write_text("x\n")
    (repo / "results.csv").write_text("r\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "t")
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    params = (str(repo / "params.yaml"),)
    P.git_revision.cache_clear()
    assert P.git_revision(params, str(repo)) == rev
    (repo / "dvc.lock").write_text("y\n")  # what the pipeline itself rewrites
    (repo / "results.csv").write_text("s\n")
    P.git_revision.cache_clear()
    assert P.git_revision(params, str(repo)) == rev
    (repo / "params.yaml").write_text("a: 2\n")  # a source of the results
    P.git_revision.cache_clear()
    assert P.git_revision(params, str(repo)) == rev + "+dirty"
    P.git_revision.cache_clear()
    assert P.git_revision((), str(tmp_path)) == "unknown"  # not a work tree
    P.git_revision.cache_clear()


def test_device_column_names_the_devices(monkeypatch):
    cpu = P.device_description("cpu")
    assert cpu.startswith("cpu: ") and P.devices_column(["cpu", "cpu"]) == cpu and P.devices_column([]) == cpu
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(P, "_nvidia_driver", lambda: "570.1")
    P.device_description.cache_clear()
    try:
        gpu = P.device_description("cuda")
        assert gpu.startswith("cuda:0: NVIDIA H200 (driver 570.1, CUDA ")
        assert P.devices_column(["cuda", "cpu"]) == f"coding: {gpu}; metrics: {cpu}"
        assert P.devices_column(["cuda:0", "cuda"]) == gpu
    finally:
        P.device_description.cache_clear()
