"""The config schema: every key a user may set, its type, its choices and its range.

The dataclasses are registered with Hydra's ConfigStore (group ``schema`` and the
``model`` group's ``*_schema`` entries), and ``conf/`` lists them first in its defaults,
so composition itself rejects an unknown key, a wrong type or a choice that is not one
of an Enum. Ranges are checked by :func:`validate` (``__post_init__``), which every stage
runs on the config it was given (``params.yaml`` under DVC) before any work. The values
live in ``conf/`` only: every field here is ``MISSING`` (required) or optional.

This module imports no torch, so Hydra's plugin scan (``hydra_plugins/astdp_schema``)
can register the schema in any process that composes ``conf/``, DVC's included.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional, Sequence

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from astdp.errors import ConfigError


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"invalid config value {key}={value!r}: {allowed}")


class Activation(str, Enum):
    """Names of :data:`astdp.nets.rule.ACTIVATIONS` (a test keeps the two equal)."""

    sigmoid = "sigmoid"
    tanh = "tanh"
    hardsigmoid = "hardsigmoid"


class Occlusion(str, Enum):
    bottom = "bottom"
    top = "top"
    left = "left"
    right = "right"


class DreamOn(str, Enum):
    """What the dream's noise disturbs (:meth:`astdp.nets.joined.JoinedLabelNet.dream`)."""

    drives = "drives"
    rates = "rates"


class MatmulPrecision(str, Enum):
    highest = "highest"
    high = "high"
    medium = "medium"


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass
class DataConfig:
    _target_: str = MISSING
    name: str = MISSING
    root: str = MISSING
    classes: list[str] = MISSING
    n_classes: int = MISSING
    image_shape: list[int] = MISSING
    files: dict[str, str] = MISSING
    mirrors: list[str] = MISSING
    batch_size: int = MISSING
    val_size: int = MISSING
    verify: bool = MISSING
    max_shift: int = MISSING
    flip: bool = MISSING
    seed: int = MISSING
    eval_batch_size: int = MISSING

    def __post_init__(self) -> None:
        _check(self.n_classes == len(self.classes) >= 2, "data.n_classes", self.n_classes,
               f"must be the number of data.classes ({len(self.classes)}), at least 2")
        _check(len(self.image_shape) == 2 and min(self.image_shape) > 0, "data.image_shape", list(self.image_shape),
               "must be [height, width]")
        _check(sorted(self.files) == sorted(IDX_FILES) and all(len(d) == 64 for d in self.files.values()),
               "data.files", dict(self.files), f"must give the sha256 (64 hex digits) of each of {', '.join(IDX_FILES)}")
        _check(self.batch_size > 0, "data.batch_size", self.batch_size, "must be a positive integer")
        _check(self.val_size >= 0, "data.val_size", self.val_size, "must be >= 0")
        _check(0 <= self.max_shift < min(self.image_shape) // 2, "data.max_shift", self.max_shift,
               "must be in [0, half the image) pixels (0: off)")


# Where each target lived before 0.19.0: checkpoints saved then name these, and still load.
MOVED = {
    "astdp.core.ASTDPNet": "astdp.nets.visible.VisibleLabelNet",
    "astdp.deep.DeepNet": "astdp.nets.joined.JoinedLabelNet",
    "astdp.lit.mlp": "astdp.nets.mlp.mlp",
    "astdp.lit.cosine_schedule": "astdp.training.schedules.cosine_schedule",
    "astdp.lit.constant_schedule": "astdp.training.schedules.constant_schedule",
    "astdp.lit.ASTDPModule": "astdp.training.modules.ASTDPModule",
    "astdp.lit.BackpropMLP": "astdp.training.modules.BackpropModule",
}
# Keys a network took until 0.18.0 only to refuse anything but their "off" value: a checkpoint
# saved then carries them at that value, and loading it drops them.
DROPPED = {"astdp.nets.visible.VisibleLabelNet": {"softmax_labels": False, "dream_noise": 0.0}}
# The classify play's regularisers sat beside the network until 0.20.0 (model.input_dropout);
# since 0.21.0 they are the network's own (model.net.input_dropout): what the network takes moves in.
INTO_NET = ("dropout", "label_smoothing", "input_dropout")



@dataclass
class NetConfig:
    """:class:`astdp.nets.visible.VisibleLabelNet`'s settings (labels in the visible layer);
    every network of the family takes them."""

    _target_: str = MISSING
    hidden: list[int] = MISSING
    activation: Activation = MISSING
    init_scale: float = MISSING
    label_gain: float = MISSING
    eps: float = MISSING
    homeostasis: float = MISSING
    target_rate: float = MISSING
    image_shape: list[int] = MISSING
    n_labels: int = MISSING

    def __post_init__(self) -> None:
        _check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "model.net.hidden", list(self.hidden),
               "must be a non-empty list of positive sizes")
        _check(self.init_scale > 0, "model.net.init_scale", self.init_scale, "must be > 0")
        _check(self.label_gain > 0, "model.net.label_gain", self.label_gain, "must be > 0")
        _check(self.eps > 0, "model.net.eps", self.eps, "must be > 0")
        _check(self.homeostasis >= 0, "model.net.homeostasis", self.homeostasis, "must be >= 0 (0: off)")
        _check(0 < self.target_rate < 1, "model.net.target_rate", self.target_rate, "must be a firing rate in (0, 1)")


@dataclass
class JoinedNetConfig(NetConfig):
    """:class:`astdp.nets.joined.JoinedLabelNet`'s settings (labels joined to every hidden layer)."""

    softmax_labels: bool = MISSING
    dream_noise: float = MISSING
    dream_on: DreamOn = MISSING
    dropout: float = MISSING
    label_smoothing: float = MISSING
    input_dropout: float = MISSING
    memory: bool = MISSING
    center: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_center(self.center)
        _check(self.dream_noise >= 0, "model.net.dream_noise", self.dream_noise, "must be >= 0 (0: off)")
        _shares(self, "model.net", ("dropout", "label_smoothing", "input_dropout"))


def _check_center(center: float) -> None:
    _check(0 <= center <= 1, "model.net.center", center,
           "must be in [0, 1] (the rate at which each pixel's mean, taken off its input, follows the images'; 0: off)")


def _shares(node: Any, prefix: str, keys: Sequence[str]) -> None:
    """Each of ``keys`` is a share in [0, 1) (0: off)."""
    for key in keys:
        _check(0 <= getattr(node, key) < 1, f"{prefix}.{key}", getattr(node, key), "must be in [0, 1) (0: off)")


# The local networks model.net._target_ may name, each with its settings' schema.
NET_SCHEMAS = {"astdp.nets.visible.VisibleLabelNet": NetConfig, "astdp.nets.joined.JoinedLabelNet": JoinedNetConfig}
LOCAL_NETS = tuple(NET_SCHEMAS)


@dataclass
class Play:
    scale: float = MISSING  # multiplies the play's weight changes; 0 skips the play
    steps: int = MISSING    # free-phase settling steps


@dataclass
class PlaysConfig:
    classify: Play = MISSING
    generate: Play = MISSING
    recirculate: Play = MISSING
    redraw: Play = MISSING
    complete: Play = MISSING

    def __post_init__(self) -> None:
        for name, play in vars(self).items():
            _check(play.scale >= 0, f"model.plays.{name}.scale", play.scale, "must be >= 0 (0 skips the play)")
            _check(play.steps >= 0, f"model.plays.{name}.steps", play.steps, "must be >= 0")
        _check(any(p.scale > 0 for p in vars(self).values()), "model.plays", "all scales 0",
               "at least one play needs a scale > 0")


@dataclass
class ASTDPModelConfig:
    """:class:`astdp.training.modules.ASTDPModule`: the network and how it learns."""

    _target_: str = MISSING
    net: NetConfig = MISSING  # model=joined's schema types it as JoinedNetConfig
    plays: PlaysConfig = MISSING
    settle_inertia: float = MISSING
    hidden_lr_scale: float = MISSING
    eval_settle_steps: int = MISSING
    check_finite_every: int = MISSING

    def __post_init__(self) -> None:
        _check(0 <= self.settle_inertia < 1, "model.settle_inertia", self.settle_inertia, "must be in [0, 1) (0: off)")
        _check(self.hidden_lr_scale > 0, "model.hidden_lr_scale", self.hidden_lr_scale,
               "must be > 0 (1: the synapses between hidden layers learn at optim.lr)")
        _check(self.check_finite_every > 0, "model.check_finite_every", self.check_finite_every, "must be > 0")
        _check(self.net._target_ == LOCAL_NETS[0] or self.plays.recirculate.scale == 0, "model.plays.recirculate.scale",
               self.plays.recirculate.scale, f"must be 0 with {self.net._target_} (the unsupervised play needs {LOCAL_NETS[0]})")


@dataclass
class MLPConfig:
    _target_: str = MISSING
    hidden: list[int] = MISSING
    image_shape: list[int] = MISSING
    n_classes: int = MISSING
    every_layer_votes: bool = MISSING
    dropout: float = MISSING
    input_dropout: float = MISSING
    center: float = MISSING

    def __post_init__(self) -> None:
        _check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "model.net.hidden", list(self.hidden),
               "must be a non-empty list of positive sizes")
        _shares(self, "model.net", ("dropout", "input_dropout"))  # model=joined's, which its twin shares
        _check_center(self.center)


@dataclass
class BackpropModelConfig:
    """:class:`astdp.training.modules.BackpropModule`: the baseline of the same sizes, trained by autograd."""

    _target_: str = MISSING
    net: MLPConfig = MISSING


@dataclass
class JoinedModelConfig(ASTDPModelConfig):
    """``model=joined``: :class:`ASTDPModelConfig` whose network takes :class:`JoinedNetConfig`, and
    how its feedback synapses step."""

    net: JoinedNetConfig = MISSING
    feedback_lr: Optional[float] = MISSING
    memory_lr: Optional[float] = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.memory_lr is None or (self.memory_lr > 0 and self.net.memory), "model.memory_lr", self.memory_lr,
               "must be null, or > 0 with a memory (model.net.memory=true)")
        _check(self.feedback_lr is None or (self.feedback_lr > 0 and self.net.dream_noise > 0), "model.feedback_lr",
               self.feedback_lr, "must be null, or > 0 with the dream's feedback synapses (model.net.dream_noise > 0)")


MODEL_SCHEMAS = {"astdp.training.modules.ASTDPModule": ASTDPModelConfig,
                 "astdp.training.modules.BackpropModule": BackpropModelConfig}
# The aSTDP module's settings by the network it drives (the joined network's module has its own).
ASTDP_MODEL_SCHEMAS = {"astdp.nets.visible.VisibleLabelNet": ASTDPModelConfig,
                       "astdp.nets.joined.JoinedLabelNet": JoinedModelConfig}


@dataclass
class OptimConfig:
    """A ``torch.optim`` optimizer, built as a partial; the module hands it its parameters."""

    _target_: str = MISSING
    _partial_: bool = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", self.lr, "must be > 0")
        _check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "must be >= 0 (0: off)")


@dataclass
class SGDConfig(OptimConfig):
    momentum: float = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(0 <= self.momentum < 1, "optim.momentum", self.momentum, "must be in [0, 1)")


@dataclass
class AdamConfig(OptimConfig):
    betas: list[float] = MISSING
    foreach: Optional[bool] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas", list(self.betas),
               "must be two numbers in [0, 1)")


OPTIM_SCHEMAS = {"torch.optim.SGD": SGDConfig, "torch.optim.Adam": AdamConfig, "torch.optim.AdamW": AdamConfig}


@dataclass
class ScheduleConfig:
    _target_: str = MISSING
    _partial_: bool = MISSING


@dataclass
class EvaluateConfig:
    settle_steps: int = MISSING
    occluded_steps: int = MISSING
    batch_size: int = MISSING
    occlude: Occlusion = MISSING
    inpaint_beta: float = MISSING
    inpaint_from: str = MISSING
    inpaint_rounds: int = MISSING
    measure_on: str = MISSING

    def __post_init__(self) -> None:
        _check(self.measure_on in ("test", "val"), "evaluate.measure_on", self.measure_on, "must be test or val")
        _check(self.settle_steps >= 0, "evaluate.settle_steps", self.settle_steps, "must be >= 0")
        _check(self.occluded_steps >= 0, "evaluate.occluded_steps", self.occluded_steps, "must be >= 0")
        _check(self.batch_size > 0, "evaluate.batch_size", self.batch_size, "must be > 0")
        _check(self.inpaint_beta > 0, "evaluate.inpaint_beta", self.inpaint_beta, "must be > 0")
        _check(self.inpaint_from in ("labels", "code"), "evaluate.inpaint_from", self.inpaint_from, "must be labels or code")
        _check(self.inpaint_rounds >= 1, "evaluate.inpaint_rounds", self.inpaint_rounds, "must be >= 1")
        _check(self.inpaint_rounds == 1 or self.inpaint_from == "code", "evaluate.inpaint_rounds", self.inpaint_rounds,
               "needs evaluate.inpaint_from=code (from the labels, evaluate.settle_steps sets the rounds)")


@dataclass
class JudgeConfig:
    path: str = MISSING
    epochs: int = MISSING
    lr: float = MISSING
    batch_size: int = MISSING
    train_size: Optional[int] = MISSING

    def __post_init__(self) -> None:
        _check(self.epochs > 0, "judge.epochs", self.epochs, "must be > 0")
        _check(self.lr > 0, "judge.lr", self.lr, "must be > 0")
        _check(self.batch_size > 0, "judge.batch_size", self.batch_size, "must be > 0")
        _check(self.train_size is None or self.train_size > 0, "judge.train_size", self.train_size, "must be > 0 or null")


@dataclass
class GenerateConfig:
    per_class: int = MISSING
    settle_steps: int = MISSING
    sample: bool = MISSING
    window: int = MISSING
    noise: float = MISSING
    beta: float = MISSING
    beta_start: Optional[float] = MISSING
    label_strength: float = MISSING
    label_hold: Optional[int] = MISSING
    pixel_spikes: bool = MISSING
    from_memory: bool = MISSING
    memory_beta: float = MISSING
    measure_on: str = MISSING

    def __post_init__(self) -> None:
        _check(self.measure_on in ("test", "val"), "generate.measure_on", self.measure_on, "must be test or val")
        _check(self.per_class >= 2, "generate.per_class", self.per_class, "must be >= 2 (variety needs pairs)")
        _check(self.settle_steps >= 1, "generate.settle_steps", self.settle_steps, "must be >= 1")
        _check(self.window >= 1, "generate.window", self.window, "must be >= 1")
        _check(self.window == 1 or self.sample, "generate.window", self.window,
               "needs generate.sample=true (without spikes every draw is the same)")
        _check(self.noise >= 0, "generate.noise", self.noise, "must be >= 0")
        _check(self.beta > 0, "generate.beta", self.beta, "must be > 0")
        _check(self.beta_start is None or self.beta_start >= 0, "generate.beta_start", self.beta_start,
               "must be >= 0 or null (0: the first step ignores every drive, a chain from noise)")
        _check(self.label_strength > 0, "generate.label_strength", self.label_strength, "must be > 0")
        _check(self.label_hold is None or self.label_hold >= 1, "generate.label_hold", self.label_hold,
               "must be >= 1 or null (null: the label is held at label_strength in every step)")
        _check(self.memory_beta > 0, "generate.memory_beta", self.memory_beta, "must be > 0")
        for key in ("beta_start", "label_hold"):  # settling's schedules: a memory's chain has none
            _check(not self.from_memory or getattr(self, key) is None, f"generate.{key}", getattr(self, key),
                   "must be null with generate.from_memory=true")


@dataclass
class Config:
    name: str = MISSING
    description: str = MISSING
    seed: int = MISSING
    ckpt_path: str = MISSING
    resume: bool = MISSING
    matmul_precision: MatmulPrecision = MISSING
    compile: bool = MISSING
    data: DataConfig = MISSING
    model: Any = MISSING  # typed by its group's *_schema (MODEL_SCHEMAS)
    optim: Any = MISSING  # typed by its _target_ (OPTIM_SCHEMAS)
    lr_schedule: ScheduleConfig = MISSING
    evaluate: EvaluateConfig = MISSING
    judge: JudgeConfig = MISSING
    generate: GenerateConfig = MISSING
    # Lightning objects: Lightning checks their own arguments when they are instantiated.
    trainer: Any = MISSING
    callbacks: dict[str, Any] = MISSING
    logger: Optional[Any] = None
    optimized_metric: Optional[str] = None  # set by hparams_search presets: what train returns

    def __post_init__(self) -> None:
        net = self.model.net if isinstance(self.model, ASTDPModelConfig) else None  # a backprop twin draws nothing
        _check(not self.generate.from_memory or net is None or getattr(net, "memory", False), "generate.from_memory", True,
               "needs a network with a memory (model.net.memory=true, model=joined and its presets)")


def register() -> None:
    # Outside every config group, so that `--help` lists only choices a user makes: the
    # configs reach them by absolute path (`/schema_config`, `/schema_astdp_model@_here_`).
    cs = ConfigStore.instance()
    cs.store(name="schema_config", node=Config)
    cs.store(name="schema_astdp_model", node=ASTDPModelConfig)
    cs.store(name="schema_joined_model", node=JoinedModelConfig)
    cs.store(name="schema_backprop_model", node=BackpropModelConfig)


register()


def _typed_by_target(cfg: DictConfig, group: str, schemas: dict) -> Any:
    target = OmegaConf.select(cfg, f"{group}._target_", default=None)
    if target not in schemas:
        raise ConfigError(f"invalid config value {group}._target_={target!r}: must be one of {', '.join(schemas)}")
    return OmegaConf.structured(schemas[target])


def _schema_for(cfg: DictConfig) -> DictConfig:
    schema = OmegaConf.structured(Config)
    schema.model = _typed_by_target(cfg, "model", MODEL_SCHEMAS)
    if OmegaConf.get_type(schema.model) is ASTDPModelConfig:
        schema.model = _typed_by_target(cfg, "model.net", ASTDP_MODEL_SCHEMAS)
        schema.model.net = _typed_by_target(cfg, "model.net", NET_SCHEMAS)
    schema.optim = _typed_by_target(cfg, "optim", OPTIM_SCHEMAS)
    return schema


def validate(cfg: DictConfig) -> Config:
    """The config as typed, range-checked dataclasses, or a one-line :class:`ConfigError`."""
    try:
        # As plain data: a key forced in with `+` sits inside a typed node, which would carry it over.
        merged = OmegaConf.merge(_schema_for(cfg), OmegaConf.to_container(cfg, enum_to_str=True))
        return OmegaConf.to_object(merged)  # runs every __post_init__
    except OmegaConfBaseException as e:
        raise ConfigError(invalid_key(getattr(e, "full_key", None) or "?", e)) from None


def invalid_key(key: str, e: BaseException) -> str:
    """One line that names the key (and where it went, if it moved)."""
    reason = str(e).splitlines()[0]
    if key in {f"model.{k}" for k in INTO_NET}:
        reason += f" (since 0.21.0 it is the network's: model.net.{key.split('.')[-1]})"
    return f"invalid config key {key}: {reason}"


def sections(cfg: DictConfig, params: Sequence[str]) -> DictConfig:
    """Validate the whole config, then keep only ``params`` (dotted keys), resolved, as plain values.

    Each stage lists in ``PARAMS`` exactly the keys that ``dvc.yaml`` declares for it (a test
    holds the two equal) and reads its config only through this: reading any other key
    fails, so DVC knows every parameter a stage depends on.
    """
    validate(cfg)
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
