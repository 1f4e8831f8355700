"""``item.json``: the products of a mapping run as a STAC Item, for STAC catalogues.

Geometry and bbox in WGS 84 (the map's footprint, edges densified); the ``proj`` extension
with the map's grid; ``classes.tif`` with the ``classification`` extension (value, name,
title, colour hint, pixel count per class) and ``raster`` bands; ``confidence.tif`` with
``raster`` bands (percent). The model's name and weights checksum are item properties
(``landseg:``), and the input files are ``derived_from`` links. ``datetime`` is the
inputs' acquisition time when their STAC items gave one, else the time of the run.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from rasterio.transform import array_bounds
from rasterio.warp import transform as transform_xy

import landsegmenter
from landsegmenter.geo.cog import atomic_write_bytes
from landsegmenter.geo.raster import Grid

COG = pystac.MediaType.COG
NODATA = 255
EDGE_POINTS = 21  # per footprint edge, so a reprojected footprint follows curved edges


@dataclass
class RunProducts:
    """What the Item describes: the run's grid, classes, model, inputs and which files it wrote."""

    item_id: str
    grid: Grid
    class_names: Sequence[str]
    colors: Sequence[tuple[int, int, int]]
    areas: Sequence[dict]  # rows of ``areas.json`` (class, pixels, hectares, percent)
    model: str
    model_sha256: str | None
    inputs: Sequence[str]
    files: Sequence[str]  # product file names written beside item.json
    acquired: Sequence[datetime] = field(default_factory=list)


def build_item(run: RunProducts) -> pystac.Item:
    geometry, bbox = wgs84_footprint(run.grid)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start, end = (min(run.acquired), max(run.acquired)) if run.acquired else (now, now)
    item = pystac.Item(
        id=run.item_id, geometry=geometry, bbox=bbox,
        datetime=start if start == end else None,
        start_datetime=start if start != end else None, end_datetime=end if start != end else None,
        properties={
            "created": now.isoformat().replace("+00:00", "Z"),
            "landseg:model": run.model,
            "landseg:model_sha256": run.model_sha256,
            "landseg:version": landsegmenter.__version__,
        },
    )
    _add_projection(item, run.grid)
    _add_assets(item, run)
    for path in run.inputs:
        item.add_link(pystac.Link("derived_from", _href(path), media_type=_media_type(path),
                                  title=f"input {Path(path).name}"))
    return item


def write_item(run: RunProducts, path: Path) -> None:
    payload = build_item(run).to_dict(include_self_link=False, transform_hrefs=False)
    atomic_write_bytes(path, (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode())


def wgs84_footprint(grid: Grid) -> tuple[dict | None, list[float] | None]:
    """GeoJSON polygon and bbox of the grid in WGS 84; ``(None, None)`` without a CRS."""
    if grid.crs is None:
        return None, None
    west, south, east, north = array_bounds(grid.height, grid.width, grid.transform)
    t = np.linspace(0.0, 1.0, EDGE_POINTS)[:-1]
    xs = np.concatenate([west + (east - west) * t, np.full_like(t, east), east - (east - west) * t,
                         np.full_like(t, west)])
    ys = np.concatenate([np.full_like(t, north), north - (north - south) * t, np.full_like(t, south),
                         south + (north - south) * t])
    lon, lat = transform_xy(grid.crs, "EPSG:4326", xs.tolist(), ys.tolist())
    ring = [[round(x, 7), round(y, 7)] for x, y in zip(lon, lat)][::-1]  # counter-clockwise (RFC 7946)
    ring.append(ring[0])
    bbox = [min(lon), min(lat), max(lon), max(lat)]
    return {"type": "Polygon", "coordinates": [ring]}, [round(v, 7) for v in bbox]


def _add_projection(item: pystac.Item, grid: Grid) -> None:
    if grid.crs is None:
        return
    epsg = grid.crs.to_epsg()
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        code=f"EPSG:{epsg}" if epsg else None,
        wkt2=None if epsg else grid.crs.to_wkt(),
        shape=[grid.height, grid.width],
        transform=[float(v) for v in list(grid.transform)[:6]],
        bbox=[float(v) for v in array_bounds(grid.height, grid.width, grid.transform)],
    )


def _add_assets(item: pystac.Item, run: RunProducts) -> None:
    resolution = float(abs(run.grid.transform.a))
    if "classes.tif" in run.files:
        asset = pystac.Asset("./classes.tif", title="land cover classes", media_type=COG, roles=["data"])
        item.add_asset("classes", asset)
        band = RasterBand.create(nodata=NODATA, data_type=DataType.UINT8, spatial_resolution=resolution)
        RasterExtension.ext(asset, add_if_missing=True).apply([band])
        ClassificationExtension.ext(asset, add_if_missing=True).apply(classes=classifications(run))
    if "confidence.tif" in run.files:
        asset = pystac.Asset("./confidence.tif", title="confidence of the mapped class (%)", media_type=COG,
                             roles=["data"])
        item.add_asset("confidence", asset)
        band = RasterBand.create(nodata=NODATA, data_type=DataType.UINT8, spatial_resolution=resolution,
                                 unit="percent")
        RasterExtension.ext(asset, add_if_missing=True).apply([band])
    extra = {
        "classes.qml": ("style", "QGIS style of classes.tif", "text/xml", ["style"]),
        "areas.json": ("areas", "mapped area per class", pystac.MediaType.JSON, ["metadata"]),
        "areas.csv": ("areas_csv", "mapped area per class", "text/csv", ["metadata"]),
        "preview.png": ("preview", "quicklook of the input and the map", pystac.MediaType.PNG, ["overview"]),
        "run.json": ("run", "record of the mapping run", pystac.MediaType.JSON, ["metadata"]),
    }
    for name, (key, title, media_type, roles) in extra.items():
        if name in run.files:
            item.add_asset(key, pystac.Asset(f"./{name}", title=title, media_type=media_type, roles=roles))


def classifications(run: RunProducts) -> list[Classification]:
    """One entry per class (value = index in ``classes.tif``) and one for nodata."""
    names = machine_names(run.class_names)
    counts = {row["class"]: row for row in run.areas}
    out = []
    for i, (title, color) in enumerate(zip(run.class_names, run.colors)):
        row = counts.get(title, {})
        out.append(Classification.create(
            value=i, name=names[i], title=title, color_hint="%02X%02X%02X" % tuple(color),
            count=row.get("pixels"), percentage=row.get("percent"),
        ))
    out.append(Classification.create(value=NODATA, name="nodata", title="no data", nodata=True))
    return out


def machine_names(class_names: Sequence[str]) -> list[str]:
    """Class names as the extension's ``name`` wants them (letters, digits, ``-``, ``_``), unique."""
    names: list[str] = []
    for i, name in enumerate(class_names):
        slug = re.sub(r"[^0-9A-Za-z_-]+", "_", name).strip("_") or f"class_{i}"
        names.append(slug if slug not in names and slug != "nodata" else f"{slug}_{i}")
    return names


def _href(path: str) -> str:
    if "://" in path or path.startswith("/vsi"):
        return path
    return str(Path(path).resolve())


def _media_type(path: str) -> str | None:
    suffix = Path(path.split("?")[0]).suffix.lower()
    return {".tif": pystac.MediaType.GEOTIFF, ".tiff": pystac.MediaType.GEOTIFF,
            ".jp2": pystac.MediaType.JPEG2000}.get(suffix)
