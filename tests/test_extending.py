"""README "Extending", each path exercised from outside the package: a metric, a codec, a data
set source and a learned architecture, each defined in a plugin module (``plugins`` in
params.yaml), with no other change, run through the stages' command line."""

import json
import sys
import textwrap

import pandas as pd
import pytest

import benchmark.codecs.classical  # noqa: F401  (built-in entries registered before the fixture's snapshot)
import benchmark.codecs.learned  # noqa: F401
from benchmark.cli import main as cli_main
from benchmark.codecs.base import CODECS
from benchmark.data.sources import DATASET_SOURCES
from benchmark.metrics.base import METRICS
from benchmark.models.specs import ARCHITECTURES

REGISTRIES = (METRICS, CODECS, DATASET_SOURCES, ARCHITECTURES)


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """``plugin(name, source)``: write a module into a directory on sys.path; the registries and
    sys.modules are restored after the test."""
    before = [set(r.names()) for r in REGISTRIES]
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    names = []

    def write(name, source):
        (tmp_path / "plugins").mkdir(exist_ok=True)
        (tmp_path / "plugins" / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for r, names_before in zip(REGISTRIES, before):
        for n in set(r.names()) - names_before:
            r.remove(n)
    for n in names:
        sys.modules.pop(n, None)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    from benchmark.config import DatasetConfig
    from benchmark.data.dataset import fetch_dataset

    out = tmp_path_factory.mktemp("data") / "small"
    fetch_dataset(DatasetConfig(name="small", source="builtin", images=("chelsea", "coffee")), out, mirror=None)
    return out


def _run(*argv):
    rc = cli_main([str(a) for a in argv])
    assert rc == 0, argv
    return rc


def _evaluate(stage, params, codec, data, res, *extra):
    _run(stage, "--params", params, "--dataset", "small", "--codec", codec, "--data", data, "--workers", "1",
         "--out", res / "per_image" / f"{codec}.csv", "--set-out", res / "perception" / f"{codec}.csv",
         "--status-out", res / "perception" / f"{codec}.json", *extra)


TOY_METRIC = """
    from benchmark.metrics.base import METRICS, Metric

    def l1(ref, rec):
        import torch
        a, b = torch.as_tensor(ref).double(), torch.as_tensor(rec).double()
        return (a - b).abs().mean(dim=(1, 2, 3)).numpy()

    METRICS.add("l1", Metric("l1", "L1 (RGB, 0-255)", higher_is_better=False, fn=l1, bd_axis=True))
"""


def test_a_metric_from_outside_reaches_every_table_and_figure(plugin, params_file, small_set, tmp_path, capsys):
    name = plugin("toy_metric_plugin", TOY_METRIC)

    def run(p):
        p["plugins"] = [name]
        p["codecs"]["jpeg"]["rate_points"] = [20, 50, 80]
        p["codecs"]["webp"]["rate_points"] = [20, 50, 80]
        p["evaluate"].update(codecs=["jpeg", "webp"], learned=[], variants=[], progressive=[])
        p["metrics"].update(perceptual=["haarpsi"], download=False)
        p["metrics"]["figures"]["dp"] = ["haarpsi"]
        p["check"]["tolerances"]["l1"] = 0.05

    params, res = params_file(run), tmp_path / "results"
    for codec in ("jpeg", "webp"):
        _evaluate("evaluate", params, codec, small_set, res)
    _run("report", "--params", params, "--dataset", "small", "--results", res / "per_image", "--data", small_set,
         "--out", res, "--perception", res / "perception")

    rows = pd.read_csv(res / "per_image" / "jpeg.csv")
    assert list(rows.columns).index("l1") == list(rows.columns).index("haarpsi") + 1  # a metric column, in order
    assert (rows.sort_values("rate_point").groupby("image").l1.apply(lambda s: s.is_monotonic_decreasing)).all()
    summary = pd.read_csv(res / "summary.csv")
    assert summary.l1.notna().all()
    bd = pd.read_csv(res / "bd_rate.csv")
    l1 = bd[(bd.metric == "l1") & (bd.codec == "webp") & (bd.anchor == "jpeg") & (bd.method == "pchip")]
    psnr = bd[(bd.metric == "psnr") & (bd.codec == "webp") & (bd.anchor == "jpeg") & (bd.method == "pchip")]
    assert len(l1) == 1 and pd.notna(l1.bd_rate_pct.iloc[0])
    assert (l1.bd_rate_pct.iloc[0] < 0) == (psnr.bd_rate_pct.iloc[0] < 0)  # lower-is-better handled: same verdict
    assert "BD-rate L1 (RGB, 0-255) [%]" in (res / "bd_rate.md").read_text()
    assert (res / "figures" / "rd-l1.png").stat().st_size > 10_000
    assert "bd_rate_pct" in json.loads((res / "metrics.json").read_text())["webp"]["pchip"]["vs_jpeg"]["l1"]

    # check reads the metric's direction: a higher L1 is a regression.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    rows.assign(l1=rows.l1 + 1.0).to_csv(fresh / "jpeg.csv", index=False)
    capsys.readouterr()
    assert cli_main(["check", "--params", str(params), "--fresh", str(fresh), "--baseline", str(res / "per_image")]) == 1
    assert "REGRESSION: codec=jpeg" in capsys.readouterr().out


TOY_CODEC = """
    import io
    import numpy as np
    from PIL import Image
    from benchmark.codecs.base import CODECS, Codec, CodecError

    @CODECS.register("quantize")
    class Quantize(Codec):
        '''Uniform quantization of each channel to `rate_point` levels, stored as PNG.'''
        rate_param = "levels"
        defaults = {"dither": False}
        choices = {"dither": (False,)}

        def encode(self, image, rate_point):
            step = 256 / int(rate_point)
            q = (np.floor(image / step) * step + step / 2).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(q).save(buf, format="PNG", optimize=True)
            return buf.getvalue()

        def decode(self, data):
            try:
                return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()
            except OSError as e:
                raise CodecError(f"quantize: {e}") from e

        @classmethod
        def library_version(cls):
            import PIL
            return f"Pillow {PIL.__version__} (PNG)"
"""


def test_a_codec_from_outside_is_evaluated(plugin, params_file, small_set, tmp_path):
    name = plugin("toy_codec_plugin", TOY_CODEC)

    def run(p):
        p["plugins"] = [name]
        p["codecs"]["quant"] = {"codec": "quantize", "rate_points": [4, 16, 64], "options": {}}
        p["evaluate"].update(codecs=["quant"], learned=[], variants=[], progressive=[])
        p["report"]["anchor"] = "quant"
        p["metrics"].update(perceptual=["haarpsi"], download=False)

    res = tmp_path / "results"
    _evaluate("evaluate", params_file(run), "quant", small_set, res)
    rows = pd.read_csv(res / "per_image" / "quant.csv").sort_values(["image", "rate_point"])
    assert len(rows) == 6 and set(rows.rate_param) == {"levels"} and rows.codec_library.str.startswith("Pillow").all()
    assert (rows.groupby("image").psnr.apply(lambda s: s.is_monotonic_increasing)).all()
    assert (rows.groupby("image").bpp.apply(lambda s: s.is_monotonic_increasing)).all()


TOY_SOURCE = """
    import numpy as np
    from pydantic.dataclasses import dataclass
    from benchmark.data.sources import register_source, store_image
    from benchmark.data.sources.common import STRICT

    @dataclass(frozen=True, config=STRICT)
    class GradientOptions:
        count: int = 2
        size: int = 192

    @register_source("gradients", GradientOptions)
    def gradients(cfg, options, images_dir, *, mirror):
        '''`count` synthetic `size` x `size` images: colour gradients with seeded noise.'''
        rows = []
        for i in range(options.count):
            y, x = np.mgrid[0:options.size, 0:options.size]
            noise = np.random.default_rng(i).integers(0, 32, (options.size, options.size, 3))
            arr = (np.stack([x, y, (x + y) // 2], axis=-1) * 255 // (2 * options.size) + noise).astype(np.uint8)
            rows.append(store_image(f"g{i}", arr, images_dir, "synthetic"))
        return rows, []
"""


def test_a_data_source_from_outside_is_fetched_and_evaluated(plugin, params_file, tmp_path, capsys):
    name = plugin("toy_source_plugin", TOY_SOURCE)

    def run(p, **options):
        p["plugins"] = [name]
        p["datasets"]["grad"] = {"source": "gradients", "max_images": None, **options}
        p["metrics"].update(perceptual=["haarpsi"], download=False)

    _run("fetch", "--params", params_file(lambda p: run(p, count=3, size=176)), "--dataset", "grad", "--out", tmp_path / "grad")
    manifest = pd.read_csv(tmp_path / "grad" / "manifest.csv")
    assert list(manifest.name) == ["g0", "g1", "g2"] and set(manifest.height) == {176}
    bad = params_file(lambda p: run(p, cuont=3), name="bad.yaml")
    capsys.readouterr()
    assert cli_main(["fetch", "--params", str(bad), "--dataset", "grad", "--out", str(tmp_path / "bad")]) == 2
    assert "datasets.grad: unknown key 'cuont'" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    res = tmp_path / "results"
    _evaluate("evaluate", params_file(lambda p: run(p, count=3, size=176)), "jpeg", tmp_path / "grad", res)
    assert len(pd.read_csv(res / "per_image" / "jpeg.csv")) == 3 * 19


TOY_ARCH = """
    from benchmark._torchvision_compat import ensure_torchvision_importable
    from benchmark.models.specs import ARCHITECTURES, ModelSpec

    def factory():
        ensure_torchvision_importable()
        from compressai.models import FactorizedPrior
        return FactorizedPrior

    ARCHITECTURES.add("tiny-factorized", ModelSpec(
        "tiny-factorized", factory, ("N", "M"), "Balle et al. 2018 (factorized prior), a plugin's small variant"))
"""


def test_a_learned_model_from_outside_is_trained_and_coded(plugin, params_file, small_set, tmp_path):
    import torch

    name = plugin("toy_arch_plugin", TOY_ARCH)

    def run(p):
        p["plugins"] = [name]
        p["models"]["tiny"] = {"arch": "tiny-factorized", "source": "train"}
        p["codecs"]["tiny"] = {"codec": "learned", "options": {"model": "tiny"}}
        p["train"].update(models=["tiny"], qualities=[3], budget="toy", device="cpu", progressive=[])
        p["train"]["budgets"]["toy"] = {
            "defaults": {"steps": 4, "batch_size": 2, "patch_size": 64, "checkpoint_every": 2},
            "models": {"tiny": {"size": {"N": 8, "M": 8}}},
        }
        p["samples"]["models"] = []
        p["evaluate"].update(codecs=["jpeg"], learned=["tiny"], variants=[], progressive=[])
        p["metrics"].update(perceptual=["haarpsi"], download=False)

    params = params_file(run)
    threads = torch.get_num_threads()
    try:
        _run("model", "--params", params, "--model", "tiny", "--quality", 3, "--train-data", small_set,
             "--out", tmp_path / "models" / "tiny" / "q3.pt", "--no-progress")
    finally:
        torch.set_num_threads(threads)
    res = tmp_path / "results"
    # The training images are the evaluation images here: the leak guard must refuse them.
    assert cli_main(["evaluate-learned", "--params", str(params), "--dataset", "small", "--codec", "tiny",
                     "--data", str(small_set), "--out", str(res / "x.csv"),
                     "--checkpoints", str(tmp_path / "models" / "{model}" / "q{rate_point}.pt")]) == 2
    from benchmark.models.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(tmp_path / "models" / "tiny" / "q3.pt")
    save_checkpoint(tmp_path / "models" / "tiny" / "q3.pt", {**ckpt, "train_images_sha256": []})
    _evaluate("evaluate-learned", params, "tiny", small_set, res,
              "--checkpoints", tmp_path / "models" / "{model}" / "q{rate_point}.pt")
    rows = pd.read_csv(res / "per_image" / "tiny.csv")
    assert len(rows) == 2 and (rows.decode_check == "ok").all() and (rows.rate_point == 3).all()
    assert (rows.bpp > 0).all() and rows.bpp_estimated.notna().all()
