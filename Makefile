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

# The Kodak run (needs the network, or BENCHMARK_MIRROR pointing at a mirror directory).
repro-kodak: $(STAMP)
# `dvc exp run -S 'data.eval=[kodak]' -S train.data=bsds500`, then params.yaml is put back as it
# was (dvc.lock keeps the lock entries of both runs, so switching back and forth reruns nothing).
	cp params.yaml .params.yaml.before-kodak
	$(RUN) dvc exp run -S 'data.eval=[kodak]' -S train.data=bsds500; rc=$$?; mv .params.yaml.before-kodak params.yaml; exit $$rc

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
