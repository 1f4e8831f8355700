"""Build (or resume) a LAS store from a manifest, scene by scene, in bounded memory."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from landsegmenter.errors import LandSegError
from landsegmenter.las.extract import SceneExtractor
from landsegmenter.las.manifest import Manifest, SceneSpec, SubsetSpec, load_manifest
from landsegmenter.las.sources import resolve_scenes
from landsegmenter.las.store import LASStore, Sample, SubsetStore
from landsegmenter.las.taxonomy import Taxonomy, resolve_taxonomy

BATCH = 16  # samples written (and committed) together


@dataclass
class SubsetReport:
    name: str
    status: str = "built"  # "built" or "already complete"
    scenes: int = 0
    scenes_resumed: int = 0  # scenes found finished in the store
    written: int = 0
    kept: int = 0  # samples found in the store from an earlier, interrupted run
    rejected: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    unknown_codes: Counter = field(default_factory=Counter)

    def line(self) -> str:
        text = f"{self.name}: {self.status}, {self.written} samples written"
        if self.kept or self.scenes_resumed:
            text += f" ({self.kept} kept, {self.scenes_resumed} scenes already done)"
        for title, counts in (
            ("rejected", self.rejected),
            ("skipped", self.skipped),
            ("label codes not in the legend (pixels)", self.unknown_codes),
        ):
            if counts:
                text += f"; {title}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        return text


@dataclass
class BuildReport:
    store: Path
    subsets: list[SubsetReport]
    seconds: float

    @property
    def written(self) -> int:
        return sum(s.written for s in self.subsets)

    def lines(self) -> list[str]:
        return [s.line() for s in self.subsets] + [f"{self.written} samples in {self.seconds:.1f} s -> {self.store}"]


def build_las(
    manifest: Manifest | str | Path,
    out: str | Path,
    *,
    subsets: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> BuildReport:
    """Build the store ``out`` from ``manifest``; finished subsets and samples already in ``out`` are kept."""
    start = time.perf_counter()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    chosen = [manifest.subset(name) for name in subsets] if subsets else list(manifest.subsets)
    store = LASStore.create_or_open(out, manifest.name, manifest.description, overwrite=overwrite)
    reports = [_build_subset(store, spec, progress) for spec in chosen]
    return BuildReport(Path(out), reports, time.perf_counter() - start)


def _build_subset(store: LASStore, spec: SubsetSpec, progress: bool) -> SubsetReport:
    taxonomy = resolve_taxonomy(spec.label)
    scenes = resolve_scenes(spec)
    report = SubsetReport(spec.name, scenes=len(scenes))
    existing = _existing(store, spec)
    if existing is not None and existing.attrs["complete"]:
        report.status = "already complete"
        return report
    done = set(existing.attrs["done_scenes"]) if existing is not None else set()
    quota = spec.sampling.samples_per_scene
    total = quota * len(scenes) if quota else None
    with tqdm(total=total, desc=spec.name, unit="patch", disable=not progress, leave=False) as bar:
        for scene in scenes:
            if scene.id in done:
                report.scenes_resumed += 1
                bar.update(quota or 0)
                continue
            existing = _build_scene(store, existing, scene, spec, taxonomy, report, bar.update)
    if existing is None:
        raise LandSegError(f"subset '{spec.name}' has no scenes")
    existing.mark_complete()
    return report


def _existing(store: LASStore, spec: SubsetSpec) -> SubsetStore | None:
    if spec.name not in store.subsets:
        return None
    subset = store.subset(spec.name)
    if subset.info.get("digest") != spec.digest():
        raise LandSegError(
            f"subset '{spec.name}' in {store.path} was built from a different definition; "
            "rebuild with --overwrite or write to a new directory"
        )
    subset.truncate_to_committed()
    return subset


def _build_scene(
    store: LASStore,
    subset: SubsetStore | None,
    scene: SceneSpec,
    spec: SubsetSpec,
    taxonomy: Taxonomy,
    report: SubsetReport,
    advance: Callable[[int], object],
) -> SubsetStore:
    with SceneExtractor(scene, spec, taxonomy) as extractor:
        bands = extractor.bands()
        if subset is None:
            subset = store.create_subset(
                spec.name,
                _subset_info(spec, taxonomy, extractor, bands),
                (len(bands.names), spec.sampling.patch_size, spec.sampling.patch_size),
                bands.dtype,
                len(taxonomy.legend),
            )
        _check_same_bands(subset, scene, bands.names, bands.dtype)
        scene_index = subset.scene_index(extractor.record())
        done = _stored_origins(subset, scene_index)
        batch: list[Sample] = []
        for item in extractor.samples(done):
            advance(1)
            if isinstance(item, tuple):
                report.kept += 1
                continue
            batch.append(item)
            if len(batch) == BATCH:
                subset.append(batch)
                report.written += len(batch)
                batch = []
        if batch:
            subset.append(batch)
            report.written += len(batch)
        stats = {
            "rejected": dict(extractor.rejected),
            "skipped": dict(extractor.skipped),
            "unknown_codes": dict(extractor.unknown_codes),
        }
        subset.finish_scene(scene.id, stats)
        report.rejected.update(extractor.rejected)
        report.skipped.update(extractor.skipped)
        report.unknown_codes.update(extractor.unknown_codes)
    return subset


def _subset_info(spec: SubsetSpec, taxonomy: Taxonomy, extractor: SceneExtractor, bands) -> dict:
    legend = taxonomy.legend
    return {
        "description": spec.description,
        "digest": spec.digest(),
        "sensor": extractor.sensor,
        "simulated_from": spec.imagery.simulated_from,
        "bands": bands.as_dict(),
        "patch_size": spec.sampling.patch_size,
        "gsd_m": extractor.grid.gsd_m,
        "taxonomy": {
            "key": taxonomy.key,
            "legend": legend.key,
            "title": legend.title,
            "class_names": list(legend.names),
            "colors": ["#%02X%02X%02X" % c for c in legend.colors],
        },
        "label_source": {"kind": spec.label.kind, "product": spec.label.product, "quality": spec.label.quality},
        "sampling": {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.sampling.__dict__.items()},
    }


def _check_same_bands(subset: SubsetStore, scene: SceneSpec, names: list[str], dtype: str) -> None:
    expected = subset.info["bands"]
    if names != expected["names"] or dtype != expected["dtype"]:
        raise LandSegError(
            f"scene {scene.id!r} has bands {', '.join(names)} ({dtype}) but subset '{subset.name}' has "
            f"{', '.join(expected['names'])} ({expected['dtype']}); put scenes of other band sets in their own subset"
        )


def _stored_origins(subset: SubsetStore, scene_index: int) -> set[tuple[int, int]]:
    n = subset.count
    if n == 0:
        return set()
    scenes, rows, cols = (subset.array(k)[:n] for k in ("scene", "row", "col"))
    mine = scenes == scene_index
    return {(int(r), int(c)) for r, c in zip(rows[mine], cols[mine])}
