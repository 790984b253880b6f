# The own-data study (studies/own_data/README.md): long-tailed folders built from real MNIST, every method x seeds
# 0-2 with the dataset=folder recipe; the folder defaults are chosen from its validation tables.
OWN = $(PY) studies/own_data/own_data_study.py --folders $(OUT)/own_data_folders --runs $(OUT)
.PHONY: own-data-study

own-data-study: venv  ## own data: 8 methods x 3 folders x 3 seeds (72 runs, ~1 h of one core) -> results/own_data_study/
	$(OWN) folders
	$(OWN) pair-lines | xargs -P $(JOBS) -L 1 $(VENV)/bin/cdb-run $(SWEEP_FAILED)
	$(OWN) pairs
	$(OWN) lines | xargs -P $(JOBS) -L 1 $(VENV)/bin/cdb-run $(SWEEP_FAILED)
	$(OWN) tables
	$(OWN) holdout
