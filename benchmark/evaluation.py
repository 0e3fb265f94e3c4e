"""The evaluate stages' sweep: one codec on one data set, every image at every rate point.

Each (image, rate point) is encoded to real bytes, decoded from those bytes alone, and scored
centrally (PSNR, MS-SSIM) against the original 8-bit image. Perceptual metrics
(``benchmark.metrics.suite``: LPIPS, DISTS, HaarPSI per image; FID/KID over the HiFiC patches of
all images per rate point) are computed in the main process, batched over an image's rate points
on ``metrics.device``, as the decoded images come back; a metric whose weights are missing is
recorded as missing (``--status-out``) and its column left NaN. Images are processed in parallel
worker processes (one thread each), except for codecs with ``in_process`` (torch models),
which run in the main process one image after another with torch using all threads (for the
metrics and model estimates; the learned codec pins its own entropy coding to one thread so that
its bitstreams do not depend on the thread count, see ``benchmark.codecs.learned``). The output
is a tidy CSV, one row per (image, rate point), written atomically; see ``benchmark.results``.
The stage entry points are ``benchmark.stages.evaluate`` (classical codecs),
``benchmark.stages.evaluate_learned`` and ``benchmark.stages.evaluate_progressive`` (codecs over
checkpoints, through :func:`checkpoint_main`: each imports only its own codec module).

Two checks come with every row: ``decode_check`` compares the pixels decoded here with the
encoder's own decode of the same bytes (codecs that report one, see ``Encoded``): "ok",
"mismatch" (a warning naming the image and rate point is printed, the row is kept, and the
final summary counts mismatches), "n/a", or "failed": the codec's ``decode`` raised
``DecodeError`` on its own bytes (e.g. an image beyond params.yaml's ``decode`` limits): the row
keeps the size and bytes, its metrics are NaN, a warning names the image, rate point and reason,
and the sweep goes on; the ``check`` stage reports such rows. ``bpp_estimated`` is the model's own estimate of the
rate (NaN for codecs without a model); ``bpp`` is always measured from the bytes. Before any
coding, no evaluation image may be among the training images of the checkpoint that would code
it (``TrainingLeakError``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import resource
import signal
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from benchmark.codecs.base import CODECS, Codec, CodecError, DecodeError, TrainingLeakError, build_codec
from benchmark.config import Config, ConfigError, load_config
from benchmark.data.images import ImageError, ManifestRow, load_rgb8, pixel_sha256, read_manifest
from benchmark.executors import RayCluster, code_on_ray
from benchmark.fileio import write_text_atomic
from benchmark.metrics.base import per_image_metrics, set_table_columns
from benchmark.metrics.distortion import distortion_metrics
from benchmark.metrics.suite import PerceptualSuite, missing_summary
from benchmark.provenance import provenance
from benchmark.results import result_columns, write_csv_atomic

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


_CODEC: Optional[Codec] = None  # the codec of this worker process, set once by _worker_init


_TIMEOUT_S: Optional[float] = None  # this worker's limit per image (wall seconds), set by _worker_init


class ImageTimeout(Exception):
    """An image took longer than ``evaluate.image_timeout_s`` in a worker process."""


def _worker_init(codec: Optional[Codec] = None, memory_bytes: Optional[int] = None, timeout_s: Optional[float] = None) -> None:
    """A worker process: one torch thread, and the codec it codes with (sent once, so that a
    learned codec loads each checkpoint once per process, not once per image). With
    ``memory_bytes``, the process's address space is capped there (``RLIMIT_AS``: an allocation
    beyond it fails with ``MemoryError``, or torch's allocation error, instead of the machine
    running out); with ``timeout_s``, each image is interrupted after that many seconds
    (``ImageTimeout``, raised when the running call returns to Python)."""
    import torch

    global _CODEC, _TIMEOUT_S
    torch.set_num_threads(1)
    _CODEC = codec
    _TIMEOUT_S = timeout_s
    if memory_bytes is not None:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            memory_bytes = min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))


def code_image(
    codec: Codec,
    image_path: str,
    expected_sha: str,
    rate_points: Sequence[float],
    on_rate_point: Optional[Callable[[float], None]] = None,
    keep: Union[bool, str] = False,
) -> Tuple[List[Dict[str, Any]], List[Any]]:
    """Encode/decode one image at every rate point: one row per rate point (size, bytes, bpp,
    the distortion metrics, seconds, checks) and, with ``keep``, the decoded images (uint8
    (H, W, 3), one per rate point, in order; else []) for the perceptual metrics. ``keep`` a
    folder (str): each decoded image is written there as a ``.npy`` file as soon as it is
    decoded and its path is returned instead (``load_kept`` reads it back), so that a worker
    holds one decoded image at a time and sends back paths, not pixels.

    ``encode_s`` is the encoder's own time for the bytes (``Encoded.encode_s``) when the codec
    reports it, else the wall time of ``encode_verbose``; ``decode_s`` the wall time of
    ``decode`` (seconds). ``decode_check`` is "ok", "mismatch" or "n/a"; ``bpp_estimated`` is
    ``estimated_bits / (H * W)`` or NaN. ``on_rate_point(rp)`` is called before each rate point.

    Raises ``CodecError`` naming the image and rate point if a codec fails or returns an image
    of the wrong shape/dtype, and ``ImageError`` if the image's pixels differ from the manifest.
    """
    image = load_rgb8(image_path)
    if pixel_sha256(image) != expected_sha:
        raise ImageError(f"{image_path}: pixels differ from the manifest (data set changed since fetch?)")
    rows, recs = [], []
    for rp in rate_points:
        if on_rate_point is not None:
            on_rate_point(rp)
        row, rec = _code_at(codec, image, image_path, rp)
        rows.append(row)
        if isinstance(keep, str) and rec is not None:
            recs.append(_spill(rec, keep))
        elif keep:
            recs.append(rec)
    return rows, recs


def _spill(rec: np.ndarray, folder: str) -> str:
    """Write ``rec`` to a new ``.npy`` file in ``folder``; returns its path."""
    fd, path = tempfile.mkstemp(suffix=".npy", dir=folder)
    with os.fdopen(fd, "wb") as f:
        np.save(f, rec, allow_pickle=False)
    return path


def load_kept(rec: Any) -> Optional[np.ndarray]:
    """A decoded image as ``code_image`` kept it: the array itself, None (a failed decode), or
    the path of its spilled ``.npy`` file (read memory-mapped, read-only)."""
    if isinstance(rec, str):
        return np.load(rec, mmap_mode="r", allow_pickle=False)
    return rec


def _code_at(codec: Codec, image: np.ndarray, image_path: str, rp: float) -> Tuple[Dict[str, Any], Optional[np.ndarray]]:
    """One rate point of :func:`code_image`: its row and the decoded image (None, and the row's
    ``decode_check`` "failed" with NaN metrics, if ``decode`` raised ``DecodeError``)."""
    h, w, _ = image.shape
    t0 = time.perf_counter()
    try:
        enc = codec.encode_verbose(image, rp)
        t1 = time.perf_counter()
        data = bytes(enc.data)
        try:
            rec = codec.decode(data)
        except DecodeError as e:
            failed = _failed_row(image, data, rp, enc, t1 - t0, time.perf_counter() - t1)
            return {**failed, "failure": f"decode failed: {e}"}, None
        t2 = time.perf_counter()
    except CodecError as e:
        raise CodecError(f"{image_path} at rate point {rp}: {e}") from e
    if rec.shape != image.shape or rec.dtype != image.dtype:
        raise CodecError(f"{image_path} at rate point {rp}: decoded {rec.dtype}{rec.shape}, expected uint8{image.shape}")
    if enc.reconstruction_sha256 is None:
        check = "n/a"
    else:
        check = "ok" if pixel_sha256(rec) == enc.reconstruction_sha256 else "mismatch"
    row = {
        "rate_point": rp,
        "height": h,
        "width": w,
        "bytes": len(data),
        "bpp": 8.0 * len(data) / (h * w),
        **distortion_metrics(image, rec),
        "encode_s": enc.encode_s if enc.encode_s is not None else t1 - t0,
        "decode_s": t2 - t1,
        "bpp_estimated": enc.estimated_bits / (h * w) if enc.estimated_bits is not None else math.nan,
        "decode_check": check,
    }
    return row, rec


def _failed_row(image: np.ndarray, data: bytes, rp: float, enc, encode_s: float, decode_s: float) -> Dict[str, Any]:
    """The row of a rate point whose decode failed: sizes and times, NaN metrics, "failed"."""
    h, w, _ = image.shape
    return {
        "rate_point": rp, "height": h, "width": w, "bytes": len(data), "bpp": 8.0 * len(data) / (h * w),
        **{m.name: math.nan for m in per_image_metrics("distortion")},
        "encode_s": enc.encode_s if enc.encode_s is not None else encode_s, "decode_s": decode_s,
        "bpp_estimated": enc.estimated_bits / (h * w) if enc.estimated_bits is not None else math.nan,
        "decode_check": "failed",
    }


def check_training_leak(codec: Codec, rate_points: Sequence[float], manifest: Sequence[ManifestRow]) -> None:
    """Raise ``TrainingLeakError`` naming the image and the checkpoint if any image of
    ``manifest`` is among the training images of the model ``codec`` uses at any of
    ``rate_points`` (``Codec.training_image_hashes``; codecs without a model have none)."""
    for rp in rate_points:
        hashes = codec.training_image_hashes(rp)
        for row in manifest:
            if row.pixel_sha256 in hashes:
                source = codec.model_source(rp) or f"the model at {type(codec).rate_param}={rp}"
                raise TrainingLeakError(
                    f"image {row.name!r} ({row.file}) is one of the training images of {source}: "
                    "a model must never be evaluated on an image it was trained on"
                )


def _run_one(args):
    row, path, rate_points, keep = args
    if _TIMEOUT_S is None:
        return (row.name, *code_image(_CODEC, path, row.pixel_sha256, rate_points, keep=keep))

    def expire(signum, frame):
        raise ImageTimeout(f"more than evaluate.image_timeout_s = {_TIMEOUT_S:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, _TIMEOUT_S)
    try:
        return (row.name, *code_image(_CODEC, path, row.pixel_sha256, rate_points, keep=keep))
    except ImageTimeout as e:
        return (row.name, failed_rows(row, rate_points, f"timed out: {e}"), [])
    except Exception as e:  # noqa: BLE001  (only memory errors are kept; the rest propagate)
        if not _out_of_memory(e):
            raise
        return (row.name, failed_rows(row, rate_points, f"out of memory ({type(e).__name__}: {e})"), [])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _out_of_memory(e: BaseException) -> bool:
    """True if ``e`` or an exception it chains is a failed allocation (``MemoryError``, or
    torch's CPU allocator error, which is a ``RuntimeError``)."""
    while e is not None:
        if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e)):
            return True
        e = e.__cause__ or e.__context__
    return False


def failed_rows(row: ManifestRow, rate_points: Sequence[float], reason: str) -> List[Dict[str, Any]]:
    """The rows of an image that could not be coded or scored: one per rate point, with its size,
    NaN for every measure, ``decode_check`` "failed" and ``failure`` the reason (one line)."""
    return [
        {"rate_point": rp, "height": row.height, "width": row.width, "bytes": math.nan, "bpp": math.nan,
         "encode_s": math.nan, "decode_s": math.nan, "bpp_estimated": math.nan, "decode_check": "failed",
         "failure": reason.replace("\n", " ")}
        for rp in rate_points
    ]


class _NoResult(Exception):
    """The oldest job of a pool gave no result in time (its worker hangs outside Python)."""


def _in_order(
    pool: ProcessPoolExecutor, fn: Callable, jobs: Iterable, window: int,
    cost: Optional[Callable[[Any], float]] = None, budget: Optional[float] = None, timeout: Optional[float] = None,
) -> Iterator:
    """``pool.map(fn, jobs)`` with at most ``window`` jobs submitted and not yet consumed, so
    that results carrying decoded images do not pile up in memory. Results come in job order.

    With ``cost`` and ``budget`` (bytes), a job is submitted only while the costs of the jobs
    submitted and not consumed stay within ``budget`` (always at least one job). With
    ``timeout`` (seconds), a job with no result that long after it was submitted raises
    ``_NoResult``."""
    pending: deque = deque()
    in_use = 0.0

    def oldest():
        future, c, t0 = pending.popleft()
        nonlocal in_use
        in_use -= c
        try:
            return future.result(timeout=None if timeout is None else max(0.0, t0 + timeout - time.monotonic()))
        except FutureTimeout:
            raise _NoResult() from None

    for job in jobs:
        c = cost(job) if cost is not None else 0.0
        while pending and (len(pending) >= window or (budget is not None and in_use + c > budget)):
            yield oldest()
        pending.append((pool.submit(fn, job), c, time.monotonic()))
        in_use += c
    while pending:
        yield oldest()


def _coded(
    codec: Codec, jobs: List[tuple], n_workers: int, show: Callable[[float], None],
    cluster: Optional[RayCluster] = None, devices: Sequence[str] = (), limits: Optional["ImageLimits"] = None,
) -> Iterator[tuple]:
    """(image name, rows, decoded images) per job, in job order: one Ray task per image on
    ``cluster`` (rows with the ``device`` of where they ran, ``devices`` as in ``_devices``),
    else in this process with torch on ``n_workers`` threads for ``in_process`` codecs, else in
    ``n_workers`` worker processes of one thread each (serially for one worker or one image; with
    ``limits``, always in worker processes, under those limits, as many at once as their memory
    budget allows)."""
    if cluster is not None:
        yield from code_on_ray(cluster, codec, jobs, code_image, devices)
    elif codec.in_process:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(n_workers)
        try:
            for row, path, rps, keep in jobs:
                yield (row.name, *code_image(codec, path, row.pixel_sha256, rps, on_rate_point=show, keep=keep))
        finally:
            torch.set_num_threads(threads)
    elif limits is not None:
        yield from _limited(codec, jobs, n_workers, limits)
    elif n_workers == 1 or len(jobs) == 1:
        _worker_init(codec)
        yield from map(_run_one, jobs)
    else:
        with ProcessPoolExecutor(max_workers=min(n_workers, len(jobs)), initializer=_worker_init, initargs=(codec,)) as pool:
            yield from _in_order(pool, _run_one, jobs, window=2 * n_workers)


def _limited(codec: Codec, jobs: List[tuple], n_workers: int, limits: "ImageLimits") -> Iterator[tuple]:
    """``_coded`` in worker processes under ``limits``. A worker that dies (a signal, the memory
    cap hit inside a library) or hangs past twice the timeout breaks its pool: the oldest job
    not yet returned is then run again alone in a fresh worker, becomes failed rows if it fails
    again, and the sweep goes on with a fresh pool from the next job."""
    init = (codec, limits.memory_bytes, limits.timeout_s)
    cost = lambda job: limits.estimate(job[0])  # noqa: E731
    done = 0
    while done < len(jobs):
        pool = ProcessPoolExecutor(max_workers=min(n_workers, len(jobs) - done), initializer=_worker_init, initargs=init)
        try:
            for result in _in_order(pool, _run_one, jobs[done:], window=2 * n_workers, cost=cost,
                                    budget=limits.budget_bytes, timeout=2 * limits.timeout_s):
                done += 1
                yield result
        except (BrokenProcessPool, _NoResult) as e:
            _stop(pool)
            yield _alone(jobs[done], init, limits, "hung" if isinstance(e, _NoResult) else "died")
            done += 1
        except Exception as e:  # noqa: BLE001 - e.g. a MemoryError pickling the result in the worker
            if not _out_of_memory(e):
                raise
            _stop(pool)
            yield _failed_job(jobs[done], f"out of memory ({type(e).__name__}: {e})")
            done += 1
        finally:
            _stop(pool)


def _alone(job: tuple, init: tuple, limits: "ImageLimits", what: str) -> tuple:
    """``_run_one(job)`` in a fresh worker of its own; failed rows if that worker dies or hangs too."""
    pool = ProcessPoolExecutor(max_workers=1, initializer=_worker_init, initargs=init)
    try:
        return pool.submit(_run_one, job).result(timeout=2 * limits.timeout_s)
    except BrokenProcessPool:
        reason = "the worker process died (a crash, or the memory limit hit inside a library)"
    except FutureTimeout:
        reason = f"no result after {2 * limits.timeout_s:g} s (the worker hung outside Python and was stopped)"
    finally:
        _stop(pool)
    return _failed_job(job, reason)


def _failed_job(job: tuple, reason: str) -> tuple:
    """A job's result as failed rows, with a warning naming the image and ``reason``."""
    row, _path, rate_points, _keep = job
    print(f"WARNING: image {row.name}: {reason}; its rows are failed", file=sys.stderr)
    return row.name, failed_rows(row, rate_points, reason), []


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut ``pool`` down without waiting, killing its worker processes (a hung one included)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join()


WORKER_BASE_BYTES = 0.6e9  # a worker: Python, torch, the codec libraries (0.31 GB RSS) + a margin (0.29 GB)
ADDRESS_HEADROOM_BYTES = 1e9  # address space a torch process maps beyond what it uses (0.67 GB VmSize at 0.31 GB RSS)
# PSNR and MS-SSIM in a worker: exact MSE and MS-SSIM in strips of rows, holding whole only the
# 2x-downsampled float32 images (the distortion metrics' peak grew by 54 bytes per added pixel in
# tests/test_metrics.py's 1 -> 4 MP test, the test's own arrays included; rounded up)
DISTORTION_BYTES_PER_PIXEL = 60.0
PERCEPTION_BYTES_PER_PIXEL = 110.0  # the main process scoring HaarPSI on one image (piq: measured 102 bytes/px)


def available_memory_bytes() -> Optional[int]:
    """The memory the machine can give without swapping, in bytes: psutil's
    ``virtual_memory().available`` when psutil is installed, else ``MemAvailable`` of
    ``/proc/meminfo``; None where neither is readable."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def image_memory_estimate(codec: Codec, height: int, width: int) -> float:
    """Estimated peak resident bytes of a worker process coding and scoring one image of
    ``height`` x ``width`` pixels: ``WORKER_BASE_BYTES + (codec.memory_per_pixel +
    DISTORTION_BYTES_PER_PIXEL) * height * width`` (``Codec.memory_per_pixel``, measured per codec;
    coding and scoring peak at different times, so the sum errs on the safe side)."""
    return WORKER_BASE_BYTES + (float(codec.memory_per_pixel) + DISTORTION_BYTES_PER_PIXEL) * height * width


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    """Limits of the worker processes of one sweep (``evaluate.image_memory_gb``,
    ``evaluate.image_timeout_s``): ``memory_bytes`` caps each worker's address space (None: no
    cap), ``timeout_s`` each image's wall time (all rate points), and ``budget_bytes`` the sum of
    the estimates (``image_memory_estimate``) of the images coded at once (None: no budget);
    ``per_pixel`` is the codec's ``memory_per_pixel``."""

    memory_bytes: Optional[int]
    timeout_s: float
    budget_bytes: Optional[float]
    per_pixel: float

    def estimate(self, row: ManifestRow) -> float:
        """``image_memory_estimate`` of the image of ``row``, in bytes."""
        return WORKER_BASE_BYTES + self.per_pixel * row.height * row.width


def plan_limits(
    codec: Codec, manifest: Sequence[ManifestRow], n_workers: int, n_rate_points: int, *, memory_gb: Optional[float],
    timeout_s: float, available: Optional[int], keep: bool,
) -> Tuple[ImageLimits, List[str]]:
    """The limits of a sweep and the lines that say what it will need (printed before it starts).

    The main process holds, per image in flight, its decoded images for the perceptual metrics
    (``keep``: 3 bytes per pixel per rate point, at most ``2 * n_workers`` images) and scores
    one image at a time (``PERCEPTION_BYTES_PER_PIXEL``); the rest of the available memory
    (90 % of ``available`` bytes) is the workers' budget. The lines give
    the largest image's estimate per worker, what ``n_workers`` at once would need, and, where
    that does not fit, how many images will run at once, or (a line starting with ``WARNING``)
    that even one image may not fit. ``memory_gb`` (None: ``available`` plus
    ``ADDRESS_HEADROOM_BYTES``) caps each worker's address space.
    """
    largest = max(manifest, key=lambda r: r.height * r.width)
    px = largest.height * largest.width
    per_image = image_memory_estimate(codec, largest.height, largest.width)
    main = px * (3.0 * n_rate_points * 2 * n_workers + PERCEPTION_BYTES_PER_PIXEL) if keep else 0.0
    gb = 1e9
    lines = [
        f"memory: the largest image, {largest.name} ({largest.width}x{largest.height}, {px / 1e6:.1f} MP), needs about "
        f"{per_image / gb:.2f} GB in a worker ({codec.memory_per_pixel:g} + {DISTORTION_BYTES_PER_PIXEL:g} bytes/px + {WORKER_BASE_BYTES / gb:.2f} GB); "
        f"{n_workers} worker(s) at once: {n_workers * per_image / gb:.2f} GB"
        + (f" + {main / gb:.2f} GB in the main process (decoded images, perceptual metrics)" if main else "")
        + (f"; available: {available / gb:.2f} GB" if available is not None else "; available memory unknown")
    ]
    budget = None
    if available is not None:
        budget = max(0.0, 0.9 * available - main)
        if per_image > budget:
            lines.append(
                f"WARNING: image {largest.name} alone needs about {per_image / gb:.2f} GB, more than the "
                f"{budget / gb:.2f} GB available to the workers: it may fail (a failed row) or swap; images run one at a time"
            )
        elif n_workers * per_image > budget:
            lines.append(
                f"memory: that does not fit; images of this size run {max(1, int(budget // per_image))} at a time "
                f"(the estimates of the images in flight are kept within {budget / gb:.2f} GB)"
            )
    if memory_gb is not None:
        cap: Optional[int] = int(memory_gb * gb)
    else:
        cap = None if available is None else int(available + ADDRESS_HEADROOM_BYTES)
    return ImageLimits(cap, float(timeout_s), budget, float(codec.memory_per_pixel)), lines


def _score_perception(perception: PerceptualSuite, ref_path: str, rows: List[Dict[str, Any]], recs: List[Any]) -> None:
    """Add the per-image perception metrics to ``rows`` and the image's patches to the per-set
    features (images must come in manifest order)."""
    ref = load_rgb8(ref_path)
    decoded = [i for i, rec in enumerate(recs) if rec is not None]  # a failed decode's row keeps NaN
    rows, recs = [rows[i] for i in decoded], [load_kept(recs[i]) for i in decoded]
    scores = perception.score_image(ref, recs)
    for i, r in enumerate(rows):
        r.update({name: float(values[i]) for name, values in scores.items()})
    perception.add_patches(ref, [(r["rate_point"], rec) for r, rec in zip(rows, recs)])


def _remove_spilled(recs: Sequence[Any]) -> None:
    for rec in recs:
        if isinstance(rec, str):
            with contextlib.suppress(OSError):
                os.unlink(rec)


def evaluate(
    codec_name: str,
    codec: Codec,
    rate_points: Sequence[float],
    manifest: Sequence[ManifestRow],
    data_dir: Path,
    dataset: str,
    params_hash: str,
    workers: int = 0,
    progress: bool = True,
    perception: Optional[PerceptualSuite] = None,
    params_files: Sequence[Path] = (),
    cluster: Optional[RayCluster] = None,
    limits: Optional[ImageLimits] = None,
) -> pd.DataFrame:
    """Run ``codec`` over all images of ``manifest``; returns the tidy result table
    (``benchmark.results.result_columns()``).

    ``workers``: worker processes (0 = one per CPU core); for ``in_process`` codecs, the number
    of torch threads in the main process instead (restored afterwards). Each "mismatch" of the
    decode check prints a warning line to stderr naming the image and rate point. Raises
    ``TrainingLeakError`` before coding anything if an image is a training image of the model.

    ``perception``: if given, the decoded images come back to this process (at most
    ``2 * workers`` images' worth in flight; from local workers under ``limits`` as the paths
    of ``.npy`` files in a temporary folder, written as each is decoded, read memory-mapped and
    deleted once scored) and are scored there, image by image in manifest order: the
    per-image perception columns (NaN for metrics the suite does not compute) and the suite's
    per-set features (read them with ``set_rows()``). Without it, those columns
    are NaN. ``params_files``: the params files read (for the git revision's dirty flag).
    ``cluster``: code on this Ray cluster instead (``benchmark.executors``: one task per image;
    ``workers`` is then unused; the rows differ only in the timing and ``device`` columns).

    ``limits`` (from ``plan_limits``): code in worker processes under those limits, as many
    images at once as fit in its memory budget; an image that runs out of memory, times out or
    kills its worker becomes failed rows (``failed_rows``: ``decode_check`` "failed", NaN
    measures), a warning naming the image and the reason is printed, and the sweep goes on.
    Without it, any error stops the sweep.
    """
    n_workers = workers or os.cpu_count() or 1
    check_training_leak(codec, rate_points, manifest)
    keep: Union[bool, str] = perception is not None
    spill = None
    if keep and limits is not None and cluster is None:
        # Local worker processes send back the paths of their decoded images, not the pixels
        # (which a worker would otherwise hold all at once and copy to pickle them).
        spill = tempfile.TemporaryDirectory(prefix="evaluate-decoded-")
        keep = spill.name
    jobs = [(row, str(data_dir / row.file), list(rate_points), keep) for row in manifest]
    bar = tqdm(total=len(jobs), desc=f"{dataset}/{codec_name}", unit="img", disable=not progress, file=sys.stderr) if tqdm else None
    rate_param = type(codec).rate_param

    def show(rp: float) -> None:
        if bar:
            bar.set_postfix_str(f"{rate_param}={rp:g}")

    by_image: Dict[str, List[Dict[str, Any]]] = {}
    paths = {row.name: str(data_dir / row.file) for row in manifest}
    try:
        for name, rows, recs in _coded(codec, jobs, n_workers, show, cluster, _devices(codec, perception), limits):
            try:
                if perception is not None and recs:
                    _score_perception(perception, paths[name], rows, recs)
            finally:
                _remove_spilled(recs)
            by_image[name] = rows
            if bar:
                bar.update()
    finally:
        if spill is not None:
            spill.cleanup()
    if bar:
        bar.close()
    return _table(codec_name, codec, manifest, by_image, dataset, params_hash, perception, params_files)


def _devices(codec: Codec, perception: Optional[PerceptualSuite]) -> List[str]:
    """The devices of the ``device`` column: the codec's, then the perceptual metrics'."""
    return [codec.device] + ([str(perception.device)] if perception is not None else [])


def _table(codec_name, codec, manifest, by_image, dataset, params_hash, perception, params_files) -> pd.DataFrame:
    """The result rows in manifest order with keys and provenance (a row's own ``device``, where
    it ran on a Ray cluster, kept); warns on each mismatch and each failed row (their image, rate
    point and reason are in ``df.attrs["failures"]``)."""
    rate_param = type(codec).rate_param
    prov = provenance(params_hash, codec.library_version(), _devices(codec, perception), params_files)
    records, failures = [], []
    for row in manifest:
        for r in by_image[row.name]:
            if r["decode_check"] == "failed":
                failures.append({"image": row.name, "rate_point": r["rate_point"], "reason": r.get("failure", "?")})
                print(
                    f"WARNING: {dataset}/{codec_name}: image {row.name} FAILED at {rate_param}={r['rate_point']}: {failures[-1]['reason']}",
                    file=sys.stderr,
                )
            if r["decode_check"] == "mismatch":
                print(
                    f"WARNING: {dataset}/{codec_name}: decode check MISMATCH for image {row.name} at "
                    f"{rate_param}={r['rate_point']}: the pixels decoded here differ from the encoder's",
                    file=sys.stderr,
                )
            records.append({"dataset": dataset, "codec": codec_name, "rate_param": rate_param, "image": row.name, **prov, **r})
    df = pd.DataFrame.from_records(records, columns=result_columns())
    df.attrs["failures"] = failures
    return df


def set_metrics_table(perception: PerceptualSuite, dataset: str, codec_name: str, rate_param: str) -> pd.DataFrame:
    """The per-set perceptual results of one codec (written by ``--set-out``): one row per rate
    point with ``dataset, codec, rate_param`` and ``set_table_columns()`` (images, HiFiC patches,
    patch size, FID, KID mean and std over subsets; NaN where not computed)."""
    rows = [{"dataset": dataset, "codec": codec_name, "rate_param": rate_param, **r} for r in perception.set_rows()]
    return pd.DataFrame.from_records(rows, columns=["dataset", "codec", "rate_param"] + set_table_columns())


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The arguments of the evaluate stages (``evaluate``, ``evaluate-learned``, ``evaluate-progressive``)."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument(
        "--params", default="params.yaml",
        help="params file, or a run overlay (reads codecs.<codec>, metrics, data.mirror for weight files, evaluate.workers)",
    )
    p.add_argument("--dataset", required=True, help="data set name (for the dataset column)")
    p.add_argument("--codec", required=True, help="entry of `codecs` in params.yaml")
    p.add_argument("--data", required=True, type=Path, help="fetched data set directory (with manifest.csv)")
    p.add_argument("--out", required=True, type=Path, help="output CSV")
    p.add_argument(
        "--workers", type=int, default=None,
        help="worker processes, or torch threads for in-process (learned) codecs (default: evaluate.workers; 0 = all cores)",
    )
    p.add_argument(
        "--set-out", type=Path, default=None,
        help="CSV of per-set perceptual metrics: FID and KID per rate point, with the patch count (without it, FID/KID are not computed)",
    )
    p.add_argument(
        "--status-out", type=Path, default=None,
        help="JSON record of the perceptual metrics: computed or missing, the reason, the weight files used or needed",
    )
    p.add_argument("--mirror", default=None, help="mirror directory for weight files (default: data.mirror, else $BENCHMARK_MIRROR)")
    p.add_argument(
        "--executor", choices=("local", "ray"), default=None,
        help="code in local worker processes or as Ray tasks on the cluster of `ray` in params.yaml (default: evaluate.executor)",
    )
    return p


def checkpoint_main(
    argv: Optional[Sequence[str]], prog: str, description: str, checkpoints_help: str, *, progressive: bool = False
) -> int:
    """``main`` of the evaluate stages whose codec reads checkpoints (``evaluate-learned``,
    ``evaluate-progressive``): :func:`build_parser` plus a required ``--checkpoints`` (the path,
    or path template, dvc.yaml gives; ``checkpoints_help`` says which), the codec built from its
    ``codecs`` entry with ``checkpoints``, then :func:`run`. ``progressive``: the codec must be a
    progressive one (SIC: one checkpoint for all its levels), else ``ConfigError``. Returns 0."""
    parser = build_parser(prog, description)
    parser.add_argument("--checkpoints", required=True, help=checkpoints_help)
    args = parser.parse_args(argv)
    cfg = load_config(args.params)
    codec_cfg = cfg.codec(args.codec)
    if progressive and not CODECS.get(codec_cfg.codec).progressive:
        raise ConfigError(
            f"{cfg.source}: codecs.{args.codec}: codec {codec_cfg.codec!r} is not progressive (one model for every "
            f"rate point); evaluate-progressive runs codecs such as sic, list it under evaluate.codecs or evaluate.learned"
        )
    return run(args, cfg, build_codec(codec_cfg.codec, codec_cfg.options, checkpoints=args.checkpoints))


def summary_line(df: pd.DataFrame, label: str, n_images: int, n_rate_points: int, out: "str | Path") -> str:
    """The stage's final line: sizes, mean bpp and PSNR, the mean of each perception column that
    has values, and the decode-check counts."""
    checks = df["decode_check"].value_counts()
    n_checked = int(checks.get("ok", 0) + checks.get("mismatch", 0))
    mismatches = int(checks.get("mismatch", 0))
    check = f"decode check: {mismatches} mismatch(es) in {n_checked} checked" if n_checked else "decode check: n/a"
    failed = int(checks.get("failed", 0))
    if failed:
        check += f"; {failed} FAILED row(s) of {df.loc[df.decode_check == 'failed', 'image'].nunique()} image(s)"
    perc = "".join(
        f", mean {m.name} {df[m.name].mean():.4f}"
        for m in per_image_metrics("perception")
        if m.name in df.columns and df[m.name].notna().any()
    )
    return (
        f"{label}: {n_images} images x {n_rate_points} rate points -> {out} "
        f"(mean bpp {df.bpp.mean():.3f}, mean PSNR {df.psnr.mean():.2f} dB{perc}; {check})"
    )


def run(args: argparse.Namespace, cfg: Config, codec: Codec) -> int:
    """The evaluate stages after the codec is built: give it the ``decode`` limits, read the
    manifest, set up the perceptual suite, code and score every image, write ``--out`` (and
    ``--set-out``, ``--status-out``) atomically, print the summary. Returns 0."""
    codec_cfg = cfg.codec(args.codec)
    codec.limits = cfg.decode  # what its decode accepts from a header (params.yaml ``decode``)
    workers = args.workers if args.workers is not None else cfg.evaluate.workers
    manifest = read_manifest(args.data)
    suite = PerceptualSuite(cfg.metrics, mirror=cfg.mirror(args.mirror), set_level=args.set_out is not None)
    for line in missing_summary(suite.status_record()):
        print(f"warning: perceptual metric missing, left out: {line}", file=sys.stderr)
    on_ray = (args.executor or cfg.evaluate.executor) == "ray"
    limits = None  # the local workers' memory plan and limits; a Ray cluster schedules its own tasks
    if not codec.in_process and not on_ray:
        limits, lines = plan_limits(
            codec, manifest, workers or os.cpu_count() or 1, len(codec_cfg.rate_points),
            memory_gb=cfg.evaluate.image_memory_gb, timeout_s=cfg.evaluate.image_timeout_s,
            available=available_memory_bytes(), keep=True,
        )
        for line in lines:
            print(line, file=sys.stderr)
    t0 = time.perf_counter()
    with RayCluster(cfg.ray) if on_ray else contextlib.nullcontext() as cluster:
        df = evaluate(
            args.codec, codec, codec_cfg.rate_points, manifest, args.data, args.dataset, codec_cfg.hash,
            workers=workers, perception=suite, params_files=cfg.files, cluster=cluster, limits=limits,
        )
    if args.set_out is not None:
        write_csv_atomic(set_metrics_table(suite, args.dataset, args.codec, type(codec).rate_param), args.set_out)
    if args.status_out is not None:
        record = {"dataset": args.dataset, "codec": args.codec, **suite.status_record()}
        if df.attrs.get("failures"):  # only when there are: the record of a clean sweep is as before
            record["failures"] = df.attrs["failures"]
        write_text_atomic(args.status_out, json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_csv_atomic(df, args.out)
    print(summary_line(df, f"{args.dataset}/{args.codec}", len(manifest), len(codec_cfg.rate_points), args.out))
    spent = ", ".join(f"{k} {v:.1f} s" for k, v in suite.seconds.items())
    print(f"perceptual metrics ({suite.device}): " + (spent or "none computed") + f"; whole evaluation {time.perf_counter() - t0:.1f} s")
    return 0
