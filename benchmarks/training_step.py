"""One training step of our loop against a plain CompressAI-style loop, side by side: the same
model, batch, crops, learning rates and torch threads; seconds per step and the ratio ours/plain.

    python benchmarks/training_step.py                    # bmshj2018-hyperprior N=64 M=96, batch 8 of 128 px, 1 thread
    python benchmarks/training_step.py --arch mbt2018 --threads 2 --steps 30

The plain loop is CompressAI's ``examples/train.py`` reduced to its step: random crops of the
training images (uniform offsets, uint8 -> float in [0, 1]), ``model(x)``, the RD loss
λ·255²·MSE + bpp, backward, gradient clipping, Adam step, then the auxiliary loss and its Adam
step. Ours is ``benchmark.training.loop._Run.one_step`` (the same, plus random flips, the
learning-rate schedule and the non-finite-loss check). Both run in this process, alternating
in blocks after a warm-up (which goes first alternates); the median block time is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark._torchvision_compat import ensure_torchvision_importable  # noqa: E402

ensure_torchvision_importable()

import torch  # noqa: E402

from benchmark.models.specs import build_model  # noqa: E402
from benchmark.training.loop import TrainConfig, _Run, rd_loss, train  # noqa: E402


class Plain:
    """CompressAI's examples/train.py step (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, images) -> None:
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.model = build_model(cfg.arch, cfg.size).train()
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        self.main = [p for n, p in params.items() if not n.endswith(".quantiles")]
        self.opt = torch.optim.Adam(self.main, lr=cfg.settings.lr)
        aux = [p for n, p in params.items() if n.endswith(".quantiles")]
        self.aux_opt = torch.optim.Adam(aux, lr=cfg.settings.aux_lr) if aux else None
        self.images = [torch.from_numpy(im).permute(2, 0, 1).contiguous() for im in images]
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def batch(self) -> torch.Tensor:
        p, out = self.cfg.settings.patch_size, []
        for i in torch.randint(len(self.images), (self.cfg.settings.batch_size,), generator=self.gen).tolist():
            im = self.images[i]
            top = int(torch.randint(im.shape[1] - p + 1, (1,), generator=self.gen))
            left = int(torch.randint(im.shape[2] - p + 1, (1,), generator=self.gen))
            out.append(im[:, top : top + p, left : left + p])
        return torch.stack(out).float().div(255)

    def one_step(self) -> None:
        x = self.batch()
        self.opt.zero_grad()
        if self.aux_opt is not None:
            self.aux_opt.zero_grad()
        out = self.model(x)
        loss = rd_loss(out, x, self.cfg.lmbda)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.main, self.cfg.settings.clip_max_norm)
        self.opt.step()
        if self.aux_opt is not None:
            aux = self.model.aux_loss()
            aux.backward()
            self.aux_opt.step()


def _block(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="bmshj2018-hyperprior")
    p.add_argument("--size", default="N=64,M=96", help="channel counts, e.g. N=64,M=96")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=20, help="steps per block (5 blocks each)")
    args = p.parse_args(argv)
    from skimage import data

    torch.set_num_threads(args.threads)
    size = {k: int(v) for k, v in (kv.split("=") for kv in args.size.split(","))}
    cfg = TrainConfig.make(args.arch, size, 0.0067, steps=10**6, batch_size=args.batch, patch_size=args.patch, lr=1e-3,
                           seed=0, device="cpu")
    images = [data.coffee(), data.chelsea(), data.astronaut()]
    with tempfile.TemporaryDirectory() as tmp:
        ours = _Run(cfg, images, Path(tmp) / "s", Path(tmp) / "l.csv")
        plain = Plain(cfg, images)
        _block(ours.one_step, 3), _block(plain.one_step, 3)  # warm-up
        t_ours, t_plain = [], []
        for i in range(5):  # alternate which goes first
            if i % 2:
                t_plain.append(_block(plain.one_step, args.steps))
            t_ours.append(_block(ours.one_step, args.steps))
            if not i % 2:
                t_plain.append(_block(plain.one_step, args.steps))
        # The whole loop as the model stage runs it (progress bar, log rows, state saves, the
        # final CDF tables and checkpoint) for 5 blocks' worth of steps, against the plain loop.
        n = 5 * args.steps
        full_cfg = TrainConfig.make(args.arch, size, 0.0067, steps=n, batch_size=args.batch, patch_size=args.patch, lr=1e-3,
                                    checkpoint_every=max(1, n // 4), seed=0, device="cpu")
        t0 = time.perf_counter()
        train(full_cfg, images, Path(tmp) / "m.pt", Path(tmp) / "m.state", Path(tmp) / "m.csv", progress=True)
        t_train = time.perf_counter() - t0
    o, q = statistics.median(t_ours), statistics.median(t_plain)
    print(f"{args.arch} {size}, batch {args.batch} x {args.patch}px, {args.threads} thread(s), median of 5 blocks of {args.steps} steps")
    print(f"seconds per step: ours {o:.4f}, plain loop {q:.4f}, ratio ours/plain {o / q:.2f}")
    print(f"whole train() of {n} steps (progress bar, logs, {4} state saves, final tables and checkpoint): {t_train:.1f} s, "
          f"{t_train / n:.4f} s per step, ratio to the plain step {t_train / n / q:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
