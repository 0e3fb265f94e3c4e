"""FID / KID with the HiFiC patch protocol, against torch-fidelity itself.

The Inception weights are created by the test (random conv weights, batch-norm statistics
calibrated on a few photo patches; see ``weights_factory.make_inception``), saved under the
published file name in a fake torch hub cache where both our resolution path and
``torch_fidelity.calculate_metrics`` find them.
"""

import numpy as np
import pytest
import torch

from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.config import MetricsConfig
from benchmark.metrics import fid as F
from benchmark.metrics import weights as W
from benchmark.metrics.suite import PerceptualSuite
from weights_factory import fake_hub

ensure_torchvision_importable()


# ---- the patch protocol -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "h, w, n",
    [(512, 768, 8), (768, 512, 8), (512, 512, 5), (256, 256, 1), (383, 600, 2), (384, 640, 4), (255, 1000, 0)],
)
def test_patch_counts(h, w, n):
    # Kodak: 6 + 2 = 8 per image, 192 for the 24 images (HiFiC's count).
    assert len(F.patch_origins(h, w)) == n
    assert len(F.patch_origins(h, w)) == (h // 256) * (w // 256) + max(0, (h - 128) // 256) * max(0, (w - 128) // 256)


def test_patch_grid_then_shifted_grid():
    assert F.patch_origins(512, 768) == [(0, 0), (0, 256), (0, 512), (256, 0), (256, 256), (256, 512), (128, 128), (128, 384)]
    assert F.patch_origins(10, 10, patch=4) == [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2), (2, 6), (6, 2), (6, 6)]
    with pytest.raises(ValueError, match="even"):
        F.patch_origins(10, 10, patch=3)


def test_extract_patches_are_the_pixels(astronaut):
    p = F.extract_patches(astronaut)
    assert p.dtype == torch.uint8 and tuple(p.shape) == (5, 3, 256, 256)
    top, left = F.patch_origins(512, 512)[4]
    np.testing.assert_array_equal(p[4].permute(1, 2, 0).numpy(), astronaut[top : top + 256, left : left + 256])
    assert F.extract_patches(astronaut[:200]).shape == (0, 3, 256, 256)
    with pytest.raises(ValueError, match="uint8 \\(H, W, 3\\)"):
        F.extract_patches(astronaut.astype(np.float32))


def test_fid_kid_need_two_patches():
    f = torch.ones(1, 2048)
    assert np.isnan(F.fid_from_features(f, f)) and np.isnan(F.kid_from_features(f, f)[0])
    with pytest.raises(ValueError, match="dimensions differ"):
        F.fid_from_features(torch.zeros(3, 4), torch.zeros(3, 5))


@pytest.mark.parametrize("n1, n2, d", [(13, 13, 2048), (150, 120, 2048), (300, 200, 64)])  # the last: more rows than D
def test_fid_kid_functions_equal_torch_fidelity_on_the_same_features(n1, n2, d):
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    g = torch.Generator().manual_seed(n1)
    a, b = torch.randn(n1, d, generator=g) * 0.5 + 0.3, torch.randn(n2, d, generator=g) * 0.6
    ref = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), verbose=False)
    # Ours is float64 throughout; torch-fidelity takes the means in float32: ~1e-7 relative.
    assert F.fid_from_features(a, b) == pytest.approx(ref["frechet_inception_distance"], rel=1e-6)
    assert F.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-9 * d)
    m = min(n1, n2) - 3
    kid = kid_features_to_metric(a, b, kid_subsets=20, kid_subset_size=m, verbose=False)  # float32 kernels
    mean, std = F.kid_from_features(a, b, subsets=20, subset_size=m)
    assert mean == pytest.approx(kid["kernel_inception_distance_mean"], rel=1e-6)
    # The std over subsets is small next to the kernel sums; torch-fidelity's float32 adds ~1e-7 to it.
    assert std == pytest.approx(kid["kernel_inception_distance_std"], rel=1e-3, abs=1e-6)


# ---- against torch-fidelity, with created Inception weights -----------------------------------


class _Patches(torch.utils.data.Dataset):
    """uint8 (3, h, w) tensors, the input type torch-fidelity's calculate_metrics takes."""

    def __init__(self, t):
        self.t = t

    def __len__(self):
        return len(self.t)

    def __getitem__(self, i):
        return self.t[i]


def _noisy(img, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def hub_inception(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("inception")
    fake_hub(root, mp, ["inception"])
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def images():
    """Two photos (chelsea 300x451: 1 patch, astronaut cropped to 400x512: 3 patches) and two
    noise levels of each: 4 reference patches per set."""
    from skimage import data

    refs = [np.ascontiguousarray(data.chelsea()), np.ascontiguousarray(data.astronaut()[:400])]
    return refs, {sigma: [_noisy(r, sigma, i) for i, r in enumerate(refs)] for sigma in (8, 40)}


def test_fid_kid_equal_torch_fidelity(hub_inception, images):
    import torch_fidelity

    refs, recs = images
    suite = PerceptualSuite(MetricsConfig(perceptual=("fid", "kid"), download=False, batch_size=3))
    assert suite.status["fid"].status == "computed", suite.status["fid"]
    for i, ref in enumerate(refs):
        suite.add_patches(ref, [(sigma, recs[sigma][i]) for sigma in (8, 40)])
    rows = {r["rate_point"]: r for r in suite.set_rows()}
    assert rows[8]["n_patches"] == rows[40]["n_patches"] == 4 and rows[8]["n_images"] == 2

    ref_patches = torch.cat([F.extract_patches(r) for r in refs])
    for sigma in (8, 40):
        rec_patches = torch.cat([F.extract_patches(r) for r in recs[sigma]])
        direct = torch_fidelity.calculate_metrics(
            input1=_Patches(rec_patches), input2=_Patches(ref_patches), fid=True, kid=True, cuda=False, cache=False,
            save_cpu_ram=True, verbose=False, kid_subset_size=4, batch_size=4,
        )
        # Same features and formulas; ours in float64, torch-fidelity's means and KID kernels in
        # float32: ~1e-7 relative. The KID std over (here identical) subsets is float32 noise there.
        kid_scale = max(1.0, abs(direct["kernel_inception_distance_mean"]))
        assert rows[sigma]["fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-5)
        assert rows[sigma]["kid"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-5, abs=1e-9)
        assert rows[sigma]["kid_std"] == pytest.approx(direct["kernel_inception_distance_std"], rel=1e-3, abs=1e-6 * kid_scale)
    # FID grows with the distortion.
    assert 0 < rows[8]["fid"] < rows[40]["fid"]


def test_fid_identical_images_near_zero_and_grows(hub_inception, images):
    refs, recs = images
    model = F.load_inception(W.resolve_weights("inception").path)
    ref = torch.cat([F.inception_features(F.extract_patches(r), model, 4) for r in refs])
    assert ref.shape == (4, 2048) and ref.dtype == torch.float32
    same = F.fid_from_features(ref, ref)
    far = torch.cat([F.inception_features(F.extract_patches(r), model, 4) for r in recs[40]])
    # 4 samples in 2048 dimensions: the matrix square root is computed from rank-deficient
    # covariances, so "zero" is zero up to a small rounding residue.
    assert abs(same) < 1e-4 * F.fid_from_features(far, ref)
    assert F.kid_from_features(far, ref)[0] > F.kid_from_features(ref, ref)[0]


def test_inception_refuses_other_weights(tmp_path):
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "x.pth")
    with pytest.raises(Exception, match="x.pth: does not fit torch-fidelity's InceptionV3"):
        F.load_inception(tmp_path / "x.pth")
