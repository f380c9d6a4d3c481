"""DVC can trust the pipeline: each stage depends on every source file it runs and every
parameter it reads, and a rerun writes the same bytes."""
import ast
import hashlib
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from astdp.training.targets import BUILT_NETS
from tests.conftest import ROOT, SHARED_MNIST, run_pipeline

SRC = ROOT / "src"
STAGES = ("download", "judge", "train", "evaluate", "generate")
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def module_file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def imported(module: str) -> set[str]:
    """astdp modules that ``module`` imports anywhere in its body (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(module_file(module).read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.split(".")[0] == "astdp" and module_file(n)}


def targets(node) -> set[str]:
    """Modules of the ``_target_``s in a config section: what instantiate will import."""
    if isinstance(node, dict):
        own = {node["_target_"].rsplit(".", 1)[0]} if "_target_" in node else set()
        return own.union(*(targets(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(targets(v) for v in node))
    return set()


def section(key: str):
    node = PARAMS
    for part in key.split("."):
        node = node[part]
    return node


def source_files(stage: str) -> set[str]:
    """Files the stage runs: its module, what it imports, what its config sections build, transitively."""
    todo = [f"astdp.stages.{stage}"] + sorted(m for key in DVC[stage]["params"] for m in targets(section(key))
                                               if m.split(".")[0] == "astdp")
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        todo += sorted(imported(module)) + [p for p in parents if module_file(p)]
        if module == "astdp.training.modules":  # it builds whichever network a config or checkpoint names
            todo += sorted(t.rsplit(".", 1)[0] for t in BUILT_NETS)
    return {str(module_file(m).relative_to(ROOT)) for m in seen}


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_depends_on_every_source_file_it_runs(stage):
    deps = DVC[stage]["deps"]
    missing = sorted(f for f in source_files(stage) if not covered(f, deps))
    assert not missing, f"dvc.yaml: stage {stage} runs {missing} but does not depend on them"
    stale = sorted(d for d in deps if d.startswith("src/") and not any(covered(f, [d]) for f in source_files(stage)))
    assert not stale, f"dvc.yaml: stage {stage} depends on {stale}, which it does not run"


def test_lazy_imports_are_seen():
    """The import scan reads function bodies: evaluate's read-out is imported inside a function."""
    assert "src/astdp/measure/probe.py" in source_files("evaluate")
    assert "src/astdp/nets/joined.py" in source_files("evaluate")  # a checkpoint of experiment=invariant names it
    assert "src/astdp/data/datamodule.py" in source_files("train")  # named only by data._target_


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_reads_exactly_the_params_dvc_yaml_declares(stage):
    module = importlib.import_module(f"astdp.stages.{stage}")
    assert module.PARAMS == DVC[stage]["params"]


def test_a_stage_cannot_read_an_undeclared_param(cfg_tiny):
    from omegaconf.errors import ConfigAttributeError

    from astdp.config import sections

    cfg = sections(cfg_tiny, ["data.root", "evaluate"])
    assert cfg.evaluate.settle_steps == 3
    with pytest.raises(ConfigAttributeError):
        cfg.model
    with pytest.raises(ConfigAttributeError):
        cfg.data.batch_size


def digest_tree(root: Path, names) -> dict[str, str]:
    files = [p for n in names for p in sorted((root / n).rglob("*") if (root / n).is_dir() else [root / n])]
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def test_a_rerun_writes_the_same_bytes(cfg_tiny, tmp_path, finished_run):
    """Every output DVC hashes: no wall-clock time, absolute path or random name inside (the
    session's run was made in another folder, on another copy of the data)."""
    outputs = ("models", "metrics", "reports", "plots", "samples")
    run_pipeline(cfg_tiny)
    again, before = digest_tree(tmp_path, outputs), digest_tree(finished_run[0], outputs)
    assert again == before and len(again) == 13


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="needs the local MNIST mirror ../shared/mnist")
def test_forced_repro_leaves_dvc_lock_byte_identical(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "WANDB_MODE": "offline"}

    def dvc(*args: str) -> None:
        done = subprocess.run(["dvc", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    dvc("exp", "run", "-S", "model=small", "-S", "trainer.max_epochs=1", "-S", "+trainer.limit_train_batches=50",
        "-S", f"data.mirrors=[{SHARED_MNIST}]", "-S", "logger=none", "-S", "generate.per_class=2",
        "-S", "judge.epochs=1")
    first = (repo / "dvc.lock").read_bytes()
    dvc("repro", "-f")
    assert (repo / "dvc.lock").read_bytes() == first
