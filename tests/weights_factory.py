"""Weight files made by the tests, for the networks whose published weights cannot be downloaded
here (LPIPS's AlexNet, DISTS's VGG16 + alpha/beta, FID's Inception V3).

Each file is a real state dict of the real architecture, randomly initialised with a fixed
seed, saved under the published file name in a fake torch hub cache (``$TORCH_HOME`` set by
``monkeypatch``), where both the packages themselves (lpips, piq, torch-fidelity) and our
resolution path (``benchmark.metrics.weights``) find it. Our resolution checks files in the
cache against the published SHA-256; ``fake_hub`` points that expectation at the created file
(monkeypatching ``WEIGHT_FILES``), so the same code path runs as with the real weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, Iterable
from unittest import mock

import torch

from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.data.download import sha256_file
from benchmark.metrics import weights as W


def _zero_classifier(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The ``classifier.*`` tensors (never used by LPIPS or DISTS) as stride-0 views of one zero:
    same keys and shapes, so strict loading works, but a few bytes on disk instead of hundreds of MB."""
    zero = torch.zeros(1)
    return {k: (zero.expand(v.shape) if k.startswith("classifier.") else v) for k, v in state.items()}


def make_alexnet(path: Path, seed: int = 0) -> Path:
    """torchvision AlexNet state dict: random conv layers (seed), as ``alexnet-owt-7be5be79.pth``
    would hold it (the classifier zero, see ``_zero_classifier``)."""
    ensure_torchvision_importable()
    from torchvision.models import alexnet

    torch.manual_seed(seed)
    torch.save(_zero_classifier(alexnet(weights=None).state_dict()), path)
    return path


def make_vgg16(path: Path, seed: int = 0) -> Path:
    """torchvision VGG16 state dict: random conv layers (seed); the classifier, which DISTS never
    uses, zero as in ``_zero_classifier`` (the file is ~59 MB instead of 528; the full model is
    never built, only its shapes on the meta device)."""
    ensure_torchvision_importable()
    from torchvision.models import vgg16

    torch.manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg16(weights=None).state_dict().items()}
    feats = torch.nn.Sequential(*[m for m in _vgg16_features()])
    state = {f"features.{k}": v for k, v in feats.state_dict().items()}
    zero = torch.zeros(1)
    state.update({k: zero.expand(shape) for k, shape in shapes.items() if k.startswith("classifier.")})
    assert set(state) == set(shapes)
    torch.save(state, path)
    return path


def _vgg16_features() -> Iterable[torch.nn.Module]:
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    c = 3
    for v in cfg:
        if v == "M":
            yield torch.nn.MaxPool2d(kernel_size=2, stride=2)
        else:
            yield torch.nn.Conv2d(c, v, kernel_size=3, padding=1)
            yield torch.nn.ReLU(inplace=True)
            c = v


def make_dists(path: Path, seed: int = 0) -> Path:
    """DISTS ``{"alpha", "beta"}`` of shape (1, 1475, 1, 1): random positive, summing to 1 together
    (as the published weights do, so identical images give distance 0)."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.rand(1, 1475, 1, 1, generator=g), torch.rand(1, 1475, 1, 1, generator=g)
    total = a.sum() + b.sum()
    torch.save({"alpha": a / total, "beta": b / total}, path)
    return path


def make_inception(path: Path, seed: int = 0) -> Path:
    """torch-fidelity's InceptionV3: random conv weights (seed), batch-norm statistics calibrated
    on scikit-image photo patches (one pass in training mode, cumulative averages) so that the
    random network's 2048-d features are of order 1 rather than vanishing. Saved as
    ``weights-inception-2015-12-05-6726825d.pth`` would hold it."""
    ensure_torchvision_importable()
    import torch_fidelity.feature_extractor_inceptionv3 as fe
    from skimage import data

    from benchmark.metrics.fid import extract_patches

    torch.manual_seed(seed)
    with mock.patch.object(fe, "load_state_dict_from_url", return_value={}), mock.patch.object(
        fe.FeatureExtractorInceptionV3, "load_state_dict", return_value=None
    ):
        m = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = None
            mod.reset_running_stats()
    calib = torch.cat([extract_patches(data.coffee()), extract_patches(data.rocket())])
    m.train()
    with torch.no_grad():
        m(calib)
    m.eval()
    torch.save(m.state_dict(), path)
    return path


MAKERS = {"alexnet": make_alexnet, "vgg16": make_vgg16, "dists": make_dists, "inception": make_inception}


def fake_hub(root: Path, monkeypatch, keys: Iterable[str], seed: int = 0) -> Dict[str, Path]:
    """Create the weight files ``keys`` (of ``MAKERS``) in ``root/torch/hub/checkpoints`` under
    their published names, point ``TORCH_HOME`` at ``root/torch``, and make our resolution
    accept them (``WEIGHT_FILES[key].sha256`` := their SHA-256). Returns key -> path."""
    hub = root / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    out = {}
    for key in keys:
        spec = W.WEIGHT_FILES[key]
        path = MAKERS[key](hub / spec.file, seed)
        monkeypatch.setitem(W.WEIGHT_FILES, key, dataclasses.replace(spec, sha256=sha256_file(path)))
        out[key] = path
    return out
