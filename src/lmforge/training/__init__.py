"""Training: the one loop, objectives, batches, optimizers, checkpoints, distribution."""
