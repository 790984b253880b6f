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

.PHONY: help venv demo test test-slow test-all clean table3 table4 table5 table6 table7 figures bench bench-cifar-lt

help:  ## this list, then cdb-run's config groups and their choices (from configs/)
	@grep -E '^[a-z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
	@echo; echo "commands: cdb-run (train), cdb-table (tables), cdb-figures (PNGs), cdb-eval RUN_DIR (evaluate a saved run); python -m cdb --help"
	@echo; echo "cdb-run GROUP=CHOICE (or python -m cdb run ...; cdb-run --help says more):"
	@for d in configs/*/ configs/hydra/launcher/; do g=$${d#configs/}; g=$${g%/}; [ "$$g" = hydra ] && continue; \
	  printf '  %-15s %s\n' "$$g:" "$$(cd $$d && ls *.yaml */*.yaml 2>/dev/null | sed 's/\.yaml$$//' | tr '\n' ' ')"; done

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed  ## create .venv and install cdb with its dev tools

demo: venv  ## train the default run: CDB-CE (dynamic tau) on MNIST 4/9 at r=0.99, protocol P3 (Ren et al.'s network, 8000 steps)
	$(VENV)/bin/cdb-run experiment=demo

test: venv  ## the architecture contract (import-linter, pyproject.toml) and the fast test suite (what CI runs first)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

test-slow: venv  ## slow tests: wheel install in a fresh venv, real-data training
	$(PY) -m pytest -q -m slow

test-all: venv  ## every test
	$(PY) -m pytest -q -m "slow or not slow"

bench: venv  ## speed: LeNet-5, Ren's LeNet and ResNet-32 packs of K=1..70 runs vs sequential runs, one run vs a bare loop, the allocator before/after -> results/bench.md, .json; records pack=auto's pack size and layout (per model)
	$(PY) scripts/bench.py --models lenet5 lenet_ren resnet32 --bare --heap-k 1 2 8 32 70 --out results/bench

EPOCHS ?= 200
bench-cifar-lt: venv  ## time one whole CIFAR-100-LT ResNet-32 run (synthetic tensors; for a GPU) -> results/bench_cifar_lt.md
	$(PY) scripts/bench.py --cifar-lt-run $(EPOCHS) --out results/bench_cifar_lt

clean:  ## remove build artefacts (keeps .venv, data, outputs)
	rm -rf build dist *.egg-info .pytest_cache

# ---- paper tables ------------------------------------------------------------------------------------
OUT ?= $(or $(CDB_OUTPUT_ROOT),outputs)
JOBS ?= 2
# Where the tables go (tests point it at a temporary folder); ARGS: extra overrides for every run.
RESULTS ?= results
ARGS ?=
# Runs per pack (cdb/launch/pack.py): auto = the size and memory layout `make bench` recorded for the device and model
# (on this CPU: LeNet-5 2 runs a pack, Ren et al.'s LeNet 2, both channels-last; docs/performance.md).
PACK ?= auto
# Sweep: packs of PACK runs (one thread: see docs/performance.md), JOBS packs at a time in processes of one thread
# each. resume=true: restartable. ARGS: extra overrides, e.g. `make table2-quick PACK=1` (one run at a time, as
# before pack=auto took the measured layout) or `ARGS=trainer.channels_last=false` (pack=auto within that layout).
SWEEP = hydra/launcher=pack pack=$(PACK) hydra.launcher.n_jobs=$(JOBS) threads=1 resume=true $(ARGS)
.PHONY: table1 table1-quick table2 table2-quick paper-schedule protocol-calibration campaign-tables tune-table own-data-study

# The quick tables are the MNIST default protocol (P3) unshortened, with 3 seeds instead of the paper's 10: a P3 run
# costs about 5 CPU-minutes, so no shortened schedule is needed (docs/protocol.md, "Quick profile").
# A sweep with failed (e.g. diverged) runs still writes its table: cdb-table counts them per cell.
SWEEP_FAILED = || echo "make $@: some runs failed (see above); the table counts them"
QUICK_NOTE = --note "Quick profile: the MNIST default protocol P3 unshortened (Ren et al.'s network, inputs in [0, 1], 8000 steps of batch 100 at lr 1e-3 halved after 4000, no weight decay; L2RW 4000 steps, halved after 2000; a CDB update every 50 steps), 3 seeds instead of the paper's 10 (docs/protocol.md)."

table1: venv  ## Table 1, full profile (7 losses x 5 ratios x 10 seeds, protocol P3): ~15 h on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table1 $(SWEEP) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table table1 --runs $(OUT)/table1 --out $(RESULTS) --command "make table1"

table1-quick: venv  ## Table 1, quick profile (7 losses x 5 ratios x 3 seeds, protocol P3 unshortened): ~4.5 h on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table1_quick $(SWEEP) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table table1 --runs $(OUT)/table1_quick --out $(RESULTS) --command "make table1-quick" $(QUICK_NOTE)

# The paper's numbers read as 4000 passes (protocol P1: LeNet-5, 4000 epochs of 50 steps each, about 45 min a run at
# one thread) at r = 0.99: CE, IFW, CB and CDB-CE with and without the authors' normalisation, seeds 0 and 1 (10 runs).
P1 = model=lenet5 trainer=mnist dataset.input_scale=standard
paper-schedule: venv  ## MNIST r=0.99, the paper's numbers read as 4000 passes (P1), 10 runs -> results/paper_schedule.{md,csv,png}
	$(VENV)/bin/cdb-run -m name=paper_schedule $(P1) loss=ce,ifw,cb seed=0,1 $(SWEEP)
	$(VENV)/bin/cdb-run -m name=paper_schedule $(P1) loss=cdb loss.normalize=none,mean seed=0,1 $(SWEEP)
	$(PY) scripts/paper_schedule.py --runs $(OUT)/paper_schedule --out $(RESULTS) --command "make paper-schedule"

# Which MNIST protocol did the paper run (docs/protocol.md): protocols P1-P4, the baselines at r = 0.9 / 0.99 / 0.995 and
# CDB-CE at r = 0.99, seeds 0-2, one run per line of scripts/protocol_runs.py (resume=true: run it again to continue).
# On a machine without the earlier run directories, `scripts/protocol_runs.py --skip results/protocol_calibration.csv`
# lists only the runs the committed table lacks; the table keeps its earlier rows (protocol_calibration.py --keep).
# scripts/protocol_campaign.sh FROZEN_CHECKOUT trains those (and the claim on P3 and P2, and Tables 1-2 on P3) with frozen
# code.
protocol-calibration: venv  ## MNIST protocols P1-P4 against the paper's baselines (93 runs, hours on 2 cores) -> results/protocol_calibration.{md,csv,png}
	$(PY) scripts/protocol_runs.py | xargs -P $(JOBS) -L 1 $(VENV)/bin/cdb-run $(SWEEP_FAILED)
	$(PY) scripts/protocol_calibration.py --runs $(OUT) --out $(RESULTS) --command "make protocol-calibration"

# The campaign's tables (docs/protocol.md): Tables 1-2 on P3 from the run records scripts/protocol_campaign.sh archives
# in results/runs/calib_p3 (code frozen at commit a89e450), the calibration table with them, and the runs trained twice
# (their first training is the calibration table of commit b881eed). Table 1 takes CDB-CE with the authors'
# normalisation only (the campaign also trains eq. 2 unnormalised, which the calibration table reports).
CAMPAIGN = results/runs/calib_p3
CAMPAIGN_CMD = --command "scripts/protocol_campaign.sh outputs/frozen_a89e450" --note "Protocol P3 (docs/protocol.md), trained by scripts/protocol_campaign.sh with the code of commit a89e450; run records in results/runs/calib_p3. Seeds 0-2 in every cell; the seeds 3-9 that the calibration adds to CE, IFW and CB are in results/protocol_calibration.md. The campaign is in progress: a 'no run' cell is still to train (scripts/protocol_runs.py --part tables)."
campaign-tables: venv  ## Tables 1-2, the protocol calibration and the runs trained twice, from the campaign's records in results/runs
	$(VENV)/bin/cdb-table table1 --runs $(CAMPAIGN) --exclude "*loss.normalize=none*" --exclude "*/seed=[3-9]" --out $(RESULTS) $(CAMPAIGN_CMD)
	$(VENV)/bin/cdb-table table2 --runs $(CAMPAIGN) --exclude "*loss.normalize=none*" --exclude "*/seed=[3-9]" --out $(RESULTS) $(CAMPAIGN_CMD)
	$(PY) scripts/protocol_calibration.py --runs results/runs --out $(RESULTS) --command "make campaign-tables"
	$(PY) scripts/trained_twice.py --first-rev b881eed --runs results/runs --out $(RESULTS) --command "make campaign-tables"

# A tuned comparison (docs/tuning.md): one Optuna study of TRIALS trials per loss of TUNE_LOSSES (equal budgets), the
# objective each trial's balanced validation accuracy; then `cdb-table compare` over each loss's best trial, chosen on
# validation only. JOBS trials at a time; resume=true (the preset's): run it again to continue an interrupted study.
TUNE_LOSSES ?= ce ifw focal cb cdb
TRIALS ?= 20
TUNE_RUNS = $(foreach l,$(TUNE_LOSSES),$(OUT)/tune_mnist_$(l))
tune-table: venv  ## tuned comparison on MNIST 4/9 r=0.99: TRIALS trials a loss (protocol P3), best trial each by validation -> results/tune_mnist/
	@for l in $(TUNE_LOSSES); do $(VENV)/bin/cdb-run -m experiment=tune_mnist loss=$$l hydra.sweeper.n_trials=$(TRIALS) \
	  hydra.sweeper.n_jobs=$(JOBS) $(SWEEP) $(SWEEP_FAILED); done
	$(VENV)/bin/cdb-table compare --runs $(TUNE_RUNS) --best-of loss.label --out $(RESULTS)/tune_mnist \
	  --command "make tune-table TUNE_LOSSES='$(TUNE_LOSSES)' TRIALS=$(TRIALS)"

# The own-data study (docs/own-data.md, issue 23): long-tailed folders built from real MNIST (10 digits at imbalance
# 100, two hard pairs at 99:1), every method x seeds 0-2 with the dataset=folder recipe; the folder defaults are chosen
# from its validation tables (the validation split, and a holdout of more training images for last vs best checkpoint).
# A long real-data run, never part of `make test`. resume=true: run it again to continue.
STUDY = $(PY) scripts/own_data_study.py --folders $(OUT)/own_data_folders --runs $(OUT)
own-data-study: venv  ## own data: 8 methods x 3 folders x 3 seeds (72 runs, ~1 h of one core) -> results/own_data_study/
	$(STUDY) folders
	$(STUDY) pair-lines | xargs -P $(JOBS) -L 1 $(VENV)/bin/cdb-run $(SWEEP_FAILED)
	$(STUDY) pairs
	$(STUDY) lines | xargs -P $(JOBS) -L 1 $(VENV)/bin/cdb-run $(SWEEP_FAILED)
	$(STUDY) tables
	$(STUDY) holdout

table2: venv  ## Table 2, full profile (7 tau x 5 ratios x 10 seeds, protocol P3): ~15 h on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table2 $(SWEEP) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table table2 --runs $(OUT)/table2 --out $(RESULTS) --command "make table2"

table2-quick: venv  ## Table 2, quick profile (7 tau x 5 ratios x 3 seeds, protocol P3 unshortened): ~4.5 h on 2 cores
	$(VENV)/bin/cdb-run -m experiment=table2_quick $(SWEEP) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table table2 --runs $(OUT)/table2_quick --out $(RESULTS) --command "make table2-quick" $(QUICK_NOTE)

# ---- Tables 3-7 and the figures (long-tailed CIFAR-100, ImageNet-LT, EGTEA) -------------------------------
# `make table3 ARGS="trainer.device=cuda:0"` passes extra overrides to every run. Where a dataset is missing
# the runs stop at once with the message that says how to get it, and the table is still written (its cells
# then read "no run").

# $(1) table, $(2) folder of its runs under $(OUT), $(3) extra overrides; resume=true: restartable
define table_rule
	@mkdir -p $(OUT)/$(2)
	$(VENV)/bin/cdb-run -m experiment=$(1) $(3) resume=true $(ARGS) $(SWEEP_FAILED)
	$(VENV)/bin/cdb-table $(1) --runs $(OUT)/$(2) --out $(RESULTS) --command "cdb-run -m experiment=$(1) $(3) $(ARGS)"
endef

table3: venv  ## Table 3: ResNet-32 on CIFAR-100-LT, CDB-CE (dynamic tau), imbalance 200-10 (5 runs)
	$(call table_rule,table3,table3,)

table4: venv  ## Table 4: ResNet-32 on CIFAR-100-LT, CDB-CE for tau 0-5 and dynamic (35 runs)
	$(call table_rule,table4,table4,)

table5: venv  ## Table 5: ResNet-10 on ImageNet-LT, CDB-CE (1 run)
	$(call table_rule,table5,table5,)

table6: venv  ## Table 6: 3D-ResNeXt-101 on EGTEA, CE, focal, CB and CDB-CE
	$(call table_rule,table6,table6,)

table7: venv  ## Table 7: majority/minority verbs of the Table 6 runs (trains only what table6 has not)
	$(call table_rule,table7,table6,)

figures: venv  ## Figure 2 into results/; with RUN=<run dir> also Figure 1 and the weights/tau plot of that run
	$(PY) scripts/figures.py figure2 --out $(RESULTS)
	@if [ -n "$(RUN)" ]; then $(PY) scripts/figures.py run "$(RUN)" --out $(RESULTS); \
	else echo "make figures: add RUN=<run dir> for Figure 1 and the class weights / tau plot of a run"; fi
