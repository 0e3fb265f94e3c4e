"""The context models' coders (benchmark.codecs.autoregressive): raster order reads and writes
CompressAI's exact bitstreams; wavefront order decodes what it encodes bit for bit, in another
process and with another caller thread count, at the rate of raster coding.

Models: mbt2018 (N=32, M=48) and cheng2020-anchor (N=32), trained 30 steps on scikit-image's
immunohistochemistry photo, enough for latents that are not all zero."""

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import decode_in_another_process

import benchmark.codecs.learned  # noqa: F401  (registers the learned codec)
from benchmark.codecs import autoregressive as ar
from benchmark.codecs.base import build_codec
from benchmark.codecs.container import unpack
from benchmark.data.images import pixel_sha256
from benchmark.models.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"mbt2018": {"N": 32, "M": 48}, "cheng2020-anchor": {"N": 32}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from skimage import data

    from benchmark.training.loop import TrainConfig, train

    root = tmp_path_factory.mktemp("ar")
    for arch, size in MODELS.items():
        cfg = TrainConfig.make(arch, size, 0.05, steps=30, batch_size=4, patch_size=64, lr=1e-3, aux_lr=1e-2,
                               milestones=(), checkpoint_every=30, log_every=30, seed=0, device="cpu")
        train(cfg, [data.immunohistochemistry()], root / "models" / arch / "q3.pt", root / f"{arch}.state",
              root / f"{arch}.csv", progress=False, meta={"rate_point": "q3", "model": arch, "source": "train"})
    return root


@pytest.fixture(scope="module")
def image():
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:192, :256])


def _x(image):
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255)[None]


@pytest.mark.parametrize("arch", list(MODELS))
def test_raster_order_is_compressai_bit_for_bit(work, image, arch):
    model = load_model(work / "models" / arch / "q3.pt")[0]
    with torch.no_grad():
        theirs = model.compress(_x(image))
        ours = ar.compress_raster(model, _x(image))
        assert ours["strings"] == theirs["strings"] and tuple(ours["shape"]) == tuple(theirs["shape"])
        x_theirs = model.decompress(theirs["strings"], theirs["shape"])["x_hat"]
        x_ours = ar.decompress_raster(model, theirs["strings"], theirs["shape"])["x_hat"]
    assert torch.equal(x_ours, x_theirs)  # reads CompressAI's bitstream into CompressAI's reconstruction


def test_scale_indexes_equal_compressai(work):
    model = load_model(work / "models" / "mbt2018" / "q3.pt")[0]
    gc = model.gaussian_conditional
    table = gc.scale_table
    scales = torch.cat([torch.rand(4096) * 80, table, torch.nextafter(table, table + 1), torch.nextafter(table, table - 1),
                        torch.tensor([0.0, -1.0, 1e-9, 1e6])]).reshape(1, -1, 1, 1)
    assert torch.equal(ar.CdfTables(gc).indexes(scales), gc.build_indexes(scales))


def test_wavefront_steps_respect_the_context():
    for h, w in ((1, 1), (3, 7), (8, 5), (32, 48)):
        steps = ar.wavefront_steps(h, w)
        assert len(steps) == 3 * h + w - 3 and all(len(r) for r, _ in steps)
        step_of = {}
        for t, (rows, cols) in enumerate(steps):
            assert torch.all(rows[1:] > rows[:-1])
            for i, j in zip(rows.tolist(), cols.tolist()):
                step_of[i, j] = t
        assert sorted(step_of) == [(i, j) for i in range(h) for j in range(w)]
        mask = [(di, dj) for di in (-2, -1) for dj in range(-2, 3)] + [(0, -2), (0, -1)]  # the 5x5 type-A context
        for (i, j), t in step_of.items():
            assert all(step_of[i + di, j + dj] < t for di, dj in mask if (i + di, j + dj) in step_of)


def _codec(work, arch, order, **options):
    return build_codec("learned", {"model": arch, "order": order, **options},
                       checkpoints=str(work / "models" / "{model}" / "q{rate_point}.pt"))


@pytest.mark.parametrize("arch", list(MODELS))
def test_wavefront_round_trip_rate_and_pixels(work, image, arch):
    raster, wave = _codec(work, arch, "raster"), _codec(work, arch, "wavefront")
    er, ew = raster.encode_verbose(image, 3), wave.encode_verbose(image, 3)
    cr, cw = unpack(er.data), unpack(ew.data)
    assert (cr.order, cw.order) == ("raster", "wavefront") and len(ew.data) - len(er.data) == sum(len(s) for g in cw.strings for s in g) - sum(len(s) for g in cr.strings for s in g) + 1
    rate_raster, rate_wave = cr.payload_bytes, cw.payload_bytes
    assert abs(rate_wave - rate_raster) <= max(0.001 * rate_raster, 2), (rate_raster, rate_wave)
    assert er.estimated_bits == pytest.approx(ew.estimated_bits, rel=1e-3)
    dr, dw = raster.decode(er.data), _codec(work, arch, "raster").decode(ew.data)  # the container says the order
    assert pixel_sha256(dr) == er.reconstruction_sha256 and pixel_sha256(dw) == ew.reconstruction_sha256
    diff = np.abs(dr.astype(int) - dw.astype(int))
    assert (diff > 0).mean() < 0.01 and diff.max() <= 2  # float rounding of the batched means only


@pytest.mark.parametrize("arch", list(MODELS))
def test_wavefront_decodes_bit_exactly_in_another_process_and_thread_count(work, image, arch, tmp_path):
    torch.set_num_threads(2)  # the caller's threads must not matter: coding runs on CODING_THREADS
    try:
        enc = _codec(work, arch, "wavefront").encode_verbose(image, 3)
    finally:
        torch.set_num_threads(1)
    for threads in (1, 2):
        checkpoints = str(work / "models" / "{model}" / "q{rate_point}.pt")
        out = decode_in_another_process(arch, checkpoints, enc.data, tmp_path, threads)
        assert out.split()[-1] == enc.reconstruction_sha256, threads


def test_orders_are_refused_where_they_do_not_apply(work, image):
    with pytest.raises(ValueError, match="unknown symbol order"):
        ar.compress(load_model(work / "models" / "mbt2018" / "q3.pt")[0], _x(image), "zigzag")
    from benchmark.codecs.base import CodecError

    with pytest.raises(CodecError, match="order"):
        _codec(work, "mbt2018", "zigzag")
