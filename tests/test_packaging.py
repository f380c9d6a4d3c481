"""What `pip install astdp` promises: every package the code imports is declared with a range, and
the lock's exact versions lie inside those ranges (``make floors`` installs the lowest ones); the
lock pins every package the environment needs, each with the sha256 of its files."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canonical

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK_TEXT = (ROOT / "requirements.lock").read_text()
LOCK = {canonical(name): version for name, version in re.findall(r"^([\w.-]+)==(\S+)", LOCK_TEXT, re.M)}


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
    requirements = [Requirement(r) for r in PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["dev"]]
    for req in requirements:
        if canonical(req.name) == "astdp":
            continue
        assert any(s.operator == ">=" for s in req.specifier), f"{req}: no lower bound"
        assert not any(s.operator == "==" for s in req.specifier), f"{req}: an exact pin belongs in requirements.lock"
        locked = LOCK[canonical(req.name)]
        assert req.specifier.contains(locked), f"{req} excludes the locked {locked}"


def test_every_pin_of_the_lock_carries_the_sha256_of_its_files():
    """`make` installs the lock with --require-hashes: a pin without a hash would stop it, and a
    file changed on the index or a mirror is refused."""
    entries = re.split(r"\n(?=[\w.-]+==)", LOCK_TEXT.strip())
    assert len(entries) == len(LOCK) > 100
    unhashed = [e.split()[0] for e in entries if not re.search(r"--hash=sha256:[0-9a-f]{64}", e)]
    assert not unhashed, f"pins without a hash (scripts/lock_hashes.py writes them): {unhashed}"


def test_the_lock_pins_what_every_locked_package_requires():
    """With --require-hashes pip refuses a dependency the lock does not pin (W&B 0.31's cwevals and
    torch's setuptools were missing once); read from the installed packages' own metadata."""
    from packaging.markers import default_environment

    missing = set()
    for name, version in LOCK.items():
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        if dist.version != version:
            continue  # another version installed (make floors, make ceilings): its requirements are not the lock's
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(default_environment() | {"extra": ""}):
                if canonical(req.name) not in LOCK:
                    missing.add(f"{req.name} (for {name})")
    assert not missing, f"required but not in requirements.lock: {sorted(missing)}"


def test_the_hash_writer_reads_its_own_lock_and_hashes_only_files_of_the_pinned_version(tmp_path, monkeypatch):
    """scripts/lock_hashes.py (offline part): the pins come back from a hashed lock, and a
    find-links folder gives the hash of the pinned version's file, not of another version's."""
    import hashlib

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import lock_hashes

    assert {canonical(n): v for n, v in lock_hashes.pins(ROOT / "requirements.lock")} == LOCK
    wheel = lambda version, body: (tmp_path / f"torch-{version}-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(body)
    wheel("2.13.0+cpu", b"cpu build"), wheel("2.13.0", b"cuda build"), wheel("2.14.0+cpu", b"newer")
    assert lock_hashes.local_hashes("torch", "2.13.0+cpu", [tmp_path]) == {hashlib.sha256(b"cpu build").hexdigest()}
    assert lock_hashes.version_of("six-1.16.0.tar.gz", "six") is not None
    assert lock_hashes.version_of("six-1.16.0.tar.gz", "sixx") is None
