"""MNIST as IDX files: canonical checksums, strict reading, loading as tensors.

Every check here raises :class:`DataError` naming the file, so bad data never reaches
training.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch

from astdp.errors import DataError

# sha256 of the *uncompressed* IDX files (gzip headers differ between mirrors).
FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_idx_bytes(path: Path) -> bytes:
    """Raw IDX bytes of ``path`` or ``path.gz``."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            raw = candidate.read_bytes()
            if candidate.suffix == ".gz":
                try:
                    raw = gzip.decompress(raw)
                except (OSError, EOFError, zlib.error) as e:
                    raise DataError(f"{candidate}: not a valid gzip file ({e}); delete it and download again") from e
            return raw
    raise DataError(f"{path}: missing; run `astdp-download` (or point data.root at a folder with the MNIST IDX files)")


def parse_idx(raw: bytes, name: str, magic: int) -> np.ndarray:
    """Parse an IDX byte string of unsigned bytes, checking magic and size."""
    if len(raw) < 8:
        raise DataError(f"{name}: truncated ({len(raw)} bytes), not an IDX file")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{name}: wrong magic number {found} (expected {magic}); the file is not MNIST {'images' if magic == IMAGE_MAGIC else 'labels'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{name}: {len(raw)} bytes but its header {dims} needs {expected}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_split(root: str | Path, split: str, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 (N, 784) in [0, 1] and labels as int64 (N,)."""
    root = Path(root)
    img_name, lbl_name = SPLITS[split]
    arrays = []
    for name, magic in ((img_name, IMAGE_MAGIC), (lbl_name, LABEL_MAGIC)):
        raw = read_idx_bytes(root / name)
        if verify and sha256(raw) != FILES[name]:
            raise DataError(f"{root / name}: checksum mismatch (sha256 {sha256(raw)[:12]}..., expected {FILES[name][:12]}...); delete it and run `astdp-download`")
        arrays.append(parse_idx(raw, str(root / name), magic))
    images, labels = arrays
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{root / img_name}: images of shape {images.shape[1:]}, expected 28x28")
    if len(images) != len(labels):
        raise DataError(f"{root}: {len(images)} images but {len(labels)} labels in the {split} split")
    if labels.size and labels.max() > 9:
        raise DataError(f"{root / lbl_name}: label {int(labels.max())} outside 0-9")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (used by tests and the package-index source)."""
    magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())
