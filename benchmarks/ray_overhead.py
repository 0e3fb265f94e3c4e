"""The Ray executor against the local pool: the evaluate stage over one data set, once with
``--executor local`` and once with ``--executor ray`` (a local Ray instance of as many CPUs as
local workers), same images, codec, rate points and worker count; wall time of each whole stage
process, the ratio Ray/local, and the overhead per task (one task = one image):
(wall Ray - wall local) / images. Both without perceptual metrics. The rows are compared too:
every column but the timing and device columns must be equal.

    python benchmarks/ray_overhead.py --data data/kodak                 # JPEG, 1 worker each side
    python benchmarks/ray_overhead.py --data /tmp/x/kodak --workers 2 --codec webp

Ray's start-up (a new local instance, a few seconds) is inside the Ray wall time, as a stage
pays it; it is also printed alone (``ray.init`` to first task done).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _params import write_params  # noqa: E402  (benchmarks/_params.py, beside this script)


def _stage(params: Path, data: Path, codec: str, out: Path, workers: int, executor: str) -> float:
    cmd = [sys.executable, "-m", "benchmark", "evaluate", "--params", str(params), "--dataset", data.name, "--codec", codec,
           "--data", str(data), "--out", str(out), "--workers", str(workers), "--executor", executor]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - t0


def _ray_startup(cpus: int) -> float:
    code = (
        "import time, ray; t = time.perf_counter(); ray.init(address='local', num_cpus=%d, include_dashboard=False, "
        "logging_level='warning'); ray.get(ray.remote(lambda: 0).remote()); print(time.perf_counter() - t)" % cpus
    )
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "kodak", help="a fetched data set (manifest.csv)")
    ap.add_argument("--codec", default="jpeg", help="a codec entry of params.yaml (default: jpeg)")
    ap.add_argument("--workers", type=int, default=1, help="local worker processes = CPUs of the Ray instance (default 1)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def change(p):
            p["ray"].update(address="local", local_cpus=args.workers, evaluate={"cpus": 1, "gpus": 0})

        params = write_params(tmp, change)
        local = _stage(params, args.data, args.codec, tmp / "local.csv", args.workers, "local")
        on_ray = _stage(params, args.data, args.codec, tmp / "ray.csv", args.workers, "ray")
        a, b = pd.read_csv(tmp / "local.csv", dtype=str), pd.read_csv(tmp / "ray.csv", dtype=str)
        same = [c for c in a.columns if c not in ("encode_s", "decode_s", "device")]
        equal = a[same].equals(b[same])
    n = len(a.image.unique())
    startup = _ray_startup(args.workers)
    print(f"{args.codec} over {n} images x {len(a) // n} rate points, {args.workers} worker(s) / Ray CPU(s)")
    print(f"local pool: {local:.1f} s wall; ray: {on_ray:.1f} s wall; ray/local = {on_ray / local:.2f}x")
    print(f"overhead per task (image): {(on_ray - local) / n:.2f} s; Ray start-up alone {startup:.1f} s "
          f"(per task without it: {(on_ray - local - startup) / n:.2f} s)")
    print(f"rows equal but timing/device columns: {equal}")


if __name__ == "__main__":
    main()
