"""The training data order as a function of the step: what makes resuming (and DDP sharding) exact.

The sample stream is an endless concatenation of permutations of the dataset, the permutation of
epoch e keyed by (seed, e). Step s consumes global positions [s*B*W, (s+1)*B*W) (B per-process
batch, W processes) and rank r takes its own contiguous B of them. A run resumed at step k asks for
the batches of steps k, k+1, ... and gets exactly what the uninterrupted run got, with no batches
to skip. Each sample is loaded under generators seeded by (seed, epoch, index), so random crops do
not depend on which DataLoader worker loads them either.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from .rng import derive_seed, seeded_fork


class StepBatchSampler(Sampler):
    """Yields, for steps start..stop-1, this rank's batch as a list of (epoch, index) pairs."""

    def __init__(self, dataset_size: int, batch_size: int, *, seed: int, start_step: int, stop_step: int,
                 rank: int = 0, world_size: int = 1):
        if dataset_size < 1:
            raise ValueError("the dataset is empty")
        self.n, self.batch_size, self.seed = dataset_size, batch_size, seed
        self.start_step, self.stop_step = start_step, stop_step
        self.rank, self.world_size = rank, world_size
        self._perm_epoch, self._perm = -1, None

    def __len__(self) -> int:
        return max(0, self.stop_step - self.start_step)

    def permutation(self, epoch: int) -> torch.Tensor:
        """The order of epoch `epoch`: the same for every rank and every resumption."""
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g), epoch
        return self._perm

    def batch_for_step(self, step: int) -> list[tuple[int, int]]:
        """This rank's (epoch, dataset index) pairs for one step."""
        first = (step * self.world_size + self.rank) * self.batch_size
        pairs = []
        for position in range(first, first + self.batch_size):
            epoch, offset = divmod(position, self.n)
            pairs.append((epoch, int(self.permutation(epoch)[offset])))
        return pairs

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.stop_step):
            yield self.batch_for_step(step)


class EpochIndexedDataset(Dataset):
    """Wraps a dataset so items are addressed by (epoch, index) and drawn under a seeded fork."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        with seeded_fork(derive_seed(self.seed, epoch, index)):
            return self.dataset[index]
