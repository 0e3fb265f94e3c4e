"""The Ray executor of the evaluate stages (``evaluate.executor: ray``, ``benchmark.executors``)
on a local Ray instance of 2 CPUs: the stage's files equal the local executor's but for the
timing and device columns; a worker killed mid-task is replaced and its image's rows appear
once; a task that raises gives the local executor's error and no file."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import benchmark.codecs.classical  # noqa: F401  (registers the classical codecs)
from benchmark.cli import main as cli_main
from benchmark.codecs.classical import JPEG
from benchmark.config import ConfigError, DatasetConfig, RayConfig, load_config
from benchmark.data.dataset import fetch_dataset
from benchmark.data.images import read_manifest
from benchmark.evaluation import evaluate
from benchmark.executors import ExecutorError, RayCluster, code_on_ray

ROOT = Path(__file__).resolve().parents[1]
TIMING = ["encode_s", "decode_s"]


def test_the_default_install_needs_no_ray(tmp_path):
    """The package imports without Ray; asking for the executor names the extra."""
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if not installed
        "import benchmark.evaluation, benchmark.stages.train_ray\n"
        "from benchmark.config import RayConfig\n"
        "from benchmark.executors import ExecutorError, RayCluster\n"
        "try:\n    RayCluster(RayConfig()).__enter__()\nexcept ExecutorError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install '.[ray]'" in out.stdout


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance (2 CPUs, no dashboard) for the module; shut down afterwards."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="warning")
    # This module's codecs travel by value: the workers do not have the tests on their path.
    ray.cloudpickle.register_pickle_by_value(__import__(__name__))
    with RayCluster(RayConfig()) as c:
        yield c
    ray.cloudpickle.unregister_pickle_by_value(__import__(__name__))
    ray.shutdown()


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "three"
    fetch_dataset(DatasetConfig(name="three", source="builtin", images=("chelsea", "coffee", "rocket")), out, mirror=None)
    return out


def _params(params_file):
    def mutate(p):
        p["metrics"].update(perceptual=["haarpsi"], download=False)  # one weight-free metric: the perception path
        p["codecs"]["jpeg"]["rate_points"] = [30, 80]

    return params_file(mutate)


def _stage(params, data, out, executor):
    argv = ["evaluate", "--params", str(params), "--dataset", "three", "--codec", "jpeg", "--data", str(data),
            "--out", str(out / "jpeg.csv"), "--set-out", str(out / "set.csv"), "--status-out", str(out / "status.json"),
            "--workers", "1", "--executor", executor]
    return cli_main(argv)


def test_stage_files_equal_the_local_executors(cluster, three, params_file, tmp_path):
    params = _params(params_file)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert _stage(params, three, local, "local") == 0
    assert _stage(params, three, on_ray, "ray") == 0
    a = pd.read_csv(local / "jpeg.csv", dtype=str, keep_default_na=False)
    b = pd.read_csv(on_ray / "jpeg.csv", dtype=str, keep_default_na=False)
    assert len(b) == 3 * 2 and not b.duplicated(["image", "rate_point"]).any()
    same = [c for c in a.columns if c not in TIMING + ["device"]]
    assert a[same].equals(b[same])  # every other column, as written: bytes, bpp, metrics, checks, provenance
    assert a.haarpsi.ne("").all()  # the perceptual metric was scored on the Ray rows too
    assert b.device.str.contains(" on ray node ").all() and not a.device.str.contains("ray").any()
    assert (local / "set.csv").read_bytes() == (on_ray / "set.csv").read_bytes()
    statuses = [json.loads((d / "status.json").read_text()) for d in (local, on_ray)]
    a_status, b_status = ({k: v for k, v in st.items() if k != "seconds"} for st in statuses)
    assert a_status == b_status  # all but the metrics' seconds


class KillOnceJPEG(JPEG):
    """JPEG whose worker process kills itself (SIGKILL) the first time it codes ``victim``."""

    def __init__(self, marker: str, victim_height: int, **options):
        super().__init__(**options)
        self.marker, self.victim_height = marker, victim_height

    def encode_verbose(self, image, rate_point):
        if image.shape[0] == self.victim_height and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().encode_verbose(image, rate_point)


def test_a_killed_worker_is_replaced_and_its_rows_appear_once(cluster, three, tmp_path):
    manifest = read_manifest(three)
    victim = next(r for r in manifest if r.name == "rocket")
    marker = tmp_path / "killed"
    codec = KillOnceJPEG(str(marker), victim_height=victim.height)
    df = evaluate("jpeg", codec, [30, 80], manifest, three, "three", "h", progress=False, cluster=cluster)
    assert marker.is_file()  # the worker coding rocket did die
    with pytest.raises(ProcessLookupError):  # ... and is gone: the rows came from Ray's rerun of the task
        os.kill(int(marker.read_text()), 0)
    assert len(df) == 3 * 2 and not df.duplicated(["image", "rate_point"]).any()
    plain = evaluate("jpeg", JPEG(), [30, 80], manifest, three, "three", "h", workers=1, progress=False)
    cols = ["image", "rate_point", "bytes", "psnr", "ms_ssim"]
    pd.testing.assert_frame_equal(df[cols], plain[cols])


def test_a_raising_task_gives_the_local_error_and_no_file(cluster, three, params_file, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in three.rglob("*"):
        if f.is_file():
            (broken / f.relative_to(three)).parent.mkdir(parents=True, exist_ok=True)
            (broken / f.relative_to(three)).write_bytes(f.read_bytes())
    manifest = (broken / "manifest.csv").read_text()
    sha = read_manifest(broken)[1].pixel_sha256
    (broken / "manifest.csv").write_text(manifest.replace(sha, "0" * 64))  # coffee's pixels no longer match
    params = _params(params_file)
    errors = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor
        assert _stage(params, broken, out, executor) == 2
        assert not (out / "jpeg.csv").exists()  # no partial CSV
        errors[executor] = re.findall(r"error \(evaluate\): [^\n]*", capsys.readouterr().err)  # after the bar's \r
    assert errors["ray"] == errors["local"] and len(errors["ray"]) == 1
    assert "coffee" in errors["ray"][0] and "pixels differ from the manifest" in errors["ray"][0]


class CudaJPEG(JPEG):
    @property
    def device(self):
        return "cuda"


def test_a_gpu_codec_needs_a_gpu_share(cluster, three):
    with pytest.raises(ExecutorError, match="ray.evaluate.gpus"):
        next(code_on_ray(cluster, CudaJPEG(), [], None, ["cuda"]))


def test_ray_settings_are_checked(params_file):
    cfg = load_config(params_file(lambda p: p["ray"].update(address="auto", evaluate={"cpus": 2, "gpus": 0.25})))
    assert cfg.ray.address == "auto" and cfg.ray.evaluate.gpus == 0.25 and cfg.evaluate.executor == "local"
    with pytest.raises(ConfigError, match="ray"):
        load_config(params_file(lambda p: p["ray"].update(adress="auto")))
    with pytest.raises(ConfigError, match="executor"):
        load_config(params_file(lambda p: p["evaluate"].update(executor="dask")))
