# cdb: every entry point a user needs. `make help` lists them; studies/*/study.mk add each study's targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Optional pip constraints (CI uses .ci/constraints.txt to take the locally cached torch build).
PIP_CONSTRAINT ?=
export PIP_CONSTRAINT
# Where MNIST (and other datasets) live; the tests and `make demo` read it.
CDB_DATA_ROOT ?= data
export CDB_DATA_ROOT
# Where run directories go; JOBS processes at a time; RESULTS: where tables go; ARGS: extra overrides for every run.
OUT ?= $(or $(CDB_OUTPUT_ROOT),outputs)
JOBS ?= 2
RESULTS ?= results
ARGS ?=
# Runs per pack: auto takes the size and memory layout `make bench` measured fastest (docs/performance.md).
PACK ?= auto

.PHONY: help venv demo test test-slow test-all bench bench-cifar-lt clean figures tune-table \
	table1 table1-quick table2 table2-quick table3 table4 table5 table6 table7

help:  ## this list, then cdb-run's config groups and their choices (from configs/)
	@grep -hE '^[a-z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
	@echo; echo "commands: cdb-run (train), cdb-table (tables), cdb-figures (PNGs), cdb-eval RUN_DIR (evaluate a saved run),"
	@echo "  cdb-decouple RUN_DIR (cRT, tau-norm, LWS from a finished run); python -m cdb --help"
	@echo; echo "cdb-run GROUP=CHOICE (or python -m cdb run ...; cdb-run --help says more):"
	@for d in configs/*/ configs/hydra/launcher/; do g=$${d#configs/}; g=$${g%/}; [ "$$g" = hydra ] && continue; \
	  printf '  %-15s %s\n' "$$g:" "$$(cd $$d && ls *.yaml */*.yaml 2>/dev/null | sed 's/\.yaml$$//' | tr '\n' ' ')"; done

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed  ## create .venv and install cdb with its dev tools

demo: venv  ## train the default run: CDB-CE (dynamic tau) on MNIST 4/9 at r=0.99, protocol P3
	$(VENV)/bin/cdb-run experiment=demo

# tests run in TEST_JOBS processes (pytest-xdist; auto: one per core), a file per process (its fixtures set up once)
TEST_JOBS ?= auto
test: venv  ## the import contracts and the fast test suite (what CI runs first)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile

test-slow: venv  ## slow tests: wheel install in a fresh venv, real-data training
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m slow

test-all: venv  ## every test
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "slow or not slow"

bench: venv  ## speed: packs of K=1..70 runs vs runs alone, one run vs a bare loop, the allocator -> results/bench.md, .json (sets pack=auto)
	$(PY) scripts/bench.py --models lenet5 lenet_ren resnet32 --bare --heap-k 1 2 8 32 70 --out results/bench

EPOCHS ?= 200
bench-cifar-lt: venv  ## time one whole CIFAR-100-LT ResNet-32 run (synthetic tensors; for a GPU) -> results/bench_cifar_lt.md
	$(PY) scripts/bench.py --cifar-lt-run $(EPOCHS) --out results/bench_cifar_lt

clean:  ## remove build artefacts (keeps .venv, data, outputs)
	rm -rf build dist *.egg-info .pytest_cache

# ---- paper tables: restartable sweeps (resume=true), packs of PACK runs, JOBS processes of one thread ----
SWEEP = hydra/launcher=pack pack=$(PACK) hydra.launcher.n_jobs=$(JOBS) threads=1 resume=true $(ARGS)
SWEEP_FAILED = || echo "make $@: some runs failed (see above); the table counts them"
QUICK_NOTE = --note "Quick profile: protocol P3 unshortened, 3 seeds instead of the paper's 10 (docs/protocol.md)."

table1: venv  ## Table 1, full profile (7 losses x 5 ratios x 10 seeds, protocol P3): ~15 h on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table1 $(SWEEP) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table table1 --runs $(OUT)/table1 --out $(RESULTS) --command "make table1"

table1-quick: venv  ## Table 1, quick profile (7 losses x 5 ratios x 3 seeds, protocol P3): ~4.5 h on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table1_quick $(SWEEP) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table table1 --runs $(OUT)/table1_quick --out $(RESULTS) --command "make table1-quick" $(QUICK_NOTE)

table2: venv  ## Table 2, full profile (7 tau x 5 ratios x 10 seeds, protocol P3): ~15 h on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table2 $(SWEEP) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table table2 --runs $(OUT)/table2 --out $(RESULTS) --command "make table2"

table2-quick: venv  ## Table 2, quick profile (7 tau x 5 ratios x 3 seeds, protocol P3): ~4.5 h on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table2_quick $(SWEEP) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table table2 --runs $(OUT)/table2_quick --out $(RESULTS) --command "make table2-quick" $(QUICK_NOTE)

# $(1) table, $(2) folder of its runs under $(OUT); a missing dataset stops its runs with how to get it
define table_rule
	@mkdir -p $(OUT)/$(2)
	$(VENV)/bin/cdb-run -m experiment=$(1) resume=true $(ARGS) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table $(1) --runs $(OUT)/$(2) --out $(RESULTS) --command "cdb-run -m experiment=$(1) $(ARGS)"
endef

table3: venv  ## Table 3: ResNet-32 on CIFAR-100-LT, CDB-CE (dynamic tau), imbalance 200-10 (5 runs)
	$(call table_rule,table3,table3)

table4: venv  ## Table 4: ResNet-32 on CIFAR-100-LT, CDB-CE for tau 0-5 and dynamic (35 runs)
	$(call table_rule,table4,table4)

table5: venv  ## Table 5: ResNet-10 on ImageNet-LT, CDB-CE (1 run)
	$(call table_rule,table5,table5)

table6: venv  ## Table 6: 3D-ResNeXt-101 on EGTEA, CE, focal, CB and CDB-CE
	$(call table_rule,table6,table6)

table7: venv  ## Table 7: majority/minority verbs of the Table 6 runs (trains only what table6 has not)
	$(call table_rule,table7,table6)

figures: venv  ## Figure 2 into results/; with RUN=<run dir> also Figure 1 and the weights/tau plot of that run
	$(VENV)/bin/cdb-figures figure2 --out $(RESULTS)
	@if [ -n "$(RUN)" ]; then $(VENV)/bin/cdb-figures run "$(RUN)" --out $(RESULTS); \
	else echo "make figures: add RUN=<run dir> for Figure 1 and the class weights / tau plot of a run"; fi

# tuned comparison (docs/tuning.md): one Optuna study of TRIALS trials per loss, each loss's best trial by validation
TUNE_LOSSES ?= ce ifw focal cb cdb
TRIALS ?= 20
tune-table: venv  ## tuned comparison on MNIST 4/9 r=0.99: TRIALS trials a loss, best trial each by validation -> results/tune_mnist/
	@for l in $(TUNE_LOSSES); do $(VENV)/bin/cdb-run -m experiment=tune_mnist loss=$$l hydra.sweeper.n_trials=$(TRIALS) \
	  hydra.sweeper.n_jobs=$(JOBS) $(SWEEP) $(SWEEP_FAILED); done
	$(VENV)/bin/cdb-table compare --runs $(foreach l,$(TUNE_LOSSES),$(OUT)/tune_mnist_$(l)) --best-of loss.label \
	  --out $(RESULTS)/tune_mnist --command "make tune-table TUNE_LOSSES='$(TUNE_LOSSES)' TRIALS=$(TRIALS)"

include $(sort $(wildcard studies/*/study.mk))
