"""Mapping on Dask: speed-up from 1 to 2 workers, scheduler overhead per task, and a projection to 10^10 px.

The scene is a VRT repeating the real Sentinel-2 sample scene (13 bands, uint16) to
``--size`` x ``--size`` px. Each mapping run uses an already started local cluster (its start
is timed separately) and is checked byte for byte against the single-process map. Models:
``spectral-rule`` (no learned weights: reading, blending and writing dominate) and the
``tiny`` preset (random weights, same cost as trained ones). The projection uses the
``default`` preset's forward time per 512 x 512 tile measured here, one thread per worker.

Run: ``OMP_NUM_THREADS=1 python benchmarks/distributed.py [--size 2048] [--models spectral-rule,tiny]``
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # this file would shadow `distributed`

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import torch  # noqa: E402

from landsegmenter import map_scene  # noqa: E402
from landsegmenter.infer.distributed import local_cluster, map_distributed, plan_blocks  # noqa: E402
from landsegmenter.infer.tiling import TileLayout  # noqa: E402

_spec = importlib.util.spec_from_file_location("map_scene_benchmark", HERE / "map_scene.py")
_map_scene_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_map_scene_benchmark)
CLASSES, SCENE, mosaic_vrt = _map_scene_benchmark.CLASSES, _map_scene_benchmark.SCENE, _map_scene_benchmark.mosaic_vrt

AREA_PX = 1e10  # 1 million km² at 10 m
S2_GRANULE = 10980  # px: a Sentinel-2 MGRS granule at 10 m
GRANULE_OVERLAP = (109.8 / 100.0) ** 2  # granules are 109.8 km wide on a 100 km grid


def _model(name: str):
    if name == "spectral-rule":
        return name
    from landsegmenter.model.presets import build_model

    torch.manual_seed(0)
    return build_model(name, image={"pretrained": None}).eval()


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _noop(i: int) -> int:
    return i


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _workers_cpu(cluster) -> float:
    """CPU seconds used so far by the worker processes of ``cluster``."""
    from distributed import Client

    with Client(cluster) as client:
        return sum(client.run(_cpu_seconds).values())


def _warm_up(cluster) -> None:
    """Import the mapping code on every worker, so that a worker's one-off start is not timed."""
    from distributed import Client

    with Client(cluster) as client:
        client.run(lambda: __import__("landsegmenter.infer.distributed") and None)


def mapping_runs(scene: Path, tmp: Path, name: str, args, clusters: dict) -> list[dict]:
    """Single process, then 1 and 2 workers on running clusters; the maps must be the same bytes."""
    model = _model(name)
    common = dict(model=model, tile_size=args.tile_size, overlap=args.overlap, batch_size=args.batch_size,
                  progress=False, preview=False, overwrite=True)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    reference = map_scene(str(scene), CLASSES, tmp / f"{name}-single", **common)
    rows = [{"model": name, "run": "map_scene (1 process)", "seconds": time.perf_counter() - t0,
             "cpu": _cpu_seconds() - cpu0, "tiles": reference.tiles_run}]
    for workers, cluster in clusters.items():
        t0, cpu0, workers0 = time.perf_counter(), _cpu_seconds(), _workers_cpu(cluster)
        result = map_distributed(str(scene), CLASSES, tmp / f"{name}-{workers}", scheduler=cluster.scheduler_address,
                                 block_tiles=args.block_tiles, **common)
        seconds = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0 + _workers_cpu(cluster) - workers0
        assert (_read(result.classes) == _read(reference.classes)).all(), "distributed map differs"
        assert (_read(result.confidence) == _read(reference.confidence)).all(), "distributed confidence differs"
        rows.append({"model": name, "run": f"Dask, {workers} worker{'s' * (workers > 1)}", "seconds": seconds,
                     "cpu": cpu, "tiles": result.tiles_run, "blocks": result.blocks, "workers": workers})
    one = next(r["seconds"] for r in rows if r.get("workers") == 1)
    for row in rows:
        if row.get("workers"):
            row["speedup"] = one / row["seconds"]
            row["efficiency"] = row["speedup"] / row["workers"]
    return rows


def task_overhead(cluster, n: int) -> tuple[float, float]:
    """Seconds per trivial task: submitted all at once (throughput), and one after another (round trip)."""
    from distributed import Client

    with Client(cluster) as client:
        client.gather(client.map(_noop, range(50), pure=False))  # warm up
        t0 = time.perf_counter()
        client.gather(client.map(_noop, range(n), pure=False))
        batch = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for i in range(200):
            client.submit(_noop, i, pure=False).result()
        single = (time.perf_counter() - t0) / 200
    return batch, single


def default_tile_seconds(batch_size: int, repeats: int = 3) -> float:
    """Forward time per 512 x 512 x 13 tile of the ``default`` preset (random weights), best of ``repeats``."""
    from landsegmenter.model.presets import build_model

    torch.manual_seed(0)
    model = build_model("default", image={"pretrained": None}).eval()
    x = torch.randn(batch_size, 13, 512, 512)
    wl = torch.tensor([0.443, 0.49, 0.56, 0.665, 0.705, 0.74, 0.783, 0.842, 0.865, 0.945, 1.375, 1.61, 2.19])
    times = []
    with torch.inference_mode():
        model(x[:1], wl, CLASSES)
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.softmax(model(x, wl, CLASSES), dim=1)
            times.append((time.perf_counter() - t0) / batch_size)
    return min(times)


def io_tile_seconds(scene: Path, tmp: Path) -> float:
    """Everything but the model per 512-px tile: map_scene with the spectral rule (its compute is negligible)."""
    result = map_scene(str(scene), CLASSES, tmp / "io", model="spectral-rule", tile_size=512, overlap=32,
                       progress=False, preview=False)
    return (result.seconds - result.model_seconds) / result.tiles


def projection(tile_seconds: float, task_seconds: float, efficiency: float, block_tiles: int) -> list[tuple[str, str]]:
    layout = TileLayout(S2_GRANULE, S2_GRANULE, 512, 32)
    blocks = plan_blocks(layout, block_tiles)
    halo = sum(len(b.tiles) for b in blocks) / len(layout.tiles)
    tiles = AREA_PX * GRANULE_OVERLAP * len(layout.tiles) * halo / S2_GRANULE**2
    tasks = AREA_PX * GRANULE_OVERLAP * len(blocks) / S2_GRANULE**2
    core_hours = (tiles * tile_seconds + tasks * task_seconds) / 3600
    measured = core_hours / max(efficiency, 1e-9)
    return [
        ("tile redundancy (512 px, 32 overlap, 10980² granule)", f"{layout.redundancy():.3f}"),
        (f"block halo factor ({block_tiles}x{block_tiles} tiles per task)", f"{halo:.3f}"),
        ("granule overlap factor (109.8 km on a 100 km grid)", f"{GRANULE_OVERLAP:.3f}"),
        ("tiles to predict", f"{tiles:,.0f}"),
        ("Dask tasks", f"{tasks:,.0f}"),
        ("seconds per tile (default forward + reading/blending/writing), one core", f"{tile_seconds:.3f}"),
        ("core-hours (tiles + scheduler overhead per task)", f"{core_hours:,.1f}"),
        ("workers (1 core each) for 24 h / 1 h, ideal scaling",
         f"{math.ceil(core_hours / 24)} / {math.ceil(core_hours)}"),
        (f"workers for 24 h / 1 h at this machine's measured efficiency ({efficiency:.2f})",
         f"{math.ceil(measured / 24)} / {math.ceil(measured)}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048, help="edge of the benchmark scene in pixels")
    parser.add_argument("--models", default="spectral-rule,tiny")
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block-tiles", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=2000, help="trivial tasks for the overhead measurement")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scene = mosaic_vrt(SCENE, args.size, tmp / "scene.vrt")
        rows, starts, clusters = [], {}, {}
        try:
            for workers in (1, 2):
                t0 = time.perf_counter()
                clusters[workers] = local_cluster(workers)  # what `landseg map --workers N` starts
                starts[workers] = time.perf_counter() - t0
                _warm_up(clusters[workers])
            for name in args.models.split(","):
                rows += mapping_runs(scene, tmp, name, args, clusters)
            batch, single = task_overhead(clusters[2], args.tasks)
        finally:
            for cluster in clusters.values():
                cluster.close()
        tile_model = default_tile_seconds(args.batch_size)
        tile_io = io_tile_seconds(scene, tmp)
    _print(args, rows, starts, batch, single, tile_model, tile_io)


def _print(args, rows, starts, batch, single, tile_model, tile_io) -> None:
    print(f"scene {args.size}² x 13 bands (VRT of the real S2 scene), tile {args.tile_size}, overlap {args.overlap}, "
          f"batch {args.batch_size}, {args.block_tiles}x{args.block_tiles} tiles per block, "
          f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print("\n| model | run | blocks | tiles predicted | wall s | CPU s (client + workers) | speed-up vs 1 worker "
          "| efficiency |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        extra = (f"{r['speedup']:.2f} | {r['efficiency']:.2f}" if "speedup" in r else "- | -")
        print(f"| {r['model']} | {r['run']} | {r.get('blocks', '-')} | {r['tiles']} | {r['seconds']:.1f} | "
              f"{r['cpu']:.1f} | {extra} |")
    print(f"\nload average while running (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"\ncluster start: 1 worker {starts[1]:.2f} s, 2 workers {starts[2]:.2f} s")
    print(f"scheduler overhead, trivial task: {batch * 1e3:.2f} ms/task submitted together, "
          f"{single * 1e3:.2f} ms/task one at a time (2 workers)")
    print(f"default preset forward: {tile_model:.3f} s per 512² x 13 tile (1 thread, batch {args.batch_size}); "
          f"reading + blending + writing: {tile_io:.3f} s per tile")
    efficiency = min((r["efficiency"] for r in rows if r.get("workers") == 2), default=1.0)  # the worse model
    print("\nProjection: 1,000,000 km² at 10 m (10^10 px) with the default preset\n")
    print("| quantity | value |\n|---|---|")
    for name, value in projection(tile_model + tile_io, batch, efficiency, 8):
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
