"""The config schema: every key a user may set, its type and its allowed range.

Hydra composes ``conf/`` (or DVC's ``params.yaml``); :func:`validate` merges the result
onto this schema before any work, so a typo (``stdp.etta``), a wrong type or an
out-of-range value stops the run with one line naming the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from astdp.core import ACTIVATIONS


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what is allowed."""


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"invalid config value {key}={value!r}: {allowed}")


@dataclass
class DataConfig:
    root: str = "data/mnist"
    mirrors: list[str] = field(default_factory=list)
    batch_size: int = 64
    val_size: int = 5000
    verify: bool = True

    def __post_init__(self) -> None:
        _check(self.batch_size > 0, "data.batch_size", self.batch_size, "must be a positive integer")
        _check(0 <= self.val_size < 60000, "data.val_size", self.val_size, "must be in [0, 60000)")


@dataclass
class ModelConfig:
    kind: str = "astdp"
    hidden: list[int] = field(default_factory=lambda: [500])
    activation: str = "sigmoid"
    init_scale: float = 1.0
    lr: float = 0.1  # learning rate of the backprop baseline only (aSTDP uses stdp.eta)

    def __post_init__(self) -> None:
        _check(self.lr > 0, "model.lr", self.lr, "must be > 0")
        _check(self.kind in ("astdp", "backprop"), "model.kind", self.kind, "must be astdp or backprop")
        _check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "model.hidden", list(self.hidden), "must be a non-empty list of positive sizes")
        _check(self.activation in ACTIVATIONS, "model.activation", self.activation, f"must be one of {', '.join(ACTIVATIONS)}")
        _check(self.init_scale > 0, "model.init_scale", self.init_scale, "must be > 0")


@dataclass
class Play:
    weight: float = 1.0  # scale of the play's weight changes; 0 skips the play
    steps: int = 2       # free-phase settling steps


@dataclass
class PlaysConfig:
    classify: Play = field(default_factory=lambda: Play(1.0, 2))
    generate: Play = field(default_factory=lambda: Play(0.3, 2))
    reconstruct: Play = field(default_factory=lambda: Play(0.0, 1))

    def __post_init__(self) -> None:
        for name, play in vars(self).items():
            _check(play.weight >= 0, f"stdp.plays.{name}.weight", play.weight, "must be >= 0 (0 skips the play)")
            _check(play.steps >= 0, f"stdp.plays.{name}.steps", play.steps, "must be >= 0")
        _check(any(p.weight > 0 for p in vars(self).values()), "stdp.plays", "all weights 0",
               "at least one play needs a weight > 0")


@dataclass
class STDPConfig:
    eta: float = 0.02
    momentum: float = 0.9
    eps: float = 0.01
    label_gain: float = 6.0
    settle_momentum: float = 0.0
    homeostasis: float = 0.0
    target_rate: float = 0.05
    plays: PlaysConfig = field(default_factory=PlaysConfig)
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        _check(self.eta > 0, "stdp.eta", self.eta, "must be > 0")
        _check(0 <= self.momentum < 1, "stdp.momentum", self.momentum, "must be in [0, 1)")
        _check(self.eps > 0, "stdp.eps", self.eps, "must be > 0")
        _check(self.label_gain > 0, "stdp.label_gain", self.label_gain, "must be > 0")
        _check(0 <= self.settle_momentum < 1, "stdp.settle_momentum", self.settle_momentum, "must be in [0, 1)")
        _check(self.homeostasis >= 0, "stdp.homeostasis", self.homeostasis, "must be >= 0 (0: off)")
        _check(0 < self.target_rate < 1, "stdp.target_rate", self.target_rate, "must be in (0, 1)")
        _check(self.lr_schedule in ("constant", "cosine"), "stdp.lr_schedule", self.lr_schedule, "must be constant or cosine")


@dataclass
class EvaluateConfig:
    settle_steps: int = 3
    batch_size: int = 1000
    occlude: str = "bottom"

    def __post_init__(self) -> None:
        _check(self.settle_steps >= 0, "evaluate.settle_steps", self.settle_steps, "must be >= 0")
        _check(self.batch_size > 0, "evaluate.batch_size", self.batch_size, "must be > 0")
        _check(self.occlude in ("bottom", "top", "left", "right"), "evaluate.occlude", self.occlude, "must be bottom, top, left or right")


@dataclass
class GenerateConfig:
    per_class: int = 10
    settle_steps: int = 1
    sample: bool = True
    noise: float = 0.0

    def __post_init__(self) -> None:
        _check(self.per_class >= 2, "generate.per_class", self.per_class, "must be >= 2 (variety needs pairs)")
        _check(self.settle_steps >= 1, "generate.settle_steps", self.settle_steps, "must be >= 1")
        _check(self.noise >= 0, "generate.noise", self.noise, "must be >= 0")


@dataclass
class Config:
    name: str = "default"
    seed: int = 0
    ckpt_path: str = "models/last.ckpt"
    resume: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    stdp: STDPConfig = field(default_factory=STDPConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    # Built with hydra.utils.instantiate; Lightning checks their own arguments.
    trainer: Any = None
    logger: Optional[Any] = None
    callbacks: Optional[Any] = None
    optimized_metric: Optional[str] = None
    matmul_precision: str = "highest"
    compile: bool = False

    def __post_init__(self) -> None:
        _check(self.matmul_precision in ("highest", "high", "medium"), "matmul_precision", self.matmul_precision,
               "must be highest, high or medium")  # set by hparams_search presets: what train returns


def validate(cfg: DictConfig) -> Config:
    """The config as typed, range-checked dataclasses, or a one-line :class:`ConfigError`."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
        return OmegaConf.to_object(merged)  # runs every __post_init__
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        reason = str(e).splitlines()[0]
        raise ConfigError(f"invalid config key {key}: {reason}") from None
