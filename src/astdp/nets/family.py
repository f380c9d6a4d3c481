"""The family of local networks: what every network that learns by aSTDP shares.

A network of the family is layers of rate neurons (pixels, label units, hidden layers)
joined by synapses that only the rule (:func:`astdp.nets.rule.stdp`) changes. Each play of a
mini-batch clamps some units to the data, lets the others settle (the free phase), clamps
everything to the data (the target phase, where each hidden neuron moves by its own slope
times the change of its own drive) and hands every synapse ``pre * (target - post)``.

:class:`LocalNet` holds what does not depend on the wiring: the neurons (activation, their
numerical slope, homeostasis), the biases' rule, the play loop and the interface the rest
of the code uses. A network says only how it is wired: its synapses (in ``__init__``), its
settling, its targets and which synapses each play teaches (:meth:`LocalNet.learn`).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from astdp.nets.rule import ACTIVATIONS, PLAYS, stdp


class LocalNet(nn.Module):
    """Base of the family. Parameters never require grad: they change only through
    :meth:`weight_changes` (and :func:`astdp.nets.rule.learning_step`)."""

    def __init__(self, activation: str, eps: float, homeostasis: float, target_rate: float,
                 image_shape: Sequence[int], n_labels: int) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        self.rho = ACTIVATIONS[activation]
        self.eps = eps
        # Homeostasis (intrinsic plasticity): a hidden neuron's bias drifts so that its own
        # firing rate tends to target_rate. Local to the neuron; it makes codes sparse.
        self.homeostasis, self.target_rate = homeostasis, target_rate
        self.image_shape, self.n_pixels, self.n_labels = tuple(image_shape), math.prod(image_shape), n_labels
        self._halves: dict[torch.device, Tensor] = {}  # see halves()

    @property
    def depth(self) -> int:
        """The number of hidden layers (a network keeps its bottom-up synapses in ``self.W``)."""
        return len(self.W)

    # ------------------------------------------------------------------ the neurons
    def rho_prime(self, u: Tensor) -> Tensor:
        """Each neuron's own numerical estimate of its slope, no autograd."""
        return (self.rho(u + self.eps) - self.rho(u)) / self.eps

    def bias_changes(self, t: list[Tensor], a: list[Tensor], scale: float, acc: dict[str, Tensor]) -> None:
        """Each layer's biases (``b.0``, ``b.1``, ...) follow their own units' rise ``t - a``;
        a hidden unit's (layers 1..depth) also drifts towards ``target_rate`` (homeostasis)."""
        for l in range(len(t)):
            rise = t[l] - a[l]
            if 0 < l <= self.depth and self.homeostasis:
                rise = rise + self.homeostasis * (self.target_rate - a[l])
            db = rise.mean(0).mul_(scale)
            acc[f"b.{l}"] = db if f"b.{l}" not in acc else acc[f"b.{l}"].add_(db)

    # ------------------------------------------------------------------ learning
    def check_plays(self, plays: Mapping[str, tuple[float, int]]) -> None:
        """Refuse a play this network cannot run (a network narrows it further)."""
        unknown = set(plays) - set(PLAYS)
        if unknown:
            raise ValueError(f"unknown play {sorted(unknown)}; choose from {', '.join(PLAYS)}")

    def change(self, acc: dict[str, Tensor], name: str) -> Tensor:
        """The batch's change of parameter ``name`` in ``acc``, zeros until a play adds to it
        (made once: a zero fill the size of a synapse matrix costs as much as an addition)."""
        if name not in acc:
            acc[name] = torch.zeros_like(self.get_parameter(name))
        return acc[name]

    def draw(self, h1: Tensor, beta: float = 1.0) -> Tensor:
        """The pixels (B, n_pixels) that h1's activity ``h1`` draws top-down, every drive times ``beta``
        (a network keeps its pixels' slice of layer 0 in ``self.pixels``)."""
        u = torch.addmm(self.b[0][self.pixels], h1, self.V[0][:, self.pixels])
        return self.rho(u * beta if beta != 1.0 else u)

    def redraw(self, h1: Tensor, x: Tensor, scale: float, acc: dict[str, Tensor]) -> None:
        """The redraw play's changes: the synapses from h1 down to the pixels (``V.0``, and the
        pixels' biases) learn to draw the image ``x`` (B, n_pixels) from h1's code of it ``h1``:
        pre ``h1``, post the pixels' top-down prediction, target the image. Only top-down
        synapses change, so classification (which never drives the pixels) is untouched."""
        drawn = self.draw(h1)
        dv = self.change(acc, "V.0")
        stdp(h1, drawn, x, scale, dv[:, self.pixels])
        db = self.change(acc, "b.0")
        db[self.pixels] += (x - drawn).mean(0) * scale

    def halves(self, device: torch.device) -> Tensor:
        """(4, n_pixels) boolean: the bottom, top, right and left half of an image (made once per
        device, not on every batch; not a buffer, so checkpoints keep their keys)."""
        if device not in self._halves:
            h, w = self.image_shape
            rows = torch.arange(h, device=device)[:, None].expand(h, w)
            cols = torch.arange(w, device=device)[None, :].expand(h, w)
            self._halves[device] = torch.stack([rows >= h // 2, rows < h // 2, cols >= w // 2, cols < w // 2]).flatten(1)
        return self._halves[device]

    def learn(self, play: str, x: Tensor, y: Tensor, steps: int, scale: float, acc: dict[str, Tensor],
              shared: dict, **kw) -> Tensor | None:
        """One play on a batch: add its weight changes (times ``scale``) into ``acc``; return the
        label units' activity when the play left them free (``classify``). ``shared`` is this
        batch's scratch space for what several plays can reuse."""
        raise NotImplementedError

    def weight_changes(self, x: Tensor, y: Tensor, plays: Mapping[str, tuple[float, int]], **kw
                       ) -> tuple[dict[str, Tensor], Tensor | None]:
        """Scaled sum of the plays' weight changes for a batch, keyed by parameter name (a
        parameter no play changed gets zeros), and the label activity of the ``classify`` play.

        ``x``: pixels in [0, 1], shape (B, n_pixels); ``y``: one-hot labels (B, n_labels);
        ``plays`` maps a play to its (scale, settling steps); scale 0 skips it. ``classify``
        clamps the image (labels free), ``generate`` the label (pixels free), ``recirculate``
        needs no label (unsupervised: the pixels start at the image and settle freely), ``redraw``
        teaches the top-down synapses to draw the image from the code the ``classify`` play
        settled on (settled here if that play is off).
        """
        self.check_plays(plays)
        acc: dict[str, Tensor] = {}
        shared: dict = {}
        label_activity = None
        for name, (scale, steps) in plays.items():
            if scale == 0:
                continue
            labels = self.learn(name, x, y, steps, scale, acc, shared, **kw)
            if name == "classify":
                label_activity = labels
        if not acc:
            raise ValueError("every play has scale 0: nothing to learn from")
        for name, _ in self.named_parameters():
            self.change(acc, name)
        return acc, label_activity

    # ------------------------------------------------------------------ use (each network's own)
    def classify(self, x: Tensor, steps: int, known: Tensor | None = None) -> Tensor:
        """Class indices: clamp the image (only its ``known`` pixels if given), read the labels."""
        raise NotImplementedError

    def label_activity(self, x: Tensor, steps: int) -> Tensor:
        """The label units' activities (B, n_labels) with the image clamped (``classify`` reads their argmax)."""
        raise NotImplementedError

    def generate(self, labels: Tensor, steps: int, noise: float = 0.0, generator: torch.Generator | None = None,
                 sample: bool = False, beta: float | Sequence[float] = 1.0, label_strength: float = 1.0,
                 pixel_spikes: bool = False, label_hold: int | None = None) -> Tensor:
        """Images (B, n_pixels) for the given class indices: clamp the label, read the pixels.
        ``sample``: hidden units fire binary spikes; ``noise``: Gaussian noise on free drives;
        ``beta``: every settled drive times this (an inverse temperature), or one value per
        settling step (annealing, :func:`astdp.nets.rule.annealed`); ``label_strength``:
        the value the label unit is clamped at (1 in training), for the first ``label_hold``
        steps only if given (then 1); ``pixel_spikes``: the pixels fire binary spikes too, in
        every step but the last (a Gibbs chain's binary image for the next step to read)."""
        raise NotImplementedError

    def inpaint(self, x: Tensor, known: Tensor, steps: int, beta: float = 1.0, from_code: bool = False,
                rounds: int = 1) -> Tensor:
        """Fill in the pixels where ``known`` is False; the known ones stay clamped. ``beta``:
        every settled drive times this (as in :meth:`generate`); ``from_code``: draw them from
        the hidden code of the known pixels, as the completion play teaches, then ``rounds`` - 1
        times from the code of the completed image (the fill: the mean of the draws)."""
        raise NotImplementedError

    def predict_pixels(self, x: Tensor, steps: int) -> Tensor:
        """Top-down prediction of a clamped image from its settled hidden code."""
        raise NotImplementedError

    def hidden_codes(self, x: Tensor, steps: int) -> list[Tensor]:
        """Each hidden layer's activity with the image clamped, bottom first (for linear probes)."""
        raise NotImplementedError
