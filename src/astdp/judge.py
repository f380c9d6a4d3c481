"""The independent judge of generated digits: multinomial logistic regression on MNIST pixels.

It shares nothing with the aSTDP model (trained here by L-BFGS on the training set), so
"the judge reads a generated 7 as a 7" is evidence the digit looks like a 7.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def train_judge(x: torch.Tensor, y: torch.Tensor, iters: int = 60, l2: float = 1e-4) -> nn.Linear:
    torch.manual_seed(0)
    judge = nn.Linear(x.shape[1], 10).to(x.device)
    nn.init.zeros_(judge.weight)
    nn.init.zeros_(judge.bias)
    opt = torch.optim.LBFGS(judge.parameters(), max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(judge(x), y) + l2 * judge.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return judge.requires_grad_(False)
