"""Training: the settings (config), one run's state and files (run), the one loop over a pack of runs (loop),
where it runs (placement, distributed), batches, evaluation, speed settings, checkpoints (io) and sweeps."""
