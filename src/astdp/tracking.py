"""W&B runs of the stages: named, grouped and tagged so a person can tell them apart, and always
finished (offline by default: ``conf/logger/wandb.yaml``)."""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from typing import Iterator

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def _job_suffix() -> str:
    """``-<job number>`` inside a multirun, so each sweep job is a W&B run of its own name."""
    from hydra.types import RunMode

    try:
        hc = HydraConfig.get()
    except ValueError:
        return ""
    return f"-{hc.job.num}" if hc.mode == RunMode.MULTIRUN else ""


def _commit_tag() -> list[str]:
    """``commit:<sha>`` of the checkout the run is in (a DVC experiment's own), if it is one."""
    done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    return [f"commit:{done.stdout.strip()}"] if done.returncode == 0 else []


@contextmanager
def wandb_logger(cfg: DictConfig, job_type: str) -> Iterator:
    """W&B logger from ``cfg.logger`` (None when ``logger=none``), its run finished on exit.

    Lightning never calls ``wandb.finish()``; without it the next run in this process
    (a multirun job, a test) would reuse this one.
    """
    from hydra.utils import instantiate

    logger = None
    if cfg.logger is not None:
        # Runs of one DVC experiment (or one preset, outside DVC) form a group; tags say what made them.
        group = os.environ.get("DVC_EXP_NAME") or cfg.name
        spec = OmegaConf.to_container(cfg.logger) | {
            "name": f"{group}-{job_type}{_job_suffix()}", "job_type": job_type, "group": group,
            "tags": [f"preset:{cfg.name}", *_commit_tag()],
            "config": OmegaConf.to_container(cfg, resolve=True)}  # the run's config: data, not objects to build
        if os.environ.get("WANDB_MODE") == "online":
            spec["offline"] = False
        # W&B's banners and sparklines fill most of a pipeline's console: one line per run instead (below).
        spec["settings"] = {"silent": True}
        logger = instantiate(spec, _recursive_=False, _convert_="all")
        # Lightning always passes wandb.init an `anonymous` setting, even unset, and W&B then warns
        # that the setting "has no effect" on every run: drop the key before the run starts.
        getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    exit_code = 1
    try:
        yield logger
        exit_code = 0
    finally:
        if logger is not None:
            import wandb

            if wandb.run is not None:
                folder = os.path.relpath(os.path.dirname(wandb.run.dir))
                wandb.finish(exit_code=exit_code)
                print(f"W&B run {spec['name']} saved in {folder}" + (" (upload: wandb sync " + folder + ")"
                                                                     if spec.get("offline", True) else ""))
