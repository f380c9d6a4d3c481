"""An IDX dataset kept whole as tensors on the training device; batches are slices, not collations."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, IterableDataset

from astdp.data.download import download
from astdp.errors import DataError
from astdp.data.idx import load_split


def translate(x: torch.Tensor, offsets: torch.Tensor, max_shift: int, image_shape: Sequence[int]) -> torch.Tensor:
    """Each (height x width) image moved by its own whole-pixel offset; uncovered pixels are background (0).

    ``offsets`` (B, 2) holds (row, column) in ``[0, 2 * max_shift]``; an offset of
    ``max_shift`` leaves the image where it is.
    """
    (b, s), (h, w) = (len(x), max_shift), image_shape
    padded = F.pad(x.view(b, h, w), (s, s, s, s))
    rows = (offsets[:, :1] + torch.arange(h, device=x.device))[:, :, None]
    cols = (offsets[:, 1:] + torch.arange(w, device=x.device))[:, None, :]
    return padded[torch.arange(b, device=x.device)[:, None, None], rows, cols].reshape(b, -1)


def mirror(x: torch.Tensor, image_shape: Sequence[int]) -> torch.Tensor:
    """Each (height x width) image mirrored left to right."""
    return x.view(len(x), *image_shape).flip(-1).reshape(len(x), -1)


class TensorBatches(IterableDataset):
    """Yields ``(x, y)`` slices of device tensors.

    Shuffling uses a generator seeded by ``(seed, epoch)``, so an epoch's order does not
    depend on how many epochs ran before in this process (resume gives the same order).
    Under DDP every global batch of ``batch_size * world`` rows is cut into one contiguous
    piece per rank: the ranks together see exactly the batches a single process would.
    ``max_shift > 0`` (training) moves every image by a random offset of up to that many
    pixels along each axis, drawn from the same generator: an augmentation that is also
    the same under DDP and on resume. ``flip`` (training) mirrors a random half of the
    images left to right, drawn after the offsets. ``done()`` batches of the epoch are skipped (a run
    resumed mid-epoch).
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = False, seed: int = 0,
                 epoch: Callable[[], int] = lambda: 0, rank: int = 0, world: int = 1, max_shift: int = 0,
                 done: Callable[[], int] = lambda: 0, image_shape: Sequence[int] = (), flip: bool = False):
        self.x, self.y, self.batch_size, self.shuffle, self.seed = x, y, batch_size, shuffle, seed
        self.epoch, self.rank, self.world, self.max_shift, self.done = epoch, rank, world, max_shift, done
        self.image_shape, self.flip = image_shape, flip  # the shape: needed with max_shift or flip

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
        if self.flip:
            mirrored = (torch.rand(n, generator=g) < 0.5).to(self.x.device)[:, None]
        for start in range(self.done() * step, n, step):
            lo = start + self.rank * self.batch_size
            hi = min(lo + self.batch_size, start + step, n)
            if lo < hi:
                xb = translate(x[lo:hi], offsets[lo:hi], self.max_shift, self.image_shape) if self.max_shift else x[lo:hi]
                if self.flip:
                    xb = torch.where(mirrored[lo:hi], mirror(xb, self.image_shape), xb)
                yield xb, y[lo:hi]


class IDXDataModule(pl.LightningDataModule):
    """An IDX dataset's splits as device tensors: training (less a seeded validation draw), validation, test.

    What the dataset is (``name``, ``classes``, ``image_shape``, the sha256 of its ``files``,
    its ``mirrors``) comes from ``conf/data/``. ``prepare_data`` fetches and verifies missing
    files (:func:`astdp.data.download.download`); :meth:`load` reads a whole official split, for
    the stages that need all of it.
    """

    def __init__(self, name: str, root: str, classes: list[str], n_classes: int, image_shape: list[int],
                 files: dict[str, str], mirrors: list[str], batch_size: int, val_size: int, seed: int,
                 eval_batch_size: int, verify: bool, max_shift: int, flip: bool):
        super().__init__()
        self.name, self.root, self.classes, self.n_classes = name, root, list(classes), n_classes
        self.image_shape, self.files, self.mirrors = tuple(image_shape), dict(files), list(mirrors)
        self.batch_size, self.val_size, self.seed = batch_size, val_size, seed
        self.eval_batch_size, self.verify, self.max_shift, self.flip = eval_batch_size, verify, max_shift, flip
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._resume_skip = 0

    @property
    def device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def prepare_data(self) -> None:
        """Fetch the files if any is missing (a fresh folder). A file that is present but damaged
        is not replaced here: loading names it (the download stage replaces it)."""
        if not all(any((Path(self.root) / (name + gz)).exists() for gz in ("", ".gz")) for name in self.files):
            download(self.root, self.mirrors, self.files, self.verify)

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole official split (``train`` or ``test``) as CPU tensors."""
        return load_split(self.root, split, self.files, self.image_shape, self.n_classes, self.verify)

    def train_val(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The official training images as ``train`` and ``val`` (a seeded draw of ``val_size``
        of them), CPU tensors: every setting is chosen on ``val``; only the evaluate and generate
        stages read the test split."""
        x, y = self.load("train")
        if self.val_size >= len(x):
            raise DataError(f"{self.root}: data.val_size={self.val_size} leaves none of its {len(x)} training "
                            "images to train on; lower data.val_size")
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        val, train = order[: self.val_size], order[self.val_size :]
        return {"train": (x[train], y[train]), "val": (x[val], y[val])}

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and "train" not in self.splits:
            for split, (x, y) in self.train_val().items():
                self.splits[split] = (x.to(self.device), y.to(self.device))
        if stage in ("test", None) and "test" not in self.splits:
            x, y = self.load("test")
            self.splits["test"] = (x.to(self.device), y.to(self.device))

    def _loader(self, split: str, batch_size: int, shuffle: bool = False, max_shift: int = 0,
                flip: bool = False) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if (trainer and shuffle) else (0, 1)
        epoch = (lambda: trainer.current_epoch) if trainer is not None else (lambda: 0)
        done = self._take_resume_skip if shuffle else (lambda: 0)
        batches = TensorBatches(*self.splits[split], batch_size, shuffle, self.seed, epoch, rank, world, max_shift, done,
                                self.image_shape, flip)
        return DataLoader(batches, batch_size=None)

    # A checkpoint written mid-epoch (on SIGTERM) records how many batches of the epoch were
    # trained; the resumed run's first epoch skips them, so it sees the batches it would have.
    def state_dict(self) -> dict:
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed
        return {"epoch_batches_done": progress if progress < self.trainer.num_training_batches else 0}

    def load_state_dict(self, state: dict) -> None:
        self._resume_skip = state["epoch_batches_done"]

    def _take_resume_skip(self) -> int:
        skip, self._resume_skip = self._resume_skip, 0
        return skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True, max_shift=self.max_shift, flip=self.flip)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size)
