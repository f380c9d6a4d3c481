"""In-painting: which pixels are hidden, and the memory baseline a fill has to beat."""
from __future__ import annotations

from typing import Sequence

import torch


def occlusion_mask(n: int, side: str, image_shape: Sequence[int], device=None) -> torch.Tensor:
    """Boolean (n, pixels) mask of the *known* pixels when half the image (``side``) is hidden."""
    h, w = image_shape
    known = torch.ones(h, w, dtype=torch.bool, device=device)
    half = {"bottom": (slice(h // 2, h), slice(None)), "top": (slice(0, h // 2), slice(None)),
            "left": (slice(None), slice(0, w // 2)), "right": (slice(None), slice(w // 2, w))}[side]
    known[half] = False
    return known.flatten().expand(n, -1)


def inpainted(net, x: torch.Tensor, known: torch.Tensor, ev) -> torch.Tensor:
    """``x`` with the pixels where ``known`` is False filled in by the network, as the evaluate
    stage's ``ev`` (``settle_steps`` + 2 rounds, ``inpaint_beta``, ``inpaint_from``, ``inpaint_rounds``) says."""
    return net.inpaint(x, known, ev.settle_steps + 2, ev.inpaint_beta, from_code=ev.inpaint_from == "code",
                       rounds=ev.inpaint_rounds)


def fills(net, x: torch.Tensor, x_train: torch.Tensor, ev) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The known pixels' mask when half of each image of ``x`` (``ev.occlude``) is hidden, and ``x``
    completed by the network (:func:`inpainted`, batches of ``ev.batch_size``) and by memory: the
    mean of the 10 ``x_train`` images nearest on the visible half."""
    known = occlusion_mask(len(x), ev.occlude, net.image_shape, x.device)
    split = lambda t: t.split(ev.batch_size)
    filled = torch.cat([inpainted(net, xb, kb, ev) for xb, kb in zip(split(x), split(known))])
    return known, filled, knn_fill(x, known[0], x_train)


def knn_fill(x: torch.Tensor, known: torch.Tensor, reference: torch.Tensor, k: int = 10,
             batch: int = 500) -> torch.Tensor:
    """``x`` with its unknown pixels filled by the mean of the ``k`` ``reference`` images nearest
    on the known pixels: a memory that in-painting has to beat. ``known``: one (pixels,) mask."""
    seen = reference[:, known]
    filled = [torch.where(known, xb, reference[torch.cdist(xb[:, known], seen).topk(k, largest=False).indices].mean(1))
              for xb in x.split(batch)]
    return torch.cat(filled)
