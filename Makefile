# Two commands do all the set-up on a fresh machine:  `make repro`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# DVC stage commands call `python -m benchmark`: run them with the venv first on PATH.
RUN    := PATH="$(abspath $(BIN)):$$PATH"
STAMP  := $(VENV)/.installed

.PHONY: install repro repro-kodak test test-fast ci-pipeline clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# The main job: the committed params.yaml (embedded default image set, offline, minutes).
repro: $(STAMP)
	$(RUN) dvc repro

# The Kodak run (needs the network, or BENCHMARK_MIRROR pointing at a mirror directory): the 24
# Kodak images, with the learned models trained on BSDS500 with the `cpu` budget at rate points
# q1-q3 (the autoregressive mbt2018 and cheng2020-anchor are left out: see README).
COMMA := ,
KODAK_LEARNED := bmshj2018-hyperprior,mbt2018-mean,dvae,qres-vae
KODAK_SET := -S 'data.eval=[kodak]' -S train.data=bsds500 -S train.budget=cpu -S 'train.qualities=[1,2,3]' \
	-S 'train.models=[$(KODAK_LEARNED)]' -S 'evaluate.learned=[$(KODAK_LEARNED)]' \
	$(foreach m,$(subst $(COMMA), ,$(KODAK_LEARNED)),-S 'codecs.$(m).rate_points=[1,2,3]')
repro-kodak: $(STAMP)
# `dvc exp run $(KODAK_SET)`, then params.yaml is put back as it was (dvc.lock keeps the lock
# entries of the evaluations of both data sets).
	cp params.yaml .params.yaml.before-kodak
	$(RUN) dvc exp run $(KODAK_SET); rc=$$?; mv .params.yaml.before-kodak params.yaml; exit $$rc

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
