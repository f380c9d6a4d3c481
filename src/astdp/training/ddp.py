"""DDP for networks whose parameters never require grad."""
from __future__ import annotations

import torch
from pytorch_lightning.strategies import DDPStrategy


class LocalUpdateDDP(DDPStrategy):
    """Lightning's DDP without the autograd wrapper: aSTDP parameters never require grad.

    ``DistributedDataParallel`` refuses such a module and its gradient hooks would do
    nothing anyway; :class:`ASTDPModule` averages its weight changes itself. Ranks start
    from rank 0's weights, as DDP would make them.
    """

    def configure_ddp(self) -> None:
        if any(p.requires_grad for p in self.model.parameters()):  # the backprop baseline
            return super().configure_ddp()
        for p in self.model.parameters():
            torch.distributed.broadcast(p.data, src=0)
