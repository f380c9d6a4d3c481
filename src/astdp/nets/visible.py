"""The visible-label network of aSTDP, in plain torch: its settling, targets and plays (the
rule itself is :func:`astdp.nets.rule.stdp`).

No Lightning, Hydra, W&B or autograd here. One network does everything: the visible
layer holds the pixels *and* the label units, so classification (clamp the image, read
the labels), generation (clamp a label, read the pixels) and in-painting (clamp part of
the image) are the same settling with different units clamped.

Learning per mini-batch is up to three "plays" (image clamped, label clamped, or, without
labels, the image recirculated). Each play:
  1. free phase: settle a few steps under its clamping, keep drives ``u`` and activities ``a``;
  2. target phase: clamp the whole visible layer to the data; every hidden neuron jumps to
     ``t = a + rho'(u) * du`` where ``du`` is the change of its own input drive and
     ``rho'`` is estimated numerically by the neuron itself;
  3. STDP: every synapse changes by ``pre * (t_post - a_post)`` (see :func:`stdp`), except
     that a visible unit left free in the play (its activity an echo of h1, not data) does
     not teach its synapse onto h1.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from astdp.nets.family import LocalNet
from astdp.nets.rule import State, held, per_step, stdp, synapses


class VisibleLabelNet(LocalNet):
    """Layers ``v, h1..hL`` joined by untied bottom-up ``W`` and top-down ``V`` weights.

    Parameters never require grad: they change only through :meth:`weight_changes`.
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
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(activation, eps, homeostasis, target_rate, image_shape, n_labels)
        n_pixels = self.n_pixels
        # The visible layer: the pixels, then the label units.
        self.pixels, self.labels = slice(0, n_pixels), slice(n_pixels, n_pixels + n_labels)
        sizes = [n_pixels + n_labels, *hidden]
        self.sizes = sizes

        init = lambda n_in, n_out: synapses(n_in, n_out, init_scale, generator)
        # W[l] carries layer l up to l+1, V[l] carries layer l+1 down to l, b[l] is layer l's bias.
        self.W = nn.ParameterList(init(sizes[l], sizes[l + 1]) for l in range(len(hidden)))
        self.V = nn.ParameterList(init(sizes[l + 1], sizes[l]) for l in range(len(hidden)))
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(n), requires_grad=False) for n in sizes)
        # Label units reach h1 with a gain so that a few of them are not drowned by hundreds of pixels.
        gain = torch.ones(sizes[0])
        gain[n_pixels:] = label_gain
        self.register_buffer("gain", gain)

    # ------------------------------------------------------------------ settling
    @staticmethod
    def _clamped(free: slice) -> slice:
        """The visible units a play clamps: the other end from ``free``."""
        return slice(free.stop, None) if free.start == 0 else slice(0, free.start)

    def _clamped_drive(self, v: Tensor, free: slice, data_drive: Tensor | None) -> Tensor:
        """h1's drive from the clamped visible units (plus bias), from the fewer rows of ``W[0]``:
        the clamped ones directly, or the data drive minus the free units' share."""
        rest = self._clamped(free)
        n_free = free.stop - free.start
        if data_drive is not None and n_free < self.sizes[0] - n_free:
            return data_drive - (v[:, free] * self.gain[free]) @ self.W[0][free]
        return torch.addmm(self.b[1], v[:, rest] * self.gain[rest], self.W[0][rest])

    def data_drive(self, v: Tensor) -> Tensor:
        """h1's bottom-up drive with the whole visible layer at ``v`` (the target phase's)."""
        return torch.addmm(self.b[1], v * self.gain, self.W[0])

    def _down(self, a: list[Tensor], free: slice | Tensor) -> Tensor:
        """Top-down drive into the free visible units (all visible units for a mask)."""
        if isinstance(free, slice):
            return torch.addmm(self.b[0][free], a[1], self.V[0][:, free])
        return torch.addmm(self.b[0], a[1], self.V[0])

    def settle(
        self,
        v: Tensor,
        free: slice | Tensor,
        steps: int,
        noise: float = 0.0,
        inertia: float = 0.0,
        generator: torch.Generator | None = None,
        warm: bool = False,
        sample: bool = False,
        data_drive: Tensor | None = None,
        beta: float | Sequence[float] = 1.0,
        code_only: bool = False,
        pixel_spikes: bool = False,
        clamp_scale: Sequence[float] | None = None,
    ) -> State:
        """Settle with the visible units outside ``free`` clamped to ``v``.

        ``free`` is a slice of visible units (fast path: only those are computed) or a
        boolean mask shaped like ``v``. Free visible units start at 0 (at ``v`` if
        ``warm``, as in recirculation: data up, reconstruction down); hidden layers start
        from one bottom-up pass. Each step updates the visible layer from h1, then every
        hidden layer from its neighbours, in that order. ``noise`` adds Gaussian noise to
        the free units' drives; ``sample`` makes hidden units fire binary spikes with
        probability ``rho(u)`` (stochastic sampling: varied shapes, while visible units stay
        rates, so images are not speckled); ``inertia`` keeps that share of each unit's previous
        activity at every step (MSTDP's momentum of settling; not the optimizer's); ``beta``
        multiplies every settled drive (an inverse temperature: above 1 sharper, below 1 softer), or
        each step's drives in turn when it is one value per step (annealing; the last visible update
        takes the last).
        ``data_drive`` (see :meth:`data_drive`), when the caller has it, saves a product.
        ``code_only``: the caller reads only the hidden layers; the closing visible update, which
        changes none of them, is skipped (the visible layer is then one step behind).
        Sampling (``free`` a slice): ``pixel_spikes``: the free visible units fire binary spikes
        in every update but the closing one (the hidden layers read a binary image, as in a deep
        belief net's Gibbs chain); ``clamp_scale``: one value per step that the clamped units'
        drive onto h1 is multiplied by in that step.
        """
        if isinstance(free, slice):
            # The clamped units' share of h1's drive is fixed while settling: compute it once.
            fixed = self._clamped_drive(v, free, data_drive)
            share = None if clamp_scale is None else fixed - self.b[1]  # the clamped units' own
            rescaled = lambda k: torch.add(self.b[1], share, alpha=clamp_scale[k])
            fixed = fixed if share is None else rescaled(0)
            drive_h1 = lambda vis: torch.addmm(fixed, vis[:, free] * self.gain[free], self.W[0][free])
            vis = v.clone()
            if not warm:
                vis[:, free] = 0.0
        else:
            if clamp_scale is not None:
                raise ValueError("clamp_scale needs the free visible units as a slice")
            share = None
            drive_h1 = lambda vis: torch.addmm(self.b[1], vis * self.gain, self.W[0])
            vis = v.clone() if warm else torch.where(free, torch.zeros_like(v), v)

        def bottom_up(a: list[Tensor], l: int) -> Tensor:
            return drive_h1(a[0]) if l == 1 else torch.addmm(self.b[l], a[l - 1], self.W[l - 1])

        spikes = lambda rate: torch.bernoulli(rate, generator=generator)
        a: list[Tensor] = [vis]
        u: list[Tensor] = [torch.zeros_like(vis)]
        for l in range(1, self.depth + 1):  # bottom-up initial guess, no top-down yet
            u.append(fixed if (l == 1 and not warm and isinstance(free, slice)) else bottom_up(a, l))
            a.append(spikes(self.rho(u[l])) if sample else self.rho(u[l]))
        up1 = u[1]
        betas = per_step(beta, steps)

        def update(old: Tensor, drive: Tensor, spiking: bool, beta: float) -> Tensor:
            if noise > 0:
                drive = drive + noise * torch.randn(drive.shape, generator=generator, device=drive.device)
            if beta != 1.0:
                drive = drive * beta
            new = spikes(self.rho(drive)) if spiking else self.rho(drive)
            return torch.lerp(new, old, inertia) if inertia > 0 else new

        def visible_update(beta: float, closing: bool = False) -> None:
            drive = self._down(a, free)
            spiking = pixel_spikes and not closing
            if isinstance(free, slice):  # in place: a[0] and u[0] are this call's own tensors
                u[0][:, free] = drive
                a[0][:, free] = update(a[0][:, free], drive, spiking, beta)
            else:
                u[0] = drive
                a[0] = torch.where(free, update(a[0], drive, spiking, beta), v)

        for k, b in enumerate(betas):
            if k and share is not None:
                fixed = rescaled(k)
            visible_update(b)
            for l in range(1, self.depth + 1):
                u[l] = bottom_up(a, l)
                if l == 1:
                    up1 = u[1]
                if l < self.depth:
                    u[l] = torch.addmm(u[l], a[l + 1], self.V[l])
                a[l] = update(a[l], u[l], sample, b)
        # End on the visible layer: each free visible activity is then the one that h1's final
        # state produced, so top-down synapses learn from matching (pre, post) pairs (without
        # it generation stays poor at a low generate-play weight: docs/findings.md). A warm
        # start (recirculation) keeps the visible layer one step behind, as in recirculation
        # proper, whose read-out code measured better so.
        if not warm and not code_only:
            visible_update(betas[-1] if betas else beta, closing=True)
        return State(u, a, up1)

    def settle_reference(self, v: Tensor, free: Tensor, steps: int, inertia: float = 0.0, warm: bool = False) -> State:
        """:meth:`settle` written plainly, for reading and for a test that holds the two equal:
        every unit of every layer, every product, at every step; ``free`` a boolean mask like
        ``v`` (no noise, no spikes). The fast one computes only the free visible units and
        reuses the clamped units' share of h1's drive."""
        L, W = self.depth, [self.W[0] * self.gain[:, None], *self.W[1:]]  # the label gain is part of the synapse
        keep = lambda new, old: torch.lerp(new, old, inertia) if inertia > 0 else new
        a = [v.clone() if warm else torch.where(free, 0.0, v)]
        u = [torch.zeros_like(v)]
        for l in range(1, L + 1):  # a first bottom-up guess
            u.append(self.b[l] + a[l - 1] @ W[l - 1])
            a.append(self.rho(u[l]))
        up1 = u[1]

        def visible() -> None:
            u[0] = self.b[0] + a[1] @ self.V[0]
            a[0] = torch.where(free, keep(self.rho(u[0]), a[0]), v)

        for _ in range(steps):
            visible()  # then each hidden layer from its neighbours' latest activities
            for l in range(1, L + 1):
                up = self.b[l] + a[l - 1] @ W[l - 1]
                up1 = up if l == 1 else up1
                u[l] = up + a[l + 1] @ self.V[l] if l < L else up
                a[l] = keep(self.rho(u[l]), a[l])
        if not warm:
            visible()
        return State(u, a, up1)

    # ------------------------------------------------------------------ learning
    def targets(self, v: Tensor, state: State, data_drive: Tensor | None = None) -> list[Tensor]:
        """Target phase: clamp all visible units to ``v``; hidden targets ``a + rho'(u) du``."""
        t = [v]
        for l in range(1, self.depth + 1):
            if l == 1:  # h1's drive goes from the one it last settled on to the data's
                du = (self.data_drive(v) if data_drive is None else data_drive) - state.up1
            else:
                du = (t[l - 1] - state.a[l - 1]) @ self.W[l - 1]
            t.append(state.a[l] + self.rho_prime(state.u[l]) * du)
        return t

    def play(self, v: Tensor, free: slice | Tensor, steps: int, scale: float = 1.0,
             acc: dict[str, Tensor] | None = None, data_drive: Tensor | None = None,
             groups: tuple[Tensor, Tensor] | None = None, **settle_kw) -> tuple[dict[str, Tensor], State]:
        """One play: free phase, target phase, STDP on every synapse.

        Returns the weight changes (times ``scale``) keyed by parameter name (``W.0``, ``V.0``,
        ``b.0``, ... as in :meth:`named_parameters`), added into ``acc`` if given, and the free
        state. ``data_drive`` (h1's drive with ``v`` clamped, :meth:`data_drive`) saves products
        when the caller already has it. ``groups = (v_groups, member)``: the free phase depends
        only on which of G groups an example is in (the generate play: its label), so it
        settles the G rows of ``v_groups`` once; ``member`` (B, G) is one-hot. The changes are
        the same.
        """
        if groups is None:
            s = s_ex = self.settle(v, free, steps, data_drive=data_drive, **settle_kw)
            member = None
        else:
            v_groups, member = groups
            s = self.settle(v_groups, free, steps, **settle_kw)
            s_ex = s.rows(member)
        t = self.targets(v, s_ex, data_drive)
        acc = {} if acc is None else acc

        def add(name: str, pre: Tensor, post: Tensor, target: Tensor) -> None:
            acc[name] = stdp(pre, post, target, scale, acc.get(name), member)

        # The label gain is part of the synapse (efficacy gain * W), and the rule changes
        # the efficacy by pre * rise, so W changes by that over the gain.
        pre0 = s.a[0] / self.gain
        if isinstance(free, slice) and not settle_kw.get("warm"):
            # A free visible unit's activity is the net's own echo of h1, not data; learning
            # from it rewards h1 for its own guess (a positive loop: W[0]'s label rows grew
            # without bound and training diverged at larger eta). So only the units that a play
            # clamps teach their bottom-up synapses; each of them learns in one play.
            rows = self._clamped(free)
            dw = self.change(acc, "W.0")
            stdp(pre0[:, rows], s_ex.a[1], t[1], scale, dw[rows], member)
        else:
            add("W.0", pre0, s_ex.a[1], t[1])
        for l in range(1, self.depth):  # bottom-up W[l]: layer l -> l+1
            add(f"W.{l}", s.a[l], s_ex.a[l + 1], t[l + 1])
        for l in range(self.depth):  # top-down V[l]: layer l+1 -> l
            if l == 0 and isinstance(free, slice):  # clamped visible units have no error
                dv = self.change(acc, "V.0")
                stdp(s.a[1], s_ex.a[0][:, free], t[0][:, free], scale, dv[:, free], member)
            else:
                add(f"V.{l}", s.a[l + 1], s_ex.a[l], t[l])
        self.bias_changes(t, s_ex.a, scale, acc)
        return acc, s_ex

    def learn(self, play: str, x: Tensor, y: Tensor, steps: int, scale: float, acc: dict[str, Tensor],
              shared: dict, **settle_kw) -> Tensor | None:
        """One play (see :meth:`LocalNet.weight_changes`): ``classify`` frees the label units,
        ``generate`` the pixels, ``recirculate`` settles the pixels from the image with no label,
        ``redraw`` teaches h1 -> pixels from the classify play's code (:meth:`LocalNet.redraw`),
        ``complete`` the same from the code of the image with a random half hidden (in-painting's).
        The plays that clamp the whole visible layer share h1's drive from it (``shared``)."""
        if play == "recirculate":
            self.play(torch.cat([x, torch.zeros_like(y)], 1), self.pixels, steps, scale, acc, warm=True, **settle_kw)
            return None
        if "v" not in shared:
            shared["v"] = v = torch.cat([x, y], dim=1)
            shared["data_drive"] = self.data_drive(v)
        v, drive = shared["v"], shared["data_drive"]
        if play == "classify":
            _, s = self.play(v, self.labels, steps, scale, acc, drive, **settle_kw)
            shared["code"] = s.a[1]
            return s.a[0][:, self.labels]
        if play == "redraw":
            code = shared["code"] if "code" in shared else self.settle(v, self.labels, steps, data_drive=drive, code_only=True).a[1]
            self.redraw(code, x, scale, acc)
            return None
        if play == "complete":  # in-painting's settling: a random half of each image hidden, the labels free
            hidden = self.halves(x.device)[torch.randint(4, (x.shape[0],), device=x.device)]
            free = torch.cat([hidden, hidden.new_ones(x.shape[0], self.n_labels)], 1)
            self.redraw(self.settle(v, free, steps, code_only=True).a[1], x, scale, acc)
            return None
        groups = None
        if not settle_kw.get("noise") and not settle_kw.get("sample"):
            # With only the label clamped, the free phase is the same for every example of a
            # class: settle the classes once (exact; ``y`` must be one-hot): G rows instead of B.
            classes = torch.eye(self.n_labels, dtype=x.dtype, device=x.device)
            groups = (torch.cat([x.new_zeros(self.n_labels, self.n_pixels), classes], 1), y)
        self.play(v, self.pixels, steps, scale, acc, drive, groups=groups, **settle_kw)
        return None

    # ------------------------------------------------------------------ use
    def _visible(self, x: Tensor | None, y: Tensor | None, batch: int) -> Tensor:
        ref = self.b[0]
        x = x if x is not None else ref.new_zeros(batch, self.n_pixels)
        y = y if y is not None else ref.new_zeros(batch, self.n_labels)
        return torch.cat([x, y], dim=1)

    def _partial(self, x: Tensor, known: Tensor | None, steps: int, beta: float = 1.0) -> State:
        """Settle with the known pixels clamped (all of them if ``known`` is None), labels free."""
        v = self._visible(x, None, x.shape[0])
        if known is None:
            return self.settle(v, self.labels, steps)
        labels_free = known.new_ones(known.shape[0], self.n_labels)
        return self.settle(v, torch.cat([~known, labels_free], 1), steps, beta=beta)

    def classify(self, x: Tensor, steps: int, known: Tensor | None = None) -> Tensor:
        """Class indices: clamp the image (only its ``known`` pixels if given), read the labels."""
        return self._partial(x, known, steps).a[0][:, self.labels].argmax(1)

    def label_activity(self, x: Tensor, steps: int) -> Tensor:
        return self._partial(x, None, steps).a[0][:, self.labels]

    def inpaint(self, x: Tensor, known: Tensor, steps: int, beta: float = 1.0, from_code: bool = False,
                rounds: int = 1) -> Tensor:
        """Fill in the pixels where ``known`` is False; the known ones stay clamped. The settling
        draws them from h1's code at every one of its ``steps``, so ``from_code`` and ``rounds``
        change nothing here."""
        return self._partial(x, known, steps, beta).a[0][:, self.pixels]

    def generate(
        self, labels: Tensor, steps: int, noise: float = 0.0, generator: torch.Generator | None = None,
        sample: bool = False, beta: float | Sequence[float] = 1.0, label_strength: float = 1.0,
        pixel_spikes: bool = False, label_hold: int | None = None,
    ) -> Tensor:
        """Images for the given class indices: clamp the label, read the pixels.

        Deterministic by default (one image per class); ``sample`` (spiking hidden units)
        or ``noise`` make every call draw different digits. ``beta``, ``pixel_spikes``: see
        :meth:`settle`; ``label_strength``: the value the label unit is clamped at (1: as in
        training), for the first ``label_hold`` steps only if given (then 1).
        """
        y = torch.nn.functional.one_hot(labels, self.n_labels).to(self.b[0].dtype)
        scale = held(label_strength, label_hold, steps)
        strong = label_strength != 1.0 and scale is None
        v = self._visible(None, y * label_strength if strong else y, labels.shape[0])
        s = self.settle(v, self.pixels, steps, noise=noise, generator=generator, sample=sample, beta=beta,
                        pixel_spikes=pixel_spikes, clamp_scale=scale)
        return s.a[0][:, self.pixels]

    def predict_pixels(self, x: Tensor, steps: int) -> Tensor:
        """Top-down prediction of a clamped image from its settled hidden code."""
        return self.draw(self.settle(self._visible(x, None, x.shape[0]), self.labels, steps, code_only=True).a[1])

    def hidden_codes(self, x: Tensor, steps: int) -> list[Tensor]:
        """Each hidden layer's activity with the image clamped, bottom first (for linear read-outs)."""
        return self.settle(self._visible(x, None, x.shape[0]), self.labels, steps, code_only=True).a[1:]
