# Set-up is idempotent: each target (re)creates .venv only when needed.
PYTHON ?= python3
VENV ?= .venv
# Installed before the package so that the package's torch range is already met;
# override for a CUDA build, e.g. make demo TORCH_SPEC="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-base: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[train]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-base
	$(BIN)/pip install -q -e '.[train,data,dev]'
	touch $@

demo: $(VENV)/.installed-base
	$(BIN)/coderl demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
