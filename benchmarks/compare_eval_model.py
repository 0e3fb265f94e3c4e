"""Run CompressAI's ``eval_model`` and our learned codec on the same checkpoint and images; print
per-tool wall time, the ratio ours/theirs, and the largest per-image differences of bpp, PSNR and
MS-SSIM.

    python benchmarks/compare_eval_model.py --arch bmshj2018-hyperprior --checkpoint ckpt.pth.tar --images DIR
    python benchmarks/compare_eval_model.py            # builds small models and images itself

``--checkpoint`` is anything ``eval_model checkpoint -a ARCH -p FILE`` loads (a state dict, or a
dict with it under "network"/"state_dict"/"model_state_dict"). It is converted to our checkpoint
format the way eval_model loads it (``from_state_dict`` then ``update(force=True)`` on the CPU), so
both tools code with the same weights and CDF tables. Each tool runs in its own process (wall time
includes interpreter start, imports and model loading) with one torch thread, eval_model's
setting. Our side does what eval_model does per image (compress, decompress, PSNR and MS-SSIM)
with ``decode_check`` off. Our bpp is shown twice: strings only (eval_model's definition) and
the whole container (what the benchmark reports). Images are read by both as 8-bit RGB (ours
also applies EXIF orientation; use files without it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # eval_model's list
QUALITY = 1  # our checkpoint file name q<QUALITY>.pt; irrelevant to the coding


def collect_images(root: Path) -> List[Path]:
    """The files eval_model evaluates: every IMG_EXTENSIONS file under ``root``, sorted."""
    return sorted(p for ext in IMG_EXTENSIONS for p in root.rglob(f"*{ext}"))


def _torch():
    sys.path.insert(0, str(ROOT))
    from benchmark._torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import torch

    return torch


def convert_checkpoint(arch: str, path: Path, models_dir: Path) -> str:
    """Write ``path`` as our checkpoint ``<models_dir>/<arch>/q1.pt``; returns the model name."""
    torch = _torch()
    from compressai.zoo.image import model_architectures

    from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
    from benchmark.models.specs import ARCHITECTURES

    ckpt = torch.load(path, map_location="cpu")
    state_dict = ckpt
    for key in ("network", "state_dict", "model_state_dict"):  # as eval_model.load_checkpoint
        if key in ckpt:
            state_dict = ckpt[key]
    net = finalize_for_coding(model_architectures[arch].from_state_dict(state_dict))
    size = {a: int(getattr(net, a)) for a in ARCHITECTURES.get(arch).size_args}
    save_checkpoint(
        models_dir / arch / f"q{QUALITY}.pt",
        {"arch": arch, "size": size, "rate_point": f"q{QUALITY}", "step": None, "state_dict": net.state_dict(), "coder_ready": True},
    )
    return arch


def build_small_setup(work: Path) -> List[Dict[str, str]]:
    """Two small models (hyperprior and mbt2018, N=32, M=48, 30 Adam steps on 64x64 crops of
    scikit-image's immunohistochemistry photo) saved as state dicts, and two photos
    (astronaut 512x512, coffee 400x600) in ``work/images``. Returns [{arch, checkpoint}]."""
    torch = _torch()
    from skimage import data

    from benchmark.data.images import save_png_atomic
    from benchmark.models.checkpoint import load_model
    from benchmark.training.loop import TrainConfig, train

    for stem in ("astronaut", "coffee"):
        save_png_atomic(getattr(data, stem)(), work / "images" / f"{stem}.png")
    runs = []
    for arch in ("bmshj2018-hyperprior", "mbt2018"):
        cfg = TrainConfig.make(arch=arch, size={"N": 32, "M": 48}, lmbda=0.05, steps=30, batch_size=4, patch_size=64,
                          lr=1e-3, aux_lr=1e-2, milestones=(), checkpoint_every=30, log_every=30, seed=0, device="cpu")
        ours = train(cfg, [data.immunohistochemistry()], work / f"{arch}.pt", work / f"{arch}.state",
                     work / f"{arch}.log.csv", progress=False)
        model = load_model(ours)[0]
        path = work / f"{arch}.pth.tar"
        torch.save(model.state_dict(), path)
        runs.append({"arch": arch, "checkpoint": str(path)})
    return runs


def ours_worker(models_dir: Path, model: str, images: Path, out: Path) -> None:
    """Our side, in its own process: per image strings bpp, container bpp, PSNR, MS-SSIM, seconds."""
    torch = _torch()
    torch.set_num_threads(1)
    from benchmark.codecs.base import build_codec
    from benchmark.codecs.learned import LearnedCodec
    from benchmark.data.images import load_rgb8
    from benchmark.metrics import distortion_metrics

    template = str(models_dir / "{model}" / "q{rate_point}.pt")
    codec = build_codec("learned", {"model": model, "decode_check": False}, checkpoints=template)
    codec.load(QUALITY)  # load before timing, as eval_model does
    results = {}
    for path in collect_images(images):
        image = load_rgb8(path)
        h, w, _ = image.shape
        t0 = time.perf_counter()
        data = codec.encode(image, QUALITY)
        t1 = time.perf_counter()
        rec = codec.decode(data)
        t2 = time.perf_counter()
        m = distortion_metrics(image, rec)
        results[str(path.relative_to(images))] = {
            "bpp": LearnedCodec.strings_bpp(data), "bpp_container": 8 * len(data) / (h * w),
            "psnr-rgb": m["psnr"], "ms-ssim-rgb": m["ms_ssim"], "encoding_time": t1 - t0, "decoding_time": t2 - t1,
        }
    out.write_text(json.dumps(results))


def run_theirs(arch: str, checkpoint: Path, images: Path, out_dir: Path) -> Dict[str, dict]:
    """eval_model with --per-image; per image (path relative to ``images``) its results."""
    argv = ["eval_model", "checkpoint", str(images), "-a", arch, "-p", str(checkpoint), "-d", str(out_dir), "-o", "all", "--per-image"]
    code = (
        "from benchmark._torchvision_compat import ensure_torchvision_importable as f; f(); "
        f"import runpy, sys; sys.argv = {argv!r}; runpy.run_module('compressai.utils.eval_model', run_name='__main__')"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    cpt_name = checkpoint.name[: -len(".tar.pth")]  # eval_model's own naming
    results = {}
    for path in collect_images(images):
        rel = path.relative_to(images)
        per_image = out_dir / rel.parent / f"{path.stem}-{cpt_name}-ans.json"
        results[str(rel)] = json.loads(per_image.read_text())["results"]
    return results


def compare(arch: str, checkpoint: Path, images: Path, work: Path) -> None:
    models_dir = work / "models"
    model = convert_checkpoint(arch, checkpoint, models_dir)
    t0 = time.perf_counter()
    theirs = run_theirs(arch, checkpoint, images, work / "eval_model" / arch)
    t_theirs = time.perf_counter() - t0
    ours_json = work / f"ours-{arch}.json"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--ours-worker", "--models-dir", str(models_dir), "--model", model, "--images", str(images), "--out", str(ours_json)],
        cwd=ROOT, check=True,
    )
    t_ours = time.perf_counter() - t0
    ours = json.loads(ours_json.read_text())

    print(f"\n== {arch}  ({checkpoint.name}, {len(ours)} images in {images})")
    print(f"{'image':<16}{'bpp ours':>11}{'bpp theirs':>12}{'+container':>12}{'PSNR ours':>11}{'PSNR theirs':>13}{'dPSNR':>10}{'dMS-SSIM':>10}")
    d_bpp = d_psnr = d_msssim = 0.0
    for name in sorted(ours):
        o, t = ours[name], theirs[name]
        d_bpp = max(d_bpp, abs(o["bpp"] - t["bpp"]))
        d_psnr = max(d_psnr, abs(o["psnr-rgb"] - t["psnr-rgb"]))
        d_msssim = max(d_msssim, abs(o["ms-ssim-rgb"] - t["ms-ssim-rgb"]))
        print(
            f"{name:<16}{o['bpp']:>11.6f}{t['bpp']:>12.6f}{o['bpp_container'] - o['bpp']:>+12.6f}"
            f"{o['psnr-rgb']:>11.5f}{t['psnr-rgb']:>13.5f}{o['psnr-rgb'] - t['psnr-rgb']:>10.1e}{o['ms-ssim-rgb'] - t['ms-ssim-rgb']:>10.1e}"
        )
    coding_ours = sum(o["encoding_time"] + o["decoding_time"] for o in ours.values())
    coding_theirs = sum(t["encoding_time"] + t["decoding_time"] for t in theirs.values())
    print(f"wall time (process: start, imports, load, code, metrics): ours {t_ours:.2f} s, eval_model {t_theirs:.2f} s, ratio ours/theirs {t_ours / t_theirs:.2f}")
    print(f"encode+decode time (sum over images):                    ours {coding_ours:.2f} s, eval_model {coding_theirs:.2f} s, ratio ours/theirs {coding_ours / coding_theirs:.2f}")
    print(f"max |d bpp| (strings only) {d_bpp:.3g}, max |d PSNR| {d_psnr:.3g} dB, max |d MS-SSIM| {d_msssim:.3g}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", help="CompressAI architecture name, e.g. bmshj2018-hyperprior (with --checkpoint)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint file eval_model can load (with --arch)")
    p.add_argument("--images", type=Path, help="directory of images (default with no --checkpoint: astronaut and coffee)")
    p.add_argument("--ours-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--models-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.ours_worker:
        ours_worker(args.models_dir, args.model, args.images, args.out)
        return 0
    if (args.arch is None) != (args.checkpoint is None):
        p.error("--arch and --checkpoint go together")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.checkpoint is None:
            runs = build_small_setup(work)
            images = args.images or work / "images"
        else:
            if args.images is None:
                p.error("--images is required with --checkpoint")
            runs = [{"arch": args.arch, "checkpoint": str(args.checkpoint)}]
            images = args.images
        for run in runs:
            compare(run["arch"], Path(run["checkpoint"]), images, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
