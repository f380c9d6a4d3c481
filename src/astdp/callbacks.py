"""Lightning plumbing the pipeline needs: per-epoch history for DVC plots, atomic checkpoints."""
from __future__ import annotations

import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from astdp.io import atomic_path, write_json


class EpochHistory(pl.Callback):
    """Keeps every epoch's logged metrics and wall time; writes them as a DVC plot file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []
        self._start, self._train_time = 0.0, None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start, self._train_time = time.perf_counter(), None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if trainer.training and self._train_time is None:  # validation inside a training epoch
            self._train_time = time.perf_counter() - self._start

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Runs after the epoch's validation, so train and val metrics are both in.
        train_time = self._train_time or time.perf_counter() - self._start
        row = {"epoch": trainer.current_epoch, "epoch_time_s": round(train_time, 3)}
        row.update({k.replace("/", "_"): round(float(v), 6) for k, v in trainer.callback_metrics.items()})
        self.rows.append(row)
        if trainer.is_global_zero:
            write_json(self.path, self.rows)

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = state["rows"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary name and renamed: a kill never leaves half a file."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)
