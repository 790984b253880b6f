# cdb: every entry point a user needs. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Optional pip constraints (CI uses .ci/constraints.txt to take the locally cached torch build).
PIP_CONSTRAINT ?=
export PIP_CONSTRAINT
# Where MNIST (and other datasets) live; the tests and `make demo` read it.
CDB_DATA_ROOT ?= data
export CDB_DATA_ROOT

.PHONY: help venv demo test test-slow test-all clean

help:
	@grep -E '^[a-z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed  ## create .venv and install cdb with its dev tools

demo: venv  ## train the default run: LeNet-5, CDB-CE (dynamic tau) on MNIST 4/9 at r=0.99, quick schedule
	$(VENV)/bin/cdb-run experiment=demo

test: venv  ## the fast test suite (what CI runs first)
	$(PY) -m pytest -q

test-slow: venv  ## slow tests: wheel install in a fresh venv, real-data training
	$(PY) -m pytest -q -m slow

test-all: venv  ## every test
	$(PY) -m pytest -q -m "slow or not slow"

clean:  ## remove build artefacts (keeps .venv, data, outputs)
	rm -rf build dist *.egg-info .pytest_cache
