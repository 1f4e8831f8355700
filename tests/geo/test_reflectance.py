"""One global reflectance normalisation: the table, which bands it covers, and the fallbacks."""
import numpy as np
import pytest
import rasterio

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene
from landsegmenter.geo.reflectance import is_reflective, knots, reflectance_stats


def test_table_is_interpolated_linearly_and_clamped():
    wl, mean, std = knots()
    got_mean, got_std = reflectance_stats([wl[0], wl[2], (wl[2] + wl[3]) / 2, 0.1, 5.0])
    assert got_mean[1] == pytest.approx(mean[2], rel=1e-6) and got_std[1] == pytest.approx(std[2], rel=1e-6)
    assert got_mean[2] == pytest.approx((mean[2] + mean[3]) / 2, rel=1e-5)
    assert got_mean[3] == pytest.approx(mean[0], rel=1e-6)  # below the first knot: clamped
    assert got_mean[4] == pytest.approx(mean[-1], rel=1e-6)  # beyond the last knot: clamped
    assert (std > 0).all() and (mean > 0).all() and (mean < 0.5).all()


@pytest.mark.parametrize("units, wavelength, expected", [
    ("reflectance", 0.665, True), ("reflectance", 2.19, True),
    ("reflectance", 0.945, False),  # water vapour absorption band
    ("reflectance", 1.375, False),  # cirrus
    ("reflectance", 11.45, False),  # thermal
    ("dB", 5.405, False), ("DN", 0.665, False), (None, 0.665, False),
])
def test_which_bands_are_reflective(units, wavelength, expected):
    assert is_reflective(units, wavelength) is expected


def test_sentinel2_l1c_takes_global_statistics_except_absorption_bands(s2_scene, capsys):
    with Scene(str(s2_scene), sensor="sentinel2_l1c") as scene:
        mean, std = scene.statistics("reflectance")
        glob_mean, glob_std = reflectance_stats(scene.wavelengths)
        sensor_mean = np.array([b.mean for b in scene.bands], np.float32)
        names = scene.band_names
    covered = [n not in ("B09", "B10") for n in names]
    np.testing.assert_allclose(mean[covered], glob_mean[covered], rtol=1e-6)
    np.testing.assert_allclose(std[covered], glob_std[covered], rtol=1e-6)
    absorption = [not c for c in covered]
    np.testing.assert_allclose(mean[absorption], sensor_mean[absorption], rtol=1e-6)
    assert "B09, B10 (absorption band) are not normalised as surface reflectance" in capsys.readouterr().err


def test_dn_bands_keep_their_statistics_and_are_named(shared_data, capsys):
    path = shared_data / "landsat5_tm_19880814_para" / "landsat5_tm_7band_30m.tif"
    with Scene(str(path), sensor="landsat5_dn") as scene:
        mean, _ = scene.statistics("reflectance")
        expected = np.array([b.mean for b in scene.bands], np.float32)
    np.testing.assert_allclose(mean, expected, rtol=1e-6)
    assert "(DN)" in capsys.readouterr().err


def test_fallback_to_scene_statistics_is_said(s2_scene, tmp_path, capsys):
    with rasterio.open(s2_scene) as src:
        data, profile = src.read([2, 3, 4, 8], window=((0, 64), (0, 64))), src.profile
    profile.update(count=4, width=64, height=64)
    path = tmp_path / "anon.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    with Scene(str(path), wavelengths=[0.49, 0.56, 0.665, 0.842]) as scene:
        mean, _ = scene.statistics("auto")
    np.testing.assert_allclose(mean, data.reshape(4, -1).mean(axis=1), rtol=1e-3)
    assert "statistics sampled from the scene" in capsys.readouterr().err


def test_unknown_mode_is_refused(s2_scene):
    with Scene(str(s2_scene), sensor="sentinel2_l1c") as scene, pytest.raises(LandSegError, match="normalisation"):
        scene.statistics("global")
