"""What makes a stage a command: a Hydra app on the packaged configs whose expected failures
are one line on stderr, with third-party noise that asks nothing of a user filtered out."""
from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, InstantiationException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import astdp.config  # noqa: F401  registers the schema that conf/config.yaml lists first
from astdp.config import invalid_key
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


def progress(stage: str) -> Callable[[str], None]:
    """A function that prints ``<stage>: <what>`` on stderr with the seconds since this call:
    a stage that works for minutes under ``dvc repro`` says what it is at."""
    import time

    start = time.perf_counter()
    return lambda what: print(f"{stage}: {what} ({time.perf_counter() - start:.0f}s)", file=sys.stderr, flush=True)


def _remove_if_empty(folder: Path) -> None:
    """A run that failed before writing anything leaves no empty run folder (nor an empty
    ``runs/`` that Hydra made for it): each empty folder from ``folder`` up, below ``.``."""
    for d in (folder, *folder.parents):
        if d.resolve() == Path.cwd() or not d.is_dir() or any(d.iterdir()):
            return
        d.rmdir()


_USER_FULL_ERROR = os.environ.get("HYDRA_FULL_ERROR") == "1"


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
        return invalid_key(key, cause)
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
            _remove_if_empty(output_dir())
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
