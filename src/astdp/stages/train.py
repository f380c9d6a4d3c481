"""Train stage: fit the model on MNIST's training images, keep the last checkpoint."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig

from astdp.errors import StageError
from astdp.config import sections
from astdp.stages._cli import cli, output_dir
from astdp.tracking import model_artifact_name, used, wandb_logger

# The config this stage reads: the same list as its `params` in dvc.yaml (a test holds them equal).
PARAMS = ["name", "seed", "ckpt_path", "resume", "matmul_precision", "compile", "optimized_metric",
          "data", "model", "optim", "lr_schedule", "trainer", "callbacks", "logger"]


@contextmanager
def flushed_denormals():
    """Flush denormal floats to zero while it runs, then restore IEEE floats (the process default).

    Saturated sigmoids and their rises underflow below 1e-38 into denormals, which x86 CPUs
    multiply in slow microcode: aSTDP's matmuls ran several times slower. Zero changes
    nothing the rule can resolve. A no-op on GPUs and on CPUs without the mode.
    """
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def layer_probes_on_validation(module, data) -> list[float]:
    """Each hidden layer's linear probe, fitted on the training split, scored on validation:
    what an unsupervised run is searched by, and whether each layer does work."""
    import torch

    from astdp.measure.probe import probe_layers

    train, val = (tuple(t.to(module.device) for t in data.splits[s]) for s in ("train", "val"))
    with torch.no_grad():
        return probe_layers(lambda b: module.net.hidden_codes(b, module.eval_steps), train, val,
                            data.eval_batch_size)


def train(cfg: DictConfig) -> dict:
    """Fit; write the checkpoint, ``metrics/train.json`` and ``plots/train_curve.json``."""
    cfg = sections(cfg, PARAMS)
    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from astdp.io import write_json
    from astdp.training.checkpoints import check_checkpoint

    out = output_dir()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    data = instantiate(cfg.data)
    # _recursive_=False: the module builds its network, optimizer and schedule itself, from
    # plain dicts, so its checkpoint carries the config that built it (see astdp.training.modules).
    module = instantiate(cfg.model, optim=cfg.optim, lr_schedule=cfg.lr_schedule, _recursive_=False,
                         _convert_="all")
    if cfg.compile and hasattr(module, "compile_step"):
        module.compile_step()
    callbacks = {name: instantiate(c) for name, c in cfg.callbacks.items()}
    ckpt = out / cfg.ckpt_path
    with wandb_logger(cfg, "train") as logger:
        trainer = instantiate(cfg.trainer, logger=logger or False, callbacks=list(callbacks.values()),
                              default_root_dir=out)
        if logger is not None and trainer.is_global_zero:  # lineage: the data this model learns from
            used(logger, cfg.data.name, "dataset", data_files(cfg.data))
        resume = str(ckpt) if cfg.resume and ckpt.exists() else None
        if resume:
            check_checkpoint(resume)  # one line, before Lightning reads it (weights only, too)
        try:
            with flushed_denormals():
                trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
        except SIGTERMException:
            same_folder = "" if str(out) == "." else f" hydra.run.dir={out}"
            raise StageError(f"stopped by SIGTERM at step {trainer.global_step}; the run so far is in {ckpt}. "
                             f"Resume with the same command and resume=true{same_folder}") from None
        rows = callbacks["history"].rows
        last = rows[-1] if rows else {}
        metrics = {
            "epochs": trainer.current_epoch,
            "train_acc": last.get("train_acc"),
            "val_acc": last.get("val_acc"),
            "val_recon_mse": last.get("val_recon_mse"),
        }
        if trainer.is_global_zero and hasattr(module, "net") and hasattr(module.net, "hidden_codes"):
            metrics["val_readout_accuracy"] = layer_probes_on_validation(module, data)
        if trainer.is_global_zero:
            write_json(out / "metrics" / "train.json", metrics)
            if logger is not None:  # the trained model travels with its run (offline too: `wandb sync`)
                import wandb

                artifact = wandb.Artifact(model_artifact_name(logger), type="model", metadata=metrics)
                artifact.add_file(str(ckpt))
                logger.experiment.log_artifact(artifact)
    return metrics


def data_files(d: DictConfig) -> list[Path]:
    """The dataset's files as they lie in ``d.root`` (each uncompressed or gzipped)."""
    found = [next((p for p in (Path(d.root) / n, Path(d.root) / f"{n}.gz") if p.exists()), None) for n in d.files]
    return [p for p in found if p is not None]


@cli
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    print(" ".join(f"{k}={v}" for k, v in metrics.items()))
    return metrics[cfg.optimized_metric] if cfg.optimized_metric else None  # for sweepers


if __name__ == "__main__":
    main()
