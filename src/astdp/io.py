"""Writing outputs whole or not at all: a temporary name in the same folder, then rename."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


DIGEST_KEY = "astdp_content_sha256"


def content_digest(obj) -> str:
    """sha256 of a checkpoint's content: every tensor's bytes, dtype and shape, every key and value.

    A zip checkpoint has no checksum of its own: a flipped byte in a tensor or a float loads
    silently as another number. Stored in the file and checked on loading, it catches that.
    """
    import torch

    h = hashlib.sha256()

    def walk(o) -> None:
        if isinstance(o, torch.Tensor):
            h.update(f"T{o.dtype}{tuple(o.shape)}".encode())
            h.update(o.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(o, dict):
            h.update(b"{")
            for k in sorted(o, key=repr):
                walk(k)
                walk(o[k])
            h.update(b"}")
        elif isinstance(o, (list, tuple)):
            h.update(b"[")
            for v in o:
                walk(v)
            h.update(b"]")
        else:
            h.update(f"{type(o).__name__}:{o!r};".encode())

    walk(obj)
    return h.hexdigest()


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | Path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def write_metrics(folder: str | Path, stage: str, results: dict) -> None:
    """The numbers people compare across runs to ``metrics/<stage>.json`` (DVC's metrics), the
    rest (per-class values, matrices, names) to ``reports/<stage>.json``."""
    folder = Path(folder)
    number = lambda v: v is None or isinstance(v, (int, float))
    # a list of numbers is one per layer (readout_accuracy): a headline too
    headline = {k: v for k, v in results.items() if number(v) or (isinstance(v, list) and all(map(number, v)))}
    write_json(folder / "metrics" / f"{stage}.json", headline)
    write_json(folder / "reports" / f"{stage}.json", {k: v for k, v in results.items() if k not in headline})
