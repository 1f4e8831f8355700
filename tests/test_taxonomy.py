"""Legend registry, crosswalks and colours, checked against the real sample-data kit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.colors import color_for, palette
from landsegmenter.taxonomy.crosswalk import get_crosswalk, list_crosswalks
from landsegmenter.taxonomy.legends import (
    from_sidecar_json,
    get_legend,
    list_legends,
    load_legend_file,
    normalize_name,
    parse_color,
)

DW_DIR = "s2_t33uuu_20170216"
WORLDCOVER = "worldcover_n00e006/esa_worldcover_2021_v200_n00e006_saotome.tif"

REQUIRED_LEGENDS = {
    "esa_worldcover_2020", "esa_worldcover_2021", "dynamic_world", "esri_lulc", "nlcd", "usda_cdl",
    "corine", "bigearthnet_19", "glc_fcs30", "modis_igbp", "osm_landuse", "five_billion_pixels",
    "gid_5", "gid_15", "openearthmap", "loveda", "flair_1", "flair_1_13", "isprs_potsdam_vaihingen",
    "deepglobe_land_cover", "chesapeake_7", "chesapeake_13", "nc_landsat7_strata",
}


def read_band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.mark.parametrize("key", list_legends())
def test_every_legend_is_well_formed(key: str) -> None:
    legend = get_legend(key)
    assert len(set(legend.codes)) == len(legend.codes)
    assert len({normalize_name(n) for n in legend.names}) == len(legend.names)
    assert not set(legend.codes) & set(legend.nodata)
    assert legend.source.startswith("http") and legend.title and legend.color_source
    for cls in legend.classes:
        assert cls.name == cls.name.lower().strip() and cls.description.endswith(".")
        assert len(cls.color) == 3 and all(0 <= c <= 255 for c in cls.color)
        assert all(s == s.lower() for s in cls.synonyms)
    lut = legend.lookup_table()
    assert lut.dtype == np.uint8 and lut.size >= 256
    assert lut[list(legend.codes)].tolist() == list(range(len(legend)))
    assert (lut == 255).sum() == lut.size - len(legend)
    assert sorted(legend.colormap()) == list(range(len(legend)))


def test_registry_has_every_product() -> None:
    assert REQUIRED_LEGENDS <= set(list_legends())
    assert len(get_legend("corine")) == 44 and len(get_legend("bigearthnet_19")) == 19
    assert len(get_legend("five_billion_pixels")) == 24 and len(get_legend("flair_1")) == 19
    cdl = get_legend("usda_cdl")
    non_crop = {111, 112, 121, 122, 123, 124, 131, 141, 142, 143, 152, 176, 190, 195}
    assert len(cdl) >= 30 and non_crop <= set(cdl.codes)


def test_keys_aliases_and_unknown_key() -> None:
    assert get_legend("DW") is get_legend("dynamic_world")
    assert get_legend("worldcover").key == "esa_worldcover_2021"
    with pytest.raises(LandSegError, match="known legends: .*dynamic_world"):
        get_legend("no_such_product")


def test_by_name_and_by_code() -> None:
    dw = get_legend("dynamic_world")
    assert dw.by_name("Flooded_Vegetation").code == 3
    assert dw.by_name("  snow and ICE ").code == 8
    assert get_legend("worldcover").by_name("forest").code == 10  # synonym
    assert get_legend("worldcover").by_name("Bare / sparse vegetation").code == 60  # official name
    assert dw.by_code(6).name == "built"
    with pytest.raises(LandSegError, match="not a class of legend 'dynamic_world'"):
        dw.by_name("lava")
    with pytest.raises(LandSegError, match="code 9"):
        dw.by_code(9)


def test_corine_has_level_names() -> None:
    corine = get_legend("corine")
    assert corine.codes[0] == 111 and corine.codes[-1] == 523
    assert corine.by_code(312).hierarchy == ("forest and semi natural areas", "forests")
    assert corine.by_code(523).hierarchy == ("water bodies", "marine waters")


def test_dynamic_world_matches_kit_sidecar(shared_data: Path) -> None:
    sidecar = from_sidecar_json(shared_data / DW_DIR / "dynamic_world_label.legend.json")
    dw = get_legend("dynamic_world")
    assert sidecar.codes == dw.codes
    assert [normalize_name(n) for n in sidecar.names] == [normalize_name(n) for n in dw.names]
    assert [c.official_name for c in sidecar.classes] == [c.official_name for c in dw.classes]
    assert sidecar.colors == dw.colors
    assert sidecar.nodata == dw.nodata == (255,)


def test_worldcover_matches_embedded_colour_table(shared_data: Path) -> None:
    with rasterio.open(shared_data / WORLDCOVER) as src:
        table = src.colormap(1)
    for key in ("esa_worldcover_2021", "esa_worldcover_2020"):
        for cls in get_legend(key).classes:
            assert table[cls.code] == (*cls.color, 255), (key, cls.code)


def test_lookup_table_maps_every_worldcover_pixel(shared_data: Path) -> None:
    labels = read_band(shared_data / WORLDCOVER)
    legend = get_legend("esa_worldcover_2021")
    index = legend.lookup_table()[labels]
    valid = labels != 0
    assert not (index[valid] == 255).any()
    code_counts = np.bincount(labels[valid], minlength=256)[list(legend.codes)]
    index_counts = np.bincount(index[valid], minlength=len(legend))
    assert index_counts.tolist() == code_counts.tolist()
    sidecar = json.loads((shared_data / WORLDCOVER.replace(".tif", ".legend.json")).read_text())
    assert code_counts.tolist() == [c["pixel_count"] for c in sidecar["classes"]]
    assert np.array_equal(legend.to_index(labels), index)


def test_bigearthnet_names_equal_labels_json(shared_data: Path) -> None:
    classes_19 = json.loads((shared_data / "bigearthnet_v2_mock" / "labels.json").read_text())["classes_19"]
    ben = get_legend("bigearthnet_19")
    assert [c.official_name for c in ben.classes] == classes_19
    assert list(ben.names) == [n.lower() for n in classes_19]
    assert list(ben.codes) == list(range(19))


def test_osm_legend_covers_kit_classes(shared_data: Path) -> None:
    sidecar = json.loads((shared_data / DW_DIR / "osm_landuse_label.legend.json").read_text())
    osm = get_legend("osm_landuse")
    for entry in sidecar["classes"]:
        assert osm.by_name(entry["name"]).code in entry["osm_code"]


def test_sidecar_json_loads_for_every_kit_legend(shared_data: Path) -> None:
    paths = sorted(shared_data.rglob("*.legend.json"))
    assert len(paths) >= 10
    for path in paths:
        doc = json.loads(path.read_text())
        legend = from_sidecar_json(path)
        assert list(legend.codes) == [c["value"] for c in doc["classes"]]
        assert list(legend.colors) == [parse_color(c["color"]) for c in doc["classes"]]
        assert legend.nodata == (doc["nodata"],)


def test_crosswalk_on_real_dynamic_world_raster(shared_data: Path) -> None:
    labels = read_band(shared_data / DW_DIR / "dynamic_world_label.tif")
    out = get_crosswalk("dynamic_world", "esa_worldcover_2021").apply(labels)
    assert out.dtype == np.uint8 and out.shape == labels.shape
    # hand-checked pixels: trees, grass, shrub and scrub, crops
    assert (labels[0, 0], out[0, 0]) == (1, 10)
    assert (labels[100, 200], out[100, 200]) == (2, 30)
    assert (labels[400, 1000], out[400, 1000]) == (5, 20)
    assert (labels[767, 1535], out[767, 1535]) == (4, 40)
    dw_counts = np.bincount(labels.ravel(), minlength=9)
    assert (out == 80).sum() == dw_counts[0] and (out == 70).sum() == dw_counts[8]

    strata = get_crosswalk("dw", "nc_landsat7_strata").apply(labels)
    assert (strata == 255).sum() == dw_counts[3] + dw_counts[8]
    assert (strata[labels == 6] == 1).all() and (strata[labels == 7] == 7).all()


def test_unknown_codes_are_counted_not_dropped(shared_data: Path) -> None:
    labels = read_band(shared_data / DW_DIR / "dynamic_world_label.tif").copy()
    labels[:3, :5] = 11  # 15 pixels of a code Dynamic World does not have
    labels[10, 10] = 255  # nodata stays nodata
    legend = get_legend("dynamic_world")
    assert (legend.lookup_table()[labels] == 255).sum() == 16
    with pytest.raises(LandSegError, match=r"^15 pixels have codes .*values: 11\)$"):
        legend.to_index(labels)
    message = r"15 pixels have codes that are not in legend 'dynamic_world' \(values: 11\)"
    with pytest.raises(LandSegError, match=message):
        get_crosswalk("dynamic_world", "esa_worldcover_2021").apply(labels)


def test_crosswalk_nodata_handling() -> None:
    crosswalk = get_crosswalk("esa_worldcover_2021", "dynamic_world")
    labels = np.array([[0, 10, 100], [95, 90, 80]], dtype=np.uint8)
    assert crosswalk.apply(labels).tolist() == [[255, 1, 255], [3, 3, 0]]
    with pytest.raises(LandSegError, match="nodata 3 is a target class code"):
        crosswalk.apply(labels, nodata=3)
    corine = np.array([999, 241, 333, 122, 112])
    assert get_crosswalk("corine", "bigearthnet_19").apply(corine, nodata=-1).tolist() == [-1, 3, 11, -1, 0]


def test_registered_crosswalks() -> None:
    pairs = set(list_crosswalks())
    assert {
        ("dynamic_world", "esa_worldcover_2021"), ("esa_worldcover_2021", "dynamic_world"),
        ("esri_lulc", "dynamic_world"), ("corine", "bigearthnet_19"), ("five_billion_pixels", "gid_5"),
        ("dynamic_world", "nc_landsat7_strata"), ("nlcd", "dynamic_world"),
    } <= pairs
    for source, target in pairs:
        crosswalk = get_crosswalk(source, target)
        assert set(crosswalk.mapping) == set(get_legend(source).codes) and crosswalk.caveats
    fbp = get_crosswalk("fbp", "gid5").mapping
    assert fbp[21] == 1 and fbp[2] == 2 and fbp[15] == 5 and fbp[16] is None
    grid = np.arange(1, 45, dtype=np.uint8)
    clc = get_crosswalk("corine_raster", "corine").apply(grid)
    ben = get_crosswalk("corine", "bigearthnet_19").apply(clc)
    assert (ben != 255).sum() == 32 and set(ben[ben != 255].tolist()) == set(range(19))
    with pytest.raises(LandSegError, match="no crosswalk from 'gid_5' to 'corine'"):
        get_crosswalk("gid_5", "corine")


def test_color_for_prefers_worldcover_and_dynamic_world() -> None:
    worldcover = get_legend("esa_worldcover_2021")
    assert color_for("forest") == worldcover.by_code(10).color
    assert color_for("Cropland") == worldcover.by_code(40).color
    assert color_for("built_up") == worldcover.by_code(50).color
    assert color_for("water") == get_legend("dynamic_world").by_code(0).color
    assert color_for("paddy field") == get_legend("corine").by_code(213).color  # tier 2 synonym
    assert color_for("Fish_Pond") == (150, 200, 250)  # only in dataset legends
    assert color_for("no such class at all") is None


def test_palette_gives_distinct_colours() -> None:
    names = ["water", "trees", "tree cover", "forest", "woodland", "crops", "cropland"] + [
        f"made-up class {i}" for i in range(23)
    ]
    colours = palette(names)
    assert len(colours) == 30 and len(set(colours)) == 30
    assert colours[0] == color_for("water") and colours[1] == color_for("trees")
    assert colours[2] == color_for("tree cover") and colours[3] != colours[2]  # same colour twice -> fallback
    assert len(set(palette([f"c{i}" for i in range(100)]))) == 100


def test_colormap_round_trips_through_geotiff(tmp_path: Path) -> None:
    legend = get_legend("gid_5")
    path = tmp_path / "gid5.tif"
    profile = dict(driver="GTiff", width=4, height=4, count=1, dtype="uint8", crs="EPSG:4326",
                   transform=rasterio.Affine(1, 0, 0, 0, -1, 4))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.arange(16, dtype=np.uint8).reshape(4, 4) % 5, 1)
        dst.write_colormap(1, legend.colormap())
    with rasterio.open(path) as src:
        table = src.colormap(1)
    assert [table[i] for i in range(5)] == [(*c, 255) for c in legend.colors]


VALID_LEGEND = """\
key: my_map
title: My map
source: https://example.org/my-map
nodata: [0]
classes:
  - {code: 1, name: water, color: "#0000FF", description: Lakes., synonyms: [lake]}
  - {code: 2, name: forest, color: [0, 128, 0], description: Trees.}
"""


def test_load_legend_file_reads_a_user_legend(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(VALID_LEGEND)
    legend = load_legend_file(path)
    assert legend.codes == (1, 2) and legend.by_name("Lake").code == 1 and legend.colors[1] == (0, 128, 0)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("code: 2", "code: 1"), r"class 1 'forest': duplicate code 1 \(also 'water'\)"),
        (("name: forest", "name: Water"), "name or synonym 'water' is also used by class 1"),
        (('"#0000FF"', '"#00GG00"'), r"class 1 'water': invalid colour '#00GG00'"),
        (("[0, 128, 0]", "[0, 300, 0]"), "invalid colour"),
        (("nodata: [0]", "nodata: [1]"), "code 1 is also listed as nodata"),
        (("title:", "titel:"), r"unknown legend field\(s\) \['titel'\]"),
    ],
)
def test_load_legend_file_rejects_bad_legends(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(VALID_LEGEND.replace(*edit))
    with pytest.raises(LandSegError, match=message) as caught:
        load_legend_file(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
