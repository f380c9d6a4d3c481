"""W&B runs of the stages: named, grouped and tagged so a person can tell them apart, and always
finished (offline by default: ``conf/logger/wandb.yaml``)."""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
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


def runs_folder(save_dir: str) -> str:
    """Where W&B keeps the runs: ``WANDB_DIR`` if set; for a DVC experiment run in a temporary
    copy (``dvc exp run --temp``, the queue), which DVC deletes when it ends, the workspace's
    own ``save_dir``; else ``save_dir``."""
    if os.environ.get("WANDB_DIR"):
        return os.environ["WANDB_DIR"]
    here, marker = str(Path.cwd().resolve()), os.sep + os.path.join(".dvc", "tmp", "exps") + os.sep
    if marker in here + os.sep:
        return os.path.join(here.split(marker)[0], save_dir)
    return save_dir


def used(logger, name: str, kind: str, files) -> None:
    """Declare ``files`` as an input of this W&B run, so that W&B's lineage joins the run that
    made them to the runs that used them: an artifact ``name`` of type ``kind``, used by the run.
    W&B cannot declare a used artifact offline (``wandb`` raises), so an offline run records
    the artifact's name and each file's sha256 in its config (``used_<kind>``) instead."""
    import hashlib

    import wandb

    run = logger.experiment
    if run.offline:
        digests = {Path(f).name: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}
        run.config.update({f"used_{kind}": {"artifact": name, "sha256": digests}}, allow_val_change=True)
        return
    artifact = wandb.Artifact(name, type=kind)
    for f in files:
        artifact.add_file(str(f))
    run.use_artifact(artifact)


def model_artifact_name(logger) -> str:
    """The name the train run gives its model and later stages use: one per experiment (group)."""
    return f"{logger.experiment.group}-model"


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
        seed = f"-s{cfg.seed}" if "seed" in cfg else ""  # a stage whose result depends on it
        spec = OmegaConf.to_container(cfg.logger)
        spec |= {
            "save_dir": runs_folder(spec.get("save_dir", ".")),
            "name": f"{group}{seed}-{job_type}{_job_suffix()}", "job_type": job_type, "group": group,
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
                folder = os.path.dirname(wandb.run.dir)
                inside = not os.path.relpath(folder).startswith("..")
                folder = os.path.relpath(folder) if inside else folder
                wandb.finish(exit_code=exit_code)
                print(f"W&B run {spec['name']} saved in {folder}" + (" (upload: wandb sync " + folder + ")"
                                                                     if spec.get("offline", True) else ""))
