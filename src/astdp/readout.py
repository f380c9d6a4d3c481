"""Multinomial logistic regression, the independent yardstick of this project.

Used twice: as the *judge* of generated images (trained on the dataset's pixels; it shares
nothing with the aSTDP model) and as the *linear read-out* of a learned hidden code
(the accuracy of unsupervised learning). Trained by L-BFGS with autograd: it is a
measuring instrument, not part of the aSTDP model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, iters: int = 300, l2: float = 1e-4) -> nn.Linear:
    """Fit on standardized features (L-BFGS converges on a code's badly scaled units only
    then); the standardization is folded into the returned layer, which takes raw ``x``."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-2)
    z = (x - mean) / std
    model = nn.Linear(x.shape[1], int(y.max()) + 1).to(x.device)
    nn.init.zeros_(model.weight)  # a convex problem from a fixed start: deterministic
    nn.init.zeros_(model.bias)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(z), y) + l2 * model.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        model.weight /= std
        model.bias -= model.weight @ mean
    return model.requires_grad_(False)
