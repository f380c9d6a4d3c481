"""Datasets as IDX files (MNIST's layout, shared by Fashion-MNIST and others): strict
reading, checksums, loading as tensors.

Which files, their checksums, the image shape and the number of classes come from the data
config (``conf/data/``). Every check here raises :class:`DataError` naming the file, so bad
data never reaches training.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from astdp.errors import DataError

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
    raise DataError(f"{path}: missing; run `astdp-download` (or point data.root at a folder with the IDX files)")


def parse_idx(raw: bytes, name: str, magic: int) -> np.ndarray:
    """Parse an IDX byte string of unsigned bytes, checking magic and size."""
    if len(raw) < 8:
        raise DataError(f"{name}: truncated ({len(raw)} bytes), not an IDX file")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"{name}: wrong magic number {found} (expected {magic}); the file is not IDX {'images' if magic == IMAGE_MAGIC else 'labels'}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{name}: {len(raw)} bytes but its header {dims} needs {expected}; the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_split(root: str | Path, split: str, files: dict[str, str], image_shape: Sequence[int], n_classes: int,
               verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 (N, height * width) in [0, 1] and labels as int64 (N,).

    ``files`` maps each IDX file name to the sha256 of its uncompressed content, checked if ``verify``.
    """
    root = Path(root)
    img_name, lbl_name = SPLITS[split]
    arrays = []
    for name, magic in ((img_name, IMAGE_MAGIC), (lbl_name, LABEL_MAGIC)):
        raw = read_idx_bytes(root / name)
        if verify and sha256(raw) != files[name]:
            raise DataError(f"{root / name}: checksum mismatch (sha256 {sha256(raw)[:12]}..., expected {files[name][:12]}...); delete it and run `astdp-download`")
        arrays.append(parse_idx(raw, str(root / name), magic))
    images, labels = arrays
    if images.ndim != 3 or images.shape[1:] != tuple(image_shape):
        raise DataError(f"{root / img_name}: images of shape {images.shape[1:]}, expected {tuple(image_shape)} (data.image_shape)")
    if len(images) != len(labels):
        raise DataError(f"{root}: {len(images)} images but {len(labels)} labels in the {split} split")
    if labels.size and labels.max() >= n_classes:
        raise DataError(f"{root / lbl_name}: label {int(labels.max())} outside 0-{n_classes - 1} (data.n_classes)")
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (used by tests and the package-index source)."""
    magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())
