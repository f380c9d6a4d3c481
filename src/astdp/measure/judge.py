"""The strong judge: a small convolutional network trained by backprop on the dataset's
training images. A measuring instrument, not the model: it says which class a generated
image shows, and its penultimate features give the Frechet distance between generated and
real images (FID in this network's feature space rather than Inception's).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from astdp.errors import StageError
from astdp.io import DIGEST_KEY, atomic_path, content_digest


class ConvJudge(nn.Module):
    """Two conv-pool blocks (16 and 32 channels) and a 128-unit feature layer."""

    def __init__(self, image_shape: Sequence[int], n_classes: int):
        super().__init__()
        self.image_shape = tuple(image_shape)
        h, w = self.image_shape
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.features_layer = nn.Sequential(nn.Linear(32 * (h // 4) * (w // 4), 128), nn.ReLU())
        self.head = nn.Linear(128, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, pixels) in [0, 1] -> (B, 128) penultimate activations."""
        return self.features_layer(self.conv(x.view(-1, 1, *self.image_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        return torch.cat([self(b).argmax(1) for b in x.split(batch)])

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        return torch.cat([self.features(b) for b in x.split(batch)])


def train_judge(x: torch.Tensor, y: torch.Tensor, image_shape: Sequence[int], n_classes: int, epochs: int,
                lr: float, batch_size: int, seed: int, progress: bool = False) -> ConvJudge:
    """Adam on shuffled batches, seeded: the same judge every time for the same data.
    ``progress``: a line on stderr per epoch (its mean training loss and seconds)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    judge = ConvJudge(image_shape, n_classes).to(x.device)
    opt = torch.optim.Adam(judge.parameters(), lr=lr)
    steps = epochs * math.ceil(len(x) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    with torch.enable_grad():
        for epoch in range(epochs):
            start, total = time.perf_counter(), torch.zeros((), device=x.device)
            order = torch.randperm(len(x), generator=g).to(x.device)
            for idx in order.split(batch_size):
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(judge(x[idx]), y[idx])
                loss.backward()
                opt.step()
                schedule.step()
                total += loss.detach() * len(idx)  # summed on the device: one sync per epoch, below
            if progress:
                print(f"judge epoch {epoch + 1}/{epochs} loss={total.item() / len(x):.4f} "
                      f"{time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
    return judge.eval().requires_grad_(False)


def save_judge(judge: ConvJudge, path: str | Path, val_accuracy: float) -> None:
    state = {"image_shape": list(judge.image_shape), "n_classes": judge.head.out_features,
             "val_accuracy": val_accuracy, "state_dict": judge.state_dict()}
    state[DIGEST_KEY] = content_digest(state)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)


def load_judge(path: str | Path, device=None) -> tuple[ConvJudge, float]:
    """The judge in ``path`` (weights only, content checked) and its validation accuracy."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.pop(DIGEST_KEY) != content_digest(state):
            raise ValueError("its content does not match the digest it was saved with")
        judge = ConvJudge(state["image_shape"], state["n_classes"])
        judge.load_state_dict(state["state_dict"])
    except FileNotFoundError:
        raise StageError(f"judge {path} is missing; make it with `astdp-judge` (or `dvc repro judge`)") from None
    except Exception as e:
        raise StageError(f"judge {path} is damaged ({type(e).__name__}: {str(e)[:120]}); delete it and run "
                         "`astdp-judge`") from None
    return judge.to(device or "cpu").eval().requires_grad_(False), state["val_accuracy"]
