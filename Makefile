# Set-up is idempotent: each target (re)creates .venv only when needed.
PYTHON ?= python3
VENV ?= .venv
# Installed before the package so that the package's torch range is already met;
# override for a CUDA build, e.g. make demo TORCH_SPEC="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
# Byte-compiling every installed file (transformers has thousands) costs more than compiling the few that are
# imported, lazily; the version check is a network round trip.
PIP := $(BIN)/pip install -q --no-compile --disable-pip-version-check

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-base: $(BIN)/python pyproject.toml
	$(PIP) $(TORCH_SPEC)
	$(PIP) -e '.[train]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-base
	$(PIP) -e '.[train,data,dev]'
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
