"""Reading band stacks from real rasters: names, wavelengths, masks, scaling, mixed resolutions."""
import zipfile

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene

WINDOW = Window(100, 200, 300, 250)


def _original(path, names):
    with rasterio.open(path) as src:
        idx = [src.descriptions.index(n) + 1 for n in names]
        return src.read(idx, window=WINDOW).astype(np.float32)


def _write_band(src, band, path, factor, driver="GTiff"):
    """One band of the real scene at ``factor`` x coarser resolution (exact: the kit upsampled by replication)."""
    data = src.read(band)[::factor, ::factor]
    profile = dict(driver=driver, width=data.shape[1], height=data.shape[0], count=1, dtype=data.dtype,
                   crs=src.crs, transform=src.transform @ rasterio.Affine.scale(factor))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def test_single_file_bands_by_name_with_sensor_scaling(s2_scene):
    with Scene(s2_scene, bands=["B04", "B08", "B11"]) as scene:
        assert scene.sensor.name == "sentinel2_l1c"  # detected from band descriptions
        assert scene.wavelengths == pytest.approx([0.665, 0.842, 1.61], abs=0.01)
        data, valid = scene.read(WINDOW)
    assert data.shape == (3, 250, 300) and valid.all()
    assert np.allclose(data, _original(s2_scene, ["B04", "B08", "B11"]) * 1e-4)


def test_mixed_resolution_files_are_resampled_onto_the_finest_grid(s2_scene, tmp_path):
    with rasterio.open(s2_scene) as src:
        _write_band(src, 2, tmp_path / "T33UUU_B02.tif", 1)
        _write_band(src, 5, tmp_path / "T33UUU_B05.tif", 2)
        _write_band(src, 1, tmp_path / "T33UUU_B01.jp2", 6, driver="JP2OpenJPEG")
    paths = [str(tmp_path / n) for n in ("T33UUU_B01.jp2", "T33UUU_B02.tif", "T33UUU_B05.tif")]
    with Scene(paths, sensor="sentinel2_l1c", resampling=Resampling.nearest) as scene:
        assert scene.band_names == ["B01", "B02", "B05"]
        assert (scene.width, scene.height) == (1536, 768)
        data, _ = scene.read(WINDOW)
    expected = _original(s2_scene, ["B01", "B02", "B05"]) * 1e-4
    assert np.allclose(data, expected, atol=1e-3)  # JP2 is lossless at defaults but allow rounding


def test_nodata_nan_and_file_scale_offset(s2_scene, tmp_path):
    with rasterio.open(s2_scene) as src:
        data = src.read([4, 8]).astype(np.float32) * 1e-4
        profile = src.profile | dict(count=2, dtype="float32", nodata=-1.0, predictor=1)
    data[0, 250:260, 150:160] = np.nan
    raw = data * 2.0 + 5.0
    raw[1, 300:310, 120:130] = -1.0  # nodata
    path = tmp_path / "scaled.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(raw)
        dst.scales = (0.5, 0.5)
        dst.offsets = (-2.5, -2.5)
        dst.descriptions = ("B04", "B08")
    with Scene(str(path), sensor="sentinel2_l1c") as scene:
        values, valid = scene.read(WINDOW)
    assert not valid[50:60, 50:60].any() and not valid[100:110, 20:30].any()
    assert valid.sum() == 250 * 300 - 200
    good = valid & ~np.isnan(data[0, 200:450, 100:400])
    assert np.allclose(values[0][good], data[0, 200:450, 100:400][good], atol=1e-5)


def test_any_gdal_path_works_here_a_zip_archive(s2_scene, tmp_path):
    archive = tmp_path / "scene.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(s2_scene, "scene.tif")
    with Scene(f"/vsizip/{archive}/scene.tif", bands=["B03"]) as scene:
        data, _ = scene.read(WINDOW)
    assert np.allclose(data[0], _original(s2_scene, ["B03"])[0] * 1e-4)


def test_explicit_wavelengths_replace_the_sensor(s2_scene):
    with Scene(s2_scene, bands=["B02", "B03", "B04"], wavelengths=[0.49, 0.56, 0.665]) as scene:
        assert scene.sensor is None
        assert scene.wavelengths == [0.49, 0.56, 0.665]


def test_sample_statistics_match_the_full_scene(s2_scene):
    with Scene(s2_scene, bands=["B08"]) as scene:
        mean, std = scene.sample_statistics(max_windows=16, size=192)
    full = _full(s2_scene, 8) * 1e-4
    assert mean[0] == pytest.approx(full.mean(), rel=0.15)
    assert std[0] == pytest.approx(full.std(), rel=0.25)


def _full(path, band):
    with rasterio.open(path) as src:
        return src.read(band).astype(np.float64)


def test_unknown_band_lists_the_available_ones(s2_scene):
    with pytest.raises(LandSegError, match="unknown band 'B13'.*B01, B02"):
        Scene(s2_scene, bands=["B13"])


def test_internal_mask_band_is_honoured(s2_scene, tmp_path):
    with rasterio.open(s2_scene) as src:
        data = src.read([3, 4, 8])
        profile = src.profile | dict(count=3, nodata=None)
    mask = np.full(data.shape[1:], 255, np.uint8)
    mask[210:220, 110:130] = 0
    path = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
            dst.write_mask(mask)
            dst.descriptions = ("B03", "B04", "B08")
    assert not (tmp_path / "masked.tif.msk").exists()
    with Scene(str(path)) as scene:
        _, valid = scene.read(WINDOW)
    assert not valid[10:20, 10:30].any() and valid.sum() == 250 * 300 - 200
