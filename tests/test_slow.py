"""Slow checks on real MNIST and through DVC itself (run with `make test-slow`)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, SHARED_MNIST, compose_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the local MNIST mirror ../shared/mnist")]


def test_short_run_on_real_mnist_is_clearly_above_chance(tmp_path, monkeypatch):
    from astdp.data.download import download
    from astdp.stages.evaluate import evaluate
    from astdp.stages.train import train

    download(tmp_path / "mnist", [str(SHARED_MNIST)], dict(compose_config().data.files), True)
    monkeypatch.chdir(tmp_path)
    cfg = compose_config([f"data.root={tmp_path / 'mnist'}", "logger=none", "trainer.max_epochs=1",
                          "+trainer.limit_train_batches=150", "trainer.enable_progress_bar=false"])
    train(cfg)
    assert evaluate(cfg)["test_accuracy"] > 0.8  # official 10,000 test images; chance is 0.1


def test_dvc_exp_run_override_reaches_the_model(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "WANDB_MODE": "offline"}
    mirror = str(SHARED_MNIST)
    cmd = ["dvc", "exp", "run", "-S", "model=small", "-S", "optim.lr=0.05", "-S", "trainer.max_epochs=1",
           "-S", f"data.mirrors=[{mirror}]", "-S", "logger=none", "-S", "data.val_size=1000", "-S", "judge.epochs=1"]
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    hp = torch.load(repo / "models/last.ckpt", weights_only=True)["hyper_parameters"]
    assert hp["optim"]["lr"] == 0.05 and hp["net"]["hidden"] == [128]
    assert "lr: 0.05" in (repo / "params.yaml").read_text()


def _digest(tmp_path, name: str, env: dict) -> tuple[str, str]:
    """(dispatch level, digest of the trained weights and judge) of tests/dispatch_script.py under ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR",
                                                             "MKL_ENABLE_INSTRUCTIONS")}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "dispatch_script.py"), str(tmp_path / name)],
                          env=base | env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return tuple(done.stdout.split()[-2:])


def test_the_same_bytes_whatever_the_cpus_widest_instructions(tmp_path):
    """Training and the judge give the same weights on a CPU with AVX-512 as on one with only
    AVX2 (its instructions capped for each library), because the stages pin the kernels."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the pins are x86-64's")
    avx2_only = {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}  # what MKL sees on a CPU without AVX-512
    assert _digest(tmp_path, "here", {}) == _digest(tmp_path, "avx2", avx2_only)
    if "avx512f" not in Path("/proc/cpuinfo").read_text():  # forcing AVX-512 kernels here would be an illegal instruction
        pytest.skip("this CPU has no AVX-512: the unpinned control would run the same kernels")
    native = {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "ALL", "MKL_CBWR": "AUTO"}
    level, unpinned = _digest(tmp_path, "native", native)
    if level != "AVX512":
        pytest.skip("this CPU has no AVX-512: the unpinned control would run the same kernels")
    # the control: without the pins, the two CPUs' kernels give other bytes (so the test can fail)
    capped = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AUTO"} | avx2_only
    assert unpinned != _digest(tmp_path, "capped", capped)[1]
