"""params.yaml loading: the values DVC sees, and clear errors naming file and key."""

from pathlib import Path

import pytest

from benchmark.config import (
    ConfigError,
    load_check,
    load_codec,
    load_dataset,
    load_report,
    read_params,
)

ROOT = Path(__file__).resolve().parents[1]


def test_committed_params_load_completely():
    params = read_params(ROOT / "params.yaml")
    from benchmark.codecs import build_codec

    for name in params["evaluate"]["codecs"] + params["evaluate"]["learned"]:
        cfg = load_codec(params, name)

        build_codec(cfg.codec, cfg.options)  # every committed option is valid
    for name in params["datasets"]:
        load_dataset(params, name)
    assert load_report(params).anchor in params["evaluate"]["codecs"]
    load_check(params)


def test_learned_codecs_use_trained_rate_points():
    params = read_params(ROOT / "params.yaml")
    qualities = set(params["train"]["qualities"])
    for name in params["evaluate"]["learned"]:
        cfg = load_codec(params, name)
        assert cfg.codec == "learned" and cfg.options["model"] == name  # dvc.yaml: models/<codec name>
        assert name in params["train"]["models"] and set(cfg.rate_points) <= qualities, name


def test_unquoted_chroma_notation_stays_a_string(tmp_path):
    # `dvc exp run -S` rewrites params.yaml with ruamel and drops the quotes; a YAML 1.1 reader
    # would then see the base-60 integer 14520.
    p = tmp_path / "params.yaml"
    p.write_text("codecs:\n  jpeg:\n    codec: jpeg\n    rate_points: [50]\n    options: {subsampling: 4:2:0}\n")
    assert load_codec(read_params(p), "jpeg").options["subsampling"] == "4:2:0"


@pytest.mark.parametrize(
    "text,match",
    [
        ("codecs:\n  j: {codec: jpeg}\n", "codecs.j.rate_points is missing"),
        ("codecs:\n  j: {codec: jpeg, rate_points: []}\n", "non-empty list"),
        ("codecs:\n  j: {codec: jpeg, rate_points: [5, 5]}\n", "duplicates"),
        ("codecs: {}\n", "missing key 'codecs.j'"),
    ],
)
def test_codec_errors_name_the_key(tmp_path, text, match):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        load_codec(read_params(p), "j", source=str(p))
    assert str(p) in str(e.value)


def test_dataset_errors(tmp_path):
    params = {"datasets": {"f": {"source": "folder"}, "k": {"source": "kodak", "max_images": 0}}}
    with pytest.raises(ConfigError, match="path is required"):
        load_dataset(params, "f")
    with pytest.raises(ConfigError, match="positive integer"):
        load_dataset(params, "k")


def test_unreadable_params(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_params(bad)


def test_check_tolerances_validated():
    with pytest.raises(ConfigError, match="unknown keys"):
        load_check({"check": {"tolerances": {"lpips": 0.1}}})
    with pytest.raises(ConfigError, match="non-negative"):
        load_check({"check": {"tolerances": {"psnr": -1}}})
