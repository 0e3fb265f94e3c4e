"""HaarPSI of one large photograph: piq on the whole image against our strips of rows.

    python benchmarks/haarpsi_large.py                     # the 6028x3391 (20.4 MP) mirror mosaic, JPEG q50 copy
    python benchmarks/haarpsi_large.py --image photo.png --quality 30

The reference is the mosaic of ``benchmarks/large_image.py`` (made from ``$BENCHMARK_MIRROR``)
or ``--image``; the reconstruction its JPEG copy (Pillow, ``--quality``). Each method runs in a
fresh process on one thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``), through
``benchmark.metrics.perceptual.haarpsi`` with the images as uint8 (1, 3, H, W) views of HWC
arrays, as the evaluate stage passes them: "piq" with the large-image threshold raised (one
``piq.haarpsi`` call in float32 on the whole pair, the path of images up to 4 MP) and "strips"
as it is (``_haarpsi_strips``); with ``--float64`` also piq on float64 copies ("piq64") and
our float64 mode ("strips64"), once each. Prints, per method, the wall and CPU time (best of
``--repeat`` runs), the value, and the peak RSS growth over the process's RSS with the images
loaded; then the ratio of the times and the differences of the values. On a loaded machine
compare the CPU times.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(method: str, ref_npy: Path, rec_npy: Path, repeat: int) -> None:
    """Score the pair of .npy files (H, W, 3) uint8 ``repeat`` times by ``method``; print JSON."""
    import numpy as np
    import torch

    from benchmark._torchvision_compat import ensure_torchvision_importable
    from benchmark.metrics import perceptual

    torch.set_num_threads(1)
    ensure_torchvision_importable()
    import piq  # noqa: F401  (imported before the baseline, as the evaluate stage has it)

    if method == "piq":
        perceptual.BATCH_PIXELS = 1 << 40
    ref, rec = np.load(ref_npy), np.load(rec_npy)
    a = torch.from_numpy(ref).permute(2, 0, 1)[None]
    b = torch.from_numpy(rec).permute(2, 0, 1)[None]
    if method == "piq64":
        score = lambda: float(piq.haarpsi(b.double(), a.double(), data_range=255.0, reduction="none")[0])  # noqa: E731
    elif method == "strips64":
        score = lambda: perceptual._haarpsi_strips(b, a, np.float64)  # noqa: E731
    else:
        score = lambda: float(perceptual.haarpsi(a, b)[0])  # noqa: E731
    base = _reset_peak()
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        value = score()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    peak = _peak()
    print(json.dumps({"value": value, "wall": min(walls), "cpu": min(cpus), "growth": peak - base, "base": base}))


def _reset_peak() -> int:
    """Reset the process's peak RSS to its RSS now (Linux: ``/proc/self/clear_refs``, so that
    import-time peaks do not hide what follows) and return that RSS, in bytes; elsewhere the
    peak so far."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _peak()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak() -> int:
    """The process's peak RSS (``VmHWM``; elsewhere ``ru_maxrss``), in bytes."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=None, help="the photograph (default: the mirror mosaic)")
    ap.add_argument("--quality", type=int, default=50, help="JPEG quality of the reconstruction")
    ap.add_argument("--repeat", type=int, default=2, help="runs per method (the best time is printed)")
    ap.add_argument("--float64", action="store_true", help="also piq and ours in float64, once each (piq needs ~9 GB at 20 MP)")
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "REF", "REC"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], Path(args.child[1]), Path(args.child[2]), args.repeat)

    import numpy as np
    from PIL import Image

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="haarpsi-large-") as tmp_s:
        tmp = Path(tmp_s)
        image = args.image
        if image is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from large_image import mosaic

            image = mosaic(Path(os.environ.get("BENCHMARK_MIRROR", "")), tmp / "mosaic.png")
        with Image.open(image) as im:
            ref = np.asarray(im.convert("RGB"))
        buf = io.BytesIO()
        Image.fromarray(ref).save(buf, "JPEG", quality=args.quality)
        rec = np.asarray(Image.open(buf).convert("RGB"))
        np.save(tmp / "ref.npy", ref)
        np.save(tmp / "rec.npy", rec)
        h, w = ref.shape[:2]
        print(f"image: {w}x{h} ({h * w / 1e6:.1f} MP), reconstruction JPEG q{args.quality}; one thread, best of {args.repeat}")
        res = {}
        for method in ("piq", "strips") + (("piq64", "strips64") if args.float64 else ()):
            repeat = 1 if method.endswith("64") else args.repeat
            files = [str(tmp / "ref.npy"), str(tmp / "rec.npy")]
            cmd = [sys.executable, __file__, "--repeat", str(repeat), "--child", method, *files]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
            res[method] = r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{method:>8}: wall {r['wall']:.2f} s, CPU {r['cpu']:.2f} s, HaarPSI {r['value']:.12f}, peak RSS "
                  f"+{r['growth'] / 1e6:.0f} MB over {r['base'] / 1e6:.0f} MB ({r['growth'] / (h * w):.1f} bytes/px)")
        p, s = res["piq"], res["strips"]
        print(f"piq / strips: wall {p['wall'] / s['wall']:.1f}x, CPU {p['cpu'] / s['cpu']:.1f}x; "
              f"strips - piq = {s['value'] - p['value']:+.3e}")
        if args.float64:
            p64 = res["piq64"]["value"]
            print(f"against piq in float64: piq {p['value'] - p64:+.3e}, strips {s['value'] - p64:+.3e}, "
                  f"strips64 {res['strips64']['value'] - p64:+.3e}")


if __name__ == "__main__":
    main()
