"""Train the network and the judge on the synthetic data; print a digest of their weights.

Run as a script, so that the environment (the CPU kernels' dispatch level) is read afresh:
    python tests/dispatch_script.py OUT_DIR
"""
import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import astdp.stages  # noqa: E402,F401  pins the kernels as the stages do, before torch runs any

from tests.conftest import compose_config, write_digits  # noqa: E402

if __name__ == "__main__":
    import torch

    out = Path(sys.argv[1])
    root = write_digits(out / "digits")
    os.chdir(out)
    from astdp.stages.judge import make_judge
    from astdp.stages.train import train

    cfg = compose_config([f"data.root={root}", "data.verify=false", "data.val_size=100", "model=small", "logger=none",
                          "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "judge.epochs=1",
                          "judge.batch_size=32"])
    train(cfg), make_judge(cfg)
    weights = torch.load("models/last.ckpt", weights_only=True)["state_dict"]
    judge = torch.load("models/judge.pt", weights_only=True)["state_dict"]
    digest = hashlib.sha256()
    for state in (weights, judge):
        for name in sorted(state):
            digest.update(state[name].numpy().tobytes())
    print(torch.backends.cpu.get_cpu_capability(), digest.hexdigest())
