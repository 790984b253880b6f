"""Tables average only what agrees: one cell never mixes settings, a copied run counts
once, an unknown --by is refused, a `|` cannot break the Markdown table, a run without config.yaml is named."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from cdb.core.errors import CdbError
from cdb.report.tables import make_table
from helpers.report import fake_mnist_run


def test_a_cell_refuses_runs_whose_settings_differ(tmp_path):
    fake_mnist_run(tmp_path, "a", "dynamic", 0.99, 0, 3.0)
    fake_mnist_run(tmp_path, "b", "dynamic", 0.99, 1, 4.0)
    cfg = yaml.safe_load((tmp_path / "b" / "seed=1" / "config.yaml").read_text())
    cfg["trainer"]["length"] = 300
    (tmp_path / "b" / "seed=1" / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CdbError, match=r"cell \(CDB-CE, 0.99\) would average runs whose settings differ: "
                                       r"trainer.length is 2000 in .* and 300 in "):
        make_table("table1", tmp_path)


def test_copies_of_one_run_count_once(tmp_path):
    fake_mnist_run(tmp_path, "a", "dynamic", 0.99, 0, 3.0)
    for copy in ("b", "c"):
        shutil.copytree(tmp_path / "a", tmp_path / copy)
    fake_mnist_run(tmp_path, "d", "dynamic", 0.99, 1, 5.0)
    cell = make_table("table1", tmp_path).cells.set_index(["row", "col"]).loc[("CDB-CE", "0.99")]
    assert (cell["n"], cell["mean"]) == (2, 4.0)   # seeds 0 and 1, each once: (3 + 5) / 2


def test_an_unknown_by_key_is_refused_with_the_keys_that_exist(tmp_path):
    fake_mnist_run(tmp_path, "a", "dynamic", 0.99, 0, 3.0)
    with pytest.raises(CdbError, match=r"--by 'loss.lable' is not a setting of these runs; use override .*loss.label"):
        make_table("compare", tmp_path, by="loss.lable")


def test_a_bar_in_a_label_is_escaped_in_markdown(tmp_path):
    fake_mnist_run(tmp_path, "a", "dynamic", 0.99, 0, 3.0, label="CE|weighted")
    md = make_table("compare", tmp_path, by="loss.label").text("md")
    row = next(line for line in md.splitlines() if "weighted" in line and line.startswith("|"))
    assert "CE\\|weighted" in row
    assert row.count("|") - row.count("\\|") == md.splitlines()[[i for i, line in enumerate(md.splitlines())
                                                                  if line.startswith("|")][0]].count("|")


def test_a_finished_run_without_config_is_named(tmp_path, capsys):
    fake_mnist_run(tmp_path, "a", "dynamic", 0.99, 0, 3.0)
    fake_mnist_run(tmp_path, "b", "dynamic", 0.99, 1, 4.0)
    (tmp_path / "b" / "seed=1" / "config.yaml").unlink()
    table = make_table("table1", tmp_path)
    assert f"{tmp_path / 'b' / 'seed=1' / 'config.yaml'} is missing: that run is left out" in capsys.readouterr().err
    assert json.loads(table.text("json")) is not None
