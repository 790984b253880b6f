"""`python -m cdb.cli ARGS` is `cdb-run ARGS` (what torchrun and the tests start)."""
from cdb.cli.run import main

main()
