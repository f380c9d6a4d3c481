"""Where a network's samples vary, against where real images of their class vary (exploratory).

Recall (Kynkäänniemi et al. 2019) asks whether the samples cover the real images; it does not say
why they do not. This script measures, in the judge's features and for each class, how much the
samples vary and in which directions. For each trained run folder (``params.yaml``,
``models/last.ckpt`` and ``models/judge.pt``, as `dvc repro` or `dvc exp run` leave them) it draws
``--per-class`` samples of each class with the run's own sampler (the generate stage's ``draw``)
and reads the validation images (never the test split). Per class, averaged over classes:

- ``spread``: the samples' total within-class variance over the real images';
- ``style_share``: the share of the samples' within-class variance that lies along the real
  images' top ``--k`` within-class principal directions (the ways real digits of that class
  differ: slant, width, stroke);
- ``real_style_share``: the same share for the real images themselves (what a sampler that
  varies as real images do would reach);
- ``chance_share``: ``k`` over the feature dimension (variance in random directions).

    python benchmarks/sample_variety.py RUN [RUN ...] [--data-root data/mnist] [--set generate.KEY=V ...] [--out F.json]

``--set`` changes the run's sampler (``generate.settle_steps=5 generate.pixel_spikes=true``).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from astdp.io import write_json
from astdp.measure.judge import load_judge
from astdp.stages.generate import draw
from astdp.training.checkpoints import load_model


def shares(real: torch.Tensor, fake: torch.Tensor, k: int) -> dict[str, float]:
    """One class: ``real`` (n, d) and ``fake`` (m, d) features; see the module docstring."""
    real_c, fake_c = real - real.mean(0), fake - fake.mean(0)
    directions = torch.linalg.svd(real_c, full_matrices=False).Vh[:k]  # (k, d), orthonormal rows
    in_style = lambda f: (f @ directions.T).square().sum().item() / f.square().sum().item()
    return {"spread": fake_c.square().sum(1).mean().item() / real_c.square().sum(1).mean().item(),
            "style_share": in_style(fake_c), "real_style_share": in_style(real_c)}


@torch.no_grad()
def variety(run: Path, data_root: str | None, per_class: int, k: int, overrides: list[str] = ()) -> dict:
    cfg = OmegaConf.merge(OmegaConf.load(run / "params.yaml"), OmegaConf.from_dotlist(list(overrides)))
    data_root = data_root or str(run / cfg.data.root)  # the run's own copy, as the stages read it
    net = load_model(run / "models" / "last.ckpt").net.cpu().eval()
    judge, _ = load_judge(run / "models" / "judge.pt")
    x_val, y_val = instantiate(cfg.data, root=data_root).train_val()["val"]
    labels = torch.arange(net.n_labels).repeat_interleave(per_class)
    fake = judge.embed(draw(net, labels, cfg.generate, torch.Generator().manual_seed(cfg.seed)))
    real = judge.embed(x_val)
    per = [shares(real[y_val == c], fake[labels == c], k) for c in range(net.n_labels)]
    out = {key: round(statistics.mean(p[key] for p in per), 4) for key in per[0]}
    return {"run": str(run), "preset": cfg.name, "seed": cfg.seed, "set": list(overrides), **out,
            "chance_share": round(k / real.shape[1], 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data-root", help="the dataset's folder (default: each run's own data.root)")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--k", type=int, default=3, help="real images' principal directions per class (default 3)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="sampler overrides, e.g. generate.noise=0")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = [variety(run, args.data_root, args.per_class, args.k, args.set) for run in args.runs]
    for row in rows:
        print(json.dumps(row))
    if args.out:
        write_json(args.out, {"k": args.k, "per_class": args.per_class, "runs": rows})


if __name__ == "__main__":
    main()
