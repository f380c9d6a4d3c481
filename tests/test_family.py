"""The family of local networks: one interface, one learning step, and each network's fast
settling equal to its plainly written reference."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from astdp.config import LOCAL_NETS
from astdp.nets.family import LocalNet
from astdp.nets.rule import annealed, learning_step, stdp
from tests.conftest import compose_config, make_digits, make_net

INTERFACE = ("learn", "settle", "settle_reference", "classify", "label_activity", "generate", "inpaint", "predict_pixels", "hidden_codes")


def data(n=48, seed=3):
    imgs, labels = make_digits(n, seed)
    return torch.from_numpy(imgs.reshape(n, -1)).float() / 255, F.one_hot(torch.from_numpy(labels).long(), 10).float()


@pytest.mark.parametrize("target", LOCAL_NETS)
def test_every_network_the_config_admits_is_of_the_family_and_implements_its_interface(target):
    cls = get_class(target)
    assert issubclass(cls, LocalNet)
    missing = [m for m in INTERFACE if getattr(cls, m) is getattr(LocalNet, m, None)]
    assert not missing, f"{target} does not implement {missing}"


def trained(net, steps=3, optimizer=lambda params: torch.optim.SGD(params, lr=0.5)):
    """A network a few steps into learning: its weights are no longer the symmetric start."""
    x, y = data()
    opt = optimizer(net.parameters())
    for _ in range(steps):
        changes, _ = net.weight_changes(x, y, {"classify": (1.0, 2), "generate": (0.1, 2)})
        learning_step(opt, net.named_parameters(), changes)
    return net


@pytest.mark.parametrize("inertia", [0.0, 0.3])
def test_the_visible_label_networks_fast_settling_is_its_reference(inertia):
    torch.manual_seed(0)
    net = trained(make_net([24, 16, 8]))
    x, y = data(16, seed=5)
    v = torch.cat([x, y], 1)
    mask = lambda free: torch.zeros_like(v, dtype=torch.bool).index_fill_(1, torch.arange(v.shape[1])[free], True)
    half = torch.zeros_like(x, dtype=torch.bool)
    half[:, x.shape[1] // 2:] = True  # in-painting: the bottom half and the labels free
    cases = [(net.labels, mask(net.labels), False), (net.pixels, mask(net.pixels), False),
             (net.pixels, mask(net.pixels), True), (torch.cat([half, torch.ones_like(y, dtype=torch.bool)], 1), None, False)]
    for free, free_mask, warm in cases:
        fast = net.settle(v, free, 3, inertia=inertia, warm=warm)
        ref = net.settle_reference(v, free if free_mask is None else free_mask, 3, inertia=inertia, warm=warm)
        for f, r in zip(fast.a + fast.u[1:] + [fast.up1], ref.a + ref.u[1:] + [ref.up1]):
            torch.testing.assert_close(f, r, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("softmax_labels", [False, True])
def test_the_joined_label_networks_fast_settling_is_its_reference(softmax_labels):
    torch.manual_seed(0)
    net = trained(make_net([24, 16], _target_=LOCAL_NETS[1], label_gain=1.0, softmax_labels=softmax_labels))
    x, y = data(16, seed=5)
    for clamp_labels in (False, True):
        for steps, inertia in ((1, 0.0), (3, 0.3)):
            fast = net.settle(x, y, steps, clamp_labels=clamp_labels, inertia=inertia)
            ref = net.settle_reference(x, y, steps, clamp_labels=clamp_labels, inertia=inertia)
            for f, r in zip(fast.a + fast.u, ref.a + ref.u):
                torch.testing.assert_close(f, r, rtol=1e-5, atol=1e-6)


def test_a_learning_step_adds_the_rules_change_through_the_optimizer():
    torch.manual_seed(0)
    net = make_net([8])
    before = {n: p.clone() for n, p in net.named_parameters()}
    changes, _ = net.weight_changes(*data(), {"classify": (1.0, 2)})
    expected = {n: before[n] + 0.5 * c for n, c in changes.items()}
    learning_step(torch.optim.SGD(net.parameters(), lr=0.5), net.named_parameters(), changes)
    for n, p in net.named_parameters():
        torch.testing.assert_close(p, expected[n], rtol=0, atol=1e-7)
    assert any(not torch.equal(p, before[n]) for n, p in net.named_parameters())


@pytest.mark.parametrize("target", LOCAL_NETS)
def test_classify_reads_the_label_activity(target):
    """What the demo shows (the label units' activities) is what classification reads."""
    net = trained(make_net([24, 16], _target_=target, **({"label_gain": 1.0} if target != LOCAL_NETS[0] else {})))
    x, _ = data(64)
    activity = net.label_activity(x, 2)
    assert activity.shape == (64, 10) and torch.equal(activity.argmax(1), net.classify(x, 2))


@pytest.mark.parametrize("target", LOCAL_NETS)
def test_the_redraw_play_is_local_and_teaches_only_the_synapses_into_the_pixels(target):
    """Its changes are stdp(h1's code from the classify play, the pixels' top-down drawing, the
    image) on V.0's pixel columns and the pixels' biases; nothing else moves, so a network
    trained with it classifies as one trained without it would, batch for batch, until the
    generate play (whose free phase draws pixels) feels the difference."""
    torch.manual_seed(0)
    extra = {"_target_": target} | ({"label_gain": 1.0} if target == LOCAL_NETS[1] else {})
    net = trained(make_net([24, 16], **extra))
    x, y = data(32)
    alone, _ = net.weight_changes(x, y, {"classify": (1.0, 2)})
    both, labels = net.weight_changes(x, y, {"classify": (1.0, 2), "redraw": (0.5, 1)})
    code = net.settle(x, y, 2).a[1] if target == LOCAL_NETS[1] else net._partial(x, None, 2).a[1]
    assert_only_the_drawing_learned(net, alone, both, code, x, 0.5)


def assert_only_the_drawing_learned(net, alone: dict, both: dict, code, x, scale: float) -> None:
    """``both`` is ``alone`` plus the rule's change of V.0's pixel columns and the pixels' biases
    for drawing ``x`` from ``code``; every other parameter (a visible net's label columns too) is the same."""
    pixels = slice(0, net.n_pixels)
    drawn = net.rho(net.b[0][pixels] + code @ net.V[0][:, pixels])
    torch.testing.assert_close(both["V.0"][:, pixels] - alone["V.0"][:, pixels], stdp(code, drawn, x, scale))
    torch.testing.assert_close(both["b.0"][pixels] - alone["b.0"][pixels], scale * (x - drawn).mean(0))
    for name in alone:
        if name not in ("V.0", "b.0"):
            assert torch.equal(both[name], alone[name]), name
    assert torch.equal(both["V.0"][:, net.n_pixels:], alone["V.0"][:, net.n_pixels:])


@pytest.mark.parametrize("target", LOCAL_NETS)
def test_the_completion_play_teaches_the_pixels_to_be_drawn_from_half_an_images_code(target):
    """The completion play settles each image with a random half hidden (the visible-label
    network settles that half and the labels, as its in-painting does; the joined-label network
    takes one bottom-up sweep from the half image), then teaches only V.0's pixel columns and the
    pixels' biases to draw the whole image from that code: the rule's form, and nothing
    classification reads changes."""
    joined = target == LOCAL_NETS[1]
    net = trained(make_net([24, 16], _target_=target, **({"label_gain": 1.0} if joined else {})))
    x, y = data(32)
    alone, _ = net.weight_changes(x, y, {"classify": (1.0, 2)})
    torch.manual_seed(5)
    both, _ = net.weight_changes(x, y, {"classify": (1.0, 2), "complete": (0.5, 2)})
    torch.manual_seed(5)  # the same halves
    hidden = net.halves(x.device)[torch.randint(4, (len(x),))]
    assert hidden.sum(1).eq(net.n_pixels // 2).all()
    if joined:
        code = net.settle(x.masked_fill(hidden, 0.0), net._no_labels(x), 2).a[1]
    else:
        free = torch.cat([hidden, torch.ones(len(x), net.n_labels, dtype=torch.bool)], 1)
        code = net.settle(torch.cat([x, y], 1), free, 2).a[1]
    assert_only_the_drawing_learned(net, alone, both, code, x, 0.5)


def test_the_joined_network_in_paints_from_the_code_of_the_known_half_then_of_its_completion():
    """evaluate.inpaint_from=code: one sweep up from the known pixels (the rest 0) to h1, one draw
    down, the known pixels kept (then, with more rounds, from the code of the completed image);
    the default path reads the labels and draws what they stand for.
    The visible-label network draws from its settled code either way."""
    net = trained(make_net([24, 16], _target_=LOCAL_NETS[1], label_gain=1.0))
    x, _ = data(16)
    known = torch.zeros_like(x, dtype=torch.bool)
    known[:, : net.n_pixels // 2] = True
    code = net.settle(torch.where(known, x, 0.0), net._no_labels(x), 1, beta=0.8).a[1]
    filled = net.inpaint(x, known, 3, beta=0.8, from_code=True)
    torch.testing.assert_close(filled, torch.where(known, x, net.rho((net.b[0] + code @ net.V[0]) * 0.8)))
    assert not torch.equal(filled, net.inpaint(x, known, 3, beta=0.8))
    # more rounds: each encodes the completed image and draws it again; the fill is the draws' mean
    again = net.settle(filled, net._no_labels(x), 1, beta=0.8).a[1]
    second = torch.where(known, x, net.rho((net.b[0] + again @ net.V[0]) * 0.8))
    torch.testing.assert_close(net.inpaint(x, known, 3, beta=0.8, from_code=True, rounds=2), (filled + second) / 2)
    assert torch.equal(net.inpaint(x, known, 3, beta=0.8, from_code=True, rounds=1), filled)
    visible = trained(make_net([24, 16]))
    assert torch.equal(visible.inpaint(x, known, 3, 0.8, from_code=True), visible.inpaint(x, known, 3, 0.8))


@pytest.mark.parametrize("target", LOCAL_NETS)
def test_an_annealed_sampler_is_one_inverse_temperature_per_step(target):
    """One beta per settling step: the same value at every step draws what the scalar draws,
    bit for bit; a schedule that starts low draws other samples; a schedule of the wrong
    length is refused."""
    net = trained(make_net([24, 16], _target_=target, **({"label_gain": 1.0} if target != LOCAL_NETS[0] else {})))
    labels = torch.arange(10).repeat(3)

    def draw(beta, steps=4):
        return net.generate(labels, steps, generator=torch.Generator().manual_seed(1), sample=True, beta=beta)

    assert torch.equal(draw(2.0), draw([2.0] * 4))
    assert torch.equal(draw(2.0), draw(annealed(2.0, 2.0, 4)))
    assert not torch.equal(draw(2.0), draw(annealed(0.5, 2.0, 4)))
    with pytest.raises(ValueError, match="3 inverse temperatures for 4 settling steps"):
        draw([1.0, 1.5, 2.0])


def test_annealing_rises_evenly_to_the_sampler_beta():
    assert annealed(1.0, 2.2, 1) == [2.2]
    assert annealed(0.5, 2.0, 4) == pytest.approx([0.5, 1.0, 1.5, 2.0])


@pytest.mark.parametrize("target", LOCAL_NETS)
def test_a_gibbs_sampler_spikes_its_pixels_between_steps_and_can_hold_the_label_first(target):
    """``pixel_spikes``: the pixels fire binary spikes in every update but the last, so the chain
    draws otherwise, shows rates at its end, and a seed still fixes every draw.
    ``label_hold``: the label at its strength for that many steps, then at 1; a hold as long as
    the chain is the plain clamp, one of 1 at strength 1 is no clamp change at all."""
    net = trained(make_net([24, 16], _target_=target, **({"label_gain": 1.0} if target != LOCAL_NETS[0] else {})))
    labels = torch.arange(10).repeat(3)

    def draw(steps=4, **kw):
        return net.generate(labels, steps, noise=0.3, generator=torch.Generator().manual_seed(1), sample=True, **kw)

    spiking = draw(pixel_spikes=True)
    assert torch.equal(spiking, draw(pixel_spikes=True)) and not torch.equal(spiking, draw())
    assert ((spiking > 0) & (spiking < 1)).any()  # the last step shows rates, not spikes
    torch.testing.assert_close(draw(label_strength=2.5, label_hold=4), draw(label_strength=2.5))
    torch.testing.assert_close(draw(label_hold=1), draw())
    held_first = draw(label_strength=2.5, label_hold=2)
    assert not torch.allclose(held_first, draw(label_strength=2.5)) and not torch.allclose(held_first, draw())


@pytest.mark.parametrize("preset", sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "optim").glob("*.yaml")))
def test_each_optimizer_presets_speed_options_leave_the_bits_of_training_unchanged(preset):
    """conf/optim/ asks for torch's fused or batched updates only where they round as its plain loop does.
    One thread: the fused kernels round a tensor's tail differently there (with two, this net's small
    tensors hid it)."""
    optim = OmegaConf.to_container(compose_config([f"optim={preset}", "optim.lr=0.05"]).optim)
    plain = {k: v for k, v in optim.items() if k not in ("fused", "foreach")}
    nets, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for conf in (optim, plain):
            torch.manual_seed(0)
            nets.append(trained(make_net([24, 16]), steps=4, optimizer=instantiate(conf)))
    finally:
        torch.set_num_threads(threads)
    for (n, p), q in zip(nets[0].named_parameters(), nets[1].parameters()):
        assert torch.equal(p, q), n
