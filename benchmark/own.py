"""``python -m benchmark own``: your CompressAI checkpoints, or your images, against a run's codecs.

Two questions a researcher brings, answered with the run's own machinery (no edit of dvc.yaml or
params.yaml, nothing written outside ``--out``):

- **Your model on a data set the run has results for** (``--baseline``): your checkpoints
  (CompressAI's format, as ``python -m compressai.utils.eval_model checkpoint -a ARCH -p ...``
  reads them; one file per rate point) are turned into benchmark checkpoints
  (``benchmark.models.zoo.compressai_file_checkpoint``), coded into real bitstreams by the
  ``learned`` codec (container, padding, decode check, one coding thread) and scored by the
  evaluate stages' sweep (``benchmark.evaluation.run``) on the run's fetched images; the run's
  committed per-image rows are copied beside yours (a snapshot: the report in ``--out`` reads
  only ``--out``) after checking that they cover the same images at the same sizes.
- **Your images** (``--images``): the folder is read as the ``folder`` data set source reads it
  (8-bit RGB, skipped files listed), then the run's codecs code it (the classical ones, and the
  learned ones from their checkpoints with ``--checkpoints``), with your model if you give one.

Either way ``--out`` gets what the report stage writes for a data set (``benchmark.report``:
README.md, summary.csv, BD tables with intervals and wins, figures, metrics.json, CompressAI
JSON), with ``per_image/`` and ``perception/`` holding the rows it was made from. Your codec is
listed as "Yours" in the legends, with its parameter count, and gets extra BD comparisons:
against the run's codecs of the same architecture (``report.pairs``) and against the published
curve of that architecture (``report.published_counterparts`` of the codec named like it).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pandas as pd

from benchmark.analysis.origins import Origin, _millions, codec_origins
from benchmark.codecs import classical  # noqa: F401  (registers the classical codecs)
from benchmark.codecs import learned  # noqa: F401  (registers the learned codec)
from benchmark.codecs.base import build_codec
from benchmark.config import CodecConfig, Config, DatasetConfig, ReportConfig
from benchmark.data.dataset import fetch_dataset
from benchmark.data.images import read_manifest
from benchmark.errors import BenchmarkError
from benchmark.evaluation import build_parser as evaluate_parser
from benchmark.evaluation import run as evaluate_run
from benchmark.models.checkpoint import read_checkpoint
from benchmark.models.zoo import compressai_architectures, compressai_file_checkpoint
from benchmark.report import report
from benchmark.results import ResultsError, read_results

YOURS_GROUP = "Yours: your checkpoints"
"""The legend group of your codec in the figures."""

MAX_RATE_POINTS = len(learned.QUALITIES)
"""The most checkpoints one codec takes: the learned codec's quality indices 1..8."""


class OwnError(BenchmarkError, ValueError):
    """A bad request to ``own``: an output folder that would be overwritten, results that do not
    cover the same images, a codec that cannot be coded here; the message names the file."""


def prepare_out(out: Path, overwrite: bool) -> None:
    """Create ``out``; an existing folder with anything in it is refused unless ``overwrite``
    (then the files this command writes are replaced, others are left). Raises :class:`OwnError`."""
    if out.exists() and not out.is_dir():
        raise OwnError(f"{out}: --out exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OwnError(
            f"{out}: --out is not empty (results of an earlier run, or a committed results folder?); "
            f"choose another folder, or pass --overwrite to replace what this command writes there"
        )
    out.mkdir(parents=True, exist_ok=True)


def convert_checkpoints(arch: str, files: Sequence[Path], work: Path) -> Tuple[str, List[dict]]:
    """Your CompressAI checkpoint files as benchmark checkpoints ``work/q<k>.pt``, ``files[k-1]``
    being rate point (quality index) k; returns the codec's checkpoint template (with the field
    ``{rate_point}``) and the checkpoints' metadata (``arch``, ``size``, ``weights_file``,
    ``weights_sha256``, ...), in order. Raises :class:`OwnError` for an unknown architecture or
    more than ``MAX_RATE_POINTS`` files, and ``CompressAIWeightsError`` naming a file that does
    not load into ``arch``."""
    if arch not in compressai_architectures():
        raise OwnError(f"--arch {arch!r}: not a CompressAI architecture; choose one of {', '.join(compressai_architectures())}")
    if not 1 <= len(files) <= MAX_RATE_POINTS:
        raise OwnError(f"--checkpoint: give 1 to {MAX_RATE_POINTS} files (one per rate point), got {len(files)}")
    metas = []
    for k, f in enumerate(files, start=1):
        path = compressai_file_checkpoint(arch, f, work / f"q{k}.pt", k)
        metas.append({k: v for k, v in read_checkpoint(path).items() if k != "state_dict"})
    return str(work / "q{rate_point}.pt"), metas


def own_origin(arch: str, metas: Sequence[dict]) -> Origin:
    """How your codec was obtained, for the README and the legends: the architecture, each
    file with its SHA-256 prefix, and the parameter count."""
    from benchmark.analysis.origins import parameter_count

    files = ", ".join(f"q{m['rate_point']} `{m['weights_file']}` (sha256 {m['weights_sha256'][:12]})" for m in metas)
    detail = _millions([parameter_count(arch, m["size"]) for m in metas])
    return Origin(f"your checkpoints ({arch}, CompressAI format): {files}", family=arch, learned=True,
                  group=YOURS_GROUP, detail=detail)


def own_report_config(cfg: ReportConfig, name: str, arch: str, baseline_origins: Dict[str, Origin]) -> ReportConfig:
    """``cfg`` with your codec's extra comparisons: against each of the run's codecs of the same
    architecture (``pairs``), and against the published curve of the codec named like the
    architecture (``published_counterparts``), with a note saying what the two are."""
    pairs = cfg.pairs + tuple((name, c) for c, o in baseline_origins.items() if o.family == arch)
    counterparts, notes = dict(cfg.published_counterparts), dict(cfg.counterpart_notes)
    if arch in counterparts:
        counterparts[name] = counterparts[arch]
        notes[name] = f"yours: your checkpoints; published: {counterparts[arch]}, the published weights of the same architecture"
    return dataclasses.replace(cfg, pairs=pairs, published_counterparts=counterparts, counterpart_notes=notes)


def copy_baseline(codecs: Sequence[str], baseline: Path, perception: Optional[Path], data: Path,
                  out_rows: Path, out_perception: Path) -> str:
    """Copy the run's per-image rows ``baseline/<codec>.csv`` (and ``perception/<codec>.{csv,json}``
    where present) into ``out_rows`` and ``out_perception``, after checking that every codec's
    rows are there, for one data set, on exactly the images of ``data``'s manifest at the same
    sizes. Returns the data set's name (the rows' ``dataset``). Raises ``ResultsError`` for a
    missing or malformed file and :class:`OwnError` naming the files when the images differ."""
    manifest = {(r.name, r.height, r.width) for r in read_manifest(data)}
    names = set()
    for c in codecs:
        src = baseline / f"{c}.csv"
        if not src.is_file():
            raise ResultsError(
                f"{src}: missing; the run's codecs ({', '.join(codecs)}) come from --params, so give the params of the run "
                f"that wrote {baseline} (e.g. runs/<run>/params.yaml)"
            )
        df = read_results(src)
        names.update(df.dataset.unique())
        images = set(df[["image", "height", "width"]].drop_duplicates().itertuples(index=False, name=None))
        if images != manifest:
            extra, lacking = sorted(images - manifest)[:3], sorted(manifest - images)[:3]
            raise OwnError(
                f"{src} and {data / 'manifest.csv'} are not the same images (rows only: {extra or 'none'}; "
                f"manifest only: {lacking or 'none'}): compare on the data set the results were made from"
            )
        out_rows.mkdir(parents=True, exist_ok=True)
        if src.resolve() != (out_rows / src.name).resolve():
            shutil.copyfile(src, out_rows / src.name)
        for suffix in (".csv", ".json"):
            p = perception / f"{c}{suffix}" if perception is not None else None
            if p is not None and p.is_file() and p.resolve() != (out_perception / p.name).resolve():
                out_perception.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, out_perception / p.name)
    if len(names) != 1:
        raise OwnError(f"{baseline}: the rows name {len(names)} data sets ({', '.join(sorted(map(str, names)))}), expected one")
    return str(names.pop())


def _evaluate(cfg: Config, params: str, codec_name: str, codec, dataset: str, data: Path, out: Path,
              workers: Optional[int], mirror: Optional[str]) -> None:
    """The evaluate stages' sweep (``benchmark.evaluation.run``) for one codec of ``cfg``, writing
    ``out/per_image/<codec>.csv`` and ``out/perception/<codec>.{csv,json}``."""
    argv = [
        "--params", params, "--dataset", dataset, "--codec", codec_name, "--data", str(data),
        "--out", str(out / "per_image" / f"{codec_name}.csv"),
        "--set-out", str(out / "perception" / f"{codec_name}.csv"),
        "--status-out", str(out / "perception" / f"{codec_name}.json"),
    ]
    argv += ["--workers", str(workers)] if workers is not None else []
    argv += ["--mirror", mirror] if mirror else []
    evaluate_run(evaluate_parser("benchmark own", "").parse_args(argv), cfg, codec)


def _folder_data(images: Path, name: str, work: Path) -> Path:
    """Your image folder read as the ``folder`` data source reads it, into ``work/data``."""
    if not images.is_dir():
        raise OwnError(f"{images}: --images is not a folder")
    rows, skipped = fetch_dataset(DatasetConfig(name=name, source="folder", options={"path": str(images)}), work / "data",
                                  mirror=None)
    for f, why in skipped:
        print(f"own: skipped {f}: {why}", file=sys.stderr)
    if not rows:
        raise OwnError(f"{images}: no image could be read (see skipped above)")
    return work / "data"


def run_own(args: argparse.Namespace, cfg: Config) -> Dict[str, Path]:
    """The ``own`` command after parsing (see ``benchmark.stages.own``); returns what the
    report wrote. Raises :class:`OwnError`, ``ResultsError``, ``ConfigError`` (``benchmark.config``) and
    ``CompressAIWeightsError`` with messages naming the file or argument."""
    out: Path = args.out
    if bool(args.arch) != bool(args.checkpoint):
        raise OwnError("--arch and --checkpoint go together (your model's architecture and its checkpoint files)")
    run_codecs = list(cfg.evaluated_codecs())
    name = args.name or (f"{args.arch}-yours" if args.arch else None)
    if name is not None and name in cfg.codecs:
        raise OwnError(f"--name {name!r}: a codec of {cfg.source} has that name; choose another")
    if args.images is None and not args.checkpoint:
        raise OwnError("nothing to benchmark: give your checkpoints (--arch, --checkpoint), your images (--images), or both")
    prepare_out(out, args.overwrite)
    with tempfile.TemporaryDirectory(prefix="benchmark-own-") as tmp:
        work = Path(tmp)
        metas: List[dict] = []
        if args.checkpoint:  # first, so that a bad file fails before anything is coded
            template, metas = convert_checkpoints(args.arch, args.checkpoint, work / "checkpoints")
        if args.images is not None:
            dataset = args.dataset_name or args.images.resolve().name
            data = _folder_data(args.images, dataset, work)
            codecs = list(args.codecs) if args.codecs else [
                c for c in run_codecs if c in cfg.evaluate.codecs or (args.checkpoints and c not in cfg.evaluate.progressive)
            ]
            for c in codecs:
                _evaluate(cfg, args.params, c, _run_codec(cfg, c, args.checkpoints), dataset, data, out, args.workers,
                          args.mirror)
        else:
            if args.baseline is None or args.data is None:
                raise OwnError("give --data (the run's fetched data set) and --baseline (its per-image results), or --images")
            codecs = run_codecs
            dataset = copy_baseline(codecs, args.baseline, args.baseline_perception, args.data, out / "per_image",
                                    out / "perception")
            data = args.data
        origins = codec_origins(cfg, codecs)
        report_cfg = cfg.report
        if metas:
            options = {"model": name, "device": args.device}
            codec_cfg = CodecConfig(name=name, codec="learned", rate_points=tuple(range(1, len(metas) + 1)), options=options)
            own_cfg = dataclasses.replace(cfg, codecs={**cfg.codecs, name: codec_cfg})
            _evaluate(own_cfg, args.params, name, build_codec("learned", options, checkpoints=template), dataset, data, out,
                      args.workers, args.mirror)
            report_cfg = own_report_config(cfg.report, name, args.arch, origins)
            origins[name] = own_origin(args.arch, metas)
            codecs.append(name)
        return report(dataset, codecs, out / "per_image", data, out, report_cfg, out / "perception", cfg.metrics,
                      origins=origins)


def _run_codec(cfg: Config, name: str, checkpoints: Optional[str]):
    """The codec ``name`` of the run, built as its evaluate stage builds it (a learned codec from
    the checkpoint template ``checkpoints``). Raises :class:`OwnError` for a progressive codec,
    or a learned one without ``checkpoints``."""
    if name in cfg.evaluate.progressive:
        raise OwnError(f"--codecs: {name!r} is a progressive codec; code it through the pipeline (dvc.yaml)")
    c = cfg.codec(name)
    if c.codec == "learned" and not checkpoints:
        raise OwnError(f"--codecs: {name!r} is a learned codec; give the template of its checkpoints with --checkpoints")
    return build_codec(c.codec, c.options, **({"checkpoints": checkpoints} if c.codec == "learned" else {}))


def summary_lines(out: Path) -> List[str]:
    """What ``own`` prints at the end: the main BD-rates of every codec against the anchor (pchip,
    PSNR) from ``out/bd_rate.csv``, and where the report is."""
    bd = pd.read_csv(out / "bd_rate.csv")
    lines = [f"own: report in {out / 'README.md'}"]
    main = bd[(bd.anchor_kind == "ours") & (bd.method == "pchip") & (bd.metric == "psnr") & (bd.codec != bd.anchor)]
    for r in main.itertuples():
        value = f"{r.bd_rate_pct:+.1f} %" if pd.notna(r.bd_rate_pct) else f"n/a ({r.bd_rate_na_reason})"
        lines.append(f"  {r.codec} vs {r.anchor}, BD-rate PSNR (pchip): {value}")
    return lines
