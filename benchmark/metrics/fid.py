"""FID and KID on image patches, with the HiFiC patch protocol.

Protocol (Mentzer, Toderici, Tschannen, Agustsson, NeurIPS 2020, "High-Fidelity Generative Image
Compression", Sec. 4 and App. A.7; as in NeuralCompression's patch FID): FID needs many samples
and Inception sees 299x299 inputs, so every image is cut into patches of ``patch`` x ``patch``
pixels (256): a grid of non-overlapping patches from the top-left corner, then a second grid
shifted by half a patch (``patch // 2``) in both directions; patches that do not fit entirely
are dropped. An H x W image gives ``(H // p) * (W // p) + ((H - p/2) // p) * ((W - p/2) // p)``
patches: 8 per 768x512 Kodak image (192 for Kodak), 1087 for the 49 wikipedia-photos.
The same patches are cut from the originals and from the reconstructions at one rate point, and

- **FID** (Heusel et al., NeurIPS 2017) is the Frechet distance between Gaussians fitted to the
  2048-d pool features of Inception V3 of the two patch sets;
- **KID** (Binkowski et al., ICLR 2018) is the unbiased MMD^2 with the cubic polynomial kernel,
  averaged over ``subsets`` random subsets of ``subset_size`` patches (capped at the patch count).

Features come from torch-fidelity's ``FeatureExtractorInceptionV3`` (the TensorFlow FID
Inception, its TF1-compatible bilinear resize to 299 and input scaling), loaded from a weight
file resolved by ``benchmark.metrics.weights``. FID and KID compute torch-fidelity's formulas
(its KID estimator ``mmd2`` and its subset draws) in a way that needs far less time for the
usual case of fewer patches than feature dimensions (see ``fid_from_features`` and
``kid_from_features``); they equal torch-fidelity's functions and
``torch_fidelity.calculate_metrics`` on the same patches (tested). FID over few
patches is biased upwards (Chong & Forsyth, CVPR 2020): the report marks values over fewer than
``metrics.figures.fid_indicative_below`` patches as indicative.
"""

from __future__ import annotations

import os
from typing import List, Tuple, Union

import numpy as np
import torch

from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.metrics.base import SetMetric, register
from benchmark.metrics.perceptual import WeightsLoadError, _load_state

PathLike = Union[str, "os.PathLike[str]"]

PATCH_SIZE = 256
FEATURE_LAYER = "2048"  # torch-fidelity's default FID/KID feature of its Inception V3
FEATURE_EXTRACTOR = "inception-v3-compat"  # torch-fidelity's registered name
KID_SEED = 2020  # torch-fidelity's default rng_seed: the same subsets as calculate_metrics


def patch_origins(height: int, width: int, patch: int = PATCH_SIZE) -> List[Tuple[int, int]]:
    """(top, left) of every HiFiC patch of an ``height`` x ``width`` image: the grid from (0, 0),
    row by row, then the grid from (patch // 2, patch // 2). Empty when the image is smaller
    than one patch. Raises ``ValueError`` for a non-positive size or an odd ``patch``."""
    if patch <= 0 or patch % 2:
        raise ValueError(f"patch size must be a positive even number of pixels, got {patch}")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    out = []
    for off in (0, patch // 2):
        for top in range(off, height - patch + 1, patch):
            for left in range(off, width - patch + 1, patch):
                out.append((top, left))
    return out


def extract_patches(image: np.ndarray, patch: int = PATCH_SIZE) -> torch.Tensor:
    """The HiFiC patches (``patch_origins`` order) of one uint8 (H, W, 3) image as a uint8
    tensor (P, 3, patch, patch); P may be 0. Raises ``ValueError`` for anything but uint8 HxWx3."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype}{image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {desc}")
    origins = patch_origins(image.shape[0], image.shape[1], patch)
    t = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1)
    if not origins:
        return torch.zeros((0, 3, patch, patch), dtype=torch.uint8)
    return torch.stack([t[:, y : y + patch, x : x + patch] for y, x in origins]).contiguous()


def load_inception(weights: PathLike, device: Union[str, torch.device] = "cpu") -> torch.nn.Module:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` (2048-d pool features, float32 inside)
    with its state dict loaded strictly from ``weights`` (the file torch-fidelity downloads as
    ``weights-inception-2015-12-05-6726825d.pth``), on ``device``, eval mode, no gradients.

    Raises ``WeightsLoadError`` naming the file if it does not load.
    """
    ensure_torchvision_importable()
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # The constructor reads the file itself (torch.load with weights_only=False, then a strict
    # load_state_dict); reading it first with weights_only=True refuses a pickle that is more than
    # tensors before that happens.
    _load_state(weights, "torch-fidelity InceptionV3")
    try:
        model = FeatureExtractorInceptionV3(FEATURE_EXTRACTOR, [FEATURE_LAYER], feature_extractor_weights_path=str(weights))
    except (RuntimeError, KeyError) as e:
        raise WeightsLoadError(f"{weights}: does not fit torch-fidelity's InceptionV3 ({e})") from None
    return model.eval().requires_grad_(False).to(device)


def inception_features(patches: torch.Tensor, model: torch.nn.Module, batch_size: int = 8) -> torch.Tensor:
    """Inception V3 pool features (torch-fidelity's "2048") of uint8 patches (P, 3, h, w),
    ``batch_size`` patches per call on the model's device. Returns float32 (P, 2048) on the CPU.
    Raises ``ValueError`` for anything but a uint8 (P, 3, h, w) tensor."""
    if not isinstance(patches, torch.Tensor) or patches.dtype != torch.uint8 or patches.ndim != 4 or patches.shape[1] != 3:
        desc = f"{patches.dtype}{tuple(patches.shape)}" if isinstance(patches, torch.Tensor) else type(patches).__name__
        raise ValueError(f"expected uint8 patches (P, 3, h, w), got {desc}")
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, patches.shape[0], batch_size):
            (f,) = model(patches[i : i + batch_size].to(device))
            out.append(f.to(torch.float32).cpu())
    return torch.cat(out) if out else torch.zeros((0, 2048), dtype=torch.float32)


def _features(f, name: str) -> torch.Tensor:
    t = f if isinstance(f, torch.Tensor) else torch.from_numpy(np.asarray(f))
    if t.ndim != 2:
        raise ValueError(f"{name}: expected features of shape (P, D), got {tuple(t.shape)}")
    return t.to(torch.float32).cpu()


def _centered(f: torch.Tensor) -> np.ndarray:
    a = f.numpy().astype(np.float64)
    return a - a.mean(axis=0)


def fid_from_features(features_rec, features_ref) -> float:
    """FID between two feature sets (P1, D) and (P2, D), float32 (torch or numpy):
    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`` with the unbiased covariances
    ``S = A^T A / (P - 1)`` of the centred features ``A``, in float64.

    For at most D patches per set, ``tr((S1 S2)^(1/2))`` is computed exactly as the nuclear norm
    of ``A1 A2^T`` (P1 x P2) over ``sqrt((P1 - 1)(P2 - 1))``: the non-zero eigenvalues of
    ``S1 S2 = A1^T (A1 A2^T A2) / c`` are those of ``(A1 A2^T)(A1 A2^T)^T / c``. This is the same
    number as torch-fidelity's ``fid_statistics_to_metric`` (eigenvalues of the D x D product,
    which it needs ~3 s per call for D = 2048), in milliseconds; with more patches than D,
    torch-fidelity's functions are called as they are. Tested against both. NaN if a set has
    fewer than 2 rows. Unitless, >= 0 up to rounding, lower is better.

    Raises ``ValueError`` if the shapes are not 2-d with the same D."""
    a, b = _features(features_rec, "features_rec"), _features(features_ref, "features_ref")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    n1, n2, d = a.shape[0], b.shape[0], a.shape[1]
    if n1 < 2 or n2 < 2:
        return float("nan")
    if max(n1, n2) > d:
        ensure_torchvision_importable()  # torch_fidelity imports torchvision
        from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

        out = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), verbose=False)
        return float(out["frechet_inception_distance"])
    a64, b64 = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    diff = a64.mean(axis=0) - b64.mean(axis=0)
    ca, cb = _centered(a), _centered(b)
    tr_a, tr_b = float((ca * ca).sum()) / (n1 - 1), float((cb * cb).sum()) / (n2 - 1)
    nuclear = float(np.linalg.svd(ca @ cb.T, compute_uv=False).sum())
    return float(diff @ diff + tr_a + tr_b - 2.0 * nuclear / np.sqrt((n1 - 1) * (n2 - 1)))


def kid_from_features(features_rec, features_ref, subsets: int = 100, subset_size: int = 1000, seed: int = KID_SEED) -> Tuple[float, float]:
    """KID (mean, std over subsets) between feature sets (P1, D) and (P2, D) as torch-fidelity's
    ``kid_features_to_metric``: cubic polynomial kernel ``(x.y / D + 1)^3``, its unbiased MMD^2
    (``torch_fidelity.metric_kid.mmd2``), ``subsets`` subsets of ``min(subset_size, P1, P2)``
    rows drawn without replacement by ``numpy.random.RandomState(seed)`` (rec first, then ref,
    as torch-fidelity's input1/input2: the same subsets). The kernel matrices are computed once
    over all rows and each subset's are cut out of them (torch-fidelity recomputes them per
    subset: 100 times the work), in float64. Tested against torch-fidelity.
    (NaN, NaN) if a set has fewer than 2 rows. Unitless; may be slightly negative; lower is better.

    Raises ``ValueError`` if the shapes are not 2-d with the same D."""
    ensure_torchvision_importable()  # torch_fidelity imports torchvision
    from torch_fidelity.metric_kid import mmd2

    a, b = _features(features_rec, "features_rec"), _features(features_ref, "features_ref")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    n1, n2, d = a.shape[0], b.shape[0], a.shape[1]
    m = min(subset_size, n1, n2)
    if m < 2:
        return float("nan"), float("nan")
    x, y = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
    k_xx, k_yy, k_xy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        s1 = rng.choice(n1, m, replace=False)
        s2 = rng.choice(n2, m, replace=False)
        mmds[i] = mmd2(k_xx[np.ix_(s1, s1)], k_xy[np.ix_(s1, s2)], k_yy[np.ix_(s2, s2)])
    return float(np.mean(mmds)), float(np.std(mmds))


# --- registry entries ----------------------------------------------------------------------


def _load_inception_files(files, device) -> torch.nn.Module:
    return load_inception(files["inception"], device)


def _fid(ref, rec, patches) -> dict:
    return {"fid": fid_from_features(rec, ref)}


def _kid(ref, rec, patches) -> dict:
    kid, std = kid_from_features(rec, ref, patches.kid_subsets, patches.kid_subset_size)
    return {"kid": kid, "kid_std": std}


register(
    SetMetric(
        "fid", "FID (256x256 patches)", higher_is_better=False, kind="perception", weights=("inception",),
        package="torch-fidelity", reference="Heusel et al., NeurIPS 2017; patches as Mentzer et al. (HiFiC), NeurIPS 2020",
        extractor="inception", load=_load_inception_files, features=inception_features, from_features=_fid, columns=("fid",),
    )
)
register(
    SetMetric(
        "kid", "KID (256x256 patches)", higher_is_better=False, kind="perception", weights=("inception",),
        package="torch-fidelity", reference="Binkowski et al., ICLR 2018; patches as Mentzer et al. (HiFiC), NeurIPS 2020",
        extractor="inception", load=_load_inception_files, features=inception_features, from_features=_kid, columns=("kid", "kid_std"),
    )
)
