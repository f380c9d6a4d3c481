"""Lightning drivers: the aSTDP network trained by local updates, and the backprop baseline.

Both modules take their network, optimizer and schedule as plain ``_target_`` dicts (made
by ``hydra.utils.instantiate(cfg.model, ..., _recursive_=False, _convert_="all")``) and
build them here, so ``save_hyperparameters`` stores the config that built the model in
every checkpoint, as plain data: ``load_from_checkpoint(path, weights_only=True)`` rebuilds
the model without unpickling any object, and :func:`check_targets` refuses a checkpoint
whose config names anything but what :mod:`astdp.training.targets` allows.
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from astdp.errors import DivergenceError
from astdp.nets.rule import learning_step
from astdp.training.targets import check_targets


class _Optimized(pl.LightningModule):
    """What both modules share: optimizer and per-step schedule from their configs."""

    def param_groups(self) -> list[dict[str, Any]] | Any:
        """What the optimizer updates: all parameters at ``optim.lr`` unless a module says otherwise."""
        return self.parameters()

    def configure_optimizers(self):
        opt = instantiate(self.hparams.optim)(self.param_groups())
        schedule = instantiate(self.hparams.lr_schedule)(opt, self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _logs_now(self, steps_done: int) -> bool:
        """Whether to log this step's learning rate: on the steps Lightning writes to the logger
        (every ``trainer.log_every_n_steps`` optimizer steps, ``steps_done`` counting this one)
        and on the epoch's last, which the epoch's history keeps. A ``self.log`` call costs
        about a tenth of a small aSTDP step."""
        return steps_done % self.trainer.log_every_n_steps == 0 or self.trainer.is_last_batch

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["astdp_module"] = f"{type(self).__module__}.{type(self).__qualname__}"


class ASTDPModule(_Optimized):
    """Drives :class:`astdp.nets.visible.VisibleLabelNet` with manual optimization.

    The core returns each parameter's STDP change ``dw`` by name; it reaches the optimizer
    as a pseudo-gradient ``grad = -dw`` so SGD with momentum (or any optimizer) applies it.
    """

    def __init__(self, net: dict, plays: dict, settle_inertia: float, eval_settle_steps: int,
                 check_finite_every: int, optim: dict, lr_schedule: dict, hidden_lr_scale: float = 1.0,
                 feedback_lr: float | None = None, memory_lr: float | None = None):
        super().__init__()
        check_targets({"net": net, "optim": optim, "lr_schedule": lr_schedule})
        # off: checkpoints as before 0.33.0 (feedback_lr) and 0.36.0 (memory_lr)
        self.save_hyperparameters(ignore=[k for k, v in (("feedback_lr", feedback_lr), ("memory_lr", memory_lr)) if not v])
        self.automatic_optimization = False
        self.net = instantiate(net)
        self.plays = {name: (p["scale"], p["steps"]) for name, p in plays.items()}
        self.train_kw = {"inertia": settle_inertia}
        self.eval_steps = eval_settle_steps
        self.check_finite_every = check_finite_every
        # feedback_lr: the feedback synapses step by plain SGD, outside the optimizer. Adam would
        # rescale each one's step by its own history and bend the mirror of the read-out they learn.
        self.feedback_lr = feedback_lr
        self._weight_changes = self.net.weight_changes  # compile_step() swaps in a compiled one

    @property
    def feedback_names(self) -> list[str]:
        """The synapses that step by plain SGD outside the optimizer: the feedback synapses
        ``Fy`` with ``feedback_lr``, none without."""
        return [n for n, _ in self.net.named_parameters() if n.startswith("Fy.")] if self.feedback_lr else []

    @property
    def plain_names(self) -> list[str]:
        """The parameters that step as the rule hands them, outside the optimizer: the feedback
        synapses with ``feedback_lr``, and the pixels' mean rates ``c`` (``model.net.center``: a
        running mean, not a synapse: the net's change already holds its rate)."""
        return [*self.feedback_names, *(["c"] if getattr(self.net, "center", 0) else [])]

    def plain_rates(self, lr_now: float) -> dict[str, float] | None:
        """Each plain-SGD parameter's learning rate: ``feedback_lr`` times the optimizer's rate now
        over its base rate (a float: no host sync) for the feedback synapses, 1 for ``c``."""
        rates = {"c": 1.0} if "c" in self.plain_names else {}
        if self.feedback_lr:
            rates.update(dict.fromkeys(self.feedback_names, self.feedback_lr * lr_now / self.hparams.optim["lr"]))
        return rates or None

    def param_groups(self) -> list[dict[str, Any]] | Any:
        """Synapses between two hidden layers (``W.l``, ``V.l`` with l >= 1) learn at ``optim.lr``
        times ``hidden_lr_scale``. Adam moves every synapse by about its learning rate whatever the
        change's size, so a neuron's drive moves by that times the summed activity of its inputs:
        a dense hidden layer sums several times what the mostly dark pixels do, and the layer above
        it saturates (the same activity for every image) within the first few hundred steps.
        With ``feedback_lr`` the feedback synapses are none of the optimizer's: they step by plain SGD.
        With ``memory_lr`` the memory's synapses (``M``, ``bm``) learn at that rate."""
        own = [p for n, p in self.net.named_parameters() if n not in self.plain_names]
        scale, memory_lr = self.hparams.hidden_lr_scale, self.hparams.get("memory_lr")
        groups = {"between": ([*self.net.W[1:], *self.net.V[1:]] if scale != 1 else [], self.hparams.optim["lr"] * scale),
                  "memory": ([self.net.M, self.net.bm] if memory_lr else [], memory_lr)}
        groups = [{"params": ps, "lr": lr} for ps, lr in groups.values() if ps]
        if not groups:  # one group (one hidden layer: nothing between layers): earlier runs' checkpoints resume
            return own
        rest = [p for p in own if all(p is not q for g in groups for q in g["params"])]
        return [{"params": rest}, *groups]

    def compile_step(self) -> None:
        """Compile the core's weight-change computation (the whole per-batch aSTDP work)."""
        self._weight_changes = torch.compile(self.net.weight_changes, dynamic=False)

    def training_step(self, batch, batch_idx):
        x, y = batch
        changes, labels = self._weight_changes(
            x, F.one_hot(y, self.net.n_labels).to(x.dtype), self.plays, **self.train_kw)
        params = dict(self.net.named_parameters())
        if changes.keys() != params.keys():
            raise RuntimeError(f"the rule changed {sorted(changes)} but the network has {sorted(params)}")
        if self.trainer.world_size > 1:
            # Lightning does not all-reduce hand-set gradients: average the changes here.
            names = list(params)
            flat = torch.cat([changes[n].flatten() for n in names])
            flat = self.trainer.strategy.reduce(flat, reduce_op="mean")
            changes = dict(zip(names, torch.split(flat, [changes[n].numel() for n in names])))
        schedule = self.lr_schedulers()
        learning_step(self.optimizers(), params.items(), changes, self.plain_rates(schedule.get_last_lr()[0]))
        if self._logs_now(self.global_step):  # the optimizer has stepped
            self.log("lr", schedule.get_last_lr()[0], on_step=True, on_epoch=False)  # a float: no host sync
        schedule.step()
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

    on_train_start = on_train_epoch_start  # a run resumed mid-epoch starts counting there

    def on_train_epoch_end(self) -> None:
        self._check_finite(f"epoch {self.current_epoch}")

    def _check_finite(self, where: str) -> None:
        # One host sync every few steps, not every step: GPUs stay busy.
        finite = torch.stack([torch.isfinite(p).all() for p in self.net.parameters()]).all()
        if not finite:
            lr, gain = self.hparams.optim["lr"], self.hparams.net["label_gain"]
            raise DivergenceError(
                f"training diverged (non-finite weights) by {where} with optim.lr={lr}, "
                f"model.net.label_gain={gain}; lower optim.lr (e.g. optim.lr={lr / 4:g}) or "
                f"model.net.label_gain. The last good checkpoint is kept.")

    def validation_step(self, batch, batch_idx):
        x, y = batch
        acc = (self.net.classify(x, self.eval_steps) == y).float().mean()
        recon = F.mse_loss(self.net.predict_pixels(x, self.eval_steps), x)
        self.log_dict({"val/acc": acc, "val/recon_mse": recon}, batch_size=len(y))

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.classify(x, self.eval_steps)


class BackpropModule(_Optimized):
    """The baseline: the same layer sizes trained the ordinary way (autograd, cross-entropy)."""

    def __init__(self, net: dict, optim: dict, lr_schedule: dict):
        super().__init__()
        check_targets({"net": net, "optim": optim, "lr_schedule": lr_schedule})
        self.save_hyperparameters()
        self.mlp = instantiate(net)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.mlp(x)  # in training mode: its dropout and input dropout act
        if self._logs_now(self.global_step + 1):  # Lightning steps the optimizer after this
            self.log("lr", self.lr_schedulers().get_last_lr()[0], on_step=True, on_epoch=False)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True, batch_size=len(y))
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/acc", (self.mlp(x).argmax(1) == y).float().mean(), batch_size=len(y))

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).argmax(1)
