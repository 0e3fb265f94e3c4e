"""Ray as the executor of the evaluate stages and of the model stages (``ray`` in params.yaml).

**Evaluate** (``evaluate.executor: ray``): every image is one Ray task that codes it at all its
rate points with :func:`benchmark.evaluation.code_image`, exactly as a local worker process
does; the stage gathers the rows in manifest order, scores the perceptual metrics on its own
machine and writes the files itself, so DVC stays the only writer of outputs. The codec goes to
the object store once and is unpickled once per worker process (a learned codec then loads each
checkpoint once per process, lazily, as in the local pool). Images and checkpoints are read by
path: the data set and model directories must be on storage every node mounts at the same path
(README "Running on a Ray cluster"); a worker never downloads anything. The rows are the local
executor's but for the timing columns and ``device``, which names the node that coded the
image (``cpu: <CPU> on ray node <host>``).

Failures: a task whose worker process or node dies is run again by Ray (``ray.max_retries``);
its result is one object, so its rows appear once. A task that raises is not rerun: the stage
raises the task's own exception (a ``CodecError`` or ``ImageError`` naming the image, as the
local executor does), cancels the other tasks and writes nothing.

**Training** (:func:`run_stages`, ``python -m benchmark train-ray``): the commands of DVC
stages (by default every ``model`` and ``model-progressive`` stage of a dvc.yaml, i.e. one
run's budget) run as Ray tasks side by side, each with ``ray.train`` resources, in the project
directory on shared storage; each is the stage's own command, so a stage that dies resumes
from its ``.state`` when Ray reruns it, and the checkpoints are those of ``dvc repro``. DVC
records them when told: ``dvc commit`` of those stages (``--commit``).

Ray is an optional dependency (``pip install .[ray]``); it is imported only here, only when used.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections import deque
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

from benchmark.config import RayConfig
from benchmark.errors import BenchmarkError
from benchmark.provenance import device_description, devices_column

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None

RAY_REQUIREMENT = "ray>=2.40,<3"


class ExecutorError(BenchmarkError, RuntimeError):
    """Ray missing or unreachable, a task lost more often than ``ray.max_retries`` allows, or a
    stage command that failed; the message names the image or stage."""


def import_ray() -> Any:
    """The ``ray`` module; ``ExecutorError`` saying how to install it when it is absent."""
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            f"the ray executor needs Ray: pip install '.[ray]' (or pip install '{RAY_REQUIREMENT}')"
        ) from None
    return ray


class RayCluster:
    """A connection to the Ray cluster of ``settings`` (a context manager).

    On entry: reuses a connection this process already has, else ``ray.init`` with
    ``settings.address`` (``local``: a new Ray instance on this machine with
    ``settings.local_cpus`` CPUs, 0 = every core, no dashboard) and prints the cluster's nodes,
    CPUs and GPUs to stderr. On exit, shuts down only a connection it made. Raises
    ``ExecutorError`` if Ray is not installed or the cluster cannot be reached.
    """

    def __init__(self, settings: RayConfig) -> None:
        self.settings = settings
        self._started = False

    def __enter__(self) -> "RayCluster":
        ray = import_ray()
        if not ray.is_initialized():
            s = self.settings
            try:
                if s.address == "local":
                    ray.init(num_cpus=s.local_cpus or os.cpu_count() or 1, include_dashboard=False, logging_level="warning")
                else:
                    ray.init(address=s.address, logging_level="warning")
            except Exception as e:  # noqa: BLE001  (Ray raises plain Exception when its node does not start)
                raise ExecutorError(f"ray.address {s.address!r}: cannot start or reach the Ray cluster ({e})") from None
            self._started = True
        print(f"ray: {self.describe()}", file=sys.stderr)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._started:
            import_ray().shutdown()

    @staticmethod
    def describe() -> str:
        """``<n> node(s), <c> CPUs, <g> GPUs`` of the connected cluster (its total resources)."""
        ray = import_ray()
        total = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        return f"{nodes} node(s), {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs"

    def slots(self, cpus: float) -> int:
        """How many tasks of ``cpus`` CPUs the cluster runs at once (at least 1)."""
        return max(1, int(import_ray().cluster_resources().get("CPU", 1) // cpus))


# ---- evaluate: one task per image ----------------------------------------------------------

_WORKER_CODEC: Dict[str, Any] = {}  # this worker process's codec, by the key of the sweep that sent it


def _code_task(key: str, codec_box: list, code_fn: Callable, job: tuple, threads: int) -> Tuple[str, list, list, str, str]:
    """One image on a Ray worker: ``code_fn(codec, path, sha, rate_points, keep=keep)`` with
    torch on ``threads`` threads; returns (image name, rows, decoded images, host, device
    description). ``codec_box`` holds the codec's object reference (boxed in a list so that Ray
    does not fetch it for every task): it is fetched once per worker process and sweep."""
    import ray
    import torch

    if key not in _WORKER_CODEC:
        _WORKER_CODEC.clear()
        _WORKER_CODEC[key] = ray.get(codec_box[0])
    codec = _WORKER_CODEC[key]
    torch.set_num_threads(threads)
    row, path, rate_points, keep = job
    rows, recs = code_fn(codec, path, row.pixel_sha256, rate_points, keep=keep)
    return row.name, rows, recs, socket.gethostname(), device_description(codec.device)


def _cancel(ray: Any, refs: Sequence[Any]) -> None:
    for ref in refs:
        try:
            ray.cancel(ref)
        except Exception:  # noqa: BLE001  (already finished or gone: nothing to cancel)
            pass


def code_on_ray(
    cluster: RayCluster, codec: Any, jobs: List[tuple], code_fn: Callable, devices: Sequence[str]
) -> Iterator[Tuple[str, List[Dict[str, Any]], List[Any]]]:
    """(image name, rows, decoded images) per job of the evaluate stage, in job order, each job
    (``(manifest row, image path, rate points, keep)``) coded by one Ray task of
    ``cluster.settings.evaluate`` resources (a GPU share only when ``codec.device`` is CUDA).

    Each row gets the ``device`` column of where it ran: ``devices`` are the codec's and the
    metrics' devices (``benchmark.provenance.devices_column``), the coding one described on the
    worker with its host name. At most twice as many tasks as the cluster runs at once are ahead
    of the one consumed (results with decoded images do not pile up).

    Raises the task's own exception when a task raises (after cancelling the others), and
    ``ExecutorError`` naming the image when a task is lost more than ``ray.max_retries`` times
    or the codec needs a GPU that the settings do not request.
    """
    ray = import_ray()
    s = cluster.settings
    on_gpu = str(codec.device).startswith("cuda")
    if on_gpu and not s.evaluate.gpus:
        raise ExecutorError(
            f"the codec runs on {codec.device}: set ray.evaluate.gpus (the GPU share of one task, e.g. 0.25) "
            "so that Ray gives its tasks a GPU"
        )
    remote = ray.remote(_code_task).options(
        num_cpus=s.evaluate.cpus, num_gpus=s.evaluate.gpus if on_gpu else 0, max_retries=s.max_retries, retry_exceptions=False
    )
    key, box = uuid.uuid4().hex, [ray.put(codec)]
    threads = max(1, int(s.evaluate.cpus))
    window = 2 * cluster.slots(s.evaluate.cpus)
    pending: deque = deque()
    todo = iter(jobs)
    try:
        while True:
            while len(pending) < window:
                job = next(todo, None)
                if job is None:
                    break
                pending.append((job[0].name, remote.remote(key, box, code_fn, job, threads)))
            if not pending:
                return
            name, ref = pending.popleft()
            try:
                got_name, rows, recs, host, coding = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else None
                if cause is None:
                    raise
                raise cause from e
            except ray.exceptions.RayError as e:
                raise ExecutorError(
                    f"image {name}: its Ray task was lost ({type(e).__name__}) after {s.max_retries} retries "
                    f"(ray.max_retries): {e}"
                ) from None
            device = devices_column(devices, coding=f"{coding} on ray node {host}")
            for r in rows:
                r["device"] = device
            yield got_name, rows, recs
    finally:
        _cancel(ray, [ref for _, ref in pending])


# ---- training: DVC stages' commands as tasks ---------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover  (runs in the child, before exec)
    """Linux: the stage's process gets SIGKILL when the worker that started it dies, so that a
    rerun never races an orphan writing the same files."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _stage_task(name: str, cmd: str, wdir: str, threads: int) -> Tuple[str, int, str]:
    """Run one stage's command in ``wdir`` on a Ray worker, with the worker's Python first on
    PATH and ``threads`` OpenMP/torch threads; returns (stage, exit status, output tail). A
    plain command (the model stages') is run without a shell, so that it is the worker's own
    child and dies with it (Linux); one with shell syntax goes through ``sh -c``."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    plain = not any(c in cmd for c in "&|;<>()$`\\\"'*?\n")
    args = shlex.split(cmd) if plain else ["/bin/sh", "-c", cmd]
    if plain:
        args[0] = shutil.which(args[0], path=env["PATH"]) or args[0]
    out = subprocess.run(
        args, cwd=wdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    lines = [ln.rsplit("\r", 1)[-1] for ln in out.stdout.splitlines()]  # progress bars: their last state
    return name, out.returncode, "\n".join(lines[-20:])


def run_stages(cluster: RayCluster, stages: Sequence[Tuple[str, str, str]], progress: bool = True) -> List[str]:
    """Run ``stages`` ((name, shell command, working directory) each) as Ray tasks in parallel,
    each with ``cluster.settings.train`` resources (CPUs = its threads) and rerun by Ray when its
    worker dies (``ray.max_retries``); a progress bar counts the finished ones. Returns each
    stage's last output line, in the order given. Raises ``ExecutorError`` naming every stage
    that exited non-zero, with its output's tail, after the others have finished."""
    ray = import_ray()
    s = cluster.settings
    remote = ray.remote(_stage_task).options(
        num_cpus=s.train.cpus, num_gpus=s.train.gpus, max_retries=s.max_retries, retry_exceptions=False
    )
    threads = max(1, int(s.train.cpus))
    refs = {remote.remote(name, cmd, wdir, threads): name for name, cmd, wdir in stages}
    bar = tqdm(total=len(refs), desc="stages", unit="stage", disable=not progress, file=sys.stderr) if tqdm else None
    done: Dict[str, Tuple[int, str]] = {}
    waiting = list(refs)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        try:
            name, rc, tail = ray.get(ready[0])
        except ray.exceptions.RayError as e:
            name, rc, tail = refs[ready[0]], -1, f"its Ray task was lost after {s.max_retries} retries (ray.max_retries): {e}"
        done[name] = (rc, tail)
        if bar:
            bar.update()
            bar.set_postfix_str(f"{name} {'ok' if rc == 0 else 'FAILED'}")
    if bar:
        bar.close()
    failed = [n for n, _, _ in stages if done[n][0] != 0]
    if failed:
        details = "\n".join(f"--- {n} (exit {done[n][0]}):\n{done[n][1]}" for n in failed)
        raise ExecutorError(f"{len(failed)} of {len(stages)} stage(s) failed: {', '.join(failed)}\n{details}")
    return [(done[n][1].splitlines() or [""])[-1] for n, _, _ in stages]
