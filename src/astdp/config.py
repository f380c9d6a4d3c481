"""The config schema: every key a user may set, its type and its allowed range.

Hydra composes ``conf/`` (or DVC's ``params.yaml``); :func:`validate` merges the result
onto this schema before any work, so a typo (``stdp.etta``), a wrong type, a missing key
or an out-of-range value stops the run with one line naming the key. The values live in
``conf/`` only: every field here is ``MISSING`` (required) or optional.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from astdp.core import ACTIVATIONS


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what is allowed."""


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"invalid config value {key}={value!r}: {allowed}")


@dataclass
class DataConfig:
    root: str = MISSING
    mirrors: list[str] = MISSING
    batch_size: int = MISSING
    val_size: int = MISSING
    verify: bool = MISSING
    max_shift: int = MISSING

    def __post_init__(self) -> None:
        _check(self.batch_size > 0, "data.batch_size", self.batch_size, "must be a positive integer")
        _check(0 <= self.val_size < 60000, "data.val_size", self.val_size, "must be in [0, 60000)")
        _check(0 <= self.max_shift < 14, "data.max_shift", self.max_shift, "must be in [0, 14) pixels (0: off)")


@dataclass
class ModelConfig:
    kind: str = MISSING
    hidden: list[int] = MISSING
    activation: str = MISSING
    init_scale: float = MISSING
    lr: Optional[float] = None  # learning rate of the backprop baseline only (aSTDP uses stdp.eta)

    def __post_init__(self) -> None:
        _check(self.kind != "backprop" or (self.lr or 0) > 0, "model.lr", self.lr, "the backprop model needs lr > 0")
        _check(self.kind in ("astdp", "backprop"), "model.kind", self.kind, "must be astdp or backprop")
        _check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "model.hidden", list(self.hidden), "must be a non-empty list of positive sizes")
        _check(self.activation in ACTIVATIONS, "model.activation", self.activation, f"must be one of {', '.join(ACTIVATIONS)}")
        _check(self.init_scale > 0, "model.init_scale", self.init_scale, "must be > 0")


@dataclass
class Play:
    weight: float = MISSING  # scale of the play's weight changes; 0 skips the play
    steps: int = MISSING     # free-phase settling steps


@dataclass
class PlaysConfig:
    classify: Play = MISSING
    generate: Play = MISSING
    reconstruct: Play = MISSING

    def __post_init__(self) -> None:
        for name, play in vars(self).items():
            _check(play.weight >= 0, f"stdp.plays.{name}.weight", play.weight, "must be >= 0 (0 skips the play)")
            _check(play.steps >= 0, f"stdp.plays.{name}.steps", play.steps, "must be >= 0")
        _check(any(p.weight > 0 for p in vars(self).values()), "stdp.plays", "all weights 0",
               "at least one play needs a weight > 0")


@dataclass
class STDPConfig:
    eta: float = MISSING
    momentum: float = MISSING
    weight_decay: float = MISSING
    eps: float = MISSING
    label_gain: float = MISSING
    settle_momentum: float = MISSING
    homeostasis: float = MISSING
    target_rate: float = MISSING
    plays: PlaysConfig = MISSING
    lr_schedule: str = MISSING

    def __post_init__(self) -> None:
        _check(self.eta > 0, "stdp.eta", self.eta, "must be > 0")
        _check(0 <= self.momentum < 1, "stdp.momentum", self.momentum, "must be in [0, 1)")
        _check(self.weight_decay >= 0, "stdp.weight_decay", self.weight_decay, "must be >= 0 (0: off)")
        _check(self.eps > 0, "stdp.eps", self.eps, "must be > 0")
        _check(self.label_gain > 0, "stdp.label_gain", self.label_gain, "must be > 0")
        _check(0 <= self.settle_momentum < 1, "stdp.settle_momentum", self.settle_momentum, "must be in [0, 1)")
        _check(self.homeostasis >= 0, "stdp.homeostasis", self.homeostasis, "must be >= 0 (0: off)")
        _check(0 < self.target_rate < 1, "stdp.target_rate", self.target_rate, "must be in (0, 1)")
        _check(self.lr_schedule in ("constant", "cosine"), "stdp.lr_schedule", self.lr_schedule, "must be constant or cosine")


@dataclass
class EvaluateConfig:
    settle_steps: int = MISSING
    batch_size: int = MISSING
    occlude: str = MISSING

    def __post_init__(self) -> None:
        _check(self.settle_steps >= 0, "evaluate.settle_steps", self.settle_steps, "must be >= 0")
        _check(self.batch_size > 0, "evaluate.batch_size", self.batch_size, "must be > 0")
        _check(self.occlude in ("bottom", "top", "left", "right"), "evaluate.occlude", self.occlude, "must be bottom, top, left or right")


@dataclass
class GenerateConfig:
    per_class: int = MISSING
    settle_steps: int = MISSING
    sample: bool = MISSING
    noise: float = MISSING

    def __post_init__(self) -> None:
        _check(self.per_class >= 2, "generate.per_class", self.per_class, "must be >= 2 (variety needs pairs)")
        _check(self.settle_steps >= 1, "generate.settle_steps", self.settle_steps, "must be >= 1")
        _check(self.noise >= 0, "generate.noise", self.noise, "must be >= 0")


@dataclass
class Config:
    name: str = MISSING
    seed: int = MISSING
    ckpt_path: str = MISSING
    resume: bool = MISSING
    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    stdp: STDPConfig = MISSING
    evaluate: EvaluateConfig = MISSING
    generate: GenerateConfig = MISSING
    # Built with hydra.utils.instantiate; Lightning checks their own arguments.
    trainer: Any = MISSING
    logger: Optional[Any] = None
    callbacks: Optional[Any] = None
    optimized_metric: Optional[str] = None  # set by hparams_search presets: what train returns
    matmul_precision: str = MISSING
    compile: bool = MISSING

    def __post_init__(self) -> None:
        _check(self.matmul_precision in ("highest", "high", "medium"), "matmul_precision", self.matmul_precision,
               "must be highest, high or medium")


def validate(cfg: DictConfig) -> Config:
    """The config as typed, range-checked dataclasses, or a one-line :class:`ConfigError`."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
        return OmegaConf.to_object(merged)  # runs every __post_init__
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        reason = str(e).splitlines()[0]
        raise ConfigError(f"invalid config key {key}: {reason}") from None
