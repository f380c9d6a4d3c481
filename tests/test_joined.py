"""astdp.nets.joined.JoinedLabelNet: labels joined to every hidden layer. Local, no autograd, it learns."""
import pytest
import torch
import torch.nn.functional as F

from astdp.config import LOCAL_NETS
from astdp.nets.rule import learning_step, stdp
from tests.conftest import ROOT, compose_config, data, linear_accuracy, make_net, plays, train

JOINED = "astdp.nets.joined.JoinedLabelNet"


def joined(hidden, **kw):
    return make_net(hidden, _target_=JOINED, **kw)


# the keys of model.net that the paper's own neurons have (the rest are switches beyond it)
PAPER_NET_KEYS = {"_target_", "hidden", "activation", "init_scale", "eps", "target_rate", "image_shape", "n_labels"}
# every switch of the joined network at once (item 4 of #36: no option brings autograd in)
EVERY_OPTION = {"dream_noise": 1.0, "dream_on": "rates", "memory": True, "center": 0.1, "input_dropout": 0.2,
                "dropout": 0.2, "label_smoothing": 0.1, "softmax_labels": True, "label_gain": 2.0, "homeostasis": 0.1}


@pytest.mark.parametrize("target, options", [(LOCAL_NETS[0], {}), (JOINED, {}), (JOINED, {"dream_noise": 1.0}),
                                             (JOINED, EVERY_OPTION)])
def test_no_architecture_uses_autograd(target, options, monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("autograd backward was called")

    monkeypatch.setattr(torch.autograd, "backward", forbidden)
    monkeypatch.setattr(torch.Tensor, "backward", forbidden)
    torch.manual_seed(0)
    net = make_net([32, 16, 8], _target_=target, **options)
    assert not any(p.requires_grad for p in net.parameters())
    x, y = data(64)
    changes, labels = net.weight_changes(x, F.one_hot(y, 10).float(), plays(recirculate=(0.0, 1)))
    assert changes.keys() == dict(net.named_parameters()).keys()
    assert all(c.grad_fn is None and not c.requires_grad for c in changes.values()) and labels.grad_fn is None


def test_every_architecture_has_a_locality_test():
    """Every network the config can build under the aSTDP module (a model option of conf/, or
    any target the schema admits) is one that a locality test below or in test_core covers."""
    from tests.test_core import test_rule_is_local

    covered = {"astdp.nets.visible.VisibleLabelNet": test_rule_is_local, JOINED: test_joined_rule_is_local}
    options = [compose_config([f"model={p.stem}"]).model for p in sorted((ROOT / "conf" / "model").glob("*.yaml"))]
    in_conf = {m.net._target_ for m in options if m._target_ == "astdp.training.modules.ASTDPModule"}
    assert in_conf and in_conf | set(LOCAL_NETS) <= covered.keys(), (in_conf | set(LOCAL_NETS)) - covered.keys()


@pytest.mark.parametrize("softmax_labels, dream_noise", [(False, 0.0), (True, 0.0), (False, 1.0)])
def test_joined_rule_is_local(softmax_labels, dream_noise):
    """Each synapse changes by pre * (target - post) of its own two neurons, and a hidden
    neuron's target depends only on its own incoming synapses and its neighbours' rises
    (with the dream, the labels' correction comes in through ``Fy``, not ``Vy``)."""
    torch.manual_seed(0)
    net = joined([24, 16, 12], softmax_labels=softmax_labels, dream_noise=dream_noise)
    x, y = data(32)
    y = F.one_hot(y, 10).float()
    for clamp_labels in (False, True):
        acc = {}
        s = net.play(x, y, clamp_labels, 2, 1.0, acc)
        t = net.targets(x, y, s)
        if clamp_labels:  # generate: the top-down synapses, each from its own pre and post
            torch.testing.assert_close(acc["V.1"], stdp(s.a[2], s.a[1], t[1]))
            torch.testing.assert_close(acc["Vy.2"], stdp(s.a[-1] / net.label_gain, s.a[3], t[3]))
            assert not acc.get("W.1", torch.zeros(1)).any()
        else:  # classify: the bottom-up synapses and the read-outs
            torch.testing.assert_close(acc["W.1"], stdp(s.a[1], s.a[2], t[2]))
            torch.testing.assert_close(acc["Wy.0"], stdp(s.a[1], s.a[-1], t[-1]))
            assert not acc.get("V.1", torch.zeros(1)).any()

    # h2's target, with the state fixed, moves with its own incoming synapses only. The state is
    # off the data at both ends (labels free, pixels halved) so that both passes carry a change.
    s = net.settle(x, y, 2)
    s.a[0] = 0.5 * x
    t2 = net.targets(x, y, s)[2]
    outgoing = {"W.2", "Wy.1", "V.0"}  # h2 -> h3, h2 -> labels, h1 -> pixels: not into h2
    incoming = {"W.1", "V.2", "Vy.1"}  # h1 -> h2, h3 -> h2, labels -> h2
    if dream_noise:  # the labels' correction arrives through Fy; Vy serves generation only
        incoming, outgoing = incoming - {"Vy.1"} | {"Fy.1"}, outgoing | {"Vy.1", "Fy.0"}
    params = dict(net.named_parameters())
    for name in outgoing | incoming:
        saved = params[name].clone()
        with torch.no_grad():
            params[name].mul_(2.0)
        moved = not torch.equal(net.targets(x, y, s)[2], t2)
        with torch.no_grad():
            params[name].copy_(saved)
        assert moved == (name in incoming), name


def test_softmax_label_units_share_one_unit_of_rate_and_learn_by_the_same_rule():
    """model.net.softmax_labels: the label activities are a softmax of their drives; every
    change is still pre * (target - post), and the generate play (labels clamped) is untouched."""
    torch.manual_seed(0)
    net, plain = joined([24, 16], softmax_labels=True), joined([24, 16])
    plain.load_state_dict(net.state_dict())
    x, y = data(32)
    y = F.one_hot(y, 10).float()
    s = net.settle(x, torch.zeros_like(y), 1)
    torch.testing.assert_close(s.a[-1], torch.softmax(s.u[-1], 1))
    torch.testing.assert_close(s.u[-1], plain.settle(x, torch.zeros_like(y), 1).u[-1])  # the same drives
    changes, labels = net.weight_changes(x, y, {"classify": (1.0, 1)})
    torch.testing.assert_close(labels, s.a[-1])
    t = net.targets(x, y, s, up=False)
    torch.testing.assert_close(changes["Wy.1"], stdp(s.a[2], s.a[-1], y))
    torch.testing.assert_close(changes["W.0"], stdp(x, s.a[1], t[1]))
    assert not torch.allclose(changes["Wy.1"], plain.weight_changes(x, y, {"classify": (1.0, 1)})[0]["Wy.1"])
    gen = {"generate": (1.0, 1)}
    for name, change in net.weight_changes(x, y, gen)[0].items():
        torch.testing.assert_close(change, plain.weight_changes(x, y, gen)[0][name])


def test_the_dream_teaches_only_the_feedback_synapses_by_the_rule_with_a_negative_scale():
    """model.net.dream_noise: after the classify play, each noise draw is dreamt with both signs;
    the feedback synapses Fy change by -(pre * (target - post)) of their own two neurons (a label
    unit's answer to the disturbed code; the hidden unit's disturbed activity and its target, the
    noise taken away through its own slope at the undisturbed drive). The plays are the rule's,
    with the labels' correction coming down Fy instead of Vy."""
    torch.manual_seed(0)
    net, plain = joined([24, 16], dream_noise=0.5), joined([24, 16])
    plain.load_state_dict(net.state_dict(), strict=False)
    x, y = data(32)
    y = F.one_hot(y, 10).float()
    classify, generate = {"classify": (1.0, 1)}, {"generate": (0.01, 1)}
    torch.manual_seed(1)
    changes, labels = net.weight_changes(x, y, classify)
    with torch.no_grad():  # the same feedback: the classify play's changes are the same
        for vy, fy in zip(plain.Vy, net.Fy):
            vy.copy_(fy)
    without, _ = plain.weight_changes(x, y, classify)
    assert changes.keys() == without.keys() | {"Fy.0", "Fy.1"}
    for name, change in without.items():
        torch.testing.assert_close(changes[name], change)
    plain.load_state_dict(net.state_dict(), strict=False)
    dreamless, _ = plain.weight_changes(x, y, generate)  # the generate play does not dream
    for name, change in net.weight_changes(x, y, generate)[0].items():
        torch.testing.assert_close(change, dreamless.get(name, torch.zeros_like(change)))

    s = net.settle(x, torch.zeros_like(y), 1)
    torch.manual_seed(1)
    noise = [0.5 * torch.randn_like(s.u[l]) for l in (1, 2)]
    expected = [0, 0]
    for sign in (1, -1):
        a = [torch.sigmoid(s.u[l + 1] + sign * noise[l]) for l in range(2)]
        answer = torch.sigmoid(net.b[3] + a[0] @ net.Wy[0] + a[1] @ net.Wy[1])
        for l in range(2):
            target = a[l] - net.rho_prime(s.u[l + 1]) * sign * noise[l]
            expected[l] = expected[l] - stdp(answer, a[l], target)
    for l in range(2):
        torch.testing.assert_close(changes[f"Fy.{l}"], expected[l])


def test_the_dream_turns_the_feedback_synapses_towards_the_readout_transpose():
    """Dreams alone (plain steps along the rule's changes, every other synapse fixed) bring each
    layer's Fy from random (cosine near 0) to pointing as its read-out's transpose does."""
    torch.manual_seed(0)
    net = joined([64, 32], dream_noise=1.0)
    x, y = data(256)
    with torch.no_grad():
        for wy in net.Wy:
            wy.mul_(5)  # a read-out strong enough that the labels answer the noise clearly
    cosine = lambda: [F.cosine_similarity(f.flatten(), w.T.flatten(), 0).item() for f, w in zip(net.Fy, net.Wy)]
    assert all(abs(c) < 0.3 for c in cosine())
    s = net.settle(x, torch.zeros(len(x), 10), 1)
    for _ in range(300):
        acc = {}
        net.dream(s, 1.0, acc)
        with torch.no_grad():
            for l, f in enumerate(net.Fy):
                f.add_(acc[f"Fy.{l}"], alpha=2.0)
    assert all(c > 0.8 for c in cosine()), cosine()


def test_the_rates_dream_disturbs_the_rates_and_takes_the_noise_away():
    """model.net.dream_on=rates: the noise is added to the hidden units' rates, the labels answer
    the disturbed code, and each hidden unit's target is its undisturbed rate."""
    torch.manual_seed(0)
    net = joined([24, 16], dream_noise=0.2, dream_on="rates")
    x, y = data(32)
    s = net.settle(x, torch.zeros(len(x), 10), 1)
    torch.manual_seed(1)
    acc = {}
    net.dream(s, 1.0, acc)
    torch.manual_seed(1)
    noise = [0.2 * torch.randn_like(s.u[l]) for l in (1, 2)]
    expected = [0, 0]
    for sign in (1, -1):
        a = [s.a[l + 1] + sign * noise[l] for l in range(2)]
        answer = torch.sigmoid(net.b[3] + a[0] @ net.Wy[0] + a[1] @ net.Wy[1])
        for l in range(2):
            expected[l] = expected[l] - stdp(answer, a[l], s.a[l + 1])
    for l in range(2):
        torch.testing.assert_close(acc[f"Fy.{l}"], expected[l])


def test_the_rates_dream_mirrors_the_readout_closer_than_the_drives_dream():
    """With the noise on the drives, a unit's slope weights its column of Fy's mean change twice;
    on the rates it does not, so the same dreams (plain steps, every other synapse fixed) point
    Fy closer to the read-out's transpose."""
    x, y = data(256)
    cosines = {}
    for on, noise in (("drives", 1.0), ("rates", 0.25)):
        torch.manual_seed(0)
        net = joined([64], dream_noise=noise, dream_on=on)
        with torch.no_grad():
            net.Wy[0].mul_(5)  # a read-out strong enough that the labels answer the noise clearly
            net.W[0].mul_(3)  # drives spread over the sigmoid: the units' slopes differ
            net.Fy[0].zero_()
        s = net.settle(x, torch.zeros(len(x), 10), 1)
        for _ in range(300):
            acc = {}
            net.dream(s, 1.0, acc)
            net.Fy[0].data.add_(acc["Fy.0"])
        cosines[on] = F.cosine_similarity(net.Fy[0].flatten(), net.Wy[0].T.flatten(), 0).item()
    assert cosines["rates"] > max(0.9, cosines["drives"] + 0.015), cosines  # seeded: the same margin every run


def test_feedback_lr_steps_the_feedback_synapses_by_plain_sgd_outside_the_optimizer():
    """model.feedback_lr: in the Lightning module's step, Fy moves by exactly feedback_lr times the
    rule's change (under the schedule), is none of the optimizer's, and every other synapse takes
    the optimizer's step."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate
    from torch.utils.data import DataLoader, TensorDataset

    cfg = compose_config(["model=joined_dream", "optim=adam", "lr_schedule=constant", "model.net.hidden=[16]",
                          "model.feedback_lr=3"])
    torch.manual_seed(0)
    module = instantiate(cfg.model, optim=cfg.optim, lr_schedule=cfg.lr_schedule, _recursive_=False)
    before = {n: p.clone() for n, p in module.net.named_parameters()}
    seen = []

    def recording(*args, **kw):
        changes, labels = module.net.weight_changes(*args, **kw)
        seen.append(changes["Fy.0"].clone())
        return changes, labels

    module._weight_changes = recording
    x, y = data(32)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0, accelerator="cpu")
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=32))
    torch.testing.assert_close(module.net.Fy[0] - before["Fy.0"], 3 * seen[0])
    optimized = [p for group in trainer.optimizers[0].param_groups for p in group["params"]]
    assert all(p is not module.net.Fy[0] for p in optimized) and len(optimized) == len(before) - 1
    assert all(not torch.equal(p, before[n]) for n, p in module.net.named_parameters())


def test_dropped_unit_neither_fires_nor_learns():
    """Dropout (model.net.dropout, classify play only): a dropped hidden unit is silent and none of
    its synapses change; every change is still pre * (target - post) of its own two neurons."""
    torch.manual_seed(0)
    net = joined([24, 16])
    x, y = data(32)
    y = F.one_hot(y, 10).float()
    keep = net.dropout_masks(32, 0.5, x)
    acc = {}
    s = net.play(x, y, False, 1, 1.0, acc, keep=keep)
    t = net.targets(x, y, s, up=False, keep=keep)
    dropped = [k == 0 for k in keep]
    assert all(d.any() and not d.all() for d in dropped)
    assert not s.a[1][dropped[0]].any() and not (t[1] - s.a[1])[dropped[0]].any()
    torch.testing.assert_close(acc["W.1"], stdp(s.a[1], s.a[2], t[2]))
    torch.testing.assert_close(acc["Wy.0"], stdp(s.a[1], s.a[-1], t[-1]))
    # h1's unit 0 out for every example: its incoming and outgoing synapses do not move
    keep[0][:, 0] = 0
    acc = {}
    net.play(x, y, False, 1, 1.0, acc, keep=keep)
    assert not acc["W.0"][:, 0].any() and not acc["W.1"][0].any() and not acc["Wy.0"][0].any()
    assert acc["W.0"][:, 1:].any()


def test_label_smoothing_softens_only_the_classify_play_label_targets():
    """model.net.label_smoothing: the label units' targets in the classify play move towards uniform;
    each change is still pre * (target - post), and the generate play is untouched."""
    torch.manual_seed(0)
    net = joined([24, 16])
    x, y = data(32)
    y = F.one_hot(y, 10).float()
    plays = {"classify": (1.0, 1), "generate": (0.01, 1)}
    plain, _ = net.weight_changes(x, y, plays)
    net.label_smoothing = 0.1
    smooth, labels = net.weight_changes(x, y, plays)
    soft = y * 0.9 + 0.01
    s = net.settle(x, torch.zeros_like(y), 1)
    torch.testing.assert_close(labels, s.a[-1])
    torch.testing.assert_close(smooth["Wy.1"], stdp(s.a[2], s.a[-1], soft))
    for name in plain:
        assert torch.equal(smooth[name], plain[name]) == name.startswith(("V", "b.0")), name


def test_centred_pixels_reach_h1_less_their_mean_and_each_synapse_hears_its_own_pixel_so():
    """model.net.center: a pixel's bottom-up synapses hear its rate less its own offset ``c``,
    in settling and in the rule (pre = x - c, still pre * (target - post)); ``c`` follows the
    images' mean at that rate per batch and steps outside the optimizer; 0 keeps the net as it was."""
    torch.manual_seed(0)
    net, plain = joined([24, 16], center=0.5), joined([24, 16])
    assert set(dict(net.named_parameters())) - set(dict(plain.named_parameters())) == {"c"}
    x, y = data(64)
    y = F.one_hot(y, 10).float()
    with torch.no_grad():
        net.c.copy_(x.mean(0) + 0.1)
        plain.load_state_dict({k: v for k, v in net.state_dict().items() if k != "c"})
        plain.b[1].sub_(net.c @ net.W[0])  # the offset as a bias: the same drives
    torch.testing.assert_close(net.settle(x, y, 2).u[1], plain.settle(x, y, 2).u[1])
    torch.testing.assert_close(net.settle_reference(x, y, 2).u[1], net.settle(x, y, 2).u[1])
    changes, _ = net.weight_changes(x, y, {"classify": (1.0, 1)})
    s = net.settle(x, torch.zeros_like(y), 1)
    t = net.targets(x, y, s, up=False)
    torch.testing.assert_close(changes["W.0"], stdp(x - net.c, s.a[1], t[1]))
    torch.testing.assert_close(changes["c"], 0.5 * (x.mean(0) - net.c))
    assert all(c.grad_fn is None for c in changes.values())
    # Stepped as handed (rate 1: the change holds its own), c settles on the images' mean.
    opt = torch.optim.SGD([p for n, p in net.named_parameters() if n != "c"], lr=0.0)
    for _ in range(20):
        learning_step(opt, net.named_parameters(), net.weight_changes(x, y, {"classify": (1.0, 1)})[0], {"c": 1.0})
    torch.testing.assert_close(net.c, x.mean(0), atol=1e-5, rtol=0)


def test_input_dropout_is_the_classify_play_on_a_damaged_image():
    """model.net.input_dropout: the classify play sees the image with pixels blanked (the rest scaled
    up); its changes are those of the same play on that image, and the generate play's are untouched."""
    net = joined([24, 16])
    x, y = data(32)
    y = F.one_hot(y, 10).float()
    torch.manual_seed(1)
    seen = x * torch.empty_like(x).bernoulli_(0.5).div_(0.5)
    on_seen, _ = net.weight_changes(seen, y, {"classify": (1.0, 1)})
    plain, _ = net.weight_changes(x, y, {"classify": (1.0, 1)})
    gen = {"generate": (0.01, 1)}
    generated, _ = net.weight_changes(x, y, gen)
    net.input_dropout = 0.5
    torch.manual_seed(1)
    dropped, _ = net.weight_changes(x, y, {"classify": (1.0, 1)})
    for name in plain:
        assert torch.equal(dropped[name], on_seen[name]), name
    assert not torch.equal(dropped["W.0"], plain["W.0"])
    torch.testing.assert_close(net.weight_changes(x, y, gen)[0], generated)


def test_the_twins_input_dropout_damages_only_its_training_images():
    """model.net.input_dropout on the backprop twin: its loss is that of the image with pixels
    blanked (as model=joined's classify play sees it); its predictions see the whole image."""
    from types import SimpleNamespace

    from hydra.utils import instantiate

    cfg = compose_config(["experiment=invariant_baseline", "model.net.hidden=[16]", "model.net.input_dropout=0.5"])
    twin = instantiate(cfg.model, optim=cfg.optim, lr_schedule=cfg.lr_schedule, _recursive_=False)
    twin.log = lambda *a, **k: None  # no trainer attached: its logging is not what is tested
    twin._logs_now = lambda steps_done: False
    twin.lr_schedulers = lambda: SimpleNamespace(get_last_lr=lambda: [cfg.optim.lr])
    x, y = data(32)
    torch.manual_seed(1)
    loss = twin.train().training_step((x, y), 0)
    torch.manual_seed(1)
    seen = x * torch.empty_like(x).bernoulli_(0.5).div_(0.5)
    twin.eval()  # the whole image from here on
    torch.testing.assert_close(loss, F.cross_entropy(twin.mlp(seen), y))
    assert not torch.allclose(loss, F.cross_entropy(twin.mlp(x), y))
    assert torch.equal(twin.predict_labels(x), twin.mlp(x).argmax(1))


@pytest.mark.parametrize("every_layer_votes", [False, True])
def test_the_twins_centred_pixels_follow_the_training_images_mean_and_enter_less_it(every_layer_votes):
    """model.net.center on the backprop twin: each training batch moves the pixels' running mean
    ``c`` towards its own by that rate; evaluation leaves it; the first layer sees ``x - c``."""
    from astdp.nets.mlp import mlp

    torch.manual_seed(0)
    net, plain = mlp([16], [28, 28], 10, every_layer_votes, center=0.25), mlp([16], [28, 28], 10, every_layer_votes)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k != "c"})
    x, _ = data(32)
    net.train()(x)
    torch.testing.assert_close(net.c, 0.25 * x.mean(0))
    net.eval()(x)
    torch.testing.assert_close(net.c, 0.25 * x.mean(0))
    torch.testing.assert_close(net(x), plain.eval()(x - net.c))
    # With input dropout, a blanked pixel is silent and the offset is taken off it too, as
    # model=joined's synapses hear x * mask / (1 - p) - c.
    net.input_dropout = plain.input_dropout = 0.5
    torch.manual_seed(3)
    ours = net.train()(x)
    torch.manual_seed(3)
    seen = F.dropout(x, 0.5, True)
    torch.testing.assert_close(ours, plain.eval()(seen - net.c))


@pytest.mark.parametrize("hidden", [[16], [16, 8]])
def test_the_twins_dropout_drops_hidden_units_and_their_votes_in_training_only(hidden):
    """model.net.dropout on the backprop twin: in training each hidden unit is dropped (its activity
    and so its vote are 0, the kept ones scaled by 1 / (1 - p)), as model=joined's classify play
    drops it; in evaluation it is the same network without dropout."""
    from hydra.utils import instantiate

    cfg = compose_config(["experiment=invariant_baseline", f"model.net.hidden=[{','.join(map(str, hidden))}]",
                          "model.net.dropout=0.5", "model.net.input_dropout=0"])  # hidden units only
    twin = instantiate(cfg.model, optim=cfg.optim, lr_schedule=cfg.lr_schedule, _recursive_=False)
    plain = instantiate(cfg.model, optim=cfg.optim, lr_schedule=cfg.lr_schedule, _recursive_=False,
                        net={**cfg.model.net, "dropout": 0.0})
    for p, q in zip(plain.parameters(), twin.parameters(), strict=True):  # dropout adds no parameter
        p.data.copy_(q)
    linears = [m for m in twin.mlp.layers if isinstance(m, torch.nn.Linear)]
    x, _ = data(32)
    torch.manual_seed(2)
    logits = twin.mlp.train()(x)
    torch.manual_seed(2)
    h, expected = x, 0
    for linear, vote in zip(linears, twin.mlp.votes):
        h = torch.sigmoid(linear(h)) * torch.empty(len(x), linear.out_features).bernoulli_(0.5).div_(0.5)
        expected = expected + vote(h)
    torch.testing.assert_close(logits, expected)
    assert not torch.allclose(logits, plain.mlp(x))
    torch.testing.assert_close(twin.mlp.eval()(x), plain.mlp.eval()(x))


@pytest.mark.parametrize("override, ok", [
    ("model=joined model.net.softmax_labels=true", True), ("+model.net.softmax_labels=true", False),
    ("experiment=invariant_baseline model.net.dropout=0.3", True), ("model=backprop_mlp model.net.dropout=1", False),
    ("experiment=invariant_baseline model.net.input_dropout=0.2", True),
    ("model=backprop_mlp model.net.input_dropout=1", False),
    ("model=joined model.net.dropout=0.2", True), ("model=joined model.net.dropout=1", False),
    ("model=joined model.net.label_smoothing=0.1", True), ("model=joined model.net.label_smoothing=1", False),
    ("model=joined model.net.input_dropout=0.2", True), ("model=joined model.net.input_dropout=1", False),
    ("model=joined model.hidden_lr_scale=0.2", True), ("model.hidden_lr_scale=0", False),
    ("model=joined model.net.dream_noise=1", True), ("model=joined model.net.dream_noise=-1", False),
    ("+model.net.dream_noise=1", False), ("model=joined_dream model.net.dream_on=rates", True),
    ("model=joined_dream model.feedback_lr=10", True), ("model=joined_dream model.feedback_lr=0", False),
    ("model=joined model.feedback_lr=10", False), ("+model.feedback_lr=10", False)])
def test_dropout_smoothing_and_input_dropout_config(override, ok):
    """Only a network that uses a regulariser has its key; each is a share in [0, 1)."""
    from astdp.config import validate
    from astdp.errors import ConfigError

    cfg = compose_config(override.split())
    if ok:
        validate(cfg)
    else:
        with pytest.raises(ConfigError, match=override.split()[-1].split("=")[0].lstrip("+")):
            validate(cfg)


@pytest.mark.parametrize("model", ["astdp", "joined"])
def test_hidden_lr_scale_slows_only_the_synapses_between_hidden_layers(model):
    """model.hidden_lr_scale: W.l and V.l with l >= 1 (hidden to hidden, both ways) take Adam
    steps of optim.lr times the scale; every other synapse and bias the same steps as without."""
    from hydra.utils import instantiate

    steps = {}
    for scale in (1.0, 0.25):
        cfg = compose_config([f"model={model}", "optim=adam", "model.net.hidden=[16,8,4]",
                              f"model.hidden_lr_scale={scale}"])
        torch.manual_seed(0)
        module = instantiate(cfg.model, optim=cfg.optim, lr_schedule=cfg.lr_schedule, _recursive_=False)
        params = dict(module.net.named_parameters())
        before = {n: p.clone() for n, p in params.items()}
        optimizer = instantiate(cfg.optim)(module.param_groups())
        x, y = data(32)
        changes, _ = module.net.weight_changes(x, F.one_hot(y, 10).float(), module.plays)
        learning_step(optimizer, params.items(), changes)
        steps[scale] = {n: p - before[n] for n, p in params.items()}
    between = {"W.1", "W.2", "V.1", "V.2"}  # hidden to hidden of x - h1 - h2 - h3, both ways
    for name, step in steps[0.25].items():
        torch.testing.assert_close(step, steps[1.0][name] * (0.25 if name in between else 1.0))
    assert all(steps[1.0][n].abs().sum() > 0 for n in between)


def test_generation_noise_varies_the_digits():
    """generate.noise: Gaussian noise on the free units' drives, drawn from the given generator."""
    torch.manual_seed(0)
    net, labels = joined([16, 8]), torch.arange(10)
    assert torch.equal(net.generate(labels, 1), net.generate(labels, 1))
    draw = lambda g: net.generate(labels, 1, noise=1.0, generator=g)
    g = torch.Generator().manual_seed(0)
    first, second = draw(g), draw(g)
    assert not torch.equal(first, second)
    assert torch.equal(first, draw(torch.Generator().manual_seed(0)))


def test_labels_correction_reaches_every_hidden_layer():
    torch.manual_seed(0)
    net = joined([24, 16, 12])
    x, y = data(32)
    s = net.settle(x, torch.zeros(32, 10), 1)
    t = net.targets(x, F.one_hot(y, 10).float(), s, up=False)
    assert all((t[l] - s.a[l]).abs().sum() > 0 for l in (1, 2, 3))
    # With the labels in the visible layer only h1 is told directly (the layers above follow h1).


def test_joined_learns_classification_and_generation():
    torch.manual_seed(0)
    x, y = data(600, 1)
    xt, yt = data(200, 2)
    net = train(joined([64, 64], label_gain=1.0), x, y, eta=0.2,
                plays={"classify": (1.0, 1), "generate": (0.1, 1)})
    assert (net.classify(xt, 1) == yt).float().mean() >= linear_accuracy(600) - 0.05
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    labels = torch.arange(10).repeat_interleave(5)
    draws = net.generate(labels, steps=1, sample=True, generator=torch.Generator().manual_seed(0))
    assert (torch.cdist(draws, means).argmin(1) == labels).float().mean() >= 0.8
    assert torch.cdist(draws[:5], draws[:5]).max() > 0.1  # sampled: draws differ
    known = torch.ones_like(xt, dtype=torch.bool)
    known[:, 392:] = False
    filled = net.inpaint(xt, known, 2)
    assert torch.equal(filled[known], xt[known])
    err, mean_fill = ((fill - xt)[~known].square().mean() for fill in (filled, x.mean(0)))
    assert err < 0.9 * mean_fill, (err, mean_fill)  # it fills in the digit it reads, not an average one


def test_joined_inpainting_fills_with_the_picture_of_the_labels_it_reads():
    """A round reads the labels bottom-up from the known pixels, then draws those labels'
    top-down picture into the unknown ones (the path the generate play taught); with more
    rounds the labels are read again from the filled image."""
    torch.manual_seed(0)
    net = joined([32, 16])
    x, _ = data(64)
    known = torch.ones_like(x, dtype=torch.bool)
    known[:, 392:] = False
    labels = net.settle(torch.where(known, x, 0.0), net._no_labels(x), 1).a[-1]
    picture = net.settle(x, labels, 1, clamp_labels=True).a[0]
    filled = net.inpaint(x, known, 1)
    assert torch.equal(filled[known], x[known])
    torch.testing.assert_close(filled[~known], picture[~known])
    again = net.settle(filled, net._no_labels(x), 1).a[-1]
    assert torch.equal(net.classify(x, 1, known), again.argmax(1))
    soft = net.settle(torch.where(known, x, 0.0), net._no_labels(x), 1, beta=0.5).a[-1]  # evaluate.inpaint_beta
    picture = net.settle(x, soft, 1, clamp_labels=True, beta=0.5).a[0]
    torch.testing.assert_close(net.inpaint(x, known, 1, beta=0.5)[~known], picture[~known])

def test_joined_generate_play_settled_once_per_class_gives_the_same_changes():
    torch.manual_seed(0)
    net = joined([32, 16])
    x, y = data(64)
    onehot = F.one_hot(y, 10).float()
    per_example, per_class = {}, {}
    net.play(x, onehot, True, 2, 0.3, per_example)
    net.play(x, onehot, True, 2, 0.3, per_class, groups=(torch.eye(10), onehot))
    assert per_example.keys() == per_class.keys()
    for k in per_example:
        torch.testing.assert_close(per_example[k], per_class[k], rtol=1e-5, atol=1e-6)


def test_joined_seeded_training_is_bit_identical():
    x, y = data(200)
    nets = []
    for _ in range(2):
        torch.manual_seed(7)
        nets.append(train(joined([32, 16]), x, y, epochs=1, sample=True, generator=torch.Generator().manual_seed(3)))
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b)


def test_recirculate_with_joined_labels_is_a_config_error():
    from astdp.config import validate
    from astdp.errors import ConfigError

    cfg = compose_config(["experiment=invariant", "model.plays.recirculate.scale=1.0"])
    with pytest.raises(ConfigError, match="model.plays.recirculate.scale"):
        validate(cfg)
    with pytest.raises(ValueError, match="recirculate"):
        joined([8]).weight_changes(*data(4)[:1], torch.eye(10)[:4], {"recirculate": (1.0, 1)})


def test_joined_preset_runs_every_stage(tiny_mnist, tmp_path, monkeypatch):
    """experiment=invariant through train, evaluate and generate, and its checkpoint loads as JoinedLabelNet."""
    from astdp.training.checkpoints import load_model
    from tests.conftest import run_pipeline

    monkeypatch.chdir(tmp_path)
    cfg = compose_config([
        "experiment=invariant", f"data.root={tiny_mnist}", "data.verify=false", "data.val_size=100",
        "model.net.hidden=[64,32]", "trainer.max_epochs=4", "trainer.enable_progress_bar=false", "logger=none",
        "optim.lr=0.02",  # 64 Adam steps on 500 images: the preset's lr is for 34,000
        "evaluate.batch_size=100", "generate.per_class=4", "judge.epochs=1", "judge.batch_size=32",
    ])
    metrics = run_pipeline(cfg)
    assert metrics["eval"]["test_accuracy"] >= linear_accuracy() - 0.05
    assert type(load_model("models/last.ckpt").net).__name__ == "JoinedLabelNet"
    assert (tmp_path / "samples" / "digits.png").is_file()


def test_the_feedback_diagnostic_changes_only_the_path_of_the_labels_correction(monkeypatch):
    # benchmarks/feedback.py's non-local variant: the rule's targets with Vy replaced by Wy's
    # transpose; the network keeps its own Vy for everything else.
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    torch.manual_seed(0)
    rule = joined([24, 16])
    transposed = make_net([24, 16], _target_="feedback.TransposedFeedback")
    transposed.load_state_dict(rule.state_dict())
    x, y = data(32)
    y = F.one_hot(y, 10).float()
    s = rule.settle(x, torch.zeros(32, 10), 1)
    differs = transposed.targets(x, y, s, up=False)
    assert not torch.equal(differs[1], rule.targets(x, y, s, up=False)[1])
    assert all(torch.equal(a, b) for a, b in zip(transposed.Vy, rule.Vy))  # put back after the targets
    with torch.no_grad():
        for vy, wy in zip(rule.Vy, rule.Wy):
            vy.copy_(wy.T)
    assert all(torch.equal(a, b) for a, b in zip(differs, rule.targets(x, y, s, up=False)))


def test_the_feedback_alignment_is_low_for_random_vy_and_one_when_it_points_as_the_transposed_read_out(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from feedback import alignment

    torch.manual_seed(0)
    net = joined([24, 16])
    x, y = data(64)
    y = F.one_hot(y, 10).float()
    assert all(c < 0.5 for c in alignment(net, x, y))  # independent random synapses
    with torch.no_grad():
        for vy, wy in zip(net.Vy, net.Wy):
            vy.copy_(3 * wy.T)  # its strength does not matter, its direction does
    assert alignment(net, x, y) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_a_regulariser_named_where_0_20_0_kept_it_is_moved_into_the_network():
    """Checkpoints of 0.20.0 kept the classify play's regularisers beside the network; loading
    moves them into a network that takes them and drops them (at 0) where it does not. A config
    that still names the old key gets one line that names the new one."""
    from astdp.config import validate
    from astdp.errors import ConfigError
    from astdp.training.targets import into_net

    joined = {"net": {"_target_": "astdp.nets.joined.JoinedLabelNet"}, "input_dropout": 0.2, "dropout": 0.0}
    assert into_net(joined) == {"net": {"_target_": "astdp.nets.joined.JoinedLabelNet", "input_dropout": 0.2,
                                        "dropout": 0.0}}
    twin = {"net": {"_target_": "astdp.nets.mlp.mlp"}, "input_dropout": 0.3, "dropout": 0.0}
    assert into_net(twin)["net"] == {"_target_": "astdp.nets.mlp.mlp", "input_dropout": 0.3, "dropout": 0.0}
    visible = {"net": {"_target_": "astdp.nets.visible.VisibleLabelNet"}, "input_dropout": 0.0}
    assert into_net(visible) == {"net": {"_target_": "astdp.nets.visible.VisibleLabelNet"}}
    with pytest.raises(ConfigError, match=r"model\.input_dropout: .*model\.net\.input_dropout"):
        validate(compose_config(["experiment=invariant", "+model.input_dropout=0.2"]))


@pytest.mark.parametrize("dream_noise", [0.0, 1.0])
def test_the_memory_is_taught_by_the_rule_from_the_classify_plays_code(dream_noise):
    """model.net.memory: each h1 unit's memory synapses change by pre * (target - post) of their own
    two neurons: pre the other unit's spike (its code over 1/2), post the unit's memory rate (the
    others' spikes through M, the label through the synapses that carry the labels' correction),
    target the unit's own code. No unit learns from itself, and every other change is the same."""
    torch.manual_seed(0)
    net, plain = joined([24], dream_noise=dream_noise, memory=True), joined([24], dream_noise=dream_noise)
    plain.load_state_dict(net.state_dict(), strict=False)
    with torch.no_grad():
        net.M.normal_(0, 0.3), net.bm.normal_(0, 0.3)
    x, y = data(32)
    y = F.one_hot(y, 10).float()
    torch.manual_seed(1)
    changes, _ = net.weight_changes(x, y, {"classify": (0.5, 1)})
    torch.manual_seed(1)
    without, _ = plain.weight_changes(x, y, {"classify": (0.5, 1)})
    assert changes.keys() == without.keys() | {"M", "bm"}
    for name, change in without.items():
        assert torch.equal(changes[name], change), name
    code = net.settle(x, torch.zeros_like(y), 1).a[1]
    spikes = (code > 0.5).float()
    post = torch.sigmoid(net.bm + spikes @ net.M + net.label_gain * y @ net.feedback[0])
    torch.testing.assert_close(changes["M"], stdp(spikes, post, code, 0.5).fill_diagonal_(0.0))
    torch.testing.assert_close(changes["bm"], 0.5 * (code - post).mean(0))
    assert changes["M"].any() and not changes["M"].diagonal().any()


def test_the_memory_leaves_classification_bit_for_bit_and_learns_at_its_own_rate():
    """The memory's synapses are drawn from no generator and feed no other change: a seeded
    module's every other parameter is the same bits after training with or without it;
    model.memory_lr gives them their own group of the optimizer."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    x, y = data(192)
    y = F.one_hot(y, 10).float()

    def trained(model, *overrides):  # six steps of the module's own updates, from the same seed
        cfg = compose_config(["experiment=invariant", f"model={model}", "model.net.hidden=[24]", *overrides])
        cfg = OmegaConf.to_container(cfg, resolve=True)
        torch.manual_seed(0)
        module = instantiate(cfg["model"], optim=cfg["optim"], lr_schedule=cfg["lr_schedule"], _recursive_=False,
                             _convert_="all")
        opt = instantiate(cfg["optim"])(module.param_groups())
        params = dict(module.net.named_parameters())
        for xb, yb in zip(x.split(32), y.split(32)):
            learning_step(opt, params.items(), module.net.weight_changes(xb, yb, module.plays, **module.train_kw)[0])
        return module.net.state_dict()

    plain, memory = trained("joined_redrawing"), trained("joined_memory")
    assert set(memory) - set(plain) == {"M", "bm"}
    assert all(torch.equal(plain[k], memory[k]) for k in plain)
    assert memory["M"].any() and not memory["M"].diagonal().any()
    slow = trained("joined_memory", "model.memory_lr=1e-6")
    assert all(torch.equal(plain[k], slow[k]) for k in plain)
    assert slow["M"].abs().max() < memory["M"].abs().max() / 10


def test_sampling_from_the_memory_keeps_the_label_and_varies_the_code():
    """generate.from_memory: h1's code comes from Gibbs sweeps of the memory with the label
    clamped; a seeded generator repeats a sample, another seed draws another, and a memory whose
    label synapses favour one unit per class makes that unit fire."""
    torch.manual_seed(0)
    net = joined([20], memory=True)
    with torch.no_grad():
        net.Vy[0].zero_(), net.bm.fill_(-4.0)
        net.Vy[0][torch.arange(10), torch.arange(10)] = 8.0  # label c drives unit c
    labels = torch.arange(10).repeat(3)
    y = F.one_hot(labels, 10).float()
    g = lambda seed: torch.Generator().manual_seed(seed)
    h = net.recall(y, 5, generator=g(0))
    assert (h[torch.arange(30), labels] > 0.9).all() and (h[:, 10:] < 0.1).all()
    same, other = net.generate(labels, 5, 0.5, g(1), from_memory=True), net.generate(labels, 5, 0.5, g(2), from_memory=True)
    assert torch.equal(same, net.generate(labels, 5, 0.5, g(1), from_memory=True)) and not torch.equal(same, other)
    with pytest.raises(ValueError, match="model.net.memory=true"):
        joined([20]).generate(labels, 2, from_memory=True)


@pytest.mark.parametrize("overrides, key", [
    (["experiment=invariant", "generate.label_hold=2"], "generate.label_hold"),
    (["model=joined", "model.memory_lr=1e-3"], "model.memory_lr"),
    (["generate.from_memory=true", "generate.beta_start=null"], "generate.from_memory"),
    (["experiment=invariant", "generate.memory_beta=0"], "generate.memory_beta"),
])
def test_memory_settings_are_checked(overrides, key):
    from astdp.config import validate
    from astdp.errors import ConfigError

    with pytest.raises(ConfigError, match=f"invalid config value {key}="):
        validate(compose_config(overrides))
    validate(compose_config(["experiment=invariant_baseline"]))  # a twin draws nothing: the preset's sampler is moot


def test_every_switch_of_the_joined_network_beyond_the_paper_is_named_in_the_method_page():
    """Item 4 of #36: each model.net / model key that model=joined_memory (every option of the
    joined network) adds to the paper's neurons is named, as `model.net.<key>`, in docs/method.md, and
    each model.net one is in EVERY_OPTION, which the no-autograd test turns on."""
    text = (ROOT / "docs" / "method.md").read_text()
    model = compose_config(["model=joined_memory"]).model
    unnamed = {k for k in model.net if f"`model.net.{k}" not in text and f"model.net.{k}`" not in text}
    assert unnamed == PAPER_NET_KEYS, unnamed ^ PAPER_NET_KEYS
    assert set(model.net) - PAPER_NET_KEYS == EVERY_OPTION.keys()
    module = {"_target_", "settle_inertia", "hidden_lr_scale", "eval_settle_steps", "check_finite_every"}
    assert {k for k in model if f"model.{k}" not in text} == module
