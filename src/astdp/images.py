"""Images: digit grids as PNG files, occlusion masks for in-painting."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from astdp.io import atomic_path


def grid(images: torch.Tensor, ncol: int, pad: int = 2) -> Image.Image:
    """Rows of 28x28 digits (pixels in [0, 1]) as one grayscale image."""
    imgs = images.detach().float().cpu().clamp(0, 1).view(-1, 28, 28).numpy()
    nrow = -(-len(imgs) // ncol)
    canvas = np.zeros((nrow * (28 + pad) + pad, ncol * (28 + pad) + pad), dtype=np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncol)
        canvas[pad + r * (28 + pad):pad + r * (28 + pad) + 28, pad + c * (28 + pad):pad + c * (28 + pad) + 28] = img
    return Image.fromarray((canvas * 255).round().astype(np.uint8)).resize(
        (canvas.shape[1] * 2, canvas.shape[0] * 2), Image.NEAREST)


def save_grid(path: str | Path, images: torch.Tensor, ncol: int) -> Image.Image:
    img = grid(images, ncol)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return img


def occlusion_mask(n: int, side: str, device=None):
    """Boolean (n, 784) mask of the *known* pixels when half the image (``side``) is hidden."""
    known = torch.ones(28, 28, dtype=torch.bool, device=device)
    half = {"bottom": (slice(14, 28), slice(None)), "top": (slice(0, 14), slice(None)),
            "left": (slice(None), slice(0, 14)), "right": (slice(None), slice(14, 28))}[side]
    known[half] = False
    return known.flatten().expand(n, -1)
