"""The results table: built from metrics files, written into the README's block only."""
import json

import pytest
from omegaconf import OmegaConf

from astdp.results import END, START, experiments, table, write_into
from astdp.stages.evaluate import evaluate
from astdp.stages.generate import generate
from astdp.stages.train import train


def test_table_rows_come_from_the_metrics_files(cfg_tiny, tmp_path):
    train(cfg_tiny), evaluate(cfg_tiny), generate(cfg_tiny)
    metrics = {name: {"data": json.loads((tmp_path / "metrics" / f"{name}.json").read_text())}
               for name in ("train", "eval", "generate")}
    params = OmegaConf.to_container(cfg_tiny, resolve=True)
    exp_show = [{"rev": "workspace", "name": None, "experiments": None,
                 "data": {"timestamp": None, "params": {"params.yaml": {"data": params}},
                          "metrics": {f"metrics/{k}.json": v for k, v in metrics.items()}}}]
    runs = experiments(exp_show)
    text = table(runs)
    acc = metrics["eval"]["data"]["test_accuracy"]
    judge = metrics["generate"]["data"]["judge_accuracy"]
    (row,) = [line for line in text.splitlines() if "default" in line]
    assert f"{100 * acc:.2f}%" in row and f"{100 * judge:.2f}%" in row
    assert text.count("*published:*") == 2  # marked as published, not measured


def test_readme_block_is_replaced_and_the_rest_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold table\n{END}\nafter\n")
    write_into(readme, "| new |")
    assert readme.read_text() == f"intro\n{START}\n| new |\n{END}\nafter\n"
    readme.write_text("no markers")
    with pytest.raises(SystemExit, match="results:start"):
        write_into(readme, "| new |")
    assert readme.read_text() == "no markers"
