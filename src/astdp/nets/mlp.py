"""The backprop twin's network: a sigmoid MLP of the aSTDP network's sizes (trained by autograd)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def mlp(hidden: list[int], image_shape: list[int], n_classes: int, every_layer_votes: bool = False,
        dropout: float = 0.0, input_dropout: float = 0.0, center: float = 0.0) -> nn.Module:
    """Sigmoid MLP ``pixels -> hidden... -> classes`` (logits): the baseline's network.

    ``every_layer_votes``: every hidden layer adds its own linear vote to the logits, as
    :class:`astdp.nets.joined.JoinedLabelNet`'s label units hear every layer (the twin of ``model=joined``).
    With one hidden layer both are the same network, built in the same order.
    ``dropout``: that share of each hidden layer's units is dropped in training, as
    ``model=joined``'s classify play drops them (0: no dropout module, the same parameters).
    ``input_dropout``: that share of pixels is blanked in training, as ``model=joined``'s
    classify play sees its images (0: the random generator is not touched).
    ``center``: each pixel enters less its running mean over the training images, which
    follows each batch's at this rate, as ``model=joined``'s pixels reach h1 (0: off, no buffer).
    """
    sizes = [math.prod(image_shape), *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.Sigmoid(), *([nn.Dropout(dropout)] if dropout else [])]
    if not every_layer_votes:
        net = MLP(*layers, nn.Linear(sizes[-1], n_classes), input_dropout=input_dropout)
    else:
        votes = [nn.Linear(n, n_classes, bias=k == len(hidden) - 1) for k, n in enumerate(hidden)]
        net = LayerVotes(layers, votes, input_dropout)
    if center:
        net.center = center
        net.register_buffer("c", torch.zeros(sizes[0]))
    return net


def _seen(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The pixels as the first layer sees them: dropped out in training (``input_dropout``), then
    less their running mean ``c`` (with ``center``; in training ``c`` first follows this batch's
    whole images), as ``model=joined``'s bottom-up synapses hear a damaged image."""
    p = net.input_dropout
    seen = F.dropout(x, p, net.training) if p and net.training else x
    if not getattr(net, "center", 0):
        return seen
    if net.training:
        with torch.no_grad():
            net.c.lerp_(x.mean(0), net.center)
    return seen - net.c


class MLP(nn.Sequential):
    """``nn.Sequential`` of the layers (the same parameter names), its input dropped out in training."""

    def __init__(self, *layers: nn.Module, input_dropout: float = 0.0) -> None:
        super().__init__(*layers)
        self.input_dropout = input_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_seen(self, x))


class LayerVotes(nn.Module):
    """Logits = the sum of each hidden layer's linear vote (one bias, the top vote's)."""

    def __init__(self, layers: list[nn.Module], votes: list[nn.Module], input_dropout: float = 0.0) -> None:
        super().__init__()
        self.layers, self.votes = nn.ModuleList(layers), nn.ModuleList(votes)
        self.input_dropout = input_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _seen(self, x)
        codes = []
        per_layer = len(self.layers) // len(self.votes)  # Linear, Sigmoid (, Dropout)
        for k in range(0, len(self.layers), per_layer):
            for module in self.layers[k:k + per_layer]:
                x = module(x)
            codes.append(x)  # a dropped unit's vote is dropped with it
        return sum(vote(h) for vote, h in zip(self.votes, codes))
