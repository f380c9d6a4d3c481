"""The learning rule and what it acts on, in plain torch: neurons' activation functions,
synapses, the rule itself (:func:`stdp`) and one local learning step (:func:`learning_step`).

Every network of the family (:mod:`astdp.nets.family`) learns through these and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": lambda u: 0.5 * (torch.tanh(u) + 1.0),  # rescaled to (0, 1) like pixels
    "hardsigmoid": lambda u: torch.clamp(0.25 * u + 0.5, 0.0, 1.0),
}

PLAYS = ("classify", "generate", "recirculate", "redraw", "complete")  # what each clamps: see LocalNet.weight_changes


def stdp(pre: Tensor, post: Tensor, target: Tensor, scale: float = 1.0, out: Tensor | None = None,
         member: Tensor | None = None) -> Tensor:
    """The learning rule, rate form of STDP, batch-averaged.

    ``dw[i, j] = scale * mean_batch pre_i * (target_j - post_j)``: a synapse grows when
    its postsynaptic neuron's activity rises (towards its target) right after the
    presynaptic neuron was active. It sees only its own two neurons. With ``out`` the
    change is added to it in place (summing several plays without temporaries).
    ``member`` (B, G one-hot) says that examples share their presynaptic activity within
    G groups; ``pre`` then has G rows and each group's rises are summed first: the same
    change, from a product with G rows instead of B.
    """
    rise = (target - post) * (scale / post.shape[0])  # scale the small factor, not the product
    if member is not None:
        rise = member.T @ rise
    return pre.T @ rise if out is None else out.addmm_(pre.T, rise)


def learning_step(optimizer: torch.optim.Optimizer, params: Iterable[tuple[str, nn.Parameter]],
                  changes: Mapping[str, Tensor], plain: Mapping[str, float] | None = None) -> None:
    """Apply the rule's changes ``dw`` (by parameter name) through ``optimizer``, as the
    pseudo-gradient ``grad = -dw``: plain SGD adds ``lr * dw``; momentum or Adam rescale each
    synapse's step by its own history only, so the step stays local. The parameters named in
    ``plain`` (name: learning rate; not in ``optimizer``) step by plain SGD instead. Consumes
    ``changes``."""
    plain = plain or {}
    for name, p in params:
        if name in plain:
            p.add_(changes[name].view_as(p), alpha=plain[name])
        else:
            p.grad = changes[name].view_as(p).neg_()
    optimizer.step()


def synapses(n_in: int, n_out: int, init_scale: float, generator: torch.Generator | None) -> nn.Parameter:
    """Weights ``N(0, init_scale^2 / n_in)`` that never require grad (only the rule changes them)."""
    w = torch.randn(n_in, n_out, generator=generator) * (init_scale / n_in**0.5)
    return nn.Parameter(w, requires_grad=False)


def annealed(start: float, end: float, steps: int) -> list[float]:
    """An inverse temperature for each of ``steps`` settling steps, from ``start`` to ``end`` in
    even steps (one step: ``end``): a sample explores at a low one, then commits at a high one."""
    return [end] if steps == 1 else [start + (end - start) * k / (steps - 1) for k in range(steps)]


def held(strength: float, hold: int | None, steps: int) -> list[float] | None:
    """The clamped label's value in each of ``steps`` settling steps: ``strength`` for the first
    ``hold``, then 1 as in training (it picks the class, then lets the sample wander within it);
    None without ``hold``: ``strength`` throughout, clamped once."""
    return None if hold is None else [strength if k < hold else 1.0 for k in range(steps)]


def per_step(beta: float | Sequence[float], steps: int) -> list[float]:
    """``beta`` for each settling step: one value for all, or one per step."""
    if isinstance(beta, (int, float)):
        return [beta] * steps
    if len(beta) != steps:
        raise ValueError(f"{len(beta)} inverse temperatures for {steps} settling steps")
    return list(beta)


@dataclass
class State:
    """Drive ``u`` and activity ``a`` of every layer (index 0 is the visible layer) after
    settling; ``up1``: h1's drive from below at the end, where a network's targets need it."""

    u: list[Tensor]
    a: list[Tensor]
    up1: Tensor | None = None

    def rows(self, member: Tensor) -> "State":
        """Each example's copy of its group's row (``member``: B x G one-hot), for settling
        that ran once per group."""
        up1 = None if self.up1 is None else member @ self.up1
        return State([member @ u for u in self.u], [member @ a for a in self.a], up1)
