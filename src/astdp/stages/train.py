"""Train stage: fit the model on MNIST's training images, keep the last checkpoint."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from astdp.config import validate
from astdp.stages._cli import CONFIG_PATH, output_dir, stage, wandb_logger


def train(cfg: DictConfig) -> dict:
    """Fit, write the checkpoint, ``metrics/train.json`` and ``plots/train_curve.json``."""
    conf = validate(cfg)
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint

    from astdp.callbacks import AtomicCheckpointIO, EpochHistory
    from astdp.datamodule import MNISTDataModule
    from astdp.io import write_json
    from astdp.lit import MODULES

    out = output_dir()
    pl.seed_everything(conf.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision(conf.matmul_precision)
    data = MNISTDataModule(conf.data.root, conf.data.batch_size, conf.data.val_size, conf.seed,
                           conf.evaluate.batch_size, conf.data.verify, conf.data.max_shift)
    module = MODULES[conf.model.kind](asdict(conf.model), asdict(conf.stdp), asdict(conf.evaluate))
    if conf.compile and conf.model.kind == "astdp":
        module.compile_step()
    ckpt = out / conf.ckpt_path
    history = EpochHistory(out / "plots" / "train_curve.json")
    # Saved at the end of each training epoch, after the module's finiteness check: a diverged
    # run never overwrites the last good checkpoint.
    checkpointing = ModelCheckpoint(dirpath=ckpt.parent, filename=ckpt.stem, enable_version_counter=False,
                                    save_on_train_epoch_end=True)
    extra = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    with wandb_logger(cfg, "train") as logger:
        trainer = instantiate(cfg.trainer, logger=logger or False, callbacks=[checkpointing, history, *extra],
                              plugins=[AtomicCheckpointIO()], default_root_dir=out)
        resume = str(ckpt) if conf.resume and ckpt.exists() else None
        trainer.fit(module, datamodule=data, ckpt_path=resume)
        last = history.rows[-1] if history.rows else {}
        times = [r["epoch_time_s"] for r in history.rows]
        metrics = {
            "epochs": trainer.current_epoch,
            "train_acc": last.get("train_acc"),
            "val_acc": last.get("val_acc"),
            "val_recon_mse": last.get("val_recon_mse"),
            "epoch_time_s": round(sum(times) / len(times), 3) if times else None,
        }
        if trainer.is_global_zero:
            write_json(out / "metrics" / "train.json", metrics)
    return metrics


@hydra.main(version_base=None, config_path=CONFIG_PATH, config_name="config")
@stage
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    print(" ".join(f"{k}={v}" for k, v in metrics.items()))
    return metrics[cfg.optimized_metric] if cfg.get("optimized_metric") else None  # for sweepers


if __name__ == "__main__":
    main()
