"""Several scenes (e.g. STAC items) mapped onto one grid and composited into one map.

Every scene is mapped on its own grid, block by block (:mod:`landsegmenter.infer.distributed`,
all scenes' blocks in one pool of tasks), so each scene's map is the single-process map of
that scene. The maps are then reprojected (nearest neighbour) onto the target grid and
composited pixel by pixel:

1. scenes without a prediction at the pixel (nodata, outside the footprint) do not count;
2. a prediction of a cloud class (a class name containing "cloud") loses to any other;
3. otherwise the highest confidence wins;
4. ties go to the scene with the lower ``eo:cloud_cover``, then to the earlier scene.

The winner's class and confidence are written. Highest-confidence-wins needs only the
per-scene class and confidence maps (one byte each per pixel); a probability-weighted blend
across scenes would need every class probability of every scene kept until compositing.

Target grid: ``crs`` (default: the first scene's), ``resolution`` (default: the finest pixel
size among the scenes, in that CRS), extent: the union of the scenes' footprints, with pixel
edges on the first scene's grid when that scene is already on the target CRS and resolution
(scenes on a common grid, like Sentinel-2 tiles of one UTM zone, are then not resampled).
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError
from rasterio.transform import Affine, array_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import Window, from_bounds
from tqdm import tqdm

from landsegmenter.errors import LandSegError
from landsegmenter.geo.cog import BLOCK, atomic_write_bytes, write_strip
from landsegmenter.geo.raster import Grid
from landsegmenter.geo.stac import SourceScene, item_scene, read_item_collection
from landsegmenter.infer.blender import NODATA
from landsegmenter.infer.distributed import (
    BLOCK_TILES, BlockRunDir, DistributedResult, SceneRun, SceneSpec, check_options, dask_client, map_distributed,
    open_run, result_of, run_blocks, worker_count,
)
from landsegmenter.infer.mapper import MapResult, MappingJob, gdal_env, model_class_names
from landsegmenter.infer.rundir import fingerprint
from landsegmenter.model.protocol import Segmenter
from landsegmenter.model.zoo import load_segmenter, resolve_device

RULE = "no-cloud > confidence > eo:cloud_cover > order"


# --- STAC inputs -----------------------------------------------------------------------
def stac_sources(
    stac: Sequence[str] = (),
    *,
    api: str | None = None,
    collections: Sequence[str] = (),
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    max_items: int | None = None,
    sensor: str | None = None,
    bands: Sequence[str] | None = None,
) -> list[SourceScene]:
    """Scenes of local STAC files (ItemCollections, items, static catalogues) or of an API search.

    ``collections``/``bbox`` (lon/lat)/``datetime`` filter a catalogue and the API search; an
    ItemCollection (usually a saved search) is taken as it is.
    """
    from landsegmenter.las.manifest import StacQuery
    from landsegmenter.las.stac import search_items

    box = tuple(float(v) for v in bbox) if bbox else None
    if box is not None and len(box) != 4:
        raise LandSegError(f"--bbox needs 4 numbers (west,south,east,north in degrees), got {len(box)}")
    items = []
    for path in stac:
        found = read_item_collection(path)
        query = StacQuery(catalog=str(path), collections=tuple(collections), bbox=box, datetime=datetime)
        items += found if found is not None else search_items(query)
    if api:
        if not collections or box is None:
            raise LandSegError("--stac-api needs --collection and --bbox (west,south,east,north) to bound the search")
        items += search_items(StacQuery(api=api, collections=tuple(collections), bbox=box, datetime=datetime,
                                        max_items=max_items))
    items = items[:max_items] if max_items else items
    if not items:
        raise LandSegError("no STAC items to map: the files or the search matched none")
    return [item_scene(item, sensor, bands) for item in items]


# --- the target grid -------------------------------------------------------------------
def target_grid(grids: Sequence[Grid], crs: str | None = None, resolution: float | None = None) -> Grid:
    """One grid over the union of ``grids`` (see the module docstring for the defaults)."""
    if any(g.crs is None for g in grids):
        raise LandSegError("cannot mosaic scenes without a coordinate reference system")
    dst = _crs(crs) if crs else grids[0].crs
    if resolution is not None and resolution <= 0:
        raise LandSegError(f"--resolution must be positive, got {resolution}")
    res = float(resolution) if resolution else min(_native_resolution(g, dst) for g in grids)
    boxes = [transform_bounds(g.crs, dst, *array_bounds(g.height, g.width, g.transform), densify_pts=21) for g in grids]
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    first = grids[0]
    anchored = first.crs == dst and math.isclose(first.res[0], res) and math.isclose(first.res[1], res)
    ox, oy = (first.transform.c, first.transform.f) if anchored else (0.0, 0.0)
    x0, x1 = ox + _floor((west - ox) / res) * res, ox + _ceil((east - ox) / res) * res
    y0, y1 = oy + _floor((south - oy) / res) * res, oy + _ceil((north - oy) / res) * res
    return Grid(round((x1 - x0) / res), round((y1 - y0) / res), dst, Affine(res, 0.0, x0, 0.0, -res, y1))


def _crs(text: str) -> CRS:
    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise LandSegError(f"unknown CRS {text!r}: use e.g. EPSG:32633") from None


def _native_resolution(grid: Grid, dst: CRS) -> float:
    if grid.crs == dst:
        return min(grid.res)
    bounds = array_bounds(grid.height, grid.width, grid.transform)
    transform, _, _ = calculate_default_transform(grid.crs, dst, grid.width, grid.height, *bounds)
    return abs(transform.a)


def _floor(v: float) -> int:
    return math.floor(v + 1e-6)


def _ceil(v: float) -> int:
    return math.ceil(v - 1e-6)


# --- compositing -----------------------------------------------------------------------
@dataclass
class _ItemDir(BlockRunDir):
    """A scene's own directory inside the mosaic's partial directory (no nested partial folder)."""

    @property
    def partial(self) -> Path:
        return self.root


@dataclass(frozen=True)
class _ItemMap:
    """A scene's finished class and confidence rasters and the window they cover on the target grid."""

    classes: Path
    confidence: Path
    window: Window  # rows and columns of the target grid inside the scene's footprint


@dataclass
class _MosaicStack:
    """What the publishing code reads from a scene, for the mosaic grid."""

    paths: list[str]
    grid: Grid
    sensor: object
    band_names: list[str]
    wavelengths: list[float]

    @property
    def width(self) -> int:
        return self.grid.width

    @property
    def height(self) -> int:
        return self.grid.height


class _MosaicJob(MappingJob):
    """The mosaic's partial rasters, compositing strip by strip, and the published products."""

    def __init__(self, runs: list[SceneRun], sources: Sequence[SourceScene], grid: Grid, segmenter: Segmenter,
                 class_names: list[str], run: BlockRunDir, device, tile_size: int, overlap: int) -> None:
        first = runs[0].stack
        stack = _MosaicStack([p for r in runs for p in r.stack.paths], grid, first.sensor, first.band_names,
                             first.wavelengths)
        super().__init__(stack, segmenter, class_names, run, device, tile_size, overlap, None)
        self.runs, self.sources = runs, list(sources)
        self.order = sorted(range(len(runs)), key=lambda i: (sources[i].cloud_cover is None,
                                                              sources[i].cloud_cover or 0.0, i))
        self.fingerprint = fingerprint({"scenes": [r.fingerprint for r in runs], "grid": repr(grid), "rule": RULE})
        self.valid_pixels, self.workers, self.tiles_run = 0, 0, 0
        cloud = np.zeros(256, bool)
        cloud[: len(class_names)] = ["cloud" in name.lower() for name in class_names]
        self.cloud = cloud

    def start(self, resume: bool) -> None:
        """Check an interrupted mosaic is this one (else start again), before the scenes resume."""
        items = self.run_dir.partial / "items"
        marker = items / "fingerprint"
        if resume and marker.is_file() and marker.read_text() != self.fingerprint:
            raise LandSegError(
                f"the interrupted run in {self.run_dir.root} used other inputs or options; "
                "pass --overwrite to start again"
            )
        if not (resume and marker.is_file()):
            shutil.rmtree(items, ignore_errors=True)
        items.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(marker, self.fingerprint.encode())

    def map_scenes(self, client, model, resume: bool, progress: bool) -> int:
        """Every scene's missing blocks, in one pool of tasks; returns how many were computed."""
        self.start(resume)
        for scene_run in self.runs:
            scene_run.start(resume, outdir=self.run_dir.root)
        self.workers = worker_count(client)
        self.tiles_run = sum(r.tiles_run for r in self.runs)
        blocks_run = run_blocks(self.runs, client, model, progress)
        for scene_run in self.runs:
            scene_run.check_complete()
        return blocks_run

    def composite(self, progress: bool) -> None:
        self._create_partials()
        maps = [self._item_map(self.runs[i]) for i in self.order]
        grid = self.stack.grid
        for row in tqdm(range(0, grid.height, BLOCK), unit="strip", disable=not progress, desc="compositing"):
            h = min(BLOCK, grid.height - row)
            classes = np.full((h, grid.width), NODATA, np.uint8)
            confidence = np.full((h, grid.width), NODATA, np.uint8)
            best = np.full((h, grid.width), -1, np.int16)
            for item in maps:
                self._paste(item, row, classes, confidence, best)
            self.valid_pixels += int((classes != NODATA).sum())
            write_strip(self.partials["classes"], row, classes)
            write_strip(self.partials["confidence"], row, confidence)

    def _item_map(self, run: SceneRun) -> _ItemMap:
        g, dst = run.stack.grid, self.stack.grid
        bounds = transform_bounds(g.crs, dst.crs, *array_bounds(g.height, g.width, g.transform), densify_pts=21)
        exact = from_bounds(*bounds, transform=dst.transform)  # fractional rows/cols; keep every touched pixel
        col0, row0 = max(0, _floor(exact.col_off)), max(0, _floor(exact.row_off))
        col1 = min(dst.width, _ceil(exact.col_off + exact.width))
        row1 = min(dst.height, _ceil(exact.row_off + exact.height))
        window = Window(col0, row0, max(0, col1 - col0), max(0, row1 - row0))
        return _ItemMap(run.partials["classes"], run.partials["confidence"], window)

    def _paste(self, item: _ItemMap, row: int, classes: np.ndarray, confidence: np.ndarray, best: np.ndarray) -> None:
        """Let one scene's predictions win where they beat the ones so far (see the module docstring)."""
        y0, y1 = max(row, item.window.row_off), min(row + classes.shape[0], item.window.row_off + item.window.height)
        x0, x1 = item.window.col_off, item.window.col_off + item.window.width
        if y0 >= y1 or x0 >= x1:
            return
        window = Window(x0, y0, x1 - x0, y1 - y0)
        cls, conf = (self._warped(path, window) for path in (item.classes, item.confidence))
        key = np.where(cls != NODATA, conf.astype(np.int16) + np.where(self.cloud[cls], 0, 101), -1)
        here = (slice(y0 - row, y1 - row), slice(x0, x1))
        wins = key > best[here]
        best[here][wins] = key[wins]
        classes[here][wins] = cls[wins]
        confidence[here][wins] = conf[wins]

    def _warped(self, path: Path, window: Window) -> np.ndarray:
        grid = self.stack.grid
        with rasterio.open(path) as src, WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                                                   height=grid.height, resampling=Resampling.nearest,
                                                   nodata=NODATA) as vrt:
            return vrt.read(1, window=window)

    def _run_record(self, result: MapResult) -> dict:
        record = super()._run_record(result)
        record.update(
            tiles=sum(len(r.layout.tiles) for r in self.runs),
            tiles_computed=sum(len(b.tiles) for r in self.runs for b in r.blocks),
            redundancy=round(self.redundancy(), 4),
            blocks=sum(len(r.blocks) for r in self.runs),
            workers=self.workers,
            composite=RULE,
            scenes=[{"id": s.id, "paths": list(s.paths), "cloud_cover": s.cloud_cover, "datetime": s.datetime,
                     "priority": self.order.index(i)} for i, s in enumerate(self.sources)],
        )
        return record

    def _acquisition_times(self) -> list[datetime]:
        times = [_parse_datetime(s.datetime) for s in self.sources if s.datetime]
        return [t for t in times if t is not None]

    def redundancy(self) -> float:
        """Model pixels per scene pixel, over all scenes (the halos of blocks not counted)."""
        return sum(r.layout.redundancy() * r.stack.width * r.stack.height for r in self.runs) / sum(
            r.stack.width * r.stack.height for r in self.runs)


def _parse_datetime(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _check_same_bands(runs: list[SceneRun], sources: Sequence[SourceScene]) -> None:
    first = runs[0].stack.band_names
    for run, source in zip(runs[1:], sources[1:]):
        if [n.lower() for n in run.stack.band_names] != [n.lower() for n in first]:
            raise LandSegError(
                f"scene {source.id} has bands {','.join(run.stack.band_names)} but {sources[0].id} has "
                f"{','.join(first)}; choose common bands with --bands"
            )


# --- entry points ----------------------------------------------------------------------
def map_mosaic(
    sources: Sequence[SourceScene],
    classes: str | Sequence[str] | None = None,
    outdir: str | Path = "landseg-output",
    *,
    crs: str | None = None,
    resolution: float | None = None,
    classes_file: str | Path | None = None,
    model: str | Segmenter = "default",
    sensor: str | None = None,
    bands: Sequence[str] | None = None,
    wavelengths: Sequence[float] | None = None,
    tile_size: int = 512,
    overlap: int = 32,
    batch_size: int = 4,
    device: str = "cpu",
    normalise: str = "auto",
    confidence: bool = True,
    preview: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
    block_tiles: int = BLOCK_TILES,
) -> DistributedResult:
    """Map every scene of ``sources`` (blocks as Dask tasks) and composite them into one map in ``outdir``.

    Same products as :func:`~landsegmenter.infer.mapper.map_scene` (``classes.tif``,
    ``confidence.tif``, area tables, preview, ``run.json`` listing the scenes), on the target
    grid. ``resume`` reuses every finished block of every scene.
    """
    started = time.perf_counter()
    class_names = check_options(classes, classes_file, tile_size, overlap, batch_size, normalise, block_tiles)
    if not sources:
        raise LandSegError("no scenes to map")
    dev = resolve_device(device)
    segmenter = load_segmenter(model, dev)
    class_names = model_class_names(class_names, segmenter)
    run = BlockRunDir(Path(outdir))
    options = dict(tile_size=tile_size, overlap=overlap, batch_size=batch_size, normalise=normalise,
                   block_tiles=block_tiles)
    with gdal_env():
        runs = [open_run(SceneSpec.of(s.paths, sensor, bands, wavelengths), segmenter, class_names,
                         _ItemDir(run.partial / "items" / f"{i:05d}"), dev, **options) for i, s in enumerate(sources)]
        _check_same_bands(runs, sources)
        grid = target_grid([r.stack.grid for r in runs], crs, resolution)
        mosaic = _MosaicJob(runs, sources, grid, segmenter, class_names, run, dev, tile_size, overlap)
        with dask_client(workers, scheduler) as client:
            run.prepare(overwrite=overwrite, resume=resume)
            blocks_run = mosaic.map_scenes(client, segmenter if client is None else model, resume, progress)
        mosaic.composite(progress)
        if mosaic.valid_pixels == 0:
            run.abandon()
            raise LandSegError("the scenes have no valid pixels (all nodata): nothing to map")
        model_seconds = sum(r.model_seconds for r in runs)
        result = mosaic.publish(confidence, preview, time.perf_counter() - started, model_seconds, mosaic.tiles_run)
    result = replace(result, tiles=sum(len(r.layout.tiles) for r in runs), redundancy=mosaic.redundancy())
    return result_of(result, blocks=sum(len(r.blocks) for r in runs), blocks_run=blocks_run,
                     workers=mosaic.workers, items=[s.id for s in sources])


def map_sources(sources: Sequence[SourceScene], classes=None, outdir: str | Path = "landseg-output", *,
                crs: str | None = None, resolution: float | None = None, **options) -> DistributedResult:
    """One scene on its own grid (:func:`map_distributed`), or a mosaic of several (or of one on another grid)."""
    if len(sources) == 1 and crs is None and resolution is None:
        result = map_distributed(list(sources[0].paths), classes, outdir, **options)
        result.items = [sources[0].id]
        return result
    return map_mosaic(sources, classes, outdir, crs=crs, resolution=resolution, **options)
