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

# ---- paper tables ------------------------------------------------------------------------------------
OUT ?= $(or $(CDB_OUTPUT_ROOT),outputs)
JOBS ?= 2
# Parallel local sweep: JOBS processes of one thread each; resume=true makes a sweep restartable.
SWEEP = hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS) threads=1 resume=true
.PHONY: table1 table1-quick table2 table2-quick

table1: venv  ## Table 1, full profile (7 losses x 5 ratios x 10 seeds, paper schedule): days on this CPU
	$(VENV)/bin/cdb-run -m experiment=table1 $(SWEEP)
	$(VENV)/bin/cdb-table table1 --runs $(OUT)/table1 --out results --command "make table1"

table1-quick: venv  ## Table 1, quick profile (7 losses x 5 ratios x 3 seeds, table2-quick's schedule): about an hour on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table1_quick $(SWEEP)
	$(VENV)/bin/cdb-table table1 --runs $(OUT)/table1_quick --out results --command "make table1-quick"

table2: venv  ## Table 2, full profile (paper schedule, 10 seeds): hours on a GPU, days on this CPU
	$(VENV)/bin/cdb-run -m experiment=table2 $(SWEEP)
	$(VENV)/bin/cdb-table table2 --runs $(OUT)/table2 --out results --command "make table2"

table2-quick: venv  ## Table 2, quick profile (fits a 2-core CPU in about 30 minutes)
	$(VENV)/bin/cdb-run -m experiment=table2_quick $(SWEEP)
	$(VENV)/bin/cdb-table table2 --runs $(OUT)/table2_quick --out results --command "make table2-quick"
