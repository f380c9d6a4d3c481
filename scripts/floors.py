"""Print ``name==lowest`` for each of pyproject.toml's [project].dependencies: the constraints
that `make floors` installs the package at, to show that its lower bounds are true."""
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

for line in tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]:
    req = Requirement(line)
    lowest = [s.version for s in req.specifier if s.operator == ">="]
    print(f"{req.name}=={lowest[0]}")
