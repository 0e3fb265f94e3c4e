"""params.yaml loading: one typed Config, the values DVC sees, run overlays, and clear errors
naming the file, the key, the valid names and the closest one."""

import dataclasses
from pathlib import Path

import pytest

import benchmark.codecs.classical  # noqa: F401  (registers the classical codecs)
import benchmark.codecs.learned  # noqa: F401  (registers the learned codec)
from benchmark.codecs.base import build_codec
from benchmark.config import RUN_KEYS, ConfigError, load_config, read_params

from helpers import build_with

ROOT = Path(__file__).resolve().parents[1]
RUNS = [ROOT / "params.yaml"] + sorted((ROOT / "runs").glob("*/params.yaml"))


@pytest.mark.parametrize("path", RUNS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_runs_load_completely(path):
    cfg = load_config(path)
    for name in cfg.evaluate.codecs:
        c = cfg.codec(name)
        build_codec(c.codec, c.options)  # every committed option is valid
    for name in cfg.evaluate.learned:
        c = cfg.codec(name)
        assert c.codec == "learned" and c.options["model"] == name  # dvc.yaml: models/<budget>/<codec name>
        assert name in cfg.train.models and set(c.rate_points) == set(cfg.train.qualities)
        build_codec(c.codec, c.options, checkpoints="models/{model}/q{rate_point}.pt")
    assert cfg.report.anchor in cfg.evaluated_codecs()
    assert cfg.run.params == str(path.relative_to(ROOT))  # what dvc.yaml passes as --params
    assert (path.parent / cfg.run.root / "dvc.yaml").resolve() == (ROOT / "dvc.yaml").resolve()
    assert (path.parent / "dvc.yaml").resolve() == (ROOT / "dvc.yaml").resolve()  # a run links to the one dvc.yaml


def test_kodak_overlay_sets_the_run_and_keeps_the_rest():
    kodak = load_config(ROOT / "runs" / "kodak" / "params.yaml")
    default = load_config(ROOT / "params.yaml")
    assert kodak.data.eval == ("kodak",) and kodak.train.budget == "cpu" and kodak.train.qualities == (1, 2, 3, 4)
    assert kodak.codec("dvae").rate_points == (1, 2, 3, 4)  # derived from train.qualities
    assert kodak.codec("jpeg") == default.codec("jpeg") and kodak.metrics == default.metrics and kodak.report == default.report
    assert [str(f) for f in kodak.files] == [str(ROOT / "params.yaml"), str(ROOT / "runs" / "kodak" / "params.yaml")]


def test_overlay_may_set_only_run_keys(tmp_path):
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    text = (ROOT / "runs" / "kodak" / "params.yaml").read_text().replace("runs/kodak/", "runs/x/")
    (run / "params.yaml").write_text(text + "datasets:\n  kodak: {source: kodak, max_images: 3}\n")
    with pytest.raises(ConfigError, match=r"sets only the run keys .*datasets\.kodak\.source belongs in"):
        load_config(run / "params.yaml")
    (run / "params.yaml").write_text(text.replace("  budget: cpu\n", ""))
    with pytest.raises(ConfigError, match="missing train.budget"):
        load_config(run / "params.yaml")
    assert "train.budget" in RUN_KEYS


def test_unquoted_chroma_notation_stays_a_string(tmp_path, base):
    # `dvc exp run -S` rewrites params.yaml with ruamel and drops the quotes; a YAML 1.1 reader
    # would then see the base-60 integer 14520.
    p = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text().replace('options: {subsampling: "4:2:0"}', "options: {subsampling: 4:2:0}", 1)
    assert "{subsampling: 4:2:0}" in text
    p.write_text(text)
    assert load_config(p).codec("jpeg").options["subsampling"] == "4:2:0"


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda p: p["codecs"]["jpeg"].update(rate_pionts=[5]), r"codecs\.jpeg: unknown key 'rate_pionts'.*did you mean 'rate_points'"),
        (lambda p: p["codecs"]["jpeg"].update(rate_points=[]), r"codecs\.jpeg\.rate_points: missing"),
        (lambda p: p["codecs"]["jpeg"].update(rate_points=[5, 5]), "duplicates"),
        (lambda p: p["codecs"]["jpeg"].update(rate_points=[True]), r"codecs\.jpeg\.rate_points\[0\]: Input should be a number"),
        (lambda p: p["datasets"]["kodak"].update(max_images=0), r"datasets\.kodak\.max_images: .*greater than 0"),
        (lambda p: p["train"]["budgets"]["quick"]["models"]["dvae"].update(stepz=3), r"models\.dvae: unknown key 'stepz'.*'steps'"),
        (lambda p: p["train"]["budgets"]["quick"]["defaults"].update(lr="x"), r"defaults\.lr: Input should be a number, got 'x'"),
        (lambda p: p["metrics"]["patches"].update(sise=3), r"metrics\.patches: unknown key 'sise'.*'size'"),
        (lambda p: p["metrics"].update(device="gpu"), r"metrics\.device"),
        (lambda p: p["data"].update(eval=["kodac"]), r"data\.eval: unknown data set 'kodac'.*'kodak'"),
        (lambda p: p.update(evalute={}), r"unknown section 'evalute'.*'evaluate'"),
        (lambda p: p["check"]["tolerances"].update(psnr=-1), r"check\.tolerances\.psnr: expected a non-negative number"),
        (lambda p: p["report"].update(bd_methods=["cubik"]), r"report\.bd_methods\[0\]"),
        (lambda p: p["samples"].update(size=65), r"samples\.size: .*multiple of 64"),
        (lambda p: p["train"].update(qualities=[2, 9]), r"train\.qualities: unknown quality .* 9"),
        (lambda p: p["train"].update(models=["dvae", "nope"]), r"train\.models: unknown model 'nope'"),
        (lambda p: p["report"].update(anchor="bpg"), r"report\.anchor 'bpg' is not among the run's codecs"),
        (lambda p: p["samples"].update(quality=3), r"samples\.quality 3 is not in train\.qualities"),
    ],
)
def test_errors_name_the_key(base, mutate, match):
    with pytest.raises(ConfigError, match=match) as e:
        build_with(base, mutate)
    assert str(e.value).startswith("p.yaml: ")


def test_learned_rate_points_have_one_source(base):
    """A learned codec's rate points are train.qualities; a subset may be named, anything else is refused."""
    cfg = build_with(base, lambda p: None)
    assert cfg.codec("dvae").rate_points == tuple(base["train"]["qualities"])
    sub = build_with(base, lambda p: p["codecs"]["dvae"].update(rate_points=[2, 6]))
    assert sub.codec("dvae").rate_points == (2, 6)
    with pytest.raises(ConfigError, match=r"codecs\.dvae\.rate_points \[2, 7\]: \[7\] not in train\.qualities \[2, 4, 6\]"):
        build_with(base, lambda p: p["codecs"]["dvae"].update(rate_points=[2, 7]))
    with pytest.raises(ConfigError, match=r"evaluate\.learned is named like its model.*evaluate\.variants"):
        build_with(base, lambda p: p["codecs"]["dvae"]["options"].update(model="qres-vae"))
    variant = build_with(base, lambda p: (p["codecs"].update({"dvae-cuda": {"codec": "learned", "options": {"model": "dvae"}}}),
                                      p["evaluate"].update(variants=["dvae-cuda"])))
    assert variant.codec("dvae-cuda").rate_points == tuple(base["train"]["qualities"])
    assert [c for c in variant.evaluated_codecs() if c not in variant.evaluate.progressive][-1] == "dvae-cuda"


def test_progressive_codecs(base):
    """evaluate.progressive: codecs named like their model, rate points the levels 1..16 of
    their own entry, in the run's codecs (after the others), never listed under two keys; the
    committed sic entry builds with one checkpoint path."""
    assert "evaluate.progressive" in RUN_KEYS
    import benchmark.codecs.sic  # noqa: F401  (registers sic)

    cfg = build_with(base, lambda p: p["evaluate"].update(progressive=["sic"]))
    assert cfg.evaluate.progressive == ("sic",) and cfg.evaluated_codecs()[-1] == "sic"
    assert cfg.codec("sic").rate_points == tuple(range(1, 17))
    c = cfg.codec("sic")
    assert build_codec(c.codec, c.options, checkpoints="models/quick/{model}/model.pt").progressive
    assert build_with(base, lambda p: (p["evaluate"].pop("progressive"), p["train"].pop("progressive"))).evaluate.progressive == ()
    for mutate, match in (
        (lambda p: p["evaluate"].update(progressive=["sik"]), r"evaluate\.progressive.*'sik'.*sic"),
        (lambda p: p["codecs"]["sic"].update(rate_points=[0, 4]), r"codecs\.sic\.rate_points \[0, 4\]: \[0\] are not levels"),
        (lambda p: p["codecs"]["sic"].update(rate_points=[4, 17, 2.5]), r"\[17, 2\.5\] are not levels \(integers in 1\.\.16\)"),
        (lambda p: p["codecs"]["sic"].pop("rate_points"), r"codecs\.sic\.rate_points: missing"),
        (lambda p: p["codecs"]["sic"]["options"].update(model="sic-small"), r"evaluate\.progressive is named like its model"),
        (lambda p: p["evaluate"].update(learned=["dvae", "sic"]), r"'sic' is listed twice, under evaluate\.learned and evaluate\.progressive"),
    ):
        with pytest.raises(ConfigError, match=match):
            build_with(base, lambda p, m=mutate: (p["evaluate"].update(progressive=["sic"]), m(p)))


def test_defaults_live_in_the_dataclasses(base):
    cfg = build_with(base, lambda p: p.pop("samples"))
    assert cfg.samples.n == 16 and cfg.samples.size == 64
    quick = build_with(base, lambda p: None).budget()
    assert quick.models["dvae"].settings.log_every == 25  # not in params.yaml: the TrainSettings default
    assert dataclasses.replace(quick.defaults) == quick.defaults  # frozen, comparable
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.defaults.steps = 3


def test_budget_override_is_per_model(base):
    cfg = build_with(base, lambda p: p["train"]["budgets"]["cpu"]["models"]["bmshj2018-hyperprior"].update(steps=8000))
    cpu = cfg.train.budgets["cpu"]
    assert cpu.models["bmshj2018-hyperprior"].settings.steps == 8000
    assert cpu.models["dvae"].settings.steps == cpu.defaults.steps != 8000
    assert cpu.models["dvae"].settings.lr == cpu.defaults.lr


def test_plugins_are_imported(tmp_path, monkeypatch, base):
    (tmp_path / "my_plugin_mod.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    p = tmp_path / "params.yaml"
    p.write_text((ROOT / "params.yaml").read_text().replace("plugins: []", "plugins: [my_plugin_mod]"))
    assert load_config(p).plugins == ("my_plugin_mod",)
    import sys

    assert sys.modules["my_plugin_mod"].LOADED
    p.write_text((ROOT / "params.yaml").read_text().replace("plugins: []", "plugins: [no_such_plugin_mod]"))
    with pytest.raises(ConfigError, match="plugins: cannot import 'no_such_plugin_mod'"):
        load_config(p)


def test_unreadable_params(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_params(bad)


def test_lookup_names_the_closest(base):
    cfg = build_with(base, lambda p: None)
    with pytest.raises(ConfigError, match=r"codecs: unknown codec 'jepg'.*did you mean 'jpeg'"):
        cfg.codec("jepg")
