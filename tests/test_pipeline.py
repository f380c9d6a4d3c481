"""The stages end to end on small synthetic data: train, evaluate, generate, W&B, errors."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

from astdp.errors import StageError

from astdp.stages.evaluate import evaluate
from astdp.stages.generate import generate
from astdp.stages.judge import make_judge
from astdp.stages.train import flushed_denormals, train
from tests.conftest import ROOT, compose_config, copy_run, linear_accuracy
from tests.wandb_reader import finished_records


def test_train_evaluate_generate(cfg_tiny, tmp_path):
    judge = make_judge(cfg_tiny)
    assert judge["judge_val_accuracy"] > 0.9 and Path("models/judge.pt").is_file()
    metrics = train(cfg_tiny)
    assert metrics["epochs"] == 4 and metrics["val_acc"] >= linear_accuracy() - 0.05
    # each hidden layer's linear probe on validation, fitted on the training split only
    assert len(metrics["val_readout_accuracy"]) == 1 and metrics["val_readout_accuracy"][0] >= linear_accuracy() - 0.05
    assert (torch.tensor([1e-39]) * 1.0).item() > 0  # denormals were flushed only while it trained
    assert Path("models/last.ckpt").is_file()
    curve = json.loads(Path("plots/train_curve.json").read_text())
    assert [r["epoch"] for r in curve] == [1, 2, 3, 4] and "val_acc" in curve[0] and "train_acc" in curve[0]
    ev = evaluate(cfg_tiny)
    assert ev["test_accuracy"] >= linear_accuracy() - 0.05
    assert sum(map(sum, ev["confusion_matrix"])) == 200 and len(ev["per_class_accuracy"]) == 10
    # torchmetrics' per-class accuracy is the confusion matrix's diagonal over its rows (true classes)
    rows = ev["confusion_matrix"]
    assert list(ev["per_class_accuracy"].values()) == [round(r[c] / max(sum(r), 1), 5) for c, r in enumerate(rows)]
    assert len(ev["readout_accuracy"]) == 1 and ev["readout_accuracy"][0] >= linear_accuracy() - 0.05
    # the fills that know nothing of the network, in the order they know more of the data
    assert ev["inpaint_mse_blank"] > ev["inpaint_mse_mean"] > ev["inpaint_mse_knn"]
    assert ev["inpaint_mse"] < ev["inpaint_mse_blank"] and ev["occluded_accuracy_knn"] >= linear_accuracy() - 0.05
    assert len(json.loads(Path("plots/confusion.json").read_text())) == 200
    gen = generate(cfg_tiny)
    # 4 epochs on 500 images teach classification, hardly generation: the instruments say so
    assert gen["judge_accuracy"] < 0.5 and gen["precision"] < 0.5 and gen["fid"] > gen["fid_class_means"]
    assert gen["judge_test_accuracy"] > 0.9 and 0 < gen["variety_ratio"] < 1
    assert gen["fid_real_train"] < gen["fid_class_means"]  # real images are the floor
    # half-occluded test images completed by the network and by memory, as the judge reads them
    assert gen["inpaint_judge_accuracy_knn"] > 0.5 and 0 <= gen["inpaint_judge_accuracy"] <= 1
    assert Path("samples/digits.png").is_file() and Path("samples/inpaint.png").is_file()
    from PIL import Image  # chains: 10 classes x the sampler's steps (8 at least); nearest: a sample and 5 neighbours

    cell = 2 * (28 + 2)  # a 28-pixel image and its padding, drawn at twice the size
    steps = max(8, cfg_tiny.generate.settle_steps)
    assert Image.open("samples/chains.png").size == (steps * cell + 4, 10 * cell + 4)
    assert Image.open("samples/nearest.png").size == (6 * cell + 4, 10 * cell + 4)
    headline, details = (json.loads(Path(f"{d}/generate.json").read_text()) for d in ("metrics", "reports"))
    assert headline | details == gen and all(isinstance(v, (int, float)) for v in headline.values())
    assert set(details) == {"judge_per_class", "variety_per_class"}
    cfg_tiny.generate.window = 4  # each pixel's mean over 4 spike draws: less speckle, less spread
    assert generate(cfg_tiny)["variety_ratio"] < 0.8 * gen["variety_ratio"]


def test_training_flushes_denormals_only_while_it_runs():
    tiny = torch.tensor([1e-39])  # a denormal float32
    with flushed_denormals():
        inside = (tiny * 1.0).item()
    assert inside == 0.0 and (tiny * 1.0).item() > 0  # callers (tests, notebooks) keep IEEE floats


def test_seeded_runs_are_bit_identical(cfg_tiny, tmp_path):
    weights = []
    for run in ("a", "b"):
        with open_dict(cfg_tiny):
            cfg_tiny.ckpt_path = f"models/{run}.ckpt"
            cfg_tiny.model.settle_inertia = 0.2
        train(cfg_tiny)
        weights.append(torch.load(f"models/{run}.ckpt", weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_backprop_baseline_runs_through_the_same_stages(cfg_tiny):
    cfg_tiny.model = compose_config(["experiment=baseline", "model.net.hidden=[128]"]).model
    cfg_tiny.optim.lr, cfg_tiny.optim.weight_decay = 0.1, 0.0
    assert train(cfg_tiny)["val_acc"] >= linear_accuracy() - 0.05
    assert evaluate(cfg_tiny)["test_accuracy"] >= linear_accuracy() - 0.05
    assert generate(cfg_tiny)["judge_accuracy"] is None


def test_wandb_offline_runs_hold_what_a_researcher_opens(cfg_tiny, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("DVC_EXP_NAME", "tiny-exp")
    with open_dict(cfg_tiny):
        cfg_tiny.logger = compose_config().logger
        cfg_tiny.logger.save_dir = str(tmp_path)
    cfg_tiny.trainer.log_every_n_steps = 5
    make_judge(cfg_tiny), train(cfg_tiny), evaluate(cfg_tiny)
    generated = generate(cfg_tiny)
    console = capfd.readouterr()
    lines = (console.out + console.err).splitlines()
    # every stage that works for more than a moment says what it is at
    for start in ("judge epoch 1/", "epoch 1/", "evaluate: test accuracy", "evaluate: each hidden layer's linear read-out",
                  "generate: 40 samples drawn", "generate: measured against the test images"):
        assert any(line.startswith(start) for line in lines), start
    said = [line for line in lines if "W&B" in line or line.startswith("wandb:")]
    assert [line.split(" saved in ")[0] for line in said] == ["W&B run tiny-exp-s0-train", "W&B run tiny-exp-evaluate",
                                                                  "W&B run tiny-exp-s0-generate"], said
    runs = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 3  # train, evaluate, generate
    # by name, not by folder: two runs that start in the same second sort by a random id
    by_name = {next(r.run.display_name for r in recs if r.HasField("run")): recs
               for recs in (finished_records(f) for f in runs)}
    train_run, eval_run, gen_run = (by_name[f"tiny-exp{s}"] for s in ("-s0-train", "-evaluate", "-s0-generate"))

    history = [r for r in train_run if r.HasField("history")]
    keys = [i.key or "/".join(i.nested_key) for r in history for i in r.history.item]
    assert {"val/acc", "train/acc", "val/recon_mse", "samples/_type", "receptive_fields/_type"} <= set(keys)  # media: nested keys
    assert keys.count("lr") == 4 * 16 // 5  # every 5th of 4 epochs of 16 steps (500 images, 32 a batch)
    (run,) = [r.run for r in train_run if r.HasField("run")][:1]
    assert run.run_group == "tiny-exp" and "preset:default" in run.tags
    assert any(r.HasField("artifact") and r.artifact.type == "model" for r in train_run)
    # Lineage: the train run read the dataset and made the model; evaluate read that model.
    # W&B cannot declare a used artifact offline: the run's config names it, with its files' sha256.
    used = lambda records, kind: next(json.loads(i.value_json) for r in records if r.HasField("config")
                                      for i in r.config.update if i.key == f"used_{kind}")
    assert used(train_run, "dataset")["artifact"] == cfg_tiny.data.name
    model_sha = hashlib.sha256(Path(cfg_tiny.ckpt_path).read_bytes()).hexdigest()
    assert used(eval_run, "model") == {"artifact": "tiny-exp-model", "sha256": {"last.ckpt": model_sha}}
    assert used(gen_run, "model") == used(eval_run, "model") and used(gen_run, "judge")["artifact"] == "judge-mnist"
    # generate: its numbers in the summary (no one-point charts), and a table of samples with the judge's verdicts
    gen_summary = {i.key: json.loads(i.value_json) for r in gen_run if r.HasField("summary") for i in r.summary.update}
    assert gen_summary["fid"] == generated["fid"] and gen_summary["judge_accuracy"] == generated["judge_accuracy"]
    gen_logged = {i.key or "/".join(i.nested_key) for r in gen_run if r.HasField("history") for i in r.history.item}
    assert "samples_table/_type" in gen_logged and "fid" not in gen_logged, gen_logged
    config = [r for r in train_run if r.HasField("config")]
    assert any((i.key or i.nested_key[0]) == "optim" for r in config for i in r.config.update)
    summary = {i.key: i.value_json for r in eval_run if r.HasField("summary") for i in r.summary.update}
    assert json.loads(summary["test_accuracy"]) == evaluate(cfg_tiny)["test_accuracy"]
    logged = {i.key or "/".join(i.nested_key) for r in eval_run if r.HasField("history") for i in r.history.item}
    assert {"per_class_accuracy/_type", "confusion_matrix_table/_type"} <= logged, logged


def test_missing_or_damaged_checkpoint_is_one_line(tmp_path, tiny_mnist, cfg_tiny):
    cfg_tiny.ckpt_path = f"{tmp_path}/none.ckpt"
    with pytest.raises(StageError, match=r"none.ckpt is missing; train first with `astdp-train`"):
        evaluate(cfg_tiny)
    base = [sys.executable, "-m", "astdp.stages.evaluate", f"data.root={tiny_mnist}", "data.verify=false",
            "logger=none"]
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    done = subprocess.run([*base, f"ckpt_path={bad}"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and "bad.ckpt is damaged" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_evaluate_reports_the_checkpoints_model_whatever_conf_says(cfg_tiny, tmp_path, finished_run):
    from astdp.training.checkpoints import load_model

    copy_run(finished_run[0], tmp_path)
    trained = finished_run[2]["eval"]
    other = compose_config(["model=wide", "experiment=baseline"])  # conf/ now names another model
    cfg_tiny.model, cfg_tiny.optim = other.model, other.optim
    assert evaluate(cfg_tiny) == trained
    module = load_model("models/last.ckpt")
    assert type(module).__name__ == "ASTDPModule" and module.net.sizes == [794, 128]
    assert module.hparams.net["hidden"] == [128]  # the checkpoint carries the config that built it


def test_evaluate_classifies_whole_and_half_images_with_the_keys_steps(cfg_tiny, tmp_path, finished_run, monkeypatch):
    """Whole images settle evaluate.settle_steps (not what the checkpoint validated with: 3 here),
    half-hidden ones evaluate.occluded_steps."""
    from astdp.nets.visible import VisibleLabelNet

    copy_run(finished_run[0], tmp_path)
    calls, classify = [], VisibleLabelNet.classify

    def spy(net, x, steps, known=None):
        calls.append((steps, known is not None))
        return classify(net, x, steps, known)

    monkeypatch.setattr(VisibleLabelNet, "classify", spy)
    cfg_tiny.evaluate.settle_steps, cfg_tiny.evaluate.occluded_steps = 2, 5
    evaluate(cfg_tiny)
    assert {steps for steps, half in calls if not half} == {2} and {steps for steps, half in calls if half} == {5}


def test_training_the_judge_and_the_benchmarks_never_read_the_test_images(cfg_tiny, tiny_mnist, monkeypatch):
    """The test split is read once, at the end: by the evaluate and generate stages only."""
    import astdp.data.datamodule

    read, sealed = [], [True]

    def guarded(root, split, *args, **kwargs):
        read.append(split)
        assert split != "test" or not sealed[0], "the test images were read"
        return load_split(root, split, *args, **kwargs)

    load_split = astdp.data.datamodule.load_split
    monkeypatch.setattr(astdp.data.datamodule, "load_split", guarded)
    make_judge(cfg_tiny), train(cfg_tiny)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench
    import feedback

    monkeypatch.setattr(bench.CONF.data, "verify", False)  # the synthetic digits: no checksums,
    monkeypatch.setattr(bench.CONF.data, "val_size", 100)  # a smaller validation draw
    composed = bench.composed

    def unverified(*overrides):  # the same for the preset feedback.py composes
        conf = composed(*overrides)
        conf.data.verify, conf.data.val_size = False, 100
        return conf

    monkeypatch.setattr(bench, "composed", unverified)
    bench.load_data(str(tiny_mnist), "cpu")
    for options in (["rule"], ["dream", "--dream-on", "rates", "--feedback-lr", "10"]):  # the second: Fy by plain SGD
        monkeypatch.setattr(sys, "argv", ["feedback.py", "--feedback", *options, "--hidden", "16", "--epochs", "1",
                                          "--data-root", str(tiny_mnist)])
        feedback.main()
    import inpaint_ceiling

    OmegaConf.save(cfg_tiny, "params.yaml")  # the run folder, as dvc repro leaves it
    ceiling = inpaint_ceiling.ceilings(Path.cwd(), str(tiny_mnist), train_size=200)
    assert all(0 < ceiling[k] < 1 for k in ("net", "knn", "code_any_side", "code_and_visible"))
    import sample_variety

    spread = sample_variety.variety(Path.cwd(), str(tiny_mnist), per_class=5, k=2)
    assert spread["spread"] > 0 and 0 <= spread["style_share"] <= 1 + 1e-6
    with open_dict(cfg_tiny):  # searches of sampling and in-painting settings: measured on validation only
        cfg_tiny.generate.measure_on = cfg_tiny.evaluate.measure_on = "val"
    assert "fid_val" in generate(cfg_tiny) and set(read) == {"train"}
    measured = evaluate(cfg_tiny)
    assert {"accuracy_val", "inpaint_mse_val", "inpaint_mse_knn_val"} <= set(measured) and set(read) == {"train"}
    cfg_tiny.evaluate.measure_on = "test"
    sealed[0], before = False, len(read)
    evaluate(cfg_tiny)  # the end: here the test images are read
    assert "test" in read[before:]


def test_the_end_of_make_repro_gives_the_headline_and_shares_only_with_a_remote(finished_run, tmp_path):
    folder, _, metrics = finished_run
    run = copy_run(folder, tmp_path / "run")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=run, check=True, env=env)
    def said() -> str:
        done = subprocess.run([sys.executable, str(ROOT / "scripts/headline.py")], cwd=run, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    out = said()
    assert f"test accuracy {100 * metrics['eval']['test_accuracy']:.2f}%" in out and "share" not in out
    subprocess.run(["dvc", "remote", "add", "-d", "-q", "storage", str(tmp_path / "remote")], cwd=run, check=True, env=env)
    assert "share" not in said()  # named, but not there
    (tmp_path / "remote").mkdir()
    assert "share: dvc push" in said()


def test_a_stage_run_by_hand_writes_its_own_run_folder_and_the_next_stage_reads_it(tiny_mnist, tmp_path):
    """Outside DVC, astdp-train writes under runs/<time>/ and leaves ./models and ./metrics (the
    DVC outputs) alone; astdp-evaluate given the same hydra.run.dir reads that run's model."""
    common = [f"data.root={tiny_mnist}", "data.verify=false", "data.val_size=100", "model=small", "logger=none",
              "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "data.batch_size=32"]
    stage = lambda name, *args: subprocess.run([sys.executable, "-m", f"astdp.stages.{name}", *common, *args],
                                               capture_output=True, text=True, cwd=tmp_path)
    done = stage("train")
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "models/last.ckpt").is_file() and (run / "metrics/train.json").is_file()
    assert not (tmp_path / "models").exists() and not (tmp_path / "metrics").exists()
    done = stage("evaluate", f"hydra.run.dir={run}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((run / "metrics/eval.json").read_text())["test_accuracy"] > 0.5
    missing = stage("evaluate", f"hydra.run.dir={tmp_path / 'elsewhere'}")
    assert missing.returncode == 1 and "hydra.run.dir=<the training run's folder>" in missing.stderr
    assert not (tmp_path / "elsewhere").exists()  # a failed run leaves no empty folder behind
