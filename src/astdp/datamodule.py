"""MNIST kept whole as tensors on the training device; batches are slices, not collations."""
from __future__ import annotations

from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

from astdp.mnist import load_split


def translate(x: torch.Tensor, offsets: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Each 28x28 image moved by its own whole-pixel offset; uncovered pixels are background (0).

    ``offsets`` (B, 2) holds (row, column) in ``[0, 2 * max_shift]``; an offset of
    ``max_shift`` leaves the image where it is.
    """
    b, s = len(x), max_shift
    padded = F.pad(x.view(b, 28, 28), (s, s, s, s))
    r = torch.arange(28, device=x.device)
    rows, cols = (offsets[:, :1] + r)[:, :, None], (offsets[:, 1:] + r)[:, None, :]
    return padded[torch.arange(b, device=x.device)[:, None, None], rows, cols].reshape(b, -1)


class TensorBatches(IterableDataset):
    """Yields ``(x, y)`` slices of device tensors.

    Shuffling uses a generator seeded by ``(seed, epoch)``, so an epoch's order does not
    depend on how many epochs ran before in this process (resume gives the same order).
    Under DDP every global batch of ``batch_size * world`` rows is cut into one contiguous
    piece per rank: the ranks together see exactly the batches a single process would.
    ``max_shift > 0`` (training) moves every image by a random offset of up to that many
    pixels along each axis, drawn from the same generator: an augmentation that is also
    the same under DDP and on resume.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = False, seed: int = 0,
                 epoch: Callable[[], int] = lambda: 0, rank: int = 0, world: int = 1, max_shift: int = 0):
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self.epoch, self.rank, self.world, self.max_shift = epoch, rank, world, max_shift

    def __len__(self) -> int:
        return -(-len(self.x) // (self.batch_size * self.world))

    def __iter__(self):
        n, step = len(self.x), self.batch_size * self.world
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch())
        if self.shuffle:
            order = torch.randperm(n, generator=g).to(self.x.device)
            x, y = self.x[order], self.y[order]
        else:
            x, y = self.x, self.y
        if self.max_shift:
            offsets = torch.randint(0, 2 * self.max_shift + 1, (n, 2), generator=g).to(self.x.device)
        for start in range(0, n, step):
            lo = start + self.rank * self.batch_size
            hi = min(lo + self.batch_size, start + step, n)
            if lo < hi:
                xb = translate(x[lo:hi], offsets[lo:hi], self.max_shift) if self.max_shift else x[lo:hi]
                yield xb, y[lo:hi]


class MNISTDataModule(pl.LightningDataModule):
    def __init__(self, root: str, batch_size: int = 64, val_size: int = 5000, seed: int = 0,
                 eval_batch_size: int = 1000, verify: bool = True, max_shift: int = 0):
        super().__init__()
        self.root, self.batch_size, self.val_size, self.seed = root, batch_size, val_size, seed
        self.eval_batch_size, self.verify, self.max_shift = eval_batch_size, verify, max_shift
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and "train" not in self.splits:
            x, y = load_split(self.root, "train", self.verify)
            # The validation split is a seeded draw from the 60,000 training images.
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
            val, train = order[: self.val_size], order[self.val_size :]
            self.splits["train"] = (x[train].to(self.device), y[train].to(self.device))
            self.splits["val"] = (x[val].to(self.device), y[val].to(self.device))
        if stage in ("test", None) and "test" not in self.splits:
            x, y = load_split(self.root, "test", self.verify)
            self.splits["test"] = (x.to(self.device), y.to(self.device))

    def _loader(self, split: str, batch_size: int, shuffle: bool = False, max_shift: int = 0) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if (trainer and shuffle) else (0, 1)
        epoch = (lambda: trainer.current_epoch) if trainer is not None else (lambda: 0)
        batches = TensorBatches(*self.splits[split], batch_size, shuffle, self.seed, epoch, rank, world, max_shift)
        return DataLoader(batches, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True, max_shift=self.max_shift)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size)
