"""Hydra's entry point for cdb's pack launcher (Hydra registers launchers by their module under hydra_plugins).

The launcher is cdb.train.sweep.PackLauncher; this subclass only gives it a name Hydra accepts.
"""
from cdb.train import sweep


class PackLauncher(sweep.PackLauncher):
    """cdb.train.sweep.PackLauncher, registered under hydra_plugins."""
