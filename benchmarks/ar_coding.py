"""Autoregressive (context-model) coding, ours against CompressAI, side by side on one thread:
encode and decode time of one image in CompressAI's raster order (``model.compress`` /
``model.decompress``), our raster coder (the same bitstream) and our wavefront coder, the
ratios ours / CompressAI, the rates, and whether the reconstructions agree.

    python benchmarks/ar_coding.py                                   # the default run's mbt2018 q4 and cheng2020-anchor q4, kodim01
    python benchmarks/ar_coding.py --checkpoint models/cpu/mbt2018/q1.pt --image data/kodak/images/kodim01.png

Checkpoints are ours (``benchmark.models.checkpoint``); with ``--paper-size ARCH`` a model of
the published width (untrained, CDF tables from ``update``) is timed instead. Each timing is the
median of ``--repeat`` runs in this process, torch on one thread (CompressAI's eval_model's
setting and our coders'); run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark._torchvision_compat import ensure_torchvision_importable  # noqa: E402

ensure_torchvision_importable()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmark.codecs import autoregressive as ar  # noqa: E402
from benchmark.data.images import load_rgb8  # noqa: E402
from benchmark.models.checkpoint import load_model  # noqa: E402

DEFAULT_CHECKPOINTS = ["models/quick/mbt2018/q4.pt", "models/quick/cheng2020-anchor/q4.pt"]
DEFAULT_IMAGE = "data/kodak/images/kodim01.png"


def _timed(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _input(image_path: Path) -> torch.Tensor:
    from compressai.ops import compute_padding

    x = torch.from_numpy(load_rgb8(image_path)).permute(2, 0, 1).float().div(255)[None]
    pad, _ = compute_padding(x.shape[2], x.shape[3], min_div=64)
    return F.pad(x, pad, mode="constant", value=0)


def _model(spec: str):
    if spec.startswith("paper:"):
        from benchmark.models.specs import ARCHITECTURES, build_model

        arch = spec.split(":", 1)[1]
        model = build_model(arch, ARCHITECTURES.get(arch).paper_sizes[4]).eval()
        model.update(force=True)
        return model, f"{arch} (paper width, untrained)"
    model, meta = load_model(ROOT / spec)
    return model, f"{meta['arch']} {meta['size']} ({spec})"


def bench(spec: str, image: Path, repeat: int) -> None:
    model, label = _model(spec)
    x = _input(image)
    t_ce, theirs = _timed(lambda: model.compress(x), repeat)
    t_cd, x_theirs = _timed(lambda: model.decompress(theirs["strings"], theirs["shape"])["x_hat"], repeat)
    t_re, raster = _timed(lambda: ar.compress_raster(model, x), repeat)
    t_rd, x_raster = _timed(lambda: ar.decompress_raster(model, theirs["strings"], theirs["shape"])["x_hat"], repeat)
    t_we, wave = _timed(lambda: ar.compress_wavefront(model, x), repeat)
    t_wd, x_wave = _timed(lambda: ar.decompress_wavefront(model, wave["strings"], wave["shape"])["x_hat"], repeat)
    same_bytes = raster["strings"] == theirs["strings"]
    n_raster, n_wave = len(theirs["strings"][0][0]), len(wave["strings"][0][0])
    px = lambda t: (t * 255).round().to(torch.uint8)  # noqa: E731
    differ = int((px(x_wave) != px(x_theirs)).any(dim=1).sum())
    h, w = theirs["shape"][0] * 4, theirs["shape"][1] * 4
    print(f"\n== {label}, {image.name}, latent {h}x{w} ({h * w} positions; wavefront {3 * h + w - 3} steps), median of {repeat}")
    print(f"{'':<26}{'encode s':>10}{'decode s':>10}{'enc ratio':>11}{'dec ratio':>11}{'y bytes':>9}")
    print(f"{'CompressAI (raster)':<26}{t_ce:>10.2f}{t_cd:>10.2f}{1:>11.2f}{1:>11.2f}{n_raster:>9}")
    print(f"{'ours, raster':<26}{t_re:>10.2f}{t_rd:>10.2f}{t_re / t_ce:>11.2f}{t_rd / t_cd:>11.2f}{n_raster:>9}")
    print(f"{'ours, wavefront':<26}{t_we:>10.2f}{t_wd:>10.2f}{t_we / t_ce:>11.2f}{t_wd / t_cd:>11.2f}{n_wave:>9}")
    print(f"raster: CompressAI's bytes {'identical' if same_bytes else 'DIFFER'}, reconstruction {'bit-identical' if torch.equal(x_raster, x_theirs) else 'DIFFERS'}")
    print(f"wavefront: y string {100 * (n_wave - n_raster) / n_raster:+.3f} % against raster; {differ} of {x.shape[2] * x.shape[3]} "
          f"pixels differ from raster decoding (8-bit, padded image)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", action="append", help="our checkpoint of a context model (repeatable)")
    p.add_argument("--paper-size", action="append", default=[], help="time an untrained model of this architecture at the published width")
    p.add_argument("--image", type=Path, default=ROOT / DEFAULT_IMAGE)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    specs = (args.checkpoint or ([] if args.paper_size else DEFAULT_CHECKPOINTS)) + [f"paper:{a}" for a in args.paper_size]
    for spec in specs:
        bench(spec, args.image, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
