"""Large photographs through the evaluate stages: total time, peak memory, failures.

    python benchmarks/large_folder.py --count 12 --workers 2             # a dozen 20 MP photographs, six classical codecs
    python benchmarks/large_folder.py --count 1 --size 6000x4000 --workers 1 \\
        --learned bmshj2018-hyperprior --budget cpu --qualities 1 2 3 4   # one 24 MP photograph, with the Kodak run's model
    python benchmarks/large_folder.py --images DIR                        # your own photographs

Runs the pipeline's own commands, as ``dvc repro`` would: ``fetch`` of a folder data set (the
folder source, so every photograph is checked and converted as in a real run), then ``evaluate``
for each classical codec at its default rate points (params.yaml) and ``evaluate-learned`` for
each ``--learned`` model (checkpoints ``<--models>/<budget>/<model>/q<quality>.pt``, as dvc.yaml
names them), with ``evaluate.image_memory_gb`` (default 6) as every worker's memory limit and the
default metrics (``metrics.perceptual``: those with weights present, HaarPSI here). Prints per
codec the wall time, the share spent coding (the rows' ``encode_s + decode_s``), the peak RSS of
the largest process of the stage's tree (``ru_maxrss`` of the waited-for children, read in a
fresh launcher process per codec), the rows and any failed rows; then the total wall time.

Without ``--images`` the photographs are made from the mirror (``$BENCHMARK_MIRROR``): photograph
``k`` is a 4 x 4 mosaic of the ``wikipedia-photos`` set, photos ``16 k + 1`` ... ``16 k + 16``
(modulo 49, so that each mosaic differs), each resized with Lanczos to a quarter of ``--size`` a
side (close to their own size: the detail is a photograph's). Default size 5472 x 3648 (20.0 MP,
a 20 MP camera's 3:2 frame).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIKI = "raw.githubusercontent.com/Zelex/images/0b8a89db599a384124fb991b85d40cfd63c73d58/wikipedia-photos"
N_WIKI = 49
CLASSICAL = ["jpeg", "webp", "avif", "jpeg2000", "jpegxl", "hevc"]


def mosaic(mirror: Path, k: int, size: tuple, out: Path) -> Path:
    """Write photograph ``k`` (``size`` = (width, height)), a 4 x 4 mosaic, to ``out`` (PNG)."""
    from PIL import Image

    w, h = size
    cw, ch = -(-w // 4), -(-h // 4)
    canvas = Image.new("RGB", (4 * cw, 4 * ch))
    for i in range(16):
        src = mirror / WIKI / f"{(16 * k + i) % N_WIKI + 1:03d}.png"
        if not src.is_file():
            sys.exit(f"{src}: not found (set BENCHMARK_MIRROR to the mirror, or pass --images)")
        with Image.open(src) as im:
            canvas.paste(im.convert("RGB").resize((cw, ch), Image.LANCZOS), ((i % 4) * cw, (i // 4) * ch))
    canvas.crop((0, 0, w, h)).save(out)
    return out


# Runs the command and prints the largest ru_maxrss among the processes it waited for (the stage
# and its workers), so that each stage's peak is its own (ru_maxrss of children only grows).
_LAUNCH = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
           "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def run_child(cmd, env) -> tuple:
    """Run ``cmd``; (wall seconds, peak RSS of its process tree in bytes, CompletedProcess)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = [int(line.split()[1]) * 1024 for line in proc.stderr.splitlines() if line.startswith("peak_rss_kb ")]
    return wall, (peak[-1] if peak else None), proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=None, help="a folder of photographs (default: mirror mosaics)")
    ap.add_argument("--count", type=int, default=12, help="mosaics to make (without --images)")
    ap.add_argument("--size", default="5472x3648", help="mosaic size WxH (without --images)")
    ap.add_argument("--codecs", nargs="*", default=CLASSICAL, help="classical codecs, default rate points")
    ap.add_argument("--learned", nargs="*", default=[], help="learned models (checkpoints of --budget)")
    ap.add_argument("--budget", default="cpu")
    ap.add_argument("--models", type=Path, default=ROOT / "models", help="the models folder (dvc.yaml's models/)")
    ap.add_argument("--qualities", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-gb", type=float, default=6.0, help="evaluate.image_memory_gb")
    ap.add_argument("--keep", type=Path, default=None, help="copy the rows here (a folder)")
    args = ap.parse_args()

    import pandas as pd
    from ruamel.yaml import YAML

    from benchmark.config import read_params

    py = sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="large-folder-") as tmp_s:
        tmp = Path(tmp_s)
        if args.images is None:
            src = tmp / "src"
            src.mkdir()
            size = tuple(int(v) for v in args.size.lower().split("x"))
            mirror = Path(os.environ.get("BENCHMARK_MIRROR", ""))
            for k in range(args.count):
                mosaic(mirror, k, size, src / f"photo{k + 1:02d}.png")
        else:
            src = args.images.resolve()
        p = read_params(ROOT / "params.yaml")
        p["datasets"]["large"] = {"source": "folder", "path": str(src)}
        p["data"]["eval"] = ["large"]
        p["metrics"]["download"] = False
        p["evaluate"]["image_memory_gb"] = args.memory_gb
        p["train"]["budget"] = args.budget
        p["train"]["qualities"] = args.qualities
        params = tmp / "params.yaml"
        with open(params, "w") as f:
            YAML(typ="safe", pure=True).dump(p, f)
        data = tmp / "data"
        wall, _, proc = run_child([py, "-m", "benchmark", "fetch", "--params", str(params), "--dataset", "large",
                                   "--out", str(data)], env)
        if proc.returncode:
            sys.exit(f"fetch failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
        import numpy as np
        from PIL import Image

        sizes = [Image.open(f).size for f in sorted((data / "images").iterdir())]
        mp = np.array([w * h / 1e6 for w, h in sizes])
        print(f"{len(sizes)} photographs, {mp.min():.1f}-{mp.max():.1f} MP ({sizes[0][0]}x{sizes[0][1]} first); "
              f"fetch {wall:.0f} s; {args.workers} worker(s), image_memory_gb {args.memory_gb:g}", flush=True)
        total, rows_all = 0.0, []
        for codec in list(args.codecs) + list(args.learned):
            out, status = tmp / f"{codec}.csv", tmp / f"{codec}.status.json"
            common = ["--params", str(params), "--dataset", "large", "--codec", codec, "--data", str(data),
                      "--out", str(out), "--status-out", str(status), "--workers", str(args.workers)]
            if codec in args.learned:
                ckpt = str(args.models.resolve() / args.budget / codec / "q{rate_point}.pt")
                cmd = [py, "-m", "benchmark", "evaluate-learned", *common, "--checkpoints", ckpt]
            else:
                cmd = [py, "-m", "benchmark", "evaluate", *common]
            wall, peak, proc = run_child(cmd, env)
            total += wall
            if proc.returncode:
                print(f"{codec}: evaluate failed ({proc.returncode}) after {wall:.0f} s:\n{proc.stderr[-2000:]}", flush=True)
                continue
            rows = pd.read_csv(out)
            rows_all.append(rows)
            coding = float((rows.encode_s + rows.decode_s).sum())
            failed = int((rows.decode_check == "failed").sum())
            record = json.load(open(status))
            perceptual = sum(v for k, v in record.get("seconds", {}).items() if k != "setup")
            for reason in sorted({f["reason"] for f in record.get("failures", [])}):
                print(f"  failed: {reason[:300]}")
            peak_s = f"{peak / 1e9:.2f} GB ({peak / 1e9 / mp.max():.3f} GB/MP)" if peak else "n/a"
            print(f"{codec}: {len(rows)} rows ({rows.rate_point.nunique()} rate points), {failed} failed, wall {wall:.0f} s, "
                  f"coding {coding:.0f} s CPU ({100 * coding / (wall * args.workers):.0f} % of {args.workers} x wall), "
                  f"perceptual {perceptual:.0f} s, peak RSS {peak_s}, bpp {rows.bpp.min():.3f}-{rows.bpp.max():.3f}, "
                  f"PSNR {rows.psnr.min():.2f}-{rows.psnr.max():.2f} dB", flush=True)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                rows.to_csv(args.keep / f"{codec}.csv", index=False)
        n = sum(len(r) for r in rows_all)
        print(f"total: {total:.0f} s wall ({total / 60:.1f} min) for {n} rows of {len(sizes)} photographs")


if __name__ == "__main__":
    main()
