"""Lightning callbacks the pipeline needs: per-epoch history for DVC plots, images for the logger,
and an optional average of the weights.

Paths are relative to ``trainer.default_root_dir`` (the run's folder: ``.`` for a single
run, its own folder for a multirun job), as Lightning's own callbacks resolve theirs.
Nothing written here holds a wall-clock time or an absolute path, so a rerun on the same
machine gives the same bytes and DVC can tell a reproduced result from a changed one.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn
from pytorch_lightning.callbacks import WeightAveraging

from astdp.errors import ConfigError
from astdp.io import write_json


class EpochHistory(pl.Callback):
    """Keeps every epoch's logged metrics; writes them as a DVC plot file; prints a line per epoch.

    Hand-written rather than DVCLive's Lightning logger: that would be a second logger beside
    W&B, writing its own ``dvclive/`` tree and step counter, where the pipeline needs one plot
    file that ``dvc.yaml`` declares and a checkpoint that resumes it. Epochs count from 1, in
    the file as on the console. The printed line (epoch, accuracies,
    seconds, time left at the mean epoch time so far) shows progress where there is no progress
    bar (``dvc repro``); the seconds go to the console only.
    """

    def __init__(self, path: str):
        self.path = path
        self.rows: list[dict] = []
        self._start = 0.0
        self._seconds: list[float] = []  # this process's epochs (a resumed run starts afresh)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Runs after the epoch's validation, so train and val metrics are both in.
        row = {"epoch": trainer.current_epoch + 1}
        row.update({k.replace("/", "_"): round(float(v), 6) for k, v in trainer.callback_metrics.items()})
        self.rows.append(row)
        if trainer.is_global_zero:
            write_json(Path(trainer.default_root_dir) / self.path, self.rows)
            if trainer.progress_bar_callback is None:
                seconds = time.perf_counter() - self._start
                self._seconds.append(seconds)
                left = sum(self._seconds) / len(self._seconds) * (trainer.max_epochs - trainer.current_epoch - 1)
                accs = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k.endswith("acc"))
                print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} {accs} {seconds:.1f}s "
                      f"(about {left / 60:.1f} min left)", file=sys.stderr, flush=True)

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = state["rows"]


class ImagesToLogger(pl.Callback):
    """Every few epochs: a grid of generated samples (a row per class) and of hidden units'
    receptive fields, to a logger that takes images (W&B). Sampling uses its own seeded
    generator, so training is the same with or without it."""

    def __init__(self, every_n_epochs: int, per_class: int, fields: int, settle_steps: int):
        self.every_n_epochs, self.per_class, self.fields = every_n_epochs, per_class, fields
        self.settle_steps = settle_steps

    @torch.no_grad()
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        net = getattr(pl_module, "net", None)
        logger = trainer.logger
        if net is None or not hasattr(logger, "log_image") or not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs and epoch != trainer.max_epochs:
            return
        from astdp.images import grid

        shape, classes = trainer.datamodule.image_shape, trainer.datamodule.classes
        labels = torch.arange(net.n_labels, device=pl_module.device).repeat_interleave(self.per_class)
        gen = torch.Generator(device=pl_module.device).manual_seed(trainer.current_epoch)
        samples = net.generate(labels, self.settle_steps, generator=gen, sample=True)
        w = net.W[0][net.pixels, : self.fields].T  # (fields, pixels): what each hidden unit looks for
        w = (w - w.amin(1, keepdim=True)) / (w.amax(1, keepdim=True) - w.amin(1, keepdim=True)).clamp_min(1e-8)
        # Two keys: the grids differ in size, and W&B warns about (and misdraws) one list of unequal images.
        logger.log_image(key="samples", step=trainer.global_step, images=[grid(samples, self.per_class, shape)],
                         caption=[f"rows: {', '.join(classes)}"])
        logger.log_image(key="receptive_fields", step=trainer.global_step, images=[grid(w, 8, shape)],
                         caption=["what each of the first hidden units looks for"])


class WeightAverage(WeightAveraging):
    """Every synapse keeps an exponential moving average of its own weight (local to it),
    updated every ``every`` steps with ``decay`` per update, all synapses in one fused update.

    Lightning's :class:`WeightAveraging` swaps the average in for validation and puts it in
    the checkpoint (the evaluate and generate stages use it); training follows the raw weights.
    """

    def __init__(self, decay: float, every: int):
        if not (0 <= decay < 1 and every >= 1):
            raise ConfigError(f"invalid WeightAverage decay={decay}, every={every}: decay must be in [0, 1) and every "
                              "at least 1 (e.g. callbacks.ema.decay=0.998 callbacks.ema.every=10)")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.every = every

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None and step_idx % self.every == 0
