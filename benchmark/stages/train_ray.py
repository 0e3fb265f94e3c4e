"""``python -m benchmark train-ray``: the model stages of one run as Ray tasks, side by side.

Not a DVC stage: it runs the commands of DVC stages (by default every ``model`` and
``model-progressive`` stage of ``--dvc-file``, i.e. the run's budget) on the Ray cluster of
``ray`` in ``--params`` (``benchmark.executors.run_stages``; each with ``ray.train`` CPUs and
GPUs), skipping those DVC reports up to date unless ``--force``. The commands come from DVC
itself (the stage's ``cmd`` and ``wdir`` as dvc.yaml resolves them), so the checkpoints are what
``dvc repro`` makes (CPU training is deterministic at a given thread count), and a stage whose
worker dies resumes from its ``.state`` when Ray reruns it. Then ``dvc commit`` of those stages
records the outputs in the lock file (``--commit`` does it), and ``dvc repro`` goes on from there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from benchmark.config import ConfigError, load_config
from benchmark.executors import ExecutorError, RayCluster, run_stages

DEFAULT_STAGES = ("model", "model-progressive")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark train-ray",
        description="Run the model stages of a DVC pipeline as Ray tasks in parallel (resources: ray.train in "
        "params.yaml), then optionally `dvc commit` them. Run it from the project root on a machine of the cluster.",
    )
    p.add_argument("--params", default="params.yaml", help="params file, or a run overlay (reads the ray section)")
    p.add_argument("--dvc-file", default="dvc.yaml", help="the pipeline whose stages to run (a run's: runs/<run>/dvc.yaml)")
    p.add_argument(
        "stages", nargs="*",
        help=f"stage names or groups of --dvc-file (default: {' '.join(DEFAULT_STAGES)}, every rate point of the run's budget)",
    )
    p.add_argument("--force", action="store_true", help="run the stages even when DVC reports them up to date")
    p.add_argument("--commit", action="store_true", help="`dvc commit` the stages once all have succeeded")
    p.add_argument("--no-progress", action="store_true")
    return p


def collect(dvc_file: str, names: Sequence[str], force: bool) -> List[Tuple[str, str, str]]:
    """(stage address, command, working directory) of the stages ``names`` of ``dvc_file``
    (DVC's own resolution of dvc.yaml: matrix items expanded, params templates filled), only
    those DVC reports changed unless ``force``. Raises ``ConfigError`` for an unknown stage."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    repo = Repo()
    stages = []
    for name in names:
        target = name if dvc_file == "dvc.yaml" else f"{dvc_file}:{name}"
        try:
            stages += repo.stage.collect(target)
        except DvcException as e:
            raise ConfigError(f"{dvc_file}: no stage or group {name!r} ({e})") from None
    if not force:
        stale = repo.status(targets=[s.addressing for s in stages])
        stages = [s for s in stages if s.addressing in stale]
    return [(s.addressing, s.cmd if isinstance(s.cmd, str) else " && ".join(s.cmd), s.wdir) for s in stages]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.params)
    if not Path(args.dvc_file).is_file():
        raise ConfigError(f"{args.dvc_file}: no such pipeline file (run from the project root)")
    stages = collect(args.dvc_file, args.stages or DEFAULT_STAGES, args.force)
    if not stages:
        print("train-ray: every stage is up to date (--force runs them anyway)")
        return 0
    print(f"train-ray: {len(stages)} stage(s): {', '.join(n for n, _, _ in stages)}", file=sys.stderr)
    with RayCluster(cfg.ray) as cluster:
        lines = run_stages(cluster, stages, progress=not args.no_progress)
    for (name, _, _), line in zip(stages, lines):
        print(f"{name}: {line}")
    names = [n for n, _, _ in stages]
    if args.commit:
        out = subprocess.run([sys.executable, "-m", "dvc", "commit", "--force", *names], capture_output=True, text=True)
        if out.returncode != 0:
            raise ExecutorError(f"dvc commit failed (exit {out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        print(f"train-ray: committed {len(names)} stage(s) to the lock file")
    else:
        print("train-ray: record the outputs with: dvc commit --force " + " ".join(names))
    return 0
