"""What `pip install astdp` promises: every package the code imports is declared with a range, and
the lock's exact versions lie inside those ranges (``make floors`` installs the lowest ones)."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from packaging.requirements import Requirement

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
canonical = lambda name: re.sub(r"[-_.]+", "-", name).lower()


def imported_packages() -> set[str]:
    """Top-level names of what ``src/astdp`` imports from outside itself and the standard library."""
    names = set()
    for path in (ROOT / "src" / "astdp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"astdp", "__future__"}


def test_every_package_the_code_imports_is_a_declared_dependency():
    """A package that arrives only as another's dependency (torchmetrics through Lightning, say)
    can leave with that package's next release."""
    declared = {canonical(Requirement(r).name) for r in PYPROJECT["dependencies"]}
    distributions = packages_distributions()
    undeclared = {name: distributions.get(name) for name in imported_packages()
                  if not declared & {canonical(d) for d in distributions.get(name, [name])}}
    assert not undeclared, f"imported but not in [project].dependencies: {undeclared}"


def test_every_dependency_is_a_range_that_admits_the_locked_version():
    """pyproject.toml states compatible ranges (installable beside other packages), the lock the
    exact versions a result was made with; the two must agree."""
    lock = dict(line.split("==") for line in (ROOT / "requirements.lock").read_text().split()
                if "==" in line and not line.startswith("#"))
    lock = {canonical(name): version for name, version in lock.items()}
    requirements = [Requirement(r) for r in PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["dev"]]
    for req in requirements:
        if canonical(req.name) == "astdp":
            continue
        assert any(s.operator == ">=" for s in req.specifier), f"{req}: no lower bound"
        assert not any(s.operator == "==" for s in req.specifier), f"{req}: an exact pin belongs in requirements.lock"
        assert req.specifier.contains(lock[canonical(req.name)]), f"{req} excludes the locked {lock[canonical(req.name)]}"
