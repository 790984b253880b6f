"""The README and docs/ cite only files that exist, and speak of what cdb is, not of its history."""
from __future__ import annotations

import re

import pytest

from helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# a repository path as the docs write it: a top-level folder, then a file with an extension
PATH = re.compile(r"(?<![\w/.~$-])((?:docs|tests|results|scripts|cdb|configs|examples|studies)/[\w./=-]+\.(?:md|py|csv|png|yaml|sh|json|txt))")
HISTORY = re.compile(r"\b(retired|as before|is gone|no longer|used to be|formerly|issue \d+)\b", re.IGNORECASE)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_cited_path_exists(doc):
    missing = sorted({p for p in PATH.findall(doc.read_text()) if not (REPO / p).exists()})
    assert not missing, f"{doc.name} cites files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_history_words(doc):
    found = [m.group(0) for m in HISTORY.finditer(doc.read_text())]
    assert not found, f"{doc.name} speaks of history: {found}"


def test_the_path_pattern_finds_paths_and_skips_globs():
    text = "see docs/protocol.md, `tests/cli/test_x.py` and results/runs/*.yaml or outputs/<name>/config.yaml"
    assert PATH.findall(text) == ["docs/protocol.md", "tests/cli/test_x.py"]
