"""Console commands, one module each: run (cdb-run), table (cdb-table), figures (cdb-figures), evaluate
(cdb-eval), the dry run and the command-line checks. `python -m cdb.cli` is cdb-run."""
