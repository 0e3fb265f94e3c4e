"""The classical JPEG + WebP sweep, ours (the evaluate stage) against ``compressai.utils.bench``,
side by side on the same images, rate points, codec options and number of worker processes:
CPU time (user + system of the whole process tree) and wall time, and the ratios ours/theirs.

    python benchmarks/classical_sweep.py                                  # Kodak (data/kodak), JPEG and WebP, 2 jobs
    python benchmarks/classical_sweep.py --images DIR --jobs 2 --codecs jpeg

Both compute PSNR and MS-SSIM per (image, rate point) from real bytes. ``compressai.utils.bench``
saves with Pillow's defaults but for the quality (JPEG 4:2:0; WebP method 4), so our codecs run
with those options here (``codecs.<name>.options``), and with no perceptual metric
(``metrics.perceptual: []``): the same work. Each tool runs as its own process; run this on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _params import write_params  # noqa: E402  (benchmarks/_params.py, beside this script)

QUALITIES = {"jpeg": list(range(5, 100, 5)), "webp": [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]}
BENCH_OPTIONS = {"jpeg": {"subsampling": "4:2:0"}, "webp": {"method": 4}}  # Pillow's defaults, as bench uses them


def _timed(cmd, **kw):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def _params(tmp: Path, codecs) -> Path:
    def change(p):
        for c in codecs:
            p["codecs"][c].update(rate_points=QUALITIES[c], options=BENCH_OPTIONS[c])
        p["evaluate"].update(codecs=list(codecs), learned=[], variants=[])

    return write_params(tmp, change)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT / "data" / "kodak", help="a fetched data set directory (manifest.csv, images/)")
    p.add_argument("--codecs", nargs="+", default=["jpeg", "webp"], choices=sorted(QUALITIES))
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    totals = {"ours": [0.0, 0.0], "bench": [0.0, 0.0]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        params = _params(tmp, args.codecs)
        for codec in args.codecs:
            q = ",".join(str(v) for v in QUALITIES[codec])
            bench = _timed([sys.executable, "-m", "compressai.utils.bench", codec, str(args.data / "images"), "-j", str(args.jobs), "-q", q])
            ours = _timed([sys.executable, "-m", "benchmark", "evaluate", "--params", str(params), "--dataset", "x", "--codec", codec,
                           "--data", str(args.data), "--out", str(tmp / f"{codec}.csv"), "--workers", str(args.jobs)], cwd=ROOT)
            for name, (cpu, wall) in (("ours", ours), ("bench", bench)):
                totals[name][0] += cpu
                totals[name][1] += wall
            print(f"{codec}: {len(QUALITIES[codec])} rate points; CPU s ours {ours[0]:.1f} / bench {bench[0]:.1f} = {ours[0] / bench[0]:.2f}; "
                  f"wall s ours {ours[1]:.1f} / bench {bench[1]:.1f} = {ours[1] / bench[1]:.2f}")
    (oc, ow), (bc, bw) = totals["ours"], totals["bench"]
    print(f"sweep ({', '.join(args.codecs)}, {args.jobs} jobs): CPU ratio ours/bench {oc / bc:.2f}, wall ratio {ow / bw:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
