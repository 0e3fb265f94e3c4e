"""The evaluate sweep under limits: memory estimates and the budget of images in flight, and
one image that runs out of memory, times out or kills its worker becoming failed rows while the
other images are coded as usual."""

import math
import os
import signal
import time
from concurrent.futures import Future

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage  # noqa: F401  (imported before the workers fork: MS-SSIM's filter, not timed per image)

from benchmark.check import compare
from benchmark.codecs.base import Codec, Encoded
from benchmark.config import CheckConfig
from benchmark.data.sources.common import store_image
from benchmark.evaluation import (
    DISTORTION_BYTES_PER_PIXEL, ImageLimits, _in_order, evaluate, image_memory_estimate, plan_limits,
)
from benchmark.results import read_results, write_csv_atomic


class Raw(Codec):
    """The pixels as bytes (lossless), with a failure mode per rate point for these tests:
    rate point 2 allocates 8 GB, 3 sleeps 300 s, 4 kills its own process; only for images whose
    first pixel is 0 (the "bad" image)."""

    rate_param = "mode"
    memory_per_pixel = 10.0

    def encode(self, image, rate_point):
        if image[0, 0, 0] == 0:
            if rate_point == 2:
                np.ones(8 << 30, dtype=np.uint8)
            elif rate_point == 3:
                time.sleep(300)
            elif rate_point == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        h, w, _ = image.shape
        return h.to_bytes(4, "big") + w.to_bytes(4, "big") + image.tobytes()

    def decode(self, data):
        h, w = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
        return np.frombuffer(data[8:], dtype=np.uint8).reshape(h, w, 3).copy()


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


@pytest.fixture
def three_images(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for name, first in (("a_good", 9), ("b_bad", 0), ("c_good", 7)):
        arr = rng.integers(1, 256, (176, 192, 3), dtype=np.uint8)
        arr[0, 0, 0] = first
        rows.append(store_image(name, arr, images, "test"))
    return tmp_path, rows


@pytest.mark.parametrize(
    "mode, reason",
    [(2, "out of memory"), (3, "timed out: more than evaluate.image_timeout_s = 10 s"), (4, "the worker process died")],
)
def test_one_bad_image_is_failed_rows_and_the_sweep_goes_on(three_images, mode, reason, capsys, tmp_path):
    data_dir, manifest = three_images
    timeout = 10 if mode == 3 else 300  # the good images take well under a second, on a loaded machine a few
    limits = ImageLimits(memory_bytes=_vm_size() + (1 << 30), timeout_s=timeout, budget_bytes=None, per_pixel=10.0)
    df = evaluate("raw", Raw(), [1, mode], manifest, data_dir, "t", "h", workers=2, progress=False, limits=limits)
    assert list(df.image) == ["a_good", "a_good", "b_bad", "b_bad", "c_good", "c_good"]
    good = df[df.image != "b_bad"]
    assert (good.decode_check == "n/a").all() and np.isinf(good.psnr).all()  # lossless, coded as usual
    bad = df[df.image == "b_bad"]
    assert (bad.decode_check == "failed").all() and bad.bpp.isna().all() and bad.psnr.isna().all()
    assert (bad.height == 176).all() and list(bad.rate_point) == [1, mode]
    assert [f["image"] for f in df.attrs["failures"]] == ["b_bad", "b_bad"]
    assert all(f["reason"].startswith(reason) for f in df.attrs["failures"])
    err = capsys.readouterr().err
    assert f"image b_bad FAILED at mode={mode}: {reason}" in err

    # the rows are valid results, and the regression check reports them
    write_csv_atomic(df, tmp_path / "raw.csv")
    back = read_results(tmp_path / "raw.csv")
    regressions, _ = compare(back, back.assign(decode_check="n/a"), CheckConfig())
    assert len(regressions) == 2 and all("image=b_bad decode_check: failed" in r for r in regressions)


class _Pool:
    """A stand-in for a process pool that runs each job when submitted and records, at each
    submission, the summed cost of the jobs submitted and not yet consumed."""

    def __init__(self):
        self.in_flight = []
        self.peaks = []

    def submit(self, fn, job):
        self.in_flight.append(job)
        self.peaks.append(sum(self.in_flight))
        f = Future()
        f.set_result(job)
        return f


def test_in_order_keeps_the_images_in_flight_within_the_memory_budget():
    pool = _Pool()
    jobs = [3.0, 1.0, 1.0, 4.0, 2.0, 2.0, 9.0, 1.0]
    out = []
    for r in _in_order(pool, None, jobs, window=4, cost=lambda j: j, budget=5.0):
        pool.in_flight.remove(r)
        out.append(r)
    assert out == jobs  # in order, every job
    assert max(p for p, j in zip(pool.peaks, jobs) if j <= 5.0) <= 5.0
    assert pool.peaks[jobs.index(9.0)] == 9.0  # a job over the budget runs alone
    # without a budget, only the window limits it
    pool = _Pool()
    for r in _in_order(pool, None, jobs, window=4):
        pool.in_flight.remove(r)
    assert max(pool.peaks) == 4.0 + 2.0 + 2.0 + 9.0  # four jobs in flight


def test_plan_limits_prints_the_estimate_and_what_fits(three_images):
    _, manifest = three_images
    codec = Raw()
    per = image_memory_estimate(codec, 176, 192)
    assert per == pytest.approx(0.6e9 + (10.0 + DISTORTION_BYTES_PER_PIXEL) * 176 * 192)
    limits, lines = plan_limits(codec, manifest, 4, 2, memory_gb=None, timeout_s=60, available=int(100e9), keep=False)
    assert len(lines) == 1 and "needs about 0.60 GB in a worker (10 + 60 bytes/px + 0.60 GB); 4 worker(s) at once: 2.41 GB" in lines[0]
    assert limits.budget_bytes == pytest.approx(90e9) and limits.memory_bytes == int(101e9) and limits.timeout_s == 60
    limits, lines = plan_limits(codec, manifest, 4, 2, memory_gb=2.5, timeout_s=60, available=int(1.5e9), keep=False)
    assert limits.memory_bytes == int(2.5e9)
    assert "does not fit; images of this size run 2 at a time" in lines[1]
    _, lines = plan_limits(codec, manifest, 4, 2, memory_gb=None, timeout_s=60, available=int(0.5e9), keep=True)
    assert lines[1].startswith("WARNING: image a_good alone needs about 0.60 GB, more than the 0.44 GB available")
    limits, lines = plan_limits(codec, manifest, 2, 2, memory_gb=None, timeout_s=60, available=None, keep=False)
    assert limits.budget_bytes is None and limits.memory_bytes is None and "available memory unknown" in lines[0]


def test_failed_rows_have_the_results_columns(three_images):
    data_dir, manifest = three_images
    limits = ImageLimits(memory_bytes=None, timeout_s=60, budget_bytes=None, per_pixel=10.0)
    df = evaluate("raw", Raw(), [1], manifest[:1], data_dir, "t", "h", workers=1, progress=False, limits=limits)
    assert isinstance(df, pd.DataFrame) and df.decode_check.tolist() == ["n/a"] and math.isinf(df.psnr[0])


class _HugeResult(float):
    """A float whose pickling fails as a result too large for memory would."""

    def __truediv__(self, other):
        return _HugeResult(float(self) / other)

    def __reduce__(self):
        raise MemoryError("pickling the result")


class RawUnsendable(Raw):
    """Raw, but the bad image's rows cannot be sent back from the worker (MemoryError while
    pickling the result, as a 24 MP image's 19 decoded images once did under a 5 GB cap)."""

    def encode_verbose(self, image, rate_point):
        data = self.encode(image, 1)
        return Encoded(data, estimated_bits=_HugeResult(8.0 * len(data)) if image[0, 0, 0] == 0 else None)


def test_a_result_too_large_to_send_back_is_failed_rows(three_images, capsys):
    data_dir, manifest = three_images
    limits = ImageLimits(memory_bytes=None, timeout_s=300, budget_bytes=None, per_pixel=10.0)
    df = evaluate("raw", RawUnsendable(), [1], manifest, data_dir, "t", "h", workers=2, progress=False, limits=limits)
    assert list(df.image) == ["a_good", "b_bad", "c_good"]
    assert list(df.decode_check) == ["n/a", "failed", "n/a"]
    assert df.attrs["failures"][0]["reason"].startswith("out of memory (MemoryError: pickling the result)")
    assert "WARNING: image b_bad: out of memory" in capsys.readouterr().err


def test_workers_spill_decoded_images_to_disk_and_the_rows_are_the_same(three_images, tmp_path, monkeypatch):
    """With perceptual metrics and local workers under limits, the workers write each decoded
    image to a temporary .npy file and send back its path: rows (HaarPSI included) equal those
    of the in-process sweep, and no file is left behind."""
    import tempfile

    from benchmark.config import MetricsConfig
    from benchmark.metrics.suite import PerceptualSuite

    data_dir, manifest = three_images
    manifest = [r for r in manifest if r.name != "b_bad"]
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    seen = []
    import benchmark.evaluation as ev

    real = ev.load_kept
    monkeypatch.setattr(ev, "load_kept", lambda rec: seen.append(rec) or real(rec))

    def suite():
        return PerceptualSuite(MetricsConfig(perceptual=("haarpsi",), download=False), set_level=False)

    limits = ImageLimits(memory_bytes=None, timeout_s=300, budget_bytes=None, per_pixel=10.0)
    spilled = evaluate("raw", Raw(), [1, 5], manifest, data_dir, "t", "h", workers=2, progress=False, perception=suite(),
                       limits=limits)
    assert len(seen) == 4 and all(isinstance(p, str) and p.endswith(".npy") for p in seen)
    assert [p for p in spill_root.iterdir() if p.name.startswith("evaluate-")] == []  # the files and their folder are gone
    seen.clear()
    inproc = evaluate("raw", Raw(), [1, 5], manifest, data_dir, "t", "h", workers=1, progress=False, perception=suite())
    assert len(seen) == 4 and all(isinstance(a, np.ndarray) for a in seen)
    cols = ["image", "rate_point", "bytes", "psnr", "ms_ssim", "haarpsi"]
    pd.testing.assert_frame_equal(spilled[cols], inproc[cols])
    assert spilled.haarpsi.notna().all()


def test_score_image_one_by_one_for_large_batches_equals_the_batch(monkeypatch):
    """Above ``STACK_BYTES`` an image's reconstructions are scored one at a time (no stacked
    copy): the same HaarPSI values as one batch, in rate-point order."""
    from benchmark.config import MetricsConfig
    from benchmark.metrics import suite as suite_mod

    rng = np.random.default_rng(3)
    ref = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    recs = [np.clip(ref.astype(int) + rng.integers(-s, s + 1, ref.shape), 0, 255).astype(np.uint8) for s in (2, 10, 40)]
    s = suite_mod.PerceptualSuite(MetricsConfig(perceptual=("haarpsi",), download=False), set_level=False)
    batch = s.score_image(ref, recs)["haarpsi"]
    monkeypatch.setattr(suite_mod, "STACK_BYTES", 0)
    one = s.score_image(ref, recs)["haarpsi"]
    np.testing.assert_array_equal(one, batch)
    assert batch[0] > batch[1] > batch[2]
