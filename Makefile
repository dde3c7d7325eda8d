# Set-up and entry points. `make demo` and `make test` each create .venv/ when missing and
# install everything first (Python packages, and R + WGCNA through apt-get when root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup demo demo-isograph demo-perturbfm test lint typecheck clean floors

setup: $(STAMP)

$(STAMP): common/pyproject.toml isograph/pyproject.toml perturbfm/pyproject.toml Makefile tools/install-system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned to the local CPU build, so no later requirement pulls a CUDA build
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e common -e 'isograph[dev,vae,torch-explain]' -e 'perturbfm[dev,parity,models]'
	./tools/install-system-deps.sh
	touch $(STAMP)

demo: demo-isograph demo-perturbfm

demo-isograph: $(STAMP)
	$(BIN)/isograph benchmark --suite core_v1 --backend baseline --root demo_out/isograph --overwrite
	$(BIN)/isograph fixtures generate --suite core_v1 --fixture standard --out demo_out/isograph/bundles --overwrite
	$(BIN)/isograph fit --bundle demo_out/isograph/bundles/standard --out demo_out/isograph/fit --overwrite
	$(BIN)/isograph explain-module --fit demo_out/isograph/fit --bundle demo_out/isograph/bundles/standard \
	    --plot --no-enrichment --out demo_out/isograph/explain --overwrite
	$(BIN)/isograph report --fit demo_out/isograph/fit --explain demo_out/isograph/explain \
	    --bundle demo_out/isograph/bundles/standard --out demo_out/isograph/report.html --overwrite

demo-perturbfm: $(STAMP)
	$(BIN)/perturbfm demo --out demo_out/perturbfm --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Dependency floors that hold: the oldest version of every declared dependency
# (tools/floor_pins.py turns each ">=X" into "==X") in a second environment, fast tests there.
# torch stays at TORCH_PIN; the parity reference packages (cell-eval, scperturb) carry exact pins of
# their own and are not installed here, so the two test files that run them are left out.
FLOORS_VENV := .venv-floors
FLOORS_MARKERS ?= not slow and not r and not shared_data
floors:
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install -q $(TORCH_PIN)
	$(FLOORS_VENV)/bin/python -m pip install -q $$($(PYTHON) tools/floor_pins.py)
	$(FLOORS_VENV)/bin/python -m pip install -q --no-deps -e common -e isograph -e perturbfm
	$(FLOORS_VENV)/bin/python -m pip check
	$(FLOORS_VENV)/bin/python -m pytest -q -m "$(FLOORS_MARKERS)" \
		--ignore=perturbfm/tests/eval/test_parity_reference_packages.py \
		--ignore=perturbfm/tests/runs/test_anndata_io.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(FLOORS_VENV) benchmarks/datasets artifacts/benchmarks runs demo_out
