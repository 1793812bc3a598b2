"""Training: config, batches, objectives, checkpoints, distributed setup. The loop is liv.train."""
