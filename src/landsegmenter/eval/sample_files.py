"""Reference sample files: a GeoPackage of points to label (plus a CSV twin), and reading them back.

Columns: ``id``, ``map_class`` (name), ``map_value`` (value in ``classes.tif``),
``stratum_weight`` (the class's share of the mapped area), ``stratum_points`` (points drawn
in that class) and an empty ``reference`` column for the labeller; the CSV adds ``x``/``y``
in the map's CRS. Either file can be labelled and read back (a CSV is taken to be in the
map's CRS; a GeoPackage says its CRS).
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS

from landsegmenter.errors import LandSegError
from landsegmenter.eval.sampling import SamplePoints, Strata
from landsegmenter.geo.cog import atomic_write_bytes

LAYER = "sample"
FIELDS = ("id", "map_class", "map_value", "stratum_weight", "stratum_points", "reference")
_SCHEMA = {"geometry": "Point", "properties": {"id": "int", "map_class": "str", "map_value": "int",
                                               "stratum_weight": "float", "stratum_points": "int",
                                               "reference": "str"}}


@dataclass(frozen=True)
class ReferenceSample:
    """Labelled points read back: coordinates, labels and the map class each was drawn from."""

    path: str
    ids: list[str]
    x: np.ndarray  # [n] float64
    y: np.ndarray
    labels: list[str]
    map_class: list[str] | None  # the ``map_class`` column, when the file has one
    crs: CRS | None  # None: unknown (CSV) or not georeferenced


def sample_rows(points: SamplePoints, strata: Strata, allocation: np.ndarray) -> list[dict]:
    return [
        {"id": int(i), "map_class": strata.class_names[v], "map_value": int(v),
         "stratum_weight": round(float(strata.weights[v]), 10), "stratum_points": int(allocation[v]),
         "reference": ""}
        for i, v in zip(points.ids, points.map_value)
    ]


def write_sample(points: SamplePoints, strata: Strata, allocation: np.ndarray, path: str | Path,
                 overwrite: bool = False) -> tuple[Path, Path]:
    """``path`` (GeoPackage) and its ``.csv`` twin, each written under a temporary name and renamed."""
    gpkg, twin = Path(path), Path(path).with_suffix(".csv")
    if gpkg.suffix.lower() != ".gpkg":
        raise LandSegError(f"the sample file must be a GeoPackage (.gpkg), got {gpkg.name}")
    existing = [p for p in (gpkg, twin) if p.exists()]
    if existing and not overwrite:
        raise LandSegError(f"{existing[0]} exists; pass --overwrite to replace it")
    if not gpkg.parent.is_dir():
        raise LandSegError(f"no such directory: {gpkg.parent}")
    rows = sample_rows(points, strata, allocation)
    csv_bytes = _csv_bytes(rows, points)
    tmp = gpkg.with_name(f".{gpkg.stem}.tmp.gpkg")
    try:
        _write_gpkg(tmp, rows, points)
        os.replace(tmp, gpkg)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_bytes(twin, csv_bytes)
    return gpkg, twin


def _write_gpkg(path: Path, rows: list[dict], points: SamplePoints) -> None:
    import fiona

    crs = {"crs_wkt": points.crs.to_wkt()} if points.crs else {}
    with fiona.open(path, "w", driver="GPKG", layer=LAYER, schema=_SCHEMA, **crs) as dst:
        dst.writerecords(
            {"geometry": {"type": "Point", "coordinates": (float(x), float(y))}, "properties": row}
            for row, x, y in zip(rows, points.x, points.y)
        )


def _csv_bytes(rows: list[dict], points: SamplePoints) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["id", "x", "y", *FIELDS[1:]], lineterminator="\n")
    writer.writeheader()
    for row, x, y in zip(rows, points.x, points.y):
        writer.writerow({**row, "x": repr(float(x)), "y": repr(float(y))})
    return buf.getvalue().encode("utf-8")


def read_sample(path: str | Path, column: str = "reference") -> ReferenceSample:
    """Points and their ``column`` labels from a GeoPackage (or other OGR file) or the CSV twin."""
    path = Path(path)
    if not path.is_file():
        raise LandSegError(f"no such sample file: {path}")
    records, crs = _read_csv(path) if path.suffix.lower() == ".csv" else _read_vector(path)
    if not records:
        raise LandSegError(f"{path} holds no points")
    columns = list(records[0][0])
    if column not in columns:
        raise LandSegError(f"{path} has no column {column!r} with the reference labels "
                           f"(columns: {', '.join(columns)}); pass --column NAME")
    labels = ["" if props[column] is None else str(props[column]).strip() for props, _ in records]
    ids = [str(props.get("id", n + 1)) for n, (props, _) in enumerate(records)]
    unlabelled = [i for i, label in zip(ids, labels) if not label]
    if unlabelled:
        raise LandSegError(f"{len(unlabelled)} of {len(labels)} points of {path} have no {column!r} label "
                           f"(ids {', '.join(unlabelled[:8])}{', ...' if len(unlabelled) > 8 else ''}); "
                           "label every point of the sample")
    xy = np.array([c for _, c in records], dtype=np.float64).reshape(-1, 2)
    map_class = [str(p["map_class"]) for p, _ in records] if "map_class" in columns else None
    return ReferenceSample(str(path), ids, xy[:, 0], xy[:, 1], labels, map_class, crs)


def _read_vector(path: Path) -> tuple[list[tuple[dict, tuple[float, float]]], CRS | None]:
    import fiona

    try:
        layers = fiona.listlayers(path)
        layer = LAYER if LAYER in layers else layers[0]
        with fiona.open(path, layer=layer) as src:
            wkt = src.crs_wkt
            records = []
            for feature in src:
                geometry = feature.geometry
                if geometry is None or geometry.type != "Point":
                    kind = "none" if geometry is None else geometry.type
                    raise LandSegError(f"{path}: feature {feature.id} is not a point (geometry: {kind})")
                records.append((dict(feature.properties), tuple(geometry.coordinates[:2])))
    except fiona.errors.FionaError as err:
        raise LandSegError(f"cannot read {path} as a sample file: {str(err).splitlines()[0]}") from None
    return records, CRS.from_wkt(wkt) if wkt else None


def _read_csv(path: Path) -> tuple[list[tuple[dict, tuple[float, float]]], CRS | None]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"x", "y"} <= set(rows[0]):
        raise LandSegError(f"{path} has no x and y columns (columns: {', '.join(rows[0])})")
    try:
        return [(row, (float(row["x"]), float(row["y"]))) for row in rows], None
    except (TypeError, ValueError):
        raise LandSegError(f"{path}: x and y must be numbers in every row") from None
