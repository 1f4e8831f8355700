"""Batch samplers that keep each batch within one group (e.g. one LAS subset)."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from landsegmenter.errors import LandSegError


class GroupedBatchSampler(Sampler[list[int]]):
    """Batches of indices that share a group id, so their bands, patch size and classes agree.

    Each epoch shuffles the items inside every group, cuts them into batches and shuffles
    the batches across groups (seeded; call :meth:`set_epoch` for a new order each epoch).
    With ``drop_last`` the incomplete last batch of each group is left out.
    """

    def __init__(
        self,
        group_ids: Sequence[int] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise LandSegError(f"batch_size must be >= 1, got {batch_size}")
        self.group_ids = np.asarray(group_ids)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        batches: list[list[int]] = []
        for group in np.unique(self.group_ids):
            members = np.flatnonzero(self.group_ids == group)
            if self.shuffle:
                members = rng.permutation(members)
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                if len(chunk) == self.batch_size or not self.drop_last:
                    batches.append([int(i) for i in chunk])
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        counts = np.unique(self.group_ids, return_counts=True)[1]
        if self.drop_last:
            return int((counts // self.batch_size).sum())
        return int(np.ceil(counts / self.batch_size).sum())
