"""Lightning drivers: the aSTDP network trained by local updates, and the backprop baseline."""
from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.strategies import DDPStrategy
from torch import nn

from astdp.core import PIXELS, ASTDPNet


class DivergenceError(RuntimeError):
    """Activities or weights stopped being finite."""


def _schedule(opt, schedule: str, total_steps: int) -> dict:
    """Per-step learning-rate schedule: constant, or cosine annealed to 0 at the last step."""
    if schedule == "cosine":
        fn = lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total_steps) / max(total_steps, 1)))
    else:
        fn = lambda k: 1.0
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, fn), "interval": "step"}


class ASTDPModule(pl.LightningModule):
    """Drives :class:`astdp.core.ASTDPNet` with manual optimization.

    The core returns each parameter's STDP change ``dw``; it reaches the optimizer as a
    pseudo-gradient ``grad = -dw`` so SGD with momentum (or any optimizer) applies it.
    """

    def __init__(self, model: dict, stdp: dict, evaluate: dict, check_finite_every: int = 50):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.stdp, self.eval_steps = stdp, evaluate["settle_steps"]
        self.check_finite_every = check_finite_every
        self.plays = {name: (p["weight"], p["steps"]) for name, p in stdp["plays"].items()}
        self.net = ASTDPNet(model["hidden"], model["activation"], stdp["label_gain"], stdp["eps"],
                            init_scale=model["init_scale"], homeostasis=stdp.get("homeostasis", 0.0),
                            target_rate=stdp.get("target_rate", 0.05))
        self._weight_changes = self.net.weight_changes  # compile_step() swaps in a compiled one

    def compile_step(self) -> None:
        """Compile the core's weight-change computation (the whole per-batch aSTDP work)."""
        self._weight_changes = torch.compile(self.net.weight_changes, dynamic=False)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.net.parameters(), lr=self.stdp["eta"], momentum=self.stdp["momentum"],
                              weight_decay=self.stdp["weight_decay"])
        total = self.trainer.estimated_stepping_batches
        return {"optimizer": opt, "lr_scheduler": _schedule(opt, self.stdp["lr_schedule"], total)}

    def training_step(self, batch, batch_idx):
        x, y = batch
        changes, labels = self._weight_changes(
            x, F.one_hot(y, 10).to(x.dtype), self.plays, momentum=self.stdp["settle_momentum"])
        if self.trainer.world_size > 1:
            # Lightning does not all-reduce hand-set gradients: average the changes here.
            flat = torch.cat([c.flatten() for c in changes])
            flat = self.trainer.strategy.reduce(flat, reduce_op="mean")
            changes = list(torch.split(flat, [c.numel() for c in changes]))
        for p, dw in zip(self.net.parameters(), changes):
            p.grad = dw.view_as(p).neg_()
        self.optimizers().step()
        self.lr_schedulers().step()
        if (batch_idx + 1) % self.check_finite_every == 0:
            self._check_finite(f"step {self.global_step}")
        if labels is not None:  # counted on the device; logged once per epoch, not per step
            self._train_hits += (labels.argmax(1) == y).sum()
            self._train_seen += len(y)
            if self.trainer.is_last_batch:
                self.log("train/acc", self._train_hits / self._train_seen, on_step=False, on_epoch=True,
                         sync_dist=True)

    def on_train_epoch_start(self) -> None:
        self._train_hits, self._train_seen = torch.zeros((), device=self.device, dtype=torch.long), 0

    def on_train_epoch_end(self) -> None:
        self._check_finite(f"epoch {self.current_epoch}")

    def _check_finite(self, where: str) -> None:
        # One host sync every few steps, not every step: GPUs stay busy.
        finite = torch.stack([torch.isfinite(p).all() for p in self.net.parameters()]).all()
        if not finite:
            s = self.stdp
            raise DivergenceError(
                f"training diverged (non-finite weights) by {where} with stdp.eta={s['eta']}, "
                f"stdp.momentum={s['momentum']}, stdp.label_gain={s['label_gain']}; lower stdp.eta "
                f"(e.g. stdp.eta={s['eta'] / 4:g}) or stdp.momentum. The last good checkpoint is kept.")

    def _eval_step(self, batch, split: str):
        x, y = batch
        acc = (self.net.classify(x, self.eval_steps) == y).float().mean()
        recon = F.mse_loss(self.net.predict_pixels(x, self.eval_steps), x)
        self.log_dict({f"{split}/acc": acc, f"{split}/recon_mse": recon}, batch_size=len(y))

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.classify(x, self.eval_steps)


class BackpropMLP(pl.LightningModule):
    """The baseline: the same layer sizes trained the ordinary way (autograd, cross-entropy)."""

    def __init__(self, model: dict, stdp: dict, evaluate: dict):
        super().__init__()
        self.save_hyperparameters()
        sizes = [PIXELS.stop, *model["hidden"]]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.Sigmoid()]
        self.mlp = nn.Sequential(*layers, nn.Linear(sizes[-1], 10))
        self.stdp = stdp

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.model["lr"], momentum=self.stdp["momentum"],
                              weight_decay=self.stdp["weight_decay"])
        total = self.trainer.estimated_stepping_batches
        return {"optimizer": opt, "lr_scheduler": _schedule(opt, self.stdp["lr_schedule"], total)}

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.mlp(x)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True, batch_size=len(y))
        return F.cross_entropy(logits, y)

    def _eval_step(self, batch, split: str):
        x, y = batch
        self.log(f"{split}/acc", (self.mlp(x).argmax(1) == y).float().mean(), batch_size=len(y))

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).argmax(1)


MODULES = {"astdp": ASTDPModule, "backprop": BackpropMLP}


class LocalUpdateDDP(DDPStrategy):
    """Lightning's DDP without the autograd wrapper: aSTDP parameters never require grad.

    ``DistributedDataParallel`` refuses such a module and its gradient hooks would do
    nothing anyway; :class:`ASTDPModule` averages its weight changes itself. Ranks start
    from rank 0's weights, as DDP would make them.
    """

    def configure_ddp(self) -> None:
        if any(p.requires_grad for p in self.model.parameters()):  # the backprop baseline
            return super().configure_ddp()
        for p in self.model.parameters():
            torch.distributed.broadcast(p.data, src=0)
