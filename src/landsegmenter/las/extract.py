"""One scene of a subset: open imagery and label product, pick patches, cut them out."""
from __future__ import annotations

from collections import Counter
from typing import Callable, Iterator

import numpy as np
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene
from landsegmenter.las.align import CloudMask, open_labels, time_gap_days
from landsegmenter.las.exclusion import check_not_excluded, footprint_of_point
from landsegmenter.las.grid import SampleGrid, sample_grid
from landsegmenter.las.imagery import BandTable, PatchReader
from landsegmenter.las.manifest import SceneSpec, SubsetSpec
from landsegmenter.las.sampling import Candidates, filter_candidates, order_candidates, scan_candidates, scene_rng
from landsegmenter.las.store import Sample
from landsegmenter.las.taxonomy import Taxonomy
from landsegmenter.taxonomy.legends import UNKNOWN

SLACK = 2  # candidates ordered per wanted sample, so that skipped patches can be replaced


class SceneExtractor:
    """Patches of one scene: ``samples()`` yields :class:`Sample` objects and fills the counters.

    ``rejected`` counts candidates dropped from the label scan alone (cloud, unlabelled,
    water); ``skipped`` counts patches dropped after reading the image (nodata, or too few
    labelled pixels left once nodata and clouds are masked); ``unknown_codes`` counts pixels
    of the label product whose code is not in the legend.
    """

    def __init__(self, scene: SceneSpec, subset: SubsetSpec, taxonomy: Taxonomy) -> None:
        if not scene.label:
            raise LandSegError(f"scene {scene.id!r} of subset '{subset.name}' has no label product")
        self.spec, self.subset, self.taxonomy = scene, subset, taxonomy
        self.skipped: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self._closers: list[Callable[[], None]] = []
        try:
            self._open()
        except Exception:
            self.close()
            raise

    def _open(self) -> None:
        imagery, label, sampling = self.subset.imagery, self.subset.label, self.subset.sampling
        self.image = Scene(
            list(self.spec.image), sensor=imagery.sensor, bands=imagery.bands, wavelengths=imagery.wavelengths
        )
        self._closers.append(self.image.close)
        self.grid: SampleGrid = sample_grid(self.image.grid, imagery.gsd, sampling.gsd)
        self._check_not_excluded()
        self.reader = PatchReader(self.image, self.grid, imagery)
        self.labels = open_labels(
            self.spec.label,
            self.taxonomy.legend,
            self.grid,
            resampling=label.resampling,
            unknown_codes=label.unknown_codes,
            field=label.field,
        )
        self._closers.append(self.labels.close)
        self.clouds = None
        if self.spec.cloud_mask:
            values = self.subset.cloud_mask.values if self.subset.cloud_mask else (1,)
            self.clouds = CloudMask(self.spec.cloud_mask, self.grid, values)
            self._closers.append(self.clouds.close)
        self.roi = self.grid.roi(self.spec.window)

    def _check_not_excluded(self) -> None:
        footprint = self.grid.lonlat_bounds
        if footprint is None and self.spec.location is not None:
            footprint = footprint_of_point(self.spec.location)
        files = [*self.spec.image, self.spec.label or "", self.spec.cloud_mask or ""]
        check_not_excluded(self.spec.id, footprint, files)

    @property
    def sensor(self) -> str | None:
        return self.image.sensor.name if self.image.sensor else None

    @property
    def unknown_codes(self) -> Counter[str]:
        return self.labels.unknown

    def bands(self) -> BandTable:
        return self.reader.bands()

    def record(self) -> dict:
        """What the store keeps about the scene: georeference, dates, files, split."""
        grid = self.grid
        located = grid.center_lonlat(Window(0, 0, grid.width, grid.height))
        return {
            "id": self.spec.id,
            "split": self.spec.split,
            "image": list(self.spec.image),
            "label": self.spec.label,
            "cloud_mask": self.spec.cloud_mask,
            "georeferenced": grid.georeferenced,
            "crs_wkt": grid.crs.to_wkt() if grid.crs else None,
            "transform": list(grid.transform)[:6] if grid.crs else None,
            "width": grid.width,
            "height": grid.height,
            "gsd_m": grid.gsd_m,
            "window": [int(self.roi.col_off), int(self.roi.row_off), int(self.roi.width), int(self.roi.height)],
            "date": _iso(self.spec.date),
            "label_date": _iso(self.spec.label_date),
            "time_gap_days": time_gap_days(self.spec.date, self.spec.label_date),
            "location": list(located or self.spec.location or []) or None,
            "location_approximate": located is None and self.spec.location is not None,
            "resampling": self.labels.raster.resampling.name if hasattr(self.labels, "raster") else "rasterize",
        }

    def candidates(self) -> Candidates:
        """Scan the label product once and drop the candidates that cannot qualify."""
        sampling = self.subset.sampling
        water = self.taxonomy.water_indices(sampling.water_classes)
        if sampling.land_only and not water:
            raise LandSegError(
                f"subset '{self.subset.name}': land_only needs water classes, and legend "
                f"'{self.taxonomy.legend.key}' has none named like water; list them in 'sampling: water_classes:'"
            )
        rng = scene_rng(sampling.seed, self.spec.id)
        cands = scan_candidates(
            self.labels.read,
            self.roi,
            sampling,
            len(self.taxonomy.legend),
            rng,
            None if self.clouds is None else self.clouds.read,
        )
        return filter_candidates(cands, sampling, water)

    def samples(self, done: set[tuple[int, int]] | None = None) -> Iterator[Sample | tuple[int, int]]:
        """Accepted samples in order; origins in ``done`` (stored earlier) are yielded as ``(row, col)`` unread."""
        sampling = self.subset.sampling
        cands = self.candidates()
        self.rejected = cands.rejected
        quota = sampling.samples_per_scene
        limit = None if quota is None else quota * SLACK + 8
        order = order_candidates(cands, sampling, limit, scene_rng(sampling.seed + 1, self.spec.id))
        accepted = 0
        for i in order:
            if quota is not None and accepted >= quota:
                break
            origin = (int(cands.rows[i]), int(cands.cols[i]))
            if done and origin in done:
                accepted += 1
                yield origin
                continue
            sample = self._cut(*origin)
            if sample is not None:
                accepted += 1
                yield sample

    def _cut(self, row: int, col: int) -> Sample | None:
        size = self.subset.sampling.patch_size
        window = Window(col, row, size, size)
        image, valid = self.reader.read(window)
        label = self.labels.read(window, count_unknown=False)
        label[~valid] = UNKNOWN
        if self.clouds is not None:
            label[self.clouds.read(window)] = UNKNOWN
        if valid.mean() < self.subset.sampling.min_valid_fraction:
            self.skipped["nodata"] += 1
            return None
        if (label != UNKNOWN).mean() < self.subset.sampling.min_labelled_fraction:
            self.skipped["unlabelled"] += 1
            return None
        k = len(self.taxonomy.legend)
        return Sample(
            scene_id=self.spec.id,
            row=row,
            col=col,
            split=self.spec.split,
            image=image,
            valid=valid,
            label=label,
            transform=tuple(self.grid.window_transform(window))[:6] if self.grid.georeferenced else None,
            center_lonlat=self.grid.center_lonlat(window) or self.spec.location,
            class_counts=np.bincount(label[label != UNKNOWN].ravel(), minlength=k)[:k],
        )

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __enter__(self) -> "SceneExtractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _iso(date) -> str | None:
    return date.isoformat() if date else None
