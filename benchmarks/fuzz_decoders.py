"""Hostile bytes against every codec's ``decode``: seeded corruptions of a real bitstream, each
decoded in a child process under a memory cap and a per-case time limit, so that a crash or a
hang is counted rather than taking the run down (issue 15).

    python benchmarks/fuzz_decoders.py                        # 100 cases per codec, all codecs
    python benchmarks/fuzz_decoders.py --cases 300 --codecs jpeg hevc
    python benchmarks/fuzz_decoders.py --models models/quick  # learned codecs from these checkpoints

Corruptions (``corruptions``, ``random.Random(seed)``): 1-3 bytes replaced, one bit flipped,
truncation at a random offset, 1-8 random bytes inserted, 1-64 random bytes appended, and a
window of the first 64 bytes (the header) set to an extreme value (0, 1, 2**16-1, 2**32-1
big- or little-endian); for the learned container, the header fields themselves (height,
width, latent shape) set to 0, 1, 2**16-1, 2**32-1 through ``container.pack``.

Each outcome is one of: ``image`` (a uint8 (H, W, 3) array), ``decode_error`` (``DecodeError``
naming the codec), ``other`` (any other exception: a bug), ``crash`` (the child died by a
signal, or beyond the memory cap), ``hang`` (over the time limit). Only the first two are
allowed. The table printed at the end gives the counts per codec.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
OUTCOMES = ("image", "decode_error", "other", "crash", "hang")
EXTREMES = (0, 1, (1 << 16) - 1, (1 << 32) - 1)
CLASSICAL = {"jpeg": 50, "webp": 50, "avif": 50, "jpeg2000": 0.5, "jpegxl": 2.0, "hevc": 50}


def corruptions(data: bytes, n: int, seed: int) -> Iterator[Tuple[str, bytes]]:
    """``n`` seeded corruptions of ``data``: (kind, bytes). Kinds in the module docstring; the
    learned container's header fields are added by :func:`container_field_cases`."""
    rng = random.Random(seed)
    kinds = ("replace", "bitflip", "truncate", "insert", "append", "header")
    for i in range(n):
        kind = kinds[i % len(kinds)]
        buf = bytearray(data)
        if kind == "replace":
            for _ in range(rng.randint(1, 3)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == "bitflip":
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            del buf[rng.randrange(len(buf)):]
        elif kind == "insert":
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == "append":
            buf += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        else:
            value, width = rng.choice(EXTREMES), rng.choice((2, 4))
            at = rng.randrange(max(1, min(64, len(buf)) - width + 1))
            buf[at:at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, rng.choice(("big", "little")))
        yield kind, bytes(buf)


def container_field_cases(data: bytes) -> List[Tuple[str, bytes]]:
    """The learned container with its height, width and latent shape entries set to each of
    ``EXTREMES`` (sides through ``pack`` where they fit in 16 bits; a zero side written raw)."""
    from benchmark.codecs.container import pack, unpack

    c = unpack(data)
    out = []
    for v in EXTREMES:
        if 1 <= v <= 0xFFFF:
            out.append((f"height={v}", pack(dataclasses.replace(c, height=v))))
            out.append((f"width={v}", pack(dataclasses.replace(c, width=v))))
            out.append((f"size={v}x{v}", pack(dataclasses.replace(c, height=v, width=v))))
        for i in range(len(c.shape)):
            shape = tuple(v if j == i else d for j, d in enumerate(c.shape))
            out.append((f"shape[{i}]={v}", pack(dataclasses.replace(c, shape=shape))))
        if c.shape:
            out.append((f"shape=all {v}", pack(dataclasses.replace(c, shape=(v,) * len(c.shape)))))
    # the crafted header: the largest image with the latent that fits it
    f = -(-c.height // 64) * 64 // c.shape[-1] if c.shape and c.shape[-1] else 64
    big = 65535
    shape = tuple(-(-big // 64) * 64 // f for _ in c.shape)
    out.append(("size=65535x65535 with its latent", pack(dataclasses.replace(c, height=big, width=big, shape=shape))))
    return out


CHILD = r"""
import json, signal, sys, numpy as np
spec = json.loads(sys.argv[1])
for m in spec["modules"]:
    __import__(m)
from benchmark.codecs.base import build_codec
codec = build_codec(spec["codec"], spec["options"], **spec["files"])
try:
    from benchmark.codecs.base import DecodeError
    from benchmark.config import DecodeConfig
    if spec.get("max_memory_gb"):
        codec.limits = DecodeConfig(max_memory_gb=spec["max_memory_gb"])
    name = codec.name
except ImportError:  # a checkout from before DecodeError (--root): its CodecError counts as the codec's error
    from benchmark.codecs.base import CodecError as DecodeError
    name = None
if spec["warmup"]:  # the intact bitstream first, without a time limit: imports and checkpoint loading
    codec.decode(open(f"{spec['dir']}/warmup.bin", "rb").read())
for i in range(spec["start"], spec["n"]):
    data = open(f"{spec['dir']}/{i}.bin", "rb").read()
    signal.alarm(spec["timeout"])  # default action: the child dies by SIGALRM, counted as a hang
    try:
        rec = codec.decode(data)
        ok = isinstance(rec, np.ndarray) and rec.dtype == np.uint8 and rec.ndim == 3 and rec.shape[2] == 3
        out = ("image", list(rec.shape)) if ok else ("other", f"returned {type(rec).__name__} {getattr(rec, 'shape', '')}")
    except DecodeError as e:
        if name is None or e.codec == name:
            out = ("decode_error", str(e)[:200])
        else:
            out = ("other", f"DecodeError naming {e.codec!r}: {e}")
    except BaseException as e:
        out = ("other", f"{type(e).__name__}: {str(e)[:200]}")
    signal.alarm(0)
    print(json.dumps([i, *out]), flush=True)
"""


def run_cases(codec: str, options: Dict, files: Dict, modules: Sequence[str], cases: Sequence[bytes],
              timeout_s: int = 20, mem_cap_gb: float = 6.0, root: Path = ROOT,
              warmup: Optional[bytes] = None) -> List[Tuple[str, object]]:
    """Decode each of ``cases`` with a fresh ``build_codec(codec, options, **files)`` (after
    importing ``modules``) in child processes: one child decodes case after case, printing each
    outcome; if it dies (a signal, ``SIGALRM`` after ``timeout_s`` seconds on one case, or the
    address-space cap of ``mem_cap_gb`` GiB), that case is a crash or hang and a new child goes on
    with the next. The child's decode limit ``max_memory_gb`` is set under the cap; ``root``: the
    checkout whose ``benchmark`` package the child imports; ``warmup``: an intact bitstream each
    child decodes first without a time limit (imports, checkpoint loading). Returns one
    (outcome, detail) per case, outcome in ``OUTCOMES``."""
    results: List[Optional[Tuple[str, object]]] = [None] * len(cases)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    cap = int(mem_cap_gb * 2**30)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryDirectory() as d:
        for i, data in enumerate(cases):
            Path(d, f"{i}.bin").write_bytes(data)
        if warmup is not None:
            Path(d, "warmup.bin").write_bytes(warmup)
        start = 0
        while start < len(cases):
            spec = {"codec": codec, "options": options, "files": files, "modules": list(modules), "dir": d,
                    "start": start, "n": len(cases), "timeout": timeout_s, "max_memory_gb": mem_cap_gb / 2,
                    "warmup": warmup is not None}
            proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=env, cwd=root, preexec_fn=limit,
                                  capture_output=True, text=True, timeout=timeout_s * (len(cases) - start) + 120)
            for line in proc.stdout.splitlines():
                if line.startswith("["):
                    i, outcome, detail = json.loads(line)
                    results[i] = (outcome, detail)
            done = [i for i in range(start, len(cases)) if results[i] is not None]
            nxt = (max(done) + 1) if done else start
            if proc.returncode == 0 and nxt == len(cases):
                break
            if nxt < len(cases):  # the child died on case nxt
                if nxt == start and not done and proc.returncode > 0 and "Traceback" in proc.stderr and start == 0:
                    raise RuntimeError(f"{codec}: the child failed before decoding anything:\n{proc.stderr[-2000:]}")
                sig = -proc.returncode if proc.returncode < 0 else None
                kind = "hang" if sig == 14 else "crash"
                results[nxt] = (kind, f"exit {proc.returncode}; {proc.stderr.strip()[-300:]}")
                start = nxt + 1
            else:
                break
    return [r if r is not None else ("crash", "no outcome") for r in results]


def _image():
    import numpy as np
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:196, 150:278])  # 96 x 128, a real photo


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=100, help="random corruptions per codec (plus the container field cases)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--codecs", nargs="*", default=None, help="classical codec names and/or learned model names")
    p.add_argument("--models", type=Path, default=None, help="a budget's model directory (models/quick): fuzz its learned codecs")
    p.add_argument("--quality", type=int, default=4, help="the learned rate point")
    p.add_argument("--out", type=Path, default=None, help="write the counts as JSON here")
    p.add_argument("--root", type=Path, default=ROOT,
                   help="decode with the benchmark package of this checkout (an older one: its CodecError is the codec's error)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmark.codecs.base import build_codec

    image = _image()
    jobs = []  # (label, codec, options, files, modules, rate point)
    for name, rp in CLASSICAL.items():
        jobs.append((name, name, {}, {}, ["benchmark.codecs.classical"], rp))
    if args.models is not None:
        for d in sorted(p for p in args.models.iterdir() if p.is_dir()):
            if (d / "model.pt").is_file():
                jobs.append((d.name, "sic", {"model": d.name}, {"checkpoints": str(d / "model.pt")}, ["benchmark.codecs.sic"], 8))
            elif (d / f"q{args.quality}.pt").is_file():
                files = {"checkpoints": str(args.models / "{model}" / "q{rate_point}.pt")}
                jobs.append((d.name, "learned", {"model": d.name}, files, ["benchmark.codecs.learned"], args.quality))
    if args.codecs:
        jobs = [j for j in jobs if j[0] in args.codecs]
    table = {}
    for label, codec, options, files, modules, rp in jobs:
        for m in modules:
            __import__(m)
        data = build_codec(codec, options, **files).encode(image, rp)
        cases = [b for _, b in corruptions(data, args.cases, args.seed)]
        if codec in ("learned", "sic"):
            cases += [b for _, b in container_field_cases(data)]
        outcomes = run_cases(codec, options, files, modules, cases, root=args.root, warmup=data)
        counts = Counter(o for o, _ in outcomes)
        table[label] = {"cases": len(cases), **{k: counts.get(k, 0) for k in OUTCOMES}}
        bad = [(i, o, d) for i, (o, d) in enumerate(outcomes) if o not in ("image", "decode_error")]
        print(f"{label:22s} " + " ".join(f"{k} {v:4d}" for k, v in table[label].items()), flush=True)
        for i, o, d in bad[:5]:
            print(f"    case {i}: {o}: {d}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(table, indent=2) + "\n")
    return 0 if all(t["other"] + t["crash"] + t["hang"] == 0 for t in table.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
