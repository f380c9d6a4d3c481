"""What the pinned CPU kernels cost: the default training step and the judge's, pinned (as
the stages run them) against the CPU's own widest kernels, side by side in one run.

Each measurement is a fresh process (the dispatch level is read once per process); the two
settings alternate and the median of the repeats is taken. The last line is one JSON object.

    python benchmarks/dispatch.py            # a minute or two on 2 CPU cores
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

NATIVE = {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "ALL", "MKL_CBWR": "AUTO"}


def measure(batches: int) -> dict:
    """Seconds for ``batches`` aSTDP steps of the default network and as many judge steps."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch
    import torch.nn.functional as F

    from bench import CONF, astdp_loop
    from astdp.measure.judge import ConvJudge

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(batches * 64, 784, generator=g), torch.randint(0, 10, (batches * 64,), generator=g)
    run, _ = astdp_loop(x, y, list(CONF.model.net.hidden), 64, batches)
    judge = ConvJudge([28, 28], 10)
    opt = torch.optim.Adam(judge.parameters())

    def judge_steps():
        for xb, yb in zip(x.split(128), y.split(128)):
            opt.zero_grad()
            F.cross_entropy(judge(xb), yb).backward()
            opt.step()

    out = {}
    for name, fn in (("astdp_step", run), ("judge_step", judge_steps)):
        fn()  # warm-up
        t = time.perf_counter()
        fn()
        out[name] = time.perf_counter() - t
    out["capability"] = torch.backends.cpu.get_cpu_capability()
    return out


def main(batches: int = 100, repeats: int = 3) -> None:
    base = {k: v for k, v in os.environ.items() if k not in NATIVE}
    times: dict[str, list[dict]] = {"pinned": [], "native": []}
    for _ in range(repeats):
        for name, env in (("pinned", base), ("native", base | NATIVE)):
            code = f"import astdp.stages, json, dispatch; print(json.dumps(dispatch.measure({batches})))"
            done = subprocess.run([sys.executable, "-c", code], env=env | {"PYTHONPATH": str(Path(__file__).parent)},
                                  capture_output=True, text=True, check=True)
            times[name].append(json.loads(done.stdout.splitlines()[-1]))
    result = {"batches": batches, "repeats": repeats,
              "capability": {k: v[0]["capability"] for k, v in times.items()}}
    for step in ("astdp_step", "judge_step"):
        med = {k: statistics.median(m[step] for m in v) for k, v in times.items()}
        result[f"{step}_pinned_over_native"] = round(med["pinned"] / med["native"], 3)
        print(f"{step:12s} pinned {med['pinned']:.2f} s  native {med['native']:.2f} s  "
              f"ratio {med['pinned'] / med['native']:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
