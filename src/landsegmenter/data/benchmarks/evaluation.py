"""The official evaluation protocol of a benchmark, as data the evaluator can apply."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from landsegmenter.data.benchmarks.decoding import IGNORE_INDEX


@dataclass(frozen=True)
class Evaluation:
    """Which classes are scored and how.

    ``scored_classes[j]`` is scored from the dataset classes ``groups[j]`` (dataset
    class indices merged into one scored class; most protocols score each class
    on its own). Dataset classes in no group, and ``ignore_index`` pixels, are not
    scored. ``mean_over`` are the scored classes averaged into the headline mean
    (e.g. FLAIR-1 leaves "other" out). ``boundary_erosion_px`` > 0 means the
    references ignore pixels within that distance of a class boundary.
    """

    protocol: str
    scored_classes: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    mean_over: tuple[int, ...]
    metrics: tuple[str, ...] = ("mIoU",)
    ignored: str = ""
    ignore_index: int = IGNORE_INDEX
    boundary_erosion_px: int = 0

    def __post_init__(self) -> None:
        if len(self.groups) != len(self.scored_classes):
            raise ValueError("one group of dataset classes per scored class")
        members = [i for group in self.groups for i in group]
        if len(members) != len(set(members)):
            raise ValueError("a dataset class belongs to two scored classes")
        if not set(self.mean_over) <= set(range(len(self.scored_classes))):
            raise ValueError("mean_over names a class that is not scored")

    @classmethod
    def per_class(
        cls, protocol: str, class_names: Sequence[str], mean_over: Sequence[int] | None = None, **fields
    ) -> "Evaluation":
        """Every dataset class scored on its own; mean over ``mean_over`` (all when ``None``)."""
        indices = range(len(class_names))
        return cls(
            protocol=protocol,
            scored_classes=tuple(class_names),
            groups=tuple((i,) for i in indices),
            mean_over=tuple(indices if mean_over is None else mean_over),
            **fields,
        )

    def lookup_table(self) -> np.ndarray:
        """``uint8 [256]``: dataset class index -> scored class index; unscored -> ``ignore_index``."""
        table = np.full(256, self.ignore_index, dtype=np.uint8)
        for scored, group in enumerate(self.groups):
            table[list(group)] = scored
        return table

    def to_scored(self, label: np.ndarray) -> np.ndarray:
        """Dataset labels ``[...]`` (255 = ignore) -> scored-class labels ``uint8 [...]``."""
        return self.lookup_table()[np.asarray(label, dtype=np.int64).clip(0, 255)]
