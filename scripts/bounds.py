"""The versions `make floors` and `make ceilings` install the package at, to show that
pyproject.toml's ranges are true at both ends, and what each venv holds beside the lock.

    python scripts/bounds.py floors      # name==lowest for each [project].dependencies range
    python scripts/bounds.py ceilings    # no constraint: pip takes the newest each range admits
    python scripts/bounds.py --lock      # the installed packages whose version is not requirements.lock's
"""
import re
import sys
import tomllib
from importlib.metadata import distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


def floors() -> list[str]:
    lines = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
    return [f"{req.name}=={[s.version for s in req.specifier if s.operator == '>='][0]}"
            for req in map(Requirement, lines)]


def beside_lock() -> list[str]:
    """One line per installed package at another version than the lock's (newer or older)."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", Path("requirements.lock").read_text(), re.M))
    lock = {canonicalize_name(name): Version(version) for name, version in pins.items()}
    out = []
    for dist in sorted(distributions(), key=lambda d: canonicalize_name(d.metadata["Name"])):
        name, version = canonicalize_name(dist.metadata["Name"]), Version(dist.version)
        if name in lock and version != lock[name]:
            word = "newer" if version > lock[name] else "older"
            out.append(f"{name} {version} ({word} than the lock's {lock[name]})")
    return out


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "floors":
        print("\n".join(floors()))
    elif mode == "ceilings":
        pass  # an empty constraints file: pip's own resolution is the newest that every range admits
    elif mode == "--lock":
        lines = beside_lock()
        print(f"{len(lines)} installed packages differ from requirements.lock" + (":" if lines else ""))
        for line in lines:
            print(f"  {line}")
    else:
        sys.exit("usage: python scripts/bounds.py floors|ceilings|--lock")
