"""Images: digit grids as PNG files, occlusion masks for in-painting."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from astdp.io import atomic_path


def grid(images: torch.Tensor, ncol: int, image_shape: Sequence[int], pad: int = 2) -> Image.Image:
    """Rows of images (pixels in [0, 1]) as one grayscale image."""
    h, w = image_shape
    imgs = images.detach().float().cpu().clamp(0, 1).view(-1, h, w).numpy()
    nrow = -(-len(imgs) // ncol)
    canvas = np.zeros((nrow * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top:top + h, left:left + w] = img
    return Image.fromarray((canvas * 255).round().astype(np.uint8)).resize(
        (canvas.shape[1] * 2, canvas.shape[0] * 2), Image.NEAREST)


def save_grid(path: str | Path, images: torch.Tensor, ncol: int, image_shape: Sequence[int]) -> Image.Image:
    img = grid(images, ncol, image_shape)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return img
