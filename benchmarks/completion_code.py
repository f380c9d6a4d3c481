"""How well a code taught only to complete images fills hidden halves, under the rule and by backprop (exploratory).

#37 item 3 asks for in-painting that beats memory (the mean of the 10 training images nearest on
the visible half). The presets' code is taught by classification, and a linear read of it stays
behind memory (``inpaint_ceiling.py``). This asks the next question: does the rule reach memory
when the code is taught for completion alone? Two networks of one hidden layer, the same shape
(784 pixels, ``--hidden`` units, 784 pixels), each taught only to complete (a random half of every
training image hidden, as the completion play hides it), Adam at ``--lr`` on a cosine schedule:

- ``rule``: the visible-label network (``astdp.nets.visible``), its settling with the hidden half
  and the labels free, then the target phase with the whole image clamped: every synapse changes
  by :func:`astdp.nets.rule.stdp`. Unlike the presets' completion play, the bottom-up synapses
  learn too (the known pixels' only: a free pixel is the network's own echo), so the code itself
  is taught to stand for the whole image. It never classifies.
- ``backprop``: an autoencoder of the same shape, sigmoid units, the squared error of the hidden
  half by autograd (what gradient descent makes of a code of this size taught for completion).

Printed per epoch: the mean squared error over the hidden bottom halves of 5,000 validation
images; at the end, beside the 10-NN fill's, with the judge's reading of the completed images.

    python benchmarks/completion_code.py --learner rule --hidden 1000 --judge models/judge.pt
"""
from __future__ import annotations

import argparse
import json
import math
import time
from functools import partial

import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from torch import nn

import astdp.config  # noqa: F401  (registers the schema the config composes with)
from astdp.measure.inpaint import knn_fill
from astdp.measure.judge import load_judge
from astdp.nets.rule import learning_step, stdp
from astdp.nets.visible import VisibleLabelNet

BATCH = 64
STEPS = 3  # the rule's settling steps, in learning and in filling (the default's completion play's)


def rule_learner(hidden: int, lr: float, generator: torch.Generator | None = None):
    """The visible-label network taught by its completion settling alone: learn(x, hidden_half),
    fill(x, known), its optimizer (for the schedule) and the network."""
    net = VisibleLabelNet([hidden], "sigmoid", 1.0, 6.0, 0.01, 0.0, 0.05, [28, 28], 10, generator)
    params = list(net.named_parameters())
    opt = torch.optim.Adam([p for _, p in params], lr)

    def learn(x, hid):
        v = torch.cat([x, x.new_zeros(len(x), 10)], 1)
        free = torch.cat([hid, hid.new_ones(len(x), 10)], 1)
        s = net.settle(v, free, STEPS)
        t = net.targets(v, s)  # the whole image clamped
        target_v = torch.where(free, t[0], s.a[0])  # only the free units have an error
        changes = {"W.0": stdp(torch.where(free, 0.0, s.a[0]) / net.gain, s.a[1], t[1]),
                   "V.0": stdp(s.a[1], s.a[0], target_v)}
        net.bias_changes([target_v, t[1]], s.a, 1.0, changes)
        for name, _ in params:
            net.change(changes, name)
        learning_step(opt, params, changes)

    fill = lambda x, known: net.inpaint(x, known.expand(len(x), -1), STEPS)
    return learn, fill, opt, net


def backprop_learner(hidden: int, lr: float):
    """An autoencoder of the same shape taught the hidden half's squared error by autograd (its
    weights drawn from torch's global generator)."""
    net = nn.Sequential(nn.Linear(784, hidden), nn.Sigmoid(), nn.Linear(hidden, 784), nn.Sigmoid())
    opt = torch.optim.Adam(net.parameters(), lr)

    def learn(x, hid):
        with torch.enable_grad():
            loss = ((net(x.masked_fill(hid, 0.0)) - x) ** 2 * hid).sum() / hid.sum()
            opt.zero_grad()
            loss.backward()
        opt.step()

    fill = lambda x, known: torch.where(known, x, net(x.masked_fill(~known, 0.0)))
    return learn, fill, opt, net


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--learner", choices=("rule", "backprop"), required=True)
    ap.add_argument("--hidden", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0, help="the learner's initial weights and the order of the images")
    ap.add_argument("--data-root", default="data/mnist")
    ap.add_argument("--judge", required=True, help="the judge the generate stage reads fills with (models/judge.pt)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    with initialize_config_module("astdp.conf", version_base=None):
        data = compose("config", overrides=["logger=none"]).data  # the default's split (seed 0): validation images only
    split = instantiate(data, root=args.data_root).train_val()
    (x_train, _), (x_val, y_val) = split["train"], split["val"]
    if args.learner == "rule":
        learner = partial(rule_learner, generator=torch.Generator().manual_seed(args.seed))
    else:
        learner = backprop_learner
    learn, fill, opt, _ = learner(args.hidden, args.lr)
    # (4, 784): the bottom, top, right and left half of an image, as the completion play hides them
    halves = VisibleLabelNet([1], "sigmoid", 1.0, 1.0, 0.01, 0.0, 0.05, [28, 28], 10).halves(torch.device("cpu"))
    known = ~halves[0]  # measured with the bottom half hidden, as the evaluate stage measures
    error = lambda f: ((f - x_val) ** 2)[:, halves[0]].mean().item()
    filled = lambda: torch.cat([fill(xb, known) for xb in x_val.split(1000)])
    total, k = args.epochs * -(-len(x_train) // BATCH), 0
    for epoch in range(args.epochs):
        start, order = time.perf_counter(), torch.randperm(len(x_train))
        for i in range(0, len(x_train), BATCH):
            x = x_train[order[i:i + BATCH]]
            for group in opt.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * k / total))
            k += 1
            learn(x, halves[torch.randint(4, (len(x),))])
        print(f"epoch {epoch + 1}: validation MSE {error(filled()):.5f} ({time.perf_counter() - start:.0f} s)", flush=True)
    judge, _ = load_judge(args.judge)
    ours, memory = filled(), knn_fill(x_val, known, x_train)
    read = lambda f: round((judge.predict(f) == y_val).float().mean().item() * 100, 2)
    print(json.dumps({"learner": args.learner, "hidden": args.hidden, "epochs": args.epochs, "lr": args.lr, "seed": args.seed,
                      "mse": round(error(ours), 5), "knn_mse": round(error(memory), 5),
                      "judge_accuracy": read(ours), "knn_judge_accuracy": read(memory)}))


if __name__ == "__main__":
    main()
