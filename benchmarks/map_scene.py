"""Scene-mapper benchmark: peak memory on a 20000 x 20000 scene, I/O overhead, overlap redundancy.

The scenes are built from the real Sentinel-2 sample scene (13 bands, uint16) as VRT mosaics.
The model is the LandSegmenter ``default`` preset (``--model preset:default``; random weights
have the same cost as trained ones), a convolutional stand-in (``stand-in``) or a model directory. Run: ``python benchmarks/map_scene.py [--quick]``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT.parent / "shared" / "data" / "s2_t33uuu_20170216" / "s2_l1c_13band_10m.tif"
CLASSES = ["water", "forest", "cropland", "grassland", "built-up", "bare ground", "wetland"]


class ConvStandIn(nn.Module):
    """A fixed-cost CNN with the Segmenter signature (random weights: cost, not accuracy)."""

    fingerprint = "conv-stand-in"

    def __init__(self, bands: int = 13, classes: int = len(CLASSES), width: int = 64) -> None:
        super().__init__()
        torch.manual_seed(0)
        layers = [nn.Conv2d(bands, width // 2, 3, 2, 1), nn.ReLU(), nn.Conv2d(width // 2, width, 3, 2, 1), nn.ReLU()]
        for _ in range(4):
            layers += [nn.Conv2d(width, width, 3, 1, 1), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Conv2d(width, classes, 1))

    def forward(self, image, wavelengths, class_names):
        return nn.functional.interpolate(self.body(image), size=image.shape[-2:], mode="bilinear")


def _segmenter(name: str):
    """``stand-in``, ``preset:NAME`` (LandSegmenter preset, random weights: same cost) or a model directory."""
    if name == "stand-in":
        return ConvStandIn()
    if name.startswith("preset:"):
        from landsegmenter.model.presets import build_model

        torch.manual_seed(0)
        return build_model(name.split(":", 1)[1]).eval()
    from landsegmenter.model.zoo import load_segmenter

    return load_segmenter(name)


def mosaic_vrt(src_path: Path, size: int, out: Path) -> Path:
    """A ``size x size`` VRT repeating the real scene (each band a grid of SimpleSources)."""
    with rasterio.open(src_path) as src:
        w, h, count, dtype = src.width, src.height, src.count, src.dtypes[0]
        t = src.transform
        crs = src.crs.to_wkt()
        names = src.descriptions
    gdal_type = {"uint16": "UInt16"}[dtype]
    bands = []
    for b in range(1, count + 1):
        sources = []
        for y in range(0, size, h):
            for x in range(0, size, w):
                cw, ch = min(w, size - x), min(h, size - y)
                sources.append(
                    f'<SimpleSource><SourceFilename relativeToVRT="0">{src_path}</SourceFilename>'
                    f"<SourceBand>{b}</SourceBand>"
                    f'<SrcRect xOff="0" yOff="0" xSize="{cw}" ySize="{ch}"/>'
                    f'<DstRect xOff="{x}" yOff="{y}" xSize="{cw}" ySize="{ch}"/></SimpleSource>'
                )
        bands.append(
            f'<VRTRasterBand dataType="{gdal_type}" band="{b}"><Description>{names[b - 1]}</Description>'
            f"<NoDataValue>0</NoDataValue>{''.join(sources)}</VRTRasterBand>"
        )
    geo = f"{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}"
    out.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{crs}</SRS>'
        f"<GeoTransform>{geo}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )
    return out


def run_child(scene: str, out: str, model: str, tile: int, overlap: int, batch: int) -> None:
    """Map in this process and print timings as JSON (peak RSS is read by the parent)."""
    from landsegmenter import map_scene

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    segmenter = _segmenter(model)
    t0 = time.perf_counter()
    result = map_scene(scene, CLASSES, out, model=segmenter, tile_size=tile, overlap=overlap, batch_size=batch,
                       overwrite=True, progress=False, preview=False)
    print(json.dumps({"seconds": time.perf_counter() - t0, "model_seconds": result.model_seconds,
                      "tiles": result.tiles, "redundancy": result.redundancy,
                      "peak_rss_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM; ru_maxrss would include the parent's peak at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mapped_in_subprocess(scene: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", str(scene), str(out), args.model, str(args.tile_size),
           str(args.overlap), str(args.batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def model_alone_seconds(scene: Path, args) -> float:
    """Time the stand-in on exactly the tiles the mapper runs, already in memory."""
    from landsegmenter.geo.raster import Scene
    from landsegmenter.infer.tiling import TileLayout
    from rasterio.windows import Window

    model = _segmenter(args.model)
    with Scene(str(scene)) as stack:
        layout = TileLayout(stack.height, stack.width, args.tile_size, args.overlap)
        tiles = [stack.read(Window(t.x, t.y, args.tile_size, args.tile_size))[0] for t in layout.tiles]
        wl = torch.tensor(stack.wavelengths)
    total = 0.0
    with torch.inference_mode():
        for i in range(0, len(tiles), args.batch_size):
            batch = torch.from_numpy(np.stack(tiles[i : i + args.batch_size]))
            t0 = time.perf_counter()
            torch.softmax(model(batch, wl, CLASSES), dim=1)
            total += time.perf_counter() - t0
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=20000, help="edge of the large scene in pixels")
    parser.add_argument("--overhead-size", type=int, default=3072, help="edge of the scene for the overhead ratio")
    parser.add_argument("--model", default="preset:default")
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="4096 px large scene instead of 20000")
    args = parser.parse_args()
    if args.child:
        scene, out, model, tile, overlap, batch = args.child
        return run_child(scene, out, model, int(tile), int(overlap), int(batch))
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    size = 4096 if args.quick else args.size
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = mosaic_vrt(SCENE, args.overhead_size, tmp / "small.vrt")
        alone = model_alone_seconds(small, args)
        small_run = mapped_in_subprocess(small, tmp / "small-out", args)
        big_run = mapped_in_subprocess(mosaic_vrt(SCENE, size, tmp / "big.vrt"), tmp / "big-out", args)
    print(f"model: {args.model}, tile {args.tile_size}, overlap {args.overlap}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads")
    print(f"| scene | tiles | redundancy | end-to-end s | model-alone s | ratio | peak RSS MB |")
    print(f"|---|---|---|---|---|---|---|")
    ratio = small_run["seconds"] / alone
    print(f"| {args.overhead_size}² x 13 | {small_run['tiles']} | {small_run['redundancy']:.3f} | "
          f"{small_run['seconds']:.1f} | {alone:.1f} | {ratio:.3f} | {small_run['peak_rss_mb']:.0f} |")
    print(f"| {size}² x 13 | {big_run['tiles']} | {big_run['redundancy']:.3f} | {big_run['seconds']:.1f} | "
          f"(in-run {big_run['model_seconds']:.1f}) | {big_run['seconds'] / big_run['model_seconds']:.3f} | "
          f"{big_run['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
