"""The results table, from committed files that say how each row was made.

    astdp-results --collect           # after `make results`: results/<preset>.json from `dvc exp show`
    astdp-results                     # print the table from results/*.json
    astdp-results --readme README.md docs/results.md  # and write it between their results markers

The depth table comes the same way from ``results/depth/<preset>-<hidden>.json``: every size
of ``experiment=invariant`` and its twin that was run (``-S 'model.net.hidden=[...]'``). Its epoch
times come from ``results/bench.json`` (``make bench``), where both learners were timed side by
side in one process: the experiments' own wall-clock shares cores with whatever ran beside them.

Each ``results/<preset>.json`` holds, for every seed run of one preset, the newest run's
headline metrics, the experiment and commit it ran on (``seeds``), and their mean, sample
std and n (``summary``); the command that makes a seed again is the record's ``command`` with
``-S seed=N``. Each aSTDP row is set beside its backprop twin, paired by seed. Reference rows
from the literature are marked as published, not measured here. Runs made by the stages
outside DVC (``--runs``: folders with ``params.yaml`` and ``metrics/*.json``) are collected
the same way.
"""
from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from astdp.config import INTO_NET
from astdp.io import atomic_path, write_json

START, END = "<!-- results:start -->", "<!-- results:end -->"
DEPTH_START, DEPTH_END = "<!-- depth:start -->", "<!-- depth:end -->"
INPAINT_START, INPAINT_END = "<!-- inpaint:start -->", "<!-- inpaint:end -->"
RESULTS = Path("results")
BENCH = RESULTS / "bench.json"  # benchmarks/bench.py --out: epoch times of the depth table's sizes
DEPTH = ("invariant", "invariant_baseline")  # presets whose sizes make the depth table: (aSTDP, its backprop twin)
DEPTH_OVERRIDES = {"model.net.hidden", "optim.lr"}  # what their rows' commands may add to the preset
PUBLISHED = RESULTS / "published.yaml"  # the literature's rows: method, dataset, accuracy, source
CURVE = "plots/train_curve.json"  # each epoch's metrics, as the train stage wrote them
CURVE_KEYS = ("epoch", "train_acc", "val_acc")  # what a record keeps of it
PICTURES = ("digits", "inpaint")  # samples/<name>.png every run that draws has, on the results page
ALL_PICTURES = ("digits", "chains", "nearest", "inpaint")  # and those a run since 0.25.0 has too
HEADLINE = {"train": ["epochs", "val_acc", "val_readout_accuracy"],
            "eval": ["test_accuracy", "readout_accuracy", "inpaint_mse", "inpaint_mse_blank", "inpaint_mse_mean",
                     "inpaint_mse_knn", "occluded_accuracy", "occluded_accuracy_knn"],
            "generate": ["judge_accuracy", "judge_val_accuracy", "judge_test_accuracy", "variety_ratio", "fid",
                         "fid_real_train", "fid_class_means", "precision", "recall", "fid_val", "precision_val",
                         "recall_val", "variety_ratio_val", "inpaint_judge_accuracy", "inpaint_judge_accuracy_knn",
                         "inpaint_judge_accuracy_val", "inpaint_judge_accuracy_knn_val"]}


# Where 0.18.0's runs name what a run config builds besides a checkpoint's network, optimizer
# and schedule (those are astdp.config.MOVED): a run made before the move is still its preset's.
CONFIG_MOVED = {
    "astdp.datamodule.IDXDataModule": "astdp.data.datamodule.IDXDataModule",
    **{f"astdp.callbacks.{c}": f"astdp.training.callbacks.{c}" for c in ("EpochHistory", "ImagesToLogger", "WeightAverage")},
    **{f"astdp.callbacks.{c}": f"astdp.training.checkpoints.{c}" for c in ("LastCheckpoint", "AtomicCheckpointIO")},
    "astdp.lit.LocalUpdateDDP": "astdp.training.ddp.LocalUpdateDDP",
}


# Keys that change neither what a run learns nor what it measures: a run made at another value
# is still its preset's row.
UNCHANGING = {"trainer.log_every_n_steps", "trainer.enable_progress_bar", "description",
              "deprecated"}  # deprecated: an old preset name's notice (0.23.0 only)
BACKPROP = "astdp.training.modules.BackpropModule"
# Keys a run made before 0.21.0 holds elsewhere: the classify play's regularisers moved into the network's config.
KEYS_MOVED = {f"model.{k}": f"model.net.{k}" for k in INTO_NET}
# Keys added since, at the value a run made before them ran with: a preset that sets another is another setting.
KEYS_ADDED = {"model.plays.complete.scale": 0.0, "generate.beta_start": None, "evaluate.inpaint_beta": 1.0,
              "data.flip": False, "evaluate.inpaint_from": "labels", "generate.label_hold": None,
              "generate.pixel_spikes": False, "evaluate.inpaint_rounds": 1, "model.net.dream_on": "drives",
              "model.feedback_lr": None, "model.net.memory": False, "model.memory_lr": None,
              "generate.from_memory": False, "generate.memory_beta": 1.0}
# Presets' old names: a run or search trial saved under one is the new name's (experiment=deep was renamed in
# 0.23.0; from 0.24.0 the old name no longer composes).
RENAMED = {"deep": "invariant", "deep_baseline": "invariant_baseline"}


@functools.cache
def preset_config(name: str):
    """What ``experiment=<name>`` composes to (before any -S override; ``default``: no preset)."""
    from hydra import compose, initialize_config_module

    import astdp.config  # noqa: F401  registers the schema the presets compose onto

    with initialize_config_module("astdp.conf", version_base=None):
        return compose("config", overrides=[] if name == "default" else [f"experiment={name}"])


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


@functools.cache
def _preset_params(name: str, seed: int = 0) -> dict:
    """``experiment=<name>`` at ``seed``, flat and resolved (keys that follow the seed follow it)."""
    from omegaconf import OmegaConf

    cfg = preset_config(name).copy()
    cfg.seed = seed
    return _flat(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def changed_keys(params: dict, name: str) -> set[str]:
    """The keys of a run's params.yaml that ``experiment=<name>`` now sets otherwise: a run with
    such overrides (a sweep's, a trial's) is not that preset's row. Keys one side lacks (added
    or removed since the run) do not count, except one of :data:`KEYS_ADDED` that the preset sets
    otherwise than the run ran; nor does a target that moved or an :data:`UNCHANGING`
    key, except a callback the run added (``callbacks=ema``: the later stages load what it made
    of the weights)."""
    from astdp.config import MOVED

    def renamed(node):  # a move is no change
        if isinstance(node, dict):
            return {k: (MOVED | CONFIG_MOVED).get(v, v) if k == "_target_" else renamed(v) for k, v in node.items()}
        return [renamed(v) for v in node] if isinstance(node, list) else node

    preset, run = _preset_params(name, params.get("seed", 0)), _flat(renamed(params))
    run = {KEYS_MOVED.get(k, k): v for k, v in run.items() if k not in UNCHANGING}
    run = {k: v for k, v in KEYS_ADDED.items() if k in preset} | run
    if preset.get("model._target_") == BACKPROP:  # a twin draws and fills nothing: how to is no change
        run = {k: v for k, v in run.items() if not k.startswith(("generate.", "callbacks.images.", "evaluate.inpaint_"))}
    own_callbacks = {k.split(".")[1] for k in preset if k.startswith("callbacks.")}
    added = {k for k in run.keys() - preset.keys() if k.startswith("callbacks.") and k.split(".")[1] not in own_callbacks}
    return {k for k in run.keys() & preset.keys() if run[k] != preset[k]} | added


@functools.cache
def presets() -> list[str]:
    """Every preset (``default`` and ``conf/experiment/*.yaml``) in table order: the default
    and its twin, then each preset followed by its twin."""
    from importlib.resources import files

    names = sorted(f.name.removesuffix(".yaml") for f in (files("astdp.conf") / "experiment").iterdir()
                   if f.name.endswith(".yaml"))
    ours = ["default", *(n for n in names if n != "baseline" and not n.endswith("_baseline"))]
    return [m for n in ours for m in (n, twin(n)) if m in names or m == "default"]


def twin(name: str) -> str:
    """The backprop twin of an aSTDP preset: trained as it is, same sizes, data and epochs."""
    return "baseline" if name == "default" else f"{name}_baseline"


def description(name: str) -> str:
    """What a preset's row is: its config's ``description``."""
    return preset_config(name).description


def preset_hidden(name: str) -> list[int]:
    """The hidden sizes that ``experiment=<name>`` composes to (before any -S override)."""
    return list(preset_config(name).model.net.hidden)


def _finished(exp: dict) -> bool:
    return (exp.get("executor") or {}).get("state") in (None, "success")


def committed_file(rev: str, path: str) -> dict | None:
    """A JSON file as an experiment (a git commit) holds it; None if it holds none."""
    done = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else None


class Run(NamedTuple):
    """One finished run: when, the commit it ran on, its experiment's name, where its files are
    (an experiment's git revision, or a folder: ``.`` for the workspace), its params and its
    metrics by stage (``curve``: each epoch's, from :data:`CURVE`)."""

    stamp: str
    commit: str
    experiment: str
    where: str
    params: dict
    metrics: dict


def shown_runs(exp_show: list[dict], head: str, read=None) -> list[Run]:
    """Every finished run in ``dvc exp show --json`` output: the DVC experiments of every
    commit, and the workspace.

    ``read(rev, path)`` reads a metrics file as the run wrote it (``committed_file``; the
    workspace's from disk): `dvc exp show` leaves out lists, such as each layer's read-out."""
    runs = []
    for commit in exp_show:
        workspace = commit["rev"] == "workspace"
        base = head if workspace else commit["rev"]
        revs = [(commit, "~workspace")] if workspace else []
        # an experiment still queued or running shows the metrics of the workspace it was copied
        # from, not its own: only finished ones count
        revs += [(r, None) for exp in commit.get("experiments") or [] if _finished(exp) for r in exp["revs"]]
        for rev, stamp in revs:
            data = rev.get("data") or {}
            params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
            metrics = {Path(f).stem: m.get("data") or {} for f, m in (data.get("metrics") or {}).items()}
            where = "." if workspace else rev.get("rev") or ""
            if read is not None:  # the files themselves: `dvc exp show` leaves out lists
                for f in [*(data.get("metrics") or {}), CURVE]:
                    if workspace:
                        whole = json.loads(Path(f).read_text()) if Path(f).exists() else None
                    else:
                        whole = read(where, f) if where else None
                    if whole is not None:
                        metrics["curve" if f == CURVE else Path(f).stem] = whole
            runs.append(Run(stamp or data.get("timestamp") or "", base, rev.get("name") or "workspace", where, params,
                            metrics))
    return runs


def folder_runs(folders: list[Path], commit: str) -> list[Run]:
    """The same for run folders that hold a ``params.yaml`` and the stages' ``metrics/*.json``
    (runs made by the stages outside DVC: a Hydra multirun job, another machine's runs), made
    at ``commit`` unless a folder names its own in a file ``commit``, and stamped with the time
    its metrics were written: a stage rerun in a folder is newer than the experiment it came from."""
    import yaml

    def made_at(f: Path) -> str:
        return (f / "commit").read_text().strip() if (f / "commit").exists() else commit

    def metrics(f: Path) -> dict:
        found = {m.stem: json.loads(m.read_text()) for m in sorted((f / "metrics").glob("*.json"))}
        return {**found, "curve": json.loads((f / CURVE).read_text())} if (f / CURVE).exists() else found

    def written(f: Path) -> str:  # when its newest metrics were written, as `dvc exp show` stamps experiments
        newest = max((m.stat().st_mtime for m in (f / "metrics").glob("*.json")), default=0.0)
        return datetime.fromtimestamp(newest, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")

    return [Run(written(f), made_at(f), f.name, str(f), yaml.safe_load((f / "params.yaml").read_text()), metrics(f))
            for f in folders]


def _requirement(text: str) -> tuple[str, str, str, float]:
    """``stage.key>=value`` (or ``<=``) as (stage, key, operator, value)."""
    import re

    m = re.fullmatch(r"(\w+)\.(\w+)\s*(>=|<=)\s*([-+0-9.eE]+)", text)
    if m is None:
        raise SystemExit(f"error: --require {text!r}: write STAGE.KEY>=VALUE or STAGE.KEY<=VALUE")
    return m[1], m[2], m[3], float(m[4])


def search_record(name: str, sweeps: list[Path], metric: str = "train.val_acc", lower: bool = False,
                  keep: int | None = None, require: list[str] = ()) -> dict:
    """``results/search/<name>.json``: each trial of Hydra multiruns of a stage (run with
    ``hydra.output_subdir=.hydra``): its overrides, seed, epochs and ``metric`` (``stage.key``
    of its ``metrics/<stage>.json``; a per-layer list counts by its top layer), the budget
    (trials, epochs, seeds) and the trial that validation ranks first (``best``: the highest,
    or with ``lower`` the lowest).

    With ``keep`` (the index of a finished trial: the incumbent value, or a simpler one) the
    choice follows the one-standard-error rule: that trial stays unless the best beats it by
    more than one binomial standard error of a validation accuracy, ``sqrt(p (1 - p) / n)``
    with ``n`` the validation images (an accuracy metric only).

    ``require`` (``stage.key>=value`` or ``<=``): only trials that meet every requirement can be
    chosen; each trial records whether it does (``meets``). Over several seeds, settings compete
    by their means over the same seeds (a setting run on fewer seeds than the search's is left
    out of the choice), and a requirement holds on a setting's mean."""
    import yaml

    if keep is not None and lower:
        raise SystemExit("error: --keep compares accuracies (higher is better); it does not apply with --lower")
    stage, key = metric.split(".", 1)
    conditions = [_requirement(r) for r in require]
    trials = []
    jobs = [d for sweep in sweeps for d in sorted(sweep.iterdir(), key=lambda d: d.name) if (d / ".hydra").is_dir()]
    for job in jobs:
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        read = lambda s: json.loads(f.read_text()) if (f := job / "metrics" / f"{s}.json").exists() else {}
        value = read(stage).get(key)
        trial = {"overrides": yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()),
                 "seed": config["seed"], "val_size": config["data"]["val_size"],
                 "epochs": read("train").get("epochs"),  # None in a search of sampling settings
                 key: value[-1] if isinstance(value, list) else value}
        if conditions:
            trial |= {k: read(st).get(k) for st, k, _, _ in conditions}
            trial["meets"] = meets(trial, conditions)
        trials.append(trial)
    done = [t for t in trials if t[key] is not None]  # a stopped trial counts in no budget
    if not done:
        raise SystemExit(f"error: no finished trial with {metric} in {', '.join(map(str, sweeps))}")
    budget = {"trials": len(done), "epochs": sorted({t["epochs"] for t in done} - {None}),
              "seeds": sorted({t["seed"] for t in done}), "stopped": len(trials) - len(done)}
    criterion = f"{'lowest' if lower else 'highest'} {metric}" + "".join(f" where {r}" for r in require)
    if len(budget["seeds"]) > 1:  # each setting over several seeds: settings compete by their means
        settings = _settings(done, [key, *(k for _, k, _, _ in conditions)])
        eligible = [t for t in settings if sorted(t["seeds"]) == budget["seeds"] and meets(t, conditions)]
        criterion = criterion.replace(metric, f"mean {metric} over seeds {budget['seeds']}", 1)
        criterion += " (requirements on the means)" if conditions else ""
    else:
        eligible = [t for t in done if t.get("meets", True)]
    if not eligible:
        what = "setting run on every seed" if len(budget["seeds"]) > 1 else "trial"
        raise SystemExit(f"error: no finished {what} meets {' and '.join(require) or 'the search'}")
    best = (min if lower else max)(eligible, key=lambda t: t[key])
    record = {"preset": name, "sweeps": [str(s) for s in sweeps], "criterion": criterion,
              "budget": budget, "trials": done, "best": best, "chosen": best}
    if len(budget["seeds"]) > 1:
        record["settings"] = settings
    if keep is not None:
        kept = next(t for t in eligible if _setting(t["overrides"]) == _setting(done[keep]["overrides"]))
        p = kept[key]
        se = (p * (1 - p) / done[keep]["val_size"] / len(kept.get("seeds", [0]))) ** 0.5
        record["rule"] = {"kept_unless_beaten_by_more_than": round(se, 6), "kept": kept}
        record["chosen"] = best if abs(best[key] - p) > se else kept
    return record


def _setting(overrides: list[str]) -> list[str]:
    """A trial's setting: its overrides but the seed and that seed's own inputs (a search of
    evaluation or sampling settings runs each seed on its own checkpoint and judge), and where its
    metrics went (``logger=``: a bare run's ``none`` beside a pipeline run's W&B); a preset's old
    name is its new one."""
    renamed = {f"experiment={old}": f"experiment={new}" for old, new in RENAMED.items()}
    return [renamed.get(o, o) for o in overrides if not o.startswith(("seed=", "ckpt_path=", "judge.path=", "logger="))]


def meets(trial: dict, conditions: list[tuple[str, str, str, float]]) -> bool:
    """Whether a trial (or a setting's means) meets every ``(stage, key, op, value)``."""
    return all(trial.get(k) is not None and (trial[k] >= v if op == ">=" else trial[k] <= v) for _, k, op, v in conditions)


def _settings(trials: list[dict], keys: list[str]) -> list[dict]:
    """One entry per setting (a trial's overrides but its seed): its seeds and the mean of each of ``keys``."""
    groups: dict[tuple, list[dict]] = {}
    for t in trials:
        groups.setdefault(tuple(_setting(t["overrides"])), []).append(t)
    mean = lambda g, k: None if any(t.get(k) is None for t in g) else round(sum(t[k] for t in g) / len(g), 6)
    return [{"overrides": list(o), "seeds": [t["seed"] for t in g], "val_size": g[0]["val_size"],
             "epochs": g[0]["epochs"], **{k: mean(g, k) for k in dict.fromkeys(keys)}} for o, g in groups.items()]


def _mean_std(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {"mean": round(mean, 6), "std": round(std, 6), "n": n}


def summarize(seeds: list[dict]) -> dict:
    """Mean, sample std and n over the seeds of every headline number (per layer for a list)."""
    out: dict = {}
    for stage, keys in HEADLINE.items():
        for key in keys:
            values = [s["metrics"].get(stage, {}).get(key) for s in seeds]
            values = [v for v in values if v is not None]
            if not values:
                continue
            kinds = {isinstance(v, list) for v in values}
            if len(kinds) > 1:  # a run of an older layout among them: no common summary
                continue
            if kinds == {True}:  # one per layer
                if len({len(v) for v in values}) == 1:
                    out[key] = [_mean_std(list(layer)) for layer in zip(*values)]
            else:
                out[key] = _mean_std(values)
    return out


def collect(runs: list[Run], changed=changed_keys) -> dict[tuple[str, tuple[int, ...]], dict]:
    """Records for results/, keyed by (preset, hidden): the newest run of each seed.

    Skipped: runs of configs that predate the current layout, and runs with overrides a row's
    command would not name (``changed``: what differs from the preset, the seed aside; the
    depth presets' rows also name their hidden sizes and learning rate).
    """
    newest: dict[tuple[str, tuple[int, ...], int], tuple] = {}
    for stamp, base, exp, where, params, metrics in sorted(runs, key=lambda r: r[0]):
        name = RENAMED.get(params.get("name"), params.get("name"))
        params = {**params, "name": name}
        if name not in presets() or not metrics.get("eval"):
            continue
        try:
            hidden = params["model"]["net"]["hidden"]
            # a depth row may name its own learning rate, but not the preset's own size: its rate
            # is the preset's, so a trial of another rate there is a trial, not the row
            allowed = {"seed"}  # a seed of the row, not a trial
            if name in DEPTH:
                allowed |= DEPTH_OVERRIDES - ({"optim.lr"} if hidden == _preset_params(name)["model.net.hidden"] else set())
            if changed(params, name) - allowed:
                continue
            command = "dvc exp run" if name == "default" else f"dvc exp run -S experiment={name}"
            if name in DEPTH:
                command += f" -S 'model.net.hidden=[{','.join(map(str, hidden))}]'"
                if params["optim"]["lr"] != preset_config(name).optim.lr:  # searched for this depth
                    command += f" -S optim.lr={params['optim']['lr']}"
            row = {"preset": name, "command": command, "dataset": params["data"]["name"], "hidden": hidden,
                   "max_shift": params["data"]["max_shift"],
                   "unsupervised": "plays" in params["model"] and params["model"]["plays"]["classify"]["scale"] == 0}
            seed = {"seed": params["seed"], "commit": base, "experiment": exp, "where": where,
                    "metrics": {stage: {k: m[k] for k in keys if k in m} for stage, keys in HEADLINE.items()
                                if (m := metrics.get(stage))}}
            if metrics.get("curve"):
                seed["curve"] = [{k: epoch[k] for k in CURVE_KEYS if k in epoch} for epoch in metrics["curve"]]
        except KeyError as e:  # a run of an older config layout
            print(f"astdp-results: skipped {exp} ({stamp}): its params.yaml has no {e}", file=sys.stderr)
            continue
        newest[name, tuple(hidden), params["seed"]] = (row, seed)
    records: dict[tuple[str, tuple[int, ...]], dict] = {}
    for (name, hidden, _), (row, seed) in sorted(newest.items(), key=lambda kv: kv[0]):
        records.setdefault((name, hidden), {**row, "seeds": []})["seeds"].append(seed)
    for record in records.values():
        record["summary"] = summarize(record["seeds"])
    return records


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _stat(summary: dict, key: str, scale: float = 100, digits: int = 2, layer: int | None = None) -> str:
    """``mean ± std (n)`` of a summarized number; ``-`` where there is none."""
    s = summary.get(key)
    if s is not None and layer is not None:
        s = s[layer] if isinstance(s, list) and -len(s) <= layer < len(s) else None
    if s is None:
        return "-"
    return f"{scale * s['mean']:.{digits}f} ± {scale * s['std']:.{digits}f} ({s['n']})"


def paired(record: dict, twin: dict | None, stage: str = "eval", key: str = "test_accuracy") -> str:
    """The record's difference from its twin's, seed by seed, in points (paired by seed)."""
    if twin is None:
        return "-"
    theirs = {s["seed"]: s["metrics"].get(stage, {}).get(key) for s in twin["seeds"]}
    diffs = [(s["seed"], 100 * (s["metrics"][stage][key] - theirs[s["seed"]])) for s in record["seeds"]
             if theirs.get(s["seed"]) is not None and s["metrics"].get(stage, {}).get(key) is not None]
    if not diffs:
        return "-"
    mean = sum(d for _, d in diffs) / len(diffs)
    return f"{mean:+.2f} ({', '.join(f'{d:+.2f}' for _, d in diffs)})"


def epoch_times(bench: dict | None, hidden: tuple[int, ...]) -> str:
    """``aSTDP / twin s (ratio)`` of the deep preset's network at this size in a bench result."""
    names = ("JoinedLabelNet", "DeepNet")  # a bench.json made before 0.19.0 names the class by its old name
    row = next((r for r in (bench or {}).get("scaling", []) if r["net"] in names and tuple(r["hidden"]) == hidden), None)
    if row is None:
        return "-"
    a, b = row["astdp_epoch_s"], row["backprop_epoch_s"]
    return f"{a:.1f} / {b:.1f} ({a / b:.2f}x)"


def depth_table(records: dict[tuple[str, tuple[int, ...]], dict], bench: dict | None = None) -> str:
    """Markdown: test accuracy (mean ± std (n) over seeds) of each size of the deep preset and
    of its backprop twin, each layer's own read-out, and both learners' epoch time at that size
    from a bench result (``-`` where it has none)."""
    # grouped by width, shallow first: each group is one depth comparison at the same width
    sizes = sorted({h for name, h in records if name in DEPTH}, key=lambda h: (max(h), len(h), h))
    where = f", {bench['device']} {bench.get('threads', '')} threads" if bench else ""
    lines = ["| hidden | aSTDP `experiment=invariant`, test | validation | each layer's read-out, bottom first "
             f"| backprop twin, test | epochs | s/epoch aSTDP / twin (`make bench`{where}) | made by |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for h in sizes:
        ours, twin = (records.get((name, h)) for name in DEPTH)
        summ = lambda r, key, **kw: _stat(r["summary"], key, **kw) if r else "not run"
        layers = " / ".join(_stat(ours["summary"], "readout_accuracy", layer=i) for i in range(len(h))) if ours else "-"
        epochs = "/".join(sorted({str(s["metrics"].get("train", {}).get("epochs", "-"))
                                  for r in (ours, twin) if r for s in r["seeds"]}))
        made = "; ".join(f"`{r['command']}`" for r in (ours, twin) if r)
        lines.append(f"| {list(h)} | {summ(ours, 'test_accuracy')} | {summ(ours, 'val_acc')} | {layers} "
                     f"| {summ(twin, 'test_accuracy')} | {epochs} | {epoch_times(bench, h)} | {made} |")
    return "\n".join(lines)


def table(records: dict[str, dict]) -> str:
    """Markdown: the measured rows (known presets in order; mean ± std (n) over seeds), then the
    published references."""
    lines = ["| run | data | test accuracy | validation | minus its backprop twin, by seed (points) "
             "| judge accuracy of generated images | FID (real / class means) | precision / recall | epochs "
             "| made by (`-S seed=N`), at commits |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in (n for n in presets() if n in records):
        r = records[name]
        s = r["summary"]
        acc = _stat(s, "readout_accuracy", layer=-1) if r["unsupervised"] else _stat(s, "test_accuracy")
        judged = "judge_accuracy" in s and not r["unsupervised"]  # no label was ever clamped
        judge = _stat(s, "judge_accuracy") if judged else "-"
        fid = (f"{_stat(s, 'fid', 1, 1)} ({_stat(s, 'fid_real_train', 1, 1).split(' ')[0]} / "
               f"{_stat(s, 'fid_class_means', 1, 1).split(' ')[0]})") if judged and "fid" in s else "-"
        pr = f"{_stat(s, 'precision', 1)} / {_stat(s, 'recall', 1)}" if judged and "precision" in s else "-"
        label = f"{description(name)}, hidden {r['hidden']}"
        label += f", images shifted up to {r['max_shift']} px" if r["max_shift"] else ""
        epochs = "/".join(sorted({str(x["metrics"].get("train", {}).get("epochs", "-")) for x in r["seeds"]}))
        commits = ", ".join(sorted({x["commit"][:7] for x in r["seeds"]}))
        seeds = ",".join(str(x["seed"]) for x in r["seeds"])
        val = _stat(s, "val_readout_accuracy", layer=-1) if r["unsupervised"] else _stat(s, "val_acc")
        lines.append(f"| {label} | {r['dataset']} | {acc} | {val} "
                     f"| {paired(r, records.get(twin(name)))} | {judge} | {fid} | {pr} | {epochs} "
                     f"| `{r['command']}`, seeds {seeds}, at {commits} |")
    import yaml

    for ref in yaml.safe_load(PUBLISHED.read_text()) if PUBLISHED.exists() else []:
        method, dataset, acc, source = ref["method"], ref["dataset"], ref["accuracy"], ref["source"]
        lines.append(f"| *published:* {method} | {dataset} | {acc} | - | - | - | - | - | - | {source} |")
    return "\n".join(lines)


def inpaint_table(records: dict[str, dict]) -> str:
    """Markdown: each aSTDP preset's in-painting of half-occluded test images beside memory (the
    10-NN fill): the error on the hidden pixels, and how often the judge and the network itself
    read the completed images right (mean ± std (n) over seeds; ``-`` where a run has none)."""
    lines = ["| run | in-painting MSE | 10-NN fill | mean image | the judge reads the fills right "
             "| ... the 10-NN fill | the network classifies the occluded images | ... the 10-NN fill |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in (n for n in presets() if n in records and "inpaint_mse" in records[n]["summary"]):
        s = records[name]["summary"]
        mse = [_stat(s, k, 1, 4) for k in ("inpaint_mse", "inpaint_mse_knn", "inpaint_mse_mean")]
        read = [_stat(s, k, 100, 1) for k in ("inpaint_judge_accuracy", "inpaint_judge_accuracy_knn")]
        read += ["-", "-"] if records[name].get("unsupervised") else [  # its label units never learned
            _stat(s, k, 100, 1) for k in ("occluded_accuracy", "occluded_accuracy_knn")]
        lines.append(f"| {description(name)} | {' | '.join(mse)} | {' | '.join(read)} |")
    return "\n".join(lines)


def accuracy_figure(records: dict[str, dict], path: Path) -> Path:
    """``path`` (PNG): each measured preset's test accuracy, one dot per seed and a bar at the
    mean, each aSTDP preset beside its backprop twin (needs matplotlib, a dev dependency)."""
    plt = _pyplot()
    rows = [n for n in presets() if n in records]
    seeds = {n: [100 * (a[-1] if isinstance(a := x["metrics"]["eval"][key], list) else a) for x in records[n]["seeds"]]
             for n in rows for key in ["readout_accuracy" if records[n]["unsupervised"] else "test_accuracy"]}
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    for i, name in enumerate(rows):
        colour = "tab:grey" if name == "baseline" or name.endswith("_baseline") else "tab:blue"
        ax.barh(i, sum(seeds[name]) / len(seeds[name]), color=colour, alpha=0.35)
        ax.plot(seeds[name], [i] * len(seeds[name]), "o", color=colour, markersize=4)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlim(min(min(v) for v in seeds.values()) - 1, 100)
    ax.set_xlabel("test accuracy, % (unsupervised: the linear probe's)")
    ax.set_title("dots: seeds; bars: their mean; grey: backprop twins", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return path


def curves_figure(records: dict[str, dict], path: Path) -> Path:
    """``path`` (PNG): validation accuracy after each epoch, one panel per aSTDP preset beside its
    backprop twin; a line per learner at the seeds' mean, the band between their lowest and highest."""
    plt = _pyplot()
    pairs = [(n, twin(n)) for n in presets() if n in records and not n.endswith("_baseline") and n != "baseline"
             and any("curve" in s for s in records[n]["seeds"])]
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        for name, colour in zip(pair, ("tab:blue", "tab:grey")):
            curves = [[row["val_acc"] * 100 for row in s["curve"] if "val_acc" in row]
                      for s in records.get(name, {}).get("seeds", []) if "curve" in s]
            curves = [c for c in curves if c]
            if not curves:
                continue
            n = min(map(len, curves))
            epochs = range(1, n + 1)
            per_epoch = list(zip(*(c[:n] for c in curves)))
            ax.plot(epochs, [sum(v) / len(v) for v in per_epoch], color=colour, label=f"{name}, n = {len(curves)}")
            ax.fill_between(epochs, [min(v) for v in per_epoch], [max(v) for v in per_epoch], color=colour, alpha=0.2)
        ax.set_title(pair[0], fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("validation accuracy, %")
    fig.tight_layout()
    return _save(fig, path)


def depth_figure(depth: dict[tuple[str, tuple[int, ...]], dict], path: Path) -> Path:
    """``path`` (PNG): test accuracy against the number of hidden layers, one line per width and
    learner (the deep preset and its twin), a dot per seed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for width in sorted({h[0] for _, h in depth if len(set(h)) == 1}):
        for name, colour, style in zip(DEPTH, ("tab:blue", "tab:grey"), ("-o", "--s")):
            rows = sorted((len(h), r) for (n, h), r in depth.items() if n == name and set(h) == {width})
            if not rows:
                continue
            accs = [[100 * s["metrics"]["eval"]["test_accuracy"] for s in r["seeds"]] for _, r in rows]
            layers = [k for k, _ in rows]
            ax.plot(layers, [sum(a) / len(a) for a in accs], style, color=colour, label=f"{name}, width {width}")
            for k, a in zip(layers, accs):
                ax.plot([k] * len(a), a, ".", color=colour, alpha=0.5)
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("test accuracy, %")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def preset_pictures(records: dict[str, dict], folder: Path) -> list[Path]:
    """Copy each preset's first seed's pictures (``samples/<picture>.png``: :data:`ALL_PICTURES`
    that its run has) into ``folder`` as ``<preset>-<picture>.png``: from the run's folder, or from
    the DVC cache at its experiment's revision. Says which of :data:`PICTURES` it cannot find
    (the others came in 0.25.0: an older run has none)."""
    written = []
    for name, record in records.items():
        if record.get("unsupervised") or not record["seeds"] or \
                record["seeds"][0]["metrics"].get("generate", {}).get("judge_accuracy") is None:  # it draws nothing
            continue
        where = record["seeds"][0].get("where")
        for picture in ALL_PICTURES:
            data = _picture(where, f"samples/{picture}.png") if where else None
            if data is None:
                if picture in PICTURES:
                    print(f"astdp-results: no samples/{picture}.png of {name} (seed {record['seeds'][0]['seed']}, "
                          f"{where or 'no recorded run'}): `dvc exp pull` its experiment, or rerun it", file=sys.stderr)
                continue
            with atomic_path(folder / f"{name}-{picture}.png") as tmp:
                tmp.write_bytes(data)
            written.append(folder / f"{name}-{picture}.png")
    return written


def _picture(where: str, path: str) -> bytes | None:
    if Path(where).is_dir():
        return (Path(where) / path).read_bytes() if (Path(where) / path).exists() else None
    import dvc.api

    try:
        return dvc.api.read(path, rev=where, mode="rb")
    except Exception:  # not in this clone's cache, or not an output at that revision
        return None


def write_into(readme: Path, text: str, start: str = START, end: str = END) -> None:
    """Replace what lies between the ``start`` and ``end`` markers; the rest of the file is kept."""
    old = readme.read_text()
    if start not in old or end not in old:
        raise SystemExit(f"error: {readme} has no {start} ... {end} block; add the two markers where the table goes")
    head, rest = old.split(start, 1)
    new = f"{head}{start}\n{text}\n{end}{rest.split(end, 1)[1]}"
    with atomic_path(readme) as tmp:
        tmp.write_text(new)


def _run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: `{' '.join(cmd[2:] if cmd[0] == sys.executable else cmd)}` failed: "
                         f"{done.stderr.strip()[-300:]}")
    return done.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collect", action="store_true", help="write results/<preset>.json from `dvc exp show`")
    parser.add_argument("--runs", type=Path, nargs="+", default=[],
                        help="also collect these run folders (params.yaml and metrics/*.json each)")
    parser.add_argument("--readme", type=Path, nargs="+", default=[],
                        help="write the tables into these files' results blocks (README.md docs/results.md)")
    parser.add_argument("--search", nargs="+", metavar="NAME SWEEP_DIR",
                        help="write results/search/NAME.json from multiruns of a stage, and stop")
    parser.add_argument("--figure", type=Path, help="also draw the accuracies into this PNG (docs/figures/accuracy.png) "
                                                     "and, beside it, the learning curves (curves.png), the depth chart "
                                                     "(depth.png) and each preset's pictures (<preset>-<picture>.png)")
    parser.add_argument("--metric", default="train.val_acc",
                        help="--search: what chooses a trial, stage.key (e.g. generate.fid_val)")
    parser.add_argument("--lower", action="store_true", help="--search: the lowest --metric wins")
    parser.add_argument("--require", nargs="+", default=[], metavar="STAGE.KEY>=VALUE",
                        help="--search: only trials that meet these can be chosen (e.g. generate.judge_accuracy>=0.98)")
    parser.add_argument("--keep", type=int, help="--search: the finished trial (0-based) that stays unless the "
                                                 "best beats it by more than one standard error")
    args = parser.parse_args(argv)
    if args.search:
        record = search_record(args.search[0], [Path(d) for d in args.search[1:]], args.metric, args.lower, args.keep,
                               args.require)
        write_json(RESULTS / "search" / f"{args.search[0]}.json", record)
        print(json.dumps(record["budget"]), record["criterion"], "chosen:", json.dumps(record["chosen"]))
        return
    if args.collect or args.runs:
        head = _run("git", "rev-parse", "HEAD").strip()
        runs = folder_runs(args.runs, head)
        if args.collect:
            runs += shown_runs(json.loads(_run(sys.executable, "-m", "dvc", "exp", "show", "--json", "--all-commits")),
                               head, committed_file)
        for (name, hidden), record in collect(runs).items():
            if name in DEPTH:
                write_json(RESULTS / "depth" / f"{name}-{'x'.join(map(str, hidden))}.json", record)
            if name not in DEPTH or list(hidden) == preset_hidden(name):
                write_json(RESULTS / f"{name}.json", record)
    records = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")) if p.stem in presets()}
    records = {k: r for k, r in records.items() if "seeds" in r}  # records of the single-seed layout: rerun
    if not records:
        raise SystemExit(f"error: no {RESULTS}/*.json; run `make results` (or `astdp-results --collect`) first")
    depth = {(r["preset"], tuple(r["hidden"])): r
             for r in (json.loads(p.read_text()) for p in sorted((RESULTS / "depth").glob("*.json"))) if "seeds" in r}
    bench = json.loads(BENCH.read_text()) if BENCH.exists() else None
    text, depth_text, inpaint_text = table(records), depth_table(depth, bench), inpaint_table(records)
    print(text, depth_text, inpaint_text, sep="\n\n")
    if args.figure:
        accuracy_figure(records, args.figure)
        curves_figure(records, args.figure.parent / "curves.png")
        if depth:
            depth_figure(depth, args.figure.parent / "depth.png")
        preset_pictures(records, args.figure.parent)
    for page in args.readme:
        write_into(page, text)
        if depth:
            write_into(page, depth_text, DEPTH_START, DEPTH_END)
        if INPAINT_START in page.read_text():  # the results page's, not the README's
            write_into(page, inpaint_text, INPAINT_START, INPAINT_END)


if __name__ == "__main__":
    main()
