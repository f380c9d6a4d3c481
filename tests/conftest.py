"""Shared fixtures: small synthetic MNIST-shaped data the tests make themselves, composed configs."""
from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers: one thread each (and each run they start),
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # or four threads spin on two cores and every kernel waits
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import astdp.stages  # noqa: F401  first: pins the CPU kernels as the stages run them, before torch runs any
import functools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import astdp.config  # noqa: F401  registers the schema conf/ composes onto
from astdp.data.idx import load_split, write_idx
from astdp.nets.rule import learning_step

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "mnist"


def make_digits(n: int, seed: int, shape=(28, 28), n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Fixed random stroke patterns, one per class, with pixel noise: learnable, not trivial."""
    templates = (np.random.default_rng(1234).random((n_classes, *shape)) < 0.12).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n).astype(np.uint8)
    imgs = templates[labels]
    flip = rng.random(imgs.shape) < 0.08
    imgs = np.where(flip, 1 - imgs, imgs) * rng.uniform(0.6, 1.0, (n, 1, 1))
    return (imgs * 255).round().astype(np.uint8), labels


def write_digits(root: Path, n_train: int = 600, n_test: int = 200, shape=(28, 28), n_classes: int = 10) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        imgs, labels = make_digits(n, seed, shape, n_classes)
        write_idx(root / f"{prefix}-images-idx3-ubyte", imgs)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@functools.cache
def linear_accuracy(n_train: int = 500, n_test: int = 200) -> float:
    """Test accuracy of a logistic regression on the synthetic digits (the first ``n_train`` of
    ``tiny_mnist``'s training images): the bar a learner is held to, not chance. These digits
    are linearly separable, so a test of learning asks for about what this gets."""
    import torch

    from astdp.measure.probe import fit_logistic_regression

    (x, y), (xt, yt) = ((torch.from_numpy(i.reshape(len(i), -1)).float() / 255, torch.from_numpy(l).long())
                        for i, l in (make_digits(n_train, 1), make_digits(n_test, 2)))
    return (fit_logistic_regression(x, y)(xt).argmax(1) == yt).float().mean().item()


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    return write_digits(tmp_path / "tiny-mnist")


def compose_config(overrides: list[str] = ()) -> DictConfig:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        return compose("config", overrides=list(overrides))


MNIST = compose_config().data  # conf/'s dataset: canonical checksums, shape, classes


def load(root: Path, split: str, verify: bool = False, files: dict | None = None):
    """A split of an MNIST-shaped IDX folder (checked against ``files``, conf/'s checksums by default)."""
    return load_split(root, split, files or dict(MNIST.files), MNIST.image_shape, MNIST.n_classes, verify)


def make_net(hidden: list[int], **overrides):
    """The core network with conf/'s defaults (model.net) but for ``hidden`` and ``overrides``."""
    conf = OmegaConf.to_container(compose_config().model.net, resolve=True, enum_to_str=True)
    return instantiate(conf | {"hidden": hidden, **overrides})


def plays(**overrides) -> dict[str, tuple[float, int]]:
    """model=astdp's plays (the paper's) as the core takes them, (scale, steps) by name;
    ``name=(scale, steps)`` replaces one."""
    conf = {name: (p.scale, p.steps) for name, p in compose_config(["model=astdp"]).model.plays.items()}
    return conf | overrides


def run_pipeline(cfg: DictConfig) -> dict:
    """Every stage on ``cfg``, in dvc.yaml's order; their metrics by stage."""
    from astdp.stages.evaluate import evaluate
    from astdp.stages.generate import generate
    from astdp.stages.judge import make_judge
    from astdp.stages.train import train

    return {"judge": make_judge(cfg), "train": train(cfg), "eval": evaluate(cfg), "generate": generate(cfg)}


def tiny_config(data_root: Path) -> DictConfig:
    """A quick CPU config on the synthetic data in ``data_root``."""
    return compose_config([
        f"data.root={data_root}", "data.verify=false", "data.val_size=100", "data.batch_size=32",
        "model=small", "trainer.max_epochs=4", "trainer.enable_progress_bar=false", "logger=none",
        "evaluate.batch_size=100", "generate.per_class=4", "judge.epochs=3", "judge.batch_size=32",
    ])


@pytest.fixture
def cfg_tiny(tiny_mnist: Path, tmp_path: Path, monkeypatch) -> DictConfig:
    """:func:`tiny_config`; outputs land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tiny_config(tiny_mnist)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> tuple[Path, Path, dict]:
    """One tiny run of every stage, shared by the tests that only read a finished run: (its
    folder, its data, its metrics by stage). Read it; copy it before writing (:func:`copy_run`)."""
    import os

    root = tmp_path_factory.mktemp("finished")
    data, folder = write_digits(root / "tiny-mnist"), root / "run"
    folder.mkdir()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        metrics = run_pipeline(tiny_config(data))
    finally:
        os.chdir(cwd)
    return folder, data, metrics


def copy_run(finished: Path, to: Path) -> Path:
    """A writable copy of a finished run's outputs in ``to``."""
    import shutil

    for name in ("models", "metrics", "reports", "plots", "samples"):
        shutil.copytree(finished / name, to / name, dirs_exist_ok=True)
    return to


default_plays = plays


def data(n=600, seed=1):
    """Synthetic digits as flat float pixels in [0, 1] and their labels."""
    imgs, labels = make_digits(n, seed)
    x = torch.from_numpy(imgs.reshape(n, -1)).float() / 255
    y = torch.from_numpy(labels).long()
    return x, y


def train(net, x, y, epochs=3, eta=0.05, bs=32, plays=None, **kw):
    """A few epochs of the bare aSTDP loop (SGD with momentum) on ``x, y``."""
    opt = torch.optim.SGD(net.parameters(), lr=eta, momentum=0.9)
    Y = F.one_hot(y, 10).float()
    for _ in range(epochs):
        for i in range(0, len(x), bs):
            changes, _ = net.weight_changes(x[i:i + bs], Y[i:i + bs], plays or default_plays(), **kw)
            learning_step(opt, net.named_parameters(), changes)
    return net


HAS_CHROMIUM = bool(shutil.which("chromium") and shutil.which("chromedriver"))
needs_chromium = pytest.mark.skipif(not HAS_CHROMIUM, reason="needs Debian's chromium and chromium-driver")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()
