"""How far a network's in-painting is from the best linear read of what it knows (exploratory).

For each trained run folder (``params.yaml`` and ``models/last.ckpt``, as `dvc repro` or
`dvc exp run` leave them), on validation images with ``evaluate.occlude`` hidden:

- ``net``: the network's own fill, as the evaluate stage makes it;
- ``knn``: the mean of the 10 training images nearest on the visible half (the memory to beat);
- least-squares read-outs fitted on training images (``--train-size``), clipped to [0, 1]:
  ``code_one_side``: from h1's code of the half image, fitted on that side only;
  ``code_any_side``: from the same code, one map for whatever half is hidden, as the completion
  play teaches its top-down synapses (a random half of each image);
  ``visible``: from the visible pixels alone; ``code_and_visible``: from both, one side.

Every number is a mean squared error over the hidden pixels. A read-out is a ceiling for the
synapses that could learn it: the network's top-down synapses see only the code, the visible
layer has no synapses of its own.

    python benchmarks/inpaint_ceiling.py RUN [RUN ...] --data-root data/mnist [--out F.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from astdp.measure.inpaint import inpainted, knn_fill, occlusion_mask
from astdp.nets.joined import JoinedLabelNet
from astdp.training.checkpoints import load_model


def half_code(net, x: torch.Tensor, known: torch.Tensor, ev) -> torch.Tensor:
    """h1's code of ``x`` with only ``known`` pixels given, the code the evaluate stage's
    in-painting draws from (the joined-label network: one sweep up, drives times
    ``inpaint_beta``; the visible-label network: its settling with the rest free)."""
    if isinstance(net, JoinedLabelNet):
        return net.settle(torch.where(known, x, 0.0), net._no_labels(x), 1, beta=ev.inpaint_beta).a[1]
    return net._partial(x, known, ev.settle_steps + 2, ev.inpaint_beta).a[1]


def ridge(features: torch.Tensor, target: torch.Tensor, lam: float = 1e-2):
    """The least-squares map (with a bias and a small ridge) from ``features`` to ``target``,
    returned as a function of new features, its output clipped to pixel range."""
    ones = lambda f: torch.cat([f, f.new_ones(len(f), 1)], 1).double()
    a = ones(features)
    w = torch.linalg.solve(a.T @ a + lam * torch.eye(a.shape[1], dtype=a.dtype), a.T @ target.double())
    return lambda f: (ones(f) @ w).clamp(0, 1).float()


@torch.no_grad()
def ceilings(run: Path, data_root: str, train_size: int, batch: int = 1000) -> dict:
    cfg = OmegaConf.load(run / "params.yaml")
    net = load_model(run / "models" / "last.ckpt").net.cpu()
    split = instantiate(cfg.data, root=data_root).train_val()
    x_train, x_val = split["train"][0], split["val"][0]
    ev = cfg.evaluate
    known = occlusion_mask(1, ev.occlude, net.image_shape)[0]
    hidden = ~known
    codes = lambda x, k: torch.cat([half_code(net, xb, kb, ev) for xb, kb in zip(x.split(batch), k.split(batch))])
    mse = lambda fill: round((fill - x_val[:, hidden]).square().mean().item(), 5)

    fill = torch.cat([inpainted(net, xb, known.expand(len(xb), -1), ev) for xb in x_val.split(batch)])
    x_fit = x_train[:train_size]
    code_val = codes(x_val, known.expand(len(x_val), -1))
    code_fit = codes(x_fit, known.expand(len(x_fit), -1))

    # One map for any side: each training image with a random half hidden, as the completion play
    # draws them; a pixel of the measured half is fitted on the images whose hidden half covers it.
    halves = net.halves(torch.device("cpu"))  # hidden pixels of each of the four sides
    g = torch.Generator().manual_seed(0)
    hid_fit = halves[torch.randint(len(halves), (len(x_fit),), generator=g)]
    code_any = codes(x_fit, ~hid_fit)
    any_side = torch.zeros(len(x_val), int(hidden.sum()))
    cover = halves[:, hidden]  # (sides, hidden pixels): which sides hide each pixel
    for pattern in cover.unique(dim=1).T:
        cols = (cover == pattern[:, None]).all(0)
        pixels = hidden.nonzero()[:, 0][cols]
        rows = hid_fit[:, pixels].all(1)
        any_side[:, cols] = ridge(code_any[rows], x_fit[rows][:, pixels])(code_val)

    target = x_fit[:, hidden]
    both = lambda c, x: torch.cat([c, x[:, known]], 1)
    return {
        "run": str(run), "preset": cfg.name, "occlude": ev.occlude, "train_size": len(x_fit), "val_size": len(x_val),
        "net": mse(fill[:, hidden]),
        "knn": mse(knn_fill(x_val, known, x_train)[:, hidden]),
        "code_one_side": mse(ridge(code_fit, target)(code_val)),
        "code_any_side": mse(any_side),
        "visible": mse(ridge(x_fit[:, known], target)(x_val[:, known])),
        "code_and_visible": mse(ridge(both(code_fit, x_fit), target)(both(code_val, x_val))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (params.yaml, models/last.ckpt)")
    ap.add_argument("--data-root", required=True, help="the dataset's folder of IDX files")
    ap.add_argument("--train-size", type=int, default=20000, help="training images the read-outs are fitted on")
    ap.add_argument("--out", type=Path, help="also write the rows and their means here (JSON)")
    args = ap.parse_args()
    rows = []
    for run in args.runs:
        rows.append(ceilings(run, args.data_root, args.train_size))
        print(json.dumps(rows[-1]), flush=True)
    keys = ["net", "knn", "code_one_side", "code_any_side", "visible", "code_and_visible"]
    mean = {k: round(statistics.mean(r[k] for r in rows), 5) for k in keys}
    print(json.dumps({"mean": mean}))
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "mean": mean}, indent=2) + "\n")


if __name__ == "__main__":
    main()
