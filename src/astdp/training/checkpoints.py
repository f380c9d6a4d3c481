"""Checkpoints: written whole or not at all, read without running anything in them.

:func:`check_checkpoint` reads a checkpoint with ``weights_only=True``, checks its digest,
and refuses one whose config names anything but what this package builds
(:mod:`astdp.training.targets`).
"""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from astdp.errors import StageError
from astdp.io import DIGEST_KEY, atomic_path, content_digest
from astdp.training.modules import ASTDPModule, BackpropModule
from astdp.training.targets import MOVED, check_targets, into_net, moved


MODULES = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in (ASTDPModule, BackpropModule)}


def _not_ours(path: Path, e: Exception) -> StageError:
    reason = " ".join(f"{type(e).__name__}: {e}".split())[:160]
    return StageError(f"checkpoint {path} is damaged or not an astdp checkpoint ({reason}); "
                      "delete it and retrain with `astdp-train`")


def check_checkpoint(path: str | Path) -> tuple[type[pl.LightningModule], dict]:
    """The module class a checkpoint names, after reading it without running anything in it.

    ``weights_only=True`` unpickles tensors and plain data only; the content must match the
    digest it was saved with (a flipped byte is caught, not loaded); the class must be one of
    ours and its config may name only what :func:`check_targets` allows. Any failure is one
    :class:`StageError` saying what to do. Returns the class and the hyperparameters, with
    targets that have moved since the checkpoint was saved named by their new paths.
    """
    path = Path(path)
    if not path.is_file():
        raise StageError(f"checkpoint {path} is missing; train first with `astdp-train` (or `dvc repro train`), "
                         "or name a trained one: hydra.run.dir=<the training run's folder> or ckpt_path=FILE")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if ckpt.pop(DIGEST_KEY) != content_digest(ckpt):
            raise ValueError("its content does not match the digest it was saved with")
        cls = MODULES[MOVED.get(ckpt["astdp_module"], ckpt["astdp_module"])]
        check_targets(moved(ckpt["hyper_parameters"]))
    except Exception as e:  # any failure here means the file is not a usable checkpoint
        raise _not_ours(path, e) from None
    return cls, into_net(moved(ckpt["hyper_parameters"]))


def load_model(path: str | Path, device=None) -> pl.LightningModule:
    """The trained Lightning module in ``path``, rebuilt from the config the checkpoint carries
    by Lightning's own ``load_from_checkpoint`` (``weights_only=True``)."""
    cls, hparams = check_checkpoint(path)
    try:  # the checked hyperparameters override the saved ones (the same, or the same under moved names)
        module = cls.load_from_checkpoint(path, map_location="cpu", weights_only=True, **hparams)
    except Exception as e:
        raise _not_ours(Path(path), e) from None
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return module.to(device).eval()


class LastCheckpoint(Checkpoint):
    """The run's checkpoint at one fixed path, rewritten at the end of every training epoch.

    As a :class:`~pytorch_lightning.callbacks.Checkpoint` it runs after the module's own
    epoch-end hook, which stops a diverged run first: a diverged run never overwrites the
    last good checkpoint. On SIGTERM (preemption) it saves at the step boundary where
    Lightning stops, so ``resume=true`` continues from there.
    """

    def __init__(self, path: str):
        self.path = path

    def file(self, trainer) -> Path:
        return Path(trainer.default_root_dir) / self.path

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        trainer.save_checkpoint(self.file(trainer))  # the whole run (optimizer, loops): resumable

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.file(trainer))  # the whole run (optimizer, loops): resumable


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary name and renamed: a kill never leaves half a file.

    The file carries :func:`~astdp.io.content_digest` of its content, which loading checks.
    Saved through an open file, not a path: ``torch.save`` names the archive's inner folder
    after a path, and the temporary name is random, so the bytes would differ per run.
    """

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        checkpoint = {**checkpoint, DIGEST_KEY: content_digest(checkpoint)}  # checked on loading
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            torch.save(checkpoint, fh)
