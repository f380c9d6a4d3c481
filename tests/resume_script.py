"""Train on the synthetic data; optionally SIGKILL the process at the start of an epoch.

Usage: python tests/resume_script.py OUT_DIR DATA_ROOT [KILL_AT_EPOCH|resume]
"""
import os
import signal
import sys
from pathlib import Path

import pytorch_lightning as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import compose_config  # noqa: E402


class KillAt(pl.Callback):
    """Dies like a preempted job: no cleanup, no final checkpoint."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


class TermAt(pl.Callback):
    """Preempted the way schedulers do it: SIGTERM in the middle of an epoch."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    out, root, mode = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    os.chdir(out)
    from astdp.stages.train import train

    overrides = [f"data.root={root}", "data.verify=false", "data.val_size=100", "model=small", "logger=none",
                 "trainer.max_epochs=4", "trainer.enable_progress_bar=false", "data.batch_size=32", "data.max_shift=1"]
    if mode == "resume":
        overrides.append("resume=true")
    elif mode != "full":
        overrides += ["+callbacks.kill._target_=resume_script.KillAt", f"+callbacks.kill.epoch={mode}"]
    sys.path.insert(0, str(Path(__file__).parent))
    train(compose_config(overrides))
