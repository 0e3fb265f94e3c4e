"""Discretized VAEs: the prior's mass, coding against the estimated rate, bit-exact decode in
another process, odd image sizes, corruption, samples.

Models: the single-layer ``dvae`` (benchmark/models/vae.py, N=32, M=48) and the hierarchical
``qres-vae`` (the official QRes-VAE of benchmark/models/qres.py, qres34m structure at ch=8: all
12 latent layers and the full encoder depth, narrow), trained with the project's training loop
for STEPS steps on 64x64 crops of scikit-image's immunohistochemistry photo (not an evaluation
image), so that the latents are not all zero and the prior is not the initial one.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from corruption import assert_corruptions_decode_or_fail_cleanly
from helpers import decode_in_another_process

import benchmark.codecs.learned  # noqa: F401  (registers the learned codec)
from benchmark.codecs.base import CodecError, build_codec
from benchmark.codecs.container import unpack
from benchmark.data.images import load_rgb8, pixel_sha256, save_png_atomic
from benchmark.metrics import distortion_metrics
from benchmark.models.checkpoint import load_model
from benchmark.models.specs import ARCHITECTURES, build_model
from benchmark.models.vae import MASS_BOUND, discretized_gaussian_mass, parameter_count

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"dvae": {"N": 32, "M": 48}, "qres-vae": {"ch": 8}}
STEPS = 60
# Odd sizes: not multiples of 64 (the codec pads and crops).
CROPS = {"astronaut": (201, 299), "coffee": (173, 187)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """<root>/models/<arch>/q3.pt for both models (trained here), <root>/images/*.png."""
    from skimage import data

    from benchmark.training.loop import TrainConfig, train

    root = tmp_path_factory.mktemp("vae")
    train_image = data.immunohistochemistry()
    for arch, size in SIZES.items():
        cfg = TrainConfig.make(arch=arch, size=size, lmbda=0.0067, steps=STEPS, batch_size=4, patch_size=64, lr=1e-3,
                          milestones=(), checkpoint_every=STEPS, log_every=STEPS, seed=0, device="cpu")
        d = root / "train" / arch
        train(cfg, [train_image], root / "models" / arch / "q3.pt", d / "s", d / "log.csv", progress=False,
              train_image_hashes=[pixel_sha256(train_image)], meta={"rate_point": "q3", "model": arch, "source": "train"})
    for stem, (h, w) in CROPS.items():
        save_png_atomic(np.ascontiguousarray(getattr(data, stem)()[:h, :w]), root / "images" / f"{stem}.png")
    return root


def _codec(work, arch, **options):
    return build_codec("learned", {"model": arch, **options}, checkpoints=str(work / "models" / "{model}" / "q{rate_point}.pt"))


# ---- the prior ----------------------------------------------------------------------------


@pytest.mark.parametrize("mean", [0.0, 0.3, -2.71, 17.5])
@pytest.mark.parametrize("scale", [0.05, 0.11, 0.7, 3.0, 40.0])
def test_discretized_gaussian_mass_sums_to_one(mean, scale):
    """Over all integers (a range of ±(60σ + 20) around μ), the masses sum to 1 within the
    lower bound's contribution (≤ 1e-9 per integer) plus float64 rounding."""
    lo = int(np.floor(mean - 60 * max(scale, 0.11) - 20))
    hi = int(np.ceil(mean + 60 * max(scale, 0.11) + 20))
    z = torch.arange(lo, hi + 1, dtype=torch.float64)
    p = discretized_gaussian_mass(z, torch.tensor(mean, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64))
    assert p.min() >= MASS_BOUND
    assert abs(float(p.sum()) - 1.0) <= len(z) * MASS_BOUND + 1e-12


def test_discretized_gaussian_mass_matches_the_cdf_difference_and_compressai():
    """P(z) = Φ((z + ½ − μ)/σ) − Φ((z − ½ − μ)/σ) (scipy, float64) where the mass is above the
    bound; and the same values as CompressAI's GaussianConditional likelihood (float32, 1e-6)."""
    from compressai.entropy_models import GaussianConditional
    from scipy.stats import norm

    g = torch.Generator().manual_seed(0)
    z = torch.randint(-20, 21, (2000,), generator=g).double()
    mean = torch.randn(2000, generator=g, dtype=torch.float64) * 5
    scale = torch.rand(2000, generator=g, dtype=torch.float64) * 10 + 0.11
    ours = discretized_gaussian_mass(z, mean, scale).numpy()
    ref = norm.cdf((z + 0.5 - mean) / scale) - norm.cdf((z - 0.5 - mean) / scale)
    big = ref > 1e-6
    np.testing.assert_allclose(ours[big], np.asarray(ref)[big], rtol=1e-9)
    gc = GaussianConditional(None)
    cai = gc.likelihood_lower_bound(gc._likelihood(z.float(), scale.float(), mean.float())).numpy()
    np.testing.assert_allclose(discretized_gaussian_mass(z.float(), mean.float(), scale.float()).numpy(), cai, atol=1e-6)


# ---- architectures ------------------------------------------------------------------------


def test_registered_with_paper_sizes():
    """Both are in the registry; the paper size of the hierarchical model is qres34m itself
    (34,036,602 parameters, the same state_dict keys and shapes), with 12 latent layers of 16, 14,
    14, 12, 12, 12, 10, 10, 10, 8, 8, 8 channels at strides 64, 32, 32, 16, 16, 16, 8, 8, 8, 4, 4, 4;
    the published qres34m and qres17m are registered as fixed architectures."""
    assert {"dvae", "qres-vae", "qres34m", "qres17m"} <= set(ARCHITECTURES.names())
    assert ARCHITECTURES.get("qres-vae").size_args == ("ch",)
    assert ARCHITECTURES.get("qres34m").size_args == ARCHITECTURES.get("qres17m").size_args == ()
    with torch.device("meta"):
        paper = build_model("qres-vae", ARCHITECTURES.get("qres-vae").paper_sizes[4])
        zoo = build_model("qres34m", {})
    assert parameter_count(paper) == 34_036_602
    assert [(k, v.shape) for k, v in paper.state_dict().items()] == [(k, v.shape) for k, v in zoo.state_dict().items()]
    assert [b.zdim for b in paper.latent_blocks] == [16, 14, 14, 12, 12, 12, 10, 10, 10, 8, 8, 8]
    narrow = build_model("qres-vae", {"ch": 4}).eval()  # the strides do not depend on the width
    with torch.no_grad():
        heights = [st["z"].shape[2] for st in narrow(torch.zeros(1, 3, 128, 192))["layers"]]
    assert [128 // h for h in heights] == [64, 32, 32, 16, 16, 16, 8, 8, 8, 4, 4, 4]
    with pytest.raises(ValueError, match="at least 4"):
        build_model("qres-vae", {"ch": 3})
    hyper = build_model("bmshj2018-hyperprior", {"N": 128, "M": 192})
    single = build_model("dvae", {"N": 128, "M": 192})
    # the single-layer model has the hyperprior baseline's transforms (minus the hyperprior)
    assert parameter_count(single.g_a) == parameter_count(hyper.g_a)
    assert parameter_count(single.g_s) == parameter_count(hyper.g_s)


@pytest.mark.parametrize("arch", list(SIZES))
def test_training_forward_uses_noise_and_eval_rounds(arch):
    torch.manual_seed(0)
    model = build_model(arch, SIZES[arch])
    x = torch.rand(2, 3, 64, 64)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a["x_hat"], b["x_hat"])  # z = f + u, u drawn anew
    model.eval()
    a, b = model(x), model(x)
    assert torch.equal(a["x_hat"], b["x_hat"])
    assert all(((v > 0) & (v <= 1)).all() for v in a["likelihoods"].values())
    assert len(a["likelihoods"]) == (1 if arch == "dvae" else 12)


# ---- coding -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", list(SIZES))
def test_round_trip_odd_sizes_and_coded_rate_matches_estimate(work, arch):
    """Every crop (odd sizes) decodes to its own shape, equal to the encoder-side decode; the
    coded strings are within 3 % (+ the 32-bit rANS state flushed at the end of each string) of
    the model's estimated rate −Σ log2 P(z) on the same rounded latents."""
    codec = _codec(work, arch)
    for stem, (h, w) in CROPS.items():
        image = load_rgb8(work / "images" / f"{stem}.png")
        enc = codec.encode_verbose(image, 3)
        rec = _codec(work, arch).decode(enc.data)  # fresh instance: only bytes + checkpoint
        assert rec.shape == (h, w, 3) and rec.dtype == np.uint8
        assert pixel_sha256(rec) == enc.reconstruction_sha256
        c = unpack(enc.data)
        n_strings = sum(len(g) for g in c.strings)
        assert abs(c.payload_bytes * 8 - enc.estimated_bits) <= 0.03 * enc.estimated_bits + 32 * n_strings
        assert enc.estimated_bits > 500  # not degenerate: the latents carry the image
        assert 9 < distortion_metrics(image, rec)["psnr"] < 45


def test_coded_rate_matches_estimate_on_a_large_image(work):
    """On a full 512x512 photo, where the per-string flush is negligible: within 3 %."""
    from skimage import data

    image = np.ascontiguousarray(data.astronaut())
    for arch in SIZES:
        enc = _codec(work, arch, decode_check=False).encode_verbose(image, 3)
        assert unpack(enc.data).payload_bytes * 8 == pytest.approx(enc.estimated_bits, rel=0.03), arch


@pytest.mark.parametrize("arch", list(SIZES))
def test_decode_is_bit_exact_in_another_process(work, arch, tmp_path):
    codec = _codec(work, arch)
    image = load_rgb8(work / "images" / "astronaut.png")
    enc = codec.encode_verbose(image, 3)
    out = decode_in_another_process(arch, str(work / "models" / "{model}" / "q{rate_point}.pt"), enc.data, tmp_path)
    assert out.split()[-1] == enc.reconstruction_sha256


@pytest.mark.parametrize("arch", list(SIZES))
def test_corrupt_bytes_give_codec_error_or_an_image(work, arch):
    codec = _codec(work, arch, decode_check=False)
    data = codec.encode(load_rgb8(work / "images" / "coffee.png"), 3)
    assert_corruptions_decode_or_fail_cleanly(codec, data, trials=60, seed=11, max_seconds=2.0)
    with pytest.raises(CodecError, match="corrupt|decompress failed"):
        codec.decode(data[: len(data) // 2])


def test_checkpoint_keeps_the_coding_tables(work):
    """The float64 coding model (dvae) and the CDF tables (qres-vae) come from the checkpoint;
    loading does not recompute them."""
    m, meta = load_model(work / "models" / "dvae" / "q3.pt")
    assert m.coding_mean.dtype == torch.float64 and m.coding_mean.numel() == 48
    assert meta["arch"] == "dvae"
    q, _ = load_model(work / "models" / "qres-vae" / "q3.pt")
    assert all(b.discrete_gaussian._quantized_cdf.shape == (64, 249) for b in q.latent_blocks)


# ---- samples ------------------------------------------------------------------------------


def test_samples_continuous_and_integer_latents(work):
    """Same seed, same ε: the two kinds differ (rounding) but are each reproducible; shapes and
    range as documented; sizes that are not multiples of 64 are refused."""
    model, _ = load_model(work / "models" / "qres-vae" / "q3.pt")
    a = model.sample(3, 64, 64, integer=False, seed=5)
    b = model.sample(3, 64, 64, integer=True, seed=5)
    assert a.shape == b.shape == (3, 3, 64, 64) and a.dtype == torch.float32
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(b, model.sample(3, 64, 64, integer=True, seed=5))
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="multiples of 64"):
        model.sample(1, 65, 64, integer=True)


def _record_sample(model, integer, seed=1, temperature=1.0):
    """(prior means pm, prior scales pv, latents z) of each of the 12 blocks while sampling."""
    means, scales, latents = [], [], []
    for block in model.latent_blocks:
        def prior_params(feature, _orig=block.prior_params):
            out = _orig(feature)
            means.append(out[1])
            scales.append(out[3])
            return out

        def finish(feature, z, _orig=block.finish):
            latents.append(z)
            return _orig(feature, z)

        block.prior_params, block.finish = prior_params, finish
    model.sample(2, 64, 64, integer=integer, seed=seed, temperature=temperature)
    for block in model.latent_blocks:
        del block.prior_params, block.finish
    return means, scales, latents


def test_integer_samples_have_integer_offsets_from_the_prior_mean():
    """With integer latents every z − μ is an integer (a draw of the discretized Gaussian); with
    continuous ones z = μ + τ·σ·ε, the same ε (same seed) as the integer ones."""
    torch.manual_seed(0)
    model = build_model("qres-vae", SIZES["qres-vae"]).eval()
    for p in model.parameters():  # a non-trivial prior
        p.data.add_(torch.randn_like(p) * 0.05)
    means, scales, latents = _record_sample(model, integer=True)
    assert len(latents) == len(means) == 12
    assert any(float((z - mu).abs().max()) >= 1 for z, mu in zip(latents, means))
    for z, mu in zip(latents, means):
        d = z - mu
        assert torch.allclose(d, d.round(), atol=1e-4)
    means, scales, latents = _record_sample(model, integer=False, temperature=0.5)
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(means[0].shape, generator=g)  # the first block's ε (nothing else drawn before it)
    assert torch.allclose(latents[0], means[0] + 0.5 * scales[0] * eps, atol=1e-6)


def test_samples_stage_writes_the_figure_and_refuses_single_layer(work, tmp_path, params_file):
    from PIL import Image

    from benchmark.cli import main as cli_main

    params = params_file(lambda p: p["samples"].update(n=4, size=64, seed=3, temperature=1.0))
    out = tmp_path / "fig" / "qres"
    assert cli_main(["samples", "--params", str(params), "--checkpoint", str(work / "models" / "qres-vae" / "q3.pt"), "--out", str(out)]) == 0
    png = Image.open(out.with_suffix(".png"))
    assert png.size[0] > 400 and out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    rc = cli_main(["samples", "--params", str(params), "--checkpoint", str(work / "models" / "dvae" / "q3.pt"), "--out", str(tmp_path / "x")])
    assert rc == 2 and not (tmp_path / "x.png").exists()
    params = params_file(lambda p: p["samples"].update(n=4, size=100))
    assert cli_main(["samples", "--params", str(params), "--checkpoint", str(work / "models" / "qres-vae" / "q3.pt"), "--out", str(out)]) == 2


def test_dvae_rows_name_its_entropy_coder(work):
    """The codec_library column names every library that codes the bytes: constriction for dvae."""
    dvae, qres = _codec(work, "dvae"), _codec(work, "qres-vae")
    dvae.load(3)
    qres.load(3)
    assert "constriction 0." in dvae.library_version() and dvae.library_version().startswith("compressai ")
    assert "constriction" not in qres.library_version()
