"""Lightning data module over a LAS store: endless augmented training batches, grouped validation batches."""
from __future__ import annotations

from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from landsegmenter.data.las_dataset import LASDataset, collate_las
from landsegmenter.data.samplers import GroupedBatchSampler
from landsegmenter.errors import LandSegError
from landsegmenter.las.store import LASStore
from landsegmenter.train.augment import geometric
from landsegmenter.train.config import AugmentSection, DataSection
from landsegmenter.train.names import check_train_class_names
from landsegmenter.train.sampling import StepBatchSampler


class AugmentedDataset(Dataset):
    """Items of ``dataset``; a key ``(index, seed)`` applies the seeded geometric augmentation."""

    def __init__(self, dataset: Dataset, augment: AugmentSection) -> None:
        self.dataset, self.augment = dataset, augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, seed = key
        item = self.dataset[index]
        a = self.augment
        item["image"], item["label"] = geometric(
            item["image"], item["label"], np.random.default_rng(seed), a.crop_size, a.flip, a.rotate90
        )
        return item


class RankBatches:
    """Rank ``rank``'s share of ``batches`` (every ``world_size``-th one); the list is first padded by
    repeating its first batches so that every rank runs the same number of batches (as collective
    operations in the forward pass need)."""

    def __init__(self, batches: list[list[int]], rank: int, world_size: int) -> None:
        per_rank = -(-len(batches) // world_size)
        padded = [batches[i % len(batches)] for i in range(per_rank * world_size)] if batches else []
        self.batches = padded[rank::world_size]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)


class LASDataModule(L.LightningDataModule):
    """Training and validation data from a LAS store (``data.store``)."""

    def __init__(self, data: DataSection, augment: AugmentSection, seed: int, normalisation: str = "auto") -> None:
        super().__init__()
        self.cfg, self.augment, self.seed = data, augment, seed
        self.train_set = LASDataset(data.store, subsets=data.subsets, splits=data.train_splits,
                                    include_low_quality=data.include_low_quality, normalisation=normalisation)
        if len(self.train_set) == 0:
            raise LandSegError(f"{data.store} has no samples in split(s) {', '.join(data.train_splits)}")
        self.val_set = LASDataset(data.store, subsets=data.subsets or self.train_set.subsets,
                                  splits=data.val_splits, normalisation=normalisation) if data.val_splits else None
        self.legends = subset_legends(data.store, self.train_set.subsets)
        for subset, names in subset_class_names(data.store, self.train_set.subsets).items():
            check_train_class_names(names, where=f"subset {subset!r}")

    def has_validation(self) -> bool:
        return self.val_set is not None and len(self.val_set) > 0

    def train_dataloader(self) -> DataLoader:
        start = self.trainer.global_step if self.trainer is not None else 0
        rank, world = self._rank()
        sampler = StepBatchSampler(self.train_set.group_ids, self.cfg.batch_size, seed=self.seed,
                                   start_step=start, grouped=self.cfg.batching == "grouped",
                                   rank=rank, world_size=world)
        return self._loader(AugmentedDataset(self.train_set, self.augment), sampler)

    def val_dataloader(self) -> DataLoader:
        if not self.has_validation():
            return []
        sampler = GroupedBatchSampler(self.val_set.group_ids, self.cfg.batch_size, shuffle=False)
        rank, world = self._rank()
        return self._loader(self.val_set, sampler if world == 1 else RankBatches(list(sampler), rank, world))

    def _rank(self) -> tuple[int, int]:
        """(global rank, world size) of this process; (0, 1) without a trainer."""
        if self.trainer is None:
            return 0, 1
        return self.trainer.global_rank, self.trainer.world_size

    def _loader(self, dataset: Dataset, sampler: Any) -> DataLoader:
        workers = self.cfg.num_workers
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_las, num_workers=workers,
                          persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())


def subset_class_names(store: str, subsets: list[str]) -> dict[str, list[str]]:
    opened = LASStore.open(store)
    return {s: list(opened.subset(s).info["taxonomy"]["class_names"]) for s in subsets}


def subset_legends(store: str, subsets: list[str]) -> dict[str, str | None]:
    """Legend key of each subset's taxonomy (for synonym look-up)."""
    opened = LASStore.open(store)
    return {s: opened.subset(s).info["taxonomy"].get("key") for s in subsets}
