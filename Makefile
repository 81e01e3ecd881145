# perslib — two commands do everything on a fresh machine (Python >= 3.10 with pip and venv):
#   make run    set up .venv, then execute every notebook with papermill into build/ (ipynb + HTML)
#   make test   set up .venv, then run the whole test suite
# Other targets: make site (after make run: the executed series as a browsable course site in build/site),
# make smoke, make lab, make lint, make test-portable, make test-gpu, make notebooks (refresh the committed
# .ipynb), make expected (re-measure the notebooks' reference figures), make clean.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.perslib-installed
KERNEL := perslib

# PyTorch: on a machine without an NVIDIA GPU install the CPU build torch 2.13.0 (found on
# local disk here; elsewhere pip fetches it — add TORCH_PIP_ARGS="--index-url <PyTorch's CPU
# wheel index>" to avoid the large CUDA wheel). With a GPU, any recent CUDA build.
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
ifeq ($(HAS_GPU),yes)
TORCH_SPEC ?= torch>=2.3
else
TORCH_SPEC ?= torch==2.13.0
endif
TORCH_PIP_ARGS ?=
PIP := $(BIN)/python -m pip --disable-pip-version-check

# Tests: unit tests, then every notebook twice: a smoke run, and one default run whose output is
# checked three ways (CPU budget, figures against notebooks/expected/, checked cells against the
# committed .ipynb with nbval's sanitizers). See tests/test_notebooks.py.
PYTEST_ARGS ?=
PYTEST := PERSLIB_PROGRESS=0 MPLBACKEND=Agg $(BIN)/python -m pytest
# Another CPU's floating-point kernels on this one: torch's default (non-SIMD) code path and
# MKL limited to SSE4.2. Trained figures then differ in their last digits, as on other machines.
PORTABLE_ENV := ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2

.PHONY: help setup run site smoke lint test test-portable test-gpu lab notebooks expected clean

help:
	@sed -n '1,6p' Makefile | sed 's/^# \{0,1\}//'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(PIP) install --quiet -e ".[notebooks,test,batch,peers]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (perslib)" >/dev/null
	@$(BIN)/python -c "import torch, perslib; print('perslib', perslib.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"
	@touch $@

setup: $(STAMP)

run: setup
	PERSLIB_PROGRESS=0 $(BIN)/python -m perslib.reports --out build

# The executed notebooks of `make run` (build/NN_name.ipynb and .html) as a static course site:
# build/site/index.html (titles, what each teaches, run times, links) and every page, each opening
# offline. Says to run `make run` first when build/ holds no executed notebook.
site: setup
	$(BIN)/python -m perslib site --build build --out build/site

smoke: setup
	PERSLIB_PROGRESS=0 $(BIN)/python -m perslib.reports --profile smoke --out build/smoke

# Style: ruff's lint rules and formatter (pyproject.toml [tool.ruff]); make test runs it first.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup lint
	$(PYTEST) -m "not gpu" tests $(PYTEST_ARGS)

# The unit tests and the default-run notebook checks again, on other floating-point kernels
# (the API-contract tests and the smoke runs do not depend on them and are skipped).
test-portable: setup
	$(PORTABLE_ENV) $(PYTEST) -m "not gpu and not smoke and not contract" tests $(PYTEST_ARGS)

test-gpu:
	@if [ "$(HAS_GPU)" != "yes" ]; then \
	  echo "make test-gpu: SKIPPED — no NVIDIA GPU found (nvidia-smi -L failed). The GPU tier runs every notebook with notebooks/params/paper.yaml on CUDA; run it on a GPU machine."; \
	  exit 0; \
	fi; \
	$(MAKE) setup && PERSLIB_PROGRESS=0 MPLBACKEND=Agg $(BIN)/python -m pytest -m gpu tests/test_gpu.py -v -rs $(PYTEST_ARGS)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

# Re-execute every notebook at its default parameters on the CPU and store the result as the
# committed .ipynb next to its .py source (what readers see on a first look).
notebooks: setup
	@for py in notebooks/[0-9][0-9]_*.py; do \
	  echo "executing $$py"; \
	  PERSLIB_PROGRESS=0 CUDA_VISIBLE_DEVICES= $(BIN)/python -c "import sys; from perslib.reports import run_notebook; r = run_notebook(sys.argv[1], 'build', html=False, output_path=sys.argv[1][:-3] + '.ipynb', inject_out_dir=False); print(r.status, round(r.seconds, 1), 's', r.error); sys.exit(r.status != 'ok')" $$py || exit 1; \
	done

# Re-measure every notebook's figures over seeds and CPU code paths (~25 min) and rewrite the
# reference values and tolerances in notebooks/expected/ (see its README).
expected: setup
	PERSLIB_PROGRESS=0 $(BIN)/python tests/measure_spread.py run --out build/spread
	$(BIN)/python tests/measure_spread.py write --out build/spread

clean:
	rm -rf build .pytest_cache
