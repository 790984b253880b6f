"""Write the paper's figures as PNG (see cdb/report/figures.py): `cdb-figures`, from a checkout without installing.

    python scripts/figures.py figure2 --out results             # Figure 2: weight vs difficulty for several tau
    python scripts/figures.py run <run dir> --out results       # Figure 1 + class weights / tau of one run
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from cdb.cli.figures import main  # noqa: E402

if __name__ == "__main__":
    main(prog="python scripts/figures.py")
