"""An endless batch sampler whose batch for step ``s`` depends only on (seed, s).

Resuming at step ``s`` therefore sees exactly the batches an uninterrupted run
would have seen. Each index comes with a per-sample seed for the data loader's
random augmentation, so workers need no random state of their own.

Data-parallel training: with ``world_size`` processes, rank ``r`` takes the
batch of global index ``s * world_size + r`` at its step ``s``, so the ranks
share one step-indexed stream without overlap, and one process alone
(``world_size`` 1) sees the same batches as before.
"""
from __future__ import annotations

from itertools import count
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from landsegmenter.data.samplers import GroupedBatchSampler
from landsegmenter.errors import LandSegError


def sample_seed(seed: int, step: int, position: int) -> int:
    """A 32-bit seed for sample ``position`` of the batch of ``step``."""
    return int(np.random.SeedSequence([seed, step, position]).generate_state(1)[0])


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Endless batches of ``(index, augmentation seed)`` from step ``start_step`` on.

    ``grouped``: each batch holds one group (e.g. one LAS subset), as
    :class:`GroupedBatchSampler` cuts them; otherwise batches mix groups.
    Data epochs follow one another, each in a new seeded order. Has no length.
    ``rank`` of ``world_size`` takes every ``world_size``-th batch of the stream.
    """

    def __init__(
        self, group_ids: Sequence[int] | np.ndarray, batch_size: int, *,
        seed: int = 0, start_step: int = 0, grouped: bool = True, rank: int = 0, world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise LandSegError(f"rank {rank} is not in a world of {world_size} processes")
        self.rank, self.world_size = rank, world_size
        self.group_ids = np.asarray(group_ids)
        if len(self.group_ids) == 0:
            raise LandSegError("no training samples: the selected subsets and splits are empty")
        self.batch_size, self.seed, self.start_step, self.grouped = batch_size, seed, start_step, grouped
        self._grouped = GroupedBatchSampler(self.group_ids, batch_size, shuffle=True, seed=seed)
        self._cache: tuple[int, list[list[int]]] | None = None

    def _epoch(self, epoch: int) -> list[list[int]]:
        if self._cache is None or self._cache[0] != epoch:
            if self.grouped:
                self._grouped.set_epoch(epoch)
                batches = list(self._grouped)
            else:
                order = np.random.default_rng([self.seed, epoch]).permutation(len(self.group_ids))
                batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
            self._cache = (epoch, batches)
        return self._cache[1]

    def batches_per_epoch(self) -> int:
        return len(self._epoch(0))

    def batch(self, step: int) -> list[tuple[int, int]]:
        epoch, position = divmod(step, self.batches_per_epoch())
        indices = self._epoch(epoch)[position]
        return [(int(i), sample_seed(self.seed, step, j)) for j, i in enumerate(indices)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in count(self.start_step):
            yield self.batch(step * self.world_size + self.rank)
