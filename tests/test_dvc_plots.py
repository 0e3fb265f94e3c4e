"""`dvc plots show` renders every plot the pipeline declares, offline, without an error: the
figure folders hold only images (their PDFs are in figures-pdf/), the training logs have titles
and axis labels with units. Runs `dvc plots show` in this checkout (reads the workspace only, no
network: `--json` prints the rendered specs; the HTML's images show offline, its vega charts,
the training logs, load vega from a CDN when opened)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
DVC = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")  # the venv's, as CI runs pytest without it on PATH
pytestmark = pytest.mark.skipif(DVC is None or not (ROOT / ".dvc").is_dir(), reason="dvc or the .dvc directory is missing")


def _dvc(*args, cwd=ROOT):
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    return subprocess.run([DVC, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _made_outputs():
    """Every output path recorded in a lock file of this checkout (root-relative: every stage
    works in the project root): what the stages that have run made."""
    made = set()
    for lock in [ROOT / "dvc.lock", *sorted((ROOT / "runs").glob("*/dvc.lock"))]:
        if lock.is_file():
            for stage in YAML(typ="safe").load(lock.read_text())["stages"].values():
                made |= {o["path"] for o in stage.get("outs", [])}
    return made


@pytest.fixture(scope="module")
def shown(tmp_path_factory):
    r = _dvc("plots", "show", "--json", "-o", tmp_path_factory.mktemp("plots"))  # -o: its image copies go there
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_every_plot_of_a_stage_that_ran_renders(shown):
    made = _made_outputs()
    # Outputs of stages never run in this checkout (a run without a lock file) do not exist yet:
    # DVC reports them (a missing file, or a missing folder as a file of unknown type).
    errors = [e for e in shown["errors"] if e["source"] in made or (ROOT / e["source"]).exists()]
    assert not errors, "dvc plots show fails on:\n" + "\n".join(f"{e['name']}: {e['type']}: {e['msg']}" for e in errors)
    images = [k for k, v in shown["data"].items() if v and v[0]["type"] == "image"]
    assert images and all(k.endswith(".png") for k in images)
    for k in images:
        assert "/figures/" in k and (ROOT / k).is_file()


def test_training_logs_have_titles_and_labels_with_units(shown):
    logs = {k: v[0]["content"] for k, v in shown["data"].items() if k.endswith(".log.csv") and v}
    assert logs
    for path, spec in logs.items():
        model, stem = Path(path).parent.name, Path(path).stem.split(".")[0]
        # a model per rate point (q<k>.log.csv), or one for all levels (model.log.csv: SIC)
        what = "all levels in one model" if stem == "model" else None
        title = f"Training {model}, {what} (" if what else f"Training {model} at rate point {stem[1:]} ("
        assert spec["title"]["text"].startswith(title), path
        x, y = spec["encoding"]["x"]["title"], spec["layer"][0]["encoding"]["y"]["title"]
        assert x == "training step" and y.endswith("[dB]"), (path, x, y)


def test_plain_show_has_no_error_line(tmp_path):
    made = _made_outputs()
    stages = YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = [next(iter(p)) for st in stages.values() for p in st.get("do", st).get("plots", [])]
    assert declared == [
        "models/${item.budget}/${item.model}/q${item.quality}.log.csv",
        "models/${item.budget}/${item.model}/model.log.csv",
        "results/${item}/figures",
    ]
    targets = sorted(p for p in made if p.endswith(".log.csv") or p.endswith("/figures"))
    r = _dvc("plots", "show", "-o", tmp_path / "html", *targets)
    lines = (r.stdout + r.stderr).splitlines()
    assert r.returncode == 0 and not [ln for ln in lines if "ERROR" in ln or "failed" in ln.lower()], lines
    html = (tmp_path / "html" / "index.html").read_text()
    assert html.count("<img") == len(list(ROOT.glob("results/*/figures/*.png")))


def test_offline_template_puts_the_libraries_inline(tmp_path):
    """`make plots`: the page template carries vega inline (benchmark.plots.offline) and DVC
    uses it: no CDN script tags, the charts' vegaEmbed calls and the bundle in one page. A stand-in
    bundle here (the real one needs vl-convert-python, tested below where installed)."""
    from benchmark.plots.offline import OfflinePlotsError, offline_template

    marker = "window.vegaEmbed = function (el, spec) { return Promise.resolve(spec); }; /* stand-in bundle */"
    template = tmp_path / "offline.html"
    template.write_text(offline_template(marker))
    logs = sorted(p for p in _made_outputs() if p.endswith(".log.csv") and (ROOT / p).is_file())
    r = _dvc("plots", "show", "--html-template", template, "-o", tmp_path / "html", logs[0])
    lines = (r.stdout + r.stderr).splitlines()
    assert r.returncode == 0 and not [ln for ln in lines if "ERROR" in ln or "failed" in ln.lower()], lines
    html = (tmp_path / "html" / "index.html").read_text()
    assert marker in html and "vegaEmbed('#" in html
    assert "<script src" not in html and "cdn.jsdelivr" not in html
    for bad in ("x</script>y", "a {plot_divs} b"):
        with pytest.raises(OfflinePlotsError, match="would break the page"):
            offline_template(bad)


def test_real_bundle_defines_vega_embed():
    pytest.importorskip("vl_convert", reason="vl-convert-python (pyproject's offline-plots extra) is not installed")
    from benchmark.plots.offline import offline_template, vega_bundle

    bundle = vega_bundle()
    assert "window.vegaEmbed=" in bundle.replace(" ", "") and "cdn." not in offline_template(bundle)
