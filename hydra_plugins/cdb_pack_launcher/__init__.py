"""Hydra finds launchers only under the hydra_plugins namespace: this one is cdb's pack launcher."""
