"""Hydra's entry point for cdb's pack launcher (Hydra registers launchers by their module under hydra_plugins).

The launcher is cdb.launch.pack.PackLauncher; this subclass only gives it a name Hydra accepts.
"""
from cdb.launch import pack as sweep


class PackLauncher(sweep.PackLauncher):
    """cdb.launch.pack.PackLauncher, registered under hydra_plugins."""
