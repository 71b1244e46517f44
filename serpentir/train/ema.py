"""An exponential moving average of a model's weights: smoother weights for validation and release."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """Keeps `module`, a frozen copy of a model whose floating weights trail the trained ones.

    The effective decay is min(decay, (1 + updates) / (10 + updates)): early in training the average
    follows the weights closely instead of staying stuck near the random initialisation, which matters
    for short runs; later it is the configured decay. Buffers are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def effective_decay(self) -> float:
        """The decay used for the next update (warmed up, see the class docstring)."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend the current weights of `model` (an unwrapped module of the same architecture) in."""
        d = self.effective_decay()
        self.updates += 1
        trained = model.state_dict()
        for name, avg in self.module.state_dict().items():
            new = trained[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.to(avg.dtype), alpha=1.0 - d)
            else:
                avg.copy_(new)
