"""One large photograph through the evaluate stage: peak memory and where the time goes.

    python benchmarks/large_image.py                        # a 6028x3391 (20.4 MP) mosaic of the mirror's photos, webp q75
    python benchmarks/large_image.py --image photo.png --codec jpeg --rate-points 50 75
    python benchmarks/large_image.py --perceptual haarpsi   # metrics.perceptual (default: the params' list)

Prints, for the evaluate stage run as its own process on that one image (``fetch`` first, into a
temporary folder data set):

- the wall time of the stage and its split: coding (the rows' ``encode_s + decode_s``), the
  perceptual metrics (the status record's seconds) and the rest (PSNR, MS-SSIM, reading the
  image, start-up), and the distortion metrics of one rate point timed alone in this process;
- the peak resident set size of the largest process of the stage's tree (``ru_maxrss`` of the
  waited-for children: the stage and its workers), in GB and in GB per megapixel.

Without ``--image`` the photograph is made from the mirror (``$BENCHMARK_MIRROR``): a 4 x 4
mosaic of the ``wikipedia-photos`` set (photos 001-016, each resized to 1507 x 848 with Lanczos,
close to their own size, so the detail is a photograph's), cropped to 6028 x 3391, the size of the
20 MP photograph of issue 15. Run it on an otherwise idle machine, one at a time (it needs
several GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = (6028, 3391)  # width, height


def mosaic(mirror: Path, out: Path) -> Path:
    """Write the 6028 x 3391 mosaic of wikipedia photos 001-016 (tiles of 1507 x 848) to ``out``
    (PNG); returns ``out``. It is ``large_folder.py``'s photograph 0 at this size."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from large_folder import mosaic as folder_mosaic

    return folder_mosaic(mirror, 0, SIZE, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=None, help="the photograph (default: the mirror mosaic)")
    ap.add_argument("--codec", default="webp")
    ap.add_argument("--rate-points", type=float, nargs="+", default=[75.0])
    ap.add_argument("--perceptual", nargs="*", default=None, help="metrics.perceptual for the run (default: the params' list)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    from _params import ROOT as root  # noqa: F401  (benchmarks/_params.py, beside this script)
    from ruamel.yaml import YAML

    from benchmark.config import read_params

    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="large-image-") as tmp_s:
        tmp = Path(tmp_s)
        src = tmp / "src"
        src.mkdir()
        if args.image is None:
            mirror = Path(os.environ.get("BENCHMARK_MIRROR", ""))
            mosaic(mirror, src / "mosaic.png")
        else:
            os.symlink(args.image.resolve(), src / args.image.name)
        p = read_params(ROOT / "params.yaml")
        p["datasets"]["large"] = {"source": "folder", "path": str(src)}
        p["data"]["eval"] = ["large"]
        if args.perceptual is not None:
            p["metrics"]["perceptual"] = args.perceptual
        p["metrics"]["download"] = False
        p["codecs"][args.codec]["rate_points"] = [int(r) if r == int(r) else r for r in args.rate_points]
        params = tmp / "params.yaml"
        with open(params, "w") as f:
            YAML(typ="safe", pure=True).dump(p, f)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        fetch = [py, "-m", "benchmark", "fetch", "--params", str(params), "--dataset", "large", "--out", str(tmp / "data")]
        subprocess.run(fetch, check=True, cwd=ROOT, env=env, capture_output=True)
        out = tmp / "rows.csv"
        status = tmp / "status.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        run = subprocess.run(
            [py, "-m", "benchmark", "evaluate", "--params", str(params), "--dataset", "large", "--codec", args.codec,
             "--data", str(tmp / "data"), "--out", str(out), "--status-out", str(status), "--workers", str(args.workers)],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )
        wall = time.perf_counter() - t0
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if run.returncode:
            sys.exit(f"evaluate failed ({run.returncode}):\n{run.stdout}\n{run.stderr[-3000:]}")
        import pandas as pd

        rows = pd.read_csv(out)
        h, w = int(rows.height.iloc[0]), int(rows.width.iloc[0])
        mp = h * w / 1e6
        coding = float((rows.encode_s + rows.decode_s).sum())
        perceptual = sum(v for k, v in json.load(open(status))["seconds"].items() if k != "setup")
        print(f"image: {w}x{h} ({mp:.1f} MP); {args.codec} at {args.rate_points}; {args.workers} worker(s)")
        print(f"evaluate wall {wall:.1f} s: coding {coding:.1f} s ({100 * coding / wall:.0f} %), perceptual metrics "
              f"{perceptual:.1f} s ({100 * perceptual / wall:.0f} %), rest (PSNR, MS-SSIM, reading, start-up) "
              f"{wall - coding - perceptual:.1f} s")
        if peak_kb > before:
            print(f"peak RSS of the largest process: {peak_kb / 1e6:.2f} GB ({peak_kb / 1e6 / mp:.3f} GB/MP)")
        else:
            print(f"peak RSS: not above the fetch's {before / 1e6:.2f} GB (ru_maxrss keeps the largest child)")
        for c in ("psnr", "ms_ssim", "haarpsi"):
            if c in rows and rows[c].notna().any():
                print(f"  {c}: {', '.join(f'{v:.10g}' for v in rows[c])}")

        # each step of one rate point alone, in this process
        from benchmark.codecs import classical  # noqa: F401
        from benchmark.codecs.base import build_codec
        from benchmark.config import load_config
        from benchmark.data.images import load_rgb8
        from benchmark.metrics import METRICS

        cfg = load_config(params)
        codec = build_codec(cfg.codec(args.codec).codec, cfg.codec(args.codec).options)
        steps = {}
        t0 = time.perf_counter()
        img = load_rgb8(next((tmp / "data" / "images").iterdir()))
        steps["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = codec.encode(img, args.rate_points[0])
        steps["encode"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        rec = codec.decode(data)
        steps["decode"] = time.perf_counter() - t0
        a = torch.from_numpy(img).permute(2, 0, 1)[None]
        b = torch.from_numpy(rec).permute(2, 0, 1)[None]
        for name in ("mse", "ms_ssim", "haarpsi"):
            t0 = time.perf_counter()
            METRICS.get(name).fn(a, b)
            steps[name] = time.perf_counter() - t0
        print("one rate point, step by step in one process: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))

if __name__ == "__main__":
    main()
