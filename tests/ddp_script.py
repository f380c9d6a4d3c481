"""Train on the synthetic data with Lightning's DDP (2 CPU processes) or in one process.

Run as a script: strategy=ddp re-executes this command line for the second rank.
Usage: python tests/ddp_script.py OUT_DIR DATA_ROOT {ddp,single}
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import compose_config  # noqa: E402

if __name__ == "__main__":
    out, root, mode = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    os.chdir(out)
    from astdp.stages.train import train

    common = [f"data.root={root}", "data.verify=false", "data.val_size=0", "model=small", "logger=none",
              "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
              "+trainer.limit_train_batches=6", "lr_schedule=constant", "data.max_shift=2"]
    if mode == "ddp":
        common += ["trainer=ddp", "data.batch_size=16"]
    else:
        common += ["data.batch_size=32"]
    train(compose_config(common))
