"""Resume after a kill, divergence stops cleanly, bad inputs give one line, writes are atomic."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from astdp.io import atomic_path, write_json
from astdp.errors import DataError, DivergenceError, StageError
from astdp.training.checkpoints import load_model
from astdp.stages.train import train
from tests.conftest import ROOT, compose_config, write_digits


def run_script(*args):
    return subprocess.run([sys.executable, str(ROOT / "tests" / "resume_script.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    """The uninterrupted run the interrupted ones are held to (its data: the tests' synthetic digits)."""
    root = tmp_path_factory.mktemp("full")
    done = run_script(root / "run", write_digits(root / "data"), "full")
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "run/models/last.ckpt"


def test_killed_run_resumes_to_the_same_weights(tiny_mnist, tmp_path, full_run):
    killed = run_script(tmp_path / "cut", tiny_mnist, 2)
    assert killed.returncode == -signal.SIGKILL
    ckpt = torch.load(tmp_path / "cut/models/last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 1  # epochs 0 and 1 done when the kill came
    resumed = run_script(tmp_path / "cut", tiny_mnist, "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = torch.load(full_run, weights_only=True)["state_dict"]
    cut = torch.load(tmp_path / "cut/models/last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_weight_average_keeps_the_trajectory_and_resumes(tiny_mnist, tmp_path, full_run):
    """callbacks=ema: training follows the raw weights (the same as without it), the checkpoint
    and every stage that loads it get the average, and a killed run resumes both bit for bit."""
    for out, mode, *extra in (("ema", "full", "callbacks=ema"), ("cut", 2, "callbacks=ema"),
                              ("cut", "resume", "callbacks=ema")):
        done = run_script(tmp_path / out, tiny_mnist, mode, *extra)
        assert done.returncode == (-signal.SIGKILL if mode == 2 else 0), done.stderr[-2000:]
    plain = torch.load(full_run, weights_only=True)
    ema, cut = (torch.load(tmp_path / d / "models/last.ckpt", weights_only=True) for d in ("ema", "cut"))
    raw, average = ema["current_model_state"], ema["state_dict"]
    assert all(torch.equal(plain["state_dict"][k], raw[k]) for k in raw)
    assert not torch.equal(average["net.W.0"], raw["net.W.0"])
    assert all(torch.equal(cut[s][k], ema[s][k]) for s in ("state_dict", "current_model_state") for k in raw)
    loaded = load_model(tmp_path / "ema/models/last.ckpt", "cpu")
    assert torch.equal(loaded.net.W[0], average["net.W.0"])


def test_a_bad_weight_average_setting_is_named(cfg_tiny):
    with open_dict(cfg_tiny):
        cfg_tiny.callbacks = compose_config(["callbacks=ema", "callbacks.ema.every=0"]).callbacks
    with pytest.raises(Exception, match="every=0"):  # the CLI prints such a failure as one line (below)
        train(cfg_tiny)


def test_sigterm_mid_epoch_saves_and_resume_gives_the_same_weights(tiny_mnist, tmp_path, full_run):
    cli = [sys.executable, "-m", "astdp.stages.train", f"data.root={tiny_mnist}", "data.verify=false",
           "data.val_size=100", "model=small", "logger=none", "trainer.max_epochs=4", "trainer.enable_progress_bar=false",
           "data.batch_size=32", "data.max_shift=1", f"hydra.run.dir={tmp_path / 'term'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    term = subprocess.run(cli + ["+callbacks.term._target_=stop_callbacks.TermAt", "+callbacks.term.epoch=1",
                                 "+callbacks.term.batch=5"], capture_output=True, text=True, env=env, cwd=tmp_path)
    lines = term.stderr.strip().splitlines()
    assert term.returncode == 1 and "Traceback" not in term.stderr, term.stderr[-2000:]
    assert lines[-1].startswith("error: stopped by SIGTERM at step 22;") and "resume=true" in lines[-1], lines[-1]
    ckpt = torch.load(tmp_path / "term/models/last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 22  # 16 batches an epoch: epoch 0, then batches 0-5 of epoch 1
    resumed = subprocess.run(cli + ["resume=true"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = torch.load(full_run, weights_only=True)["state_dict"]
    cut = torch.load(tmp_path / "term/models/last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(cfg_tiny):
    with open_dict(cfg_tiny):
        cfg_tiny.trainer.max_epochs = 1
    train(cfg_tiny)
    good = Path("models/last.ckpt").read_bytes()
    with open_dict(cfg_tiny):
        cfg_tiny.trainer.max_epochs = 3
        cfg_tiny.optim.lr = 3e37  # drives overflow float32 within a few steps
    with pytest.raises(DivergenceError, match=r"by (step|epoch) \d+ .*optim\.lr"):
        train(cfg_tiny)
    assert Path("models/last.ckpt").read_bytes() == good


def test_bad_data_and_bad_trainer_value_are_one_line(tiny_mnist, cfg_tiny, tmp_path):
    raw = (tiny_mnist / "train-images-idx3-ubyte").read_bytes()
    (tiny_mnist / "train-images-idx3-ubyte").write_bytes(raw[:1000])
    with open_dict(cfg_tiny):
        cfg_tiny.data.verify = True
    with pytest.raises(DataError, match="train-images-idx3-ubyte: checksum mismatch"):
        train(cfg_tiny)
    base = [sys.executable, "-m", "astdp.stages.train", f"data.root={tiny_mnist}", "logger=none"]
    for extra, expected in ((["data.verify=false"], "train-images-idx3-ubyte: 1000 bytes"),
                            (["trainer.max_epochs=-2"], "max_epochs")):
        done = subprocess.run(base + extra, capture_output=True, text=True, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and expected in lines[0], done.stderr[-1500:]
    verbose = subprocess.run(base + ["hydra.verbose=true"], capture_output=True, text=True, cwd=tmp_path)
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


class Trap:
    """Unpickling this runs a shell command that leaves a file behind."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def trapped_checkpoints(folder: Path, good: Path) -> dict[str, Path]:
    """Files that would run code if loaded carelessly: a pickled object, and a valid checkpoint whose
    config names a callable to build."""
    marker = folder / "ran"
    pickled = folder / "pickled.ckpt"
    ckpt = torch.load(good, weights_only=True)
    torch.save({**ckpt, "hyper_parameters": {**ckpt["hyper_parameters"], "trap": Trap(marker)}}, pickled)
    target = folder / "target.ckpt"
    hp = ckpt["hyper_parameters"]
    torch.save({**ckpt, "hyper_parameters": {**hp, "net": {"_target_": "os.system", "command": f"touch {marker}"}}},
               target)
    return {"pickled": pickled, "target": target}


def test_booby_trapped_checkpoints_run_nothing(cfg_tiny, tmp_path):
    """Every stage that loads a checkpoint refuses both traps, and neither runs (one line at the
    CLI: test_pipeline's damaged checkpoint)."""
    from astdp.stages.evaluate import evaluate
    from astdp.stages.generate import generate

    train(cfg_tiny)
    traps = trapped_checkpoints(tmp_path, tmp_path / "models/last.ckpt")
    for stage in (evaluate, generate, train):
        for name, path in traps.items():
            with open_dict(cfg_tiny):
                cfg_tiny.ckpt_path, cfg_tiny.resume = str(path), stage is train
            with pytest.raises(StageError, match="not an astdp checkpoint"):
                stage(cfg_tiny)
            assert not (tmp_path / "ran").exists(), (stage, name)
