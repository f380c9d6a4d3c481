"""What every stage shares: config path, one-line errors, W&B runs that always finish."""
from __future__ import annotations

import functools
import os
import sys
import traceback
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

CONFIG_PATH = str(Path(__file__).resolve().parents[3] / "conf")


class StageError(RuntimeError):
    """A user-facing failure: missing input, damaged file. The message says what to do."""


def expected_errors() -> tuple[type[BaseException], ...]:
    from astdp.config import ConfigError
    from astdp.lit import DivergenceError
    from astdp.mnist import DataError

    from hydra.errors import InstantiationException

    return ConfigError, DataError, DivergenceError, StageError, InstantiationException


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


def _verbose() -> bool:
    try:
        return bool(HydraConfig.get().verbose)
    except ValueError:
        return False


def stage(fn: Callable[[DictConfig], object]) -> Callable[[DictConfig], object]:
    """Turn expected failures into one line on stderr and exit status 1.

    ``hydra.verbose=true`` (or HYDRA_FULL_ERROR=1) shows the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig):
        try:
            return fn(cfg)
        except expected_errors() as e:
            if _verbose() or os.environ.get("HYDRA_FULL_ERROR") == "1":
                traceback.print_exc()
            message = " ".join(str(e).split())  # Lightning's messages span lines
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)

    return wrapper


@contextmanager
def wandb_logger(cfg: DictConfig, job_type: str) -> Iterator:
    """W&B logger from ``cfg.logger`` (None when ``logger=none``), its run finished on exit.

    Lightning never calls ``wandb.finish()``; without it the next run in this process
    (a multirun job, a test) would reuse this one.
    """
    logger = None
    if cfg.get("logger") is not None:
        kwargs = OmegaConf.to_container(cfg.logger, resolve=True)
        if os.environ.get("WANDB_MODE") == "online":
            kwargs["offline"] = False
        kwargs.update(name=f"{cfg.name}-{job_type}{_job_suffix()}", job_type=job_type, group=cfg.name,
                      config=OmegaConf.to_container(cfg, resolve=True))
        logger = get_class(kwargs.pop("_target_"))(**kwargs)
    exit_code = 1
    try:
        yield logger
        exit_code = 0
    finally:
        if logger is not None:
            import wandb

            if wandb.run is not None:
                wandb.finish(exit_code=exit_code)


def load_model(path: str | Path, device=None):
    """The trained Lightning module in ``path``, or a one-line :class:`StageError` saying what to run."""
    import torch

    from astdp.lit import MODULES

    path = Path(path)
    if not path.is_file():
        raise StageError(f"checkpoint {path} is missing; train first with `astdp-train` (or `dvc repro train`), "
                         "or pass ckpt_path=FILE")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        kind = ckpt["hyper_parameters"]["model"]["kind"]
        module = MODULES[kind](**ckpt["hyper_parameters"])
        module.load_state_dict(ckpt["state_dict"])
    except Exception as e:  # any failure here means the file is not a usable checkpoint
        raise StageError(f"checkpoint {path} is damaged or not an astdp checkpoint ({type(e).__name__}: "
                         f"{str(e)[:120]}); delete it and retrain with `astdp-train`") from None
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return module.to(device).eval()


def occlusion_mask(n: int, side: str, device=None):
    """Boolean (n, 784) mask of the *known* pixels when half the image (``side``) is hidden."""
    import torch

    known = torch.ones(28, 28, dtype=torch.bool, device=device)
    half = {"bottom": (slice(14, 28), slice(None)), "top": (slice(0, 14), slice(None)),
            "left": (slice(None), slice(0, 14)), "right": (slice(None), slice(14, 28))}[side]
    known[half] = False
    return known.flatten().expand(n, -1)
