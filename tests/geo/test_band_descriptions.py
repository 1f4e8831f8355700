"""Band descriptions such as "band 1 reflectance" resolve to bands; a stack of them maps without --wavelengths."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsegmenter.cli import main
from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene
from landsegmenter.geo.sensors import get_sensor, list_sensors, match_sensor_by_band_names

LEDAPS_BANDS = ["B1", "B2", "B3", "B4", "B5", "B7"]
TM_WAVELENGTHS = [0.485, 0.56, 0.66, 0.83, 1.65, 2.215]
FILL = -9999


@pytest.mark.parametrize("description, band", [
    ("band 1 reflectance", "B1"),
    ("Band 4 (NIR) reflectance", "B4"),
    ("sr_band3", "B3"),
    ("B4_reflectance", "B4"),
    ("toa_band2", "B2"),
    ("band 6 temperature", "B6"),
    ("bt_band6", "B6"),
    ("SR_B5", "B5"),
    ("red reflectance", "B3"),
    ("Band 07", "B7"),
    ("surface reflectance (swir2)", "B7"),
])
def test_landsat_descriptions_name_bands_by_number_or_common_name(description, band):
    assert get_sensor("landsat5_c1_sr").band_for_description(description).name == band


def test_descriptions_use_the_sensor_band_numbering():
    s2 = get_sensor("sentinel2_l2a")
    assert s2.band_for_description("band 8A reflectance").name == "B8A"
    assert s2.band_for_description("band 4 reflectance").name == "B04"
    l8 = get_sensor("landsat8_c1_sr")
    assert l8.band_for_description("band 5 reflectance").name == "B5"  # OLI band 5 is NIR
    assert l8.band_for_description("bt_band10").name == "B10"
    assert get_sensor("planetscope4").band_for_description("band 4 reflectance").name == "nir"
    for text in ("cloud mask", "band 9 reflectance", "pixel_qa", "reflectance"):
        assert get_sensor("landsat5_c1_sr").band_for_description(text) is None, text


def test_a_number_and_a_name_that_disagree_are_refused():
    with pytest.raises(LandSegError, match="names two bands of sensor 'landsat8_c1_sr': B4 and B5"):
        get_sensor("landsat8_c1_sr").band_for_description("Band 4 (NIR) reflectance")


def test_numbered_descriptions_alone_do_not_pick_a_sensor():
    # Landsat 5 and 7 both have bands 1-7: a tie, so --sensor is needed.
    assert match_sensor_by_band_names([f"band {n} reflectance" for n in range(1, 8)]) is None
    assert match_sensor_by_band_names(["B02_reflectance", "B8A_reflectance", "B11_reflectance"]).name == "sentinel2_l2a"


def test_new_entries_are_registered_variants():
    entries = [("landsat5_c1_sr", "landsat5", 0.0), ("landsat7_c1_sr", "landsat7", 0.0),
               ("landsat8_c1_sr", "landsat8", 0.0), ("sentinel2_l1c_pb04", "sentinel2_l1c", -0.1)]
    for name, base, offset in entries:
        entry = get_sensor(name)
        assert entry.variant_of == base and entry.units == "reflectance"
        assert (entry.scale, entry.offset) == (1e-4, offset)
    for alias, name in [("landsat4_c1_sr", "landsat5_c1_sr"), ("landsat5_sr", "landsat5_c1_sr"),
                        ("landsat7_ledaps", "landsat7_c1_sr"), ("lasrc", "landsat8_c1_sr")]:
        assert get_sensor(alias).name == name
    assert {get_sensor(n).nodata for n in ("landsat5_c1_sr", "landsat7_c1_sr", "landsat8_c1_sr")} == {FILL}
    thermal = get_sensor("landsat5_c1_sr").band("bt_band6")
    assert (thermal.scale, thermal.mean) == (0.1, 293.0)


def test_sentinel2_pb04_offsets():
    for name in ("sentinel2_l1c_pb04", "sentinel2_l2a_pb04"):
        entry = get_sensor(name)
        for band_scale, band_offset in zip(entry.band_scales, entry.band_offsets):
            assert 1000 * band_scale + band_offset == pytest.approx(0.0, abs=1e-12)
            assert 11000 * band_scale + band_offset == pytest.approx(1.0)


def test_l1c_pb04_scene_subtracts_the_offset(s2_scene):
    with rasterio.open(s2_scene) as src:
        dn = src.read(4, window=Window(0, 0, 40, 30)).astype(np.float64)
    with Scene(str(s2_scene), sensor="sentinel2_l1c_pb04", bands=["B04"]) as scene:
        values, _ = scene.read(Window(0, 0, 40, 30))
    np.testing.assert_allclose(values[0], (dn - 1000) / 10000, atol=1e-6)


def test_sensors_command_lists_the_new_entries(capsys):
    assert main(["sensors"]) == 0
    out = capsys.readouterr().out
    for name in ("landsat5_c1_sr", "landsat7_c1_sr", "landsat8_c1_sr", "landsat5_toa", "landsat7_toa",
                 "landsat8_toa", "sentinel2_l1c_pb04", "sentinel2_l2a_pb04"):
        assert f"\n{name} " in f"\n{out}", name
    assert out.count("\n") == 2 * len(list_sensors())


@pytest.fixture()
def ledaps_stack(shared_data: Path, tmp_path: Path) -> Path:
    """A LEDAPS-style int16 surface-reflectance stack from the real Para TM pixels (TOA of the
    scene's own MTL, x 10000), bands 1-5 and 7 described as "band N reflectance", no declared
    nodata and the first row filled with -9999."""
    source = shared_data / "landsat5_tm_19880814_para" / "landsat5_tm_7band_30m.tif"
    with Scene(str(source), sensor="landsat5_toa", bands=LEDAPS_BANDS) as scene:
        toa, _ = scene.read(Window(0, 0, scene.width, scene.height))
        profile = dict(driver="GTiff", width=scene.width, height=scene.height, count=len(LEDAPS_BANDS),
                       dtype="int16", crs=scene.grid.crs, transform=scene.grid.transform)
    sr = np.round(np.clip(toa, -0.2, 1.6) * 10000).astype(np.int16)
    sr[:, 0, :] = FILL
    path = tmp_path / "LT05_L1TP_224063_19880814_20170207_01_T1_sr.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(sr)
        for i, band in enumerate(LEDAPS_BANDS, start=1):
            dst.set_band_description(i, f"band {band[1:]} reflectance")
    return path


def test_ledaps_stack_with_band_descriptions_maps_without_wavelengths(ledaps_stack, tmp_path):
    out = tmp_path / "map"
    args = ["map", str(ledaps_stack), "--classes", "water,forest,built-up", "--sensor", "landsat5_c1_sr",
            "--model", "spectral-rule", "-o", str(out), "--quiet", "--no-preview"]
    assert main(args) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["sensor"] == "landsat5_c1_sr" and run["bands"] == LEDAPS_BANDS
    assert run["wavelengths_um"] == pytest.approx(TM_WAVELENGTHS)
    with rasterio.open(out / "classes.tif") as src:
        classes = src.read(1)
        nodata = src.nodata
    assert (classes[0] == nodata).all() and (classes[1:] != nodata).all()  # the -9999 fill row


def test_ledaps_stack_reads_as_reflectance(ledaps_stack):
    with Scene(str(ledaps_stack), sensor="landsat5_c1_sr") as scene:
        assert scene.band_names == LEDAPS_BANDS and scene.wavelengths == pytest.approx(TM_WAVELENGTHS)
        values, valid = scene.read(Window(0, 0, scene.width, scene.height))
    with rasterio.open(ledaps_stack) as src:
        raw = src.read().astype(np.float64)
    assert not valid[0].any() and valid[1:].all()
    np.testing.assert_allclose(values[:, 1:], raw[:, 1:] * 1e-4, atol=1e-6)
