"""Multinomial logistic regression, the independent yardstick of this project.

Used as the *linear probe* of a learned hidden code: each hidden layer's own read-out (the
accuracy of unsupervised learning, and whether a layer does work). Trained by L-BFGS with autograd: it is a
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


def probe_layers(codes, fit: tuple[torch.Tensor, torch.Tensor], score: tuple[torch.Tensor, torch.Tensor],
                 batch_size: int) -> list[float]:
    """Each hidden layer's linear probe, bottom first: fitted on ``fit``'s codes, its accuracy on
    ``score``'s. ``codes(x)`` gives the layers' activities for a batch of images."""
    def all_codes(x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.cat(layer) for layer in zip(*(codes(b) for b in x.split(batch_size)))]

    probes = [fit_logistic_regression(c, fit[1]) for c in all_codes(fit[0])]
    return [round((p(c).argmax(1) == score[1]).float().mean().item(), 5)
            for p, c in zip(probes, all_codes(score[0]))]
