"""Per-class area tables and a PNG preview of a class map."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from rasterio.windows import Window

from landsegmenter.geo.area import row_pixel_areas_ha
from landsegmenter.geo.bands import BandSpec
from landsegmenter.geo.cog import BLOCK, atomic_write_bytes
from landsegmenter.geo.quicklook import quicklook
from landsegmenter.geo.raster import Grid
from landsegmenter.infer.blender import NODATA


def class_areas(class_map: Path, grid: Grid, class_names: Sequence[str]) -> list[dict]:
    """Pixels and hectares per class, read strip by strip (hectares None without a CRS)."""
    k = len(class_names)
    pixels = np.zeros(k, dtype=np.int64)
    hectares = np.zeros(k, dtype=np.float64)
    with rasterio.open(class_map) as src:
        for row in range(0, grid.height, BLOCK):
            strip = src.read(1, window=Window(0, row, grid.width, min(BLOCK, grid.height - row)))
            areas = row_pixel_areas_ha(grid, row, row + strip.shape[0])
            for r in range(strip.shape[0]):
                line = strip[r][strip[r] != NODATA]
                counts = np.bincount(line, minlength=k)[:k]
                pixels += counts
                if areas is not None:
                    hectares += counts * areas[r]
    total = max(int(pixels.sum()), 1)
    georeferenced = grid.crs is not None
    return [
        {
            "class": name,
            "pixels": int(pixels[i]),
            "hectares": round(float(hectares[i]), 4) if georeferenced else None,
            "percent": round(100.0 * pixels[i] / total, 4),
        }
        for i, name in enumerate(class_names)
    ]


def write_area_tables(rows: list[dict], csv_path: Path, json_path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["class", "pixels", "hectares", "percent"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "hectares": "" if row["hectares"] is None else row["hectares"]})
    atomic_write_bytes(csv_path, buf.getvalue().encode("utf-8"))
    atomic_write_bytes(json_path, (json.dumps(rows, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_preview(
    class_map: Path,
    png_path: Path,
    class_names: Sequence[str],
    colors: Sequence[tuple[int, int, int]],
    title: str,
    max_side: int = 1200,
    input_bands: Sequence[BandSpec] | None = None,
) -> None:
    """A PNG of the class map with a legend (decimated reads, so memory stays small).

    With ``input_bands`` (the mapped stack), the input's true- or false-colour quicklook is
    shown beside the map, so one sees at a glance whether the map fits the image.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with rasterio.open(class_map) as src:
        scale = max(src.width, src.height) / max_side * (2 if input_bands else 1)
        shape = (max(1, round(src.height / max(scale, 1))), max(1, round(src.width / max(scale, 1))))
        data = src.read(1, out_shape=shape, resampling=rasterio.enums.Resampling.nearest)
        grid = Grid(src.width, src.height, src.crs, src.transform)
    panels = 2 if input_bands else 1
    fig, axes = plt.subplots(1, panels, figsize=(10, 10 / panels * shape[0] / shape[1] + 1.0), squeeze=False)
    if input_bands:
        rgb, kind = quicklook(input_bands, grid, shape)
        axes[0, 0].imshow(np.nan_to_num(rgb, nan=1.0), interpolation="nearest")
        axes[0, 0].set_title(f"input ({kind})", fontsize=9)
        axes[0, 0].set_axis_off()
    _draw_map(axes[0, -1], data, class_names, colors)
    fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(png_path, buf.getvalue())


def _draw_map(ax, data: np.ndarray, class_names: Sequence[str], colors: Sequence[tuple[int, int, int]]) -> None:
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    rgba = np.array([[*c, 255] for c in colors] + [[0, 0, 0, 0]], dtype=float) / 255.0
    index = np.where(data == NODATA, len(colors), data)
    ax.imshow(index, cmap=ListedColormap(rgba), vmin=0, vmax=len(colors), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title("map", fontsize=9)
    handles = [Patch(facecolor=np.array(c) / 255.0, edgecolor="black", label=n) for n, c in zip(class_names, colors)]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=min(4, len(handles)), fontsize=9)
