"""LAS build and read throughput on a scene 10 x the size of the sample scene.

The real T33UUU scene (13 bands, 1536 x 768 px) and its Dynamic World label are tiled
5 x 2 into VRT mosaics (7680 x 1536 px, 10 x the area; the tiles are copies, so the
content repeats, which does not matter for speed). The build runs in a child process,
whose peak resident memory is read from ``getrusage`` after it exits; the same build on
the 1 x scene shows whether memory stays flat as the input grows (streaming). Reading is
timed with a ``DataLoader`` over the built store (2 workers, batches grouped by subset).

    python benchmarks/las_build.py [--samples 400] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from xml.sax.saxutils import escape

import rasterio

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SCENE = "s2_t33uuu_20170216"
TILES_X, TILES_Y = 5, 2


def mosaic_vrt(src_path: Path, out: Path, tiles_x: int, tiles_y: int) -> Path:
    """A VRT that repeats ``src_path`` ``tiles_x`` x ``tiles_y`` times on one larger grid."""
    with rasterio.open(src_path) as src:
        width, height = src.width * tiles_x, src.height * tiles_y
        t = src.transform
        dtype = {"uint16": "UInt16", "uint8": "Byte"}[src.dtypes[0]]
        bands = []
        for b in range(1, src.count + 1):
            sources = "".join(
                f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(str(src_path))}</SourceFilename>'
                f"<SourceBand>{b}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{src.width}" ySize="{src.height}"/>'
                f'<DstRect xOff="{i * src.width}" yOff="{j * src.height}" xSize="{src.width}" ySize="{src.height}"/>'
                "</SimpleSource>"
                for j in range(tiles_y)
                for i in range(tiles_x)
            )
            nodata = "" if src.nodata is None else f"<NoDataValue>{src.nodata:g}</NoDataValue>"
            description = f"<Description>{escape(src.descriptions[b - 1] or '')}</Description>"
            bands.append(f'<VRTRasterBand dataType="{dtype}" band="{b}">{description}{nodata}{sources}</VRTRasterBand>')
        xml = (
            f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{escape(src.crs.to_wkt())}</SRS>'
            f"<GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>{''.join(bands)}</VRTDataset>"
        )
    out.write_text(xml, encoding="utf-8")
    return out


def manifest(path: Path, image: Path, label: Path, samples: int) -> Path:
    path.write_text(
        textwrap.dedent(f"""\
        name: bench
        subsets:
          s2_dw:
            imagery: {{sensor: sentinel2_l1c}}
            label: {{legend: dynamic_world}}
            sampling: {{patch_size: 128, stride: 64, samples_per_scene: {samples}, strategy: balanced}}
            scenes: [{{id: mosaic, image: "{image}", label: "{label}"}}]
        """),
        encoding="utf-8",
    )
    return path


def timed_build(manifest_path: Path, out: Path) -> dict:
    """Build in a fresh child process; its own timing plus its peak RSS."""
    code = (
        "import json, sys, time; from landsegmenter.las import build_las; t = time.perf_counter(); "
        f"r = build_las({str(manifest_path)!r}, {str(out)!r}, progress=False); "
        "print(json.dumps({'samples': r.written, 'seconds': time.perf_counter() - t}))"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (ru_maxrss in KiB on Linux)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"the build failed (exit {child.returncode})")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    return result


def read_rate(store: Path, workers: int, batch_size: int = 16, epochs: int = 2) -> float:
    """Samples per second of the last epoch through a DataLoader (the first warms up the workers)."""
    from torch.utils.data import DataLoader

    from landsegmenter.data.las_dataset import LASDataset, collate_las
    from landsegmenter.data.samplers import GroupedBatchSampler

    data = LASDataset(store, splits=("train", "val", "test"))
    sampler = GroupedBatchSampler(data.group_ids, batch_size, seed=0)
    loader = DataLoader(
        data, batch_sampler=sampler, collate_fn=collate_las, num_workers=workers, persistent_workers=workers > 0
    )
    rate = 0.0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        start, n = time.perf_counter(), 0
        for batch in loader:
            n += batch["image"].shape[0]
        rate = n / (time.perf_counter() - start)
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400, help="patches to cut from the 10 x scene")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.keep, args.samples)
    else:
        with tempfile.TemporaryDirectory(prefix="las-bench-") as work:
            run(Path(work), args.samples)
    return 0


def run(work: Path, samples: int) -> None:
    scene = DATA / SCENE
    image = mosaic_vrt(scene / "s2_l1c_13band_10m.tif", work / "image_10x.vrt", TILES_X, TILES_Y)
    label = mosaic_vrt(scene / "dynamic_world_label.tif", work / "label_10x.vrt", TILES_X, TILES_Y)
    one = manifest(work / "m1.yaml", scene / "s2_l1c_13band_10m.tif", scene / "dynamic_world_label.tif", samples // 10)
    runs = {
        "1 x (1536 x 768)": timed_build(one, work / "store_1x"),
        "10 x (7680 x 1536)": timed_build(manifest(work / "m10.yaml", image, label, samples), work / "store_10x"),
    }
    print("\nLAS build (13 bands, 128 px patches, balanced sampling, one process)")
    print(f"{'input':<22}{'samples':>9}{'seconds':>10}{'samples/s':>12}{'peak RSS (MiB)':>16}")
    for name, r in runs.items():
        rate = r["samples"] / r["seconds"]
        print(f"{name:<22}{r['samples']:>9}{r['seconds']:>10.1f}{rate:>12.1f}{r['peak_rss_mib']:>16.0f}")
    print("\nReading the 10 x store (DataLoader, batch 16, grouped by subset; second epoch)")
    print(f"{'workers':<10}{'samples/s':>12}")
    for workers in (0, 2):
        print(f"{workers:<10}{read_rate(work / 'store_10x', workers):>12.1f}")


if __name__ == "__main__":
    sys.exit(main())
