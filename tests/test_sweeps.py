"""Config-override sweeps the ways users run them: Hydra multirun, Optuna, DVC's queue."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import ROOT, SHARED_MNIST
from tests.wandb_reader import finished_records

TINY = ["model=small", "data.verify=false", "data.val_size=100", "data.batch_size=32",
        "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]


def astdp(tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # A W&B run earlier in this process leaves WANDB_SERVICE etc. behind: give jobs a clean slate.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true")
    done = subprocess.run([sys.executable, "-m", f"astdp.stages.{tool}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def wandb_config(run_file: Path) -> dict:
    """The config a W&B offline run recorded, top-level keys to values."""
    config = {}
    for rec in finished_records(run_file):
        if rec.HasField("config"):
            for item in rec.config.update:
                config[item.key or item.nested_key[0]] = json.loads(item.value_json)
    return config


def test_hydra_multirun_gives_each_job_its_own_folder_and_wandb_run(tmp_path, tiny_mnist):
    astdp("train", ["-m", "stdp.eta=0.01,0.05", f"data.root={tiny_mnist}", *TINY], tmp_path)
    (sweep,) = (tmp_path / "multirun").iterdir()
    etas = {}
    for job in ("0", "1"):
        ckpt = torch.load(sweep / job / "models/last.ckpt", weights_only=False)
        etas[job] = ckpt["hyper_parameters"]["stdp"]["eta"]
        assert json.loads((sweep / job / "metrics/train.json").read_text())["epochs"] == 2
    assert sorted(etas.values()) == [0.01, 0.05]
    assert not (tmp_path / "models").exists()  # nothing lands in the single-run paths
    runs = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 2  # one W&B run per job, each with its own config
    configs = [wandb_config(r) for r in runs]
    assert sorted(c["stdp"]["eta"] for c in configs) == [0.01, 0.05]


def test_optuna_sweeper_searches_the_stdp_parameters(tmp_path, tiny_mnist):
    astdp("train", ["hparams_search=stdp_optuna", "hydra.sweeper.n_trials=3", "logger=none",
                    f"data.root={tiny_mnist}", *TINY], tmp_path)
    (sweep,) = (tmp_path / "multirun").iterdir()
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(result["best_params"]) == {"stdp.eta", "stdp.label_gain", "stdp.plays.generate.weight"}
    trials = {}
    for job in sorted(p for p in sweep.iterdir() if p.is_dir()):
        trials[job.name] = json.loads((job / "metrics/train.json").read_text())["val_acc"]
        stdp = torch.load(job / "models/last.ckpt", weights_only=False)["hyper_parameters"]["stdp"]
        assert 0.05 <= stdp["eta"] <= 0.4 and 0.003 <= stdp["plays"]["generate"]["weight"] <= 0.1
    assert len(trials) == 3
    assert result["best_value"] == pytest.approx(max(trials.values()))  # the sweeper read each job's val_acc


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the local MNIST mirror ../shared/mnist")
def test_dvc_queue_runs_a_sweep_that_exp_show_compares(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "WANDB_MODE": "offline"}

    def dvc(*args: str) -> str:
        done = subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    dvc("exp", "run", "--queue", "-S", "stdp.eta=0.1,0.3", "-S", "model=small", "-S", "trainer.max_epochs=1",
        "-S", "+trainer.limit_train_batches=100", "-S", f"data.mirrors=[{SHARED_MNIST}]", "-S", "logger=none",
        "-S", "generate.per_class=2")
    dvc("queue", "start", "--jobs", "1")
    deadline = time.time() + 900
    while "Queued" in (status := dvc("queue", "status")) or "Running" in status:
        assert time.time() < deadline, status
        time.sleep(5)
    assert "Failed" not in status, status + dvc("queue", "logs", status.split()[-1])
    done = {}
    for commit in json.loads(dvc("exp", "show", "--json")):  # the workspace, then main with its experiments
        for rev in (r for exp in commit["experiments"] or [] for r in exp["revs"]):
            data = rev["data"]
            eta = data["params"]["params.yaml"]["data"]["stdp"]["eta"]
            done[eta] = data["metrics"]["metrics/eval.json"]["data"]["test_accuracy"]
    assert set(done) == {0.1, 0.3}, done
    assert all(acc > 0.5 for acc in done.values()), done
    table = subprocess.run([sys.executable, "-m", "astdp.results"], cwd=repo, env=env, capture_output=True,
                           text=True, check=True).stdout
    (row,) = [line for line in table.splitlines() if "default" in line]
    assert any(f"{100 * acc:.2f}%" in row for acc in done.values()), table  # the newest experiment's
