"""Shared fixtures. Real MNIST comes from CDB_DATA_ROOT (CI points it at ../shared/data); tests never download."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def mnist_root() -> Path | None:
    root = os.environ.get("CDB_DATA_ROOT")
    candidates = [Path(root)] if root else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        c = c if c.is_absolute() else (REPO / c)
        if (c / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    root = mnist_root()
    if root is None:
        pytest.fail("real MNIST not found: set CDB_DATA_ROOT to a folder with MNIST/raw/ (CI uses ../shared/data)")
    return root


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: any socket connection attempt fails loudly."""
    import socket

    def guard(*args, **kwargs):
        raise RuntimeError("tests must not use the network")

    monkeypatch.setattr(socket.socket, "connect", guard)
