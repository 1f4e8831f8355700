"""Training patches from one scene with a sparse label raster (e.g. labelled points or polygons).

Each item is a window of ``patch_size`` pixels centred on a labelled pixel
(shifted inside the scene at its edges), normalised per band with the
statistics the mapper uses: the sensor's mean/std, or statistics sampled from
the scene when the bands have none. Every labelled pixel inside the window is a
target; the rest is 255. Items have the keys of :class:`LASDataset` items.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.data import DataLoader, Dataset

from landsegmenter.data.las_dataset import collate_las
from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene, open_raster
from landsegmenter.train.augment import geometric
from landsegmenter.train.config import AugmentSection
from landsegmenter.train.names import check_train_class_names
from landsegmenter.train.sampling import StepBatchSampler

UNLABELLED = 255


def scene_statistics(scene: Scene, mode: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Per-band (mean, std) as the mapper takes them (``auto``: the sensor's when every band has them,
    else sampled from the scene; ``reflectance``: the global reflectance statistics)."""
    return scene.statistics(mode)


def standardise(data: np.ndarray, valid: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """``(data - mean) / std`` per band as float32 ``[C, h, w]``, 0 where ``valid`` is False."""
    image = (data - mean[:, None, None]) / std[:, None, None]
    image[:, ~valid] = 0.0
    return torch.from_numpy(image.astype(np.float32))


def read_labels(path: str | Path, scene: Scene, n_classes: int) -> np.ndarray:
    """The label raster as uint8 [H, W]; LandSegError unless single-band, on the scene's grid, values < K or 255."""
    with open_raster(str(path)) as src:
        if src.count != 1:
            raise LandSegError(f"{path}: a label raster must have one band, it has {src.count}")
        if (src.width, src.height) != (scene.width, scene.height):
            raise LandSegError(
                f"{path} is {src.width} x {src.height} pixels but the scene is {scene.width} x {scene.height}; "
                "the labels must be on the scene's grid"
            )
        if scene.grid.crs is not None and src.crs is not None and not src.transform.almost_equals(scene.grid.transform):
            raise LandSegError(f"{path} is not aligned with the scene (different geotransform)")
        labels = src.read(1)
    values = np.unique(labels)
    bad = values[(values != UNLABELLED) & ((values < 0) | (values >= n_classes))]
    if bad.size:
        raise LandSegError(
            f"{path} has label value {int(bad[0])} but only {n_classes} class names were given "
            f"(values are class indices 0..{n_classes - 1}, {UNLABELLED} = unlabelled)"
        )
    return labels.astype(np.uint8)


class LabelledScene(Dataset):
    """Patches centred on the labelled pixels of a scene (see module doc); keys are ``(index, seed)``."""

    def __init__(
        self, paths: Sequence[str] | str, labels: str | Path, class_names: Sequence[str], *,
        sensor: str | None = None, bands: Sequence[str] | None = None, patch_size: int = 128,
        augment: AugmentSection | None = None, normalisation: str = "auto",
    ) -> None:
        self.class_names = check_train_class_names(list(class_names))
        if patch_size < 8:
            raise LandSegError(f"patch size must be at least 8 pixels, got {patch_size}")
        self.scene = Scene(paths, sensor=sensor, bands=bands)
        try:
            self.labels = read_labels(labels, self.scene, len(self.class_names))
            self.mean, self.std = scene_statistics(self.scene, normalisation)
        except Exception:
            self.scene.close()
            raise
        self.centres = np.argwhere(self.labels != UNLABELLED)
        if len(self.centres) == 0:
            self.scene.close()
            raise LandSegError(f"{labels} has no labelled pixels (every value is {UNLABELLED})")
        self.size = (min(patch_size, self.scene.height), min(patch_size, self.scene.width))
        self.augment = augment or AugmentSection()

    def __len__(self) -> int:
        return len(self.centres)

    def window(self, index: int) -> Window:
        (row, col), (h, w) = self.centres[index], self.size
        top = int(np.clip(row - h // 2, 0, self.scene.height - h))
        left = int(np.clip(col - w // 2, 0, self.scene.width - w))
        return Window(left, top, w, h)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        win = self.window(index)
        data, valid = self.scene.read(win)
        rows, cols = win.toslices()
        label = np.where(valid, self.labels[rows, cols], UNLABELLED).astype(np.int64)
        image_t, label_t = standardise(data, valid, self.mean, self.std), torch.from_numpy(label)
        if seed is not None:
            a = self.augment
            image_t, label_t = geometric(image_t, label_t, np.random.default_rng(seed), None, a.flip, a.rotate90)
        return {
            "image": image_t, "label": label_t,
            "wavelengths": torch.tensor(self.scene.wavelengths, dtype=torch.float32),
            "class_names": list(self.class_names), "subset": "scene",
            "sample_id": f"scene/{win.row_off}/{win.col_off}", "split": "train",
        }

    def close(self) -> None:
        self.scene.close()


class SceneDataModule(L.LightningDataModule):
    """Endless batches of patches around labelled pixels; no validation split."""

    def __init__(self, dataset: LabelledScene, batch_size: int, seed: int) -> None:
        super().__init__()
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.legends = {"scene": None}

    def has_validation(self) -> bool:
        return False

    def train_dataloader(self) -> DataLoader:
        start = self.trainer.global_step if self.trainer is not None else 0
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        sampler = StepBatchSampler(np.zeros(len(self.dataset), dtype=np.int64), self.batch_size,
                                   seed=self.seed, start_step=start, rank=rank, world_size=world)
        return DataLoader(self.dataset, batch_sampler=sampler, collate_fn=collate_las, num_workers=0)

    def val_dataloader(self) -> list:
        return []

    def close(self) -> None:
        self.dataset.close()
