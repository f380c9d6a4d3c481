"""aSTDP for deep networks: the label units are joined to every hidden layer.

With the labels in the visible layer (:class:`astdp.nets.visible.VisibleLabelNet`) they reach h1 only: the
layers above learn from a second-hand signal and the label is read from h1 alone, so depth
hurts. Here the pixels form a chain ``x - h1 - ... - hL`` and the label units are joined to
every hidden layer in both directions: each layer gets the label's correction first-hand
and each adds its vote to the label read-out. One model still classifies (clamp the pixels,
read the labels) and generates (clamp the labels, read the pixels).

The rule is the same (:func:`astdp.nets.rule.stdp`); only where a hidden neuron's drive changes
from differs. In the target phase the pixels and labels are both clamped to the data, and
each hidden neuron takes the change of its whole drive: from below, its incoming ``W``
times the rise of the layer below (the pixels' correction passed up); from above, its
incoming ``V`` times the rise of the layer above plus its label synapses ``Vy`` times the
labels' correction. Its target is ``a + rho'(u) du`` with its own numerical ``rho'``.

With ``dream_noise`` the labels' correction reaches the hidden layers through feedback
synapses ``Fy`` of their own instead of ``Vy`` (which then serves generation only), and a
dream teaches them (:meth:`JoinedLabelNet.dream`): the hidden drives are disturbed, the labels
answer, and the rule, run with a negative scale, makes each ``Fy`` synapse mirror the
read-out synapse of the same two neurons.

With ``memory`` h1 also gets an associative memory, a deep belief net's top level in the rule's
form (:meth:`JoinedLabelNet.remember`): lateral synapses ``M`` between h1's units, taught on
every classify play to predict each unit's code from the others' spikes and the label, so that
h1's codes can be sampled given a label (:meth:`JoinedLabelNet.recall`) and drawn by ``V[0]``
(h1 is the layer the pixels are drawn from, at any depth).
"""
from __future__ import annotations

from functools import partial
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from astdp.nets.family import LocalNet
from astdp.nets.rule import State, held, per_step, stdp, synapses


def kept(t: Tensor, p: float) -> Tensor:
    """``t`` filled with a dropout mask: 0 with probability ``p``, else ``1 / (1 - p)``."""
    return t.bernoulli_(1 - p).div_(1 - p)


class JoinedLabelNet(LocalNet):
    """Chain ``x, h1..hL`` (``W[l]``: layer l up to l+1, ``V[l]``: l+1 down to l) and label
    units ``y`` joined to each ``h(l+1)`` by ``Wy[l]`` (up, the read-out) and ``Vy[l]`` (down,
    with the efficacy gain ``label_gain``). Biases ``b[0..L]`` for the chain, ``b[L+1]`` for the
    labels. It takes :class:`astdp.nets.visible.VisibleLabelNet`'s arguments and its own:
    ``softmax_labels`` and ``dream_noise`` (0: the labels' correction comes down ``Vy``; else
    down ``Fy[l]``, labels to ``h(l+1)``, taught by the dream with noise of that std on the hidden
    units' drives, or with ``dream_on="rates"`` on their rates),
    ``memory`` (h1's associative memory: lateral synapses ``M``, biases ``bm``),
    and the classify play's regularisers (each 0: off):
    ``dropout``: that share of hidden units, drawn afresh for each example, sits out.
    ``label_smoothing``: the label targets move that share of the way from one-hot to
    uniform, so a label unit's drive stops growing once it is sure enough.
    ``input_dropout``: that share of pixels, drawn afresh for each example, is blanked (the
    others scaled by ``1 / (1 - p)``): it learns from a damaged image.
    ``center``: each pixel reaches h1 as its rate minus its own mean rate ``c`` (the centering
    trick of Boltzmann machines), which follows the training images' mean at this rate per batch.
    Pixels are never negative, so uncentred every example moves all of a unit's bottom-up
    synapses the same way; centred, only a pixel's departure from its usual value does.
    """

    def __init__(
        self,
        hidden: Sequence[int],
        activation: str,
        init_scale: float,
        label_gain: float,
        eps: float,
        homeostasis: float,
        target_rate: float,
        image_shape: Sequence[int],
        n_labels: int,
        softmax_labels: bool = False,
        dream_noise: float = 0.0,
        dream_on: str = "drives",
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        input_dropout: float = 0.0,
        memory: bool = False,
        center: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(activation, eps, homeostasis, target_rate, image_shape, n_labels)
        self.label_gain = label_gain
        self.dropout, self.label_smoothing, self.input_dropout = dropout, label_smoothing, input_dropout
        # softmax_labels: the label units inhibit each other, so their activities share one unit
        # of rate (a softmax of their drives); otherwise each fires as a hidden unit does.
        self.label_rho = partial(torch.softmax, dim=1) if softmax_labels else self.rho
        self.pixels = slice(0, self.n_pixels)  # of layer 0 (receptive fields are W[0][pixels])
        self.sizes = sizes = [self.n_pixels, *hidden]

        init = lambda n_in, n_out: synapses(n_in, n_out, init_scale, generator)
        L = len(hidden)
        self.W = nn.ParameterList(init(sizes[l], sizes[l + 1]) for l in range(L))
        self.V = nn.ParameterList(init(sizes[l + 1], sizes[l]) for l in range(L))
        self.Wy = nn.ParameterList(init(n, n_labels) for n in hidden)
        self.Vy = nn.ParameterList(init(n_labels, n) for n in hidden)
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(n), requires_grad=False) for n in [*sizes, n_labels])
        self.dream_noise, self.dream_on = dream_noise, dream_on
        if dream_noise:  # drawn last: every other synapse starts as it does without them
            self.Fy = nn.ParameterList(init(n_labels, n) for n in hidden)
        self.memory = memory
        if memory:  # zeros, not drawn: every other synapse starts as it does without them
            self.M = nn.Parameter(torch.zeros(hidden[0], hidden[0]), requires_grad=False)
            self.bm = nn.Parameter(torch.zeros(hidden[0]), requires_grad=False)
        self.center = center
        if center:  # zeros, not drawn; until it has followed the images' mean, the pixels are as uncentred
            self.c = nn.Parameter(torch.zeros(self.n_pixels), requires_grad=False)

    @property
    def feedback(self) -> Sequence[Tensor]:
        """Per hidden layer, the synapses that carry the labels' correction down in the target phase."""
        return self.Fy if self.dream_noise else self.Vy

    # ------------------------------------------------------------------ settling
    def _drive(self, a: list[Tensor], l: int, live: set[int]) -> Tensor:
        """Drive of layer ``l`` (the chain's, or the labels' at L+1) from its neighbours in ``live``
        (the others are still silent: their share is exactly 0, so it is not computed)."""
        L = self.depth
        if l == L + 1:  # the labels: every hidden layer votes
            terms = [(k, self.Wy[k - 1], 1.0) for k in range(1, L + 1)]
        else:  # (presynaptic layer, weights, efficacy gain): from below, above, the labels
            terms = [(l - 1, self.W[l - 1], 1.0)] if l > 0 else []
            terms += [(l + 1, self.V[l], 1.0)] if l < L else []
            terms += [(L + 1, self.Vy[l - 1], self.label_gain)] if l > 0 else []
        u = self.b[l].expand(a[0].shape[0], -1)
        for k, w, gain in terms:
            if k in live:
                base = u - self.c @ w if k == 0 and self.center else u  # (a[0] - c) @ w without a (B, n_pixels) copy
                u = torch.addmm(base, a[k], w, alpha=gain)
        return u

    def pre(self, a: list[Tensor], l: int) -> Tensor:
        """Layer ``l``'s activity as its synapses upward hear it: the pixels centred (``center``)."""
        return a[0] - self.c if l == 0 and self.center else a[l]

    def settle(self, x: Tensor, y: Tensor, steps: int, clamp_labels: bool = False, inertia: float = 0.0,
               sample: bool = False, generator: torch.Generator | None = None,
               keep: list[Tensor] | None = None, noise: float = 0.0, beta: float | Sequence[float] = 1.0,
               pixel_spikes: bool = False, label_scale: Sequence[float] | None = None) -> State:
        """Settle ``steps`` sweeps with the pixels (if not ``clamp_labels``) clamped to ``x``, or
        the labels (if ``clamp_labels``) to ``y``.

        Free units start silent (0). A sweep runs from the clamped end to the free one, each
        layer taking its neighbours' latest activities: one sweep carries the data through
        every layer (classification: one bottom-up pass), and the free end's activities are
        the ones the final state produced. ``sample``: hidden units fire binary spikes with
        probability ``rho(u)``; ``noise`` adds Gaussian noise of that std to the free units'
        drives; ``inertia`` keeps that share of a unit's previous activity;
        ``keep`` (dropout, see :meth:`dropout_masks`) multiplies each hidden layer's activity;
        ``beta`` multiplies every settled drive (an inverse temperature), or each sweep's drives
        in turn when it is one value per sweep (annealing). Sampling with the labels clamped:
        ``pixel_spikes``: free pixels fire binary spikes too, in every sweep but the last (the
        next sweep reads a binary image, as a deep belief net's Gibbs chain does); ``label_scale``:
        one value per sweep that the clamped labels are multiplied by in that sweep.
        Returns drives and activities of ``x, h1..hL, y`` (index L+1 is the labels).
        """
        B, L = x.shape[0], self.depth
        pixels = x.new_zeros(B, self.n_pixels) if clamp_labels else x
        a = [pixels.clone(), *(x.new_zeros(B, n) for n in self.sizes[1:])]
        a.append(y.clone() if clamp_labels else x.new_zeros(B, self.n_labels))
        u = [torch.zeros_like(t) for t in a]
        live = {L + 1} if clamp_labels else {0}  # layers with activity: the clamped end, then each one settled
        hidden = range(1, L + 1)
        order = [*reversed(hidden), 0] if clamp_labels else [*hidden, L + 1]
        betas = per_step(beta, steps)
        for i, b in enumerate(betas):
            if label_scale is not None:
                a[L + 1] = y * label_scale[i]
            for l in order:
                u[l] = self._drive(a, l, live)
                rho = self.label_rho if l == L + 1 else self.rho
                drive = u[l] * b if b != 1.0 else u[l]
                if noise > 0:
                    new = rho(drive + noise * torch.randn(u[l].shape, generator=generator, device=u[l].device))
                else:
                    new = rho(drive)
                if (sample and 0 < l <= L) or (pixel_spikes and l == 0 and i < len(betas) - 1):
                    new = torch.bernoulli(new, generator=generator)
                if inertia > 0:
                    new = torch.lerp(new, a[l], inertia)
                if keep is not None and 0 < l <= L:
                    new = new * keep[l - 1]
                a[l] = new
                live.add(l)
        return State(u, a)

    def settle_reference(self, x: Tensor, y: Tensor, steps: int, clamp_labels: bool = False,
                         inertia: float = 0.0) -> State:
        """:meth:`settle` written plainly, for reading and for a test that holds the two equal:
        every layer takes every neighbour's term at every step (no noise, spikes or dropout).
        The fast one skips the terms of layers still silent, which are exactly 0."""
        B, L = x.shape[0], self.depth
        a = [x.new_zeros(B, self.n_pixels) if clamp_labels else x.clone(),
             *(x.new_zeros(B, n) for n in self.sizes[1:]), y.clone() if clamp_labels else x.new_zeros(B, self.n_labels)]
        u = [torch.zeros_like(t) for t in a]
        hidden = list(range(1, L + 1))
        for _ in range(steps):
            for l in ([*reversed(hidden), 0] if clamp_labels else [*hidden, L + 1]):  # clamped end to free end
                if l == L + 1:  # the labels hear every hidden layer
                    u[l] = self.b[l] + sum(a[k] @ self.Wy[k - 1] for k in hidden)
                    rho = self.label_rho
                else:  # from below, from above, and from the labels with their gain
                    u[l] = self.b[l] + (self.pre(a, l - 1) @ self.W[l - 1] if l > 0 else 0) + (a[l + 1] @ self.V[l] if l < L else 0)
                    u[l] = u[l] + (self.label_gain * a[L + 1] @ self.Vy[l - 1] if l > 0 else 0)
                    rho = self.rho
                a[l] = torch.lerp(rho(u[l]), a[l], inertia) if inertia > 0 else rho(u[l])
        return State(u, a)

    # ------------------------------------------------------------------ learning
    def targets(self, x: Tensor, y: Tensor, s: State, up: bool = True, down: bool = True,
                keep: list[Tensor] | None = None) -> list[Tensor]:
        """Target phase: clamp pixels and labels to the data; hidden targets ``a + rho'(u) du``,
        ``du`` the change of the neuron's whole drive (see the module docstring). A play whose
        end is clamped has no correction there: ``up=False`` / ``down=False`` skip a pass of zeros.
        With ``keep``, a dropped unit's rise is 0: it neither fires nor learns.
        """
        L = self.depth
        t = [x, *(a.clone() for a in s.a[1:L + 1]), y]
        slope = [None, *(self.rho_prime(s.u[l]) for l in range(1, L + 1))]
        if keep is not None:  # a kept unit's rise scales with its activity
            slope = [None, *(d * k for d, k in zip(slope[1:], keep))]
        if up:  # the pixels' correction, layer by layer upward
            rise = x - s.a[0]
            for l in range(1, L + 1):
                rise = slope[l] * (rise @ self.W[l - 1])
                t[l] += rise
        if down:  # the labels' correction reaches every layer, and each layer's rise the one below
            err, rise = (y - s.a[L + 1]) * self.label_gain, None
            for l in range(L, 0, -1):
                fb = err @ self.feedback[l - 1]
                du = fb if rise is None else torch.addmm(fb, rise, self.V[l])
                rise = slope[l] * du
                t[l] += rise
        return t

    def play(self, x: Tensor, y: Tensor, clamp_labels: bool, steps: int, scale: float,
             acc: dict[str, Tensor], groups: tuple[Tensor, Tensor] | None = None,
             keep: list[Tensor] | None = None, **settle_kw) -> State:
        """One play: free phase, target phase, STDP; the changes are added into ``acc``.

        ``groups = (y_groups, member)``: with only the labels clamped the free phase is the
        same for all examples of a class, so the G rows of ``y_groups`` settle once.
        """
        L, member = self.depth, None
        if groups is None:
            s = s_ex = self.settle(x, y, steps, clamp_labels=clamp_labels, keep=keep, **settle_kw)
        else:
            y_groups, member = groups
            s = self.settle(x.new_zeros(len(y_groups), self.n_pixels), y_groups, steps, clamp_labels=True, **settle_kw)
            s_ex = s.rows(member)
        t = self.targets(x, y, s_ex, up=clamp_labels, down=not clamp_labels, keep=keep)

        def add(name: str, pre: Tensor, post: int) -> None:
            # pre: settled rows (G of them when grouped); post activity and target per example
            acc[name] = stdp(pre, s_ex.a[post], t[post], scale, acc.get(name), member)

        # A play teaches the synapses that point towards its free end: classify (labels free) the
        # bottom-up W and Wy, generate (pixels free) the top-down V and Vy. A free end's activity
        # is the net's own echo, and the feedback paths stay out of the loop they feed (learning
        # V from the labels' correction, which travels down V, kept training at chance).
        for l in range(L):
            if clamp_labels:
                add(f"V.{l}", s.a[l + 1], l)
                add(f"Vy.{l}", s.a[L + 1] / self.label_gain, l + 1)
            else:
                add(f"W.{l}", self.pre(s.a, l), l + 1)
                add(f"Wy.{l}", s.a[l + 1], L + 1)
        self.bias_changes(t, s_ex.a, scale, acc)
        return s_ex

    def dream(self, s: State, scale: float, acc: dict[str, Tensor]) -> None:
        """Teach the feedback synapses ``Fy`` from the settled state ``s`` of a classify play.

        Each hidden unit's drive gets Gaussian noise, the labels answer the disturbed code, and
        the target phase takes the noise away again: target ``a + rho'(u) (u - u_noisy)``, the
        slope read at the undisturbed drive ``u`` (read at the noisy one it correlates with the
        noise). The rule then runs with scale ``-scale``: an ``Fy`` synapse grows when its
        label unit answered the noise its hidden unit made, as the read-out synapse of the same
        two neurons carries it, so ``Fy`` comes to mirror ``Wy``'s transpose. Each noise draw is
        dreamt twice, with opposite signs: the labels' undisturbed answer, the same in both,
        cancels from the sum, and what is left is their response to the noise.

        With ``dream_on="rates"`` the noise disturbs the rates themselves (target ``a_noisy -
        noise``): a drive's noise reaches the labels and the target through the unit's slope
        twice, so each ``Fy`` column would mirror ``Wy`` scaled by its unit's mean squared slope.
        """
        L = self.depth
        noise = [torch.randn_like(s.u[l]).mul_(self.dream_noise) for l in range(1, L + 1)]
        on_rates = self.dream_on == "rates"
        # what the target phase takes away: the noise as the undisturbed unit's rate felt it
        felt = noise if on_rates else [self.rho_prime(s.u[l + 1]) * noise[l] for l in range(L)]
        for sign in (1.0, -1.0):
            if on_rates:
                a = [s.a[l + 1] + sign * noise[l] for l in range(L)]  # [B, n_l] each
            else:
                a = [self.rho(s.u[l + 1] + sign * noise[l]) for l in range(L)]
            uy = self.b[L + 1].expand(len(a[0]), -1)
            for l in range(L):
                uy = torch.addmm(uy, a[l], self.Wy[l])
            answer = self.label_rho(uy)  # [B, n_labels]
            for l in range(L):
                target = a[l] - sign * felt[l]
                acc[f"Fy.{l}"] = stdp(answer, a[l], target, -scale, acc.get(f"Fy.{l}"))

    def remember(self, code: Tensor, y: Tensor, scale: float, acc: dict[str, Tensor]) -> None:
        """Teach h1's associative memory from a classify play's code ``code`` (B, n) of images of
        the classes ``y`` (B, n_labels, one-hot).

        Each unit's memory drive sums the other units' spikes (the code thresholded at 1/2:
        the binary states a sampling chain passes on) through ``M`` and the label through the
        synapses that carry the labels' correction to h1 (``Fy``, the read-out's mirror, with the
        dream; else ``Vy``), which this play does not change. Its rate is the post, the unit's own
        code the target: pre x (target - post), a delta rule that fits each unit given the rest
        (pseudo-likelihood). No unit learns from itself (``M``'s diagonal stays 0)."""
        spikes = (code > 0.5).to(code.dtype)                              # (B, n)
        post = self.rho(torch.addmm(self.bm + self.label_gain * (y @ self.feedback[0]), spikes, self.M))
        dm = stdp(spikes, post, code, scale, acc.get("M"))               # (n, n)
        acc["M"] = dm.fill_diagonal_(0.0)
        acc["bm"] = (code - post).mean(0).mul_(scale)

    def recall(self, y: Tensor, sweeps: int, beta: float = 1.0, noise: float = 0.0,
               generator: torch.Generator | None = None) -> Tensor:
        """h1's rates (B, n) sampled from the memory with the labels clamped to ``y`` (B, n_labels):
        every unit starts silent, then each of ``sweeps`` Gibbs sweeps lets a random half of the
        units spike given the rest, then the other half. Drives times ``beta``, plus Gaussian
        ``noise`` of that std; the rates of the last state are returned for drawing."""
        label = self.bm + self.label_gain * (y @ self.feedback[0])       # (B, n)

        def rates(a: Tensor) -> Tensor:
            u = torch.addmm(label, a, self.M) * beta
            if noise > 0:
                u = u + noise * torch.randn(u.shape, generator=generator, device=u.device)
            return self.rho(u)

        a = torch.zeros_like(label)
        for _ in range(sweeps):
            order = torch.rand(a.shape[1], generator=generator, device=a.device).argsort()  # a random permutation
            for half in order.chunk(2):
                a[:, half] = torch.bernoulli(rates(a)[:, half], generator=generator)
        return rates(a)

    def dropout_masks(self, batch: int, p: float, like: Tensor) -> list[Tensor]:
        """Per hidden layer, ``[batch, n]``: 0 for a dropped unit, ``1 / (1 - p)`` for a kept one
        (so that a test-time unit, never dropped, sends what a kept one sends on average)."""
        return [kept(like.new_empty(batch, n), p) for n in self.sizes[1:]]

    def check_plays(self, plays: Mapping[str, tuple[float, int]]) -> None:
        super().check_plays(plays)
        if plays.get("recirculate", (0, 0))[0]:
            raise ValueError("the recirculate play needs the labels in the visible layer "
                             "(model.net._target_=astdp.nets.visible.VisibleLabelNet); set model.plays.recirculate.scale=0")

    def learn(self, play: str, x: Tensor, y: Tensor, steps: int, scale: float, acc: dict[str, Tensor],
              shared: dict, **settle_kw) -> Tensor | None:
        """One play (see :meth:`LocalNet.weight_changes`); the classify play takes the network's
        regularisers (``dropout``, ``label_smoothing``, ``input_dropout``)."""
        if play == "classify":
            keep = self.dropout_masks(x.shape[0], self.dropout, x) if self.dropout else None
            smoothing, blanked = self.label_smoothing, self.input_dropout
            target = y.lerp(torch.full_like(y, 1 / self.n_labels), smoothing) if smoothing else y
            seen = x * kept(torch.empty_like(x), blanked) if blanked else x
            s = self.play(seen, target, False, steps, scale, acc, keep=keep, **settle_kw)
            if self.center:  # each pixel's offset follows its mean rate (stepped as is: see ASTDPModule.plain_rates)
                acc["c"] = (x.mean(0) - self.c).mul_(self.center)
            if self.dream_noise:
                self.dream(s, scale, acc)
            if self.memory:
                self.remember(s.a[1], y, scale, acc)
            shared["code"] = s.a[1]
            return s.a[-1]
        if play == "redraw":  # h1's code of the image as the classify play saw it (dropout and all)
            code = shared["code"] if "code" in shared else self.settle(x, y, steps).a[1]
            self.redraw(code, x, scale, acc)
            return None
        if play == "complete":  # the code of the image with a random half hidden (in-painting's, from the code)
            hidden = self.halves(x.device)[torch.randint(4, (x.shape[0],), device=x.device)]
            code = self.settle(x.masked_fill(hidden, 0.0), self._no_labels(x), steps).a[1]
            self.redraw(code, x, scale, acc)
            return None
        groups = None if settle_kw.get("sample") else (torch.eye(self.n_labels, dtype=x.dtype, device=x.device), y)
        self.play(x, y, True, steps, scale, acc, groups, **settle_kw)
        return None

    # ------------------------------------------------------------------ use
    def _no_labels(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[0], self.n_labels)

    def inpaint(self, x: Tensor, known: Tensor, steps: int, beta: float = 1.0, from_code: bool = False,
                rounds: int = 1) -> Tensor:
        """Fill in the pixels where ``known`` is False; the known ones stay clamped.

        Each of the ``steps`` rounds reads the labels from the known pixels and the current
        fill (up), then draws the picture those labels stand for (down, the labels clamped to
        that activity) into the unknown pixels: without the completion play the top-down path
        learns from label-driven codes and whole images only, so it is fed a label, not the
        bottom-up code of a half-blank image. ``from_code``: one sweep up from the known pixels
        (the others 0) to h1's code, and one draw down from it, as the completion play teaches;
        each further of ``rounds`` encodes the completed image and draws it again, as the redraw
        play teaches for whole images, and the fill is the mean of the rounds' draws.
        """
        if from_code:
            filled, draws = torch.where(known, x, 0.0), []
            for _ in range(rounds):
                code = self.settle(filled, self._no_labels(x), 1, beta=beta).a[1]
                filled = torch.where(known, x, self.draw(code, beta))
                draws.append(filled)
            return filled if rounds == 1 else torch.stack(draws).mean(0)
        filled = torch.where(known, x, 0.0)
        for _ in range(steps):
            labels = self.settle(filled, self._no_labels(x), 1, beta=beta).a[-1]
            filled = torch.where(known, x, self.settle(filled, labels, 1, clamp_labels=True, beta=beta).a[0])
        return filled

    def classify(self, x: Tensor, steps: int, known: Tensor | None = None) -> Tensor:
        """Class indices: clamp the image, read the labels. With ``known``, only those pixels
        are given: ``steps`` rounds of in-painting fill the rest first."""
        if known is not None:
            x, steps = self.inpaint(x, known, steps), 1
        return self.settle(x, self._no_labels(x), steps).a[-1].argmax(1)

    def label_activity(self, x: Tensor, steps: int) -> Tensor:
        return self.settle(x, self._no_labels(x), steps).a[-1]

    def generate(self, labels: Tensor, steps: int, noise: float = 0.0, generator: torch.Generator | None = None,
                 sample: bool = False, beta: float | Sequence[float] = 1.0, label_strength: float = 1.0,
                 pixel_spikes: bool = False, label_hold: int | None = None, from_memory: bool = False,
                 memory_beta: float = 1.0) -> Tensor:
        """Images for the given class indices: clamp the label (at ``label_strength``; after
        ``label_hold`` sweeps at 1, as in training), read the pixels. ``from_memory``: h1's code
        is sampled from the memory instead (``steps`` Gibbs sweeps at ``memory_beta``, the drive
        ``noise``), and drawn with the pixels' drives times ``beta``."""
        y = torch.nn.functional.one_hot(labels, self.n_labels).to(self.b[0].dtype)
        if from_memory:
            if not self.memory:
                raise ValueError("generate.from_memory=true needs a network with a memory (model.net.memory=true)")
            return self.draw(self.recall(y * label_strength, steps, memory_beta, noise, generator), beta)
        scale = held(label_strength, label_hold, steps)
        x0 = y.new_zeros(len(labels), self.n_pixels)
        return self.settle(x0, y * label_strength if scale is None else y, steps, clamp_labels=True, sample=sample,
                           generator=generator, noise=noise, beta=beta, pixel_spikes=pixel_spikes,
                           label_scale=scale).a[0]

    def predict_pixels(self, x: Tensor, steps: int) -> Tensor:
        """Top-down prediction of a clamped image from its settled hidden code."""
        return self.draw(self.settle(x, self._no_labels(x), steps).a[1])

    def hidden_codes(self, x: Tensor, steps: int) -> list[Tensor]:
        """Each hidden layer's activity with the image clamped, bottom first (for linear read-outs)."""
        return self.settle(x, self._no_labels(x), steps).a[1:self.depth + 1]
