"""Mapping on Dask distributed: blocks of the output grid are tasks, and the map is byte-identical to ``map_scene``.

A *block* is a rectangle of whole cells of the scene's :class:`TileLayout`, cut at the start
of every ``block_tiles``-th tile row and tile column. A block's task predicts exactly the
tiles that cover the block (its own tiles plus a halo of one tile row and column of its
upper and left neighbours), in raster order, and blends them with the single-process
:class:`Blender`. Every cell is summed over the same tiles in the same order as in
:func:`~landsegmenter.infer.mapper.map_scene`, so the class and confidence maps are the
same bytes.

Tasks are pure: inputs in, two uint8 arrays out, nothing written on a worker. Dask can
therefore run a task again anywhere, which is what it does with the tasks of a worker that
dies. The client keeps each finished block in the partial directory (``blocks/``), writes
the map's strips as they complete and publishes the COGs like ``map_scene``; ``resume``
submits only the blocks missing from ``blocks/``.
"""
from __future__ import annotations

import io
import os
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from landsegmenter.errors import LandSegError
from landsegmenter.geo.cog import atomic_write_bytes
from landsegmenter.geo.raster import Scene
from landsegmenter.infer.blender import NODATA, Blender, FinishedCell
from landsegmenter.infer.mapper import (
    MapResult, MappingJob, check_map_options, check_memory, checked_model_inputs, gdal_env, model_class_names,
)
from landsegmenter.infer.rundir import RunDir, fingerprint
from landsegmenter.infer.strips import StripWriter
from landsegmenter.infer.tiling import Cell, TileLayout
from landsegmenter.model.protocol import Segmenter
from landsegmenter.model.zoo import load_segmenter, resolve_device

BLOCK_TILES = 8  # tile rows and columns per block: ~3800 px square at 512-px tiles
RETRIES = 2  # reruns of a task that raised (e.g. a transient read error of a remote asset)
STORE = "blocks"  # finished blocks, in the partial directory
KEPT = (STORE, "items")  # what a fresh start of the partial files leaves in place


# --- blocks ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """A rectangle of whole cells and the tiles (indices, raster order) that cover it."""

    index: int
    y0: int
    y1: int
    x0: int
    x1: int
    tiles: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def plan_blocks(layout: TileLayout, block_tiles: int = BLOCK_TILES) -> list[Block]:
    """Blocks of ``block_tiles`` x ``block_tiles`` tiles in raster order, cut at tile starts."""
    if block_tiles < 1:
        raise LandSegError(f"blocks must span at least 1 tile, got {block_tiles}")
    y_edges = [0, *layout.ys[block_tiles::block_tiles], layout.height]
    x_edges = [0, *layout.xs[block_tiles::block_tiles], layout.width]
    blocks = []
    for y0, y1 in zip(y_edges[:-1], y_edges[1:]):
        rows = _covering(layout.ys, layout.tile, y0, y1)
        for x0, x1 in zip(x_edges[:-1], x_edges[1:]):
            cols = _covering(layout.xs, layout.tile, x0, x1)
            tiles = tuple(r * len(layout.xs) + c for r in rows for c in cols)
            blocks.append(Block(len(blocks), y0, y1, x0, x1, tiles))
    return blocks


def _covering(starts: list[int], tile: int, lo: int, hi: int) -> list[int]:
    return [i for i, s in enumerate(starts) if s < hi and s + tile > lo]


class BlockLayout(TileLayout):
    """The scene's tile layout seen from one block: the same tiles, only the block's cells."""

    def __init__(self, height: int, width: int, tile: int, overlap: int, block: Block) -> None:
        super().__init__(height, width, tile, overlap)
        self.block = block

    @cached_property
    def cells(self) -> list[Cell]:
        b = self.block
        return [c for c in TileLayout.cells.func(self) if b.y0 <= c.y0 < b.y1 and b.x0 <= c.x0 < b.x1]


# --- the task --------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneSpec:
    """How to open a scene: what :class:`Scene` needs, small enough to travel with every task."""

    paths: tuple[str, ...]
    sensor: str | None = None
    bands: tuple[str, ...] | None = None
    wavelengths: tuple[float, ...] | None = None

    @classmethod
    def of(cls, scene, sensor=None, bands=None, wavelengths=None) -> "SceneSpec":
        paths = (scene,) if isinstance(scene, (str, Path)) else tuple(scene)
        return cls(tuple(str(p) for p in paths), sensor, tuple(bands) if bands else None,
                   tuple(float(w) for w in wavelengths) if wavelengths else None)

    def open(self) -> Scene:
        return Scene(list(self.paths), sensor=self.sensor, bands=self.bands, wavelengths=self.wavelengths)


@dataclass(frozen=True)
class BlockTask:
    """Everything a worker needs to map any block of one scene."""

    scene: SceneSpec
    height: int
    width: int
    tile: int
    overlap: int
    class_names: tuple[str, ...]
    stats: tuple[np.ndarray, np.ndarray] | None
    device: str
    batch_size: int


@dataclass
class BlockResult:
    classes: np.ndarray  # [h, w] uint8, NODATA where no valid input
    confidence: np.ndarray  # [h, w] uint8 percent
    model_seconds: float = 0.0


@dataclass(frozen=True)
class ModelBox:
    """A model object on its way to the workers.

    The box makes Dask pickle the whole model (cloudpickle), as a plain object; Dask's own
    serialiser for ``torch.nn.Module`` rebuilds attributes field by field and loses their
    types (an ``OrderedDict`` cache comes back as a ``dict``).
    """

    model: Segmenter


def predict_block(task: BlockTask, block: Block, model: str | Segmenter | ModelBox) -> BlockResult:
    """The Dask task: class and confidence of one block. Pure: reads inputs, writes nothing."""
    segmenter = worker_model(model, task.device)
    with gdal_env(), task.scene.open() as stack:
        if (stack.height, stack.width) != (task.height, task.width):
            raise LandSegError(f"{task.scene.paths[0]} changed size while it was being mapped")
        return _BlockJob(stack, segmenter, task, block).blend()


_MODELS: dict[tuple[str, str], Segmenter] = {}
_MODELS_LOCK = threading.Lock()


def worker_model(model: str | Segmenter | ModelBox, device: str) -> Segmenter:
    """The segmenter for ``model``, loaded once per process (so once per Dask worker) and kept."""
    if isinstance(model, ModelBox):
        return model.model
    if not isinstance(model, str):
        return model
    with _MODELS_LOCK:
        if (model, device) not in _MODELS:
            _MODELS[model, device] = load_segmenter(model, resolve_device(device))
        return _MODELS[model, device]


class _BlockJob(MappingJob):
    """Reads, predicts and blends the tiles of one block, with the single-process code."""

    def __init__(self, stack: Scene, segmenter: Segmenter, task: BlockTask, block: Block) -> None:
        # no super().__init__: a block has no run directory, only the tile loop is shared
        self.stack, self.segmenter, self.block = stack, segmenter, block
        self.class_names = list(task.class_names)
        self.device = resolve_device(task.device)
        self.stats = task.stats
        self.batch_size = task.batch_size
        self.layout = BlockLayout(task.height, task.width, task.tile, task.overlap, block)

    def blend(self) -> BlockResult:
        blender = Blender(self.layout, len(self.class_names))
        classes = np.full(self.block.shape, NODATA, np.uint8)
        confidence = np.full(self.block.shape, NODATA, np.uint8)
        seconds = 0.0
        for batch in self._prefetched([self.layout.tiles[i] for i in self.block.tiles], self.batch_size):
            t0 = time.perf_counter()
            probs = self._predict(batch)
            seconds += time.perf_counter() - t0
            for i, tile in enumerate(batch.tiles):
                for done in blender.add(tile, probs.get(i), batch.valid[i]):
                    ys = slice(done.cell.y0 - self.block.y0, done.cell.y1 - self.block.y0)
                    xs = slice(done.cell.x0 - self.block.x0, done.cell.x1 - self.block.x0)
                    classes[ys, xs], confidence[ys, xs] = done.classes, done.confidence
        if blender.open:
            raise RuntimeError(f"internal error: {len(blender.open)} cells of block {self.block.index} not finished")
        return BlockResult(classes, confidence, seconds)


# --- the client ------------------------------------------------------------------------
@dataclass
class BlockRunDir(RunDir):
    """A run directory whose fresh start of the partial rasters keeps the stores of finished blocks."""

    keep: ClassVar[tuple[str, ...]] = (*RunDir.keep, *KEPT)


class SceneRun(MappingJob):
    """The client side of one scene: its blocks, the finished ones on disk, strips written as blocks arrive."""

    def __init__(self, stack: Scene, segmenter: Segmenter, class_names: list[str], run: RunDir, device,
                 tile_size: int, overlap: int, stats, *, spec: SceneSpec, batch_size: int, block_tiles: int) -> None:
        super().__init__(stack, segmenter, class_names, run, device, tile_size, overlap, stats)
        self.block_tiles = block_tiles
        self.blocks = plan_blocks(self.layout, block_tiles)
        self.fingerprint = fingerprint({"scene": self.fingerprint, "block_tiles": block_tiles})
        self.task = BlockTask(spec, stack.height, stack.width, tile_size, overlap, tuple(class_names), stats,
                              str(device), batch_size)
        self.store = run.partial / STORE
        self.todo: list[Block] = []
        self.valid_pixels, self.model_seconds, self.workers = 0, 0.0, 0
        self.writer: StripWriter | None = None

    def key(self, block: Block) -> str:
        """Dask key of a block's task: the same inputs give the same key (the task is pure)."""
        return f"landseg-block-{self.fingerprint[:16]}-{block.index}"

    def start(self, resume: bool, outdir: Path | None = None) -> None:
        """Fresh partial rasters; with ``resume``, the stored blocks are written again and not recomputed."""
        self.run_dir.partial.mkdir(parents=True, exist_ok=True)
        done = self._stored(outdir or self.run_dir.root) if resume else set()
        if not done:
            shutil.rmtree(self.store, ignore_errors=True)
        self._create_partials()
        self.store.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.store / "fingerprint", self.fingerprint.encode())
        self.writer = StripWriter(self.stack.width, self.stack.height, self.partials)
        for block in self.blocks:
            if block.index in done:
                with np.load(self._block_file(block)) as saved:
                    self._write(block, saved["classes"], saved["confidence"])
        self.todo = [b for b in self.blocks if b.index not in done]

    def _stored(self, outdir: Path) -> set[int]:
        marker = self.store / "fingerprint"
        if not marker.is_file():
            return set()
        if marker.read_text() != self.fingerprint:
            raise LandSegError(
                f"the interrupted run in {outdir} used other inputs or options; pass --overwrite to start again"
            )
        return {int(p.stem.split("-")[1]) for p in self.store.glob("block-*.npz")}

    def _block_file(self, block: Block) -> Path:
        return self.store / f"block-{block.index:06d}.npz"

    def accept(self, block: Block, result: BlockResult) -> None:
        """Keep a finished block on disk (atomically), then pass it to the strip writer."""
        buf = io.BytesIO()
        np.savez_compressed(buf, classes=result.classes, confidence=result.confidence)
        atomic_write_bytes(self._block_file(block), buf.getvalue())
        self.model_seconds += result.model_seconds
        self._write(block, result.classes, result.confidence)

    def _write(self, block: Block, classes: np.ndarray, confidence: np.ndarray) -> None:
        self.valid_pixels += int((classes != NODATA).sum())
        self.writer.add(FinishedCell(Cell(block.y0, block.y1, block.x0, block.x1, -1), classes, confidence))

    def check_complete(self) -> None:
        if self.writer is None or not self.writer.done:
            raise RuntimeError("internal error: not every row of the map was written")

    @property
    def tiles_run(self) -> int:
        return sum(len(b.tiles) for b in self.todo)

    def _run_record(self, result: MapResult) -> dict:
        record = super()._run_record(result)
        record.update(blocks=len(self.blocks), block_tiles=self.block_tiles, workers=self.workers,
                      tiles_computed=sum(len(b.tiles) for b in self.blocks))
        return record


def open_run(spec: SceneSpec, segmenter: Segmenter, class_names: list[str], run: RunDir, device, *,
             tile_size: int, overlap: int, batch_size: int, normalise: str, block_tiles: int) -> SceneRun:
    """Open the scene on the client to check it and fix its statistics; the scene is closed again."""
    with spec.open() as stack:
        check_memory(stack, class_names, tile_size, batch_size)  # what each worker allocates
        stats = checked_model_inputs(stack, segmenter, class_names, normalise)
        return SceneRun(stack, segmenter, class_names, run, device, tile_size, overlap, stats, spec=spec,
                        batch_size=batch_size, block_tiles=block_tiles)


def run_blocks(runs: Sequence[SceneRun], client, model: str | Segmenter, progress: bool = True) -> int:
    """Predict the missing blocks of ``runs`` on ``client`` (in this process when None); returns how many."""
    pending = [(run, block) for run in runs for block in run.todo]
    total = sum(len(run.blocks) for run in runs)
    with tqdm(total=total, initial=total - len(pending), unit="block", disable=not progress, desc="mapping") as bar:
        for run, block, result in _results(pending, client, model):
            run.accept(block, result)
            bar.update(1)
    return len(pending)


def _results(pending: list[tuple[SceneRun, Block]], client, model) -> Iterator[tuple[SceneRun, Block, BlockResult]]:
    if client is None:
        for run, block in pending:
            yield run, block, predict_block(run.task, block, model)
        return
    from distributed import as_completed

    if isinstance(model, str) or not pending:
        ref, tag = model, ""
    else:  # a model object: sent once to every worker; its own key keeps other models' results apart
        ref = client.scatter(ModelBox(model), broadcast=True, hash=False)
        tag = f"-{ref.key}"
    futures = {
        client.submit(predict_block, run.task, block, ref, key=run.key(block) + tag, pure=True, retries=RETRIES):
            (run, block)
        for run, block in pending
    }
    try:
        for future, result in as_completed(futures, with_results=True):
            run, block = futures.pop(future)
            yield run, block, result
    finally:
        if futures:
            client.cancel(list(futures))


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[object | None]:
    """A Dask client: of a new local cluster (``workers``), of a running ``scheduler``, or None (this process).

    Reaching a scheduler waits at most Dask's ``distributed.comm.timeouts.connect`` (30 s by
    default; e.g. ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``).
    """
    if workers is not None and scheduler:
        raise LandSegError("give --workers (a local cluster) or --scheduler (a running one), not both")
    if scheduler:
        with _connect(scheduler) as client:
            yield client
    elif workers is not None:
        from distributed import Client

        with local_cluster(workers) as cluster, Client(cluster) as client:
            yield client
    else:
        yield None


def local_cluster(workers: int):
    """A cluster of ``workers`` single-threaded worker processes, listening on 127.0.0.1 only.

    Each worker's model gets ``OMP_NUM_THREADS`` threads (default: cores / workers). Dask's
    default ``MALLOC_TRIM_THRESHOLD_=65536`` in workers is left out: it makes glibc map and
    unmap every large tensor, which doubled the model's time per tile in a worker.
    """
    import dask.config
    from distributed import LocalCluster

    if workers < 1:
        raise LandSegError(f"--workers must be at least 1, got {workers}")
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // workers))
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0", env=env)


def _connect(address: str):
    import dask.config
    from distributed import Client

    try:
        return Client(address, timeout=dask.config.get("distributed.comm.timeouts.connect"))
    except (OSError, TimeoutError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LandSegError(f"cannot reach the Dask scheduler at {address}: {detail}") from None


def worker_count(client) -> int:
    return 0 if client is None else len(client.nthreads())


# --- one scene -------------------------------------------------------------------------
@dataclass
class DistributedResult(MapResult):
    blocks: int = 0
    blocks_run: int = 0  # blocks computed by this call (fewer after resume)
    workers: int = 0  # Dask workers when the run started (0: this process)
    items: list[str] = field(default_factory=list)  # scenes of a mosaic


def check_options(classes, classes_file, tile_size: int, overlap: int, batch_size: int, normalise: str,
                  block_tiles: int) -> list[str]:
    """The class names, after the same checks as ``map_scene`` plus the block size."""
    class_names = check_map_options(classes, classes_file, tile_size, overlap, batch_size, normalise)
    if block_tiles < 1:
        raise LandSegError(f"--block-tiles must be at least 1, got {block_tiles}")
    return class_names


def result_of(result: MapResult, **extra) -> DistributedResult:
    return DistributedResult(**{f.name: getattr(result, f.name) for f in fields(MapResult)}, **extra)


def map_distributed(
    scene: str | Sequence[str],
    classes: str | Sequence[str] | None = None,
    outdir: str | Path = "landseg-output",
    *,
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
    """:func:`~landsegmenter.infer.mapper.map_scene` with blocks of the map as Dask tasks; same outputs, same bytes.

    ``workers``: start a local cluster of that many worker processes; ``scheduler``: use the
    cluster at that address (its workers must be able to read the scene and the model);
    neither: run the blocks in this process. A ``model`` given by name or directory is
    loaded once per worker; a model object is sent to every worker once.
    """
    started = time.perf_counter()
    class_names = check_options(classes, classes_file, tile_size, overlap, batch_size, normalise, block_tiles)
    dev = resolve_device(device)
    segmenter = load_segmenter(model, dev)
    class_names = model_class_names(class_names, segmenter)
    run = BlockRunDir(Path(outdir))
    with gdal_env():
        job = open_run(SceneSpec.of(scene, sensor, bands, wavelengths), segmenter, class_names, run, dev,
                       tile_size=tile_size, overlap=overlap, batch_size=batch_size, normalise=normalise,
                       block_tiles=block_tiles)
        with dask_client(workers, scheduler) as client:
            run.prepare(overwrite=overwrite, resume=resume)
            job.start(resume)
            job.workers = worker_count(client)
            tiles_run = job.tiles_run
            blocks_run = run_blocks([job], client, segmenter if client is None else model, progress)
        job.check_complete()
        if job.valid_pixels == 0:
            run.abandon()
            raise LandSegError("the scene has no valid pixels (all nodata): nothing to map")
        result = job.publish(confidence, preview, time.perf_counter() - started, job.model_seconds, tiles_run)
    return result_of(result, blocks=len(job.blocks), blocks_run=blocks_run, workers=job.workers)
