"""Training: the settings (config), one run's state and files (run), the one loop that trains a run alone or a pack
of runs (loop), a pack assembled as one network (pack), a step's loss (loss), what a resumed run checks (resume),
where it runs (placement, distributed), batches, evaluation, speed settings, progress lines and TensorBoard logs."""
