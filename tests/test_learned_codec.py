"""The learned codec: real entropy-coded round trips with small trained CompressAI models,
equivalence with CompressAI's own ``eval_model`` on the same checkpoint and images, and the
evaluate stage's decode check, estimated-bpp column and training-set leak guard.

Models: ScaleHyperprior (bmshj2018-hyperprior) and the autoregressive
JointAutoregressiveHierarchicalPriors (mbt2018), both N=32, M=48, trained for 30 Adam steps on
64x64 crops of scikit-image's immunohistochemistry photo (not an evaluation image): enough for
latents that are not all zero, so the strings carry the image.
"""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from corruption import assert_corruptions_decode_or_fail_cleanly

from benchmark.codecs.base import Codec, CodecError, Encoded, TrainingLeakError, build_codec
from benchmark.codecs.classical import JPEG
from benchmark.codecs.container import header_size, unpack
from benchmark.codecs.learned import LearnedCodec
from benchmark.config import DatasetConfig
from benchmark.data.dataset import fetch_dataset
from benchmark.data.images import (
    load_rgb8,
    pixel_sha256,
    read_manifest,
    save_png_atomic,
)
from benchmark.evaluation import evaluate, summary_line
from benchmark.metrics import distortion_metrics
from benchmark.models.checkpoint import load_model, read_checkpoint, save_checkpoint
from benchmark.results import read_results, result_columns, write_csv_atomic
from benchmark.stages.evaluate_learned import main as evaluate_main

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"hyper": "bmshj2018-hyperprior", "mbt": "mbt2018"}
SIZE = {"N": 32, "M": 48}
STEPS = 30
# Odd sizes (not multiples of 64) exercise eval_model's centred padding and our crop.
CROPS = {"astronaut": (201, 299), "coffee": (173, 187)}

# Tolerances against eval_model: bpp is the same integer byte count over the same pixel count
# (float rounding only); eval_model computes PSNR and MS-SSIM in float32 on [0, 255], we in
# float64, which moves PSNR by ~1e-6 dB and MS-SSIM by ~1e-7.
BPP_REL = 1e-12
PSNR_ABS_DB = 1e-4
MS_SSIM_ABS = 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(arch: str, image: np.ndarray):
    """A tiny model trained STEPS steps with the project's training loop (λ=0.05, batch 4 of
    64x64 crops), CDF tables computed; returned in eval mode."""
    import tempfile

    from benchmark.training.loop import TrainConfig, train

    cfg = TrainConfig.make(arch=arch, size=SIZE, lmbda=0.05, steps=STEPS, batch_size=4, patch_size=64, lr=1e-3,
                      aux_lr=1e-2, milestones=(), checkpoint_every=STEPS, log_every=STEPS, seed=0, device="cpu")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        path = train(cfg, [image], d / "m.pt", d / "m.state", d / "m.csv", progress=False)
        return load_model(path)[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """<root>/models/<name>/q3.pt (ours), <root>/compressai/<name>.pth.tar (plain state dicts for
    eval_model), <root>/images/*.png (the evaluation crops), <root>/data (a fetched data set)."""
    import torch
    from skimage import data

    root = tmp_path_factory.mktemp("learned")
    train_image = data.immunohistochemistry()
    for name, arch in MODELS.items():
        model = _train(arch, train_image)
        save_checkpoint(
            root / "models" / name / "q3.pt",
            {
                "arch": arch, "size": SIZE, "lmbda": 0.05, "rate_point": "q3", "step": STEPS,
                "state_dict": model.state_dict(), "coder_ready": True,
                "train_images_sha256": [pixel_sha256(train_image)],
            },
        )
        (root / "compressai").mkdir(exist_ok=True)
        torch.save(model.state_dict(), root / "compressai" / f"{name}.pth.tar")
    for stem, (h, w) in CROPS.items():
        save_png_atomic(np.ascontiguousarray(getattr(data, stem)()[:h, :w]), root / "images" / f"{stem}.png")
    fetch_dataset(DatasetConfig(name="crops", source="folder", options={"path": str(root / "images")}), root / "data", mirror=None)
    return root


def _codec(work, name="hyper", **options):
    return build_codec("learned", {"model": name, **options}, checkpoints=_template(work))


def _template(work):
    return str(work / "models" / "{model}" / "q{rate_point}.pt")


@pytest.fixture(scope="module")
def eval_model_results(work):
    """CompressAI's eval_model on our checkpoints (default: it recomputes the CDF tables with
    ``update(force=True)`` on this CPU from the same quantiles), per image:
    {(name, stem): {"psnr-rgb", "ms-ssim-rgb", "bpp", ...}}. Both models run concurrently."""
    procs = {}
    for name, arch in MODELS.items():
        out = work / "eval_model" / name
        argv = ["eval_model", "checkpoint", str(work / "images"), "-a", arch,
                "-p", str(work / "compressai" / f"{name}.pth.tar"), "-d", str(out), "-o", "all", "--per-image"]
        code = (
            "from benchmark._torchvision_compat import ensure_torchvision_importable as f; f(); "
            f"import runpy, sys; sys.argv = {argv!r}; "
            "runpy.run_module('compressai.utils.eval_model', run_name='__main__')"
        )
        procs[name] = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        for stem in CROPS:
            per_image = json.loads((work / "eval_model" / name / f"{stem}-{name}-ans.json").read_text())
            results[name, stem] = per_image["results"]
        results[name, "mean"] = {k: v[0] for k, v in json.loads((work / "eval_model" / name / "all.json").read_text())["results"].items()}
    return results


# ---- round trip ----------------------------------------------------------------------------


def test_round_trip_odd_sizes_and_decode_check(work):
    codec = _codec(work)
    image = load_rgb8(work / "images" / "astronaut.png")
    enc = codec.encode_verbose(image, 3)
    assert enc.data == codec.encode(image, 3)  # deterministic
    rec = _codec(work).decode(enc.data)  # a fresh instance: only the bytes and the checkpoint
    assert rec.shape == image.shape == (201, 299, 3) and rec.dtype == np.uint8
    assert pixel_sha256(rec) == enc.reconstruction_sha256  # the decode check passes
    c = unpack(enc.data)
    assert (c.height, c.width, c.quality, c.model_id) == (201, 299, 3, "bmshj2018-hyperprior/M48,N32/q3")
    assert c.shape == (4, 5)  # z of the 256x320 padded input (/64)
    # All container bytes count; they exceed the strings by exactly the header.
    assert len(enc.data) - c.payload_bytes == header_size(c) < 64
    assert LearnedCodec.strings_bpp(enc.data) == pytest.approx(8 * c.payload_bytes / (201 * 299), rel=1e-15)
    # Not degenerate: the y string carries more than the hyperprior's z string, the model's own
    # estimate is near the real size (rANS overhead and tail coding: within 15 %), and
    # corrupting the y string changes the pixels.
    y_bytes, z_bytes = len(c.strings[0][0]), len(c.strings[1][0])
    assert y_bytes > 2 * z_bytes > 0
    assert enc.estimated_bits / 8 == pytest.approx(c.payload_bytes, rel=0.15)
    assert 6 < distortion_metrics(image, rec)["psnr"] < 40
    broken = bytearray(enc.data)
    broken[len(broken) - c.payload_bytes + y_bytes // 2] ^= 0xFF
    assert not np.array_equal(codec.decode(bytes(broken)), rec)


def test_bitstream_does_not_depend_on_the_callers_threads(work):
    """mbt2018's entropy parameters change with torch's thread count (measured: encoded with 2
    threads, decoded with 1, the pixels differ); the codec pins compress/decompress to
    CODING_THREADS, so bytes and pixels are the same whatever the caller set."""
    import torch

    codec = _codec(work, "mbt")
    image = load_rgb8(work / "images" / "astronaut.png")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        data2 = codec.encode(image, 3)
        rec2 = codec.decode(data2)
        torch.set_num_threads(1)
        assert codec.encode(image, 3) == data2
        assert np.array_equal(codec.decode(data2), rec2)
        assert torch.get_num_threads() == 1  # the caller's setting is restored
    finally:
        torch.set_num_threads(before)


def test_codec_is_picklable_without_models(work):
    codec = _codec(work)
    image = load_rgb8(work / "images" / "coffee.png")
    data = codec.encode(image, 3)  # loads and caches the model
    blob = pickle.dumps(codec)
    assert len(blob) < 2000  # the cached model is not pickled
    assert np.array_equal(pickle.loads(blob).decode(data), codec.decode(data))


def test_errors_name_what_is_wrong(work):
    image = load_rgb8(work / "images" / "coffee.png")
    with pytest.raises(CodecError, match=r"hyper/q4\.pt: checkpoint of model 'hyper' at quality 4 not found; it is an output of a model stage of dvc\.yaml"):
        _codec(work).encode(image, 4)
    with pytest.raises(CodecError, match=r"quality must be an integer in \[1, 8\], got 2.5"):
        _codec(work).encode(image, 2.5)
    with pytest.raises(CodecError, match="option model .* is required"):
        build_codec("learned", {})
    with pytest.raises(CodecError, match="decode_check"):
        _codec(work, decode_check="yes")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(CodecError, match="'cuda' was requested but CUDA is not available"):
            _codec(work, device="cuda")
    data = _codec(work).encode(image, 3)
    with pytest.raises(CodecError, match="corrupt bitstream: truncated"):
        _codec(work).decode(data[:-1])
    with pytest.raises(CodecError, match="corrupt bitstream: wrong magic"):
        _codec(work).decode(b"\x89PNG" + data[4:])
    # Same weights under another model id: decode refuses and names both ids.
    ckpt = read_checkpoint(work / "models" / "hyper" / "q3.pt")
    save_checkpoint(work / "models" / "other" / "q3.pt", {**ckpt, "rate_point": "q3-other"})
    with pytest.raises(CodecError, match=r"made by model 'bmshj2018-hyperprior/M48,N32/q3', but .*other/q3\.pt is 'bmshj2018-hyperprior/M48,N32/q3-other'"):
        _codec(work, "other").decode(data)


def test_corrupt_bytes_give_codec_error_or_an_image(work):
    """100 seeded corruptions (1-3 bytes replaced) of a real bitstream: each decodes to a uint8
    (h, w, 3) image (h, w: what the possibly corrupted header says) or raises CodecError, in well
    under a second; never another exception."""
    codec = _codec(work, decode_check=False)
    image = load_rgb8(work / "images" / "coffee.png")
    assert_corruptions_decode_or_fail_cleanly(codec, codec.encode(image, 3), trials=100, seed=7, max_seconds=1.0)


def test_library_version(work):
    codec = _codec(work)
    codec.load(3)
    v = codec.library_version()
    assert v.startswith("compressai 1.") and ", torch 2." in v and "constriction" not in v


# ---- equivalence with CompressAI's eval_model --------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_matches_compressai_eval_model(work, eval_model_results, name):
    codec = _codec(work, name, decode_check=False, order="raster")  # CompressAI's bitstreams
    ours = {}
    for stem in CROPS:
        image = load_rgb8(work / "images" / f"{stem}.png")
        data = codec.encode(image, 3)
        m = distortion_metrics(image, codec.decode(data))
        ours[stem] = {"bpp": LearnedCodec.strings_bpp(data), "psnr-rgb": m["psnr"], "ms-ssim-rgb": m["ms_ssim"]}
        theirs = eval_model_results[name, stem]
        assert ours[stem]["bpp"] == pytest.approx(theirs["bpp"], rel=BPP_REL), stem
        assert ours[stem]["psnr-rgb"] == pytest.approx(theirs["psnr-rgb"], abs=PSNR_ABS_DB), stem
        assert ours[stem]["ms-ssim-rgb"] == pytest.approx(theirs["ms-ssim-rgb"], abs=MS_SSIM_ABS), stem
    mean = eval_model_results[name, "mean"]
    for key, tol in (("bpp", mean["bpp"] * BPP_REL), ("psnr-rgb", PSNR_ABS_DB), ("ms-ssim-rgb", MS_SSIM_ABS)):
        assert np.mean([o[key] for o in ours.values()]) == pytest.approx(mean[key], abs=tol), key


# ---- the evaluate stage ------------------------------------------------------------------------


def test_evaluate_stage_with_learned_codec(work, tmp_path, capsys, params_file):
    manifest = read_manifest(work / "data")
    df = evaluate("hyper", _codec(work), [3], manifest, work / "data", "crops", "hash", workers=1, progress=False)
    assert list(df.columns) == result_columns() and len(df) == 2
    assert (df.decode_check == "ok").all()
    assert np.allclose(df.bpp, 8 * df["bytes"] / (df.height * df.width))
    assert (df.bpp_estimated > 0).all() and np.allclose(df.bpp_estimated, df.bpp, rtol=0.2)
    assert df.codec_library.str.startswith("compressai").all()
    row = df[df.image == "coffee"].iloc[0]
    image = load_rgb8(work / "data" / "images" / "coffee.png")
    assert row["bytes"] == len(_codec(work).encode(image, 3))

    # The CLI stage: --checkpoints, the CSV, and the summary line with the decode-check count.
    def tiny(p):  # a variant: codec "tiny" over the model "hyper", at the trained quality 3
        p["codecs"]["tiny"] = {"codec": "learned", "options": {"model": "hyper"}}
        p["evaluate"]["variants"] = ["tiny"]
        p["train"]["qualities"] = [3]
        p["samples"]["models"] = []

    params = params_file(tiny)
    out = tmp_path / "tiny.csv"
    argv = ["--params", str(params), "--dataset", "crops", "--codec", "tiny", "--data", str(work / "data"), "--out", str(out), "--workers", "1"]
    with pytest.raises(CodecError, match=r"none/hyper/q3\.pt: checkpoint of model 'hyper' at quality 3 not found"):
        evaluate_main(argv + ["--checkpoints", str(tmp_path / "none" / "{model}" / "q{rate_point}.pt")])
    assert evaluate_main(argv + ["--checkpoints", _template(work)]) == 0
    assert "decode check: 0 mismatch(es) in 2 checked" in capsys.readouterr().out
    saved = read_results(out)
    assert (saved.decode_check == "ok").all()
    pd.testing.assert_frame_equal(saved[["image", "bytes", "bpp"]], df[["image", "bytes", "bpp"]], check_dtype=False)


def test_evaluate_refuses_training_images(work):
    manifest = read_manifest(work / "data")
    coffee = next(r for r in manifest if r.name == "coffee")
    ckpt = read_checkpoint(work / "models" / "hyper" / "q3.pt")
    save_checkpoint(work / "models" / "leaky" / "q3.pt", {**ckpt, "train_images_sha256": ["0" * 64, coffee.pixel_sha256]})
    with pytest.raises(TrainingLeakError, match=r"image 'coffee' \(images/coffee.png\) is one of the training images of .*leaky/q3\.pt"):
        evaluate("leaky", _codec(work, "leaky"), [3], manifest, work / "data", "crops", "h", workers=1, progress=False)
    assert _codec(work).training_image_hashes(3) == frozenset(ckpt["train_images_sha256"])
    assert JPEG().training_image_hashes(50) == frozenset()  # codecs without a model: nothing to check


class _LyingJPEG(JPEG):
    """JPEG that reports an encoder-side reconstruction hash no decode can match."""

    def encode_verbose(self, image, rate_point):
        return Encoded(self.encode(image, rate_point), reconstruction_sha256="0" * 64, estimated_bits=1000.0)


def test_decode_mismatch_is_reported_per_image_and_kept(work, capsys):
    manifest = read_manifest(work / "data")
    df = evaluate("liar", _LyingJPEG(), [50, 70], manifest, work / "data", "crops", "h", workers=1, progress=False)
    assert len(df) == 4 and (df.decode_check == "mismatch").all()  # rows kept, not dropped
    err = capsys.readouterr().err
    for stem in CROPS:
        for q in (50, 70):
            assert f"decode check MISMATCH for image {stem} at quality={q}" in err
    assert np.allclose(df.bpp_estimated, 1000.0 / (df.height * df.width))
    assert "decode check: 4 mismatch(es) in 4 checked" in summary_line(df, "crops/liar", 2, 2, "x.csv")
    plain = evaluate("jpeg", JPEG(), [50], manifest, work / "data", "crops", "h", workers=1, progress=False)
    assert (plain.decode_check == "n/a").all() and plain.bpp_estimated.isna().all()
    assert "decode check: n/a" in summary_line(plain, "crops/jpeg", 2, 1, "x.csv")


def test_read_results_fills_columns_of_older_files(tmp_path):
    old = pd.DataFrame(
        {"dataset": ["d"] * 2, "codec": ["c"] * 2, "rate_param": ["quality"] * 2, "rate_point": [1, 2], "image": ["i"] * 2,
         "height": [10] * 2, "width": [10] * 2, "bytes": [5, 9], "bpp": [0.4, 0.72], "mse": [3.0, 2.0], "psnr": [40.0, 41.0],
         "ms_ssim": [0.9, 0.95], "ms_ssim_db": [10.0, 13.0], "encode_s": [0.1] * 2, "decode_s": [0.1] * 2,
         "codec_library": ["x"] * 2, "packages": ["p"] * 2, "git_rev": ["g"] * 2, "params_hash": ["h"] * 2, "device": ["cpu"] * 2}
    )
    old.to_csv(tmp_path / "old.csv", index=False)
    df = read_results(tmp_path / "old.csv")
    assert list(df.columns) == result_columns()
    assert (df.decode_check == "n/a").all() and df.bpp_estimated.isna().all()
    # A new file's "n/a" survives the CSV round trip (pandas reads "n/a" as NaN by default).
    write_csv_atomic(df, tmp_path / "new.csv")
    assert (read_results(tmp_path / "new.csv").decode_check == "n/a").all()
    df.loc[0, "decode_check"] = "maybe"
    write_csv_atomic(df, tmp_path / "bad.csv")
    from benchmark.results import ResultsError

    with pytest.raises(ResultsError, match="bad.csv: decode_check must be one of"):
        read_results(tmp_path / "bad.csv")


def test_checkpoints_are_not_an_option():
    with pytest.raises(CodecError, match=r"\['checkpoints'\] are not options"):
        build_codec("learned", {"model": "m", "checkpoints": "x"}, checkpoints="y/{rate_point}")
    with pytest.raises(CodecError, match="no {rate_point} field"):
        build_codec("learned", {"model": "m"}, checkpoints="models/m.pt")
    assert build_codec("learned", {"model": "m"}, checkpoints="a/{model}/q{rate_point}.pt").checkpoint_path(2) == Path("a/m/q2.pt")
    assert isinstance(build_codec("jpeg", {}), Codec) and not JPEG.in_process and LearnedCodec.in_process


def test_learned_codec_runs_in_worker_processes_alike(work):
    """On the CPU a learned codec codes images in parallel worker processes (one torch thread
    each, each loading a checkpoint once); the rows equal a serial run's."""
    manifest = read_manifest(work / "data")
    codec = _codec(work, "mbt")
    assert not codec.in_process
    cols = ["image", "rate_point", "bytes", "psnr", "ms_ssim", "bpp_estimated", "decode_check"]
    serial = evaluate("mbt", codec, [3], manifest, work / "data", "crops", "h", workers=1, progress=False)[cols]
    parallel = evaluate("mbt", _codec(work, "mbt"), [3], manifest, work / "data", "crops", "h", workers=2, progress=False)[cols]
    pd.testing.assert_frame_equal(serial, parallel)
    assert (serial.decode_check == "ok").all()


@pytest.mark.parametrize("name", list(MODELS))
def test_estimate_and_expected_image_come_from_the_encoders_pass(work, name):
    """The estimated bits equal the forward pass's (eval mode, same padded input) for the
    hyperprior; for the context model they are its coder's own likelihoods (CompressAI's forward
    pass predicts the context from round(y), not from the coded y_hat, and underestimates), within
    5 % of the coded bits on this tiny model (escape-coded symbols and string flushes) and closer
    to them. The hash the encoder reports is that of the image the real decoder produces: no
    second decode."""
    import torch

    codec = _codec(work, name)
    image = load_rgb8(work / "images" / "coffee.png")
    enc = codec.encode_verbose(image, 3)
    model, _ = codec.load(3)
    with torch.no_grad():
        fwd = model(codec._padded(image))
    bits = sum(float(-torch.log2(v.double()).sum()) for v in fwd["likelihoods"].values())
    coded = 8 * unpack(enc.data).payload_bytes
    if name == "hyper":
        assert enc.estimated_bits == pytest.approx(bits, rel=1e-6)
    else:
        assert enc.estimated_bits == pytest.approx(coded, rel=0.05) and abs(enc.estimated_bits - coded) < abs(bits - coded)
    assert enc.reconstruction_sha256 == pixel_sha256(_codec(work, name).decode(enc.data))
