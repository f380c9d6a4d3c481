"""Diagnostic: how much of aSTDP's gap to backprop comes from its feedback path.

In ``model=joined`` a hidden neuron hears the labels' correction through its own label synapses
``Vy`` (local; the generate play shapes them). Backprop would send it through the transpose of
the read-out ``Wy``, which no synapse of the neuron can know. This script trains the invariant
preset's net (any hidden sizes) in the bare loop, without Lightning, with the rule
(``--feedback rule``), with the rule and feedback synapses of their own taught by a dream
(``--feedback dream``, ``model.net.dream_noise``), or with the transpose (``--feedback
transpose``), from the same seed,
data and batches, and prints after every epoch the validation accuracy and how closely the rule's
feedback points where the transpose's would (:func:`alignment`). The transposed feedback is
not local and is not a config option: it measures where the gap is, it does not train models.

    python benchmarks/feedback.py --feedback rule --hidden 1000 --epochs 12
    python benchmarks/feedback.py --feedback dream --hidden 1000 --epochs 12
    python benchmarks/feedback.py --feedback transpose --hidden 1000 --epochs 12
    python benchmarks/feedback.py --feedback dream --experiment fashion --data-root data/fashion_mnist --epochs 20
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from astdp.nets.joined import JoinedLabelNet
from astdp.nets.rule import learning_step



class TransposedFeedback(JoinedLabelNet):
    """``JoinedLabelNet`` whose hidden targets take the labels' correction through ``Wy[l]``'s transpose
    instead of ``Vy[l]``. Only the target phase changes: settling, generation and which play
    teaches which synapses are the rule's."""

    @property
    def feedback(self):  # read by JoinedLabelNet.targets' downward pass
        return [w.T for w in self.Wy]


def alignment(net: JoinedLabelNet, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Per hidden layer, the mean cosine (over the images ``x``, labels ``y`` one-hot) between
    the labels' correction of the layer's drive as the rule sends it (through ``net.feedback``:
    ``Vy``, or ``Fy`` with the dream) and as
    the transpose of the read-out would, each weighted by the units' slopes as in the targets.
    1: the rule's feedback points where the diagnostic's does."""
    s = net.settle(x, net._no_labels(x), 1)
    err = y - s.a[-1]
    cosines = []
    for l, (vy, wy) in enumerate(zip(net.feedback, net.Wy)):
        slope = net.rho_prime(s.u[l + 1])
        cosines.append(F.cosine_similarity(slope * (err @ vy), slope * (err @ wy.T)).mean().item())
    return cosines


def build_net(conf, hidden: list[int], feedback: str, dream_noise: float, dream_on: str = "drives") -> JoinedLabelNet:
    net = {"hidden": hidden, "dream_noise": dream_noise if feedback == "dream" else 0.0, "dream_on": dream_on}
    kwargs = OmegaConf.to_container(OmegaConf.merge(conf.model.net, net), resolve=True)
    kwargs.pop("_target_")
    return (TransposedFeedback if feedback == "transpose" else JoinedLabelNet)(**kwargs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feedback", choices=["rule", "dream", "transpose"], required=True)
    ap.add_argument("--dream-noise", type=float, default=1.0, help="with --feedback dream (default 1)")
    ap.add_argument("--hidden", default="1000", help="comma-separated hidden sizes (default 1000)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default="data/mnist")
    ap.add_argument("--experiment", default="invariant", help="a preset of the joined-label network (default invariant)")
    ap.add_argument("--dream-on", choices=["drives", "rates"], default="drives",
                    help="with --feedback dream: what the dream's noise disturbs (model.net.dream_on)")
    ap.add_argument("--feedback-lr", type=float, default=None, metavar="LR",
                    help="with --feedback dream: the feedback synapses Fy step by plain SGD at LR under the schedule "
                         "(model.feedback_lr; default: by the preset's optimizer)")
    args = ap.parse_args()

    from bench import build_module, composed

    preset = composed(f"experiment={args.experiment}")  # composed and built as the train stage does

    hidden = [int(h) for h in args.hidden.split(",")]
    module = build_module(hidden, preset)  # its plays, settling settings and optimizer groups
    torch.manual_seed(args.seed)
    data = instantiate(preset.data, root=args.data_root)
    (x, y), (xv, yv) = data.train_val().values()  # as the pipeline: the test images stay unread
    order = torch.Generator().manual_seed(args.seed)

    module.net = net = build_net(preset, hidden, args.feedback, args.dream_noise, args.dream_on)  # built after the seed: every variant starts alike
    batch = preset.data.batch_size
    steps = args.epochs * math.ceil(len(x) / batch)
    module.feedback_lr = args.feedback_lr  # as the train stage's module, with model.feedback_lr
    opt = instantiate(preset.optim)(module.param_groups())
    schedule = instantiate(preset.lr_schedule)(opt, total_steps=steps)
    params = dict(net.named_parameters())
    for epoch in range(1, args.epochs + 1):
        start, hits = time.time(), torch.zeros((), dtype=torch.long)
        for b in torch.randperm(len(x), generator=order).split(batch):
            changes, labels = net.weight_changes(x[b], F.one_hot(y[b], net.n_labels).float(), module.plays, **module.train_kw)
            hits += (labels.argmax(1) == y[b]).sum()
            learning_step(opt, params.items(), changes, module.plain_rates(schedule.get_last_lr()[0]))
            schedule.step()
        val = (net.classify(xv, preset.evaluate.settle_steps) == yv).float().mean().item()
        aligned = [round(c, 2) for c in alignment(net, xv[:2000], F.one_hot(yv[:2000], net.n_labels).float())]
        print(f"{args.feedback} {hidden} epoch {epoch}: train {hits.item() / len(x):.4f} validation {val:.4f} "
              f"feedback aligned {aligned} {time.time() - start:.0f}s", flush=True)
    print(json.dumps({"feedback": args.feedback, "experiment": args.experiment, "hidden": hidden, "epochs": args.epochs,
                      "seed": args.seed, "dream_noise": args.dream_noise if args.feedback == "dream" else None,
                      "dream_on": args.dream_on, "feedback_lr": args.feedback_lr, "train_accuracy": round(hits.item() / len(x), 4), "val_accuracy": round(val, 4), "alignment": aligned}))


if __name__ == "__main__":
    main()
