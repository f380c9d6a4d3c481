"""Callbacks that stop a training run the ways the world does; the reliability tests inject them."""
import os
import signal

import pytorch_lightning as pl


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
