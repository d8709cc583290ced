"""Training: sequence data and splits, the trainer, DP training, curves."""
