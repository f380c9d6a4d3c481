"""Resume after a kill, divergence stops cleanly, bad inputs give one line, writes are atomic."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from astdp.io import atomic_path, write_json
from astdp.lit import DivergenceError
from astdp.stages.train import train
from tests.conftest import ROOT


def run_script(*args):
    return subprocess.run([sys.executable, str(ROOT / "tests" / "resume_script.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_killed_run_resumes_to_the_same_weights(tiny_mnist, tmp_path):
    assert run_script(tmp_path / "full", tiny_mnist, "full").returncode == 0
    killed = run_script(tmp_path / "cut", tiny_mnist, 2)
    assert killed.returncode == -signal.SIGKILL
    ckpt = torch.load(tmp_path / "cut/models/last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 1  # epochs 0 and 1 done when the kill came
    resumed = run_script(tmp_path / "cut", tiny_mnist, "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = torch.load(tmp_path / "full/models/last.ckpt", weights_only=False)["state_dict"]
    cut = torch.load(tmp_path / "cut/models/last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(cfg_tiny):
    with open_dict(cfg_tiny):
        cfg_tiny.trainer.max_epochs = 1
    train(cfg_tiny)
    good = Path("models/last.ckpt").read_bytes()
    with open_dict(cfg_tiny):
        cfg_tiny.trainer.max_epochs = 3
        cfg_tiny.stdp.eta = 3e37  # drives overflow float32 within a few steps
    with pytest.raises(DivergenceError, match=r"by (step|epoch) \d+ .*stdp\.eta"):
        train(cfg_tiny)
    assert Path("models/last.ckpt").read_bytes() == good


def test_bad_data_and_bad_trainer_value_are_one_line(tiny_mnist):
    raw = (tiny_mnist / "train-images-idx3-ubyte").read_bytes()
    (tiny_mnist / "train-images-idx3-ubyte").write_bytes(raw[:1000])
    base = [sys.executable, "-m", "astdp.stages.train", f"data.root={tiny_mnist}", "logger=none"]
    for extra, expected in ((["data.verify=false"], "train-images-idx3-ubyte: 1000 bytes"),
                            ([], "train-images-idx3-ubyte: checksum mismatch"),
                            (["trainer.max_epochs=-2"], "max_epochs")):
        done = subprocess.run(base + extra, capture_output=True, text=True, cwd=ROOT)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and expected in lines[0], done.stderr[-1500:]
    verbose = subprocess.run(base + ["hydra.verbose=true"], capture_output=True, text=True, cwd=ROOT)
    assert "Traceback" in verbose.stderr


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
