"""The suite's fixtures and hooks: real MNIST (mnist_dir), no network for any test, and the data or runs that
tests in more than one file share (digits, single). The helpers (REPO, cdb_run, compose, read_log, ...) live in
tests/helpers/; test files import them with `from helpers import ...`. Real MNIST comes from CDB_DATA_ROOT (CI
points it at ../shared/data); tests never download.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import mnist_root


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    root = mnist_root()
    if root is None:
        pytest.fail("real MNIST not found: set CDB_DATA_ROOT to a folder with MNIST/raw/ (CI uses ../shared/data)")
    return root


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: any connection attempt fails loudly, except to a local (AF_UNIX) socket, such as
    the forkserver's of helpers.forked."""
    import socket

    connect = socket.socket.connect

    def guard(sock, *args, **kwargs):
        if sock.family == socket.AF_UNIX:
            return connect(sock, *args, **kwargs)
        raise RuntimeError("tests must not use the network")

    monkeypatch.setattr(socket.socket, "connect", guard)


@pytest.fixture(scope="module")
def digits(tmp_path_factory, mnist_dir):
    """Folders of real MNIST digits (helpers.digits): <root>/two (4 and 9 at 40:600) and <root>/ten."""
    from helpers.digits import RAW, TEN, TWO, read_idx, write_digits

    raw = mnist_dir / "MNIST" / "raw"
    x_tr, y_tr, x_te, y_te = (read_idx(raw / f) for f in RAW)
    images = {"train": (x_tr, y_tr), "test": (x_te, y_te)}
    root = tmp_path_factory.mktemp("own_data")
    write_digits(root / "two", images, TWO)
    write_digits(root / "ten", images, TEN, test_per_class=10)
    return root


@pytest.fixture(scope="module")
def single(mnist_dir, tmp_path_factory):
    """The one-process run (helpers.ddp) that the two-process DDP runs must equal."""
    import torch

    from helpers.ddp import mnist_cfg as _cfg, record as _record

    run_dir = tmp_path_factory.mktemp("single")
    torch.set_num_threads(1)
    metrics = _record(_cfg(mnist_dir), str(run_dir))
    return run_dir, metrics
