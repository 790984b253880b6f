# The MNIST stability study (studies/mnist_stability/README.md): which settings keep CDB-CE from collapsing on a
# 20x-compressed LeNet-5 schedule.
.PHONY: mnist-stability

mnist-stability: venv  ## CDB-CE stability settings on MNIST 4/9 (hours) -> results/mnist_stability.{md,csv}
	$(PY) studies/mnist_stability/mnist_stability.py --seeds 0 1 2 --ratio 0.98 0.99 0.995 --jobs $(JOBS)
