"""Putting real label products onto imagery grids: areas, codes, resolution ratios, bad input."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.area import row_pixel_areas_ha
from landsegmenter.geo.raster import Grid, Scene
from landsegmenter.las.align import CloudMask, RasterLabels, time_gap_days
from landsegmenter.las.grid import SampleGrid, sample_grid
from landsegmenter.las.vector import VectorLabels
from landsegmenter.taxonomy.legends import from_sidecar_json, get_legend, legend_from_dict

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
WORLDCOVER = "worldcover_n00e006/esa_worldcover_2021_v200_n00e006_saotome.tif"


def _geographic_areas_ha(path) -> np.ndarray:
    """Hectares per native code with exact lat/lon cell areas."""
    areas = np.zeros(256)
    with rasterio.open(path) as src:
        grid = Grid(src.width, src.height, src.crs, src.transform)
        for row in range(0, src.height, 1500):
            codes = src.read(1, window=Window(0, row, src.width, min(1500, src.height - row)))
            per_row = row_pixel_areas_ha(grid, row, row + codes.shape[0])
            areas += np.bincount(codes.ravel(), weights=np.repeat(per_row, codes.shape[1]), minlength=256)
    return areas


def _utm_grid(path) -> Grid:
    with rasterio.open(path) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:32632", src.width, src.height, *src.bounds, resolution=10
        )
    return Grid(width, height, rasterio.crs.CRS.from_epsg(32632), transform)


def _utm_areas_ha(labels: RasterLabels, grid: Grid, legend) -> np.ndarray:
    counts = np.zeros(len(legend) + 1)
    for row in range(0, grid.height, 1024):
        index = labels.read(Window(0, row, grid.width, min(1024, grid.height - row)))
        counts += np.bincount(np.minimum(index, len(legend)).ravel(), minlength=len(legend) + 1)
    return counts[: len(legend)] * 100 / 1e4  # 10 m x 10 m pixels


@pytest.fixture(scope="module")
def worldcover_areas(shared_data):
    path = shared_data / WORLDCOVER
    return path, _geographic_areas_ha(path), _utm_grid(path)


@pytest.mark.parametrize("resampling", ["auto", "nearest"])
def test_worldcover_to_utm_keeps_class_areas_within_one_percent(worldcover_areas, resampling):
    path, geographic, utm = worldcover_areas
    legend = get_legend("esa_worldcover_2021")
    labels = RasterLabels(str(path), legend, SampleGrid.from_grid(utm), resampling=resampling)
    assert labels.raster.resampling == Resampling.nearest  # 9.3 m pixels onto 10 m: no coarsening, no mode
    projected = _utm_areas_ha(labels, utm, legend)
    labels.close()
    assert not labels.unknown  # every code of the product is in the legend or nodata
    checked = 0
    for i, cls in enumerate(legend.classes):
        if geographic[cls.code] >= 10:  # >= 10 ha; smaller classes are a few dozen pixels
            assert projected[i] == pytest.approx(geographic[cls.code], rel=0.01), cls.name
            checked += 1
    assert checked >= 7
    total_geo = sum(geographic[c] for c in legend.codes)
    assert projected.sum() == pytest.approx(total_geo, rel=0.005)  # nodata (0) stays out of every class


def test_worldcover_mode_keeps_dominant_classes(worldcover_areas):
    path, geographic, utm = worldcover_areas
    legend = get_legend("esa_worldcover_2021")
    with_mode = RasterLabels(str(path), legend, SampleGrid.from_grid(utm), resampling="mode")
    projected = _utm_areas_ha(with_mode, utm, legend)
    with_mode.close()
    for code in (10, 80):  # tree cover and water: 89 % of the crop
        assert projected[legend.index_of(code)] == pytest.approx(geographic[code], rel=0.01)


def test_codes_outside_the_legend_are_counted_not_dropped(s2_scene, shared_data):
    path = shared_data / "s2_t33uuu_20170216" / "dynamic_world_label.tif"
    dw = get_legend("dynamic_world")
    without_snow = legend_from_dict(
        {
            "key": "dw_no_snow",
            "nodata": [255],
            "classes": [{"code": c.code, "name": c.name, "color": list(c.color)} for c in dw.classes if c.code != 8],
        },
        "test",
    )
    with Scene(str(s2_scene)) as scene:
        grid = sample_grid(scene.grid, None, None)
    with rasterio.open(path) as src:
        raw = src.read(1)
    labels = RasterLabels(str(path), without_snow, grid)
    index = labels.read(Window(0, 0, grid.width, grid.height))
    assert labels.unknown == {"8": int((raw == 8).sum())}
    assert int((raw == 8).sum()) > 10_000
    assert (index[raw == 8] == 255).all()
    assert (index[raw != 8] == raw[raw != 8]).all()
    strict = RasterLabels(str(path), without_snow, grid, unknown_codes="error")
    with pytest.raises(
        LandSegError, match=r"pixels have codes that are not classes of legend 'dw_no_snow' \(values: 8\)"
    ):
        strict.read(Window(0, 0, grid.width, grid.height))
    labels.close()
    strict.close()


def test_product_that_does_not_overlap_is_an_error(s2_scene, shared_data):
    with Scene(str(s2_scene)) as scene:
        grid = sample_grid(scene.grid, None, None)
    with pytest.raises(LandSegError, match="does not overlap the imagery"):
        RasterLabels(str(shared_data / WORLDCOVER), get_legend("esa_worldcover_2021"), grid)


def test_missing_crs_is_an_error_when_one_is_needed(s2_scene, shared_data):
    with Scene(str(s2_scene)) as scene:
        georeferenced = sample_grid(scene.grid, None, None)
    no_crs_label = shared_data / "s2_t33uub_20170527" / "dynamic_world_label.tif"
    with pytest.raises(LandSegError, match="has no CRS but the imagery has one"):
        RasterLabels(str(no_crs_label), get_legend("dynamic_world"), georeferenced)
    with Scene(str(shared_data / "s2_t33uub_20170527" / "s2_l1c_12band_10m.tif")) as scene:
        with pytest.raises(LandSegError, match="give its pixel size in metres"):
            sample_grid(scene.grid, None, None)
        pixel_grid = sample_grid(scene.grid, 10, None)
    with pytest.raises(LandSegError, match="the imagery has no CRS but"):
        RasterLabels(str(shared_data / "s2_t33uuu_20170216" / "dynamic_world_label.tif"), get_legend("dw"), pixel_grid)
    polygons = shared_data / "landsat5_tm_19880814_para" / "training_polygons.geojson"
    with pytest.raises(LandSegError, match="polygon labels need georeferenced imagery"):
        VectorLabels(str(polygons), get_legend("dw"), pixel_grid, field="class")


def test_coarser_label_without_georeferencing_is_upsampled_by_its_ratio(shared_data, tmp_path):
    folder = shared_data / "s2_t33uub_20170527"
    with rasterio.open(folder / "dynamic_world_label.tif") as src:
        full = src.read(1)
        profile = src.profile
    coarse = full[::2, ::2]
    profile.update(width=300, height=300)
    path = tmp_path / "coarse_label.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(coarse, 1)
    with Scene(str(folder / "s2_l1c_12band_10m.tif")) as scene:
        grid = sample_grid(scene.grid, 10, None)
    labels = RasterLabels(str(path), get_legend("dynamic_world"), grid)
    aligned = labels.read(Window(0, 0, 600, 600))
    assert labels.raster.resampling == Resampling.nearest
    assert np.array_equal(aligned, np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1))


def test_finer_label_onto_coarser_grid_uses_mode(shared_data):
    folder = shared_data / "s2_t33uub_20170527"
    with rasterio.open(folder / "dynamic_world_label.tif") as src:
        full = src.read(1)
    with Scene(str(folder / "s2_l1c_12band_10m.tif")) as scene:
        grid = sample_grid(scene.grid, 10, 20)  # 20 m patches from 10 m imagery
    assert (grid.width, grid.height) == (300, 300)
    labels = RasterLabels(str(folder / "dynamic_world_label.tif"), get_legend("dynamic_world"), grid)
    assert labels.raster.resampling == Resampling.mode
    aligned = labels.read(Window(0, 0, 300, 300))
    blocks = full.reshape(300, 2, 300, 2).transpose(0, 2, 1, 3).reshape(300, 300, 4)
    uniform = (blocks == blocks[..., :1]).all(axis=2)
    assert np.array_equal(aligned[uniform], blocks[..., 0][uniform])
    three_of_four = (blocks == np.take_along_axis(blocks, np.zeros((300, 300, 1), int), 2)).sum(axis=2) == 3
    assert np.array_equal(aligned[three_of_four], blocks[..., 0][three_of_four])


def test_georeferenced_label_at_half_resolution(s2_scene, shared_data, tmp_path):
    with rasterio.open(shared_data / "s2_t33uuu_20170216" / "dynamic_world_label.tif") as src:
        coarse = src.read(1)[::2, ::2]
        profile = src.profile
    profile.update(width=coarse.shape[1], height=coarse.shape[0], transform=profile["transform"] @ Affine.scale(2))
    path = tmp_path / "dw_20m.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(coarse, 1)
    with Scene(str(s2_scene)) as scene:
        grid = sample_grid(scene.grid, None, None)
    aligned = RasterLabels(str(path), get_legend("dynamic_world"), grid).read(Window(0, 0, 1536, 768))
    assert np.array_equal(aligned, np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1))


def test_rasters_without_georeferencing_and_other_shapes_are_refused(shared_data):
    with Scene(str(shared_data / "s2_t33uub_20170527" / "s2_l1c_12band_10m.tif")) as scene:
        grid = sample_grid(scene.grid, 10, None)
    betsiboka = shared_data / "s2_betsiboka_madagascar" / "dynamic_world_label.tif"  # 512 x 856
    with pytest.raises(LandSegError, match="different shapes"):
        RasterLabels(str(betsiboka), get_legend("dynamic_world"), grid)


def test_cloud_mask_on_its_scene(shared_data):
    folder = shared_data / "s2_betsiboka_madagascar"
    with Scene(str(folder / "s2_l1c_13band.tif")) as scene:
        grid = sample_grid(scene.grid, 100, None)
    clouds = CloudMask(str(folder / "s2cloudless_cloud_mask.tif"), grid, (1,))
    share = clouds.read(Window(0, 0, grid.width, grid.height)).mean()
    clouds.close()
    assert share == pytest.approx(0.456, abs=0.002)  # the kit's documented cloud share


def test_polygons_match_the_kits_rasterisation(shared_data):
    folder = shared_data / "landsat5_tm_19880814_para"
    legend = from_sidecar_json(folder / "training_polygons_label.legend.json")
    with Scene(str(folder / "landsat5_tm_7band_30m.tif"), sensor="landsat5_dn") as scene:
        grid = sample_grid(scene.grid, None, None)
    polygons = VectorLabels(str(folder / "training_polygons.geojson"), legend, grid, field="class")
    burned = polygons.read(Window(0, 0, grid.width, grid.height))
    with rasterio.open(folder / "training_polygons_label.tif") as src:
        kit = src.read(1)
    labelled = (kit != 255) | (burned != 255)
    assert (burned[labelled] == kit[labelled]).mean() > 0.99
    assert not polygons.unknown

    no_water = legend_from_dict(
        {
            "key": "no_water",
            "nodata": [255],
            "classes": [
                {"code": c.code, "name": c.name, "color": list(c.color)} for c in legend.classes if c.name != "water"
            ],
        },
        "test",
    )
    partial = VectorLabels(str(folder / "training_polygons.geojson"), no_water, grid, field="class")
    result = partial.read(Window(0, 0, grid.width, grid.height))
    water = int((kit == legend.index_of(3)).sum())
    assert partial.unknown["water"] == pytest.approx(water, rel=0.02)
    assert (result[kit == 3] == 255).all()


def test_time_gap():
    assert time_gap_days(dt.date(2017, 2, 16), dt.date(2020, 6, 5)) == 1205
    assert time_gap_days(dt.date(2020, 6, 5), dt.date(2017, 2, 16)) == 1205
    assert time_gap_days(None, dt.date(2017, 2, 16)) is None
