"""The aSTDP core: no autograd, local rule, it learns, operations work, seeded runs repeat."""
import pytest
import torch
from hydra.errors import InstantiationException
import torch.nn.functional as F

from astdp.nets.rule import learning_step, stdp
from tests.conftest import data, linear_accuracy, make_digits, make_net, plays, train


def test_rule_is_local():
    """Every synapse's change is pre * (target - post) of its own two neurons, in each play."""
    torch.manual_seed(0)
    net = make_net([24, 16, 8])
    x, y = data(32)
    v = torch.cat([x, F.one_hot(y, 10).float()], 1)
    for free in (net.labels, net.pixels):  # classify, generate
        changes, state = net.play(v, free, 2)
        targets = net.targets(v, state)
        for l in (1, 2):  # between hidden layers: bottom-up h(l) -> h(l+1), top-down h(l+1) -> h(l)
            torch.testing.assert_close(changes[f"W.{l}"], stdp(state.a[l], state.a[l + 1], targets[l + 1]))
            torch.testing.assert_close(changes[f"V.{l}"], stdp(state.a[l + 1], state.a[l], targets[l]))
        rows = net._clamped(free)  # into h1: only the units the play clamps teach their synapses
        torch.testing.assert_close(changes["W.0"][rows], stdp(state.a[0][:, rows] / net.gain[rows], state.a[1],
                                                               targets[1]))
        torch.testing.assert_close(changes["V.0"][:, free], stdp(state.a[1], state.a[0][:, free], targets[0][:, free]))
    state = net.settle(v, net.labels, steps=2)
    # h1's target uses only h1's own incoming synapses: changing the weights above h1 leaves it alone.
    t1 = net.targets(v, state)[1]
    with torch.no_grad():
        net.W[2].mul_(3.0)
    assert torch.equal(net.targets(v, state)[1], t1)
    with torch.no_grad():
        net.W[0].mul_(3.0)
    assert not torch.equal(net.targets(v, state)[1], t1)


def test_stdp_sign_follows_timing():
    pre = torch.tensor([[1.0, 0.0]])
    post, target = torch.tensor([[0.2]]), torch.tensor([[0.7]])
    dw = stdp(pre, post, target)
    assert dw[0, 0] > 0 and dw[1, 0] == 0  # active pre, rising post: potentiation; silent pre: none
    assert stdp(pre, target, post)[0, 0] < 0  # falling post: depression


def test_only_clamped_visible_units_teach_their_bottom_up_synapses():
    torch.manual_seed(0)
    net = make_net([32], label_gain=3.0)
    x, y = data(64)
    v = torch.cat([x, F.one_hot(y, 10).float()], 1)
    classify, _ = net.play(v, net.labels, 2)
    generate, _ = net.play(v, net.pixels, 2)
    assert torch.count_nonzero(classify["W.0"][net.labels]) == 0 and torch.count_nonzero(classify["W.0"][net.pixels]) > 0
    assert torch.count_nonzero(generate["W.0"][net.pixels]) == 0 and torch.count_nonzero(generate["W.0"][net.labels]) > 0
    # The label rows change by the rule on the efficacy gain * W, divided by the gain.
    state = net.settle(v, net.pixels, 2)
    expected = stdp(v[:, net.labels], state.a[1], net.targets(v, state)[1]) / 3.0
    torch.testing.assert_close(generate["W.0"][net.labels], expected)
    # Reconstruction starts the pixels at the image: they carry data and do teach.
    recon, _ = net.play(torch.cat([x, torch.zeros(64, 10)], 1), net.pixels, 1, warm=True)
    assert torch.count_nonzero(recon["W.0"][net.pixels]) > 0


def test_learns_classification_and_generation():
    torch.manual_seed(0)
    x, y = data(600, 1)
    xt, yt = data(200, 2)
    # 57 batches in all: generation needs a faster rate than MNIST's default thousands.
    net = train(make_net([64]), x, y, eta=0.2, plays={"classify": (1.0, 2), "generate": (0.1, 2)})
    assert (net.classify(xt, 3) == yt).float().mean() >= linear_accuracy(600) - 0.05
    # Generated class templates are closer to their own class mean than to any other.
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    gen = net.generate(torch.arange(10), steps=5)
    assert (torch.cdist(gen, means).argmin(1) == torch.arange(10)).float().mean() >= 0.8
    # Stochastic sampling: repeated draws differ, yet stay with their class.
    labels = torch.arange(10).repeat_interleave(5)
    draws = net.generate(labels, steps=1, sample=True, generator=torch.Generator().manual_seed(0))
    assert torch.cdist(draws[:5], draws[:5]).max() > 0.5
    assert (torch.cdist(draws, means).argmin(1) == labels).float().mean() >= 0.8
    again = net.generate(labels, steps=1, sample=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)  # seeded
    known = torch.ones_like(xt, dtype=torch.bool)
    known[:, 392:] = False
    filled = net.inpaint(xt, known, 5)
    assert torch.equal(filled[known], xt[known])  # known pixels stay clamped
    err = (filled - xt)[~known].square().mean()
    mean_fill = (x.mean(0) - xt)[~known].square().mean()  # the mean training image: knows nothing of xt
    assert err < 0.8 * mean_fill, (err, mean_fill)
    soft = net.inpaint(xt, known, 5, beta=0.5)  # evaluate.inpaint_beta: a softer settle
    assert torch.equal(soft[known], xt[known])
    assert (soft[~known] - 0.5).abs().mean() < (filled[~known] - 0.5).abs().mean()


def test_unsupervised_play_learns_a_useful_code():
    torch.manual_seed(0)
    x, y = data(600, 1)
    net = make_net([64])
    label_weights = net.V[0][:, net.labels].clone()
    train(net, x, y, plays={"recirculate": (1.0, 1)})
    assert torch.equal(net.V[0][:, net.labels], label_weights)  # labels never clamped: nothing learned there
    recon = net.predict_pixels(x[:100], 3)
    assert (recon - x[:100]).square().mean() < x[:100].var()


@pytest.mark.parametrize("hidden", [[32], [32, 16]])
def test_generate_play_settled_once_per_class_gives_the_same_changes(hidden):
    torch.manual_seed(0)
    net = make_net(hidden)
    x, y = data(64)
    onehot = F.one_hot(y, 10).float()
    v = torch.cat([x, onehot], 1)
    classes = torch.cat([torch.zeros(10, 784), torch.eye(10)], 1)
    for drive in (None, net.data_drive(v)):
        per_example, _ = net.play(v, net.pixels, 2, 0.3, data_drive=drive)
        per_class, _ = net.play(v, net.pixels, 2, 0.3, data_drive=drive, groups=(classes, onehot))
        assert per_example.keys() == per_class.keys()
        for k in per_example:
            torch.testing.assert_close(per_example[k], per_class[k], rtol=1e-5, atol=1e-6)
    for free in (net.labels, net.pixels):  # the shared data drive only saves products
        direct, _ = net.play(v, free, 2)
        shared, _ = net.play(v, free, 2, data_drive=net.data_drive(v))
        for k in direct:
            torch.testing.assert_close(direct[k], shared[k], rtol=1e-5, atol=1e-6)


def test_homeostasis_pulls_hidden_activity_to_its_target():
    x, y = data(600, 1)
    rates = {}
    for strength in (0.0, 0.5):
        torch.manual_seed(0)
        net = train(make_net([64], homeostasis=strength, target_rate=0.05), x, y, plays={"recirculate": (1.0, 1)})
        rates[strength] = net.hidden_codes(x, 1)[-1].mean().item()
    assert abs(rates[0.5] - 0.05) < 0.5 * abs(rates[0.0] - 0.05), rates


def test_seeded_training_is_bit_identical():
    x, y = data(200)
    nets = []
    for _ in range(2):
        torch.manual_seed(7)
        nets.append(train(make_net([32]), x, y, epochs=1, noise=0.3, generator=torch.Generator().manual_seed(3)))
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)


def test_unknown_activation_and_play_are_rejected():
    with pytest.raises(InstantiationException, match="activation"):
        make_net([8], activation="relu6")
    net = make_net([8])
    x, y = data(4)
    with pytest.raises(ValueError, match="play"):
        net.weight_changes(x, F.one_hot(y, 10).float(), {"dream": (1.0, 1)})


@pytest.mark.parametrize("hidden", [[16], [16, 8], [16, 8, 4]])
def test_changes_are_keyed_by_parameter_name(hidden):
    """Every parameter gets the change computed for it, by name: registration order cannot misalign them."""
    torch.manual_seed(0)
    net = make_net(hidden)
    x, y = data(32)
    changes, _ = net.weight_changes(x, F.one_hot(y, 10).float(), plays())
    params = dict(net.named_parameters())
    assert changes.keys() == params.keys()
    assert all(changes[k].shape == params[k].shape for k in params)
    # The top-down change of the visible layer is V.0's: an (h1 x visible) matrix.
    assert changes["V.0"].shape == (hidden[0], 794) and changes["W.0"].shape == (794, hidden[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    net = make_net([32]).cuda()
    x, y = data(64)
    changes, _ = net.weight_changes(x.cuda(), F.one_hot(y, 10).float().cuda(), plays())
    assert all(c.is_cuda for c in changes.values())


@pytest.mark.slow  # torch.compile takes a minute on a CPU; synthetic data, no MNIST needed
def test_compiled_step_matches_eager():
    torch.manual_seed(0)
    net = make_net([64])
    x, y = data(64)
    onehot = F.one_hot(y, 10).float()
    eager, _ = net.weight_changes(x, onehot, plays())
    compiled, _ = torch.compile(net.weight_changes, dynamic=False)(x, onehot, plays())
    assert eager.keys() == compiled.keys()
    for k in eager:
        torch.testing.assert_close(eager[k], compiled[k], rtol=1e-4, atol=1e-6)
