"""The arithmetic of one training step, aSTDP against its backprop twin, play by play (no timing).

torch's ``FlopCounterMode`` counts the floating-point operations of the matrix products in one
batch of a preset's training step (the weight changes and the learning step, as the module runs
them) and of its twin's (forward, backward, step). A play's share is what switching it on adds to
the plays before it, in the order the step runs them. Products are most of the work on both sides,
so the ratio of arithmetic is about the floor under ``make bench``'s ratio of epoch times: the
rest of that ratio is what the products do not count (activations, the optimizer, small matrices).
The counts do not depend on the machine or on pixel values.

    python benchmarks/flops.py [--out results/flops.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from bench import BASELINE, CONF, INVARIANT_TWIN, astdp_loop, backprop_loop, composed
from astdp.io import write_json

PRESETS = {"default": (CONF, BASELINE), "invariant": (composed("experiment=invariant"), INVARIANT_TWIN)}


# torch counts addmm but not its in-place form, with which the rule adds each play's change
# into the batch's (astdp.nets.rule.stdp's ``out``): the same products, counted the same way.
IN_PLACE = {torch.ops.aten.addmm_: flop_registry[torch.ops.aten.addmm].__wrapped__}


def flops(fn) -> int:
    with FlopCounterMode(display=False, custom_mapping=IN_PLACE) as counter:
        fn()
    return counter.get_total_flops()


def with_plays(conf, on: set[str]):
    """``conf`` with every play outside ``on`` at scale 0 (the ones in it as configured)."""
    plays = {p: {"scale": 0.0} for p in conf.model.plays if p not in on}
    return OmegaConf.merge(conf, {"model": {"plays": plays}})


def step_flops(conf, twin) -> dict:
    """One batch of ``conf``'s training step, each play's share, and its twin's, in MFLOP."""
    batch, hidden = conf.data.batch_size, list(conf.model.net.hidden)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(batch, 784, generator=g), torch.randint(0, 10, (batch,), generator=g)
    running = [p for p, play in conf.model.plays.items() if play.scale]
    plays, before = {}, 0
    for k in range(1, len(running) + 1):
        total = flops(astdp_loop(x, y, hidden, batch, 1, with_plays(conf, set(running[:k])))[0])
        plays[running[k - 1]] = round((total - before) / 1e6, 2)
        before = total
    backprop = flops(backprop_loop(x, y, hidden, batch, 1, twin))
    return {"hidden": hidden, "batch": batch, "astdp_mflop": round(before / 1e6, 2), "plays_mflop": plays,
            "backprop_mflop": round(backprop / 1e6, 2), "ratio": round(before / backprop, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="also write the JSON result here")
    args = ap.parse_args()
    result = {"made_by": "python benchmarks/flops.py", "presets": {}}
    for name, (conf, twin) in PRESETS.items():
        row = result["presets"][name] = step_flops(conf, twin)
        shares = ", ".join(f"{p} {f}" for p, f in row["plays_mflop"].items())
        print(f"{name:10s} {row['hidden']} batch {row['batch']}: aSTDP {row['astdp_mflop']} MFLOP ({shares}), "
              f"twin {row['backprop_mflop']}: {row['ratio']}x")
    print(json.dumps(result))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
