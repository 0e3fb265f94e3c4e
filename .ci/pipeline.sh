#!/usr/bin/env bash
# The CI regression run: a small real pipeline (3 Kodak images, JPEG and WebP, no learned codecs) through
# `dvc repro` in a scratch copy of the working tree, then `benchmark check` of its per-image
# results against the committed Kodak baseline (results/kodak/per_image).
# Needs BENCHMARK_MIRROR (or the network) for Kodak; `dvc`/`python` from the project's venv.
set -euo pipefail
root="$(pwd)"
work="$root/.ci-work/repo"
rm -rf "$root/.ci-work"
mkdir -p "$work"
git ls-files -z --cached --others --exclude-standard | tar -c --null -T - | tar -x -C "$work"
cd "$work"
rm -rf runs  # this scratch run evaluates Kodak itself: the committed Kodak run would declare the same outputs
git init -q && git add -A && git -c user.email=ci@localhost -c user.name=ci commit -qm "ci scratch copy"
python - <<'PY'
from ruamel.yaml import YAML
yaml = YAML()  # round trip, YAML 1.2 as DVC reads it
p = yaml.load(open("params.yaml"))
p["data"]["eval"] = ["kodak"]
p["datasets"]["kodak"]["max_images"] = 3
p["evaluate"]["codecs"] = ["jpeg", "webp"]
p["evaluate"]["learned"] = []  # training is covered by tests/test_dvc_pipeline.py (tiny budget)
p["evaluate"]["variants"] = []
p["train"]["models"] = []
p["train"]["progressive"] = []  # nor SIC (the test above runs a tiny one through its stages)
p["evaluate"]["progressive"] = []
p["samples"]["models"] = []  # no hierarchical VAE trained here
yaml.dump(p, open("params.yaml", "w"))
PY
dvc repro
python -m benchmark check --fresh results/kodak/per_image --baseline "$root/results/kodak/per_image" --codecs jpeg webp
