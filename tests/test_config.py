"""Config: params.yaml is the composition of conf/, bad values stop the run with one line."""
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from astdp.config import ConfigError, validate
from tests.conftest import ROOT, compose_config


def test_params_yaml_is_composition_of_conf():
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert committed == OmegaConf.to_container(compose_config())


def test_presets_compose_and_validate():
    for overrides in ([], ["model=small"], ["model=paper"], ["model=backprop_mlp"], ["trainer=ddp"],
                      ["logger=none"]):
        validate(compose_config(overrides))


def test_a_missing_key_is_named_not_filled_in():
    cfg = compose_config()
    del cfg.stdp.eta  # the schema holds no values of its own: conf/ is the single source
    with pytest.raises(ConfigError, match=r"stdp\.eta"):
        validate(cfg)


@pytest.mark.parametrize("override, key", [
    ("stdp.eta=0", "stdp.eta"), ("stdp.eta=-0.1", "stdp.eta"), ("model.hidden=[100,-3]", "model.hidden"),
    ("model.hidden=[]", "model.hidden"), ("model.activation=relu9", "model.activation"),
    ("data.batch_size=0", "data.batch_size"), ("data.max_shift=-1", "data.max_shift"), ("stdp.plays.generate.weight=-1", "stdp.plays.generate.weight"), ("+stdp.plays.dream=1", "dream"),
    ("stdp.plays.classify.steps=two", "stdp.plays.classify.steps"), ("+stdp.etta=0.1", "stdp.etta"),
    ("matmul_precision=low", "matmul_precision"), ("stdp.homeostasis=-0.1", "stdp.homeostasis"),
    ("stdp.target_rate=1.5", "stdp.target_rate"), ("generate.settle_steps=0", "generate.settle_steps"),
    ("generate.sample=maybe", "generate.sample"),
])
def test_invalid_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(compose_config([override]))


def test_cli_error_is_one_line_without_traceback():
    cmd = [sys.executable, "-m", "astdp.stages.train", "stdp.eta=-1", "logger=none"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    assert lines == ["error: invalid config value stdp.eta=-1.0: must be > 0"]
    typo = subprocess.run([sys.executable, "-m", "astdp.stages.train", "stdp.etta=0.1"], capture_output=True,
                          text=True, cwd=ROOT)
    assert typo.returncode != 0 and "etta" in typo.stderr
