"""Learning curves on Kodak: the models of the Kodak run trained longer at one λ, scored on the
24 Kodak images at snapshots along the way (issue 11's evidence for the equal-budget comparison).

    python benchmarks/learning_curve.py                              # qres-vae, mbt2018-mean, dvae; q3; 3200 steps
    python benchmarks/learning_curve.py --models dvae --steps 400 --snapshots 100 200 400

Each model is trained exactly as its Kodak-run model stage trains it (``runs/kodak/params.yaml``:
the ``cpu`` budget's size, batch, crops, learning rates, clipping and seed; BSDS500 train + val;
λ of ``--quality``), except for the number of steps (``--steps``; the learning-rate drop stays at
the budget's milestone fraction of it). At each snapshot step the training state is turned into
a coder-ready checkpoint (``finalize_for_coding``) and every Kodak image is coded by the
``learned`` codec into real bytes: ``bpp`` is measured from the container, PSNR (RGB, 8-bit) is
that of the reconstruction the encoder expects the decoder to produce (the Kodak run checks on
every row that a decoder alone produces it), and ``bpp_estimated`` is the model's own estimate.

Needs ``data/bsds500`` and ``data/kodak`` (``make repro-kodak`` fetches both). Writes, under
``--out`` (default ``results/learning-curve``): ``per_image.csv`` (model, step, image, bytes,
bpp, bpp_estimated, mse, psnr), ``summary.csv`` (means per model and step, training seconds and
steps per second) and ``learning-curve.{png,pdf}`` (Kodak PSNR, bpp and the RD loss
λ·255²·MSE + bpp against training steps). Snapshot checkpoints and training states stay under
``--work`` (default ``models/learning-curve``); a rerun resumes training where it stopped and
scores only the snapshots not yet in ``per_image.csv``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark._torchvision_compat import ensure_torchvision_importable  # noqa: E402

ensure_torchvision_importable()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmark.codecs.learned import LearnedCodec  # noqa: E402
from benchmark.config import load_config  # noqa: E402
from benchmark.data.images import load_rgb8, read_manifest  # noqa: E402
from benchmark.fileio import atomic_write  # noqa: E402
from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint  # noqa: E402
from benchmark.models.specs import build_model  # noqa: E402
from benchmark.training.loop import TrainConfig, train  # noqa: E402

FIELDS = ["model", "step", "image", "bytes", "bpp", "bpp_estimated", "mse", "psnr"]


def snapshot_path(work: Path, model: str, step: int, quality: int) -> Path:
    return work / model / f"step{step}" / f"q{quality}.pt"


def make_checkpoint(cfg: TrainConfig, model: str, step: int, quality: int, work: Path) -> None:
    """The coder-ready checkpoint of the training state saved at ``step`` (``finalize_for_coding``)."""
    path = snapshot_path(work, model, step, quality)
    if path.is_file():
        return
    st = torch.load(path.with_suffix(".state"), map_location="cpu", weights_only=False)
    if st["step"] != step:
        raise RuntimeError(f"{path.with_suffix('.state')}: state of step {st['step']}, expected {step}")
    net = build_model(cfg.arch, cfg.size)
    net.load_state_dict(st["model"])
    save_checkpoint(path, {"arch": cfg.arch, "size": dict(cfg.size), "lmbda": cfg.lmbda, "rate_point": quality, "step": step,
                           "state_dict": finalize_for_coding(net).state_dict(), "coder_ready": True, "model": model,
                           "train_config": cfg.record(), "train_seconds": st["seconds"]})


def train_with_snapshots(cfg: TrainConfig, model: str, quality: int, images, hashes, work: Path, snapshots) -> float:
    """Train ``cfg`` (resuming from ``work/<model>/q<quality>.state``), keeping a copy of the
    training state at every snapshot step. Returns the training seconds."""
    state = work / model / f"q{quality}.state"
    final = work / model / f"q{quality}.pt"

    def on_step(step: int) -> None:
        # the state was saved at this very step (checkpoint_every divides every snapshot step)
        if step in snapshots and not snapshot_path(work, model, step, quality).is_file():
            snapshot_path(work, model, step, quality).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(state, snapshot_path(work, model, step, quality).with_suffix(".state"))

    if not final.is_file():
        train(cfg, images, final, state, work / model / f"q{quality}.log.csv", train_image_hashes=hashes,
              meta={"rate_point": quality, "model": model}, on_step=on_step)
    return float(torch.load(final, map_location="cpu", weights_only=False)["train_seconds"])


def score(model: str, step: int, quality: int, work: Path, kodak: Path, max_images=None):
    """Rows of ``FIELDS`` for the snapshot: every Kodak image coded at ``quality``."""
    codec = LearnedCodec(model=model, checkpoints=str(work / model / f"step{step}" / "q{rate_point}.pt"))
    padding = codec._padding(codec.load(quality)[1])
    rows = []
    for row in read_manifest(kodak)[:max_images]:
        img = load_rgb8(kodak / row.file)
        data, bits, expected = codec._compress(img, quality, verbose=True)
        rec = codec._to_image(expected, img.shape[0], img.shape[1], padding)
        mse = float(np.mean((rec.astype(np.float64) - img.astype(np.float64)) ** 2))
        pixels = img.shape[0] * img.shape[1]
        rows.append({"model": model, "step": step, "image": row.name, "bytes": len(data), "bpp": 8 * len(data) / pixels,
                     "bpp_estimated": bits / pixels, "mse": mse, "psnr": 10 * np.log10(255.0**2 / mse)})
    return rows


def write_csv(path: Path, rows, fields) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def summarise(rows, seconds, lmbda):
    """Means per (model, step) in model then step order (PSNR: the mean of per-image PSNR, the
    benchmark's convention), the RD loss of the means, and the training seconds to that step
    (``seconds[(model, step)]``; one thread, wall clock, on a machine shared with other jobs)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for step in sorted({int(r["step"]) for r in rows if r["model"] == model}):
            sel = [r for r in rows if r["model"] == model and int(r["step"]) == step]
            mean = {k: float(np.mean([float(r[k]) for r in sel])) for k in ("bpp", "bpp_estimated", "mse", "psnr")}
            loss = lmbda * mean["mse"] + mean["bpp"]  # λ·255²·MSE with x in [0, 1] = λ·MSE with x in [0, 255]
            sec = seconds[(model, step)]
            out.append({"model": model, "step": step, "n_images": len(sel), **{k: f"{v:.6g}" for k, v in mean.items()},
                        "rd_loss": f"{loss:.6g}", "train_seconds": f"{sec:.1f}", "steps_per_s": f"{step / sec:.3f}"})
    return out


def figure(summary, path: Path, lmbda: float, quality: int, steps: int, budget: str, params) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import NullLocator

    from benchmark.plots.styles import family_of

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    panels = [("psnr", "Kodak PSNR (dB, RGB)"), ("bpp", "Kodak rate (bpp, coded bytes)"), ("rd_loss", "RD loss λ·255²·MSE + bpp")]
    steps_seen = sorted({int(r["step"]) for r in summary})
    for model in dict.fromkeys(r["model"] for r in summary):
        sel = [r for r in summary if r["model"] == model]
        x = [int(r["step"]) for r in sel]
        family = family_of(model)
        style = {"color": family.colour, "marker": family.marker} if family is not None else {"marker": "o"}
        label = f"{model} ({params[model] / 1e6:.2f}M params)"
        for ax, (key, _) in zip(axes, panels):
            ax.plot(x, [float(r[key]) for r in sel], ms=4, label=label, **style)
    for ax, (_, title) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xticks(steps_seen, [str(s) for s in steps_seen], rotation=90, fontsize=7)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("training steps (batch 8, 128 px crops, BSDS500)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.axvline(800, color="0.5", ls=":", lw=1)
        ax.text(830, 0.98, "Kodak run: 800 steps", transform=ax.get_xaxis_transform(), fontsize=7, color="0.4", va="top")
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, 0.9))
    fig.suptitle(f"Learning curves at fixed λ = {lmbda} (q{quality}), trained here on CPU ({budget} budget settings, "
                 f"{steps} steps, lr ×0.1 at 90 %); 24 Kodak images, real bitstreams", fontsize=10)
    for suffix in (".png", ".pdf"):
        fig.savefig(path.with_suffix(suffix), dpi=150)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--params", default="runs/kodak/params.yaml")
    p.add_argument("--models", nargs="+", default=["qres-vae", "mbt2018-mean", "dvae"])
    p.add_argument("--quality", type=int, default=3)
    p.add_argument("--steps", type=int, default=3200)
    p.add_argument("--snapshots", type=int, nargs="+", default=[100, 200, 400, 800, 1200, 1600, 2000, 2400, 2800, 3200])
    p.add_argument("--max-images", type=int, default=None, help="score only the first N Kodak images (a quick try)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for training")
    p.add_argument("--phase", choices=["all", "train", "score"], default="all",
                   help="train: only train (e.g. one process per model side by side); score: only score the "
                   "snapshots made so far and draw; all: both, model after model")
    p.add_argument("--work", type=Path, default=Path("models/learning-curve"))
    p.add_argument("--out", type=Path, default=Path("results/learning-curve"))
    args = p.parse_args(argv)
    cfg = load_config(args.params)
    train_dir, kodak = Path("data") / cfg.train.data, Path("data/kodak")
    manifest = read_manifest(train_dir)
    images = [load_rgb8(train_dir / r.file) for r in manifest]
    hashes = [r.pixel_sha256 for r in manifest]
    snapshots = sorted(set(args.snapshots) | {args.steps})
    done = []
    per_image = args.out / "per_image.csv"
    if per_image.is_file():
        with open(per_image, newline="") as f:
            done = list(csv.DictReader(f))
    params, lmbda = {}, None
    for model in args.models:
        base = TrainConfig.from_params(cfg, model, args.quality)
        settings = dataclasses.replace(base.settings, steps=args.steps, checkpoint_every=math.gcd(*snapshots))
        tcfg = dataclasses.replace(base, settings=settings)
        lmbda = tcfg.lmbda
        if args.phase in ("train", "all"):
            torch.set_num_threads(args.threads)
            seconds = train_with_snapshots(tcfg, model, args.quality, images, hashes, args.work, snapshots)
            print(f"{model}: {tcfg.steps} steps in {seconds:.0f} s = {tcfg.steps / seconds:.2f} steps/s "
                  f"({args.threads} threads)", flush=True)
        if args.phase == "train":
            continue
        params[model] = sum(t.numel() for t in build_model(tcfg.arch, tcfg.size).parameters())
        for step in snapshots:  # every snapshot made so far (a run stopped early is scored up to where it got)
            made = snapshot_path(args.work, model, step, args.quality)
            if not (made.is_file() or made.with_suffix(".state").is_file()):
                continue
            make_checkpoint(tcfg, model, step, args.quality, args.work)
            if not any(r["model"] == model and int(r["step"]) == step for r in done):
                done += score(model, step, args.quality, args.work, kodak, args.max_images)
                write_csv(per_image, done, FIELDS)
            last = [r for r in done if r["model"] == model and int(r["step"]) == step]
            print(f"  {model} step {step}: {np.mean([float(r['psnr']) for r in last]):.2f} dB at "
                  f"{np.mean([float(r['bpp']) for r in last]):.3f} bpp", flush=True)
    if args.phase == "train":
        return 0
    seconds = {(m, s): float(torch.load(snapshot_path(args.work, m, s, args.quality), map_location="cpu",
                                        weights_only=False)["train_seconds"])
               for m in args.models for s in snapshots if snapshot_path(args.work, m, s, args.quality).is_file()}
    summary = summarise([r for r in done if r["model"] in args.models], seconds, lmbda)
    write_csv(args.out / "summary.csv", summary, list(summary[0]))
    figure(summary, args.out / "learning-curve.png", lmbda, args.quality, args.steps, cfg.train.budget, params)
    print(f"wrote {args.out}/summary.csv, per_image.csv, learning-curve.png/.pdf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
