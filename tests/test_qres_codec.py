"""The official QRes-VAE through the ``learned`` codec and our container: 12 string groups,
padding to a multiple of 64 by replicating the last row and column (the authors' compress_file),
cropped back after decoding, and a decode in a separate process that gives the pixels the
encoder expects, bit for bit.

The model is a narrow ``qres-vae`` (ch=4, all 12 latent blocks) with random weights perturbed so
that the latents depend on the image and span several bins (no training: this is about coding).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import decode_in_another_process

import benchmark.codecs.learned  # noqa: F401  (registers the learned codec)
from benchmark.codecs.base import build_codec
from benchmark.codecs.container import unpack
from benchmark.data.images import pixel_sha256
from benchmark.models.checkpoint import finalize_for_coding, save_checkpoint
from benchmark.models.specs import ARCHITECTURES, build_model

ROOT = Path(__file__).resolve().parents[1]
SIZE = {"ch": 4}
H, W = 100, 150  # padded to 128 x 192: latent shape (2, 3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _random_model():
    torch.manual_seed(0)
    model = build_model("qres-vae", SIZE)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
            if name.endswith("posterior.c4.weight"):
                p.mul_(30)  # posterior means far from the prior's: symbols of several bins
    return finalize_for_coding(model)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("qres-codec")
    model = _random_model()
    save_checkpoint(root / "qres-vae" / "q2.pt", {
        "arch": "qres-vae", "size": SIZE, "lmbda": 0.0035, "rate_point": 2, "step": 0,
        "state_dict": model.state_dict(), "coder_ready": True, "train_images_sha256": [],
    })
    from skimage import data

    image = np.ascontiguousarray(data.astronaut()[40 : 40 + H, 160 : 160 + W])
    return root, model, image


def _codec(root):
    return build_codec("learned", {"model": "qres-vae"}, checkpoints=str(root / "{model}" / "q{rate_point}.pt"))


def test_padding_is_the_authors(work):
    root, _, image = work
    assert ARCHITECTURES.get("qres-vae").padding == ARCHITECTURES.get("qres34m").padding == "replicate-bottom-right"
    assert ARCHITECTURES.get("mbt2018-mean").padding == "zeros-centred"
    x = _codec(root)._padded(image, "replicate-bottom-right")
    assert x.shape == (1, 3, 128, 192)
    ref = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    assert torch.equal(x[..., :H, :W], ref)
    assert torch.equal(x[..., H:, :W], ref[..., H - 1 :, :].expand(-1, -1, 128 - H, -1))
    assert torch.equal(x[..., :, W:], x[..., :, W - 1 : W].expand(-1, -1, -1, 192 - W))
    aligned = np.ascontiguousarray(np.pad(image, ((0, 128 - H), (0, 192 - W), (0, 0)), mode="edge"))
    assert torch.equal(_codec(root)._padded(aligned, "replicate-bottom-right"), x)  # no-op at multiples of 64


def test_container_round_trip_in_another_process(work, tmp_path, capsys):
    """Encode through the codec (12 string groups in the container), decode in a fresh process:
    the pixels equal the encoder's expected reconstruction, which is the model's own
    reconstruction of the edge-padded image, cropped at the top left; in-process decode too."""
    root, model, image = work
    enc = _codec(root).encode_verbose(image, 2)
    c = unpack(enc.data)
    assert len(c.strings) == 12 and all(len(g) == 1 for g in c.strings)
    assert c.shape == (2, 3) and (c.height, c.width) == (H, W) and c.model_id == "qres-vae/ch4/2"

    # the expected reconstruction, computed here without the codec
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    x = F.pad(x, (0, 192 - W, 0, 128 - H), mode="replicate")
    with torch.no_grad():
        x_hat = model.eval()(x)["x_hat"].clamp(0, 1)
    expected = x_hat[0, :, :H, :W].mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert enc.reconstruction_sha256 == pixel_sha256(np.ascontiguousarray(expected))

    out = decode_in_another_process("qres-vae", str(root / "{model}" / "q{rate_point}.pt"), enc.data, tmp_path)
    assert out.split()[-1] == enc.reconstruction_sha256 and "(100, 150, 3)" in out
    rec = _codec(root).decode(enc.data)
    assert np.array_equal(rec, expected)

    bits = c.payload_bytes * 8
    assert enc.estimated_bits > 1000 and bits > 1000  # the latents carry information
    with capsys.disabled():
        print(
            f"\nqres-vae ch=4 (random weights), {H}x{W}: container {8 * len(enc.data) / (H * W):.4f} bpp, "
            f"strings {bits / (H * W):.4f} bpp, estimated {enc.estimated_bits / (H * W):.4f} bpp "
            f"(over the padded 128x192 input; strings/estimate = {bits / enc.estimated_bits:.4f})"
        )


def test_library_version_of_a_trained_checkpoint_names_no_weights_file(work):
    root, _, image = work
    codec = _codec(root)
    codec.load(2)
    assert codec.library_version().startswith("compressai ") and "weights" not in codec.library_version()
