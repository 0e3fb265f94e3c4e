# Two commands do all the set-up on a fresh machine:  `make repro`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# DVC stage commands call `python -m benchmark`: run them with the venv first on PATH.
RUN    := PATH="$(abspath $(BIN)):$$PATH"
STAMP  := $(VENV)/.installed

.PHONY: install lock repro repro-kodak repro-kodak-published plots test test-fast ci-pipeline clean

# requirements.lock pins every package (including the build backend, hatchling); the project is
# then installed editable from it without build isolation. The install also puts
# compression_benchmark_torchvision.pth and a copy of benchmark/_torchvision_compat.py into
# site-packages (pyproject: force-include), which make PyPI's CUDA torchvision importable on CPU
# torch in every Python process of the venv (hence the reinstall when either file changes).
$(STAMP): requirements.lock pyproject.toml benchmark/_torchvision_compat.py benchmark/_torchvision_compat.pth
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Regenerates requirements.lock from pyproject.toml (dependencies + the `test` and `ray` extras + the `build`
# group) for Linux/macOS/Windows and Python >= 3.10 (uv writes markers where pins differ). Existing
# pins are kept unless pyproject.toml demands otherwise; add --upgrade to move them all. Needs uv
# (`pip install uv`, or UV=/path/to/uv). The CUDA runtime that PyPI's Linux torch wheel requires
# is left out: the torch wheel pins it (exactly; cuda-bindings to <14) on GPU machines; CPU builds of torch
# (e.g. a local +cpu wheel found through pip's find-links) do not need it.
UV ?= uv
CUDA_STACK := cuda-bindings cuda-pathfinder cuda-toolkit nvidia-cublas nvidia-cuda-cupti \
	nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand \
	nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-nccl-cu13 nvidia-nvjitlink \
	nvidia-nvshmem-cu13 nvidia-nvtx triton
lock:
	$(UV) pip compile --quiet pyproject.toml --extra test --extra ray --group build --universal --python-version 3.10 \
		$(foreach p,$(CUDA_STACK),--no-emit-package $(p)) -o requirements.lock
	@{ printf '%s\n' $(LOCK_NOTE); cat requirements.lock; } > requirements.lock.tmp
	@mv requirements.lock.tmp requirements.lock
LOCK_NOTE := \
	'\# Installed by `make install`. Regenerate with `make lock` (needs uv), which runs the uv command below.' \
	'\# torch==2.13.0 has no local label: a CPU build (torch-2.13.0+cpu found through pip --find-links)' \
	'\# satisfies it as well as the CUDA build PyPI serves. The CUDA runtime that the latter requires is' \
	'\# not listed (see the exclusions at the end): the torch wheel pins it (cuda-bindings: <14).' \
	'\# torchvision 0.28.0 goes with torch 2.13.0; numpy<2 for compressai 1.2.8.'

# The main job: the committed params.yaml (embedded default image set, offline, minutes).
repro: $(STAMP)
	$(RUN) dvc repro

# The Kodak run (needs the network, or BENCHMARK_MIRROR pointing at a mirror directory): the run
# overlay runs/kodak/params.yaml over params.yaml, through runs/kodak/dvc.yaml (a link to dvc.yaml);
# its lock file is runs/kodak/dvc.lock. See README "The Kodak run".
repro-kodak: $(STAMP)
	$(RUN) dvc repro runs/kodak/dvc.yaml

# `dvc plots show` as a page that draws every plot offline (build/dvc_plots/index.html): DVC's own
# page loads vega, vega-lite and vega-embed from a CDN for its charts (the training logs); this one
# has them inline, from vl-convert-python (pyproject's offline-plots extra, installed here on first
# use). Extra arguments for dvc (targets, --open): make plots PLOTS_ARGS='...'.
PLOTS_TEMPLATE := build/dvc-plots-offline.html
$(PLOTS_TEMPLATE): benchmark/plots/offline.py | $(STAMP)
	$(BIN)/python -c 'import vl_convert' 2>/dev/null || $(BIN)/pip install --quiet --no-build-isolation -e '.[offline-plots]'
	$(BIN)/python -m benchmark.plots.offline $@
plots: $(PLOTS_TEMPLATE)
	$(RUN) dvc plots show --html-template $(PLOTS_TEMPLATE) -o build/dvc_plots $(PLOTS_ARGS)

# Published weights on Kodak (QRes-VAE's qres34m at its 8 λ, beside lossy-vae's published curve):
# needs the weight files (README "QRes-VAE's published weights"). Lock: runs/kodak-published/dvc.lock.
repro-kodak-published: $(STAMP)
	$(RUN) dvc repro runs/kodak-published/dvc.yaml

# Unit tests, then a small real pipeline (3 Kodak images, 2 codecs) and the regression check.
test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(MAKE) ci-pipeline

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

ci-pipeline: $(STAMP)
	$(RUN) bash .ci/pipeline.sh

clean:
	rm -rf $(VENV)
