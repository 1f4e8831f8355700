"""The catalogue products of a mapping run: ``item.json`` (STAC Item) and ``classes.qml`` (QGIS style)."""
import hashlib
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pystac
import pytest
import rasterio
from pystac.extensions.classification import ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from pystac.stac_object import STACObjectType
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from rasterio.warp import transform_bounds

from landsegmenter import map_scene
from landsegmenter.infer.rundir import PRODUCTS
from landsegmenter.infer.stac_item import machine_names
from landsegmenter.taxonomy.colors import palette

CLASSES = ["water", "forest", "cropland", "built-up", "grassland"]


@pytest.fixture(scope="module")
def run(s2_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("products") / "s2-map"
    return map_scene(s2_scene, CLASSES, out, model="spectral-rule", progress=False)


@pytest.fixture(scope="module")
def item_dict(run):
    return json.loads((run.outdir / "item.json").read_text())


def test_every_product_is_written_and_listed(run):
    assert {"item.json", "classes.qml"} <= set(PRODUCTS)
    assert sorted(p.name for p in run.outdir.iterdir()) == sorted(PRODUCTS)


def test_item_is_valid_against_the_stac_item_schema(item_dict):
    """pystac's validator with the Item schemas it ships (extension schemas would need the network)."""
    validator = JsonSchemaSTACValidator()
    assert validator.validate_core(item_dict, STACObjectType.ITEM, item_dict["stac_version"]).endswith("item.json")
    broken = {**item_dict, "geometry": {"type": "Polygon", "coordinates": "nowhere"}}
    with pytest.raises(pystac.errors.STACValidationError):
        validator.validate_core(broken, STACObjectType.ITEM, item_dict["stac_version"])


def test_item_follows_the_rules_of_its_extension_schemas(item_dict):
    """What the projection v2, raster v1.1 and classification v2 schemas require, checked on the JSON."""
    props, assets = item_dict["properties"], item_dict["assets"]
    assert {e.split("/")[3] for e in item_dict["stac_extensions"]} == {"projection", "raster", "classification"}
    assert isinstance(props["proj:code"], str) and re.fullmatch(r"EPSG:\d+", props["proj:code"])
    assert len(props["proj:shape"]) == 2 and all(isinstance(v, int) for v in props["proj:shape"])
    assert len(props["proj:transform"]) in (6, 9) and len(props["proj:bbox"]) == 4
    for key in ("classes", "confidence"):
        (band,) = assets[key]["raster:bands"]
        assert band["data_type"] == "uint8" and band["nodata"] == 255
    classes = assets["classes"]["classification:classes"]
    assert len({c["value"] for c in classes}) == len(classes) == len(CLASSES) + 1
    for entry in classes:
        assert isinstance(entry["value"], int) and re.fullmatch(r"[0-9A-Za-z_-]+", entry["name"])
        assert "color_hint" not in entry or re.fullmatch(r"[0-9A-F]{6}", entry["color_hint"])


def test_item_footprint_is_the_map_in_wgs84(run, item_dict):
    with rasterio.open(run.classes) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        crs, transform, shape = src.crs, src.transform, [src.height, src.width]
    assert item_dict["bbox"] == pytest.approx([west, south, east, north], abs=1e-6)
    ring = item_dict["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) > 5
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    assert [min(lons), min(lats), max(lons), max(lats)] == pytest.approx(item_dict["bbox"], abs=1e-7)
    signed = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
    assert signed > 0, "exterior ring counter-clockwise (RFC 7946)"
    item = pystac.Item.from_dict(item_dict)
    proj = ProjectionExtension.ext(item)
    assert proj.code == f"EPSG:{crs.to_epsg()}" and proj.shape == shape
    assert proj.transform == pytest.approx(list(transform)[:6])


def test_classes_asset_carries_the_legend(run, item_dict):
    item = pystac.Item.from_dict(item_dict)
    asset = item.assets["classes"]
    assert asset.href == "./classes.tif" and asset.media_type == pystac.MediaType.COG
    classes = ClassificationExtension.ext(asset).classes
    by_value = {c.value: c for c in classes}
    areas = {row["class"]: row for row in json.loads((run.outdir / "areas.json").read_text())}
    for i, (name, color) in enumerate(zip(CLASSES, palette(CLASSES))):
        entry = by_value[i]
        assert entry.title == name and re.fullmatch(r"[0-9A-Za-z_-]+", entry.name)
        assert entry.color_hint == "%02X%02X%02X" % color
        assert entry.count == areas[name]["pixels"]
    assert by_value[255].nodata is True
    band = RasterExtension.ext(asset).bands[0]
    assert band.nodata == 255 and band.data_type == "uint8" and band.spatial_resolution == 10.0


def test_confidence_asset_and_model_and_inputs(run, s2_scene, item_dict):
    item = pystac.Item.from_dict(item_dict)
    band = RasterExtension.ext(item.assets["confidence"]).bands[0]
    assert band.unit == "percent" and band.nodata == 255
    assert item.properties["landseg:model"] == "spectral-rule-v2"
    assert item.properties["landseg:model_sha256"] is None  # a rule has no weights
    inputs = [link.href for link in item.links if link.rel == "derived_from"]
    assert inputs == [str(s2_scene.resolve())]
    for key, name in (("style", "classes.qml"), ("areas", "areas.json"), ("preview", "preview.png")):
        assert item.assets[key].href == f"./{name}" and (run.outdir / name).is_file()
    assert item.datetime is not None


def test_item_records_the_weights_checksum_of_a_saved_model(tmp_path):
    from landsegmenter.infer.mapper import _model_name
    from landsegmenter.infer.stac_item import RunProducts, build_item
    from landsegmenter.geo.raster import Grid

    weights = hashlib.sha256(b"weights").hexdigest()
    grid = Grid(4, 3, None, rasterio.Affine.identity())
    run = RunProducts("x", grid, ["a"], [(1, 2, 3)], [], "unet:" + weights[:16], weights, [], ["classes.tif"])
    item = build_item(run)
    assert item.properties["landseg:model_sha256"] == weights
    assert item.geometry is None and item.bbox is None  # not georeferenced: no footprint, no proj
    assert ProjectionExtension.get_schema_uri() not in item.stac_extensions
    assert _model_name(object()) == "object"


def test_machine_names_are_unique_and_valid():
    assert machine_names(["built-up", "tree cover", "tree_cover", "nodata", "%"]) == [
        "built-up", "tree_cover", "tree_cover_2", "nodata_3", "class_4"]


def test_qgis_style_lists_every_class_with_its_colour(run):
    root = ET.parse(run.outdir / "classes.qml").getroot()
    assert root.tag == "qgis"
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = renderer.findall("colorPalette/paletteEntry")
    assert [(int(e.get("value")), e.get("label")) for e in entries] == list(enumerate(CLASSES))
    with rasterio.open(run.classes) as src:
        cmap = src.colormap(1)
    assert [e.get("color") for e in entries] == ["#%02x%02x%02x" % cmap[i][:3] for i in range(len(CLASSES))]


def test_quicklook_is_true_colour_when_the_stack_has_red_green_blue(s2_scene):
    from landsegmenter.geo.quicklook import composite_bands, quicklook
    from landsegmenter.geo.raster import Grid, Scene

    with Scene(s2_scene) as stack:
        picked, kind = composite_bands(stack.bands)
        assert [b.name for b in picked] == ["B04", "B03", "B02"] and kind == "true colour"
        rgb, _ = quicklook(stack.bands, stack.grid, (96, 192))
        red = stack.read(rasterio.windows.Window(0, 0, stack.width, stack.height))[0][stack.band_names.index("B04")]
    assert rgb.shape == (96, 192, 3) and 0 <= rgb.min() and rgb.max() <= 1
    coarse = red.reshape(96, 8, 192, 8).mean(axis=(1, 3))
    assert np.corrcoef(coarse.ravel(), rgb[..., 0].ravel())[0, 1] > 0.95
    with Scene(s2_scene, bands=["B03", "B04", "B08"]) as stack:
        picked, kind = composite_bands(stack.bands)
    assert [b.name for b in picked] == ["B08", "B04", "B03"] and kind.startswith("false colour")


def test_preview_shows_the_input_beside_the_map(run):
    from PIL import Image

    with Image.open(run.outdir / "preview.png") as png:
        width, height = png.size
    assert width / height > 2.0  # two 2:1 panels side by side; the map alone with its legend is narrower
