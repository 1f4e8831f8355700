"""Imagery and label products from a local static STAC catalogue built from the real rasters."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import transform_bounds

from landsegmenter.errors import LandSegError
from landsegmenter.las import LASStore, build_las
from landsegmenter.las.manifest import StacQuery
from landsegmenter.las.stac import search_items

T33UUU = "s2_t33uuu_20170216"
UTC = dt.timezone.utc


def _item(item_id: str, path: Path, when: dt.datetime, asset: str) -> pystac.Item:
    with rasterio.open(path) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    geometry = {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }
    item = pystac.Item(item_id, geometry, [west, south, east, north], when, {})
    item.add_asset(asset, pystac.Asset(str(path), media_type=pystac.MediaType.GEOTIFF, roles=["data"]))
    return item


@pytest.fixture(scope="module")
def catalog(shared_data, tmp_path_factory) -> Path:
    """Imagery collection (T33UUU) and a label collection with DW (same day), OSM (2020) and WorldCover (elsewhere)."""
    root = tmp_path_factory.mktemp("stac")
    folder = shared_data / T33UUU
    extent = pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]), pystac.TemporalExtent([[None, None]]))
    imagery = pystac.Collection("sentinel-2-l1c", "Sentinel-2 L1C scenes", extent)
    imagery.add_item(
        _item(
            "S2A_T33UUU_20170216",
            folder / "s2_l1c_13band_10m.tif",
            dt.datetime(2017, 2, 16, 10, 21, tzinfo=UTC),
            "image",
        )
    )
    labels = pystac.Collection("land-cover", "Land-cover products", extent)
    labels.add_item(
        _item("dw_t33uuu_20170216", folder / "dynamic_world_label.tif", dt.datetime(2017, 2, 16, tzinfo=UTC), "label")
    )
    labels.add_item(_item("osm_t33uuu", folder / "osm_landuse_label.tif", dt.datetime(2020, 6, 5, tzinfo=UTC), "label"))
    worldcover = shared_data / "worldcover_n00e006" / "esa_worldcover_2021_v200_n00e006_saotome.tif"
    others = pystac.Collection("worldcover", "ESA WorldCover", extent)
    others.add_item(_item("worldcover_n00e006", worldcover, dt.datetime(2021, 1, 1, tzinfo=UTC), "map"))
    cat = pystac.Catalog("las-test", "LAS test catalogue")
    for collection in (imagery, labels, others):
        cat.add_child(collection)
    cat.normalize_hrefs(str(root / "catalog"))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog" / "catalog.json"


def _subset(catalog: Path, **image_query) -> dict:
    return {
        "imagery": {
            "sensor": "sentinel2_l1c",
            "bands": ["B02", "B03", "B04", "B08"],
            "stac": {"catalog": str(catalog), "collections": ["sentinel-2-l1c"], **image_query},
        },
        "label": {"legend": "dynamic_world", "stac": {"catalog": str(catalog), "collections": ["land-cover"]}},
        "sampling": {"patch_size": 64, "samples_per_scene": 3, "seed": 3},
    }


def test_stac_build_equals_the_file_build(shared_data, catalog, tmp_path, write_manifest):
    build_las(write_manifest({"subsets": {"s2": _subset(catalog)}}), tmp_path / "stac", progress=False)
    folder = shared_data / T33UUU
    files = {
        **_subset(catalog),
        "scenes": [
            {
                "id": "S2A_T33UUU_20170216",
                "image": str(folder / "s2_l1c_13band_10m.tif"),
                "label": str(folder / "dynamic_world_label.tif"),
            }
        ],
    }
    del files["imagery"]["stac"], files["label"]["stac"]
    build_las(write_manifest({"subsets": {"s2": files}}, name="files.yaml"), tmp_path / "files", progress=False)
    from_stac = LASStore.open(tmp_path / "stac").subset("s2")
    from_files = LASStore.open(tmp_path / "files").subset("s2")
    assert from_stac.count == from_files.count == 3
    for i in range(3):
        assert from_stac.metadata(i)["sample_id"] == from_files.metadata(i)["sample_id"]
        for a, b in zip(from_stac.read(i), from_files.read(i)):
            assert np.array_equal(a, b)
    scene = from_stac.scenes[0]
    assert scene["label"].endswith("dynamic_world_label.tif")  # the overlapping label item closest in time, not OSM
    assert scene["date"] == "2017-02-16" and scene["time_gap_days"] == 0


def test_static_catalogue_filters(catalog):
    assert [i.id for i in search_items(StacQuery(catalog=str(catalog), collections=("land-cover",)))] == [
        "dw_t33uuu_20170216",
        "osm_t33uuu",
    ]
    assert [i.id for i in search_items(StacQuery(catalog=str(catalog), datetime="2020-01-01/.."))] == [
        "osm_t33uuu",
        "worldcover_n00e006",
    ]
    assert [i.id for i in search_items(StacQuery(catalog=str(catalog), bbox=(6.0, 0.0, 7.0, 1.0)))] == [
        "worldcover_n00e006"
    ]
    assert [i.id for i in search_items(StacQuery(catalog=str(catalog), datetime="2017-02-16"))] == [
        "S2A_T33UUU_20170216",
        "dw_t33uuu_20170216",
    ]


def test_no_overlapping_label_item_is_an_error(catalog, tmp_path, write_manifest):
    subset = _subset(catalog)
    subset["label"]["stac"]["collections"] = ["worldcover"]
    with pytest.raises(LandSegError, match="no label item overlaps imagery item S2A_T33UUU_20170216"):
        build_las(write_manifest({"subsets": {"s2": subset}}), tmp_path / "las", progress=False)


def test_empty_query_and_api_failures_are_errors(catalog, tmp_path, write_manifest):
    with pytest.raises(LandSegError, match="no imagery items match the STAC query"):
        build_las(
            write_manifest({"subsets": {"s2": _subset(catalog, datetime="2019-01-01/..")}}),
            tmp_path / "a",
            progress=False,
        )
    with pytest.raises(LandSegError, match="'query' filters need a STAC API"):
        search_items(StacQuery(catalog=str(catalog), query={"eo:cloud_cover": {"lt": 10}}))
    with pytest.raises(LandSegError, match="STAC API http://127.0.0.1:9/"):
        search_items(StacQuery(api="http://127.0.0.1:9/"))
    with pytest.raises(LandSegError, match="cannot read STAC catalogue"):
        search_items(StacQuery(catalog=str(tmp_path / "missing.json")))
