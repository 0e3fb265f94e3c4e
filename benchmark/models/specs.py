"""Architecture registry: name -> constructor, channel arguments, paper, CompressAI zoo name, padding."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

from benchmark._torchvision_compat import ensure_torchvision_importable
from benchmark.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """One architecture.

    ``factory()`` returns the model class; it is called with ``size`` keyword arguments (channel
    counts, e.g. ``{"N": 128, "M": 192}``). ``zoo`` is the CompressAI zoo name of pretrained
    weights for it (None: none published). ``paper_sizes`` are the published channel counts per
    zoo quality (1..8), used by the ``paper`` budget. ``coders``: packages besides CompressAI
    whose entropy coder writes its bitstreams (recorded in the ``codec_library`` column).
    ``padding``: how the ``learned`` codec brings an image to a multiple of 64 px before
    ``compress`` and crops the reconstruction back (one of ``PADDINGS``): ``zeros-centred``,
    zeros on all sides, centred (CompressAI's ``eval_model``, ``compressai.ops.compute_padding``),
    ``replicate-bottom-right``, the edge pixels replicated to the right and bottom (the
    QRes-VAE authors' ``compress_file``), or ``zeros-bottom-right``, zeros to the right and
    bottom with the image top-left (the SIC authors' ``main.py``); the decoder crops the same way.
    ``progressive``: one model serves every rate point (SIC's levels): it is made once by the
    ``model-progressive`` stage (``train.progressive``), never per quality. ``file_loader()``
    returns ``load(model, path) -> model``, which loads the weight file its authors publish
    (``models.<name>.source: file``, ``benchmark.models.official``); ``file_source`` says where
    to get such files (for the error when one is missing); ``file_meta`` is what every such
    checkpoint records of how the authors trained it.
    """

    name: str
    factory: Callable[[], Callable[..., Any]]
    size_args: Tuple[str, ...]
    paper: str
    zoo: Optional[str] = None
    paper_sizes: Optional[Dict[int, Dict[str, int]]] = None
    coders: Tuple[str, ...] = ()
    padding: str = "zeros-centred"
    progressive: bool = False
    file_loader: Optional[Callable[[], Callable[[Any, Any], Any]]] = None
    file_source: str = ""
    file_meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.padding not in PADDINGS:
            raise ValueError(f"model {self.name!r}: padding {self.padding!r} is not one of {PADDINGS}")

    def build(self, **size: int):
        """Instantiate with channel counts ``size`` (keys must be exactly ``size_args``; none for a fixed architecture)."""
        if set(size) != set(self.size_args):
            raise ValueError(f"model {self.name!r} takes sizes {list(self.size_args)}, got {sorted(size)}")
        return self.factory()(**size)


PADDINGS = ("zeros-centred", "replicate-bottom-right", "zeros-bottom-right")

ARCHITECTURES: Registry[ModelSpec] = Registry("model architecture")


def _compressai(cls_name: str) -> Callable[[], type]:
    def factory() -> type:
        ensure_torchvision_importable()
        import compressai.models

        return getattr(compressai.models, cls_name)

    return factory


def _sizes(low: Dict[str, int], high: Dict[str, int], split: int = 5) -> Dict[int, Dict[str, int]]:
    return {q: (low if q <= split else high) for q in range(1, 9)}


for _name, _cls, _args, _paper, _paper_sizes in [
    (
        "bmshj2018-factorized",
        "FactorizedPrior",
        ("N", "M"),
        "Balle et al., Variational image compression with a scale hyperprior, ICLR 2018 (factorized prior)",
        _sizes({"N": 128, "M": 192}, {"N": 192, "M": 320}),
    ),
    (
        "bmshj2018-hyperprior",
        "ScaleHyperprior",
        ("N", "M"),
        "Balle et al., Variational image compression with a scale hyperprior, ICLR 2018",
        _sizes({"N": 128, "M": 192}, {"N": 192, "M": 320}),
    ),
    (
        "mbt2018-mean",
        "MeanScaleHyperprior",
        ("N", "M"),
        "Minnen et al., Joint autoregressive and hierarchical priors, NeurIPS 2018 (mean-scale hyperprior)",
        _sizes({"N": 128, "M": 192}, {"N": 192, "M": 320}),
    ),
    (
        "mbt2018",
        "JointAutoregressiveHierarchicalPriors",
        ("N", "M"),
        "Minnen et al., Joint autoregressive and hierarchical priors, NeurIPS 2018",
        _sizes({"N": 192, "M": 192}, {"N": 192, "M": 320}, split=4),
    ),
    (
        "cheng2020-anchor",
        "Cheng2020Anchor",
        ("N",),
        "Cheng et al., Learned image compression with discretized Gaussian mixture likelihoods and attention modules, CVPR 2020 (anchor)",
        _sizes({"N": 128}, {"N": 192}, split=3),
    ),
    (
        "cheng2020-attn",
        "Cheng2020Attention",
        ("N",),
        "Cheng et al., Learned image compression with discretized Gaussian mixture likelihoods and attention modules, CVPR 2020 (attention)",
        _sizes({"N": 128}, {"N": 192}, split=3),
    ),
]:
    ARCHITECTURES.register(_name)(ModelSpec(_name, _compressai(_cls), _args, _paper, zoo=_name, paper_sizes=_paper_sizes))


def _local(cls_name: str) -> Callable[[], type]:
    def factory() -> type:
        from benchmark.models import vae

        return getattr(vae, cls_name)

    return factory


# The discretized VAEs of this project (benchmark/models/vae.py); no published weights.
ARCHITECTURES.register("dvae")(
    ModelSpec(
        "dvae",
        _local("DiscretizedVAE"),
        ("N", "M"),
        "Single-layer discretized VAE (uniform posterior, discretized Gaussian prior), as in Duan et al., "
        "Lossy image compression with quantized hierarchical VAEs, WACV 2023; transforms of Balle et al. 2018",
        paper_sizes=_sizes({"N": 128, "M": 192}, {"N": 192, "M": 320}),
        coders=("constriction",),
    )
)


def _qres(fn_name: str) -> Callable[[], Callable[..., Any]]:
    def factory() -> Callable[..., Any]:
        from benchmark.models import qres

        return getattr(qres, fn_name)

    return factory


# QRes-VAE (benchmark/models/qres.py): the authors' architecture and state_dict layout. `qres-vae`
# is the one trained here (the qres34m structure at width `ch`); `qres34m` and `qres17m` are the
# published models, fixed, for their pretrained weights (benchmark/models/published.py).
_QRES_PAPER = "Duan et al., Lossy image compression with quantized hierarchical VAEs, WACV 2023"
for _name, _fn, _args, _paper, _paper_sizes in [
    ("qres-vae", "qres_vae", ("ch",), f"{_QRES_PAPER} (QRes-VAE, qres34m structure at width ch)", {"ch": 96}),
    ("qres34m", "qres34m", (), f"{_QRES_PAPER} (QRes-VAE qres34m, ImageNet-trained, 34.0M parameters)", {}),
    ("qres17m", "qres17m", (), f"{_QRES_PAPER} (QRes-VAE qres17m, CelebA-trained, 16.7M parameters)", {}),
]:
    ARCHITECTURES.register(_name)(
        ModelSpec(_name, _qres(_fn), _args, _paper, paper_sizes={q: dict(_paper_sizes) for q in range(1, 9)},
                  padding="replicate-bottom-right")
    )


def _sic(fn_name: str) -> Callable[[], Callable[..., Any]]:
    def factory() -> Callable[..., Any]:
        from benchmark.models import sic

        return getattr(sic, fn_name)

    return factory


# Progressive SIC (benchmark/models/sic.py): the authors' architecture and state_dict layout. `sic`
# is the official structure at latent width `dim` with `heads` attention heads (dim=96, heads=4:
# 3.10M parameters, the proposed CPU size); `sic-official` is the published model (dim 512,
# 16 heads, 87.2M parameters), fixed, for the authors' checkpoints (source: file). One model
# covers all 16 rate levels (the transmitted slices); the authors zero-pad bottom/right to
# multiples of 64.
_SIC_PAPER = "Liang et al., Synonymous variational inference for perceptual image compression, ICML 2025"
SIC_CHECKPOINTS = (
    "the SIC authors' Google Drive folder https://drive.google.com/drive/folders/1o9_tEeSFcmlcF8UaZuCWISWR8ZY91X8o "
    "(linked from github.com/ZJLiang6412/SynonymousImageCompression): four checkpoints of the official model, "
    "progressive SIC trained with MSE + LPIPS + rate at M=1 and at M=5, and both fine-tuned with a GAN"
)
SIC_OFFICIAL_LOSS = (
    "the authors' (config.py): 0.5·[λ16·MSE + γ16·LPIPS + β16·bpp] + 0.5·[λℓ·E MSE + γℓ·E LPIPS + βℓ·bpp_ℓ] "
    "+ synonym and sample distances, λℓ = 128ℓ, γℓ = 2^(5-ℓ/8), βℓ = 2^(6-3ℓ/8)"
)
for _name, _fn, _args, _paper, _paper_sizes, _loader in [
    ("sic", "sic", ("dim", "heads"), f"{_SIC_PAPER} (progressive SIC, official structure at width dim)",
     {"dim": 512, "heads": 16}, None),
    ("sic-official", "sic_official", (), f"{_SIC_PAPER} (progressive SIC, the published model, 87.2M parameters)", {},
     _sic("load_official_checkpoint")),
]:
    ARCHITECTURES.register(_name)(
        ModelSpec(_name, _sic(_fn), _args, _paper, paper_sizes={q: dict(_paper_sizes) for q in range(1, 9)},
                  padding="zeros-bottom-right", progressive=True, file_loader=_loader,
                  file_source=SIC_CHECKPOINTS if _loader else "",
                  file_meta={"levels": 16, "perceptual": "lpips", "phases": None, "loss": SIC_OFFICIAL_LOSS} if _loader else {})
    )


def build_model(arch: str, size: Dict[str, Any]):
    """Instantiate architecture ``arch`` with channel counts ``size`` (a fresh, untrained model)."""
    return ARCHITECTURES.get(arch).build(**{k: int(v) for k, v in size.items()})
