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


def wandb_group(run_file: Path) -> str:
    """The group a W&B offline run belongs to."""
    return next(rec.run.run_group for rec in finished_records(run_file) if rec.HasField("run"))


def test_hydra_multirun_gives_each_job_its_own_folder_and_wandb_run(tmp_path, tiny_mnist):
    astdp("train", ["-m", "optim.lr=0.01,0.05", f"data.root={tiny_mnist}", *TINY], tmp_path)
    (sweep,) = (tmp_path / "multirun").iterdir()
    etas = {}
    for job in ("0", "1"):
        ckpt = torch.load(sweep / job / "models/last.ckpt", weights_only=True)
        etas[job] = ckpt["hyper_parameters"]["optim"]["lr"]
        assert json.loads((sweep / job / "metrics/train.json").read_text())["epochs"] == 2
    assert sorted(etas.values()) == [0.01, 0.05]
    assert not (tmp_path / "models").exists()  # nothing lands in the single-run paths
    runs = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 2  # one W&B run per job, each with its own config
    configs = [wandb_config(r) for r in runs]
    assert sorted(c["optim"]["lr"] for c in configs) == [0.01, 0.05]



@pytest.mark.slow  # each job is a process that submitit starts and watches
def test_submitit_local_launcher_runs_a_sweep_and_its_best_is_collected(tmp_path, tiny_mnist):
    """hydra/launcher=submitit_local, as hydra/launcher=slurm runs on a cluster: each job its own
    folder and W&B run, then `astdp-results --search` collects the sweep and names its best."""
    sweep = tmp_path / "sweep"
    astdp("train", ["-m", "hydra/launcher=submitit_local", "optim.lr=0.01,0.2", f"data.root={tiny_mnist}",
                    "hydra.output_subdir=.hydra", f"hydra.sweep.dir={sweep}", *TINY], tmp_path)
    accuracy = {job: json.loads((sweep / job / "metrics/train.json").read_text())["val_acc"] for job in ("0", "1")}
    assert (sweep / ".submitit").is_dir()  # submitit ran the jobs
    runs = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert sorted(wandb_config(r)["optim"]["lr"] for r in runs) == [0.01, 0.2]
    done = subprocess.run([str(Path(sys.executable).parent / "astdp-results"), "--search", "tiny", str(sweep)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "results/search/tiny.json").read_text())
    assert record["budget"]["trials"] == 2 and record["best"]["val_acc"] == max(accuracy.values())


def test_slurm_launcher_config_composes_for_a_multi_node_ddp_sweep():
    from hydra import compose, initialize_config_module

    with initialize_config_module("astdp.conf", version_base=None):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "trainer=slurm", "trainer.devices=4",
                                           "+trainer.num_nodes=2", "hydra.launcher.nodes=2"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.nodes == 2
    assert launcher.tasks_per_node == launcher.gpus_per_node == 4 and launcher.signal_delay_s == 90

@pytest.mark.slow  # a Jupyter kernel / an Optuna study: slow by nature
def test_optuna_sweeper_searches_the_stdp_parameters(tmp_path, tiny_mnist):
    astdp("train", ["hparams_search=stdp_optuna", "hydra.sweeper.n_trials=3", "logger=none",
                    f"data.root={tiny_mnist}", *TINY], tmp_path)
    (sweep,) = (tmp_path / "multirun").iterdir()
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(result["best_params"]) == {"optim.lr", "model.net.label_gain", "model.plays.generate.scale"}
    trials = {}
    for job in sorted(p for p in sweep.iterdir() if p.is_dir()):
        trials[job.name] = json.loads((job / "metrics/train.json").read_text())["val_acc"]
        hp = torch.load(job / "models/last.ckpt", weights_only=True)["hyper_parameters"]
        assert 0.05 <= hp["optim"]["lr"] <= 0.4 and 0.003 <= hp["plays"]["generate"]["scale"] <= 0.1
    assert len(trials) == 3
    assert result["best_value"] == pytest.approx(max(trials.values()))  # the sweeper read each job's val_acc


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the local MNIST mirror ../shared/mnist")
def test_dvc_queue_of_four_on_two_workers_matches_each_run_alone(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", WANDB_MODE="offline", WANDB_SILENT="true")

    def dvc(*args: str) -> str:
        done = subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    common = ["-S", "model=small", "-S", "trainer.max_epochs=1", "-S", "+trainer.limit_train_batches=100",
              "-S", f"data.mirrors=[{SHARED_MNIST}]", "-S", "generate.per_class=2", "-S", "judge.epochs=1"]
    lrs = ["0.1", "0.2", "0.3", "0.4"]
    dvc("exp", "run", "--queue", "-S", f"optim.lr={','.join(lrs)}", *common)
    # The workers outlive `dvc queue start`: give them no pipe of ours to hold open.
    subprocess.run(["dvc", "queue", "start", "--jobs", "2"], cwd=repo, env=env, check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def queue_status() -> str:
        """`dvc queue status`, asked again when it read a worker's file mid-write: DVC then fails
        with "unexpected error" and a JSON decoding message (its race, treeverse/dvc#8014)."""
        for _ in range(5):
            done = subprocess.run(["dvc", "queue", "status"], cwd=repo, env=env, capture_output=True, text=True,
                                  timeout=900)
            if done.returncode == 0 or "unexpected error" not in done.stdout + done.stderr:
                break
            time.sleep(2)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    deadline = time.time() + 1800
    while "Queued" in (status := queue_status()) or "Running" in status:
        assert time.time() < deadline, status
        time.sleep(5)
    assert "Failed" not in status, status + dvc("queue", "logs", status.split()[-1])
    queued = {}
    for commit in json.loads(dvc("exp", "show", "--json")):  # the workspace, then main with its experiments
        for rev in (r for exp in commit["experiments"] or [] for r in exp["revs"]):
            data = rev["data"]
            lr = data["params"]["params.yaml"]["data"]["optim"]["lr"]
            queued[lr] = {f: m["data"] for f, m in data["metrics"].items()}
    assert sorted(queued) == [float(lr) for lr in lrs], queued
    assert not any((repo / d).exists() for d in ("outputs", "multirun", "models"))  # nothing leaked here
    # ... but the queued runs' W&B runs outlive their temporary copies: in the workspace's wandb/,
    # each a run of its experiment's group (train, evaluate and generate).
    queued_runs = sorted((repo / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(queued_runs) == 3 * len(lrs)
    groups = [wandb_group(r) for r in queued_runs]
    assert len(set(groups)) == len(lrs) and all(groups.count(g) == 3 for g in groups)
    for lr in lrs:  # the same experiment alone, in the workspace
        dvc("exp", "run", "-S", f"optim.lr={lr}", *common)
        alone = {f: json.loads((repo / f).read_text()) for f in queued[float(lr)]}
        shown = {f: {k: v for k, v in m.items() if not isinstance(v, list)} for f, m in alone.items()}
        assert shown == queued[float(lr)], lr  # `dvc exp show` leaves out lists (each layer's read-out)
        assert alone["metrics/eval.json"]["test_accuracy"] > 0.5
    # Each run alone: one W&B run per stage, each with its own config.
    runs = sorted(set((repo / "wandb").glob("offline-run-*/run-*.wandb")) - set(queued_runs))
    assert len(runs) == 3 * len(lrs)
    configs = [wandb_config(r) for r in runs]
    assert sorted(c["optim"]["lr"] for c in configs if "optim" in c) == [float(lr) for lr in lrs]  # train runs
    table = subprocess.run([sys.executable, "-m", "astdp.results", "--collect"], cwd=repo, env=env,
                           capture_output=True, text=True, check=True).stdout
    (row,) = [line for line in table.splitlines() if "default `dvc repro`, hidden" in line]  # the results table's
    committed = json.loads((repo / "results/default.json").read_text())  # the sweep's runs are not the preset's
    assert f"{100 * committed['summary']['test_accuracy']['mean']:.2f} ± " in row


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the local MNIST mirror ../shared/mnist")
def test_an_experiment_pushed_from_one_clone_is_pulled_and_compared_in_another_without_retraining(tmp_path):
    """`dvc exp push` sends an experiment's commit to the git remote and its outputs to the DVC
    remote; a second clone gets its metrics and model with `dvc exp pull` and `dvc exp apply`."""
    origin, storage = tmp_path / "origin.git", tmp_path / "dvc-storage"
    subprocess.run(["git", "clone", "-q", "--bare", str(ROOT), str(origin)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", WANDB_MODE="offline", WANDB_SILENT="true")

    def clone(name: str) -> Path:
        repo = tmp_path / name
        subprocess.run(["git", "clone", "-q", str(origin), str(repo)], check=True)
        dvc(repo, "remote", "add", "--local", "-d", "storage", str(storage))
        return repo

    def dvc(repo: Path, *args: str) -> str:
        done = subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout + done.stderr

    a = clone("a")
    dvc(a, "exp", "run", "-n", "shared", "-S", "model=small", "-S", "trainer.max_epochs=1",
        "-S", "+trainer.limit_train_batches=50", "-S", f"data.mirrors=[{SHARED_MNIST}]",
        "-S", "generate.per_class=2", "-S", "judge.epochs=1", "-S", "logger=none")
    dvc(a, "exp", "push", "origin", "shared")

    b = clone("b")
    assert "shared" not in dvc(b, "exp", "list", "--name-only")
    pulled = dvc(b, "exp", "pull", "origin", "shared")
    shown = {rev["name"]: rev["data"]["metrics"] for commit in json.loads(dvc(b, "exp", "show", "--json"))
             for exp in commit.get("experiments") or [] for rev in exp["revs"]}
    expected = json.loads((a / "metrics/eval.json").read_text())
    assert shown["shared"]["metrics/eval.json"]["data"]["test_accuracy"] == expected["test_accuracy"]
    dvc(b, "exp", "apply", "shared")
    assert (b / "models/last.ckpt").read_bytes() == (a / "models/last.ckpt").read_bytes(), pulled
    assert "up to date" in dvc(b, "status")  # nothing to rerun: b has what a made
    assert not (b / "wandb").exists()
