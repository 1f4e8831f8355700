"""STAC inputs and mosaics: two overlapping windows of the real scene as a local static catalogue."""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from landsegmenter import map_scene
from landsegmenter.cli import main
from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Grid
from landsegmenter.geo.stac import SourceScene, band_assets, read_item_collection
from landsegmenter.infer.mosaic import map_mosaic, target_grid
from landsegmenter.model.spectral_rule import SpectralIndexRule

CLASSES = ["water", "forest", "cropland", "built-up", "grassland", "cloud"]
CLOUD = CLASSES.index("cloud")
BANDS = ["B02", "B03", "B04", "B08", "B11"]
WINDOW_A = Window(0, 0, 960, 448)  # item A: one 13-band asset, 10 % brighter, 20 % cloud
WINDOW_B = Window(576, 128, 960, 448)  # item B: one asset per band, a cloud and a hole, 5 % cloud (wins ties)
UNION = (576, 1536)  # rows, cols of the union of the two windows
CLOUD_PATCH = (slice(200, 260), slice(700, 800))  # scene rows, cols, inside the overlap
HOLE = (slice(300, 360), slice(800, 900))


def _brighter(data, window):
    return np.clip(data * 1.1, 0, 65535).astype(data.dtype)


def _cloud_and_hole(data, window):
    for (rows, cols), value in ((CLOUD_PATCH, 4000), (HOLE, 0)):  # 0.4 reflectance in every band; nodata
        data[:, rows.start - window.row_off:rows.stop - window.row_off,
             cols.start - window.col_off:cols.stop - window.col_off] = value
    return data


def _write(scene, path, window, bands=None, edit=None) -> list[str]:
    with rasterio.open(scene) as src:
        indexes = [src.descriptions.index(b) + 1 for b in bands] if bands else list(range(1, src.count + 1))
        data, profile = src.read(indexes, window=window), src.profile
        data = edit(data, window) if edit else data
        profile.update(width=int(window.width), height=int(window.height), count=len(indexes),
                       transform=src.window_transform(window))
        names = [src.descriptions[i - 1] for i in indexes]
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = names
    return names


def _item(item_id: str, path, cloud: float) -> pystac.Item:
    with rasterio.open(path) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    when = dt.datetime(2017, 2, 16, 10, 21, tzinfo=dt.timezone.utc)
    return pystac.Item(item_id, {"type": "Polygon", "coordinates": [ring]}, [west, south, east, north], when,
                       {"eo:cloud_cover": cloud})


@pytest.fixture(scope="module")
def catalog(s2_scene, tmp_path_factory):
    """A static catalogue: item A (multi-band asset) and item B (per-band assets and a thumbnail)."""
    root = tmp_path_factory.mktemp("stac")
    stack = root / "a.tif"
    names = _write(s2_scene, stack, WINDOW_A, edit=_brighter)
    a = _item("A", stack, 20.0)
    a.add_asset("image", pystac.Asset(str(stack), media_type=pystac.MediaType.COG, roles=["data"],
                                      extra_fields={"eo:bands": [{"name": n} for n in names]}))
    files = {b: root / f"T33UUU_20170216_{b}.tif" for b in BANDS}
    for band, path in files.items():
        _write(s2_scene, path, WINDOW_B, [band], edit=_cloud_and_hole)
    b = _item("B", files["B02"], 5.0)
    common = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16"}
    for band, path in files.items():  # keyed by common name, as Earth Search does
        eo = {"eo:bands": [{"name": band, "common_name": common[band]}]}
        b.add_asset(common[band], pystac.Asset(str(path), media_type=pystac.MediaType.GEOTIFF, roles=["data"],
                                               extra_fields=eo))
    thumbnail = pystac.Asset(str(root / "thumb.png"), media_type=pystac.MediaType.PNG, roles=["thumbnail"])
    b.add_asset("thumbnail", thumbnail)
    cat = pystac.Catalog("two-windows", "Two overlapping windows of T33UUU")
    cat.add_items([a, b])
    cat.normalize_hrefs(str(root / "catalog"))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return {"catalog": root / "catalog" / "catalog.json", "a": [stack], "b": [files[n] for n in BANDS]}


@pytest.fixture(scope="module")
def own_maps(catalog, tmp_path_factory):
    """Each window mapped on its own by the single-process mapper: (classes, confidence) per item."""
    maps = {}
    for key in ("a", "b"):
        out = tmp_path_factory.mktemp(f"own_{key}") / "map"
        result = map_scene([str(p) for p in catalog[key]], CLASSES, out, model="spectral-rule", bands=BANDS,
                           tile_size=128, overlap=32, progress=False, preview=False)
        with rasterio.open(result.classes) as c, rasterio.open(result.confidence) as f:
            maps[key] = (c.read(1), f.read(1))
    return maps


def _on_union(arrays, window: Window, fill=255):
    out = [np.full(UNION, fill, np.uint8) for _ in arrays]
    rows = slice(window.row_off, window.row_off + window.height)
    cols = slice(window.col_off, window.col_off + window.width)
    for canvas, arr in zip(out, arrays):
        canvas[rows, cols] = arr
    return out


def test_band_assets_by_eo_bands_common_names_and_keys(catalog):
    items = {item.id: item for item in pystac.Catalog.from_file(str(catalog["catalog"])).get_items(recursive=True)}
    hrefs = band_assets(items["B"], "sentinel2_l1c", ["B08", "B04"])
    assert [h.rsplit("_", 1)[-1] for h in hrefs] == ["B08.tif", "B04.tif"], "per-band assets, in the asked order"
    assert len(band_assets(items["B"], "sentinel2_l1c")) == 5, "every sensor band the item has (not the thumbnail)"
    assert len(band_assets(items["B"], None, ["red", "nir"])) == 2, "common names match without a sensor"
    assert band_assets(items["A"], None, BANDS) == [str(catalog["a"][0])], "one multi-band asset holding them all"
    with pytest.raises(LandSegError, match="STAC item B has no usable assets for bands B02, B12"):
        band_assets(items["B"], "sentinel2_l1c", ["B02", "B12"])


@pytest.fixture(scope="module")
def mosaic(catalog, cluster, tmp_path_factory):
    """``landseg map --stac CATALOG`` on the 2-worker cluster: the output directory and the printed summary."""
    out = tmp_path_factory.mktemp("mosaic") / "out"
    args = ["map", "--stac", str(catalog["catalog"]), "--bands", ",".join(BANDS), "--classes", ",".join(CLASSES),
            "--model", "spectral-rule", "--tile-size", "128", "--overlap", "32", "--block-tiles", "3",
            "--scheduler", cluster.scheduler_address, "-o", str(out), "--no-preview"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    return out, printed.getvalue()


def test_stac_mosaic_composites_the_overlap_and_covers_the_union(catalog, own_maps, mosaic):
    out, printed = mosaic
    assert "2 scenes composited" in printed
    with rasterio.open(out / "classes.tif") as c, rasterio.open(out / "confidence.tif") as f, \
            rasterio.open(catalog["a"][0]) as a:
        assert (c.height, c.width) == UNION and c.crs == a.crs and c.transform == a.transform
        assert c.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        classes, confidence = c.read(1), f.read(1)
    a_cls, a_conf = _on_union(own_maps["a"], WINDOW_A)
    b_cls, b_conf = _on_union(own_maps["b"], WINDOW_B)
    a_key, b_key = _rank(a_cls, a_conf), _rank(b_cls, b_conf)
    a_wins = a_key > b_key  # B ranks first (less cloud), so it keeps ties
    assert (classes == np.where(a_wins, a_cls, b_cls)).all()
    assert (confidence == np.where(a_wins, a_conf, b_conf)).all()
    overlap = (a_cls != 255) & (b_cls != 255)
    by_confidence = overlap & (a_cls != CLOUD) & (b_cls != CLOUD)
    assert 0 < (a_wins & by_confidence).sum() < by_confidence.sum(), "each item is more confident somewhere"
    assert (b_cls[CLOUD_PATCH] == CLOUD).mean() > 0.9 and (a_cls[CLOUD_PATCH] != CLOUD).all()
    assert (classes[CLOUD_PATCH] == a_cls[CLOUD_PATCH]).all(), "a clear view beats a cloud, whatever the confidence"
    assert (b_cls[HOLE] == 255).all() and (classes[HOLE] == a_cls[HOLE]).all(), "nodata in B is filled from A"
    footprint = (a_cls != 255) | (b_cls != 255)
    assert ((classes != 255) == footprint).all(), "the mosaic's footprint is the union of the items'"
    assert (classes[:128, 960:] == 255).all() and (classes[448:, :576] == 255).all()
    record = json.loads((out / "run.json").read_text())
    assert [s["id"] for s in record["scenes"]] == ["A", "B"] and [s["priority"] for s in record["scenes"]] == [1, 0]
    areas = json.loads((out / "areas.json").read_text())
    assert sum(r["pixels"] for r in areas) == int(footprint.sum())
    item = pystac.Item.from_file(str(out / "item.json"))
    assert item.datetime == dt.datetime(2017, 2, 16, 10, 21, tzinfo=dt.timezone.utc)  # the scenes' acquisition
    assert len([link for link in item.links if link.rel == "derived_from"]) == len(record["scenes"][0]["paths"]) + \
        len(record["scenes"][1]["paths"])
    assert "preview" not in item.assets and (out / "classes.qml").is_file()  # --no-preview


def test_an_interrupted_mosaic_resumes_from_its_stored_blocks(catalog, mosaic, tmp_path):
    class FailingRule(SpectralIndexRule):
        """The rule until its 12th batch, then an error, as if the machine went down."""

        calls = 0

        def forward(self, *args):
            FailingRule.calls += 1
            if FailingRule.calls > 11:
                raise RuntimeError("interrupted")
            return super().forward(*args)

    sources = _sources(catalog)
    options = dict(bands=BANDS, tile_size=128, overlap=32, block_tiles=3, progress=False, preview=False)
    with pytest.raises(RuntimeError, match="interrupted"):
        map_mosaic(sources, CLASSES, tmp_path / "out", model=FailingRule(), **options)
    stored = list((tmp_path / "out" / ".landseg-partial" / "items").glob("*/blocks/block-*.npz"))
    assert stored and not (tmp_path / "out" / "classes.tif").exists()
    resumed = map_mosaic(sources, CLASSES, tmp_path / "out", model="spectral-rule", resume=True, **options)
    assert resumed.blocks_run == resumed.blocks - len(stored) and resumed.items == ["A", "B"]
    for name in ("classes.tif", "confidence.tif"):
        with rasterio.open(tmp_path / "out" / name) as got, rasterio.open(mosaic[0] / name) as want:
            assert (got.read(1) == want.read(1)).all()


def _sources(catalog):
    return [SourceScene("A", tuple(map(str, catalog["a"])), 20.0), SourceScene("B", tuple(map(str, catalog["b"])), 5.0)]


def _rank(classes, confidence):
    """The compositing rank: no prediction < cloud < any other class, then confidence."""
    return np.where(classes != 255, confidence.astype(int) + 101 * (classes != CLOUD), -1)


def test_mosaic_on_another_crs_and_resolution(catalog, own_maps, tmp_path):

    sources = _sources(catalog)
    result = map_mosaic(sources, CLASSES, tmp_path / "out", crs="EPSG:32632", resolution=20.0, model="spectral-rule",
                        bands=BANDS, tile_size=128, overlap=32, block_tiles=4, progress=False, preview=False)
    with rasterio.open(result.classes) as src:
        assert src.crs.to_epsg() == 32632 and src.res == (20.0, 20.0)
        classes = src.read(1)
    share = np.bincount(classes[classes != 255], minlength=len(CLASSES)) / (classes != 255).sum()
    a_cls, _ = _on_union(own_maps["a"], WINDOW_A)
    b_cls, _ = _on_union(own_maps["b"], WINDOW_B)
    native = np.where(a_cls != 255, a_cls, b_cls)
    expected = np.bincount(native[native != 255], minlength=len(CLASSES)) / (native != 255).sum()
    assert np.abs(share - expected).max() < 0.02, "reprojection keeps the class shares"
    area = (classes != 255).sum() * 400 / ((native != 255).sum() * 100)
    assert area == pytest.approx(1.0, abs=0.03), "and the mapped area"


def test_target_grid_defaults_to_the_first_grid_and_the_union(catalog):
    grids = []
    for path in (catalog["a"][0], catalog["b"][0]):
        with rasterio.open(path) as src:
            grids.append(Grid(src.width, src.height, src.crs, src.transform))
    grid = target_grid(grids)
    assert (grid.height, grid.width) == UNION and grid.transform == grids[0].transform
    with pytest.raises(LandSegError, match="unknown CRS"):
        target_grid(grids, crs="EPSG:999999")


def _fails(capsys, args, message):
    assert main(["map", *args, "--classes", ",".join(CLASSES), "--model", "spectral-rule", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("landseg: error: "), err
    assert message in err, err


def test_item_without_usable_band_assets_is_one_line(catalog, tmp_path, capsys):
    item = _item("only-a-preview", catalog["a"][0], 0.0)
    item.add_asset("thumbnail", pystac.Asset("preview.png", media_type=pystac.MediaType.PNG, roles=["thumbnail"]))
    path = tmp_path / "items.json"
    path.write_text(json.dumps(pystac.ItemCollection([item]).to_dict()))
    assert [i.id for i in read_item_collection(path)] == ["only-a-preview"]
    _fails(capsys, ["--stac", str(path), "--sensor", "sentinel2_l1c", "-o", str(tmp_path / "o")],
           "STAC item only-a-preview has no usable assets")
    assert not (tmp_path / "o").exists()


def test_stac_argument_errors_are_one_line(catalog, s2_scene, tmp_path, capsys):
    out = ["-o", str(tmp_path / "o")]
    _fails(capsys, [str(s2_scene), "--stac", str(catalog["catalog"]), *out], "exactly one of them")
    _fails(capsys, ["--stac-api", "http://127.0.0.1:9/", *out], "--stac-api needs --collection and --bbox")
    _fails(capsys, ["--stac-api", "http://127.0.0.1:9/", "--collection", "sentinel-2-l2a", "--bbox", "14,52,15,53",
                    *out], "STAC API http://127.0.0.1:9/")
    _fails(capsys, ["--stac", str(tmp_path / "missing.json"), *out], "no such STAC file")
    _fails(capsys, ["--stac", str(catalog["catalog"]), "--datetime", "2020-01-01/2020-12-31", *out],
           "no STAC items to map")
    assert not (tmp_path / "o").exists()
