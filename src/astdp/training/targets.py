"""What a config may ask this package to build: the allow-list every checkpoint is held to.

A checkpoint's config is data from whoever sent the file: instantiating an arbitrary
``_target_`` from it (at any depth: instantiate is recursive) would run arbitrary code.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from hydra.utils import get_object

from astdp.config import DROPPED, INTO_NET, LOCAL_NETS, MOVED

BUILT_NETS = {*LOCAL_NETS, "astdp.nets.mlp.mlp"}
SCHEDULES = {"astdp.training.schedules.cosine_schedule", "astdp.training.schedules.constant_schedule"}


def _targets(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every ``_target_`` in a config, at any depth, with where it sits."""
    if isinstance(node, dict):
        own = [(path, node["_target_"])] if "_target_" in node else []
        return own + [t for k, v in node.items() for t in _targets(v, f"{path}.{k}")]
    if isinstance(node, (list, tuple)):
        return [t for i, v in enumerate(node) for t in _targets(v, f"{path}[{i}]")]
    return []


def check_targets(hparams: dict[str, Any]) -> None:
    """Refuse hyperparameters that would build anything but a network, optimizer or schedule of ours.

    A checkpoint's config is data from whoever sent the file: instantiating an arbitrary
    ``_target_`` from it (at any depth: instantiate is recursive) would run arbitrary code.
    """
    def allowed(key: str, target: Any) -> bool:
        if key == "optim":
            obj = get_object(target) if isinstance(target, str) and target.startswith("torch.optim.") else None
            return isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
        return target in {"net": BUILT_NETS, "lr_schedule": SCHEDULES}.get(key, ())

    for key, value in hparams.items():
        for path, target in _targets(value):
            if path or not allowed(key, target):
                raise ValueError(f"hyper-parameter {key}{path} names {target!r}, which this package does not build")


def moved(node: Any) -> Any:
    """``node`` (plain config data) with every target of :data:`MOVED` named by its new path,
    less the keys :data:`DROPPED` says its target no longer takes (when at their off value)."""
    if isinstance(node, dict):
        node = {k: MOVED.get(v, v) if k == "_target_" else moved(v) for k, v in node.items()}
        gone = DROPPED.get(node.get("_target_"), {})
        return {k: v for k, v in node.items() if not (k in gone and v == gone[k])}
    if isinstance(node, list):
        return [moved(v) for v in node]
    return node


def into_net(hparams: dict[str, Any]) -> dict[str, Any]:
    """A module's hyperparameters saved before 0.21.0, with the regularisers that sat beside its
    network (:data:`INTO_NET`) moved into the network's config where its constructor takes them,
    and dropped where it does not and they are off (0)."""
    out = dict(hparams)
    net = dict(out.get("net") or {})
    if net.get("_target_") not in BUILT_NETS:  # check_targets refuses it: nothing to look up
        return out
    takes = inspect.signature(get_object(net["_target_"])).parameters
    for key in INTO_NET:
        if key in out and (key in takes or out[key]):
            net.setdefault(key, out.pop(key))
        elif key in out:
            del out[key]
    return {**out, "net": net}
