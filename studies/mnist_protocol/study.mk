# The MNIST protocol study (studies/mnist_protocol/README.md): which reading of the paper's schedule reproduces its
# baselines, the paper's claim on the protocols that fit, and Tables 1-2 on P3 from archived run records.
MP := studies/mnist_protocol
# the commit whose code trains the campaign (a git worktree with its own .venv), and the first training of the
# runs trained twice (the calibration table that commit recorded)
CAMPAIGN_REV ?= a89e450
FIRST_REV ?= b881eed
CAMPAIGN = results/runs/calib_p3
CAMPAIGN_CMD = --command "$(MP)/protocol_campaign.sh outputs/frozen_$(CAMPAIGN_REV)" --note "$$(cat $(MP)/campaign_note.txt)"
# Table 1's CDB-CE row is the authors' normalisation (the default); the campaign also trains eq. 2 unnormalised
T1_EXCLUDE = --exclude "*loss.normalize=none*"
P1 = protocol=p1

.PHONY: paper-schedule protocol-calibration campaign campaign-tables

paper-schedule: venv  ## MNIST r=0.99 read as 4000 passes (P1), 10 runs -> results/paper_schedule.{md,csv,png}
	$(VENV)/bin/cdb-run -m name=paper_schedule $(P1) loss=ce,ifw,cb seed=0,1 $(SWEEP)
	$(VENV)/bin/cdb-run -m name=paper_schedule $(P1) loss=cdb loss.normalize=none,mean seed=0,1 $(SWEEP)
	$(PY) $(MP)/paper_schedule.py --runs $(OUT)/paper_schedule --out $(RESULTS) --command "make paper-schedule"

protocol-calibration: venv  ## MNIST protocols P1-P4 against the paper's baselines -> results/protocol_calibration.{md,csv,png}
	$(PY) $(MP)/protocol_runs.py | xargs -P $(JOBS) -L 1 $(VENV)/bin/cdb-run $(SWEEP_FAILED)
	$(PY) $(MP)/protocol_calibration.py --runs $(OUT) --out $(RESULTS) --command "make protocol-calibration"

campaign: venv  ## the campaign's queue with frozen code, niced, archiving each run (restartable; outputs/campaign.log)
	@[ -d outputs/frozen_$(CAMPAIGN_REV) ] || { git worktree add outputs/frozen_$(CAMPAIGN_REV) $(CAMPAIGN_REV) && $(MAKE) -C outputs/frozen_$(CAMPAIGN_REV) venv; }
	nohup $(MP)/protocol_campaign.sh outputs/frozen_$(CAMPAIGN_REV) $(JOBS) >> outputs/campaign.log 2>&1 &

campaign-tables: venv  ## Tables 1-2 (every seed a cell has), paired comparisons, pictures, calibration, repeats, from results/runs
	$(VENV)/bin/cdb-table table1 --runs $(CAMPAIGN) $(T1_EXCLUDE) --out $(RESULTS) $(CAMPAIGN_CMD)
	$(VENV)/bin/cdb-table table2 --runs $(CAMPAIGN) $(T1_EXCLUDE) --out $(RESULTS) $(CAMPAIGN_CMD)
	$(VENV)/bin/cdb-table paired --runs $(CAMPAIGN) $(T1_EXCLUDE) --out $(RESULTS) --command "make campaign-tables" \
	  --note "Runs: the same as results/table1.md and table2.md. $$(cat $(MP)/campaign_note.txt)"
	$(VENV)/bin/cdb-figures table1 --runs $(CAMPAIGN) $(T1_EXCLUDE) --out $(RESULTS)
	$(VENV)/bin/cdb-figures table2 --runs $(CAMPAIGN) $(T1_EXCLUDE) --out $(RESULTS)
	$(PY) $(MP)/protocol_calibration.py --runs results/runs --out $(RESULTS) --command "make campaign-tables"
	$(PY) $(MP)/trained_twice.py --first-rev $(FIRST_REV) --runs results/runs --out $(RESULTS) --command "make campaign-tables"
