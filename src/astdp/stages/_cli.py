"""What every stage shares: the packaged configs, the sections a stage may read, one-line
errors, W&B runs that always finish, loading a checkpoint safely."""
from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import astdp.config  # registers the schema that conf/config.yaml lists first
from astdp.errors import ConfigError, DataError, DivergenceError, StageError

# conf/ ships inside the package as astdp.conf (pyproject maps it), so an installed
# package finds it from any folder; the DVC stages add `--config-dir . --config-name params`.
CONFIG_PATH = "pkg://astdp.conf"


EXPECTED_ERRORS = (ConfigError, DataError, DivergenceError, StageError, InstantiationException)


def output_dir() -> Path:
    """Hydra's run folder: ``.`` for single runs (fixed paths DVC tracks), one per multirun job."""
    try:
        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # called outside a Hydra app (tests, notebooks)
        return Path(".")


def _job_suffix() -> str:
    """``-<job number>`` inside a multirun, so each sweep job is a W&B run of its own name."""
    from hydra.types import RunMode

    try:
        hc = HydraConfig.get()
    except ValueError:
        return ""
    return f"-{hc.job.num}" if hc.mode == RunMode.MULTIRUN else ""


def sections(cfg: DictConfig, params: Sequence[str]) -> DictConfig:
    """Validate the whole config, then keep only ``params`` (dotted keys), resolved, as plain values.

    Each stage lists in ``PARAMS`` exactly the keys that ``dvc.yaml`` declares for it (a test
    holds the two equal) and reads its config only through this: reading any other key
    fails, so DVC knows every parameter a stage depends on.
    """
    astdp.config.validate(cfg)
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    kept: dict = {}
    for key in params:
        *parents, leaf = key.split(".")
        src, dst = plain, kept
        for part in parents:
            src, dst = src[part], dst.setdefault(part, {})
        dst[leaf] = src[leaf]
    out = OmegaConf.create(kept)
    OmegaConf.set_struct(out, True)
    return out


_USER_FULL_ERROR = os.environ.get("HYDRA_FULL_ERROR") == "1"


def _commit_tag() -> list[str]:
    """``commit:<sha>`` of the checkout the run is in (a DVC experiment's own), if it is one."""
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    return [f"commit:{done.stdout.strip()}"] if done.returncode == 0 else []


def _verbose() -> bool:
    try:
        return bool(HydraConfig.get().verbose) or _USER_FULL_ERROR
    except ValueError:
        return _USER_FULL_ERROR


def _one_line(e: BaseException) -> str:
    """Hydra's and OmegaConf's composition errors, as one line that names the key."""
    cause = e.__cause__ if isinstance(e.__cause__, OmegaConfBaseException) else e
    key = getattr(cause, "full_key", None)
    if key:
        return f"invalid config key {key}: {str(cause).splitlines()[0]}"
    text = str(e).split("Config search path")[0]
    return " ".join(text.split())


def stage(fn: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """Turn expected failures into one line on stderr and exit status 1.

    ``hydra.verbose=true`` (or HYDRA_FULL_ERROR=1) shows the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig):
        try:
            return fn(cfg)
        except EXPECTED_ERRORS as e:
            if _verbose():
                traceback.print_exc()
            message = " ".join(str(e).split())  # Lightning's messages span lines
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)

    return wrapper


def quiet_known_noise() -> None:
    """Silence third-party messages that ask nothing of an astdp user (each filter says why)."""
    # Our train loader is one process reading device tensors: the multi-worker caveat does not apply.
    warnings.filterwarnings("ignore", message=r".*`IterableDataset` has `__len__` defined")
    # Lightning's own internals call a torch API that torch deprecated; nothing for users to change.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    # An advertisement for another logging service, printed by every fit.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "Tip: For seamless cloud" not in record.getMessage())
    # Every save says it defaults to a full checkpoint, which is what resuming needs.
    logging.getLogger("pytorch_lightning.trainer.connectors.checkpoint_connector").addFilter(
        lambda record: "`weights_only` was not set" not in record.getMessage())


def cli(fn: Callable[[DictConfig], object]) -> Callable[[], object]:
    """A stage's command: a Hydra app on the packaged ``conf/`` whose every expected failure is
    one line on stderr, Hydra's own composition errors (unknown key, wrong type, a choice
    not offered) included."""
    app = hydra.main(version_base=None, config_path=CONFIG_PATH, config_name="config")(stage(fn))

    @functools.wraps(fn)
    def run():
        quiet_known_noise()
        if _USER_FULL_ERROR:
            return app()
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors instead of printing a report
        try:
            return app()
        except (HydraException, OmegaConfBaseException) as e:
            print(f"error: {_one_line(e)}", file=sys.stderr)
            sys.exit(1)

    return run


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
                wandb.finish(exit_code=exit_code)
