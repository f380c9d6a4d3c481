"""Per-step learning-rate schedules, built as partials (``lr_schedule=`` in ``conf/``)."""
from __future__ import annotations

import math

import torch


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning rate cosine-annealed from its base value to 0 at ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total_steps) / max(total_steps, 1))))


def constant_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0)
