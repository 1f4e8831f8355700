"""Landsat DN -> TOA reflectance: published coefficients, MTL files (real and written), scene reading."""
from __future__ import annotations

import math
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo import calibration, raster
from landsegmenter.geo.calibration import (
    coefficients_from_mtl,
    earth_sun_distance,
    find_mtl,
    mtl_sun_geometry,
    read_mtl,
    toa_coefficients,
)
from landsegmenter.geo.raster import Scene
from landsegmenter.geo.sensors import get_sensor

PARA = "landsat5_tm_19880814_para"
PARA_MTL = "LT52240631988227CUB02_MTL.txt"
REFLECTIVE_TM = ["B1", "B2", "B3", "B4", "B5", "B7"]


@pytest.fixture()
def para_dir(shared_data: Path) -> Path:
    return shared_data / PARA


@pytest.fixture(autouse=True)
def _announce_every_mtl(monkeypatch):
    monkeypatch.setattr(raster, "_ANNOUNCED_MTL", set())


def _dn(path: Path, window: Window | None = None) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(window=window).astype(np.float64)


# ------------------------------------------------------------------ published tables
def test_tables_hold_the_published_chander_2009_values():
    # Chander, Markham & Helder (2009), RSE 113:893-903, tables 1 and 2, typed in by hand.
    etm = calibration.DYNAMIC_RANGES["landsat7_etm"]
    assert etm["low"]["B4"] == (-5.1, 241.1) and etm["high"]["B4"] == (-5.1, 157.4)
    assert etm["low"]["B1"] == (-6.2, 293.7) and etm["high"]["B1"] == (-6.2, 191.6)
    assert etm["low"]["B7"] == (-0.35, 16.54) and etm["high"]["B5"] == (-1.0, 31.06)
    tm = calibration.DYNAMIC_RANGES["landsat5_tm"]["fixed"]
    assert tm["B1"] == (-1.52, 193.0) and tm["B2"] == (-2.84, 365.0) and tm["B4"] == (-1.51, 221.0)
    assert tm["B7"] == (-0.15, 16.5)
    assert calibration.ESUN["landsat7_etm"]["B1"] == 1997.0 and calibration.ESUN["landsat7_etm"]["B4"] == 1039.0
    assert calibration.ESUN["landsat5_tm"]["B4"] == 1031.0 and calibration.ESUN["landsat5_tm"]["B7"] == 83.44


def test_toa_reflectance_of_one_dn_computed_by_hand():
    # ETM+ band 4, low gain, DN 100, sun 45 deg, d = 1.0123 AU:
    # L = (241.1 + 5.1) / 254 * (100 - 1) - 5.1 = 90.85984 W m-2 sr-1 um-1
    # rho = pi * 90.85984 * 1.0123^2 / (1039 * sin 45) = 0.398144
    scale, offset = toa_coefficients("landsat7_etm", "B4", "low", sun_elevation=45.0, earth_sun_distance=1.0123)
    assert 100 * scale + offset == pytest.approx(0.398144, abs=1e-6)
    # TM band 3, DN 80, sun 50 deg, 1 AU: L = 265.17 / 254 * 79 - 1.17 = 81.30413, rho = 0.217079
    scale, offset = toa_coefficients("landsat5_tm", "B3")
    assert 80 * scale + offset == pytest.approx(0.217079, abs=1e-6)


def test_thermal_bands_give_radiance_and_oli_uses_its_reflectance_rescaling():
    scale, offset = toa_coefficients("landsat5_tm", "B6")
    assert (1 * scale + offset, 255 * scale + offset) == pytest.approx((1.2378, 15.303))
    scale, offset = toa_coefficients("landsat8_oli", "B4", sun_elevation=40.0)
    assert 10000 * scale + offset == pytest.approx((10000 * 2.0e-5 - 0.1) / math.sin(math.radians(40.0)))
    assert toa_coefficients("landsat8_oli", "B10") == (3.342e-4, 0.1)
    with pytest.raises(LandSegError, match="use low or high"):
        toa_coefficients("landsat7_etm", "B4", "medium")


def test_earth_sun_distance_follows_the_orbit():
    assert earth_sun_distance(date(2021, 1, 4)) == pytest.approx(0.98329, abs=2e-4)  # perihelion
    assert earth_sun_distance(date(2021, 7, 5)) == pytest.approx(1.01671, abs=2e-4)  # aphelion
    assert earth_sun_distance(date(2021, 4, 4)) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("sensor, instrument", [
    ("landsat5_toa", "landsat5_tm"), ("landsat7_toa", "landsat7_etm"), ("landsat8_toa", "landsat8_oli"),
])
def test_registry_defaults_are_the_published_coefficients_at_the_reference_geometry(sensor, instrument):
    entry = get_sensor(sensor)
    assert entry.calibration == instrument and entry.units == "reflectance"
    for band, scale, offset in zip(entry.band_names, entry.band_scales, entry.band_offsets):
        expected = toa_coefficients(instrument, band, "low", sun_elevation=50.0, earth_sun_distance=1.0)
        assert (scale, offset) == pytest.approx(expected, rel=1e-6), band


# ------------------------------------------------------------------ MTL files
def test_real_landsat5_mtl_gives_the_coefficients_its_numbers_imply(para_dir):
    mtl = read_mtl(para_dir / PARA_MTL)
    assert mtl["SPACECRAFT_ID"] == "LANDSAT_5" and mtl["DATE_ACQUIRED"] == "1988-08-14"
    assert "EARTH_SUN_DISTANCE" not in mtl  # a 2014 file: d comes from the date
    elevation, distance = mtl_sun_geometry(mtl)
    assert elevation == 49.75588889 and distance == pytest.approx(1.01285, abs=2e-4)
    # Band 3 by hand from the file: LMIN -1.170, LMAX 264.000, QCAL 1..255, ESUN 1536:
    gain = (264.0 + 1.17) / 254  # 1.043976; the file's RADIANCE_MULT_BAND_3 is 1.044
    bias = -1.17 - gain  # -2.213976; the file's RADIANCE_ADD_BAND_3 is -2.21398
    assert bias == pytest.approx(float(mtl["RADIANCE_ADD_BAND_3"]), abs=1e-5)
    factor = math.pi * distance**2 / (1536.0 * math.sin(math.radians(49.75588889)))
    scale, offset = coefficients_from_mtl(mtl, "landsat5_tm", "B3")
    assert (scale, offset) == pytest.approx((gain * factor, bias * factor), rel=1e-9)
    assert scale == pytest.approx(0.00286974, rel=1e-4)
    # the 1988 acquisition has the pre-1992 band 1 range, not the registry default's 193
    assert coefficients_from_mtl(mtl, "landsat5_tm", "B1")[0] == pytest.approx(
        170.52 / 254 * math.pi * distance**2 / (1983.0 * math.sin(math.radians(elevation))))
    thermal = coefficients_from_mtl(mtl, "landsat5_tm", "B6")
    assert 255 * thermal[0] + thermal[1] == pytest.approx(15.303)  # radiance


def test_landsat5_scene_is_reflectance_with_its_mtl_and_dn_without_calibration(para_dir, capsys):
    tif = para_dir / "landsat5_tm_7band_30m.tif"
    dn = _dn(tif)
    mtl = read_mtl(para_dir / PARA_MTL)
    with Scene(str(tif), sensor="landsat5_toa") as scene:
        toa, valid = scene.read(Window(0, 0, scene.width, scene.height))
    assert "LT52240631988227CUB02_MTL.txt" in capsys.readouterr().err
    assert valid.all()
    for i, band in enumerate(scene.band_names):
        scale, offset = coefficients_from_mtl(mtl, "landsat5_tm", band)
        np.testing.assert_allclose(toa[i], dn[i] * scale + offset, rtol=1e-5, atol=1e-6)
    reflective = toa[[scene.band_names.index(b) for b in REFLECTIVE_TM]]
    low, high = np.percentile(reflective, [0.5, 99.5], axis=(1, 2))
    assert (low > -0.01).all() and (high < 0.6).all()  # DN 1 over water is LMIN, a radiance just below 0
    red, nir = (np.median(toa[scene.band_names.index(b)]) for b in ("B3", "B4"))
    assert 0.15 < nir < 0.45 and nir > 3 * red  # mostly Amazon forest
    with Scene(str(tif), sensor="landsat5_dn") as scene:
        same, _ = scene.read(Window(0, 0, scene.width, scene.height))
    np.testing.assert_array_equal(same, dn)
    assert capsys.readouterr().err == ""


def test_without_an_mtl_the_registry_defaults_apply(para_dir, tmp_path):
    tif = shutil.copy(para_dir / "landsat5_tm_7band_30m.tif", tmp_path / "scene.tif")
    entry = get_sensor("landsat5_toa")
    with Scene(str(tif), sensor="landsat5_toa") as scene:
        toa, _ = scene.read(Window(0, 0, 50, 40))
    expected = _dn(Path(tif), Window(0, 0, 50, 40)) * np.array(entry.band_scales)[:, None, None]
    np.testing.assert_allclose(toa, expected + np.array(entry.band_offsets)[:, None, None], rtol=1e-5, atol=1e-6)


def test_oli_mtl_reflectance_rescaling_in_a_scene(s2_scene, tmp_path):
    # Real 16-bit DN (Sentinel-2 B04 pixels) as an OLI band file, with a Collection-1 style MTL.
    with rasterio.open(s2_scene) as src:
        dn = src.read(4, window=Window(0, 0, 64, 48))
        profile = dict(driver="GTiff", width=64, height=48, count=1, dtype="uint16", crs=src.crs,
                       transform=src.window_transform(Window(0, 0, 64, 48)))
    scene_id = "LC08_L1TP_195028_20200507_20200509_01_T1"
    with rasterio.open(tmp_path / f"{scene_id}_B4.TIF", "w", **profile) as dst:
        dst.write(dn, 1)
    (tmp_path / f"{scene_id}_MTL.txt").write_text(
        'GROUP = L1_METADATA_FILE\n  GROUP = PRODUCT_METADATA\n    SPACECRAFT_ID = "LANDSAT_8"\n'
        "  END_GROUP = PRODUCT_METADATA\n  GROUP = IMAGE_ATTRIBUTES\n    SUN_ELEVATION = 40.00000000\n"
        "    EARTH_SUN_DISTANCE = 1.0087000\n  END_GROUP = IMAGE_ATTRIBUTES\n"
        "  GROUP = RADIOMETRIC_RESCALING\n    RADIANCE_MULT_BAND_4 = 9.8000E-03\n"
        "    RADIANCE_ADD_BAND_4 = -49.00000\n    REFLECTANCE_MULT_BAND_4 = 2.0000E-05\n"
        "    REFLECTANCE_ADD_BAND_4 = -0.100000\n  END_GROUP = RADIOMETRIC_RESCALING\n"
        "END_GROUP = L1_METADATA_FILE\nEND\n")
    (tmp_path / "LC08_L1TP_001001_20200101_20200102_01_T1_MTL.txt").write_text("SUN_ELEVATION = 10.0\n")
    assert find_mtl([str(tmp_path / f"{scene_id}_B4.TIF")]).name == f"{scene_id}_MTL.txt"
    with Scene(str(tmp_path / f"{scene_id}_B4.TIF"), sensor="landsat8_toa") as scene:
        assert scene.band_names == ["B4"] and scene.wavelengths == [0.655]
        toa, _ = scene.read(Window(0, 0, 64, 48))
    expected = (dn * 2.0e-5 - 0.1) / math.sin(math.radians(40.0))
    np.testing.assert_allclose(toa[0], expected, rtol=1e-5, atol=1e-6)
    assert coefficients_from_mtl(read_mtl(tmp_path / f"{scene_id}_MTL.txt"), "landsat8_oli", "B4")[0] == (
        pytest.approx(3.1114477e-05))


def test_pre_2012_mtl_keys(tmp_path):
    path = tmp_path / "L71016035_03520000331_MTL.txt"
    path.write_text('GROUP = L1_METADATA_FILE\n SPACECRAFT_ID = "Landsat7"\n ACQUISITION_DATE = 2000-03-31\n'
                    " SUN_ELEVATION = 50.8\n LMAX_BAND4 = 241.100\n LMIN_BAND4 = -5.100\n QCALMAX_BAND4 = 255.0\n"
                    " QCALMIN_BAND4 = 1.0\n LMAX_BAND61 = 17.040\n LMIN_BAND61 = 0.000\n QCALMAX_BAND61 = 255.0\n"
                    " QCALMIN_BAND61 = 1.0\nEND_GROUP = L1_METADATA_FILE\nEND\n")
    mtl = read_mtl(path)
    expected = toa_coefficients("landsat7_etm", "B4", "low", 50.8, earth_sun_distance(date(2000, 3, 31)))
    assert coefficients_from_mtl(mtl, "landsat7_etm", "B4") == pytest.approx(expected, rel=1e-12)
    assert coefficients_from_mtl(mtl, "landsat7_etm", "B6") == pytest.approx(toa_coefficients("landsat7_etm", "B6"))


def test_bad_mtl_input_is_one_line_naming_file_and_key(para_dir, tmp_path):
    path = tmp_path / "LT05_MTL.txt"
    path.write_text('SPACECRAFT_ID = "LANDSAT_5"\nSUN_ELEVATION = 45.0\nDATE_ACQUIRED = 1990-06-01\n'
                    "RADIANCE_MAXIMUM_BAND_3 = 264.000\nRADIANCE_MINIMUM_BAND_3 = -1.170\n")
    with pytest.raises(LandSegError) as err:
        coefficients_from_mtl(read_mtl(path), "landsat5_tm", "B3", path)
    assert str(err.value) == f"{path} lacks QUANTIZE_CAL_MIN_BAND_3"
    with pytest.raises(LandSegError, match=r"lacks RADIANCE_MAXIMUM_BAND_4, RADIANCE_MULT_BAND_4 and LMAX_BAND4"):
        coefficients_from_mtl(read_mtl(path), "landsat5_tm", "B4", path)
    (tmp_path / "notes_MTL.txt").write_text("hello\n")
    with pytest.raises(LandSegError, match="not a Landsat MTL file"):
        read_mtl(tmp_path / "notes_MTL.txt")
    tif = para_dir / "landsat5_tm_7band_30m.tif"
    with pytest.raises(LandSegError, match="Landsat 5 scene, not Landsat 7"):
        Scene(str(tif), sensor="landsat7_toa")
    with pytest.raises(LandSegError, match="only, not of landsat5_dn"):
        Scene(str(tif), sensor="landsat5_dn", mtl=str(para_dir / PARA_MTL))
