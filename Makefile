# The two set-up commands: `make quickstart` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Use the local torch wheel when the machine has one (no multi-GB CUDA download).
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP := $(BIN)/pip install -q -c constraints.txt $(FIND_LINKS)

.PHONY: quickstart test bench lint install install-dev clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev,bench,data,interop,ray]'
	CMAKE_BUILD_PARALLEL_LEVEL=$${CMAKE_BUILD_PARALLEL_LEVEL:-2} $(PIP) -e '.[llama]' || \
		echo "make: llama-cpp-python did not build (it needs cmake and g++); the GGUF checks will be skipped" >&2
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

quickstart: $(VENV)/.installed
	$(BIN)/lmforge quickstart

test: $(VENV)/.installed-dev
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	$(PIP) -e '.[dev,bench,data,interop,ray,refbench]'
	$(BIN)/python bench/run_all.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
