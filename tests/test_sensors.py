"""Sensor registry: data-file integrity, name lookup, file-name parsing, real-scene checks."""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pystac.extensions.eo import Band as EOBand

from landsegmenter.errors import LandSegError
from landsegmenter.geo.sensors import (
    Sensor,
    get_sensor,
    list_sensors,
    match_sensor_by_band_names,
)

SAR_UNITS = {"dB"}
# STAC eo v2 common names that pystac's band_range table does not know yet.
EO_V2_EXTRA_COMMON_NAMES = {"green05", "rededge071", "rededge075", "rededge078"}
S2_TILE_PREFIX = "T33UUU_20170216T102101_"


def _read(path: Path) -> tuple[np.ndarray, tuple[str | None, ...]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read().astype(np.float64), src.descriptions


def _normalised_medians(sensor: Sensor, path: Path, nodata: float | None = 0) -> dict[str, float]:
    """Median of each band of a real raster after DN -> physical -> (x - mean) / std."""
    stack, names = _read(path)
    index = {b.name: i for i, b in enumerate(sensor.bands)}
    medians = {}
    for values, band in zip(stack, sensor.select(names)):
        i = index[band.name]
        valid = values[values != nodata] if nodata is not None else values.ravel()
        physical = np.median(valid) * sensor.band_scales[i] + sensor.band_offsets[i]
        medians[band.name] = (physical - band.mean) / band.std
    return medians


# ---------------------------------------------------------------- registry integrity


def test_every_sensor_loads_with_sane_bands():
    sensors = list_sensors()
    assert len(sensors) >= 18
    assert len({s.name for s in sensors}) == len(sensors)
    for sensor in sensors:
        assert sensor.title and sensor.units and sensor.bands, sensor.name
        assert sensor.scale > 0, sensor.name
        assert len(set(sensor.band_names)) == len(sensor.bands), sensor.name
        for band in sensor.bands:
            assert band.wavelength > 0 and band.gsd > 0 and band.std > 0, (sensor.name, band.name)
            if sensor.units not in SAR_UNITS:
                assert 0.3 <= band.wavelength <= 15.0, (sensor.name, band.name)
        assert sensor.wavelengths == tuple(b.wavelength for b in sensor.bands)
        assert get_sensor(sensor.name) is sensor
        for alias in sensor.aliases:
            assert get_sensor(alias) is sensor, alias


def test_variants_share_the_bands_of_their_base():
    variants = [s for s in list_sensors() if s.variant_of]
    assert {v.name for v in variants} >= {"sentinel2_l2a_pb04", "landsat5_dn", "landsat7_dn"}
    for variant in variants:
        base = get_sensor(variant.variant_of)
        assert variant.band_names == base.band_names
        assert variant.wavelengths == base.wavelengths


def test_common_names_are_stac_names_matching_the_wavelength():
    for sensor in list_sensors():
        for band in sensor.bands:
            if not band.common_name:
                continue
            known = EOBand.band_range(band.common_name)
            if known is None:
                assert band.common_name in EO_V2_EXTRA_COMMON_NAMES, (sensor.name, band.name)
                continue
            low, high = known
            assert low - 0.01 <= band.wavelength <= high + 0.01, (sensor.name, band.name)


def test_product_scalings():
    assert get_sensor("sentinel2_l1c").band_names == (
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12",
    )
    l2a, pb04 = get_sensor("sentinel2_l2a"), get_sensor("sentinel2_l2a_pb04")
    assert "B10" not in l2a.band_names and len(l2a.bands) == 12
    assert (l2a.scale, l2a.offset) == (1e-4, 0.0)
    assert (pb04.scale, pb04.offset) == (1e-4, -0.1)
    s1 = get_sensor("s1")
    assert s1.units == "dB" and s1.band_names == ("VV", "VH") and s1.wavelengths == (5.405, 5.405)
    for name in ("landsat5", "landsat7"):
        sensor = get_sensor(name)
        assert sensor.band_names == ("B1", "B2", "B3", "B4", "B5", "B6", "B7")
        assert sensor.band("B6").wavelength == 11.45
        assert (sensor.scale, sensor.offset) == (2.75e-05, -0.2)
        thermal = sensor.band_names.index("B6")
        assert sensor.band_scales[thermal] == 0.00341802 and sensor.band_offsets[thermal] == 149.0
        assert sensor.band_scales[0] == 2.75e-05 and sensor.band_offsets[0] == -0.2
        assert get_sensor(f"{name}_dn").scale == 1.0
    l8 = get_sensor("landsat8")
    assert l8.band_names == ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B10", "B11")
    assert l8.band("B10").gsd == 100 and l8.band("B4").gsd == 30
    assert get_sensor("rgb").wavelengths == (0.665, 0.56, 0.49)
    names = ("gaofen1_wfv", "gaofen1_pms", "gaofen2_pms", "naip")
    gsd = {name: get_sensor(name).bands[0].gsd for name in names}
    assert gsd == {"gaofen1_wfv": 16, "gaofen1_pms": 8, "gaofen2_pms": 4, "naip": 0.6}
    assert get_sensor("planetscope8").band_names == (
        "coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir",
    )


# ---------------------------------------------------------------- lookup


def test_sensor_lookup_by_alias_is_case_and_separator_insensitive():
    for name in ("Sentinel-2-L1C", "S2L1C", "s2_l1c", "SENTINEL2_L1C"):
        assert get_sensor(name).name == "sentinel2_l1c"
    assert get_sensor("LC08").name == "landsat8"
    assert get_sensor("Gaofen-2").name == "gaofen2_pms"


def test_unknown_sensor_lists_known_ones():
    with pytest.raises(LandSegError) as err:
        get_sensor("sentinel3_olci")
    message = str(err.value)
    assert "sentinel3_olci" in message and "\n" not in message
    assert all(s.name in message for s in list_sensors())


def test_band_lookup_by_name_alias_and_common_name():
    s2 = get_sensor("sentinel2_l1c")
    assert s2.band("B04") is s2.band("b4") is s2.band("RED") is s2.band("b_04")
    assert s2.band("B8").name == "B08"
    assert s2.band("nir08").name == "B8A"
    assert s2.band("b8a").name == "B8A"
    assert s2.band("swir16").name == "B11"
    assert s2.band("Coastal Aerosol").name == "B01"
    l8 = get_sensor("landsat8")
    assert l8.band("sr_b4").name == "B4" and l8.band("nir").name == "B5"


def test_unknown_band_lists_valid_bands():
    l2a = get_sensor("sentinel2_l2a")
    with pytest.raises(LandSegError) as err:
        l2a.band("B10")
    message = str(err.value)
    assert "'B10'" in message and "sentinel2_l2a" in message
    assert all(name in message for name in l2a.band_names)


def test_select_keeps_order_and_rejects_duplicates():
    s2 = get_sensor("sentinel2_l1c")
    assert [b.name for b in s2.select(["red", "B03", "b2", "B8A"])] == ["B04", "B03", "B02", "B8A"]
    with pytest.raises(LandSegError, match="twice"):
        s2.select(["B04", "red"])
    with pytest.raises(LandSegError, match="unknown band"):
        s2.select(["B04", "B13"])


def test_sensor_copy_with_other_scaling_keeps_lookup():
    raw_gf2 = dataclasses.replace(get_sensor("gaofen2_pms"), name="gf2_10bit", scale=0.25)
    assert raw_gf2.scale == 0.25 and raw_gf2.band("nir").name == "B4"
    assert get_sensor("gaofen2_pms").scale == 1.0


def test_ambiguous_band_names_are_rejected_when_building_a_sensor():
    red = get_sensor("rgb").band("red")
    clash = dataclasses.replace(red, name="crimson", aliases=("red",))
    with pytest.raises(ValueError, match="'red'"):
        Sensor("bad", "Bad", (red, clash), 1.0, 0.0)


# ---------------------------------------------------------------- file names


def test_find_band_in_real_s2_jp2_names(s2_scene: Path):
    _, names = _read(s2_scene)
    s2 = get_sensor("sentinel2_l1c")
    found = [s2.find_band_in_filename(f"IMG_DATA/{S2_TILE_PREFIX}{name}.jp2") for name in names]
    assert [b.name for b in found] == list(names)
    assert len({b.name for b in found}) == 13
    assert s2.find_band_in_filename(f"{S2_TILE_PREFIX}B8A.jp2").name == "B8A"
    assert s2.find_band_in_filename(f"{S2_TILE_PREFIX}B08.jp2").name == "B08"
    for name in ("B10", "B11", "B12"):
        assert s2.find_band_in_filename(f"{S2_TILE_PREFIX}{name}.jp2").name == name
    l2a = get_sensor("sentinel2_l2a")
    assert l2a.find_band_in_filename("T33UUU_20200101T102101_B04_10m.jp2").name == "B04"
    assert l2a.find_band_in_filename("T33UUU_20200101T102101_SCL_20m.jp2") is None
    assert l2a.find_band_in_filename("MSK_CLDPRB_20m.jp2") is None


def test_find_band_in_real_landsat5_names(shared_data: Path):
    sidecar = shared_data / "landsat5_tm_19880814_para" / "landsat5_tm_7band_30m.bands.json"
    paths = [p for p in json.loads(sidecar.read_text())["source"]["paths"] if p.endswith(".TIF")]
    tm = get_sensor("landsat5_dn")
    assert [tm.find_band_in_filename(p).name for p in paths] == list(tm.band_names)
    assert tm.find_band_in_filename("LT52240631988227CUB02_MTL.txt") is None


def test_find_band_in_landsat_collection2_names():
    l8 = get_sensor("landsat8")
    stem = "LC08_L2SP_044034_20210508_20210517_02_T1_"
    assert l8.find_band_in_filename(stem + "SR_B4.TIF").name == "B4"
    assert l8.find_band_in_filename(stem + "SR_B1.TIF").name == "B1"
    assert l8.find_band_in_filename(stem + "ST_B10.TIF").name == "B10"
    assert l8.find_band_in_filename(stem + "QA_PIXEL.TIF") is None
    le7 = get_sensor("landsat7_dn")
    thermal = "LE07_L1TP_016035_20020612_20200916_02_T1_B6_VCID_1.TIF"
    assert le7.find_band_in_filename(thermal).name == "B6"
    assert get_sensor("planetscope8").find_band_in_filename("scene_green_i.tif").name == "green_i"


# ---------------------------------------------------------------- matching


def test_match_real_scene_descriptions(s2_scene: Path, shared_data: Path):
    _, names = _read(s2_scene)
    assert match_sensor_by_band_names(names).name == "sentinel2_l1c"
    ben = shared_data / "bigearthnet_v2_mock"
    s2_patch = sorted((ben / "s2").glob("*.tif"))[0]
    s1_patch = sorted((ben / "s1").glob("*.tif"))[0]
    assert match_sensor_by_band_names(_read(s2_patch)[1]).name == "sentinel2_l2a"
    assert match_sensor_by_band_names(_read(s1_patch)[1]).name == "sentinel1_grd"


def test_match_prefers_fewest_bands_and_refuses_ties():
    assert match_sensor_by_band_names(["red", "green", "blue"]).name == "rgb"
    assert match_sensor_by_band_names(["B02", "B03", "B04", "B10"]).name == "sentinel2_l1c"
    tm_or_etm = ["B1", "B2", "B3", "B4", "B5", "B6", "B7"]
    assert match_sensor_by_band_names(tm_or_etm) is None
    assert match_sensor_by_band_names(["blue", "green", "red", "nir"]) is None
    assert match_sensor_by_band_names(["B02", None]) is None
    assert match_sensor_by_band_names(["not_a_band"]) is None
    assert match_sensor_by_band_names([]) is None


# ---------------------------------------------------------------- real-scene statistics


def test_registry_agrees_with_real_scene_sidecar(s2_scene: Path):
    sidecar = json.loads(s2_scene.with_suffix(".bands.json").read_text())
    s2 = get_sensor("sentinel2_l1c")
    for entry in sidecar["bands"]:
        band = s2.band(entry["name"])
        assert band.wavelength == pytest.approx(entry["center_wavelength_um"], abs=0.005)
        assert band.gsd == entry["native_gsd_m"]


def test_l1c_statistics_fit_the_real_scene(s2_scene: Path):
    medians = _normalised_medians(get_sensor("sentinel2_l1c"), s2_scene)
    assert len(medians) == 13
    assert all(abs(m) < 2 for m in medians.values()), medians


def test_other_statistics_fit_real_scenes(shared_data: Path):
    ben = shared_data / "bigearthnet_v2_mock"
    cases = [
        ("sentinel2_l2a", sorted((ben / "s2").glob("*.tif"))[0], 0),
        ("sentinel1_grd", sorted((ben / "s1").glob("*.tif"))[0], None),
        ("sentinel2_l2a_pb04", shared_data / "s2_l2a_porto_trombetas" / "s2_l2a_12band_10m.tif", 0),
        ("landsat5_dn", shared_data / "landsat5_tm_19880814_para" / "landsat5_tm_7band_30m.tif", 0),
    ]
    for sensor, path, nodata in cases:
        medians = _normalised_medians(get_sensor(sensor), path, nodata)
        assert all(abs(m) < 2 for m in medians.values()), (sensor, medians)


def test_pb04_offset_makes_river_water_dark(shared_data: Path):
    stack, names = _read(shared_data / "s2_l2a_porto_trombetas" / "s2_l2a_12band_10m.tif")
    pb04 = get_sensor("sentinel2_l2a_pb04")
    nir = stack[list(names).index("B08")]
    darkest = np.percentile(nir[nir > 0], 1) * pb04.scale + pb04.offset
    assert -0.01 < darkest < 0.05
