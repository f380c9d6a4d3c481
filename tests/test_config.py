"""Config: one way in (conf/ -> instantiate), a schema that composition itself enforces,
params.yaml as the composition of conf/, bad values stopped with one line."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from astdp.config import Activation, validate
from astdp.errors import ConfigError
from astdp.nets.rule import ACTIVATIONS
from tests.conftest import ROOT, compose_config

# every option of these groups, found in conf/, each on its own over the defaults
PRESETS = [[], *([f"{group}={p.stem}"] for group in ("experiment", "model", "optim", "lr_schedule", "trainer", "logger")
                 for p in sorted((ROOT / "conf" / group).glob("*.yaml")))]


def test_params_yaml_is_composition_of_conf():
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = compose_config()
    assert committed == OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


@pytest.mark.parametrize("overrides", PRESETS)
def test_presets_compose_validate_and_build(overrides):
    from hydra.utils import instantiate

    cfg = compose_config(overrides)
    validate(cfg)
    module = instantiate(cfg.model, optim=cfg.optim, lr_schedule=cfg.lr_schedule, _recursive_=False,
                         _convert_="all")
    hidden = cfg.model.net.hidden
    if cfg.model._target_ == "astdp.training.modules.ASTDPModule":
        assert [w.shape[1] for w in module.net.W] == list(hidden)
    else:
        linears = [m.out_features for m in module.mlp.modules() if isinstance(m, torch.nn.Linear)]
        assert linears[:len(hidden)] == list(hidden)
    assert instantiate(cfg.data).batch_size == cfg.data.batch_size


@pytest.mark.parametrize("preset", ["shifts", "invariant", "fashion"])
def test_each_twin_is_its_preset_trained_by_backprop(preset):
    """Same layer sizes, data (batch size, shifts) and epochs; only the learning (and its lr) differ."""
    astdp, twin = compose_config([f"experiment={preset}"]), compose_config([f"experiment={preset}_baseline"])
    assert astdp.model._target_ == "astdp.training.modules.ASTDPModule" and twin.model._target_ == "astdp.training.modules.BackpropModule"
    assert twin.model.net.hidden == astdp.model.net.hidden
    assert twin.trainer.max_epochs == astdp.trainer.max_epochs and twin.data == astdp.data
    assert twin.optim.weight_decay == 0
    # model=joined's label units hear every hidden layer: so do its twin's logits
    assert twin.model.net.every_layer_votes == (astdp.model.net._target_ == "astdp.nets.joined.JoinedLabelNet")
    # input dropout is a regulariser each tunes with the same budget: where the twin's differs,
    # its own validation search chose it (named model.input_dropout before 0.21.0)
    ours, theirs = astdp.model.net.get("input_dropout", 0.0), twin.model.net.input_dropout
    if theirs != ours:
        record = json.loads((ROOT / "results" / "search" / f"{preset}_baseline.json").read_text())
        assert {f"model.input_dropout={theirs:g}", f"model.net.input_dropout={theirs:g}"} & set(record["chosen"]["overrides"])
    assert twin.model.net.dropout == astdp.model.net.get("dropout", 0.0)  # and drops the same share of hidden units


def test_joined_label_presets_classify_a_whole_image_as_they_train():
    """The joined-label network classifies in its classify play's sweeps, in validation and in
    evaluate: more sweeps let the labels' feedback into h1 and cost points (Fashion-MNIST
    validated at 3 in 0.28.0-0.29.0). The visible-label network's free label units
    settle over several steps, so it is not held to this."""
    joined = [cfg for p in sorted((ROOT / "conf/experiment").glob("*.yaml"))
              if (cfg := compose_config([f"experiment={p.stem}"])).model.get("net", {}).get("_target_")
              == "astdp.nets.joined.JoinedLabelNet"]
    assert joined
    for cfg in joined:
        assert cfg.model.eval_settle_steps == cfg.evaluate.settle_steps == cfg.model.plays.classify.steps, cfg.name


def test_schema_choices_are_the_cores():
    assert {a.value for a in Activation} == set(ACTIVATIONS)


def test_a_missing_key_is_named_not_filled_in():
    cfg = compose_config()
    del cfg.optim.lr  # the schema holds no values of its own: conf/ is the single source
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        validate(cfg)


@pytest.mark.parametrize("override, key", [
    ("model.net.hiden=[3]", "hiden"), ("model.net.activation=relu9", "activation"),
    ("data.batch_size=big", "batch_size"), ("model.plays.classify.steps=two", "steps"),
    ("evaluate.occlude=middle", "occlude"), ("matmul_precision=low", "matmul_precision"), ("generate.sample=maybe", "sample"),
])
def test_composition_itself_rejects_unknown_keys_wrong_types_and_choices(override, key):
    with pytest.raises(ConfigCompositionException) as e:
        compose_config([override])
    assert key in str(e.value) + str(e.value.__cause__)


@pytest.mark.parametrize("override, key", [
    ("optim.lr=0", "optim.lr"), ("optim.lr=-0.1", "optim.lr"), ("model.net.hidden=[100,-3]", "model.net.hidden"),
    ("model.net.hidden=[]", "model.net.hidden"), ("data.batch_size=0", "data.batch_size"),
    ("data.max_shift=-1", "data.max_shift"), ("model.plays.generate.scale=-1", "model.plays.generate.scale"),
    ("model.net.homeostasis=-0.1", "model.net.homeostasis"), ("model.net.target_rate=1.5", "model.net.target_rate"),
    ("generate.settle_steps=0", "generate.settle_steps"), ("model.settle_inertia=1", "model.settle_inertia"),
    ("generate.window=0", "generate.window"), ("generate.sample=false generate.window=2", "generate.window"),
    ("generate.beta_start=-1", "generate.beta_start"), ("evaluate.measure_on=train", "evaluate.measure_on"),
    ("evaluate.inpaint_beta=0", "evaluate.inpaint_beta"), ("generate.label_hold=0", "generate.label_hold"),
    ("evaluate.inpaint_rounds=0", "evaluate.inpaint_rounds"), ("evaluate.inpaint_rounds=2", "evaluate.inpaint_rounds"),
    ("evaluate.inpaint_from=pixels", "evaluate.inpaint_from"),
    ("optim.momentum=1", "optim.momentum"), ("optim=adam optim.betas=[0.9,1]", "optim.betas"),
    ("optim=adam +optim.momentum=0.9", "optim.momentum"), ("optim._target_=torch.optim.RMSprop", "optim._target_"),
    ("+model.net.etta=0.1", "model.net.etta"), ("+model.plays.dream=1", "model.plays.dream"),  # `+` forces a key in
])
def test_out_of_range_values_and_forced_keys_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(compose_config(override.split()))


def run_stage(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "astdp.stages.train", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("args, expected", [
    (["optim.lr=-1", "logger=none"], "error: invalid config value optim.lr=-1.0: must be > 0"),
    (["optim.lrr=0.1"], "error: invalid config key optim.lrr: Key 'lrr' is not in struct"),
    (["model.net.activation=relu"], "error: invalid config key model.net.activation: Invalid value 'relu', "
                                    "expected one of [sigmoid, tanh, hardsigmoid]"),
])
def test_cli_error_is_one_line_without_traceback(args, expected):
    done = run_stage(*args)
    assert done.returncode == 1
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    assert lines == [expected], done.stderr[-2000:]


def test_cli_names_a_missing_preset_in_one_line():
    done = run_stage("model=huge")
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    assert done.returncode == 1 and len(lines) == 1 and "model/huge" in lines[0] and "small" in lines[0]


def test_help_lists_only_choices_a_user_makes():
    """The schema nodes type-check configs; they are not choices, so `--help` does not offer them,
    and every preset of conf/experiment/ is offered."""
    done = run_stage("--help")
    groups = dict(line.split(": ", 1) for line in done.stdout.split("== Config groups (group=option) ==")[1]
                  .strip().split("\n\n")[0].splitlines())
    assert "schema" not in done.stdout and "schema" not in groups
    assert set(groups["experiment"].split(", ")) == {p.stem for p in (ROOT / "conf/experiment").glob("*.yaml")}
    assert set(groups["model"].split(", ")) == {p.stem for p in (ROOT / "conf/model").glob("*.yaml")}


@pytest.mark.slow  # a pip install
def test_installed_package_ships_its_configs(tmp_path):
    """A non-editable install composes conf/ from the package, from any folder."""
    import shutil

    source, target = tmp_path / "source", tmp_path / "site"  # a copy: building writes build/ beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("src", "conf"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--target", str(target), str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    assert not (target / "conf").exists() and (target / "astdp/conf/model/astdp.yaml").is_file()
    code = ("import astdp, sys; from astdp.stages.train import main; "
            f"assert astdp.__path__[0].startswith({str(target)!r}), astdp.__path__; main()")
    done = subprocess.run([sys.executable, "-c", code, "--cfg", "job", "experiment=shifts"], cwd=tmp_path,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    cfg = yaml.safe_load(done.stdout)
    assert cfg["model"]["net"]["hidden"] == [2000] and cfg["optim"]["_target_"] == "torch.optim.Adam"  # its group override


def test_pyproject_ships_every_config_group():
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    groups = {"astdp.conf." + ".".join(p.parent.relative_to(ROOT / "conf").parts) for p in (ROOT / "conf").rglob("*/*.yaml")}
    assert groups <= set(packages)


def test_the_citation_names_the_packaged_version():
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"] == version


def test_slurm_trainer_wires_lightnings_auto_requeue():
    import signal

    from hydra.utils import instantiate
    from lightning_fabric.plugins.environments import SLURMEnvironment

    plugins = instantiate(compose_config(["trainer=slurm"]).trainer.plugins)
    (slurm,) = [p for p in plugins if isinstance(p, SLURMEnvironment)]
    assert slurm.auto_requeue and slurm.requeue_signal == signal.SIGUSR1


def test_an_old_name_is_gone_after_one_release_and_the_error_names_what_there_is():
    """Renamed presets and models compose their new names with a notice for one release, then
    go, and the one-line error lists the options: model=deep and experiment=paper (renamed in
    0.19.0, gone in 0.20.0), experiment=deep (renamed in 0.23.0, gone in 0.24.0)."""
    from astdp.results import presets
    assert "invariant" in presets() and "deep" not in presets()
    for group, old, new in [("model", "deep", "joined"), ("experiment", "paper", "shifts"),
                            ("experiment", "deep", "invariant"), ("experiment", "deep_baseline", "invariant_baseline")]:
        done = run_stage(f"{group}={old}")
        lines = [l for l in done.stderr.splitlines() if l.strip()]
        assert done.returncode == 1 and len(lines) == 1 and f"{group}/{old}" in lines[0] and new in lines[0]


def test_configs_and_code_cite_records_not_measured_numbers():
    """A measured number (an accuracy, an error, a gap in points) drifts in a comment: conf/ and
    src/ point to the record that holds it (results/, docs/), which the runs rewrite."""
    measured = re.compile(r"\d+\.\d+ ?%|\d+\.\d+ points|MSE \d")
    files = [*sorted((ROOT / "conf").rglob("*.yaml")), *sorted((ROOT / "src" / "astdp").rglob("*.py"))]
    found = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for f in files
             for n, line in enumerate(f.read_text().splitlines(), 1) if measured.search(line)]
    assert files and not found, "\n".join(found)
