"""The whole evaluate stage on a data set (Kodak) with one checkpoint, against CompressAI's
``eval_model`` on the same images and weights: CPU time (user + system of the process tree)
and wall time, and the ratios ours/theirs; the mean bpp and PSNR of both.

    python benchmarks/evaluate_vs_eval_model.py --checkpoint models/quick/mbt2018/q4.pt
    python benchmarks/evaluate_vs_eval_model.py --checkpoint models/quick/bmshj2018-hyperprior/q4.pt --workers 1

Ours is ``python -m benchmark evaluate-learned`` as the pipeline runs it (every image coded to
real bytes, decoded, PSNR and MS-SSIM, the decode check, the estimated rate, provenance), with
``metrics.perceptual: []`` so that both compute the same metrics, ``--workers`` processes of one
torch thread, and the codec's default order (wavefront for the context models; ``--order
raster`` for CompressAI's). ``eval_model`` runs as shipped (one process, one torch thread) on
the checkpoint's weights saved as a state dict; it recomputes the CDF tables from the same
quantiles. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _params import write_params  # noqa: E402  (benchmarks/_params.py, beside this script)


def _timed(cmd, **kw):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall, out.stdout


def _params(tmp: Path, model: str, quality: int, order: str) -> Path:
    def change(p):
        p["codecs"]["bench"] = {"codec": "learned", "rate_points": [quality], "options": {"model": model, "order": order}}
        p["train"]["qualities"] = sorted(set(p["train"]["qualities"]) | {quality})
        p["evaluate"].update(codecs=[], learned=[], variants=["bench"])
        p["report"]["anchor"] = "bench"

    return write_params(tmp, change)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="our checkpoint (models/<budget>/<model>/q<k>.pt)")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "kodak", help="a fetched data set directory")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--order", choices=("wavefront", "raster"), default="wavefront")
    args = p.parse_args(argv)
    import pandas as pd
    import torch

    from benchmark.models.checkpoint import read_checkpoint

    ckpt = read_checkpoint(args.checkpoint)
    arch, quality = ckpt["arch"], int(str(ckpt.get("rate_point", 1)).lstrip("q"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.save(ckpt["state_dict"], tmp / "weights.pth.tar")
        (tmp / "m").mkdir()
        shutil.copy(args.checkpoint, tmp / "m" / f"q{quality}.pt")
        theirs = _timed([sys.executable, "-m", "compressai.utils.eval_model", "checkpoint", str(args.data / "images"),
                         "-a", arch, "-p", str(tmp / "weights.pth.tar")], cwd=tmp)
        ours = _timed([sys.executable, "-m", "benchmark", "evaluate-learned", "--params", str(_params(tmp, "m", quality, args.order)),
                       "--dataset", "x", "--codec", "bench", "--data", str(args.data), "--out", str(tmp / "ours.csv"),
                       "--workers", str(args.workers), "--checkpoints", str(tmp / "{model}" / "q{rate_point}.pt")], cwd=ROOT)
        rows = pd.read_csv(tmp / "ours.csv")
    res = json.loads(theirs[2][theirs[2].index("{"):])["results"]
    print(f"{arch} q{quality} ({args.checkpoint}), {len(rows)} images of {args.data}, ours: {args.workers} worker(s), order {args.order}")
    print(f"  ours:       mean bpp {rows.bpp.mean():.4f} (container), PSNR {rows.psnr.mean():.3f} dB, decode check {rows.decode_check.value_counts().to_dict()}")
    print(f"  eval_model: mean bpp {res['bpp'][0]:.4f} (strings), PSNR {res['psnr-rgb'][0]:.3f} dB")
    print(f"  CPU s ours {ours[0]:.1f} / eval_model {theirs[0]:.1f} = {ours[0] / theirs[0]:.2f};  wall s ours {ours[1]:.1f} / eval_model {theirs[1]:.1f} = {ours[1] / theirs[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
