"""Whole-scene mapping: tiles in, blended georeferenced class map out, in bounded memory."""
from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from tqdm import tqdm

import landsegmenter
from landsegmenter.errors import LandSegError, describe_os_error
from landsegmenter.geo.cog import create_partial, publish_cog
from landsegmenter.geo.raster import Scene
from landsegmenter.geo.reflectance import NORMALISATIONS, is_reflective
from landsegmenter.geo.style import write_qml
from landsegmenter.infer.blender import NODATA, Blender
from landsegmenter.infer.reports import class_areas, write_area_tables, write_preview
from landsegmenter.infer.rundir import PRODUCTS, RunDir, fingerprint
from landsegmenter.infer.stac_item import RunProducts, write_item
from landsegmenter.infer.strips import StripWriter
from landsegmenter.infer.tiling import Tile, TileLayout, check_tiling
from landsegmenter.model.landsegmenter import fusion_set
from landsegmenter.model.spectral_rule import uses_band
from landsegmenter.model.protocol import Segmenter
from landsegmenter.model.zoo import load_segmenter, resolve_device
from landsegmenter.taxonomy.classes import parse_class_names
from landsegmenter.taxonomy.colors import palette


GDAL_CACHE_MB = 256


@dataclass
class MapResult:
    outdir: Path
    classes: Path
    confidence: Path | None
    areas: list[dict]
    tiles: int  # tiles in the layout
    tiles_run: int  # tiles this call sent to the model (fewer after --resume)
    redundancy: float  # model pixels per scene pixel
    seconds: float
    model_seconds: float


@dataclass
class TileBatch:
    tiles: list[Tile]
    data: np.ndarray  # [B, C, T, T] float32
    valid: np.ndarray  # [B, T, T] bool


def map_scene(
    scene: str | Sequence[str],
    classes: str | Sequence[str] | None = None,
    outdir: str | Path = "landseg-output",
    *,
    classes_file: str | Path | None = None,
    model: str | Segmenter = "default",
    sensor: str | None = None,
    bands: Sequence[str] | None = None,
    wavelengths: Sequence[float] | None = None,
    resolution: float | None = None,
    tile_size: int = 512,
    overlap: int = 32,
    batch_size: int = 4,
    device: str = "cpu",
    normalise: str = "auto",
    fusion: str | None = None,
    confidence: bool = True,
    preview: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> MapResult:
    """Map a scene (one raster, or one file per band) to a land-cover COG and reports in ``outdir``.

    Outputs: ``classes.tif`` (uint8 COG, colormap, class names in metadata, nodata 255),
    ``confidence.tif`` (blended top-class probability in percent), ``areas.csv``/``areas.json``,
    ``preview.png`` and ``run.json``. ``resume=True`` continues an interrupted run.
    ``resolution`` maps the scene resampled (bilinear) to that pixel size, e.g. the
    GSD a model was adapted at. ``fusion`` (off, similarity, knowledge, on) sets a
    LandSegmenter's confidence-guided fusion for this run (default: as the model is).
    """
    started = time.perf_counter()
    class_names = check_map_options(classes, classes_file, tile_size, overlap, batch_size, normalise)
    run = RunDir(Path(outdir))
    dev = resolve_device(device)
    with gdal_env(), Scene(scene, sensor=sensor, bands=bands, wavelengths=wavelengths, resolution=resolution) as stack:
        segmenter = load_segmenter(model, dev)
        if fusion is not None and not hasattr(segmenter, "fusion"):
            raise LandSegError(f"model {model if isinstance(model, str) else type(model).__name__} has no fusion to switch")
        with fusion_set(segmenter, fusion):
            class_names = model_class_names(class_names, segmenter)
            check_memory(stack, class_names, tile_size, batch_size)
            stats = checked_model_inputs(stack, segmenter, class_names, normalise)
            run.prepare(overwrite=overwrite, resume=resume)
            job = MappingJob(stack, segmenter, class_names, run, dev, tile_size, overlap, stats)
            model_seconds, tiles_run = job.run(batch_size, resume, progress)
            result = job.publish(confidence, preview, time.perf_counter() - started, model_seconds, tiles_run)
    return result


def check_map_options(classes, classes_file, tile_size: int, overlap: int, batch_size: int,
                      normalise: str) -> list[str]:
    """The class names (empty: the model's own), once the mapping options are known to be usable."""
    given = classes is not None or classes_file is not None
    class_names = parse_class_names(classes, classes_file) if given else []
    check_tiling(tile_size, overlap)
    if batch_size < 1:
        raise LandSegError(f"batch size must be at least 1, got {batch_size}")
    if normalise not in NORMALISATIONS:
        raise LandSegError(f"unknown normalisation {normalise!r}: use {', '.join(NORMALISATIONS)}")
    return class_names


def model_class_names(class_names: list[str], segmenter: Segmenter) -> list[str]:
    """The given class names, or those of a model with a fixed class list (e.g. an adapted U-Net)."""
    if class_names:
        return class_names
    if getattr(segmenter, "class_names", None):
        return list(segmenter.class_names)
    return parse_class_names(None)  # raises: this model needs class names


def checked_model_inputs(stack: Scene, segmenter: Segmenter, class_names: list[str], normalise: str):
    """Let the model refuse these bands or classes, then fix the per-band normalisation."""
    validate = getattr(segmenter, "validate", None)
    if validate is not None:
        validate(stack.wavelengths, class_names)
    stats = normalisation_stats(stack, segmenter, normalise)
    check_knowledge_inputs(stack, segmenter, normalise)
    return stats


def check_knowledge_inputs(stack: Scene, segmenter: Segmenter, normalise: str) -> None:
    """The spectral-knowledge expert reads reflectance back from its input: switch it off, and say so,
    when this run does not give it globally normalised reflectance."""
    if not getattr(segmenter, "knowledge", False):
        return
    mode = getattr(segmenter, "normalisation", "auto") if normalise == "auto" else normalise
    used = [b for b in stack.bands if uses_band(b.wavelength)]
    units = sorted({b.units or "unknown units" for b in used if not is_reflective(b.units, b.wavelength)})
    if mode == "reflectance" and not units:
        return
    why = f"bands in {', '.join(units)}" if units else f"--normalise {normalise}"
    print(f"landseg: note: the spectral-knowledge expert needs reflectance inputs ({why}); it is off for this run",
          file=sys.stderr)
    segmenter.knowledge = False


BATCHES_IN_FLIGHT = 4  # read ahead (up to 3, see MappingJob._prefetched) plus the one in the model


def mapping_memory(bands: int, classes: int, tile: int, batch: int, width: int, height: int) -> int:
    """Bytes the tile loop needs at least: input batches, the model's per-class scores, the blender's open cells.

    The model's own activations come on top, so this is a lower bound.
    """
    pixels = tile * tile
    inputs = BATCHES_IN_FLIGHT * batch * pixels * (bands * 4 + 1)  # float32 bands and the valid mask
    scores = 2 * batch * classes * pixels * 4  # logits and probabilities, float32
    blender = width * min(tile, height) * (classes + 1) * 4  # a tile row of open cells: sums and weights
    return inputs + scores + blender


def available_memory() -> int | None:
    """Bytes of memory available to this process (Linux ``MemAvailable``; else free pages), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(stack, class_names: Sequence[str], tile_size: int, batch_size: int) -> None:
    """Refuse a tile size and batch whose buffers alone would not fit in the available memory."""
    need = mapping_memory(len(stack.bands), len(class_names), tile_size, batch_size, stack.width, stack.height)
    have = available_memory()
    if have is not None and need > have:
        raise LandSegError(
            f"tile size {tile_size} with batch size {batch_size} needs at least {_bytes(need)} of memory "
            f"({len(stack.bands)} bands, {len(class_names)} classes), more than the {_bytes(have)} available: "
            "use a smaller --tile-size or --batch-size"
        )


def _bytes(n: float) -> str:
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    step = 0
    while n >= 1000 and step < len(units) - 1:
        n, step = n / 1000, step + 1
    return f"{n:.1f} {units[step]}"


def gdal_env() -> rasterio.Env:
    """GDAL's block cache defaults to 5 % of RAM; a bounded cache keeps mapping memory small."""
    if "GDAL_CACHEMAX" in os.environ:
        return rasterio.Env()
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


def normalisation_stats(stack: Scene, segmenter: Segmenter, mode: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-band (mean, std) for ``(x - mean) / std``; None for models that take physical values.

    ``auto``: the model's recorded ``normalisation`` (e.g. ``reflectance``: one global reflectance
    normalisation) if it has one, else the sensor's statistics when every band has them, else
    statistics sampled from the scene (see :meth:`Scene.statistics`).
    """
    if not getattr(segmenter, "normalise", True):
        return None
    if mode == "auto":
        mode = getattr(segmenter, "normalisation", "auto")
    return stack.statistics(mode)


class MappingJob:
    def __init__(self, stack, segmenter, class_names, run: RunDir, device, tile_size, overlap, stats) -> None:
        self.stack, self.segmenter, self.class_names, self.run_dir = stack, segmenter, class_names, run
        self.device, self.stats = device, stats
        self.layout = TileLayout(stack.height, stack.width, tile_size, overlap)
        self.colors = palette(class_names)
        self.partials = {"classes": run.partial / "classes.tif", "confidence": run.partial / "confidence.tif"}
        self.fingerprint = fingerprint(
            {
                "inputs": [(str(Path(p).resolve()), _stat(p)) for p in stack.paths],
                "bands": stack.band_names,
                "wavelengths": stack.wavelengths,
                "grid": [stack.width, stack.height, list(stack.grid.transform)[:6]],
                "classes": class_names,
                "model": getattr(segmenter, "fingerprint", type(segmenter).__name__),
                "tile": tile_size,
                "overlap": overlap,
                "stats": None if stats is None else [s.tolist() for s in stats],
            }
        )

    # --- the tile loop ---------------------------------------------------------------
    def run(self, batch_size: int, resume: bool, progress: bool) -> tuple[float, int]:
        blender = Blender(self.layout, len(self.class_names))
        writer = StripWriter(self.stack.width, self.stack.height, self.partials)
        state = self.run_dir.load_state(self.fingerprint) if resume else None
        if state is None:
            self._create_partials()
            start, self.valid_pixels = 0, 0
        else:
            start, self.valid_pixels = int(state["next_tile"]), int(state["valid_pixels"])
            blender.restore(state)
            writer.restore(state)
        todo = self.layout.tiles[start:]
        model_seconds = 0.0
        last_col = len(self.layout.xs) - 1
        bar = tqdm(total=len(self.layout.tiles), initial=start, unit="tile", disable=not progress, desc="mapping")
        with bar:
            for batch in self._prefetched(todo, batch_size):
                t0 = time.perf_counter()
                probs = self._predict(batch)
                model_seconds += time.perf_counter() - t0
                for i, tile in enumerate(batch.tiles):
                    self.valid_pixels += int(batch.valid[i].sum())
                    for finished in blender.add(tile, probs.get(i), batch.valid[i]):
                        writer.add(finished)
                    if tile.col == last_col:
                        self._checkpoint(tile.index + 1, blender, writer)
                bar.update(len(batch.tiles))
        if not writer.done:
            raise RuntimeError("internal error: not every row of the map was written")
        if self.valid_pixels == 0:
            self.run_dir.abandon()
            raise LandSegError("the scene has no valid pixels (all nodata): nothing to map")
        return model_seconds, len(todo)

    def _create_partials(self) -> None:
        self.run_dir.start_fresh()
        grid = self.stack.grid
        tags = {
            "LANDSEG_CLASS_NAMES": _json(self.class_names),
            "LANDSEG_MODEL": str(getattr(self.segmenter, "fingerprint", type(self.segmenter).__name__)),
            "LANDSEG_VERSION": landsegmenter.__version__,
        }
        colormap = {i: (*c, 255) for i, c in enumerate(self.colors)}
        colormap[NODATA] = (0, 0, 0, 0)
        create_partial(self.partials["classes"], grid, nodata=NODATA, tags=tags, colormap=colormap,
                       description="land cover class")
        create_partial(self.partials["confidence"], grid, nodata=NODATA, tags={**tags, "UNITS": "percent"},
                       description="confidence of the mapped class (%)")

    def _checkpoint(self, next_tile: int, blender: Blender, writer: StripWriter) -> None:
        arrays = {**blender.state(), **writer.state()}
        arrays["next_tile"] = np.array(next_tile)
        arrays["valid_pixels"] = np.array(self.valid_pixels)
        self.run_dir.save_state(self.fingerprint, arrays)

    def _prefetched(self, tiles: list[Tile], batch_size: int) -> Iterator[TileBatch]:
        """Batches read in a background thread, two ahead, so reading overlaps the model."""
        chunks = iter([tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)])
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="landseg-read") as pool:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.submit(self._read_batch, chunk))
                if len(pending) > 2:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _read_batch(self, tiles: list[Tile]) -> TileBatch:
        size = self.layout.tile
        data = np.zeros((len(tiles), len(self.stack.bands), size, size), np.float32)
        valid = np.zeros((len(tiles), size, size), bool)
        for i, tile in enumerate(tiles):
            h = min(size, self.stack.height - tile.y)
            w = min(size, self.stack.width - tile.x)
            values, mask = self.stack.read(Window(tile.x, tile.y, w, h))
            if self.stats is not None:
                mean, std = self.stats
                values = (values - mean[:, None, None]) / std[:, None, None]
                values[:, ~mask] = 0.0
            data[i, :, :h, :w] = values
            valid[i, :h, :w] = mask
        return TileBatch(tiles, data, valid)

    @torch.inference_mode()
    def _predict(self, batch: TileBatch) -> dict[int, np.ndarray]:
        """Softmax probabilities ``[K, T, T]`` for each tile with any valid pixel."""
        keep = [i for i in range(len(batch.tiles)) if batch.valid[i].any()]
        if not keep:
            return {}
        image = torch.from_numpy(batch.data[keep]).to(self.device)
        wavelengths = torch.tensor(self.stack.wavelengths, dtype=torch.float32, device=self.device)
        logits = self.segmenter(image, wavelengths, self.class_names)
        expected = (len(keep), len(self.class_names), *image.shape[-2:])
        if tuple(logits.shape) != expected:
            raise LandSegError(f"the model returned scores of shape {tuple(logits.shape)}, expected {expected}")
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        return {i: probs[j] for j, i in enumerate(keep)}

    # --- products --------------------------------------------------------------------
    def publish(self, confidence: bool, preview: bool, seconds: float, model_seconds: float, tiles_run: int):
        """Write and check every product in the staging directory, then swap them all into place."""
        run = self.run_dir
        had_results = (run.root / "run.json").exists() or run.product("classes.tif").exists()
        try:
            run.begin_publish()
            result = self._stage_products(confidence, preview, seconds, model_seconds, tiles_run)
            run.publish_staged()
        except OSError as exc:
            run.discard_staged()
            kept = "the previous results are unchanged" if had_results else "nothing was published"
            raise LandSegError(
                f"cannot write the results to {run.root}: {describe_os_error(exc)}; {kept} "
                "(the mapped tiles are kept: fix the cause and run again with --resume)"
            ) from None
        run.finish()
        return result

    def _stage_products(self, confidence: bool, preview: bool, seconds: float, model_seconds: float,
                        tiles_run: int) -> MapResult:
        run, names = self.run_dir, self.class_names
        publish_cog(self.partials["classes"], run.staged("classes.tif"))
        if confidence:
            publish_cog(self.partials["confidence"], run.staged("confidence.tif"), overview_resampling="average")
        areas = class_areas(self.partials["classes"], self.stack.grid, names)
        write_area_tables(areas, run.staged("areas.csv"), run.staged("areas.json"))
        if preview:
            title = f"{Path(self.stack.paths[0]).name}: {len(names)} classes"
            write_preview(self.partials["classes"], run.staged("preview.png"), names, self.colors, title,
                          input_bands=getattr(self.stack, "bands", None))
        write_qml(run.staged("classes.qml"), names, self.colors)
        result = MapResult(
            outdir=run.root,
            classes=run.product("classes.tif"),
            confidence=run.product("confidence.tif") if confidence else None,
            areas=areas,
            tiles=len(self.layout.tiles),
            tiles_run=tiles_run,
            redundancy=self.layout.redundancy(),
            seconds=seconds,
            model_seconds=model_seconds,
        )
        write_item(self._run_products(areas, confidence, preview), run.staged("item.json"))
        run.stage_json("run.json", self._run_record(result))
        return result

    def _run_products(self, areas: list[dict], confidence: bool, preview: bool) -> RunProducts:
        """What ``item.json`` describes."""
        skipped = {"confidence.tif": not confidence, "preview.png": not preview, "item.json": True}
        return RunProducts(
            item_id=self.run_dir.root.resolve().name, grid=self.stack.grid, class_names=self.class_names,
            colors=self.colors, areas=areas, model=_model_name(self.segmenter),
            model_sha256=getattr(self.segmenter, "weights_sha256", None), inputs=list(self.stack.paths),
            files=[name for name in PRODUCTS if not skipped.get(name)], acquired=self._acquisition_times(),
        )

    def _acquisition_times(self) -> list[datetime]:
        return []  # a plain raster does not say; STAC mosaics do

    def _run_record(self, result: MapResult) -> dict:
        return {
            "landsegmenter": landsegmenter.__version__,
            "inputs": self.stack.paths,
            "sensor": self.stack.sensor.name if self.stack.sensor else None,
            "bands": self.stack.band_names,
            "wavelengths_um": self.stack.wavelengths,
            "classes": [{"index": i, "name": n, "color": "#%02X%02X%02X" % c}
                        for i, (n, c) in enumerate(zip(self.class_names, self.colors))],
            "model": _model_name(self.segmenter),
            "fusion": {expert: bool(getattr(self.segmenter, switch)) for expert, switch in
                       (("similarity", "fusion"), ("knowledge", "knowledge")) if hasattr(self.segmenter, switch)},
            "tile_size": self.layout.tile,
            "overlap": self.layout.overlap,
            "tiles": result.tiles,
            "redundancy": round(result.redundancy, 4),
            "seconds": round(result.seconds, 3),
            "model_seconds": round(result.model_seconds, 3),
            "width": self.stack.width,
            "height": self.stack.height,
            "crs": self.stack.grid.crs.to_string() if self.stack.grid.crs else None,
        }


def _model_name(segmenter: Segmenter) -> str:
    return str(getattr(segmenter, "fingerprint", type(segmenter).__name__))


def _stat(path: str) -> tuple[int, int] | None:
    p = Path(path)
    return (p.stat().st_size, p.stat().st_mtime_ns) if p.exists() else None


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)
