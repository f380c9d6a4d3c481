"""Lightning drivers: the aSTDP network trained by local updates, and the backprop baseline.

Both modules take their network, optimizer and schedule as plain ``_target_`` dicts (made
by ``hydra.utils.instantiate(cfg.model, ..., _recursive_=False, _convert_="all")``) and
build them here, so ``save_hyperparameters`` stores the config that built the model in
every checkpoint, as plain data: ``load_from_checkpoint(path, weights_only=True)`` rebuilds
the model without unpickling any object, and :func:`check_targets` refuses a checkpoint
whose config names anything but the classes below.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import get_object, instantiate
from pytorch_lightning.strategies import DDPStrategy
from torch import nn

from astdp.config import NETS as ASTDP_NETS
from astdp.errors import DivergenceError, StageError
from astdp.io import DIGEST_KEY, content_digest
from astdp.rule import learning_step


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning rate cosine-annealed from its base value to 0 at ``total_steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total_steps) / max(total_steps, 1))))


def constant_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0)


def mlp(hidden: list[int], image_shape: list[int], n_classes: int, every_layer_votes: bool = False,
        dropout: float = 0.0) -> nn.Module:
    """Sigmoid MLP ``pixels -> hidden... -> classes`` (logits): the baseline's network.

    ``every_layer_votes``: every hidden layer adds its own linear vote to the logits, as
    :class:`astdp.deep.DeepNet`'s label units hear every layer (the twin of ``model=deep``).
    With one hidden layer both are the same network, built in the same order.
    ``dropout``: that share of each hidden layer's units is dropped in training, as
    ``model=deep``'s classify play drops them (0: no dropout module, the same parameters).
    """
    sizes = [math.prod(image_shape), *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.Sigmoid(), *([nn.Dropout(dropout)] if dropout else [])]
    if not every_layer_votes:
        return nn.Sequential(*layers, nn.Linear(sizes[-1], n_classes))
    return LayerVotes(layers, [nn.Linear(n, n_classes, bias=k == len(hidden) - 1) for k, n in enumerate(hidden)])


class LayerVotes(nn.Module):
    """Logits = the sum of each hidden layer's linear vote (one bias, the top vote's)."""

    def __init__(self, layers: list[nn.Module], votes: list[nn.Module]) -> None:
        super().__init__()
        self.layers, self.votes = nn.ModuleList(layers), nn.ModuleList(votes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = []
        per_layer = len(self.layers) // len(self.votes)  # Linear, Sigmoid (, Dropout)
        for k in range(0, len(self.layers), per_layer):
            for module in self.layers[k:k + per_layer]:
                x = module(x)
            codes.append(x)  # a dropped unit's vote is dropped with it
        return sum(vote(h) for vote, h in zip(self.votes, codes))


NETS = {*ASTDP_NETS, "astdp.lit.mlp"}
SCHEDULES = {"astdp.lit.cosine_schedule", "astdp.lit.constant_schedule"}


def _targets(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every ``_target_`` in a config, at any depth, with where it sits."""
    if isinstance(node, dict):
        own = [(path, node["_target_"])] if "_target_" in node else []
        return own + [t for k, v in node.items() for t in _targets(v, f"{path}.{k}")]
    if isinstance(node, (list, tuple)):
        return [t for i, v in enumerate(node) for t in _targets(v, f"{path}[{i}]")]
    return []


def check_targets(hparams: dict[str, Any]) -> None:
    """Refuse hyperparameters that would build anything but a network, optimizer or schedule of ours.

    A checkpoint's config is data from whoever sent the file: instantiating an arbitrary
    ``_target_`` from it (at any depth: instantiate is recursive) would run arbitrary code.
    """
    def allowed(key: str, target: Any) -> bool:
        if key == "optim":
            obj = get_object(target) if isinstance(target, str) and target.startswith("torch.optim.") else None
            return isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
        return target in {"net": NETS, "lr_schedule": SCHEDULES}.get(key, ())

    for key, value in hparams.items():
        for path, target in _targets(value):
            if path or not allowed(key, target):
                raise ValueError(f"hyper-parameter {key}{path} names {target!r}, which this package does not build")


class _Optimized(pl.LightningModule):
    """What both modules share: optimizer and per-step schedule from their configs."""

    def param_groups(self) -> list[dict[str, Any]] | Any:
        """What the optimizer updates: all parameters at ``optim.lr`` unless a module says otherwise."""
        return self.parameters()

    def configure_optimizers(self):
        opt = instantiate(self.hparams.optim)(self.param_groups())
        schedule = instantiate(self.hparams.lr_schedule)(opt, self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["astdp_module"] = f"{type(self).__module__}.{type(self).__qualname__}"


class ASTDPModule(_Optimized):
    """Drives :class:`astdp.core.ASTDPNet` with manual optimization.

    The core returns each parameter's STDP change ``dw`` by name; it reaches the optimizer
    as a pseudo-gradient ``grad = -dw`` so SGD with momentum (or any optimizer) applies it.
    """

    def __init__(self, net: dict, plays: dict, settle_inertia: float, eval_settle_steps: int,
                 check_finite_every: int, optim: dict, lr_schedule: dict, dropout: float = 0.0,
                 label_smoothing: float = 0.0, input_dropout: float = 0.0, hidden_lr_scale: float = 1.0):
        super().__init__()
        check_targets({"net": net, "optim": optim, "lr_schedule": lr_schedule})
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.net = instantiate(net)
        self.plays = {name: (p["scale"], p["steps"]) for name, p in plays.items()}
        # DeepNet's keys (0: off, and the only value ASTDPNet takes; config validation says so)
        deep_kw = {"dropout": dropout, "label_smoothing": label_smoothing, "input_dropout": input_dropout}
        self.train_kw = {"inertia": settle_inertia, **{k: v for k, v in deep_kw.items() if v}}
        self.eval_steps = eval_settle_steps
        self.check_finite_every = check_finite_every
        self._weight_changes = self.net.weight_changes  # compile_step() swaps in a compiled one

    def param_groups(self) -> list[dict[str, Any]] | Any:
        """Synapses between two hidden layers (``W.l``, ``V.l`` with l >= 1) learn at ``optim.lr``
        times ``hidden_lr_scale``. Adam moves every synapse by about its learning rate whatever the
        change's size, so a neuron's drive moves by that times the summed activity of its inputs:
        a dense hidden layer sums several times what the mostly dark pixels do, and the layer above
        it saturates (the same activity for every image) within the first few hundred steps."""
        scale = self.hparams.hidden_lr_scale
        if scale == 1:
            return self.parameters()  # one group: the earlier runs' optimizer, and their checkpoints resume
        between = [*self.net.W[1:], *self.net.V[1:]]
        if not between:  # one hidden layer: nothing between layers
            return self.parameters()
        rest = [p for p in self.net.parameters() if all(p is not q for q in between)]
        return [{"params": rest}, {"params": between, "lr": self.hparams.optim["lr"] * scale}]

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
        learning_step(self.optimizers(), params.items(), changes)
        schedule = self.lr_schedulers()
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


class BackpropMLP(_Optimized):
    """The baseline: the same layer sizes trained the ordinary way (autograd, cross-entropy)."""

    def __init__(self, net: dict, optim: dict, lr_schedule: dict, input_dropout: float = 0.0, dropout: float = 0.0):
        super().__init__()
        check_targets({"net": net, "optim": optim, "lr_schedule": lr_schedule})
        self.save_hyperparameters()
        self.mlp = instantiate(net, dropout=dropout)
        self.input_dropout = input_dropout

    def training_step(self, batch, batch_idx):
        x, y = batch
        if self.input_dropout:  # as model=deep's classify play sees its images (0: the RNG is not touched)
            x = F.dropout(x, self.input_dropout)
        logits = self.mlp(x)
        self.log("lr", self.lr_schedulers().get_last_lr()[0], on_step=True, on_epoch=False)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True, batch_size=len(y))
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/acc", (self.mlp(x).argmax(1) == y).float().mean(), batch_size=len(y))

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).argmax(1)


MODULES = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in (ASTDPModule, BackpropMLP)}


def _not_ours(path: Path, e: Exception) -> StageError:
    reason = " ".join(f"{type(e).__name__}: {e}".split())[:160]
    return StageError(f"checkpoint {path} is damaged or not an astdp checkpoint ({reason}); "
                      "delete it and retrain with `astdp-train`")


def check_checkpoint(path: str | Path) -> type[_Optimized]:
    """The module class a checkpoint names, after reading it without running anything in it.

    ``weights_only=True`` unpickles tensors and plain data only; the content must match the
    digest it was saved with (a flipped byte is caught, not loaded); the class must be one of
    ours and its config may name only what :func:`check_targets` allows. Any failure is one
    :class:`StageError` saying what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise StageError(f"checkpoint {path} is missing; train first with `astdp-train` (or `dvc repro train`), "
                         "or pass ckpt_path=FILE")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if ckpt.pop(DIGEST_KEY) != content_digest(ckpt):
            raise ValueError("its content does not match the digest it was saved with")
        cls = MODULES[ckpt["astdp_module"]]
        check_targets(ckpt["hyper_parameters"])
    except Exception as e:  # any failure here means the file is not a usable checkpoint
        raise _not_ours(path, e) from None
    return cls


def load_model(path: str | Path, device=None) -> pl.LightningModule:
    """The trained Lightning module in ``path``, rebuilt from the config the checkpoint carries
    by Lightning's own ``load_from_checkpoint`` (``weights_only=True``)."""
    cls = check_checkpoint(path)
    try:
        module = cls.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _not_ours(Path(path), e) from None
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return module.to(device).eval()


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
