"""Write requirements.lock with the sha256 of every file of each pinned version, for pip's
``--require-hashes`` (what `make` installs with): a file that the index or a mirror changes is
then refused. The hashes come from the package index's JSON simple API (every platform's
files), plus any file of that version in pip's ``find-links`` folders (this machine's CPU wheel
of torch, which no index serves).

    python scripts/lock_hashes.py requirements.lock   # the pins stay; their hashes are rewritten

To move the lock to new versions: install them into .venv, write the pins with
``.venv/bin/pip freeze --all --exclude-editable | grep -v '^pip==' > requirements.lock``, then
run this.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename,
                             parse_wheel_filename)
from packaging.version import InvalidVersion, Version

from astdp.io import write_bytes

INDEX = "https://pypi.org/simple"


def pins(lock: Path) -> list[tuple[str, str]]:
    """(name, version) of each ``name==version`` line, hashes and comments skipped."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", lock.read_text(), re.M)
    return sorted(found, key=lambda p: canonicalize_name(p[0]))


def version_of(filename: str, name: str) -> Version | None:
    """The version of a wheel or sdist of ``name`` (None for another package or file)."""
    try:
        dist, version = (parse_wheel_filename(filename)[:2] if filename.endswith(".whl")
                         else parse_sdist_filename(filename))
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return version if dist == canonicalize_name(name) else None


def index_hashes(name: str, version: str) -> set[str]:
    """The sha256 of every file of this version on the index (each platform's wheels, the sdist)."""
    request = urllib.request.Request(f"{INDEX}/{canonicalize_name(name)}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    return {f["hashes"]["sha256"] for f in files
            if "sha256" in f["hashes"] and version_of(f["filename"], name) == Version(version)}


def find_links() -> list[Path]:
    """pip's find-links folders on this machine (where a local build such as torch ``+cpu`` lies)."""
    config = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    return [Path(f) for f in sorted(set(re.findall(r"find-links='([^']+)'", config))) if Path(f).is_dir()]


def local_hashes(name: str, version: str, folders: list[Path]) -> set[str]:
    """The sha256 of every file of this version in ``folders``."""
    return {hashlib.sha256(f.read_bytes()).hexdigest() for d in folders for f in d.iterdir()
            if version_of(f.name, name) == Version(version)}


def main() -> None:
    lock = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock")
    lines, folders = [], find_links()
    for name, version in pins(lock):
        hashes = sorted(index_hashes(name, version) | local_hashes(name, version, folders))
        if not hashes:
            raise SystemExit(f"error: no file of {name}=={version} on {INDEX} or in find-links")
        lines.append(f"{name}=={version} \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in hashes))
    write_bytes(lock, ("\n".join(lines) + "\n").encode())  # all or nothing: a lock is never half written
    print(f"{len(lines)} pins, their hashes written to {lock}")


if __name__ == "__main__":
    main()
