"""The results table: committed records of each preset, written into the README's block only."""
import json

import pytest
from omegaconf import OmegaConf

from astdp.results import (END, START, collect, depth_table, paired, preset_config, preset_hidden, shown_runs,
                           summarize, table, write_into)
from tests.conftest import ROOT, tiny_config


def test_records_and_rows_come_from_the_metrics_files(finished_run, monkeypatch):
    import yaml

    import astdp.results

    published = yaml.safe_load((ROOT / "results" / "published.yaml").read_text())
    monkeypatch.setattr(astdp.results, "PUBLISHED", ROOT / "results" / "published.yaml")
    folder, data, _ = finished_run
    metrics = {name: {"data": json.loads((folder / "metrics" / f"{name}.json").read_text())}
               for name in ("train", "eval", "generate")}
    params = OmegaConf.to_container(tiny_config(data), resolve=True, enum_to_str=True)
    exp_show = [{"rev": "workspace", "name": None, "experiments": None,
                 "data": {"timestamp": None, "params": {"params.yaml": {"data": params}},
                          "metrics": {f"metrics/{k}.json": v for k, v in metrics.items()}}}]
    keyed = collect(shown_runs(exp_show, "0123456789abcdef"), changed=lambda params, name: set())  # as if a preset
    assert list(keyed) == [("default", (128,))]
    records = {name: r for (name, _), r in keyed.items()}
    record = records["default"]
    (seed,) = record["seeds"]
    assert record["command"] == "dvc exp run" and seed["commit"] == "0123456789abcdef" and seed["seed"] == 0
    assert "per_class_accuracy" not in seed["metrics"]["eval"]  # headline numbers only
    text = table(records)
    acc = metrics["eval"]["data"]["test_accuracy"]
    judge = metrics["generate"]["data"]["judge_accuracy"]
    assert record["summary"]["test_accuracy"] == {"mean": acc, "std": 0.0, "n": 1}
    (row,) = [line for line in text.splitlines() if "default" in line]
    assert f"{100 * acc:.2f} ± 0.00 (1)" in row and f"{100 * judge:.2f} ± 0.00 (1)" in row and "0123456" in row
    assert text.count("*published:*") == len(published) > 0  # marked as published, not measured


def test_readme_block_is_replaced_and_the_rest_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold table\n{END}\nafter\n")
    write_into(readme, "| new |")
    assert readme.read_text() == f"intro\n{START}\n| new |\n{END}\nafter\n"
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="results:start"):
        write_into(readme, "| new |")
    assert readme.read_text() == "no markers"


def record(name, hidden, accs, epochs=20, readouts=None):
    seeds = [{"seed": i, "commit": "abcdef0", "metrics": {"eval": {"test_accuracy": a, "readout_accuracy": readouts or []},
                                                          "train": {"epochs": epochs, "val_acc": a}}}
             for i, a in enumerate(accs)]
    return {"preset": name, "hidden": hidden, "command": f"dvc exp run -S experiment={name}", "seeds": seeds,
            "summary": summarize(seeds)}


def test_inpaint_table_sets_each_preset_beside_memory():
    from astdp.results import inpaint_table

    seeds = [{"seed": i, "metrics": {"eval": {"inpaint_mse": m, "inpaint_mse_knn": 0.04, "inpaint_mse_mean": 0.07,
                                               "occluded_accuracy": 0.7, "occluded_accuracy_knn": 0.9},
                                      "generate": {"inpaint_judge_accuracy": j, "inpaint_judge_accuracy_knn": 0.92}}}
             for i, (m, j) in enumerate([(0.05, 0.86), (0.052, 0.88)])]
    records = {"default": {"summary": summarize(seeds)}, "baseline": {"summary": summarize([])}}  # a twin has no fill
    header, _, row = inpaint_table(records).splitlines()
    assert header.count("|") == row.count("|") and "baseline" not in row
    assert row.startswith("| aSTDP, default `dvc repro` | 0.0510 ± 0.0014 (2) | 0.0400 ± 0.0000 (2) | 0.0700 ± 0.0000 (2) "
                          "| 87.0 ± 1.4 (2) | 92.0 ± 0.0 (2) | 70.0 ± 0.0 (2) | 90.0 ± 0.0 (2) |"), row


def test_depth_table_pairs_each_size_with_its_twin():
    records = {("invariant", (10, 10)): record("invariant", [10, 10], [0.98, 0.96], readouts=[0.9, 0.2]),
               ("invariant_baseline", (10, 10)): record("invariant_baseline", [10, 10], [0.97]),
               ("invariant", (10,)): record("invariant", [10], [0.96]), ("invariant", (5, 5)): record("invariant", [5, 5], [0.95]),
               ("invariant", (20,)): record("invariant", [20], [0.99])}
    rows = depth_table(records).splitlines()[2:]
    assert rows[0].startswith("| [5, 5] | 95.00 ± 0.00 (1) |")  # by width, then shallow first
    assert rows[1].startswith("| [10] | 96.00 ± 0.00 (1) |")
    # seed mean ± sample std (n), and each layer's own read-out: a nearly silent top layer shows
    assert rows[2].startswith("| [10, 10] | 97.00 ± 1.41 (2) | 97.00 ± 1.41 (2) | 90.00 ± 0.00 (2) / 20.00 ± 0.00 (2) "
                              "| 97.00 ± 0.00 (1) | 20 | - |"), rows[2]
    assert rows[3].startswith("| [20] |")
    assert len(preset_hidden("invariant")) == 1  # at width 1000 validation prefers one layer (docs/findings.md)


def test_depth_table_takes_each_size_epoch_time_from_the_deep_rows_of_a_bench():
    bench = {"device": "cpu", "threads": 2, "scaling": [
        {"net": "VisibleLabelNet", "hidden": [10], "astdp_epoch_s": 9.0, "backprop_epoch_s": 1.0},  # another network
        {"net": "JoinedLabelNet", "hidden": [10], "astdp_epoch_s": 3.0, "backprop_epoch_s": 1.5}]}
    header, _, row = depth_table({("invariant", (10,)): record("invariant", [10], [0.9], epochs=2)}, bench).splitlines()
    assert "cpu 2 threads" in header
    assert "| 3.0 / 1.5 (2.00x) |" in row


def test_rows_are_paired_with_their_twin_seed_by_seed():
    ours, twin = record("invariant", [10], [0.981, 0.975, 0.990]), record("invariant_baseline", [10], [0.980, 0.978])
    assert paired(ours, twin) == "-0.10 (+0.10, -0.30)"  # seed 2 has no twin: left out
    assert paired(ours, None) == "-"
    summary = summarize(ours["seeds"])["test_accuracy"]
    assert summary["n"] == 3 and summary["mean"] == pytest.approx(0.982) and summary["std"] == pytest.approx(0.0075498, abs=1e-6)


def test_a_depth_run_with_its_own_learning_rate_says_so_in_its_command():
    def newest(name, lr):
        params = {"name": name, "seed": 0, "model": {"net": {"hidden": [10]}}, "optim": {"lr": lr},
                  "data": {"name": "mnist", "max_shift": 0}}
        rev = {"name": "some-exp", "data": {"timestamp": "2026-01-01", "params": {"params.yaml": {"data": params}},
                                           "metrics": {"metrics/eval.json": {"data": {"test_accuracy": 0.9}}}}}
        (record,) = collect(shown_runs([{"rev": "abcdef0", "experiments": [{"revs": [rev]}]}], "head")).values()
        return record["command"]

    own = preset_config("invariant_baseline").optim.lr
    assert newest("invariant_baseline", own / 2) == (
        f"dvc exp run -S experiment=invariant_baseline -S 'model.net.hidden=[10]' -S optim.lr={own / 2}")
    assert "optim.lr" not in newest("invariant_baseline", own)  # the preset's own rate: nothing to add


def test_a_run_with_overrides_its_row_would_not_name_is_not_collected():
    def run(name, timestamp, **optim):
        params = {"name": name, "seed": 0, "model": model(name, preset_hidden(name)),
                  "data": {"name": "mnist", "max_shift": preset_config(name).data.max_shift},
                  "optim": {**preset_config(name).optim, **optim}, "evaluate": dict(preset_config(name).evaluate),
                  "generate": dict(preset_config(name).generate)}
        return {"name": f"exp-{timestamp}", "data": {"timestamp": timestamp, "params": {"params.yaml": {"data": params}},
                                                   "metrics": {"metrics/eval.json": {"data": {"test_accuracy": 0.9}}}}}

    sweep = {"_target_": "torch.optim.AdamW"}  # a newer trial of another optimizer
    shown = [{"rev": "abcdef0", "experiments": [{"revs": [run("invariant", "2026-01-01"), run("invariant", "2026-01-02", **sweep)]}]}]
    assert experiments(shown) == ["exp-2026-01-01"]
    half = preset_config("invariant").optim.lr / 2  # a newer trial of another rate at the preset's own size
    shown = [{"rev": "abcdef0", "experiments": [{"revs": [run("invariant", "2026-01-01"), run("invariant", "2026-01-02", lr=half)]}]}]
    assert experiments(shown) == ["exp-2026-01-01"]
    averaged = run("invariant", "2026-01-02")  # a newer run that added a callback (callbacks=ema)
    averaged["data"]["params"]["params.yaml"]["data"]["callbacks"] = {"ema": {"_target_": "astdp.training.callbacks.WeightAverage"}}
    shown = [{"rev": "abcdef0", "experiments": [{"revs": [run("invariant", "2026-01-01"), averaged]}]}]
    assert experiments(shown) == ["exp-2026-01-01"]
    paper = [run("shifts", "2026-01-01"), run("shifts", "2026-01-02", lr=0.5)]  # a row names no lr but the depth rows'
    assert experiments([{"rev": "abcdef0", "experiments": [{"revs": paper}]}]) == [
        "exp-2026-01-01"]


def plays(name: str) -> dict:
    """The preset's plays, as its runs' params.yaml holds them (a run without them played no completion)."""
    return OmegaConf.to_container(preset_config(name).model.plays)


def model(name: str, hidden: list[int]) -> dict:
    """The preset's model at ``hidden`` as its runs' params.yaml holds it: its plays and its memory
    (a run without the memory's keys had none)."""
    m = preset_config(name).model
    if "memory" not in m.net:
        return {"net": {"hidden": hidden}, "plays": plays(name)}
    return {"net": {"hidden": hidden, "memory": m.net.memory}, "plays": plays(name), "memory_lr": m.memory_lr}


def experiments(shown):
    return [s["experiment"] for r in collect(shown_runs(shown, "head")).values() for s in r["seeds"]]


def test_an_experiment_still_running_is_not_collected():
    # a queued or running experiment shows the metrics of the workspace it was copied from
    def exp(name, timestamp, state):
        params = {"name": "invariant", "seed": 0, "model": model("invariant", [10]),
                  "optim": dict(preset_config("invariant").optim),
                  "data": {"name": "mnist", "max_shift": 0}, "evaluate": dict(preset_config("invariant").evaluate),
                  "generate": dict(preset_config("invariant").generate)}
        rev = {"name": name, "data": {"timestamp": timestamp, "params": {"params.yaml": {"data": params}},
                                      "metrics": {"metrics/eval.json": {"data": {"test_accuracy": 0.9}}}}}
        return {"name": name, "revs": [rev], "executor": {"state": state} if state else None}

    shown = [{"rev": "abcdef0", "experiments": [exp("done", "2026-01-01", "success"), exp("old", "2025-01-01", None),
                                                exp("running", "2026-01-02", "running"), exp("queued", None, "queued"),
                                                exp("failed", "2026-01-03", "failed")]}]
    assert experiments(shown) == ["done"]


def sweep_job(job, overrides: list[str], seed: int = 0, **metrics: dict) -> None:
    """A finished Hydra multirun job as `astdp-results --search` reads it: its overrides and
    config under .hydra/, and ``metrics/<stage>.json`` for each ``stage=dict`` given."""
    import yaml

    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "data": {"val_size": 5000}}))
    for stage, values in metrics.items():
        (job / "metrics").mkdir(exist_ok=True)
        (job / "metrics" / f"{stage}.json").write_text(json.dumps(values))


def test_a_search_record_holds_every_finished_trial_its_budget_and_the_choice(tmp_path):
    from astdp.results import search_record

    for i, (lr, val) in enumerate([(0.1, 0.95), (0.2, 0.97), (0.4, None)]):  # the last one was stopped
        sweep_job(tmp_path / "sweep" / str(i), [f"optim.lr={lr}"],
                  **({} if val is None else {"train": {"epochs": 8, "val_acc": val}}))
    record = search_record("default", [tmp_path / "sweep"])
    assert record["budget"] == {"trials": 2, "epochs": [8], "seeds": [0], "stopped": 1}
    assert record["chosen"]["overrides"] == ["optim.lr=0.2"] and len(record["trials"]) == 2


def test_every_seed_of_a_preset_is_collected_into_one_record():
    """Seed 2 ran under the preset's old name (experiment=deep until 0.23.0): it is the same row."""
    def run(seed, timestamp, name="invariant"):
        params = {"name": name, "seed": seed, "model": model("invariant", preset_hidden("invariant")),
                  "data": {"name": "mnist", "max_shift": 0, "seed": seed},  # data.seed follows the seed
                  "optim": dict(preset_config("invariant").optim), "evaluate": dict(preset_config("invariant").evaluate),
                  "generate": dict(preset_config("invariant").generate)}
        return {"name": f"s{seed}", "data": {"timestamp": timestamp, "params": {"params.yaml": {"data": params}},
                                             "metrics": {"metrics/eval.json": {"data": {"test_accuracy": 0.98 + seed / 100}}}}}

    shown = [{"rev": "abcdef0", "experiments": [{"revs": [run(0, "1"), run(1, "2"), run(2, "3", "deep"), run(1, "4")]}]}]
    (record,) = collect(shown_runs(shown, "head")).values()
    assert record["preset"] == "invariant" and record["command"].startswith("dvc exp run -S experiment=invariant ")
    assert [s["seed"] for s in record["seeds"]] == [0, 1, 2] and record["seeds"][1]["experiment"] == "s1"
    assert record["summary"]["test_accuracy"]["n"] == 3


def test_collected_metrics_are_the_files_the_run_wrote_lists_included(tmp_path, monkeypatch):
    # `dvc exp show` leaves out list-valued metrics; the record reads the run's own file
    monkeypatch.chdir(tmp_path)
    params = {"name": "default", "seed": 0}
    shown = [{"rev": "abcdef0", "experiments": [{"revs": [{"rev": "e" * 40, "name": "exp", "data": {
        "timestamp": "1", "params": {"params.yaml": {"data": params}},
        "metrics": {"metrics/eval.json": {"data": {"test_accuracy": 0.97}}}}}]}]}]
    files = {("e" * 40, "metrics/eval.json"): {"test_accuracy": 0.97, "readout_accuracy": [0.96, 0.5]}}
    (run,) = shown_runs(shown, "head", lambda rev, path: files.get((rev, path)))
    assert run.metrics["eval"]["readout_accuracy"] == [0.96, 0.5]


def test_a_sampling_search_is_chosen_by_the_lowest_validation_distance(tmp_path):
    from astdp.results import search_record

    for i, (window, fid, judged) in enumerate([(1, 300.0, 0.99), (4, 120.0, 0.9), (2, 200.0, 0.985)]):
        sweep_job(tmp_path / "sweep" / str(i), [f"generate.window={window}"],
                  generate={"fid_val": fid, "fid": 1.0, "judge_accuracy": judged})
    record = search_record("s", [tmp_path / "sweep"], "generate.fid_val", lower=True)
    assert record["chosen"]["overrides"] == ["generate.window=4"] and record["criterion"] == "lowest generate.fid_val"
    assert record["budget"] == {"trials": 3, "epochs": [], "seeds": [0], "stopped": 0}
    assert all("fid" not in t for t in record["trials"])  # the test-split distance is not what chose
    # With a requirement, the lowest distance among the trials that meet it; every trial stays on record.
    record = search_record("s", [tmp_path / "sweep"], "generate.fid_val", lower=True,
                           require=["generate.judge_accuracy>=0.98"])
    assert record["chosen"]["overrides"] == ["generate.window=2"] and [t["meets"] for t in record["trials"]] == [True, False, True]
    assert record["criterion"] == "lowest generate.fid_val where generate.judge_accuracy>=0.98"
    with pytest.raises(SystemExit, match="no finished trial meets"):
        search_record("s", [tmp_path / "sweep"], "generate.fid_val", lower=True, require=["generate.judge_accuracy>=0.999"])


def test_a_search_keeps_its_incumbent_unless_beaten_by_more_than_one_standard_error(tmp_path):
    from astdp.results import search_record

    def sweep(name, vals):
        for i, val in enumerate(vals):
            sweep_job(tmp_path / name / str(i), [f"x={i}"], train={"epochs": 8, "val_acc": val})
        return tmp_path / name

    # at 97% one standard error of 5000 images is 0.24 points
    close = search_record("s", [sweep("close", [0.9690, 0.9706])], keep=0)
    assert close["best"]["overrides"] == ["x=1"] and close["chosen"]["overrides"] == ["x=0"]
    assert abs(close["rule"]["kept_unless_beaten_by_more_than"] - (0.969 * 0.031 / 5000) ** 0.5) < 1e-6
    far = search_record("s", [sweep("far", [0.9690, 0.9730])], keep=0)
    assert far["chosen"]["overrides"] == ["x=1"]


def test_the_accuracy_figure_draws_every_measured_preset(tmp_path):
    from astdp.results import accuracy_figure

    records = {"default": record("default", [8], [0.97, 0.971]) | {"unsupervised": False},
               "baseline": record("baseline", [8], [0.972]) | {"unsupervised": False}}
    png = accuracy_figure(records, tmp_path / "figures" / "accuracy.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert not list(png.parent.glob(".*.tmp"))  # written whole, no temporary left


def test_a_run_made_before_its_classes_moved_is_still_its_presets():
    """A 0.18.0 run names astdp.core.ASTDPNet; the preset now names its new path: no change.
    A run of another network is a change."""
    from astdp.results import changed_keys

    params = OmegaConf.to_container(preset_config("default"), resolve=True, enum_to_str=True)
    params["model"]["net"]["_target_"] = "astdp.core.ASTDPNet"
    params["lr_schedule"]["_target_"] = "astdp.lit.cosine_schedule"
    assert changed_keys(params, "default") == set()
    params["model"]["net"]["_target_"] = "astdp.deep.DeepNet"
    assert changed_keys(params, "default") == {"model.net._target_"}


def test_the_figures_and_each_presets_pictures_come_from_the_records(tmp_path, monkeypatch, capsys):
    import astdp.results
    from astdp.results import main

    run = tmp_path / "run"  # a finished run's folder: its pictures
    (run / "samples").mkdir(parents=True)
    (run / "samples" / "digits.png").write_bytes(b"\x89PNG digits")
    results = tmp_path / "results"
    (results / "depth").mkdir(parents=True)
    monkeypatch.setattr(astdp.results, "RESULTS", results)
    monkeypatch.setattr(astdp.results, "PUBLISHED", results / "published.yaml")
    curve = [{"epoch": e, "val_acc": 0.9 + e / 100} for e in (1, 2, 3)]
    for name, where in (("default", str(run)), ("baseline", None), ("invariant", str(tmp_path / "gone"))):
        r = record(name, [10], [0.97, 0.96])
        for s in r["seeds"]:
            s.update(curve=curve, where=where)
            s["metrics"]["generate"] = {"judge_accuracy": 0.99}
        (results / f"{name}.json").write_text(json.dumps({**r, "dataset": "mnist", "max_shift": 0, "unsupervised": False}))
    for name, hidden in (("invariant", [10]), ("invariant", [10, 10]), ("invariant_baseline", [10])):
        (results / "depth" / f"{name}-{len(hidden)}.json").write_text(json.dumps(record(name, hidden, [0.98, 0.97])))
    main(["--figure", str(tmp_path / "figures/accuracy.png")])
    figures = tmp_path / "figures"
    assert (figures / "default-digits.png").read_bytes() == b"\x89PNG digits"
    for drawn in ("accuracy", "curves", "depth"):
        assert (figures / f"{drawn}.png").read_bytes()[:4] == b"\x89PNG", drawn
    assert "no samples/digits.png of invariant" in capsys.readouterr().err  # named, not skipped in silence
    assert not list(figures.glob("invariant-*"))


def test_a_search_over_seeds_chooses_the_setting_with_the_best_mean(tmp_path):
    from astdp.results import search_record

    trials = [(0.1, 0, 0.99), (0.1, 1, 0.90), (0.2, 0, 0.96), (0.2, 1, 0.96)]  # 0.1 has the single best trial
    for i, (lr, seed, val) in enumerate(trials):
        sweep_job(tmp_path / "sweep" / str(i), [f"optim.lr={lr}", f"seed={seed}"], seed,
                  train={"epochs": 8, "val_acc": val})
    record = search_record("default", [tmp_path / "sweep"])
    assert record["chosen"]["overrides"] == ["optim.lr=0.2"] and record["chosen"]["seeds"] == [0, 1]
    assert [s["val_acc"] for s in record["settings"]] == [0.945, 0.96] and len(record["trials"]) == 4
    kept = search_record("default", [tmp_path / "sweep"], keep=0)  # 0.2 leads 0.1 by more than a standard error
    assert kept["chosen"]["overrides"] == ["optim.lr=0.2"]


def test_a_bare_run_and_a_pipeline_run_of_one_setting_are_one_setting(tmp_path):
    from astdp.results import search_record

    # seed 0 a bare run (logger=none), seeds 1-2 pipeline runs logged to W&B: one setting over three seeds
    runs = [(["trainer.max_epochs=60", "seed=0", "logger=none"], 0, 0.986), (["trainer.max_epochs=60", "seed=1"], 1, 0.984),
            (["trainer.max_epochs=60", "seed=2"], 2, 0.985), (["trainer.max_epochs=20", "seed=0"], 0, 0.984),
            (["trainer.max_epochs=20", "seed=1"], 1, 0.987), (["trainer.max_epochs=20", "seed=2"], 2, 0.984)]
    for i, (overrides, seed, val) in enumerate(runs):
        sweep_job(tmp_path / "sweep" / str(i), overrides, seed, train={"epochs": 20, "val_acc": val})
    record = search_record("invariant", [tmp_path / "sweep"], keep=3)
    assert [(s["overrides"], s["seeds"]) for s in record["settings"]] == [
        (["trainer.max_epochs=60"], [0, 1, 2]), (["trainer.max_epochs=20"], [0, 1, 2])]
    assert record["chosen"]["overrides"] == ["trainer.max_epochs=20"]  # 0.985 against 0.985: within a standard error


def test_a_search_of_evaluation_settings_pairs_each_seed_with_its_own_checkpoint(tmp_path):
    from astdp.results import search_record

    for i, (beta, seed, mse) in enumerate([(0.8, 0, 0.052), (0.8, 1, 0.053), (1.0, 0, 0.055), (1.0, 1, 0.056)]):
        own = [f"ckpt_path=/runs/s{seed}/models/last.ckpt", f"judge.path=/runs/s{seed}/models/judge.pt"]
        sweep_job(tmp_path / "sweep" / str(i), [f"seed={seed}", *own, f"evaluate.inpaint_beta={beta}"], seed,
                  eval={"inpaint_mse_val": mse})
    record = search_record("default", [tmp_path / "sweep"], "eval.inpaint_mse_val", lower=True)
    assert record["chosen"]["overrides"] == ["evaluate.inpaint_beta=0.8"] and record["chosen"]["seeds"] == [0, 1]


def test_over_seeds_a_requirement_holds_on_the_means_and_a_setting_on_fewer_seeds_sits_out(tmp_path):
    """In-painting chosen by its error, accuracy kept: a setting whose mean accuracy fails the
    requirement cannot be chosen even though one of its seeds passes it, and a setting tried on
    one seed only (its low error could be that seed's luck) is on record but not chosen."""

    from astdp.results import search_record

    trials = [(0.0, 0, 0.970, 0.08), (0.0, 1, 0.968, 0.08), (0.1, 0, 0.969, 0.057), (0.1, 1, 0.968, 0.057),
              (0.2, 0, 0.970, 0.050), (0.2, 1, 0.960, 0.050), (0.5, 0, 0.990, 0.040)]
    for i, (scale, seed, val, mse) in enumerate(trials):
        sweep_job(tmp_path / "sweep" / str(i), [f"model.plays.complete.scale={scale}", f"seed={seed}"], seed,
                  train={"epochs": 8, "val_acc": val}, eval={"inpaint_mse_val": mse})
    record = search_record("complete", [tmp_path / "sweep"], "eval.inpaint_mse_val", lower=True,
                           require=["train.val_acc>=0.968"])
    assert record["chosen"]["overrides"] == ["model.plays.complete.scale=0.1"]  # 0.2's mean accuracy is 0.965
    assert record["chosen"]["val_acc"] == 0.9685 and record["chosen"]["inpaint_mse_val"] == 0.057
    assert len(record["settings"]) == 4 and len(record["trials"]) == 7  # 0.5 (seed 0 only) stays on record
    assert "over seeds [0, 1]" in record["criterion"] and "(requirements on the means)" in record["criterion"]
    with pytest.raises(SystemExit, match="no finished setting run on every seed meets"):
        search_record("complete", [tmp_path / "sweep"], "eval.inpaint_mse_val", lower=True, require=["train.val_acc>=0.99"])


def test_a_run_from_before_a_key_was_added_ran_at_its_old_value():
    """A run made before the completion play, the annealed sampler, in-painting's temperature and
    path and mirrored images existed played no completion, sampled and in-painted at one
    temperature, from the labels, and saw no mirror image (and, before 0.33.0, dreamt on the drives
    and stepped Fy by the optimizer): the presets, which now do some of that, do not count it."""
    from astdp.results import changed_keys

    for name, changed in (("default", {"model.plays.complete.scale", "generate.beta_start", "evaluate.inpaint_beta"}),
                          ("invariant", {"model.plays.complete.scale", "evaluate.inpaint_beta", "evaluate.inpaint_from"}),
                          ("fashion", {"model.plays.complete.scale", "evaluate.inpaint_beta", "evaluate.inpaint_from"})):
        params = OmegaConf.to_container(preset_config(name), resolve=True, enum_to_str=True)
        del params["model"]["plays"]["complete"], params["generate"]["beta_start"]
        del params["evaluate"]["inpaint_beta"], params["evaluate"]["inpaint_from"], params["data"]["flip"]
        params["model"]["net"].pop("dream_on", None), params["model"].pop("feedback_lr", None)  # 0.33.0's
        assert changed_keys(params, name) == changed, name


def test_a_twin_run_sampled_otherwise_or_logged_more_often_is_still_its_presets():
    """A backprop twin draws and fills in nothing, so its generate and in-painting settings are no
    change; nor, for any run, is how often it logs; a regulariser named where 0.20.0 kept it is
    the same setting."""
    from astdp.results import changed_keys

    params = OmegaConf.to_container(preset_config("invariant_baseline"), resolve=True, enum_to_str=True)
    params["generate"]["noise"] = 0.3
    params["evaluate"]["inpaint_beta"] = 0.5
    params["trainer"]["log_every_n_steps"] = 1
    params["model"]["input_dropout"] = params["model"]["net"].pop("input_dropout")
    assert changed_keys(params, "invariant_baseline") == set()
    params["model"]["input_dropout"] = 0.1
    assert changed_keys(params, "invariant_baseline") == {"model.net.input_dropout"}
    ours = OmegaConf.to_container(preset_config("invariant"), resolve=True, enum_to_str=True)
    ours["generate"]["noise"] = 0.3  # the aSTDP preset's samples and in-painting are part of its row
    ours["evaluate"]["inpaint_beta"] = 0.5
    assert changed_keys(ours, "invariant") == {"generate.noise", "evaluate.inpaint_beta"}


def test_a_run_folder_may_name_the_commit_it_was_made_at(tmp_path):
    import yaml

    from astdp.results import folder_runs

    for name, commit in (("named", "c0ffee"), ("unnamed", None)):
        (tmp_path / name / "metrics").mkdir(parents=True)
        (tmp_path / name / "params.yaml").write_text(yaml.safe_dump({"name": "default", "seed": 0}))
        if commit:
            (tmp_path / name / "commit").write_text(commit + "\n")
    named, unnamed = folder_runs([tmp_path / "named", tmp_path / "unnamed"], "head")
    assert (named.commit, unnamed.commit) == ("c0ffee", "head") and named.where == str(tmp_path / "named")


def test_a_stage_rerun_in_a_folder_is_newer_than_the_experiment_it_came_from(tmp_path):
    """collect keeps each seed's newest run: a folder is stamped by when its metrics were written,
    in the experiments' own format, not by its path (which sorted before every experiment)."""
    import os

    import yaml

    from astdp.results import Run, folder_runs

    (tmp_path / "metrics").mkdir()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"name": "default", "seed": 0}))
    (tmp_path / "metrics" / "generate.json").write_text("{}")
    os.utime(tmp_path / "metrics" / "generate.json", (1796000000, 1796000000))  # 2026-11-30T00:53:20Z
    (run,) = folder_runs([tmp_path], "head")
    assert run.stamp == "2026-11-30T00:53:20"
    experiment = Run("2026-11-29T22:00:00", "head", "exp", "rev", {}, {})
    assert sorted([run, experiment], key=lambda r: r.stamp)[-1] is run
