"""Training with Lightning: the modules that drive the networks, their schedules, callbacks,
checkpoints and the DDP strategy."""
