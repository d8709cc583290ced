"""Serving a trained model: checkpoints, the scorer, the fused pass, the micro-batcher,
the child process."""
