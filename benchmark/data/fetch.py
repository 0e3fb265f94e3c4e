"""DVC stage ``fetch``: build the data directory of one ``datasets.<name>`` entry.

    python -m benchmark.data.fetch --dataset kodak --out data/kodak
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from benchmark.config import ConfigError, load_dataset, read_params, resolve_mirror
from benchmark.data.sources import fetch_dataset

DESCRIPTION = """\
Fetch the images of one data set (datasets.<NAME> in the params file) into OUT:
OUT/images/<name>.png (8-bit RGB PNGs), OUT/manifest.csv (name, file, height, width,
pixel_sha256, origin), OUT/skipped.csv (input files left out, with the reason) and
OUT/references/ (published RD curves listed under `references`). OUT is replaced as a
whole, only once everything has been fetched and verified. Files are taken from the
mirror directory (laid out as <host>/<url path>) when present, else downloaded."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the stage; returns 0. ``ConfigError`` and ``DownloadError`` propagate to the caller."""
    ap = argparse.ArgumentParser(prog="benchmark fetch", description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    ap.add_argument("--dataset", required=True, metavar="NAME", help="a name under `datasets` in the params file")
    ap.add_argument("--out", required=True, metavar="DIR", help="data directory to (re)create")
    ap.add_argument("--mirror", metavar="DIR", default=None,
                    help="mirror directory (default: data.mirror in the params file, "
                         "else $BENCHMARK_MIRROR, else none)")
    args = ap.parse_args(argv)

    params = read_params(args.params)
    cfg = load_dataset(params, args.dataset, source=args.params)
    mirror = resolve_mirror(params, args.mirror)
    if mirror is not None and not mirror.is_dir():
        raise ConfigError(f"mirror directory {mirror} does not exist (from --mirror, data.mirror or $BENCHMARK_MIRROR)")
    rows, skipped = fetch_dataset(cfg, args.out, mirror=mirror)
    line = f"fetch {cfg.name}: {len(rows)} images -> {args.out}, {len(skipped)} skipped"
    if skipped:
        line += " (" + ", ".join(f for f, _ in skipped) + ")"
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
