"""Stage ``fetch``: build the data directory of one ``datasets.<name>`` entry
(``benchmark.data.dataset.fetch_dataset``).

    python -m benchmark fetch --dataset kodak --out data/kodak
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from benchmark.config import ConfigError, load_config
from benchmark.data.dataset import fetch_dataset

DESCRIPTION = """\
Fetch the images of one data set (datasets.<NAME> in the params file) into OUT:
OUT/images/<name>.png (8-bit RGB PNGs), OUT/manifest.csv (name, file, height, width,
pixel_sha256, origin), OUT/skipped.csv (input files left out, with the reason) and
OUT/references/ (published RD curves listed under `references`). OUT is replaced as a
whole, only once everything has been fetched and verified. Files are taken from the
mirror directory (laid out as <host>/<url path>) when present, else downloaded."""


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments: ``--params``, ``--dataset``, ``--out``, ``--mirror``."""
    ap = argparse.ArgumentParser(
        prog="benchmark fetch", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    ap.add_argument("--dataset", required=True, metavar="NAME", help="a name under `datasets` in the params file")
    ap.add_argument("--out", required=True, metavar="DIR", help="data directory to (re)create")
    ap.add_argument(
        "--mirror",
        metavar="DIR",
        default=None,
        help="mirror directory (default: data.mirror in the params file, else $BENCHMARK_MIRROR, else none)",
    )
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns 0 and prints one summary line. ``ConfigError`` (bad params, unknown
    data set, missing mirror directory), ``DownloadError`` and ``ImageError`` propagate."""
    args = build_parser().parse_args(argv)
    cfg = load_config(args.params)
    dataset = cfg.dataset(args.dataset)
    mirror = cfg.mirror(args.mirror)
    if mirror is not None and not mirror.is_dir():
        raise ConfigError(f"mirror directory {mirror} does not exist (from --mirror, data.mirror or $BENCHMARK_MIRROR)")
    rows, skipped = fetch_dataset(dataset, args.out, mirror=mirror)
    line = f"fetch {dataset.name}: {len(rows)} images -> {args.out}, {len(skipped)} skipped"
    if skipped:
        line += " (" + ", ".join(f for f, _ in skipped) + ")"
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
