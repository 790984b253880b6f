"""A resumed run is the run it claims to be: one whose data changed under it (MNIST with the labels 4 and 9
swapped) is refused in one line and its record (config.yaml, data.json, .hydra/) is left as it was; a finished run
whose config.yaml is damaged is not counted as done by a resuming sweep."""
from __future__ import annotations

import shutil

from helpers import cdb_run
from helpers.faults import TINY, one_line


def _swapped_mnist(mnist_dir, to):
    """A copy of MNIST whose label files call every 4 a 9 and every 9 a 4 (the images are the same files)."""
    raw, out = mnist_dir / "MNIST" / "raw", to / "MNIST" / "raw"
    out.mkdir(parents=True)
    for f in raw.iterdir():
        if f.name.endswith("-labels-idx1-ubyte"):
            data = bytearray(f.read_bytes())
            body = data[8:]
            data[8:] = bytes({4: 9, 9: 4}.get(b, b) for b in body)
            (out / f.name).write_bytes(bytes(data))
        elif f.name.endswith("-idx3-ubyte"):
            shutil.copyfile(f, out / f.name)
    return to


def test_resuming_on_other_data_is_refused_and_the_record_is_kept(mnist_dir, tmp_path):
    run = tmp_path / "run"
    at = f"hydra.run.dir='{run}'"
    assert cdb_run(tmp_path, "loss=ce", *TINY, at, data=mnist_dir).returncode == 0
    record = {p: p.read_bytes() for p in [run / "config.yaml", run / "data.json", *(run / ".hydra").iterdir()]}
    longer = [a for a in TINY if not a.startswith("trainer.length=")] + ["trainer.length=4"]  # continues the run
    r = cdb_run(tmp_path, "loss=ce", *longer, at, "resume=true", data=_swapped_mnist(mnist_dir, tmp_path / "swapped"))
    one_line(r, f"checkpoint {run / 'checkpoints' / 'last.pt'} was trained on other data: the splits built now "
                "differ from those the run started with")
    assert {p: p.read_bytes() for p in record} == record
    ok = cdb_run(tmp_path, "loss=ce", *longer, at, "resume=true", data=mnist_dir)  # its own data: it goes on
    assert ok.returncode == 0 and "resumed at unit 2" in (run / "run.log").read_text(), ok.stderr


def test_a_finished_run_with_a_damaged_config_is_not_called_done(mnist_dir, tmp_path):
    assert cdb_run(tmp_path, "-m", "loss=ce", *TINY, data=mnist_dir).returncode == 0
    config = next((tmp_path / "out").rglob("metrics.json")).parent / "config.yaml"
    config.write_text("garbage: [unclosed\n")
    r = cdb_run(tmp_path, "-m", "loss=ce", *TINY, "resume=true", data=mnist_dir)
    assert r.returncode == 1 and "sweep: 0 ok, 1 failed" in r.stderr, r.stderr
    assert f"{config} cannot be read as the run's settings" in r.stderr and "Traceback" not in r.stderr
    assert config.read_text() == "garbage: [unclosed\n"
